//! [`LatestFrame`]: runs any source on its own thread and keeps only the newest frame in a
//! one-frame slot (core's [`Latest`]), so a slow encoder or network never builds a backlog;
//! frames overwritten before they were taken are counted, and show as gaps in `seq` downstream. It can also reopen
//! a source that failed (a camera unplugged), reporting the loss and the return as events.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, Latest, SourceEvent, SourceInfo,
    Waited,
};

/// Opens the source again after it failed; called every retry interval until it succeeds.
pub type Reopen = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>;

/// A consumer that asked for a frame within this long is active: frames overwritten while it is
/// active count as dropped. Frames overwritten while nobody asks (no viewer) are not drops.
const ACTIVE: Duration = Duration::from_secs(1);

/// What a wait for a frame gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// A new frame was handed over.
    Frame,
    /// No new frame within the timeout (the source is slow, or lost and being reopened).
    Timeout,
    /// The source ended.
    Ended,
}

/// Runs a [`FrameSource`] on its own thread and hands over only the newest frame.
///
/// The slot holds one frame; taking it swaps buffers with the caller, so the steady state
/// allocates nothing. `seq` stays the source's own numbering (continued after a reopen), so a
/// frame overwritten in the slot is a gap that a viewer counts as dropped; [`LatestFrame::dropped`]
/// counts the same frames on this side.
pub struct LatestFrame {
    shared: Arc<Shared>,
    info: SourceInfo,
    compressed: Option<CodecKind>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// The newest frame (decoded sources); woken for an event, closed at the end.
    frames: Latest<Frame>,
    /// The newest compressed frame (sources started with `compressed`); the same signals.
    packets: Latest<CompressedFrame>,
    state: Mutex<State>,
    /// Signalled when the consumer stops everything (the producer waits on it between retries).
    stop: Condvar,
}

struct State {
    events: VecDeque<SourceEvent>,
    failure: Option<CaptureError>,
    stopping: bool,
    last_ask: Instant,
}

impl LatestFrame {
    /// Starts `source` on its own thread, handing over decoded frames. The thread stops when the
    /// source ends or fails (the failure is returned by the next take).
    pub fn spawn(source: Box<dyn FrameSource>) -> Result<LatestFrame, CaptureError> {
        LatestFrame::start(source, false, None)
    }

    /// Like [`LatestFrame::spawn`], with the choices a server makes: `compressed` hands over the
    /// source's compressed frames ([`FrameSource::next_compressed`]) instead of decoded ones;
    /// `reopen`, when given, is called every `retry` after the source fails, until it opens again
    /// (the failure and the return are [`SourceEvent`]s, and the stream goes on).
    pub fn spawn_with(
        source: Box<dyn FrameSource>,
        compressed: bool,
        reopen: Option<(Duration, Reopen)>,
    ) -> Result<LatestFrame, CaptureError> {
        LatestFrame::start(source, compressed, reopen)
    }

    fn start(
        source: Box<dyn FrameSource>,
        compressed: bool,
        reopen: Option<(Duration, Reopen)>,
    ) -> Result<LatestFrame, CaptureError> {
        let info = source.info();
        let codec = source.compressed_codec();
        if compressed && codec.is_none() {
            return Err(CaptureError::Config(format!(
                "{} has no compressed frames to hand over",
                info.name
            )));
        }
        let shared = Arc::new(Shared {
            frames: Latest::new(),
            packets: Latest::new(),
            state: Mutex::new(State {
                events: VecDeque::new(),
                failure: None,
                stopping: false,
                last_ask: Instant::now(),
            }),
            stop: Condvar::new(),
        });
        let producer = Producer {
            shared: Arc::clone(&shared),
            source,
            compressed,
            reopen,
            seq_base: 0,
            last_seq: None,
        };
        let thread = thread::Builder::new()
            .name(format!("capture {}", info.name))
            .spawn(move || producer.run())
            .map_err(|e| CaptureError::Backend {
                context: "cannot start the capture thread".to_string(),
                source: Box::new(e),
            })?;
        Ok(LatestFrame {
            shared,
            info,
            compressed: codec,
            thread: Some(thread),
        })
    }

    /// Frames the source delivered that were overwritten before they were taken, while the
    /// consumer was asking for frames.
    pub fn dropped(&self) -> u64 {
        self.shared.frames.dropped() + self.shared.packets.dropped()
    }

