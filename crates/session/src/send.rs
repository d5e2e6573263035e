//! The send path: pull from a [`Feed`], encode each frame once per rendition of the
//! [`Ladder`] that some subscriber is on (rendition 0, the top rung, when none is placed yet) in
//! the [`stage`](crate::stage), and hand each frame's packets together to every [`Publisher`],
//! which gives each subscriber the packet of its rendition; every packet's size goes to the
//! ladder, for the publishers' choice of rung. Frames are pulled only while some publisher has
//! a subscriber; a camera that is lost gets its subscribers the last frame's packets again every
//! [`KEEPALIVE`], so they stay connected until it is back. A preview shows each frame at the top
//! rung's size, resized before the stage so that rendition 0 is not resized twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, Feed, Flow, Frame, FrameSink, Ladder, MAX_RENDITIONS, Packet, Publisher, Pulled,
    Rendition, Scaler, SinkError, SourceEvent,
};

use crate::stage::{Encoding, MakeEncoder, MakeScaler};

/// While the source is lost, the last frame's packets are sent again this often, so
/// subscribers (which give up after 15 s without data) stay connected until it is back.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// How long one wait for a subscriber lasts, so that a stop is seen in time.
const WAIT: Duration = Duration::from_millis(200);

/// What the send path is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SendConfig {
    /// Stop after sending this many frames.
    pub frames: Option<u64>,
    /// Lanes of the encode stage (the sending thread is one), at least 1.
    pub threads: usize,
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
        /// Frames per second.
        fps: f64,
        /// Megabits per second of payload, every rendition's.
        mbit_per_s: f64,
        /// Subscribers of every publisher.
        subscribers: usize,
        /// Each rendition some subscriber is on and how many are on it, best first.
        renditions: Vec<(Rendition, usize)>,
        /// Frames sent so far.
        frames: u64,
        /// Packets some subscriber missed because it was busy, over every publisher.
        dropped_for_slow: u64,
        /// Frames the source delivered that the pipeline never took.
        dropped_at_capture: u64,
    },
    /// The source ended after this many frames were sent.
    Ended {
        /// Frames sent.
        frames: u64,
    },
}

/// What a send session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// Frames sent (each in every rendition wanted then).
    pub frames: u64,
    /// Frames the source delivered that the pipeline never took (newest frame wins).
    pub dropped_at_capture: u64,
}

/// A preview: the sink, and what resizes frames to the top rung's size for it.
struct Preview {
    sink: Box<dyn FrameSink>,
    scaler: Box<dyn Scaler>,
    resized: Frame,
}

/// The send path, assembled. See the module doc.
pub struct Sender {
    feed: Box<dyn Feed>,
    publishers: Vec<Arc<dyn Publisher>>,
    ladder: Arc<Ladder>,
    /// Rendition 0, the top rung.
    top: Rendition,
    /// The renditions wanted for the frame being submitted.
    wanted: Vec<(usize, Rendition)>,
    stage: Encoding,
    preview: Option<Preview>,
    frames: Option<u64>,
    sent: Sent,
}

