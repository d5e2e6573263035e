//! Frames a program hands over itself (a binding's `send(frame)`), as the send path pulls them:
//! a [`Pusher`] puts each frame into a newest-wins slot, and the [`PushedFeed`] hands the send
//! path the newest one. A frame replaced before the send path took it (nobody watching, or
//! encoding slower than frames come) is counted as dropped, so the program never waits on the
//! network and never builds a backlog. A program that would rather wait than have frames
//! dropped waits until the send path is done with the frame before ([`Pusher::wait_sent`]).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, Feed, Frame, Latest, Packet, PixelFormat, Pulled, SourceInfo, Waited,
};

/// How long one pull waits for a frame before it lets the send path look around.
const POLL: Duration = Duration::from_millis(100);

/// The program's end: hands frames in.
#[derive(Debug, Clone)]
pub struct Pusher {
    slot: Arc<Latest<Frame>>,
    progress: Arc<Progress>,
    size: (u32, u32),
    format: PixelFormat,
}

/// The send path's end: the newest frame handed in.
#[derive(Debug)]
pub struct PushedFeed {
    slot: Arc<Latest<Frame>>,
    progress: Arc<Progress>,
    info: SourceInfo,
    /// The number of the frame it handed the send path last.
    pulled: Option<u64>,
}

/// How far the send path is: the frame handed in last, and the last one it is done with (it
/// is done with a frame when it comes back for the next).
#[derive(Debug, Default)]
struct Progress {
    /// `(handed in, done with)`, as the frames' numbers.
    seqs: Mutex<(Option<u64>, Option<u64>)>,
    changed: Condvar,
}

impl Progress {
    fn update(&self, f: impl FnOnce(&mut (Option<u64>, Option<u64>))) {
        f(&mut self.seqs.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }

    /// Waits until the frame handed in last is done with, or `deadline` passes; whether it is.
    fn wait_done(&self, deadline: Instant) -> bool {
        let seqs = self.seqs.lock().unwrap_or_else(PoisonError::into_inner);
        let left = deadline.saturating_duration_since(Instant::now());
        let behind = |&mut (pushed, done): &mut (Option<u64>, Option<u64>)| pushed > done;
        let (seqs, _) = self
            .changed
            .wait_timeout_while(seqs, left, behind)
            .unwrap_or_else(PoisonError::into_inner);
        seqs.0 <= seqs.1
    }
}

/// A slot for frames of `width` x `height` in `format` at about `fps` (0: as they come), named
/// `name` in messages: the program's end and the send path's.
pub fn pushed(
    name: &str,
    (width, height): (u32, u32),
    format: PixelFormat,
    fps: f64,
) -> (Pusher, PushedFeed) {
    let slot = Arc::new(Latest::new());
    let progress = Arc::new(Progress::default());
    let info = SourceInfo {
        name: name.to_string(),
        width,
        height,
        format,
        fps,
    };
    let pusher = Pusher {
        slot: Arc::clone(&slot),
        progress: Arc::clone(&progress),
        size: (width, height),
        format,
    };
    (
        pusher,
        PushedFeed {
            slot,
            progress,
            info,
            pulled: None,
        },
    )
}

/// Why a frame was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// The frame has another size than the stream.
    #[error("the frame is {got_w}x{got_h}; this stream is {want_w}x{want_h}")]
    Size {
        /// The frame's width.
        got_w: u32,
        /// The frame's height.
        got_h: u32,
        /// The stream's width.
        want_w: u32,
        /// The stream's height.
        want_h: u32,
    },
    /// The stream was closed.
    #[error("the stream is closed")]
    Closed,
}

impl Pusher {
    /// Hands in a frame filled by `fill`, which writes `width * height` pixels in the stream's
    /// format, packed, into the buffer it is given (a recycled one, so a steady stream
    /// allocates nothing). The frame is stamped with `seq` and the capture time: when it was
    /// handed in.
    pub fn push(
        &self,
        size: (u32, u32),
        seq: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), PushError> {
        let frame = self.fill(size, seq, fill)?;
        self.put(frame)
    }