    /// Takes what happened to the source since the last call, oldest first.
    pub fn events(&self) -> Vec<SourceEvent> {
        self.shared.lock().events.drain(..).collect()
    }

    /// Waits up to `timeout` for a frame newer than the last one taken and swaps it into `dst`.
    pub fn next_frame_timeout(
        &mut self,
        dst: &mut Frame,
        timeout: Duration,
    ) -> Result<Taken, CaptureError> {
        self.take(&self.shared.frames, dst, timeout)
    }

    /// Like [`LatestFrame::next_frame_timeout`] for a source started with `compressed`.
    pub fn next_compressed_timeout(
        &mut self,
        dst: &mut CompressedFrame,
        timeout: Duration,
    ) -> Result<Taken, CaptureError> {
        self.take(&self.shared.packets, dst, timeout)
    }

    /// Takes from `slot` into `dst`, giving `dst`'s old buffer back for the producer's next
    /// frame. Returns at once, without a frame, when the source has news (an event).
    fn take<T>(
        &self,
        slot: &Latest<T>,
        dst: &mut T,
        timeout: Duration,
    ) -> Result<Taken, CaptureError> {
        let deadline = Instant::now() + timeout;
        self.shared.lock().last_ask = Instant::now();
        let got = match slot.take() {
            Some(v) => Waited::Value(v),
            None if !slot.is_closed() && !self.shared.lock().events.is_empty() => {
                return Ok(Taken::Timeout);
            }
            None => slot.wait(Some(deadline)),
        };
        self.shared.lock().last_ask = Instant::now();
        match got {
            Waited::Value(mut v) => {
                std::mem::swap(dst, &mut v);
                slot.give_back(v);
                Ok(Taken::Frame)
            }
            Waited::Closed => match self.shared.lock().failure.take() {
                Some(e) => Err(e),
                None => Ok(Taken::Ended),
            },
            Waited::Timeout => Ok(Taken::Timeout),
        }
    }
}

impl FrameSource for LatestFrame {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    /// Blocks until a frame newer than the last one taken is there.
    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        loop {
            match self.next_frame_timeout(dst, Duration::from_secs(3600))? {
                Taken::Frame => return Ok(true),
                Taken::Ended => return Ok(false),
                Taken::Timeout => continue,
            }
        }
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        self.compressed
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        loop {
            match self.next_compressed_timeout(dst, Duration::from_secs(3600))? {
                Taken::Frame => return Ok(true),
                Taken::Ended => return Ok(false),
                Taken::Timeout => continue,
            }
        }
    }
}