impl Sender {
    /// Assembles a send path. Each encode lane makes its encoders with `make_encoder` (rendition
    /// 0's now, so one that cannot be made fails here) and its scaler with `make_scaler`; the
    /// renditions encoded are those of `ladder` its subscribers are on, as the `publishers`
    /// place them. A `preview` sink is shown every frame before it is encoded, at the top rung's
    /// size.
    pub fn new(
        feed: Box<dyn Feed>,
        make_encoder: Arc<MakeEncoder>,
        make_scaler: &MakeScaler,
        ladder: Arc<Ladder>,
        publishers: Vec<Arc<dyn Publisher>>,
        preview: Option<Box<dyn FrameSink>>,
        config: &SendConfig,
    ) -> Result<Sender, SendError> {
        let top = ladder.placement(0).rendition;
        let preview = preview.map(|sink| Preview {
            sink,
            scaler: make_scaler(),
            resized: Frame::empty(feed.info().format),
        });
        Ok(Sender {
            stage: Encoding::new(make_encoder, make_scaler, config.threads.max(1), &top)?,
            feed,
            publishers,
            ladder,
            top,
            wanted: Vec::with_capacity(MAX_RENDITIONS),
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
                        && let Some(packets) = self.stage.finish()?
                    {
                        self.publish(packets);
                    }
                    on_event(SendEvent::Ended {
                        frames: self.sent.count,
                    });
                    return Ok(());
                }
                Pulled::Nothing => {
                    // A frame an encode lane finished meanwhile goes out now, not with the
                    // source's next frame, which may be long in coming.
                    if let Some(packets) = self.stage.next_ready()? {
                        self.publish(packets);
                    }
                    self.keep_alive();
                    continue;
                }
                Pulled::Frame => {
                    if self.show_preview(&mut frame)? == Flow::Stop {
                        return Ok(());
                    }
                    self.ladder.wanted(&mut self.wanted);
                    // A subscriber between its handshake and its place on the ladder is on
                    // no rendition yet: it gets the top one.
                    if self.wanted.is_empty() && self.subscribers() > 0 {
                        self.wanted.push((0, self.top));
                    }
                    let keyframes = self.ladder.keyframes_due(Instant::now());
                    self.stage.submit(&mut frame, &self.wanted, keyframes)?;
                }
                Pulled::Packet => {
                    self.stage.submit_packet(&mut packet);
                }
            }
            // One frame out per frame in: two published back to back would make every
            // subscriber's newest-wins slot drop the first.
            if let Some(packets) = self.stage.next_ready()? {
                self.publish(packets);
            }
            if let Some(live) = self.live() {
                on_event(live);
            }
        }
        Ok(())
    }

    /// Shows `frame` in the preview, resized first when its size is not the top rung's (in
    /// which case `frame` becomes the resized one, which the stage then encodes as it is).
    fn show_preview(&mut self, frame: &mut Frame) -> Result<Flow, SendError> {
        let Some(preview) = &mut self.preview else {
            return Ok(Flow::Continue);
        };
        let (w, h) = (self.top.stream.width, self.top.stream.height);
        if (frame.width, frame.height) != (w, h) {
            let resized = &mut preview.resized;
            preview.scaler.scale(frame, resized, w, h).map_err(|e| {
                SendError::Stage(format!(
                    "resizing frame {} to {w}x{h}: {}",
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

    /// While the source is lost, sends the last frame's packets again every [`KEEPALIVE`].
    fn keep_alive(&mut self) {
        if self.feed.is_lost() && self.sent.at.elapsed() >= KEEPALIVE && !self.sent.last.is_empty()
        {
            self.sent.at = Instant::now();
            for p in &self.publishers {
                p.publish(&self.sent.last);
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
            renditions: self.ladder.in_use(),
            frames: self.sent.count,
            dropped_for_slow: self.publishers.iter().map(|p| p.dropped_total()).sum(),
            dropped_at_capture: self.feed.dropped(),
        })
    }

    /// Records each packet's size on the ladder and hands the frame's packets, all at once, to
    /// every publisher; their buffers go back to the pool once the subscribers are done.
    fn publish(&mut self, packets: Vec<Arc<Packet>>) {
        if !packets.is_empty() {
            for p in &packets {
                self.ladder.record_size(p.rendition, p.payload.len());
            }
            for p in &self.publishers {
                p.publish(&packets);
            }
            self.sent.record(&packets);
        }
        self.stage.recycle(packets);
    }
}

/// What has been sent: the count of frames, the last frame's packets (sent again as a
/// keepalive) and when, and the live line's window.
struct Sent {
    count: u64,
    last: Vec<Arc<Packet>>,
    at: Instant,
    /// Start, frames and bytes of the live line's current window.
    window: (Instant, u64, u64),
}

impl Sent {
    fn new() -> Sent {
        Sent {
            count: 0,
            last: Vec::with_capacity(MAX_RENDITIONS),
            at: Instant::now(),
            window: (Instant::now(), 0, 0),
        }
    }

    fn record(&mut self, packets: &[Arc<Packet>]) {
        self.last.clear();
        self.last.extend(packets.iter().cloned());
        self.at = Instant::now();
        self.count += 1;
        self.window.1 += 1;
        self.window.2 += packets.iter().map(|p| p.payload.len() as u64).sum::<u64>();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use framewire_core::{PixelFormat, SourceInfo};

    use super::*;
    use crate::test_lanes::{encoders, read, rendition, scaler};

    /// `n` frames of 8x4, every byte the frame's number, then the end.
    struct Frames {
        n: u64,
        next: u64,
    }

    impl Feed for Frames {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                name: "frames".to_string(),
                width: 8,
                height: 4,
                format: PixelFormat::Rgb8,
                fps: 0.0,
            }
        }

        fn pull(&mut self, frame: &mut Frame, _: &mut Packet) -> Result<Pulled, CaptureError> {
            if self.next == self.n {
                return Ok(Pulled::Ended);
            }
            frame.reset(8, 4, PixelFormat::Rgb8);
            frame.seq = self.next;
            frame.pixels.fill(self.next as u8);
            self.next += 1;
            Ok(Pulled::Frame)
        }
    }

    /// What one publish was handed: each packet's frame, rendition and what it was encoded at.
    type Published = Vec<(u64, usize, (u32, u32, u8, u8))>;

    /// One subscriber, who joins the ladder's rung 1 after the third frame.
    struct Recorder {
        ladder: Arc<Ladder>,
        publishes: Mutex<Vec<Published>>,
    }

    impl Publisher for Recorder {
        fn describe(&self) -> String {
            "recorder".to_string()
        }

        fn publish(&self, packets: &[Arc<Packet>]) {
            let mut publishes = self.publishes.lock().unwrap();
            publishes.push(
                packets
                    .iter()
                    .map(|p| (p.seq, p.rendition, read(&p.payload)))
                    .collect(),
            );
            if publishes.len() == 3 {
                self.ladder.enter(1);
            }
        }

        fn subscribers(&self) -> usize {
            1
        }

        fn wait_for_subscriber(&self, _: Duration) -> usize {
            1
        }

        fn dropped_total(&self) -> u64 {
            0
        }

        fn shutdown(&self) {}
    }

    /// Records the frames it is shown: number and size.
    struct Shown(Arc<Mutex<Vec<(u64, u32, u32)>>>);

    impl FrameSink for Shown {
        fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
            let mut shown = self.0.lock().unwrap();
            shown.push((frame.seq, frame.width, frame.height));
            Ok(Flow::Continue)
        }
    }

    #[test]
    fn each_frame_is_published_once_in_the_renditions_subscribers_are_on() {
        for threads in 1..=3 {
            let (top, low) = (rendition(4, 2, 80), rendition(2, 1, 50));
            let ladder = Arc::new(Ladder::new(vec![top, low], false, None).unwrap());
            let recorder = Arc::new(Recorder {
                ladder: Arc::clone(&ladder),
                publishes: Mutex::new(Vec::new()),
            });
            let shown = Arc::new(Mutex::new(Vec::new()));
            let mut sender = Sender::new(
                Box::new(Frames { n: 10, next: 0 }),
                encoders(),
                &scaler,
                Arc::clone(&ladder),
                vec![recorder.clone() as Arc<dyn Publisher>],
                Some(Box::new(Shown(Arc::clone(&shown)))),
                &SendConfig {
                    frames: None,
                    threads,
                },
            )
            .unwrap();
            let report = sender.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
            assert_eq!(report.frames, 10, "{threads} threads");

            // The preview shows every frame at the top rung's size.
            let want: Vec<_> = (0..10).map(|seq| (seq, 4, 2)).collect();
            assert_eq!(*shown.lock().unwrap(), want, "{threads} threads");

            // One publish per frame, in order; the top rendition while nobody is placed on
            // the ladder, rung 1 alone once the subscriber is on it (frames in flight then
            // were asked for before).
            let publishes = recorder.publishes.lock().unwrap();
            assert_eq!(publishes.len(), 10, "{threads} threads");
            let mut moved = false;
            for (seq, packets) in publishes.iter().enumerate() {
                let seq = seq as u64;
                let [(s, id, at)] = packets[..] else {
                    panic!("{threads} threads: frame {seq} has packets {packets:?}");
                };
                assert_eq!(s, seq, "{threads} threads");
                moved |= id == 1;
                let want = if moved {
                    (1, (2, 1, 50, seq as u8))
                } else {
                    (0, (4, 2, 80, seq as u8))
                };
                assert_eq!((id, at), want, "{threads} threads: frame {seq}");
            }
            assert!(moved, "{threads} threads: the last frames are rung 1");
            if threads == 1 {
                assert_eq!(publishes[3][0].1, 1, "one lane: the frame after the move");
            }
            assert_eq!(
                ladder.rung_sizes(),
                [Some(10.0), Some(10.0)],
                "every packet's size is recorded"
            );
        }
    }

    #[test]
    fn the_frame_limit_counts_frames_not_packets() {
        let ladder = Arc::new(
            Ladder::new(vec![rendition(8, 4, 80), rendition(4, 2, 50)], false, None).unwrap(),
        );
        ladder.enter(0);
        ladder.enter(1);
        let recorder = Arc::new(Recorder {
            ladder: Arc::clone(&ladder),
            publishes: Mutex::new(Vec::new()),
        });
        let mut sender = Sender::new(
            Box::new(Frames { n: 10, next: 0 }),
            encoders(),
            &scaler,
            Arc::clone(&ladder),
            vec![recorder.clone() as Arc<dyn Publisher>],
            None,
            &SendConfig {
                frames: Some(4),
                threads: 2,
            },
        )
        .unwrap();
        let report = sender.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(report.frames, 4);
        let publishes = recorder.publishes.lock().unwrap();
        let ids: Vec<Vec<usize>> = publishes
            .iter()
            .map(|p| p.iter().map(|&(_, id, _)| id).collect())
            .collect();
        assert_eq!(ids, vec![vec![0, 1]; 4], "both renditions, in one publish");
    }
}
