//! The fan-out every stream-socket protocol shares: accepts connections, gives each its
//! handshake under one deadline, and sends each subscriber the newest packet its socket can
//! take. A [`Protocol`] supplies only its handshake and how a packet (and a goodbye) is written.
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

use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framewire_core::{Ladder, Latest, Packet, PeerReport, Placement, Publisher, Request, Waited};

use crate::adapt::{Adapter, Counters};
use crate::board::{Census, ProtocolFigures, ViewerFigures, Watched};
use crate::conn::{Conn, is_timeout};
use crate::tcp_queue;
use crate::tls::{PlaintextAnswer, TlsServer};
use framewire_wire::token::Token;

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
            token: None,
            tls: None,
        }
    }
}

/// What a connection asked for, as its protocol read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A subscriber: packets of the rendition it asks for, until it or the stream goes. `style`
    /// is handed back to [`Protocol::write_start`] and [`Protocol::write_packet`]: how the
    /// protocol writes to it, in the protocol's own numbering (HTTP: MJPEG parts with or without
    /// early headers; framewire has one style, 0).
    Stream {
        /// What it asks for.
        request: Request,
        /// How the protocol writes to it.
        style: u8,
    },
    /// One packet of the rendition it asks for, written by [`Protocol::write_one`], then the
    /// connection closes (HTTP's snapshot).
    One(Request),
    /// The protocol answered it in full (HTTP: the page, the stats); it is closed quietly.
    Answered,
}

/// What a protocol does on its own connections; the fan-out does the rest.
///
/// A connection goes: [`read_request`](Protocol::read_request), then either
/// [`write_start`](Protocol::write_start) or a refusal by [`write_end`](Protocol::write_end);
/// then packets, each rendition change announced by [`write_switch`](Protocol::write_switch)
/// before its first packet; then the goodbye ([`write_end`](Protocol::write_end)). A connection
/// that asked for one packet gets [`write_one`](Protocol::write_one) instead of all that.
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for the log: `framewire`, `http`.
    fn name(&self) -> &'static str;

    /// Reads the peer's opening, all within `timeout` (one deadline for every byte, so a peer
    /// sending one byte at a time cannot stretch it), and says what it asks for. An error is
    /// one line naming what was wrong; the protocol may have answered it first (an old peer is
    /// told both wire versions). The connection is then closed.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, String>;

    /// Answers the request: the stream starts in `placement`.
    fn write_start(&self, stream: &mut Conn, placement: &Placement, style: u8) -> io::Result<()>;

    /// Says that the packets that follow are `placement`'s.
    fn write_switch(&self, stream: &mut Conn, placement: &Placement) -> io::Result<()>;

    /// Writes one packet.
    fn write_packet(&self, stream: &mut Conn, packet: &Packet, style: u8) -> io::Result<()>;

    /// Tells the subscriber how this side shows the stream the subscriber sends it (a two-way
    /// call), before its next packet. A protocol without a way to say it writes nothing.
    fn write_report(&self, stream: &mut Conn, report: &PeerReport) -> io::Result<()> {
        let _ = (stream, report);
        Ok(())
    }

    /// Says goodbye: the stream ended (`None`), or the subscriber is refused (`Some(reason)`,
    /// e.g. the server is full, or it asked for what cannot be made), which may come instead
    /// of [`write_start`](Protocol::write_start).
    fn write_end(&self, stream: &mut Conn, error: Option<&str>) -> io::Result<()>;

    /// What this protocol's TLS port answers a peer that speaks plaintext: by default a
    /// framewire error message telling it to add `--tls`.
    fn plaintext_at_tls_port(&self) -> PlaintextAnswer {
        PlaintextAnswer::framewire()
    }

    /// Writes the one packet an [`Opening::One`] asked for, whole: by default its start, the
    /// packet and the goodbye.
    fn write_one(
        &self,
        stream: &mut Conn,
        placement: &Placement,
        packet: &Packet,
    ) -> io::Result<()> {
        self.write_start(stream, placement, 0)?;
        self.write_packet(stream, packet, 0)?;
        self.write_end(stream, None)
    }
}

/// Something that happened to a connection, for the server's log.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A viewer completed its handshake.
    Joined {
        /// The viewer's address.
        peer: SocketAddr,
        /// Viewers connected now.
        viewers: usize,
        /// The rendition it starts on.
        placement: Placement,
        /// Whether it moves along the ladder with its link (else it stays where it asked).
        adapts: bool,
    },
    /// A viewer was moved to another rendition by what its link carries.
    Moved {
        /// The viewer's address.
        peer: SocketAddr,
        /// Where it was.
        from: Placement,
        /// Where it is now.
        to: Placement,
        /// What its link carried, bytes per second, as judged.
        link: f64,
    },
    /// A viewer went away or was disconnected.
    Left {
        /// The viewer's address.
        peer: SocketAddr,
        /// Viewers connected now.
        viewers: usize,
        /// Frames sent to it.
        frames: u64,
        /// Payload bytes of those frames.
        bytes: u64,
        /// Frames it missed because its socket was busy with an earlier one.
        dropped: u64,
        /// The rendition it was on last.
        placement: Placement,
        /// Why, when it was not a plain close by the viewer or a server shutdown.
        error: Option<String>,
    },
    /// A connection that was not served (not a viewer, wrong version, server full).
    Rejected {
        /// The peer's address.
        peer: SocketAddr,
        /// Why.
        error: String,
    },
}

