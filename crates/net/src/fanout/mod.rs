//! The fan-out every stream-socket protocol shares: accepts connections, gives each its
//! handshake under one deadline, and sends each subscriber the newest packet its socket can
//! take. A [`Protocol`] supplies only its opening and the [`Framer`] that writes a
//! subscriber's stream as bytes; [`Delivery`](crate::roster::Delivery) feeds each subscriber's
//! [`StreamOutlet`](delivery::StreamOutlet) as it feeds every other transport's outlet.
//!
//! [`Framer`]: framewire_wire::framer::Framer
//!
//! One thread accepts; one thread per subscriber does its handshake and its writes, so a slow
//! or stalled subscriber (full socket) costs the others nothing: its [`Latest`] slot holds only
//! the newest packet, the older one is counted as dropped. A subscriber's thread takes its next
//! packet only once the socket has drained to about one bandwidth-delay product, and the
//! kernel paces its bytes at about the link's rate (see `Drain`), so on a link narrower than
//! the stream packets wait in the slot, where a newer one replaces them, not in the kernel's
//! buffers or the link's queue, where nothing could. A subscriber whose socket moves nothing
//! for the write timeout is disconnected. At most `max_pending` connections may be in their
//! handshake at once; a shutdown gives subscribers [`SHUTDOWN_GRACE`] to take their goodbye.

//!
//! - [`protocol`]: what a protocol on the fan-out supplies ([`Protocol`], [`Opening`]) and the
//!   reads they share.
//! - `accept`: the accept loop, the pending-connection cap, each connection's handshake.
//! - `delivery`: a subscriber's outlet: its framer's bytes, written when its socket can take them.
//! - `drain`: when a socket can take the next packet, and its pacing.

mod accept;
mod delivery;
mod drain;
pub mod protocol;

use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framewire_core::{Ladder, Latest, Packet, PeerReport, Placement, Publisher, Request};
use framewire_wire::framer::Framer;

use crate::adapt::Counters;
use crate::board::{Census, ProtocolFigures, Watched};
use crate::conn::{Conn, is_peer_gone, is_timeout, wake_accept};
use crate::roster::{EventFn, Member, Roster, lock};
use crate::tcp_queue;
use crate::tls::TlsServer;
use framewire_wire::token::Token;

pub use crate::roster::ServerEvent;
use accept::{accept_loop, configure, serve_request};
use delivery::StreamOutlet;
pub(crate) use delivery::{stalled, wait_drained, write_error};
pub(crate) use drain::Drain;
pub(crate) use protocol::read_full;
pub use protocol::{Opening, PeerEnd, PeerReader, Protocol, Refused};

/// Limits of a server; each has a documented default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Viewers served at once; one more is told the server is full. Default 64.
    pub max_viewers: usize,
    /// Time a new connection has to send its hello. Default 5 s.
    pub handshake_timeout: Duration,
    /// Time one write may block before the viewer is dropped as stalled. Default 10 s.
    pub write_timeout: Duration,
    /// Connections allowed to be in their handshake at once; more are closed at once, so a
    /// flood of idle connections cannot take threads without bound. Default 64.
    pub max_pending: usize,
    /// When every handshake slot is taken, an address holding fewer than this many (an IPv6 /64
    /// counts as one) takes the slot of the oldest pending connection of the address holding
    /// the most, so one client that stalls its connections cannot keep others out. Default 16.
    pub max_pending_per_address: usize,
    /// The shared token a subscriber must prove before its stream starts. Default none.
    pub token: Option<Token>,
    /// TLS: every connection's handshake before its protocol's opening. Default none (plain TCP).
    pub tls: Option<TlsServer>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_viewers: 64,
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_pending: 64,
            max_pending_per_address: 16,
            token: None,
            tls: None,
        }
    }
}

