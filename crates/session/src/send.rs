//! The send path: pull from a [`Feed`], resize, encode once in the [`stage`](crate::stage), and
//! hand every packet to every [`Publisher`]. Frames are pulled only while some publisher has a
//! subscriber; a camera that is lost gets its subscribers the last packet again every
//! [`KEEPALIVE`], so they stay connected until it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, Feed, Flow, Frame, FrameSink, Packet, Publisher, Pulled, Scaler, SinkError,
    SourceEvent,
};

use crate::stage::{Encoding, MakeLane};

/// While the source is lost, the last packet is sent again this often, so subscribers (which
/// give up after 15 s without data) stay connected until it is back.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// How long one wait for a subscriber lasts, so that a stop is seen in time.
const WAIT: Duration = Duration::from_millis(200);

/// What the send path is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SendConfig {
    /// Stop after sending this many packets.
    pub frames: Option<u64>,
    /// Lanes of the encode stage (the sending thread is one), at least 1.
    pub threads: usize,
    /// Resize every frame to exactly this size before encoding.
    pub resize_to: Option<(u32, u32)>,
}

/// What went wrong on the send path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The source failed.
    #[error("capturing a frame")]
    Capture(#[source] CaptureError),
    /// A frame could not be resized or encoded, or the stage failed; the message names the frame.
    #[error("{0}")]
    Stage(String),
    /// The preview sink failed.
    #[error("showing the frame")]
    Preview(#[source] SinkError),
}

/// Something the caller may want to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub enum SendEvent {
    /// The source was lost, or came back.
    Source(SourceEvent),
    /// About once a second while sending: the last second's rates and the totals.
    Live {
        /// Packets per second.
        fps: f64,
        /// Megabits per second of payload.
        mbit_per_s: f64,
        /// Subscribers of every publisher.
        subscribers: usize,
        /// Packets sent so far.
        frames: u64,
        /// Packets some subscriber missed because it was busy, over every publisher.
        dropped_for_slow: u64,
        /// Frames the source delivered that the pipeline never took.
        dropped_at_capture: u64,
    },
    /// The source ended after this many packets were sent.
    Ended {
        /// Packets sent.
        frames: u64,
    },
}

/// What a send session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// Packets sent.
    pub frames: u64,
    /// Frames the source delivered that the pipeline never took (newest frame wins).
    pub dropped_at_capture: u64,
}

/// A preview: the sink, and what resizes for it when the stream is resized.
struct Preview {
    sink: Box<dyn FrameSink>,
    resize: Option<PreviewResize>,
}

/// The scaler, its output buffer and the size it resizes to.
struct PreviewResize {
    scaler: Box<dyn Scaler>,
    resized: Frame,
    size: (u32, u32),
}

/// The send path, assembled. See the module doc.
pub struct Sender {
    feed: Box<dyn Feed>,
    publishers: Vec<Arc<dyn Publisher>>,
    stage: Encoding,
    preview: Option<Preview>,
    frames: Option<u64>,
    sent: Sent,
}

impl Sender {
    /// Assembles a send path: `make_lane` builds each encode lane's encoder and scaler; a
    /// `preview` sink is shown every frame before it is encoded (resized, when the stream is).
    pub fn new(
        feed: Box<dyn Feed>,
        make_lane: &MakeLane,
        publishers: Vec<Arc<dyn Publisher>>,
        preview: Option<Box<dyn FrameSink>>,
        config: &SendConfig,
    ) -> Result<Sender, SendError> {
        // With a preview, the frame is resized here first, so the stage only encodes.
        let (stage_resize, preview) = match (preview, config.resize_to) {
            (Some(sink), Some(size)) => {
                let (_, scaler) = make_lane()?;
                let resize = Some(PreviewResize {
                    scaler,
                    resized: Frame::empty(feed.info().format),
                    size,
                });
                (None, Some(Preview { sink, resize }))
            }
            (Some(sink), None) => (None, Some(Preview { sink, resize: None })),
            (None, resize) => (resize, None),
        };
        Ok(Sender {
            stage: Encoding::new(make_lane, config.threads.max(1), stage_resize)?,
            feed,
            publishers,
            preview,
            frames: config.frames,
            sent: Sent::new(),
        })
    }

