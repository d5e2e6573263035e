//! [`open_feed`]: a source as the send path pulls it ([`Feed`]). The test pattern renders a
//! frame when asked; a camera runs on its own thread ([`LatestFrame`]), is reopened when it
//! disappears, and its MJPEG may pass through as it is. A file is read in the sending loop,
//! its compressed frames passed through when it is a recording or when asked.

use std::time::Duration;

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Feed, Frame, FrameSource, Packet, Pulled,
    SourceEvent, SourceInfo,
};

use crate::{LatestFrame, SourceSpec, Taken, reopener};

/// How long one wait for a frame lasts, so that a stop and subscribers are seen in time.
const POLL: Duration = Duration::from_millis(200);

/// Wraps an opened `source` for the send path. Cameras go on their own thread and are reopened
/// when they disappear; their JPEG passes through as it is when `passthrough` asks for that
/// codec and the camera sends it. Other sources are pulled as they are.
pub fn open_feed(
    source: Box<dyn FrameSource>,
    spec: &SourceSpec,
    size: (u32, u32),
    fps: f64,
    passthrough: Option<CodecKind>,
) -> Result<Box<dyn Feed>, CaptureError> {
    if matches!(spec, SourceSpec::Test(_)) {
        return Ok(Box::new(Direct(source)));
    }
    if let SourceSpec::File(_) = spec {
        // A file is read in the sending loop, like the test pattern: it never gets lost, and
        // it waits for the pipeline instead of dropping frames. A recording is always passed
        // through; an MJPEG file when asked.
        let codec = source.compressed_codec();
        let pass = source.compressed_only() || (passthrough.is_some() && codec == passthrough);
        return Ok(match codec.filter(|_| pass) {
            Some(codec) => Box::new(Passing(source, CompressedFrame::empty(codec))),
            None => Box::new(Direct(source)),
        });
    }
    let codec = source.compressed_codec();
    // An RTSP camera's H.264 has no frames to decode here: it always passes through.
    let passthrough = source.compressed_only() || (passthrough.is_some() && codec == passthrough);
    let reopen = reopener(spec, size.0, size.1, fps);
    let latest = LatestFrame::spawn_with(source, passthrough, reopen)?;
    Ok(Box::new(Live {
        latest,
        passthrough: codec.filter(|_| passthrough),
        compressed: CompressedFrame::empty(codec.unwrap_or(CodecKind::Raw)),
        lost: false,
        last_seq: None,
    }))
}

/// A source pulled in the sending loop.
struct Direct(Box<dyn FrameSource>);

impl Feed for Direct {
    fn info(&self) -> SourceInfo {
        self.0.info()
    }

    fn pull(&mut self, frame: &mut Frame, _packet: &mut Packet) -> Result<Pulled, CaptureError> {
        Ok(if self.0.next_frame(frame)? {
            Pulled::Frame
        } else {
            Pulled::Ended
        })
    }
}

/// A source whose compressed frames are passed through, pulled in the sending loop.
struct Passing(Box<dyn FrameSource>, CompressedFrame);

impl Feed for Passing {
    fn info(&self) -> SourceInfo {
        self.0.info()
    }

    fn pull(&mut self, _frame: &mut Frame, packet: &mut Packet) -> Result<Pulled, CaptureError> {
        let compressed = &mut self.1;
        if !self.0.next_compressed(compressed)? {
            return Ok(Pulled::Ended);
        }
        std::mem::swap(&mut compressed.data, &mut packet.payload);
        packet.seq = compressed.seq;
        packet.capture_us = compressed.capture_us;
        packet.keyframe = compressed.keyframe;
        Ok(Pulled::Packet)
    }

    fn passthrough(&self) -> Option<CodecKind> {
        Some(self.1.codec)
    }
}

/// A camera on its own thread.
struct Live {
    latest: LatestFrame,
    /// The codec passed through, when passing through.
    passthrough: Option<CodecKind>,
    compressed: CompressedFrame,
    lost: bool,
    /// The last packet handed on, for an inter-frame codec's rule: after a frame the slot
    /// replaced (a gap in the numbers), deltas are skipped until a keyframe.
    last_seq: Option<u64>,
}

impl Feed for Live {
    fn info(&self) -> SourceInfo {
        self.latest.info()
    }

    fn pull(&mut self, frame: &mut Frame, packet: &mut Packet) -> Result<Pulled, CaptureError> {
        let taken = if self.passthrough.is_some() {
            self.latest
                .next_compressed_timeout(&mut self.compressed, POLL)?
        } else {
            self.latest.next_frame_timeout(frame, POLL)?
        };
        Ok(match taken {
            Taken::Frame if self.passthrough.is_some() => {
                let inter = self.passthrough.is_some_and(|c| !c.is_intra_only());
                let follows = self.last_seq.is_some_and(|s| s + 1 == self.compressed.seq);
                if inter && !self.compressed.keyframe && !follows {
                    // A delta whose predecessor never came decodes to a broken picture.
                    self.last_seq = None;
                    return Ok(Pulled::Nothing);
                }
                self.last_seq = Some(self.compressed.seq);
                std::mem::swap(&mut self.compressed.data, &mut packet.payload);
                packet.seq = self.compressed.seq;
                packet.capture_us = self.compressed.capture_us;
                packet.keyframe = self.compressed.keyframe;
                Pulled::Packet
            }
            Taken::Frame => Pulled::Frame,
            Taken::Timeout => Pulled::Nothing,
            Taken::Ended => Pulled::Ended,
        })
    }

    fn passthrough(&self) -> Option<CodecKind> {
        self.passthrough
    }

    fn events(&mut self) -> Vec<SourceEvent> {
        let events = self.latest.events();
        for e in &events {
            match e {
                SourceEvent::Lost(_) => self.lost = true,
                SourceEvent::Back => self.lost = false,
                _ => {}
            }
        }
        events
    }

    fn is_lost(&self) -> bool {
        self.lost
    }

    fn dropped(&self) -> u64 {
        self.latest.dropped()
    }
}
