//! `serve`'s capture side for sources that run on their own (cameras): a [`LatestFrame`] thread
//! that keeps only the newest frame, MJPEG passthrough, and riding out a camera that disappears.

use std::time::{Duration, Instant};

use anyhow::Context;
use framewire_capture::{LatestFrame, SourceEvent, SourceSpec, Taken, reopener};
use framewire_core::{CodecKind, CompressedFrame, Frame, FrameSource};

/// How long one wait for a frame lasts, so that Ctrl-C and viewers are seen in time.
const POLL: Duration = Duration::from_millis(200);
/// While the camera is gone, the last frame is sent again this often, so viewers (which give up
/// after 15 s without data) stay connected until it is back.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// Where serve's frames come from.
pub enum Feed {
    /// Pulled in the serving loop (the test pattern renders a frame when asked).
    Direct(Box<dyn FrameSource>),
    /// A camera on its own thread; `passthrough` hands over its JPEG bytes as they are.
    Live {
        latest: LatestFrame,
        passthrough: bool,
        packet: CompressedFrame,
        lost: bool,
    },
}

/// What [`Feed::pull`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// Pixels, in the frame.
    Frame,
    /// A finished payload (the camera's JPEG), already in the payload buffer.
    Payload { seq: u64, capture_us: u64 },
    /// Nothing new yet (a slow or lost camera).
    Nothing,
    /// The source ended.
    Ended,
}

impl Feed {
    /// Cameras go on their own thread and are reopened when they disappear; their JPEG goes on
    /// the wire as it is when `jpeg_as_is` (JPEG stream, no resize, no preview) and they send
    /// MJPEG. Other sources stay as they are.
    pub fn new(
        source: Box<dyn FrameSource>,
        spec: &SourceSpec,
        size: (u32, u32),
        fps: f64,
        jpeg_as_is: bool,
    ) -> anyhow::Result<Feed> {
        if *spec == SourceSpec::Test {
            return Ok(Feed::Direct(source));
        }
        let passthrough = jpeg_as_is && source.compressed_codec() == Some(CodecKind::Jpeg);
        let reopen = reopener(spec, size.0, size.1, fps);
        let latest = LatestFrame::spawn_with(source, passthrough, reopen)
            .with_context(|| format!("--source {spec}"))?;
        if passthrough {
            println!("passing the camera's JPEG frames through as they are (no re-encode)");
        }
        Ok(Feed::Live {
            latest,
            passthrough,
            packet: CompressedFrame::empty(CodecKind::Jpeg),
            lost: false,
        })
    }

    /// The next frame, or a payload when passing through; waits at most a fraction of a second.
    pub fn pull(&mut self, frame: &mut Frame, payload: &mut Vec<u8>) -> anyhow::Result<Pulled> {
        match self {
            Feed::Direct(source) => Ok(if source.next_frame(frame)? {
                Pulled::Frame
            } else {
                Pulled::Ended
            }),
            Feed::Live {
                latest,
                passthrough,
                packet,
                lost,
            } => {
                let taken = if *passthrough {
                    latest.next_compressed_timeout(packet, POLL)?
                } else {
                    latest.next_frame_timeout(frame, POLL)?
                };
                let name = latest.info().name;
                for event in latest.events() {
                    match event {
                        SourceEvent::Lost(why) => {
                            *lost = true;
                            println!(
                                "camera lost: {why}; viewers stay connected, retrying every second"
                            );
                        }
                        SourceEvent::Back => {
                            *lost = false;
                            println!("camera back: {name}");
                        }
                        _ => {}
                    }
                }
                Ok(match taken {
                    Taken::Frame if *passthrough => {
                        std::mem::swap(&mut packet.data, payload);
                        Pulled::Payload {
                            seq: packet.seq,
                            capture_us: packet.capture_us,
                        }
                    }
                    Taken::Frame => Pulled::Frame,
                    Taken::Timeout => Pulled::Nothing,
                    Taken::Ended => Pulled::Ended,
                })
            }
        }
    }

    /// Whether the camera is gone (viewers get the last frame again every [`KEEPALIVE`]).
    pub fn is_lost(&self) -> bool {
        matches!(self, Feed::Live { lost: true, .. })
    }

    /// Frames the camera delivered that a slow pipeline never took (newest frame wins).
    pub fn dropped(&self) -> u64 {
        match self {
            Feed::Direct(_) => 0,
            Feed::Live { latest, .. } => latest.dropped(),
        }
    }

    /// Keeps viewers' read timers happy while the camera is gone: true every [`KEEPALIVE`].
    pub fn keepalive_due(&self, last_sent: &mut Instant) -> bool {
        if self.is_lost() && last_sent.elapsed() >= KEEPALIVE {
            *last_sent = Instant::now();
            return true;
        }
        false
    }
}