type EventFn = dyn Fn(ServerEvent) + Send + Sync;

/// A running fan-out (a server of one protocol). Dropping it shuts it down.
pub struct Fanout {
    /// The address bound; `None` for a fan-out without a listener, fed by [`Fanout::adopt`].
    addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    protocol: Box<dyn Protocol>,
    ladder: Arc<Ladder>,
    config: ServerConfig,
    viewers: Mutex<Vec<Arc<Viewer>>>,
    viewers_changed: Condvar,
    stopping: AtomicBool,
    /// Connections between accept and the end of their handshake.
    pending: AtomicUsize,
    /// Frames replaced in some viewer's slot before they were sent, over the server's life.
    dropped: AtomicU64,
    /// Packets written whole to some viewer, over the server's life.
    sent: AtomicU64,
    handlers: Mutex<Vec<JoinHandle<()>>>,
    on_event: Box<EventFn>,
}

struct Viewer {
    peer: SocketAddr,
    /// The next packet to send: newest wins.
    slot: Latest<Arc<Packet>>,
    /// The rendition its packets are in now, and the one it is moving to (the same when it
    /// is not moving): publishing gives it the packet of `to` once there is one, else of `on`.
    on: AtomicUsize,
    to: AtomicUsize,
    /// Frames offered to it.
    offered: AtomicU64,
    /// Packets written whole, and their bytes.
    sent: AtomicU64,
    bytes: AtomicU64,
    /// A second handle on the viewer's socket, so a shutdown can cut off a stuck write.
    socket: TcpStream,
    /// A report to write before the next packet.
    report: Mutex<Option<PeerReport>>,
    /// Its frame rate, for the live figures.
    rate: Mutex<Rate>,
}