/// A running fan-out (a server of one protocol). Dropping it shuts it down.
pub struct Fanout {
    /// The address bound; `None` for a fan-out without a listener, fed by [`Fanout::adopt`].
    addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    protocol: Box<dyn Protocol>,
    config: ServerConfig,
    /// The subscribers: their slots and places on the ladder.
    roster: Roster<Stream>,
    /// Connections between accept and the end of their handshake.
    pending: crate::slots::PendingSlots,
    /// Packets written whole to some viewer, over the server's life.
    sent: AtomicU64,
    handlers: Mutex<Vec<JoinHandle<()>>>,
    on_event: Box<EventFn>,
}

/// What the fan-out keeps of a subscriber beside what the roster keeps.
struct Stream {
    /// A second handle on the viewer's socket, so a shutdown can cut off a stuck write.
    socket: TcpStream,
}

/// A subscriber of the fan-out.
type Viewer = Member<Stream>;

/// How long a shutdown waits for viewers to take their goodbye before cutting off the ones
/// whose sockets are stuck (a stalled or half-closed peer), so Ctrl-C never waits out write timeouts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

impl Fanout {
    /// Binds `addr` and starts accepting subscribers of `protocol` to the renditions of
    /// `ladder`. `on_event` is called (from server threads) for every subscriber that joins,
    /// moves, leaves or is rejected.
    pub fn bind(
        addr: impl ToSocketAddrs,
        protocol: impl Protocol,
        ladder: Arc<Ladder>,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let mut fanout = Fanout::without_listener(protocol, ladder, config, on_event);
        fanout.addr = Some(addr);
        let accept_shared = Arc::clone(&fanout.shared);
        let accept = thread::Builder::new()
            .name(format!("{}-accept", fanout.shared.protocol.name()))
            .spawn(move || accept_loop(listener, accept_shared))?;
        *lock(&fanout.accept) = Some(accept);
        Ok(fanout)
    }

    /// A fan-out that accepts nothing: its subscribers are connections made elsewhere and
    /// handed over by [`adopt`](Self::adopt) (a call that this side dialed).
    pub fn without_listener(
        protocol: impl Protocol,
        ladder: Arc<Ladder>,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> Fanout {
        let shared = Arc::new(Shared {
            protocol: Box::new(protocol),
            config,
            roster: Roster::new(ladder),
            pending: crate::slots::PendingSlots::default(),
            sent: AtomicU64::new(0),
            handlers: Mutex::new(Vec::new()),
            on_event: Box::new(on_event),
        });
        Fanout {
            addr: None,
            shared,
            accept: Mutex::new(None),
        }
    }

    /// Serves `stream`, a connection to `peer` whose request was read elsewhere (a call's
    /// opening), as one more subscriber whose stream `framer` writes: on a thread of its own,
    /// from the start of its stream (or its refusal) to the goodbye, as if it had been
    /// accepted here.
    pub fn adopt(
        &self,
        stream: Conn,
        peer: SocketAddr,
        request: Request,
        framer: Box<dyn Framer>,
    ) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-peer-{peer}", shared.protocol.name()))
            .spawn(move || {
                if let Err(error) = configure(stream.tcp(), &shared.config) {
                    return (shared.on_event)(ServerEvent::Rejected { peer, error });
                }
                serve_request(stream, peer, (request, framer, None, false), &shared)
            })?;
        let mut handlers = lock(&self.shared.handlers);
        handlers.retain(|h| !h.is_finished());
        handlers.push(spawned);
        Ok(())
    }

    /// The address actually bound (useful after binding port 0); `0.0.0.0:0` for a fan-out
    /// [`without_listener`](Self::without_listener).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Viewers connected now.
    pub fn viewer_count(&self) -> usize {
        self.shared.roster.count()
    }

    /// Blocks until at least one viewer is connected, the server is shutting down, or
    /// `timeout` passes. Returns the number of viewers.
    pub fn wait_for_viewer(&self, timeout: Duration) -> usize {
        self.shared.roster.wait_for_member(timeout)
    }