    /// Sends until `stop` is set, the source ends, `--frames` is reached or the preview is
    /// closed; then shuts every publisher down.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(SendEvent),
    ) -> Result<SendReport, SendError> {
        let result = self.send(stop, on_event);
        for p in &self.publishers {
            p.shutdown();
        }
        result.map(|()| SendReport {
            frames: self.sent.count,
            dropped_at_capture: self.feed.dropped(),
        })
    }

    fn limit_left(&self) -> bool {
        self.frames.is_none_or(|n| self.sent.count < n)
    }

    fn subscribers(&self) -> usize {
        self.publishers.iter().map(|p| p.subscribers()).sum()
    }

    /// Waits a little for a first subscriber on any publisher.
    fn wait_for_subscriber(&self) {
        let each = WAIT / self.publishers.len().max(1) as u32;
        for p in &self.publishers {
            if p.wait_for_subscriber(each) > 0 {
                return;
            }
        }
    }

    fn send(
        &mut self,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(SendEvent),
    ) -> Result<(), SendError> {
        let mut frame = Frame::empty(self.feed.info().format);
        let mut packet = Packet::default();
        while !stop.load(Ordering::SeqCst) && self.limit_left() {
            if self.subscribers() == 0 {
                self.wait_for_subscriber();
                continue;
            }
            let pulled = self
                .feed
                .pull(&mut frame, &mut packet)
                .map_err(SendError::Capture)?;
            for event in self.feed.events() {
                on_event(SendEvent::Source(event));
            }
            match pulled {
                Pulled::Ended => {
                    // Frames still in the encode stage are sent before the stream ends.
                    while self.limit_left()
                        && let Some(p) = self.stage.finish()?
                    {
                        self.publish(p);
                    }
                    on_event(SendEvent::Ended {
                        frames: self.sent.count,
                    });
                    return Ok(());
                }
                Pulled::Nothing => {
                    self.keep_alive();
                    continue;
                }
                Pulled::Frame => {
                    if self.show_preview(&mut frame)? == Flow::Stop {
                        return Ok(());
                    }
                    self.stage.submit(&mut frame)?;
                }
                Pulled::Packet => {
                    packet.keyframe = true;
                    self.stage.submit_packet(&mut packet);
                }
            }
            // One packet out per frame in: two published back to back would make every
            // subscriber's newest-wins slot drop the first.
            if let Some(p) = self.stage.next_ready()? {
                self.publish(p);
            }
            if let Some(live) = self.live() {
                on_event(live);
            }
        }
        Ok(())
    }

    /// Shows `frame` in the preview (resizing it first when the stream is resized, in which
    /// case `frame` becomes the resized one).
    fn show_preview(&mut self, frame: &mut Frame) -> Result<Flow, SendError> {
        let Some(preview) = &mut self.preview else {
            return Ok(Flow::Continue);
        };
        if let Some(PreviewResize {
            scaler,
            resized,
            size: (w, h),
        }) = &mut preview.resize
        {
            scaler.scale(frame, resized, *w, *h).map_err(|e| {
                SendError::Stage(format!(
                    "resizing frame {}: {}",
                    frame.seq,
                    crate::chain(&e)
                ))
            })?;
            resized.seq = frame.seq;
            resized.capture_us = frame.capture_us;
            std::mem::swap(frame, resized);
        }
        preview.sink.show(frame).map_err(SendError::Preview)
    }

    /// While the source is lost, sends the last packet again every [`KEEPALIVE`].
    fn keep_alive(&mut self) {
        if self.feed.is_lost()
            && self.sent.at.elapsed() >= KEEPALIVE
            && let Some(last) = &self.sent.last
        {
            self.sent.at = Instant::now();
            for p in &self.publishers {
                p.publish(last);
            }
        }
    }

    /// The live figures, once a second.
    fn live(&mut self) -> Option<SendEvent> {
        let (since, frames, bytes) = self.sent.window;
        let secs = since.elapsed().as_secs_f64();
        if secs < 1.0 {
            return None;
        }
        self.sent.window = (Instant::now(), 0, 0);
        Some(SendEvent::Live {
            fps: frames as f64 / secs,
            mbit_per_s: bytes as f64 * 8.0 / secs / 1e6,
            subscribers: self.subscribers(),
            frames: self.sent.count,
            dropped_for_slow: self.publishers.iter().map(|p| p.dropped_total()).sum(),
            dropped_at_capture: self.feed.dropped(),
        })
    }

    /// Sends `packet` to every subscriber; its buffer goes back to the pool once they are done.
    fn publish(&mut self, packet: Arc<Packet>) {
        for p in &self.publishers {
            p.publish(&packet);
        }
        self.sent.record(&packet);
        self.stage.recycle(packet);
    }
}

/// What has been sent: the count, the last packet (sent again as a keepalive) and when, and
/// the live line's window.
struct Sent {
    count: u64,
    last: Option<Arc<Packet>>,
    at: Instant,
    /// Start, packets and bytes of the live line's current window.
    window: (Instant, u64, u64),
}

impl Sent {
    fn new() -> Sent {
        Sent {
            count: 0,
            last: None,
            at: Instant::now(),
            window: (Instant::now(), 0, 0),
        }
    }

    fn record(&mut self, packet: &Arc<Packet>) {
        self.last = Some(Arc::clone(packet));
        self.at = Instant::now();
        self.count += 1;
        self.window.1 += 1;
        self.window.2 += packet.payload.len() as u64;
    }
}
