//! What every two-way call shares, whatever carries it (a TCP connection in `chat`,
//! datagrams in `udp::chat`): a listener's [`Desk`], which takes one call at a time
//! and holds the line for a caller that was lost, and [`CallHalf`], a call's receiving half,
//! whose closer hangs up.
//!
//! The one rule for a lost caller: while a call is on, another caller is told [`BUSY`]. When
//! the call's stream is lost, its caller has the receiving side's idle timeout to call back
//! with the same number, which is taken over the old call; after that the line is free for
//! any caller, and the listener's log says so.

use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use framewire_core::{
    Closer, Packet, Placement, Publisher, Received, StreamInfo, Subscription, TransportError,
};

/// What a listener already in a call answers another caller.
pub const BUSY: &str = "busy: already in a call";

/// What a listener that is hanging up answers a caller.
pub const HANGING_UP: &str = "it is hanging up";

/// Ends a lost call's old connection at once when its caller calls back.
pub(crate) type Cut = Box<dyn Fn() + Send + Sync>;

/// What a desk hands its listener to take: a caller's connection (TCP) or where to join its
/// stream (UDP). `cancel` releases one that is replaced or never taken.
pub(crate) trait Offer: Send {
    /// It will not be taken.
    fn cancel(&self) {}
}

/// The call a listener is in.
struct Current {
    ip: IpAddr,
    call: u16,
    generation: u64,
    cut: Option<Cut>,
}

struct DeskState<O> {
    current: Option<Current>,
    offered: Option<O>,
    generations: u64,
    closed: bool,
}

/// A listener's one call at a time: which call it is in, and what waits to be taken.
pub(crate) struct Desk<O> {
    state: Mutex<DeskState<O>>,
    changed: Condvar,
}

impl<O: Offer> Desk<O> {
    pub(crate) fn new() -> Desk<O> {
        Desk {
            state: Mutex::new(DeskState {
                current: None,
                offered: None,
                generations: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeskState<O>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes call `call` from `ip`, unless another call is on ([`BUSY`]) or the listener is
    /// hanging up: the same call calling again (its stream was lost) replaces the old one,
    /// whose connection `cut` ended. Returns the call's generation; `offer` makes what the
    /// listener takes from it.
    pub(crate) fn take_call(
        &self,
        ip: IpAddr,
        call: u16,
        cut: Option<Cut>,
        offer: impl FnOnce(u64) -> Option<O>,
    ) -> Result<u64, String> {
        let mut state = self.lock();
        if state.closed {
            return Err(HANGING_UP.into());
        }
        if let Some(current) = &state.current {
            if (current.ip, current.call) != (ip, call) {
                return Err(BUSY.into());
            }
            if let Some(cut) = &current.cut {
                cut();
            }
        }
        state.generations += 1;
        let generation = state.generations;
        state.current = Some(Current {
            ip,
            call,
            generation,
            cut,
        });
        if let Some(offer) = offer(generation) {
            Self::put(&mut state, offer);
            self.changed.notify_all();
        }
        Ok(generation)
    }

    /// Offers what the listener takes next, replacing (and cancelling) one not taken yet.
    pub(crate) fn offer(&self, offer: O) {
        Self::put(&mut self.lock(), offer);
        self.changed.notify_all();
    }

    fn put(state: &mut DeskState<O>, offer: O) {
        if let Some(old) = state.offered.replace(offer) {
            old.cancel();
        }
    }

    /// Waits for the next offer to take; `None` once the desk is closed. While a call is on
    /// (its stream was lost and its caller may call back), waits at most `redial`: then that
    /// call is over, the line is free for any caller, and the error names the caller.
    pub(crate) fn wait_offer(&self, redial: Duration) -> Result<Option<O>, String> {
        let mut state = self.lock();
        let deadline = Instant::now() + redial;
        loop {
            if state.closed {
                return Ok(None);
            }
            if let Some(offer) = state.offered.take() {
                return Ok(Some(offer));
            }
            let Some(lost) = state.current.as_ref().map(|c| c.ip) else {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.current = None;
                return Err(format!(
                    "the caller at {lost} did not call back within {:.1}s: the line is free \
                     for the next call",
                    redial.as_secs_f64()
                ));
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl<O: Offer> Desk<O> {
    /// [`wait_offer`](Self::wait_offer) as a connector's answer: a closed desk is not worth
    /// retrying, a lost caller's line freed is (the next caller may come).
    pub(crate) fn next_call(&self, redial: Duration) -> Result<O, TransportError> {
        match self.wait_offer(redial) {
            Ok(Some(offer)) => Ok(offer),
            Ok(None) => Err(TransportError {
                retry: false,
                source: "hung up while waiting for a call".into(),
            }),
            Err(gone) => Err(TransportError {
                retry: true,
                source: gone.into(),
            }),
        }
    }
}

/// A listener's desk as its calls' halves see it.
pub(crate) trait Line: Send + Sync {
    /// The call of `generation` is over (unless a redial replaced it already).
    fn end(&self, generation: u64);
    /// No more calls are taken; a [`Desk::wait_offer`] returns.
    fn close(&self);
}

impl<O: Offer> Line for Desk<O> {
    fn end(&self, generation: u64) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|c| c.generation == generation)
        {
            state.current = None;
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        if let Some(offer) = state.offered.take() {
            offer.cancel();
        }
        self.changed.notify_all();
    }
}

/// A call's receiving half: the peer's stream, and this side's sending half beside it. Its
/// closer hangs up (the goodbye goes out on the sending half, then the receiving half closes).
/// Dropping it ends the call at the listener's desk.
pub(crate) struct CallHalf {
    pub(crate) receiving: Box<dyn Subscription>,
    pub(crate) sending: Arc<dyn Publisher>,
    /// How the log names the peer: `peer ADDR`.
    pub(crate) peer: String,
    /// A listener's desk and this call's generation there.
    pub(crate) desk: Option<(Arc<dyn Line>, u64)>,
    /// What must live as long as the call (a sealed caller's session at its server).
    pub(crate) _keep: Option<Box<dyn Send>>,
}

impl Drop for CallHalf {
    fn drop(&mut self) {
        if let Some((desk, generation)) = &self.desk {
            desk.end(*generation);
        }
    }
}

impl Subscription for CallHalf {
    fn stream(&self) -> StreamInfo {
        self.receiving.stream()
    }

    fn placement(&self) -> Placement {
        self.receiving.placement()
    }

    fn fps(&self) -> f64 {
        self.receiving.fps()
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }

    fn position(&self) -> String {
        self.receiving.position()
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        self.receiving.recv(packet)
    }

    fn closer(&self) -> Closer {
        let sending = Arc::clone(&self.sending);
        let desk = self.desk.as_ref().map(|(d, _)| Arc::clone(d));
        let receiving = self.receiving.closer();
        Arc::new(move || {
            if let Some(desk) = &desk {
                desk.close();
            }
            sending.shutdown();
            receiving();
        })
    }
}