/// How long a shutdown waits for viewers to take their goodbye before cutting off the ones
/// whose sockets are stuck (a stalled or half-closed peer), so Ctrl-C never waits out write timeouts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking viewer thread must not take the server down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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
            ladder,
            config,
            viewers: Mutex::new(Vec::new()),
            viewers_changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
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
    /// opening), as one more subscriber: on a thread of its own, from the start of its stream
    /// (or its refusal) to the goodbye, as if it had been accepted here.
    pub fn adopt(&self, stream: Conn, peer: SocketAddr, request: Request) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-peer-{peer}", shared.protocol.name()))
            .spawn(move || {
                if let Err(error) = configure(stream.tcp(), &shared.config) {
                    return (shared.on_event)(ServerEvent::Rejected { peer, error });
                }
                serve_request(stream, peer, (request, false, 0), &shared)
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
        lock(&self.shared.viewers).len()
    }

    /// Blocks until at least one viewer is connected, the server is shutting down, or
    /// `timeout` passes. Returns the number of viewers.
    pub fn wait_for_viewer(&self, timeout: Duration) -> usize {
        self.wait_viewers_until(Instant::now() + timeout, |viewers| {
            !viewers.is_empty() || self.shared.stopping.load(Ordering::SeqCst)
        })
        .len()
    }

    /// Holds the viewer list once `done` says so or `deadline` passes, whichever is first.
    fn wait_viewers_until(
        &self,
        deadline: Instant,
        done: impl Fn(&[Arc<Viewer>]) -> bool,
    ) -> MutexGuard<'_, Vec<Arc<Viewer>>> {
        let mut viewers = lock(&self.shared.viewers);
        while !done(&viewers) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            viewers = self
                .shared
                .viewers_changed
                .wait_timeout(viewers, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        viewers
    }

    /// Frames that some viewer missed because it was still sending an earlier one, summed
    /// over all viewers since the server started.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Hands one frame, in the renditions `packets` hold, to every viewer: the packet of the
    /// rendition it is moving to once there is one, else of the one it is on (none: it
    /// gets nothing). A viewer still busy with an earlier packet has that one replaced (newest
    /// wins) and counted as dropped. Never blocks on a socket.
    pub fn publish(&self, packets: &[Arc<Packet>]) {
        let of = |id: usize| packets.iter().find(|p| p.rendition == id);
        for viewer in lock(&self.shared.viewers).iter() {
            let to = viewer.to.load(Ordering::Relaxed);
            let Some(packet) = of(to).or_else(|| of(viewer.on.load(Ordering::Relaxed))) else {
                continue;
            };
            viewer.offered.fetch_add(1, Ordering::Relaxed);
            if viewer.slot.put(Arc::clone(packet)).is_some() {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands `report` to every subscriber, to be written before its next packet (a newer
    /// report replaces one not written yet).
    pub fn report(&self, report: PeerReport) {
        for viewer in lock(&self.shared.viewers).iter() {
            *lock(&viewer.report) = Some(report);
        }
    }

    /// [`publish`](Self::publish) of a frame in one rendition.
    pub fn publish_one(&self, packet: &Arc<Packet>) {
        self.publish(std::slice::from_ref(packet));
    }

    /// Moves the viewer at `peer` to `rung`, as its link would (for tests of the switch); false
    /// when there is no such viewer or rung, or the viewer is already moving.
    #[doc(hidden)]
    pub fn move_viewer(&self, peer: SocketAddr, rung: usize) -> bool {
        if rung >= self.shared.ladder.rungs() {
            return false;
        }
        let viewers = lock(&self.shared.viewers);
        let Some(viewer) = viewers.iter().find(|v| v.peer == peer) else {
            return false;
        };
        let on = viewer.on.load(Ordering::Relaxed);
        if viewer.to.load(Ordering::Relaxed) != on || rung == on {
            return false;
        }
        self.shared.ladder.enter(rung);
        viewer.to.store(rung, Ordering::Relaxed);
        true
    }

    /// Stops accepting, tells every viewer the stream has ended, closes their sockets and
    /// waits for the server's threads: viewers whose sockets are stuck are cut off after one second. Idempotent.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.viewers_changed.notify_all();
        // Wake the accept loop with a connection of our own.
        if let Some(mut wake) = self.addr {
            if wake.ip().is_unspecified() {
                wake.set_ip(if wake.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
        if let Some(accept) = lock(&self.accept).take() {
            let _ = accept.join();
        }
        for viewer in lock(&self.shared.viewers).iter() {
            viewer.slot.close();
        }
        let viewers = self.wait_viewers_until(Instant::now() + SHUTDOWN_GRACE, |v| v.is_empty());
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

    fn shutdown(&self) {
        Fanout::shutdown(self);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: say so, back off, keep serving.
                tracing::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.pending.fetch_add(1, Ordering::SeqCst) >= shared.config.max_pending {
            shared.pending.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            (shared.on_event)(ServerEvent::Rejected {
                peer,
                error: format!(
                    "closed at once: {} connections are already in their handshake",
                    shared.config.max_pending
                ),
            });
            continue;
        }
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-viewer-{peer}", shared.protocol.name()))
            .spawn(move || serve_viewer(stream, peer, conn_shared));
        let mut handlers = lock(&shared.handlers);
        handlers.retain(|h| !h.is_finished());
        match spawned {
            Ok(h) => handlers.push(h),
            Err(e) => {
                shared.pending.fetch_sub(1, Ordering::SeqCst);
                (shared.on_event)(ServerEvent::Rejected {
                    peer,
                    error: format!("cannot start a thread for it: {e}"),
                })
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes before `deadline`, or says how many arrived before the
/// stream ended. The deadline covers the whole read, so a peer sending one byte at a time
/// (slowloris) cannot stretch it.
pub(crate) fn read_full(stream: &mut Conn, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Counts a connection as pending until its handshake is over, whatever way it ends.
struct Pending<'a>(&'a AtomicUsize, bool);

impl Pending<'_> {
    fn done(&mut self) {
        if !std::mem::replace(&mut self.1, true) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

fn serve_viewer(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut pending = Pending(&shared.pending, false);
    serve_handshaken(stream, peer, &shared, &mut pending);
}

fn serve_handshaken(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    pending: &mut Pending<'_>,
) {
    let reject = |error: String| (shared.on_event)(ServerEvent::Rejected { peer, error });
    let cfg = &shared.config;
    if let Err(e) = configure(&stream, cfg) {
        return reject(e);
    }
    // One deadline for the TLS handshake and the protocol's opening together.
    let deadline = Instant::now() + cfg.handshake_timeout;
    let mut stream = match &cfg.tls {
        None => Conn::plain(stream),
        Some(tls) => match tls.accept(stream, deadline, &shared.protocol.plaintext_at_tls_port()) {
            Ok(conn) => conn,
            Err(e) => return reject(e),
        },
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let (request, once, style) = match shared
        .protocol
        .read_request(&mut stream, left.max(Duration::from_millis(1)))
    {
        Ok(Opening::Stream { request, style }) => (request, false, style),
        Ok(Opening::One(request)) => (request, true, 0),
        Ok(Opening::Answered) => return,
        Err(e) => {
            let _ = stream.shutdown(Shutdown::Both);
            return reject(e);
        }
    };
    pending.done();
    serve_request(stream, peer, (request, once, style), shared);
}

/// Sets up a subscriber's socket: no Nagle delay, the handshake deadline for reads, the write
/// timeout for writes.
fn configure(stream: &TcpStream, cfg: &ServerConfig) -> Result<(), String> {
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(cfg.handshake_timeout)))
        .and_then(|()| stream.set_write_timeout(Some(cfg.write_timeout)))
        .map_err(|e| format!("socket setup failed: {e}"))
}

/// Places a subscriber that asked for `request` on the ladder (or refuses it), then serves it
/// until it goes: one packet when `once`, else a stream written in the protocol's `style`.
fn serve_request(
    mut stream: Conn,
    peer: SocketAddr,
    (request, once, style): (Request, bool, u8),
    shared: &Arc<Shared>,
) {
    let reject = |error: String| (shared.on_event)(ServerEvent::Rejected { peer, error });
    let cfg = &shared.config;
    let protocol = &shared.protocol;
    let refuse = |stream: &mut Conn, reason: String| {
        let _ = protocol.write_end(stream, Some(&reason));
        let _ = stream.shutdown(Shutdown::Both);
        reject(reason);
    };
    let placement = match shared.ladder.join(&request) {
        Ok(p) => p,
        Err(reason) => return refuse(&mut stream, reason),
    };
    let adapts = request.follows_link() && shared.ladder.adapts();
    let socket = match stream.tcp().try_clone() {
        Ok(s) => s,
        Err(e) => {
            shared.ladder.leave(placement.id);
            return reject(format!("socket setup failed: {e}"));
        }
    };
    let count;
    let viewer = Arc::new(Viewer {
        peer,
        slot: Latest::new(),
        on: AtomicUsize::new(placement.id),
        to: AtomicUsize::new(placement.id),
        offered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        socket,
        report: Mutex::new(None),
        rate: Mutex::new(Rate::new(Instant::now())),
    });
    {
        let mut viewers = lock(&shared.viewers);
        if shared.stopping.load(Ordering::SeqCst) {
            drop(viewers);
            shared.ladder.leave(placement.id);
            let _ = protocol.write_end(&mut stream, None);
            return;
        }
        if viewers.len() >= cfg.max_viewers {
            let n = viewers.len();
            drop(viewers);
            shared.ladder.leave(placement.id);
            let reason = format!("server full: {n} of {} viewers connected", cfg.max_viewers);
            return refuse(&mut stream, reason);
        }
        viewers.push(Arc::clone(&viewer));
        count = viewers.len();
        drop(viewers);
        shared.viewers_changed.notify_all();
    }

    let mut delivery = Delivery {
        stream: &mut stream,
        viewer: &viewer,
        shared,
        placement,
        style,
    };
    let error = if once {
        delivery.run_once(count)
    } else {
        delivery.run(adapts, count)
    };
    let placement = delivery.placement;
    let _ = stream.shutdown(Shutdown::Both);
    let (on, to) = (
        viewer.on.load(Ordering::Relaxed),
        viewer.to.load(Ordering::Relaxed),
    );
    shared.ladder.leave(on);
    if to != on {
        shared.ladder.leave(to);
    }

    let count = {
        let mut viewers = lock(&shared.viewers);
        viewers.retain(|v| !Arc::ptr_eq(v, &viewer));
        viewers.len()
    };
    shared.viewers_changed.notify_all();
    (shared.on_event)(ServerEvent::Left {
        peer: viewer.peer,
        viewers: count,
        frames: viewer.sent.load(Ordering::Relaxed),
        bytes: viewer.bytes.load(Ordering::Relaxed),
        dropped: viewer.slot.dropped(),
        placement,
        error,
    });
}

/// One viewer's deliveries: its socket, and the rendition its packets are in.
struct Delivery<'a> {
    stream: &'a mut Conn,
    viewer: &'a Viewer,
    shared: &'a Shared,
    placement: Placement,
    /// How the protocol writes to it ([`Opening::Stream`]).
    style: u8,
}

impl Delivery<'_> {
    /// Starts the stream (and says the viewer joined, one of `viewers`, once its start is
    /// written), then sends the newest packet whenever there is one (moving the viewer along
    /// the ladder when it `adapts`), until the viewer goes or the server stops. Returns why it
    /// stopped when that was an error (not a plain close or a shutdown).
    fn run(&mut self, adapts: bool, viewers: usize) -> Option<String> {
        let write_timeout = self.shared.config.write_timeout;
        let protocol = &*self.shared.protocol;
        if let Err(e) = protocol.write_start(self.stream, &self.placement, self.style) {
            return write_error(&e, write_timeout);
        }
        (self.shared.on_event)(ServerEvent::Joined {
            peer: self.viewer.peer,
            viewers,
            placement: self.placement,
            adapts,
        });
        let mut drain = Drain::default();
        // The bytes of the last packet written, for the drain rule's pacing.
        let mut last_written = 0;
        let mut adapter = adapts.then(|| Adapter::new(Instant::now(), self.counters()));
        loop {
            // Take the next packet only once the socket can carry it without queueing it
            // behind older ones; meanwhile newer packets replace older ones in the slot.
            if drain
                .wait(
                    self.stream.tcp(),
                    &self.viewer.slot,
                    last_written,
                    write_timeout,
                )
                .is_err()
            {
                return Some(stalled(write_timeout));
            }
            // A packet published before the shutdown still goes out, then the goodbye.
            let packet = match self.viewer.slot.wait(None) {
                Waited::Value(p) => p,
                Waited::Closed => {
                    let said = protocol.write_end(self.stream, None);
                    if said.is_ok() {
                        // Closing with the goodbye still queued could lose it: a peer's
                        // unread bytes make the close a reset.
                        wait_drained(self.stream.tcp(), SHUTDOWN_GRACE);
                    }
                    return said
                        .err()
                        .filter(|e| !is_peer_gone(e))
                        .map(|e| format!("saying goodbye: {e}"));
                }
                Waited::Timeout => continue,
            };
            let written = Instant::now();
            if let Err(e) = self.write(&packet) {
                return write_error(&e, write_timeout);
            }
            last_written = packet.payload.len();
            if let Some(adapter) = &mut adapter {
                self.adapt(adapter, written, packet.payload.len());
            }
        }
    }

    /// Writes the one packet an [`Opening::One`] asked for, once there is one.
    fn run_once(&mut self, viewers: usize) -> Option<String> {
        (self.shared.on_event)(ServerEvent::Joined {
            peer: self.viewer.peer,
            viewers,
            placement: self.placement,
            adapts: false,
        });
        let Waited::Value(packet) = self.viewer.slot.wait(None) else {
            return None;
        };
        let protocol = &*self.shared.protocol;
        let placement = self.shared.ladder.placement(packet.rendition);
        if let Err(e) = protocol.write_one(self.stream, &placement, &packet) {
            return write_error(&e, self.shared.config.write_timeout);
        }
        self.viewer.sent.fetch_add(1, Ordering::Relaxed);
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Writes `packet`, announcing its rendition first when the viewer just moved to it.
    fn write(&mut self, packet: &Packet) -> io::Result<()> {
        let protocol = &*self.shared.protocol;
        if packet.rendition != self.placement.id {
            let left = self.placement.id;
            self.placement = self.shared.ladder.placement(packet.rendition);
            self.viewer.on.store(packet.rendition, Ordering::Relaxed);
            self.shared.ladder.leave(left);
            protocol.write_switch(self.stream, &self.placement)?;
        }
        let report = lock(&self.viewer.report).take();
        if let Some(report) = report {
            protocol.write_report(self.stream, &report)?;
        }
        protocol.write_packet(self.stream, packet, self.style)?;
        let sent = self.viewer.sent.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
        lock(&self.viewer.rate).record(sent, Instant::now());
        let bytes = packet.payload.len() as u64;
        self.viewer.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn counters(&self) -> Counters {
        Counters {
            offered: self.viewer.offered.load(Ordering::Relaxed),
            sent: self.viewer.sent.load(Ordering::Relaxed),
            bytes: self.viewer.bytes.load(Ordering::Relaxed),
        }
    }

    /// Times the drain of the packet of `bytes` written at `written`, judges the viewer's
    /// link, and starts a move when it should move.
    fn adapt(&mut self, adapter: &mut Adapter, written: Instant, bytes: usize) {
        if let Some(took) = drain_time(self.stream.tcp(), &self.viewer.slot, written)
            && let Ok(info) = tcp_queue::tcp_info(self.stream.tcp())
        {
            adapter.observe_drain(bytes + 64, took, info.min_rtt, Instant::now());
        }
        let now = Instant::now();
        // Once a window, and not while moving (the next packet is the new rendition's).
        if !adapter.due(now) || self.viewer.to.load(Ordering::Relaxed) != self.placement.id {
            return;
        }
        let ladder = &self.shared.ladder;
        let sizes = ladder.rung_sizes();
        let Some(to) = adapter.decide(now, self.counters(), self.placement.id, &sizes) else {
            return;
        };
        ladder.enter(to.to);
        self.viewer.to.store(to.to, Ordering::Relaxed);
        (self.shared.on_event)(ServerEvent::Moved {
            peer: self.viewer.peer,
            from: self.placement,
            to: ladder.placement(to.to),
            link: to.link,
        });
    }
}

/// How long after `written` the socket's queue emptied (every byte acknowledged), polling it;
/// `None` when a newer packet arrives first (the link is busy), the slot closes, a second
/// passes, or the kernel cannot say.
fn drain_time(
    stream: &TcpStream,
    slot: &Latest<Arc<Packet>>,
    written: Instant,
) -> Option<Duration> {
    loop {
        if tcp_queue::unacked_bytes(stream).ok()? == 0 {
            return Some(written.elapsed());
        }
        if slot.is_closed() || written.elapsed() > Duration::from_secs(1) {
            return None;
        }
        // A newer packet ends the wait at once: it goes out without delay.
        if slot.wait_full(Instant::now() + DRAIN_POLL) {
            return None;
        }
    }
}

/// Waits until every byte written to `stream` is acknowledged, or `limit` passes, or the
/// kernel cannot say.
fn wait_drained(stream: &TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    while tcp_queue::unacked_bytes(stream).is_ok_and(|n| n > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
}

/// How often [`drain_time`] looks at the socket's queue.
const DRAIN_POLL: Duration = Duration::from_micros(500);

/// Why a write ended the viewer's stream: nothing for a peer that went away.
fn write_error(e: &io::Error, write_timeout: Duration) -> Option<String> {
    if is_peer_gone(e) {
        None
    } else if is_timeout(e) {
        Some(stalled(write_timeout))
    } else {
        Some(format!("write failed: {e}"))
    }
}

fn stalled(write_timeout: Duration) -> String {
    format!(
        "stalled: a write blocked for more than {:.1}s",
        write_timeout.as_secs_f64()
    )
}

/// How long a delivery-rate sample counts toward the link-rate estimate: the estimate is the
/// highest sample of the last one to two windows (TCP's own samples run low while the sender
/// idles between frames, so the highest recent one is the link's rate).
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// The longest pause between two looks at a draining socket's queue; a pause shorter than
/// `POLL_SLEEP_MIN` (a fast link: loopback) only yields, as a sleep would oversleep it.
const POLL_MAX: Duration = Duration::from_millis(5);
const POLL_SLEEP_MIN: Duration = Duration::from_micros(50);

/// Decides when a subscriber's socket can take its next packet without the packet queueing
/// behind older ones (in the kernel's send buffer or a narrow link's queue), where the
/// newest-wins slot could no longer replace them.
///
/// The rule: write once the bytes not yet acknowledged (`SIOCOUTQ`: unsent plus in flight)
/// are at most one bandwidth-delay product (link rate x smallest round trip, from `TCP_INFO`)
/// plus two segments, or what leaves within [`QUEUE_BUDGET`] if that is more. With that much in flight the bytes ahead of the bottleneck take about as
/// long to cross it as the new packet takes to reach it, so the link stays busy and nothing
/// waits in a queue; waiting for a full drain would idle the link one round trip per packet.
/// A socket that drains at once (loopback, a fast network) is never waited for.
///
/// The socket is also paced: the kernel spaces its packets out at [`PACE_HEADROOM`] times the
/// rate its writes drain at (`SO_MAX_PACING_RATE`; Linux paces TCP itself, with no `fq` qdisc,
/// since 4.13), instead of sending each packet in one burst that waits in the bottleneck's
/// queue. That matters when traffic flows the other way too (a call): the peer's
/// acknowledgements wait in that same queue, behind the burst, and the rule above waits for
/// them; paced, the queue stays short and they pass. The headroom lets the estimate grow when
/// the link widens (a paced write drains at the pace, which is then the next estimate). A write
/// found drained at the first look (a fast link, or a subscriber that adapts: it times each
/// drain to its end before this rule looks), or one at [`UNPACED_DRAIN`] or faster, lifts the
/// cap for a window or two, so one drain slowed by a busy machine cannot pace a fast link down.
#[derive(Debug, Default)]
struct Drain {
    /// The link-rate estimate from `TCP_INFO`'s delivery rate (bytes/s), for the allowance.
    delivered: WindowMax,
    /// The link-rate estimate from how fast writes drain (bytes/s), for pacing.
    drained: WindowMax,
    /// The pacing cap set on the socket (bytes/s; 0: none yet).
    paced: u64,
}

/// The highest sample of the current and the previous [`RATE_WINDOW`].
#[derive(Debug, Default)]
struct WindowMax {
    now: u64,
    before: u64,
    start: Option<Instant>,
}

impl WindowMax {
    /// Takes in a sample (0: none); returns the estimate (0: unknown).
    fn add(&mut self, sample: u64, now: Instant) -> u64 {
        match self.start {
            Some(start) if now.duration_since(start) < RATE_WINDOW => {}
            _ => {
                self.before = self.now;
                self.now = 0;
                self.start = Some(now);
            }
        }
        self.now = self.now.max(sample);
        self.now.max(self.before)
    }
}

/// How fast a drain went: the bytes acknowledged from the first look at the queue (just after
/// a write) to the last, over the time between them less one round trip (the first byte's ack
/// comes back no sooner). The last byte of a write is acknowledged no sooner than it crosses
/// the bottleneck, so a drain never reads much faster than the link, however its
/// acknowledgements bunch up on the way back; it reads slower when they were held up.
#[derive(Debug, Default)]
struct DrainClock {
    first: Option<(usize, Instant)>,
    last: Option<(usize, Instant)>,
}

impl DrainClock {
    fn look(&mut self, queued: usize, now: Instant) {
        if self.first.is_none() {
            self.first = Some((queued, now));
        } else {
            self.last = Some((queued, now));
        }
    }

    /// Bytes per second, when enough bytes drained to tell; unbounded ([`u64::MAX`]) when a
    /// write of `written` bytes had all but a few KB gone by the first look (loopback, a fast
    /// network, or a write the caller waited to drain).
    fn rate(&self, written: usize, rtt: Duration) -> Option<u64> {
        if written >= DRAIN_CLOCK_MIN_BYTES && self.first?.0 < DRAIN_CLOCK_MIN_BYTES {
            return Some(u64::MAX);
        }
        let ((q0, t0), (q1, t1)) = (self.first?, self.last?);
        let secs = t1.duration_since(t0).saturating_sub(rtt).as_secs_f64();
        (q0.saturating_sub(q1) >= DRAIN_CLOCK_MIN_BYTES && secs >= 0.001)
            .then(|| ((q0 - q1) as f64 / secs) as u64)
    }
}

/// The fewest bytes a [`DrainClock`] sample spans (a token bucket passes its first few KB at once).
const DRAIN_CLOCK_MIN_BYTES: usize = 8 * 1024;

impl Drain {
    /// Returns once the socket can take a packet, the slot is closed (the goodbye goes out at
    /// once), or the kernel cannot say; `Err` when its queue did not shrink for `write_timeout`.
    /// `written` is the size of the packet written last (0: none), whose drain this wait sees.
    fn wait(
        &mut self,
        stream: &TcpStream,
        slot: &Latest<Arc<Packet>>,
        written: usize,
        write_timeout: Duration,
    ) -> Result<(), ()> {
        let mut smallest = usize::MAX;
        let mut moved = Instant::now();
        let mut clock = DrainClock::default();
        let mut rtt = Duration::ZERO;
        loop {
            let Ok(queued) = tcp_queue::unacked_bytes(stream) else {
                return Ok(());
            };
            let now = Instant::now();
            clock.look(queued, now);
            if queued == 0 || slot.is_closed() {
                self.pace(stream, clock.rate(written, rtt), now);
                return Ok(());
            }
            let Ok(info) = tcp_queue::tcp_info(stream) else {
                return Ok(());
            };
            rtt = info.min_rtt;
            let rate = self.delivered.add(info.delivery_rate, now);
            let allowed = in_flight_allowed(&info, rate);
            if queued <= allowed {
                self.pace(stream, clock.rate(written, rtt), now);
                return Ok(());
            }
            if queued < smallest {
                smallest = queued;
                moved = now;
            } else if now.duration_since(moved) >= write_timeout {
                return Err(());
            }
            // About the time the excess takes to leave at the link's rate, within bounds.
            let pause = if rate > 0 {
                Duration::from_secs_f64((queued - allowed) as f64 / rate as f64)
            } else {
                POLL_MAX
            };
            if pause < POLL_SLEEP_MIN {
                thread::yield_now();
            } else {
                thread::sleep(pause.min(POLL_MAX));
            }
        }
    }

    /// Takes in how fast the drain that just ended went (`None`: it cannot tell), and caps the
    /// socket's sending rate at [`PACE_HEADROOM`] times the estimate; an unbounded estimate
    /// (a write drained at once in the last window or two) lifts the cap.
    fn pace(&mut self, stream: &TcpStream, drained: Option<u64>, now: Instant) {
        // A drain as fast as a LAN's needs no pacing: it is as good as unbounded.
        let sample = match drained {
            Some(rate) if rate >= UNPACED_DRAIN => u64::MAX,
            other => other.unwrap_or(0),
        };
        let rate = self.drained.add(sample, now);
        if rate == 0 || (rate == u64::MAX && self.paced == 0) {
            return;
        }
        // Saturates: an unbounded estimate asks for no cap (`!0`).
        let want = (rate as f64 * PACE_HEADROOM) as u64;
        // Setting it again only when it moved by more than 1/16.
        if self.paced.abs_diff(want) > self.paced / 16
            && tcp_queue::set_max_pacing_rate(stream, want).is_ok()
        {
            self.paced = want;
        }
    }
}

/// A drain at least this fast (bytes/s: 1 Gbit/s) lifts the pacing cap. Pacing keeps a burst
/// from waiting in a narrow link's queue; on a link this fast a frame crosses within a
/// millisecond, and a cap set from one slow drain (a busy machine, a reader not yet reading)
/// would hold a fast link down: paced, its drains read no faster than the pace.
const UNPACED_DRAIN: u64 = 125_000_000;

/// How far above the drain-rate estimate a subscriber's socket is paced. The estimate reads
/// about the link's rate (0.9-1.1 times it through netbed's token bucket, which passes a
/// write's first few KB at once); paced above the link, the bottleneck's queue grows by
/// (1 - link / pace) of a write, about a tenth.
const PACE_HEADROOM: f64 = 1.1;

/// Bytes that may be unacknowledged when the next packet is written: one bandwidth-delay
/// product at `rate` bytes/s and the smallest round trip seen, plus two segments (an ack the
/// peer delays, a segment on the wire); or, if more, what leaves within [`QUEUE_BUDGET`] at
/// that rate.
fn in_flight_allowed(info: &tcp_queue::TcpInfo, rate: u64) -> usize {
    let rtt = if info.min_rtt.is_zero() {
        info.srtt
    } else {
        info.min_rtt
    };
    let bdp = (rate as f64 * rtt.as_secs_f64()) as usize;
    let budget = (rate as f64 * QUEUE_BUDGET.as_secs_f64()) as usize;
    (bdp + 2 * info.mss.max(536) as usize).max(budget)
}

/// How long a packet may wait behind the bytes still queued: a queue that leaves within this
/// at the link's rate is written behind at once. On a fast link (loopback, a LAN) a frame of
/// several MB drains in well under it, and waiting for the drain would leave the link idle
/// while the next frame is written; on a narrow one (a few MB/s) it is under two segments, so
/// the bandwidth-delay rule above decides alone.
const QUEUE_BUDGET: Duration = Duration::from_millis(1);

/// Writes header and payload with as few syscalls as the kernel allows, no copy.
pub(crate) fn write_message(stream: &mut Conn, header: &[u8], payload: &[u8]) -> io::Result<()> {
    write_parts(stream, &mut [IoSlice::new(header), IoSlice::new(payload)])
}

/// Writes every slice, in order, with as few syscalls as the kernel allows, no copy (plain
/// TCP), or sealed into TLS records ([`Conn::write_parts`]).
pub(crate) fn write_parts(stream: &mut Conn, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    stream.write_parts(slices)
}

/// A subscriber's frame rate: packets written over the last second or so.
#[derive(Debug)]
pub(crate) struct Rate {
    start: Instant,
    at_start: u64,
    fps: f64,
}

impl Rate {
    pub(crate) fn new(now: Instant) -> Rate {
        Rate {
            start: now,
            at_start: 0,
            fps: 0.0,
        }
    }

    /// Takes in that `sent` packets have been written by `now`; a window closes each second.
    pub(crate) fn record(&mut self, sent: u64, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64();
        if secs >= 1.0 {
            self.fps = (sent - self.at_start) as f64 / secs;
            self.start = now;
            self.at_start = sent;
        }
    }

    /// The rate at `now`: the last whole window's, or the open window's once it runs long (a
    /// stalled subscriber decays to 0) or before the first window closed.
    pub(crate) fn fps(&self, sent: u64, now: Instant) -> f64 {
        let secs = now.duration_since(self.start).as_secs_f64();
        if secs >= 2.0 || (self.fps == 0.0 && secs >= 0.25) {
            sent.saturating_sub(self.at_start) as f64 / secs
        } else {
            self.fps
        }
    }
}

impl Census for Shared {
    fn census(&self, addr: SocketAddr) -> ProtocolFigures {
        let now = Instant::now();
        let viewers = lock(&self.viewers)
            .iter()
            .map(|v| {
                let frames = v.sent.load(Ordering::Relaxed);
                ViewerFigures {
                    peer: v.peer,
                    placement: self.ladder.placement(v.on.load(Ordering::Relaxed)),
                    fps: lock(&v.rate).fps(frames, now),
                    frames,
                    dropped: v.slot.dropped(),
                }
            })
            .collect();
        ProtocolFigures {
            protocol: self.protocol.name(),
            addr,
            frames: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            viewers,
        }
    }
}

impl Watched for Fanout {
    fn census(&self) -> (SocketAddr, std::sync::Weak<dyn Census>) {
        let shared: Arc<dyn Census> = self.shared.clone();
        (self.local_addr(), Arc::downgrade(&shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_reads_the_bytes_acknowledged_over_the_time_less_one_round_trip() {
        let t0 = Instant::now();
        let mut clock = DrainClock::default();
        clock.look(60_000, t0);
        assert_eq!(
            clock.rate(60_000, Duration::ZERO),
            None,
            "one look tells nothing"
        );
        clock.look(30_000, t0 + Duration::from_millis(20));
        clock.look(3_000, t0 + Duration::from_millis(50));
        // 57 000 bytes in 50 ms, 10 of them the round trip: 57 000 / 0.040 s.
        assert_eq!(
            clock.rate(60_000, Duration::from_millis(10)),
            Some(1_425_000)
        );
    }

    #[test]
    fn a_drain_too_small_or_too_short_to_tell_gives_no_rate() {
        let t0 = Instant::now();
        let mut small = DrainClock::default();
        small.look(5_000, t0);
        small.look(0, t0 + Duration::from_millis(20));
        assert_eq!(small.rate(5_000, Duration::ZERO), None, "under 8 KiB");
        let mut quick = DrainClock::default();
        quick.look(60_000, t0);
        quick.look(0, t0 + Duration::from_millis(10));
        assert_eq!(
            quick.rate(60_000, Duration::from_millis(10)),
            None,
            "all round trip"
        );
    }

    #[test]
    fn a_write_gone_by_the_first_look_reads_unbounded() {
        let t0 = Instant::now();
        let mut fast = DrainClock::default();
        fast.look(0, t0);
        assert_eq!(fast.rate(60_000, Duration::ZERO), Some(u64::MAX));
        assert_eq!(
            fast.rate(0, Duration::ZERO),
            None,
            "nothing written: nothing to tell"
        );
    }

    #[test]
    fn the_estimate_is_the_highest_sample_of_this_window_and_the_last() {
        let t0 = Instant::now();
        let mut max = WindowMax::default();
        assert_eq!(max.add(0, t0), 0, "no sample: unknown");
        assert_eq!(max.add(500, t0), 500);
        assert_eq!(max.add(300, t0 + Duration::from_millis(100)), 500);
        // The next window keeps the last one's highest.
        assert_eq!(max.add(200, t0 + RATE_WINDOW), 500);
        // The one after that forgets it.
        assert_eq!(max.add(100, t0 + RATE_WINDOW * 2), 200);
    }

    #[test]
    fn a_queue_that_leaves_within_the_budget_is_written_behind_and_a_narrow_link_keeps_its_bdp() {
        let info = |rtt_us: u64| tcp_queue::TcpInfo {
            mss: 1448,
            srtt: Duration::from_micros(rtt_us),
            min_rtt: Duration::from_micros(rtt_us),
            delivery_rate: 0,
        };
        // Loopback: 8 GB/s and 10 us. One ms of it (8 MB) beats the BDP (80 KB).
        assert_eq!(in_flight_allowed(&info(10), 8_000_000_000), 8_000_000);
        // A narrow link: 1.1 MB/s and 100 ms. The BDP and two segments, as before.
        assert_eq!(
            in_flight_allowed(&info(100_000), 1_100_000),
            110_000 + 2 * 1448
        );
        // The same link with no delay: two segments (1.1 KB of budget is less).
        assert_eq!(in_flight_allowed(&info(0), 1_100_000), 2 * 1448);
        // No rate known yet: two segments.
        assert_eq!(in_flight_allowed(&info(10), 0), 2 * 1448);
    }
}