impl Drop for LatestFrame {
    /// Tells the capture thread to stop. It is not joined: a camera read may block for a frame
    /// time, and the thread exits on its own after that.
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.stop.notify_all();
        drop(self.thread.take());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event` and wakes a waiting consumer to read it.
    fn event(&self, event: SourceEvent) {
        self.lock().events.push_back(event);
        self.frames.wake();
        self.packets.wake();
    }

    /// The source ended (with `failure`, when it failed): frames still in a slot are handed
    /// out, then the end.
    fn end(&self, failure: Option<CaptureError>) {
        self.lock().failure = failure;
        self.frames.close();
        self.packets.close();
    }
}

struct Producer {
    shared: Arc<Shared>,
    source: Box<dyn FrameSource>,
    compressed: bool,
    reopen: Option<(Duration, Reopen)>,
    /// Added to the source's `seq`, so numbering goes on after a reopen.
    seq_base: u64,
    last_seq: Option<u64>,
}

impl Producer {
    fn run(mut self) {
        let info = self.source.info();
        let mut frame = Frame::empty(info.format);
        let codec = self.source.compressed_codec().unwrap_or(CodecKind::Raw);
        let mut packet = CompressedFrame::empty(codec);
        loop {
            if self.shared.lock().stopping {
                return;
            }
            let got = if self.compressed {
                self.source.next_compressed(&mut packet)
            } else {
                self.source.next_frame(&mut frame)
            };
            match got {
                Ok(true) => {
                    let seq = if self.compressed {
                        &mut packet.seq
                    } else {
                        &mut frame.seq
                    };
                    *seq = seq.saturating_add(self.seq_base);
                    self.last_seq = Some(*seq);
                    // Overwriting a frame counts as a drop only while someone is asking.
                    let active = self.shared.lock().last_ask.elapsed() < ACTIVE;
                    if self.compressed {
                        let full = std::mem::replace(&mut packet, CompressedFrame::empty(codec));
                        if let Some(spare) = self.shared.packets.put_counting(full, active) {
                            packet = spare;
                        }
                    } else {
                        let full = std::mem::replace(&mut frame, Frame::empty(info.format));
                        if let Some(spare) = self.shared.frames.put_counting(full, active) {
                            frame = spare;
                        }
                    }
                }
                Ok(false) => {
                    self.shared.end(None);
                    return;
                }
                Err(e) => {
                    if !self.recover(&info, e) {
                        return;
                    }
                }
            }
        }
    }

    /// Reports `error`, then reopens the source every retry interval until it opens with the
    /// same size and format, or the consumer stops. Without `reopen`, `error` ends the stream.
    fn recover(&mut self, info: &SourceInfo, error: CaptureError) -> bool {
        let Some((retry, reopen)) = self.reopen.as_mut() else {
            self.shared.end(Some(error));
            return false;
        };
        tracing::warn!(source = %info.name, %error, "source lost, reopening");
        self.shared.event(SourceEvent::Lost(error.to_string()));
        // Release the device before trying to open it again.
        self.source = Box::new(Gone);
        loop {
            let state = self.shared.lock();
            let state = self
                .shared
                .stop
                .wait_timeout_while(state, *retry, |s| !s.stopping)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if state.stopping {
                return false;
            }
            drop(state);
            match reopen() {
                Ok(source) => {
                    let again = source.info();
                    if (again.width, again.height, again.format)
                        != (info.width, info.height, info.format)
                    {
                        tracing::warn!(
                            source = %info.name,
                            "source came back as {}x{} {}, waiting for {}x{} {}",
                            again.width, again.height, again.format,
                            info.width, info.height, info.format
                        );
                        continue;
                    }
                    self.source = source;
                    self.seq_base = self.last_seq.map_or(0, |s| s + 1);
                    self.shared.event(SourceEvent::Back);
                    return true;
                }
                Err(e) => tracing::debug!(source = %info.name, error = %e, "still gone"),
            }
        }
    }
}

/// Stands in for a source that failed while it is being reopened.
struct Gone;

impl FrameSource for Gone {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "a lost source".to_string(),
            width: 0,
            height: 0,
            format: framewire_core::PixelFormat::Rgb8,
            fps: 0.0,
        }
    }

    fn next_frame(&mut self, _dst: &mut Frame) -> Result<bool, CaptureError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use framewire_core::PixelFormat;
    use framewire_pattern::{TestPattern, read_frame_number};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// Frames numbered from 0, failing (a camera unplugged) or ending after `len` frames.
    struct Script {
        next: u64,
        len: u64,
        fail: bool,
        compressed: bool,
    }

    impl Script {
        fn boxed(len: u64, fail: bool, compressed: bool) -> Box<dyn FrameSource> {
            Box::new(Script {
                next: 0,
                len,
                fail,
                compressed,
            })
        }

        fn step(&mut self) -> Result<Option<u64>, CaptureError> {
            if self.next == self.len {
                if self.fail {
                    return Err(CaptureError::Device {
                        source_name: "script".into(),
                        reason: "unplugged".into(),
                    });
                }
                return Ok(None);
            }
            self.next += 1;
            Ok(Some(self.next - 1))
        }
    }

    impl FrameSource for Script {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                name: "script".into(),
                width: 4,
                height: 2,
                format: PixelFormat::Rgb8,
                fps: 0.0,
            }
        }

        fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
            let Some(seq) = self.step()? else {
                return Ok(false);
            };
            dst.reset(4, 2, PixelFormat::Rgb8);
            dst.seq = seq;
            Ok(true)
        }

        fn compressed_codec(&self) -> Option<CodecKind> {
            self.compressed.then_some(CodecKind::Jpeg)
        }

        fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
            let Some(seq) = self.step()? else {
                return Ok(false);
            };
            dst.data.clear();
            dst.data.extend_from_slice(&seq.to_le_bytes());
            dst.seq = seq;
            Ok(true)
        }
    }

    fn take_all(latest: &mut LatestFrame) -> Result<Vec<u64>, CaptureError> {
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        let mut seqs = Vec::new();
        loop {
            match latest.next_frame_timeout(&mut frame, WAIT)? {
                Taken::Frame => seqs.push(frame.seq),
                Taken::Ended => return Ok(seqs),
                Taken::Timeout if latest.shared.lock().events.is_empty() => {
                    panic!("no frame within {WAIT:?}")
                }
                Taken::Timeout => {}
            }
        }
    }

    #[test]
    fn a_slow_consumer_gets_the_newest_frames_and_the_gaps_are_counted() {
        let pattern = TestPattern::new(64, 48, 0.0).unwrap();
        let mut latest = LatestFrame::spawn(Box::new(pattern)).unwrap();
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        let mut seqs = Vec::new();
        for _ in 0..10 {
            assert_eq!(
                latest.next_frame_timeout(&mut frame, WAIT).unwrap(),
                Taken::Frame
            );
            assert_eq!(read_frame_number(&frame), Some(frame.seq & 0xFFFF_FFFF));
            seqs.push(frame.seq);
            // A slow encoder: the unpaced pattern renders many frames meanwhile.
            thread::sleep(Duration::from_millis(20));
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let gaps = seqs.windows(2).map(|w| w[1] - w[0] - 1).sum::<u64>() + seqs[0];
        let dropped = latest.dropped();
        assert!(
            gaps > 0,
            "an unpaced source outruns a 20 ms consumer: {seqs:?}"
        );
        assert!(
            dropped >= gaps,
            "every gap in seq is a counted drop: {dropped} < {gaps}"
        );
    }

    #[test]
    fn a_finite_source_ends_and_a_failure_is_handed_over() {
        let mut latest = LatestFrame::spawn(Script::boxed(3, false, false)).unwrap();
        let seqs = take_all(&mut latest).unwrap();
        assert!(seqs.last() == Some(&2), "{seqs:?}");

        let mut latest = LatestFrame::spawn(Script::boxed(2, true, false)).unwrap();
        let err = take_all(&mut latest).unwrap_err();
        assert_eq!(err.to_string(), "script failed: unplugged");
    }

    #[test]
    fn a_lost_source_is_reopened_and_numbering_goes_on() {
        let opened = Arc::new(AtomicU32::new(0));
        let count = Arc::clone(&opened);
        let reopen: Reopen = Box::new(move || match count.fetch_add(1, Ordering::SeqCst) {
            0 => Err(CaptureError::Open {
                source_name: "script".into(),
                reason: "not back yet".into(),
            }),
            1 => Ok(Script::boxed(2, true, false)),
            _ => Ok(Script::boxed(2, false, false)),
        });
        let mut latest = LatestFrame::spawn_with(
            Script::boxed(2, true, false),
            false,
            Some((Duration::from_millis(1), reopen)),
        )
        .unwrap();
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        let mut seqs = Vec::new();
        let mut events = Vec::new();
        loop {
            let taken = latest.next_frame_timeout(&mut frame, WAIT).unwrap();
            events.extend(latest.events());
            match taken {
                Taken::Frame => seqs.push(frame.seq),
                Taken::Ended => break,
                Taken::Timeout => {}
            }
        }
        assert_eq!(
            events,
            [
                SourceEvent::Lost("script failed: unplugged".into()),
                SourceEvent::Back,
                SourceEvent::Lost("script failed: unplugged".into()),
                SourceEvent::Back,
            ]
        );
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(
            seqs.last(),
            Some(&5),
            "three sources of two frames: {seqs:?}"
        );
        assert_eq!(opened.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn compressed_frames_are_handed_over_as_they_came() {
        let mut latest =
            LatestFrame::spawn_with(Script::boxed(1, false, true), true, None).unwrap();
        assert_eq!(latest.compressed_codec(), Some(CodecKind::Jpeg));
        let mut packet = CompressedFrame::empty(CodecKind::Jpeg);
        assert!(latest.next_compressed(&mut packet).unwrap());
        assert_eq!(packet.data, 0u64.to_le_bytes());
        assert!(!latest.next_compressed(&mut packet).unwrap());

        let err = LatestFrame::spawn_with(Script::boxed(1, false, false), true, None)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid source settings: script has no compressed frames to hand over"
        );
    }
}