    /// Frames that some viewer missed because it was still sending an earlier one, summed
    /// over all viewers since the server started.
    pub fn dropped_total(&self) -> u64 {
        self.shared.roster.dropped_total()
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.roster.is_stopping()
    }

    /// Hands one frame, in the renditions `packets` hold, to every viewer: the packet of the
    /// rendition it is moving to once there is one, else of the one it is on (none: it
    /// gets nothing). A viewer still busy with an earlier packet has that one replaced (newest
    /// wins) and counted as dropped. Never blocks on a socket.
    pub fn publish(&self, packets: &[Arc<Packet>]) {
        self.shared.roster.publish(packets);
    }

    /// [`publish`](Self::publish) of a frame in one rendition.
    pub fn publish_one(&self, packet: &Arc<Packet>) {
        self.publish(std::slice::from_ref(packet));
    }

    /// Moves the viewer at `peer` to `rung`, as its link would (for tests of the switch); false
    /// when there is no such viewer or rung, or the viewer is already moving.
    #[doc(hidden)]
    pub fn move_viewer(&self, peer: SocketAddr, rung: usize) -> bool {
        if rung >= self.shared.roster.ladder.rungs() {
            return false;
        }
        let viewers = self.shared.roster.members();
        let Some(viewer) = viewers.iter().find(|v| v.peer == peer) else {
            return false;
        };
        let on = viewer.on.load(Ordering::Relaxed);
        if viewer.to.load(Ordering::Relaxed) != on || rung == on {
            return false;
        }
        self.shared.roster.ladder.enter(rung);
        viewer.to.store(rung, Ordering::Relaxed);
        true
    }

    /// Stops accepting, tells every viewer the stream has ended, closes their sockets and
    /// waits for the server's threads: viewers whose sockets are stuck are cut off after one second. Idempotent.
    pub fn shutdown(&self) {
        if self.shared.roster.stop() {
            return;
        }
        if let Some(addr) = self.addr {
            wake_accept(addr);
        }
        if let Some(accept) = lock(&self.accept).take() {
            let _ = accept.join();
        }
        // Slots closed by the roster's stop: every subscriber says goodbye.
        let viewers = self
            .shared
            .roster
            .wait_until(Instant::now() + SHUTDOWN_GRACE, |v| v.is_empty());
        for stuck in viewers.iter() {
            let _ = stuck.socket.shutdown(Shutdown::Both);
        }
        drop(viewers);
        let handlers = std::mem::take(&mut *lock(&self.shared.handlers));
        for h in handlers {
            let _ = h.join();
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Publisher for Fanout {
    fn describe(&self) -> String {
        match self.addr {
            Some(addr) => format!("{} on {addr}", self.shared.protocol.name()),
            None => format!("{} to the peers it was handed", self.shared.protocol.name()),
        }
    }

    fn publish(&self, packets: &[Arc<Packet>]) {
        Fanout::publish(self, packets);
    }

    fn subscribers(&self) -> usize {
        self.viewer_count()
    }

    fn wait_for_subscriber(&self, timeout: Duration) -> usize {
        self.wait_for_viewer(timeout)
    }

    fn dropped_total(&self) -> u64 {
        Fanout::dropped_total(self)
    }

    fn wait_taken(&self, deadline: Instant) -> bool {
        self.shared.roster.wait_taken(deadline)
    }

    fn shutdown(&self) {
        Fanout::shutdown(self);
    }

    fn report(&self, report: PeerReport) {
        self.shared.roster.report(report);
    }
}

impl Census for Shared {
    fn census(&self, addr: SocketAddr) -> ProtocolFigures {
        self.roster.figures(
            self.protocol.name(),
            addr,
            self.sent.load(Ordering::Relaxed),
        )
    }
}

impl Watched for Fanout {
    fn census(&self) -> (SocketAddr, std::sync::Weak<dyn Census>) {
        let shared: Arc<dyn Census> = self.shared.clone();
        (self.local_addr(), Arc::downgrade(&shared))
    }
}
