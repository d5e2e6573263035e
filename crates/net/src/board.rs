//! A server's live figures in one place, for HTTP's `/stats` and `/metrics`: every subscriber
//! of every fan-out that reports into the [`Board`] (its rate, frames, drops and rung), each
//! protocol's totals, and the time spent encoding.
//!
//! The fan-outs keep their own counters (atomics their subscriber threads bump anyway); the
//! board holds only a weak handle on each and reads them when asked, so a figure costs nothing
//! until someone looks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use framewire_core::{CodecError, CodecKind, Encoded, Frame, FrameEncoder, PixelFormat, Placement};

/// One subscriber, as its fan-out sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewerFigures {
    /// Its address.
    pub peer: SocketAddr,
    /// The rendition its packets are in now.
    pub placement: Placement,
    /// Packets written to it per second, over the last second or so.
    pub fps: f64,
    /// Packets written to it whole.
    pub frames: u64,
    /// Packets it missed because its socket was busy with an earlier one.
    pub dropped: u64,
}

/// One fan-out (a protocol on an address): its totals over its life, and its subscribers now.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolFigures {
    /// The protocol's name: `framewire`, `http`.
    pub protocol: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Packets written whole to some subscriber.
    pub frames: u64,
    /// Packets some subscriber missed.
    pub dropped: u64,
    /// Its subscribers now.
    pub viewers: Vec<ViewerFigures>,
}

/// What a fan-out answers when the board asks.
pub trait Census: Send + Sync {
    /// The figures of the fan-out listening at `addr`, now.
    fn census(&self, addr: SocketAddr) -> ProtocolFigures;
}

/// A fan-out a [`Board`] can watch: the framewire port, HTTP, a UDP server.
pub trait Watched {
    /// What a board keeps to read its figures while it runs: where it listens, and a weak
    /// handle on its counters.
    fn census(&self) -> (SocketAddr, Weak<dyn Census>);
}

/// The live figures of one server: its stream, its fan-outs, its encoders.
pub struct Board {
    source: String,
    fps: f64,
    started: Instant,
    fanouts: Mutex<Vec<(SocketAddr, Weak<dyn Census>)>>,
    encodes: AtomicU64,
    encode_ns: AtomicU64,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("source", &self.source)
            .field("fps", &self.fps)
            .finish_non_exhaustive()
    }
}

impl Board {
    /// The board of a stream from `source` (its name, for people) paced to `fps` (0 = unpaced).
    pub fn new(source: impl Into<String>, fps: f64) -> Board {
        Board {
            source: source.into(),
            fps,
            started: Instant::now(),
            fanouts: Mutex::new(Vec::new()),
            encodes: AtomicU64::new(0),
            encode_ns: AtomicU64::new(0),
        }
    }

    /// The source's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The pace of the stream (0 = unpaced).
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Time since the board was made (the server started).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reports `fanout`'s figures from now on, for as long as it runs.
    pub fn watch(&self, fanout: &dyn Watched) {
        self.lock().push(fanout.census());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SocketAddr, Weak<dyn Census>)>> {
        self.fanouts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every watched fan-out that still runs, in the order they were watched.
    pub fn protocols(&self) -> Vec<ProtocolFigures> {
        let fanouts: Vec<_> = self.lock().clone();
        fanouts
            .iter()
            .filter_map(|(addr, f)| Some(f.upgrade()?.census(*addr)))
            .collect()
    }

    /// Takes in one frame encoded in `took`.
    pub fn record_encode(&self, took: Duration) {
        self.encodes.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.encode_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Frames encoded, and the time they took together.
    pub fn encodes(&self) -> (u64, Duration) {
        (
            self.encodes.load(Ordering::Relaxed),
            Duration::from_nanos(self.encode_ns.load(Ordering::Relaxed)),
        )
    }

    /// `encoder`, timed into this board: each encode's time is recorded.
    pub fn timed(self: &Arc<Board>, encoder: Box<dyn FrameEncoder>) -> Box<dyn FrameEncoder> {
        Box::new(Timed {
            inner: encoder,
            board: Arc::clone(self),
        })
    }
}

/// An encoder whose every encode is timed into a [`Board`].
struct Timed {
    inner: Box<dyn FrameEncoder>,
    board: Arc<Board>,
}

impl FrameEncoder for Timed {
    fn kind(&self) -> CodecKind {
        self.inner.kind()
    }

    fn output_format(&self, input: PixelFormat) -> PixelFormat {
        self.inner.output_format(input)
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let start = Instant::now();
        let encoded = self.inner.encode(frame, dst);
        self.board.record_encode(start.elapsed());
        encoded
    }

    fn encode_last(&mut self, frame: &mut Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let start = Instant::now();
        let encoded = self.inner.encode_last(frame, dst);
        self.board.record_encode(start.elapsed());
        encoded
    }

    fn request_keyframe(&mut self) {
        self.inner.request_keyframe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_times_add_up() {
        let board = Board::new("test", 30.0);
        board.record_encode(Duration::from_millis(2));
        board.record_encode(Duration::from_millis(3));
        assert_eq!(board.encodes(), (2, Duration::from_millis(5)));
        assert!(board.protocols().is_empty());
    }
}
