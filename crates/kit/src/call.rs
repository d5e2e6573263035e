//! What a side of a call runs beside the session's `calls`: its send path on a thread of its
//! own, and the figures of what that sending half sent over every call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use framewire_core::{CallSide, FrameSink, PeerReport, Publisher};
use framewire_net::ServerEvent;
use framewire_session::SendError;

use crate::Prepared;

/// What the sending half of a call did, over every call.
#[derive(Debug, Default)]
pub struct Sent {
    /// Frames sent.
    pub frames: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Frames dropped for a slow peer.
    pub dropped: u64,
    /// Time a call was on, summed.
    pub on: Duration,
    since: Option<Instant>,
    /// How the peer last said it shows this side's stream.
    pub at_peer: Option<PeerReport>,
}

impl Sent {
    /// Counts what a call's sending half says: a call on, a call over.
    pub fn count(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::Joined { .. } => self.since = Some(Instant::now()),
            ServerEvent::Left {
                frames,
                bytes,
                dropped,
                ..
            } => {
                self.frames += frames;
                self.bytes += bytes;
                self.dropped += dropped;
                if let Some(since) = self.since.take() {
                    self.on += since.elapsed();
                }
            }
            ServerEvent::Moved { .. } | ServerEvent::Rejected { .. } => {}
        }
    }

    /// Frames per second while a call was on.
    pub fn fps(&self) -> f64 {
        let on = self.on.as_secs_f64();
        if on > 0.0 {
            self.frames as f64 / on
        } else {
            0.0
        }
    }
}

/// A call's send path, running on a thread of its own until [`Sending::end`].
pub struct Sending {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), SendError>>,
}

/// Why a call's send path failed.
#[derive(Debug, thiserror::Error)]
pub enum SendingError {
    /// The send path failed.
    #[error("sending")]
    Send(#[from] SendError),
    /// Its thread could not start.
    #[error("cannot start the sending thread")]
    Spawn(#[source] std::io::Error),
    /// Its thread panicked.
    #[error("the sending thread panicked")]
    Panicked,
}

impl Sending {
    /// Starts `prepared`'s send path to `publisher` (a call side's sending half), showing what
    /// it sends in `inset` if given.
    pub fn start(
        prepared: Prepared,
        publisher: Arc<dyn Publisher>,
        inset: Option<Box<dyn FrameSink>>,
    ) -> Result<Sending, SendingError> {
        let mut sender = prepared.sender(vec![publisher], inset, None)?;
        let stop = Arc::new(AtomicBool::new(false));
        let until = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("framewire-send".into())
            .spawn(move || sender.run(&until, &mut |_| {}).map(|_| ()))
            .map_err(SendingError::Spawn)?;
        Ok(Sending { stop, thread })
    }

    /// Hangs up `side` (the peer gets the goodbye) and waits for the send path.
    pub fn end(self, side: &dyn CallSide) -> Result<(), SendingError> {
        side.hang_up();
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().map_err(|_| SendingError::Panicked)??;
        Ok(())
    }
}