    /// A frame filled by `fill` as [`push`](Self::push) fills it, not handed in yet: a program
    /// that waits before handing frames in ([`wait_sent`](Self::wait_sent)) converts the next
    /// one meanwhile, then [`put`](Self::put)s it.
    pub fn fill(
        &self,
        (width, height): (u32, u32),
        seq: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<Frame, PushError> {
        let (want_w, want_h) = self.size;
        if (width, height) != self.size {
            return Err(PushError::Size {
                got_w: width,
                got_h: height,
                want_w,
                want_h,
            });
        }
        if self.slot.is_closed() {
            return Err(PushError::Closed);
        }
        let mut frame = self
            .slot
            .take_spare()
            .unwrap_or_else(|| Frame::empty(self.format));
        // Captured when handed in: the copy into the frame counts in its latency.
        let capture_us = framewire_core::now_micros();
        frame.reset(width, height, self.format);
        fill(&mut frame.pixels);
        frame.seq = seq;
        frame.capture_us = capture_us;
        Ok(frame)
    }

    /// Hands in a frame [`fill`](Self::fill) made.
    pub fn put(&self, frame: Frame) -> Result<(), PushError> {
        if self.slot.is_closed() {
            return Err(PushError::Closed);
        }
        let seq = frame.seq;
        if let Some(spare) = self.slot.put(frame) {
            self.slot.give_back(spare);
        }
        self.progress.update(|(pushed, _)| *pushed = Some(seq));
        Ok(())
    }

    /// Waits until the send path took the frame handed in last and is done with it (encoded
    /// and handed to its publishers), or `timeout` passes, or the stream closed; returns
    /// whether it is. A program that hands frames in faster than they are sent waits here
    /// instead of converting frames that would be dropped.
    pub fn wait_sent(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.slot.is_closed() || self.progress.wait_done(deadline)
    }

    /// Frames replaced before the send path took them.
    pub fn dropped(&self) -> u64 {
        self.slot.dropped()
    }

    /// Ends the stream: the send path's next pull says the source ended.
    pub fn close(&self) {
        self.slot.close();
        self.progress.update(|_| ());
    }
}

impl Feed for PushedFeed {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn pull(&mut self, frame: &mut Frame, _packet: &mut Packet) -> Result<Pulled, CaptureError> {
        // Back for the next frame: the send path is done with the one before.
        if let Some(seq) = self.pulled.take() {
            self.progress.update(|(_, done)| *done = Some(seq));
        }
        match self.slot.wait(Some(Instant::now() + POLL)) {
            Waited::Value(mut new) => {
                self.pulled = Some(new.seq);
                std::mem::swap(frame, &mut new);
                self.slot.give_back(new);
                Ok(Pulled::Frame)
            }
            Waited::Timeout => Ok(Pulled::Nothing),
            Waited::Closed => Ok(Pulled::Ended),
        }
    }

    fn dropped(&self) -> u64 {
        self.slot.dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_frame_is_pulled_and_the_replaced_one_counted() {
        let (pusher, mut feed) = pushed("numpy", (2, 1), PixelFormat::Rgb8, 0.0);
        pusher.push((2, 1), 0, |p| p.fill(1)).unwrap();
        pusher.push((2, 1), 1, |p| p.fill(2)).unwrap();
        let (mut frame, mut packet) = (Frame::empty(PixelFormat::Rgb8), Packet::default());
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Frame);
        assert_eq!((frame.seq, frame.pixels.as_slice()), (1, &[2u8; 6][..]));
        assert_eq!(feed.dropped(), 1);
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Nothing);
        pusher.close();
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Ended);
        assert_eq!(pusher.push((2, 1), 2, |_| {}), Err(PushError::Closed));
    }

    #[test]
    fn a_frame_is_sent_once_the_send_path_comes_back_for_the_next() {
        let (pusher, mut feed) = pushed("numpy", (2, 1), PixelFormat::Rgb8, 0.0);
        let (mut frame, mut packet) = (Frame::empty(PixelFormat::Rgb8), Packet::default());
        let short = Duration::from_millis(1);
        assert!(pusher.wait_sent(short), "nothing handed in yet");
        pusher.push((2, 1), 0, |p| p.fill(1)).unwrap();
        assert!(!pusher.wait_sent(short), "not taken yet");
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Frame);
        assert!(!pusher.wait_sent(short), "taken, still being encoded");
        let waiter = std::thread::spawn({
            let pusher = pusher.clone();
            move || pusher.wait_sent(Duration::from_secs(30))
        });
        // Back for the next: done with frame 0 (this pull then waits out its poll).
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Nothing);
        assert!(waiter.join().unwrap());
        pusher.push((2, 1), 1, |p| p.fill(2)).unwrap();
        pusher.close();
        assert!(pusher.wait_sent(short), "a closed stream waits for nothing");
    }

    #[test]
    fn frames_are_in_the_streams_format() {
        let (pusher, mut feed) = pushed("numpy", (2, 1), PixelFormat::Bgr8, 0.0);
        assert_eq!(feed.info().format, PixelFormat::Bgr8);
        pusher.push((2, 1), 0, |p| p.fill(3)).unwrap();
        let (mut frame, mut packet) = (Frame::empty(PixelFormat::Rgb8), Packet::default());
        assert_eq!(feed.pull(&mut frame, &mut packet).unwrap(), Pulled::Frame);
        assert_eq!(frame.format, PixelFormat::Bgr8);
    }

    #[test]
    fn a_frame_of_another_size_is_refused_naming_both() {
        let (pusher, _feed) = pushed("numpy", (4, 2), PixelFormat::Rgb8, 30.0);
        let e = pusher.push((2, 2), 0, |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "the frame is 2x2; this stream is 4x2");
    }
}
