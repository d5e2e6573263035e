//! The viewer's side over UDP: [`UdpConnector`] joins (hello, cookie echoed, the token proved
//! when asked), and [`UdpSubscription`] rebuilds frames, reports what arrived (its keepalive),
//! and says the connection is lost when the server falls silent or forgets it, so the
//! session's reconnect loop joins again with backoff. Only datagrams of its own session count
//! ([`framewire_wire::session`]): a start that answers its own hello, fragments with their
//! frame's tag, an end, rejoin or peer report with the session id; anything else is counted
//! as forged and changes nothing, not even the idle timeout.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};

use framewire_core::{
    Closer, Connector, Packet, PeerReport, Placement, Received, Request, StreamInfo, Subscription,
    TransportError,
};

use super::control::{self, Control};
use crate::client::NetError;
use crate::tls::TlsClient;
use framewire_wire::datagram::{self, Datagram, HelloMsg, PREFIX_LEN, ReportMsg};
use framewire_wire::message::{SWITCH_LEN, Switch};
use framewire_wire::reassembly::{Complete, Losses, Reassembler};
use framewire_wire::seal::Session;
use framewire_wire::session::{self as proofs, Proof, SessionKey};
use framewire_wire::token::Token;

/// How often a viewer reports (and so keeps its place).
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// How soon a viewer that waits for a keyframe asks again at once (its reports ask as well).
const KEYFRAME_ASK: Duration = Duration::from_millis(100);
/// The receive buffer asked for: a few large frames.
const RECEIVE_BUFFER: usize = 4 << 20;
/// How long a join waits for each answer before saying its hello again.
const HELLO_RETRY: Duration = Duration::from_millis(250);
/// How long a join tries in all.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Limits of a viewer's UDP connection.
#[derive(Debug, Clone)]
pub struct UdpClientConfig {
    /// Largest frame payload accepted, in bytes.
    pub max_payload: u32,
    /// Silence from the server after which the connection is lost.
    pub idle_timeout: Duration,
    /// The shared token, proved when the server asks.
    pub token: Option<Token>,
    /// A side of a call: the call's number (0, the default, for a one-way viewer).
    pub call: u16,
    /// A caller: the port its own stream is served on, for the listener to join; else 0.
    pub port: u16,
    /// Seal the datagrams under keys from a TLS control connection to the server, whose
    /// certificate is trusted as this says ([`super::control`]). Default none.
    pub tls: Option<TlsClient>,
}

impl Default for UdpClientConfig {
    fn default() -> Self {
        UdpClientConfig {
            max_payload: framewire_wire::message::DEFAULT_MAX_PAYLOAD,
            idle_timeout: Duration::from_secs(15),
            token: None,
            call: 0,
            port: 0,
            tls: None,
        }
    }
}

/// What a viewer lost, over all its connections: shared with whoever prints the stats.
#[derive(Debug, Default)]
pub struct UdpLosses {
    /// Frames sent that never arrived complete.
    pub lost: AtomicU64,
    /// Fragments of incomplete frames that never arrived.
    pub fragments_lost: AtomicU64,
    /// Data fragments rebuilt from parity.
    pub recovered: AtomicU64,
    /// Datagrams dropped: malformed, late, duplicated, inconsistent or out of the window.
    pub dropped_datagrams: AtomicU64,
    /// Datagrams without this session's proof (a forged source, or an earlier session).
    pub forged: AtomicU64,
    /// Complete frames of an inter-frame codec not handed on: deltas after a lost frame,
    /// while it waited for a keyframe.
    pub awaited_keyframe: AtomicU64,
    /// Datagrams the socket refused to send (a firewall's `EPERM`, a full queue's `ENOBUFS`),
    /// or whose send an ICMP error answered (`ECONNREFUSED`): each one lost datagram. Joins and
    /// reports go again as if lost; only silence past the idle timeout ends a stream.
    pub unsent: AtomicU64,
}

/// Whether `e`, from a datagram socket, is about one datagram (refused by a firewall or a full
/// queue, or answered by an ICMP error), not the socket: the stream goes on.
fn one_datagram(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        PermissionDenied
            | ConnectionRefused
            | ConnectionReset
            | HostUnreachable
            | NetworkUnreachable
            | OutOfMemory
    ) || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// Counts a datagram to or from `peer` lost to `e` when `e` is about one datagram, and hands
/// `e` back as why (`Ok`); else `e` is the socket's failure (`Err`).
fn count_unsent(losses: &UdpLosses, peer: SocketAddr, e: io::Error) -> io::Result<io::Error> {
    if !one_datagram(&e) {
        return Err(e);
    }
    losses.unsent.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, "udp datagram lost at the socket: {e}");
    Ok(e)
}

/// What a timeout adds when this end's last send failed: `; the last hello sent was refused
/// here: Operation not permitted (os error 1)`.
fn refused_here(what: &str, refused: Option<&io::Error>) -> String {
    refused.map_or_else(String::new, |e| {
        format!("; the last {what} sent was refused here: {e}")
    })
}

/// Joins a UDP server: the viewer's [`Connector`].
#[derive(Debug, Clone)]
pub struct UdpConnector {
    /// The server.
    pub addr: SocketAddr,
    /// What each join asks for.
    pub request: Request,
    /// Limits.
    pub config: UdpClientConfig,
    /// Losses, summed over connections.
    pub losses: Arc<UdpLosses>,
}

impl Connector for UdpConnector {
    fn describe(&self) -> String {
        format!("udp://{}", self.addr)
    }

    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        Ok(Box::new(UdpSubscription::join(
            self.addr,
            self.request,
            self.config.clone(),
            Arc::clone(&self.losses),
        )?))
    }
}

/// The viewer's socket, and how its datagrams are sealed.
struct Wire {
    socket: UdpSocket,
    sealed: Option<Sealing>,
    scratch: Vec<u8>,
}

/// A sealed stream's viewer end, and the control connection that keyed it (held open while
/// the stream runs; a listener joining its caller's stream has none of its own).
pub(crate) struct Sealing {
    pub(crate) session: Arc<Session>,
    pub(crate) _control: Option<Control>,
}

impl Wire {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &self.sealed {
            None => self.socket.send(bytes).map(drop),
            Some(sealed) => {
                sealed.session.seal(bytes, &mut self.scratch);
                self.socket.send(&self.scratch).map(drop)
            }
        }
    }

    /// Where the datagram in `buf` is once opened; `None` when it is sealed wrong or not at
    /// all on a sealed stream.
    fn open(&self, buf: &mut [u8]) -> Option<std::ops::Range<usize>> {
        match &self.sealed {
            None => Some(0..buf.len()),
            Some(sealed) => sealed.session.open(buf, Instant::now()).ok(),
        }
    }
}

/// One joined viewer's stream.
pub struct UdpSubscription {
    wire: Wire,
    peer: SocketAddr,
    placement: Placement,
    prefix: [u8; SWITCH_LEN],
    fps: f64,
    config: UdpClientConfig,
    reassembler: Reassembler,
    frame: Vec<u8>,
    /// A frame held back while its switch is handed out first: its seq and capture time.
    held: Option<(u64, u64, u64)>,
    /// A peer report (a call) to hand on at the next chance, after any frame completed first.
    told: Option<PeerReport>,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// The session's key, from the start.
    key: SessionKey,
    /// The last frame number whose tag was checked, and that tag.
    tagged: Option<(u32, Proof)>,
    /// The number of the last complete frame (0 before any).
    handed: u32,
    /// When it last asked for a keyframe at once.
    asked: Option<Instant>,
    /// Whether the frame in `frame` is a keyframe.
    keyframe: bool,
    report: ReportMsg,
    next_report: Instant,
    heard: Instant,
    frames: u64,
    closed: Arc<AtomicBool>,
    losses: Arc<UdpLosses>,
    counted: Losses,
    frame_bytes: u64,
    /// Why the last report did not leave, if it did not (said when the stream times out).
    refused: Option<io::Error>,
}

fn lost(peer: SocketAddr, source: io::Error) -> TransportError {
    TransportError::lost(format!("server udp://{peer}: {source}"))
}

impl UdpSubscription {
    /// Joins the server at `addr`: with `tls`, its control connection first; then hello, the
    /// cookie echoed (with the token's proof when asked), then the start.
    pub fn join(
        addr: SocketAddr,
        request: Request,
        config: UdpClientConfig,
        losses: Arc<UdpLosses>,
    ) -> Result<UdpSubscription, TransportError> {
        let sealed = match &config.tls {
            None => None,
            Some(tls) => {
                let (control, keys, _) = control::dial(addr, tls, false, JOIN_TIMEOUT)?;
                Some(Sealing {
                    session: Arc::new(Session::viewer(&keys)),
                    _control: Some(control),
                })
            }
        };
        UdpSubscription::join_sealed(addr, request, config, losses, sealed)
    }

    /// [`join`](Self::join) with the sealing decided already.
    pub(crate) fn join_sealed(
        addr: SocketAddr,
        request: Request,
        config: UdpClientConfig,
        losses: Arc<UdpLosses>,
        sealed: Option<Sealing>,
    ) -> Result<UdpSubscription, TransportError> {
        let any: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).map_err(|e| lost(addr, e))?;
        // Room for a few frames while the decoder works (the kernel caps it at rmem_max).
        if let Err(e) = setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER) {
            tracing::debug!("SO_RCVBUF: {e}");
        }
        // Only the server's datagrams arrive on a connected socket.
        socket.connect(addr).map_err(|e| lost(addr, e))?;
        let mut wire = Wire {
            socket,
            sealed,
            scratch: Vec::new(),
        };
        let mut hello = HelloMsg {
            request,
            call: config.call,
            port: config.port,
            ..HelloMsg::default()
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        let deadline = Instant::now() + JOIN_TIMEOUT;
        let mut cookie_seen = false;
        // Why the last hello did not leave, if it did not.
        let mut refused = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                let what = if cookie_seen { "a start" } else { "a cookie" };
                return Err(lost(
                    addr,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no answer ({what}) to the udp hello within {}s{}",
                            JOIN_TIMEOUT.as_secs(),
                            refused_here("hello", refused.as_ref())
                        ),
                    ),
                ));
            }
            hello.write(&mut out);
            refused = match wire.send(&out) {
                Ok(()) => None,
                Err(e) => Some(count_unsent(&losses, addr, e).map_err(|e| lost(addr, e))?),
            };
            let wait_until = (now + HELLO_RETRY).min(deadline);
            while let Some(n) = recv_until(&wire.socket, &mut buf, wait_until, &losses, addr)
                .map_err(|e| lost(addr, e))?
            {
                let Some(range) = wire.open(&mut buf[..n]) else {
                    losses.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                // An end answering this hello carries its cookie (zero before one came).
                let asked: Proof = hello.cookie[..proofs::PROOF_LEN]
                    .try_into()
                    .expect("a cookie is longer than a proof");
                match datagram::parse(&buf[range], 0) {
                    Ok(Datagram::Cookie(c)) => {
                        cookie_seen = true;
                        hello.cookie = c.cookie;
                        if let Some(challenge) = c.challenge {
                            let Some(token) = &config.token else {
                                return Err(NetError::TokenNeeded { peer: addr }.into());
                            };
                            hello.proof = token.prove(&challenge);
                        }
                        break;
                    }
                    Ok(Datagram::Start(start)) => {
                        let Some(key) =
                            SessionKey::from_start(start.key, &start.check, &hello.cookie)
                        else {
                            losses.forged.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let h = start.handshake;
                        let now = Instant::now();
                        let mut sub = UdpSubscription {
                            report: ReportMsg {
                                session: key.id(),
                                ..ReportMsg::default()
                            },
                            key,
                            tagged: None,
                            handed: 0,
                            asked: None,
                            keyframe: true,
                            wire,
                            peer: addr,
                            placement: h.placement,
                            prefix: Switch {
                                placement: h.placement,
                            }
                            .to_bytes(),
                            fps: h.fps,
                            reassembler: Reassembler::new(
                                config.max_payload.saturating_add(PREFIX_LEN as u32),
                            ),
                            config,
                            frame: Vec::new(),
                            held: None,
                            told: None,
                            buf,
                            out,
                            next_report: now,
                            heard: now,
                            frames: 0,
                            closed: Arc::new(AtomicBool::new(false)),
                            losses,
                            counted: Losses::default(),
                            frame_bytes: 0,
                            refused: None,
                        };
                        // The first report at once: the server sends no frame before it.
                        sub.report_now(now).map_err(|e| lost(addr, e))?;
                        return Ok(sub);
                    }
                    Ok(Datagram::End(end)) if end.who != asked => {
                        losses.forged.fetch_add(1, Ordering::Relaxed)
                    }
                    Ok(Datagram::End(end)) if config.call != 0 => {
                        let reason = end.reason.unwrap_or_else(|| "it is shutting down".into());
                        return Err(NetError::CallRefused { peer: addr, reason }.into());
                    }
                    Ok(Datagram::End(end)) => {
                        let reason = end.reason;
                        return Err(NetError::Refused { peer: addr, reason }.into());
                    }
                    // Anything else (a stray fragment of an earlier stream) is not an answer.
                    _ => losses.dropped_datagrams.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
    }

    /// Takes the datagram of `n` bytes in the buffer: a frame it completed (with the bytes of
    /// the datagrams since the last one), the end of the connection, or nothing yet.
    fn take(&mut self, n: usize) -> Step {
        let peer = self.peer;
        let max = self.config.max_payload.saturating_add(PREFIX_LEN as u32);
        let Some(range) = self.wire.open(&mut self.buf[..n]) else {
            self.losses
                .dropped_datagrams
                .fetch_add(1, Ordering::Relaxed);
            return Step::Nothing;
        };
        let parsed = datagram::parse(&self.buf[range], max);
        let key = &self.key;
        let ours = match &parsed {
            Ok(Datagram::Fragment(f)) => {
                let known = self.tagged == Some((f.sent, f.tag));
                known || key.is_tag(f.sent, &f.tag)
            }
            Ok(Datagram::End(end)) => key.is_id(&end.who),
            Ok(Datagram::PeerReport(who, _) | Datagram::Rejoin(who)) => key.is_id(who),
            // Counted below as dropped.
            _ => true,
        };
        if !ours {
            self.losses.forged.fetch_add(1, Ordering::Relaxed);
            return Step::Nothing;
        }
        self.heard = Instant::now();
        self.report.bytes += n as u64;
        self.frame_bytes += n as u64;
        let fragment = match parsed {
            Ok(Datagram::Fragment(f)) => f,
            Ok(Datagram::End(end)) => {
                return Step::Return(Ok(Received::End { reason: end.reason }));
            }
            Ok(Datagram::PeerReport(_, report)) => {
                self.told = Some(report);
                return Step::Nothing;
            }
            Ok(Datagram::Rejoin(_)) => {
                return Step::Return(Err(lost(
                    peer,
                    io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the server no longer knows this viewer (did it restart?)",
                    ),
                )));
            }
            // A repeated start, or bytes that are no datagram of ours: counted, dropped.
            Ok(_) | Err(_) => {
                self.losses
                    .dropped_datagrams
                    .fetch_add(1, Ordering::Relaxed);
                return Step::Nothing;
            }
        };
        self.tagged = Some((fragment.sent, fragment.tag));
        if fragment.sent > self.report.last_sent {
            // The receipt of the newest frame seen: what keeps this viewer at the server.
            self.report.last_sent = fragment.sent;
            self.report.receipt = fragment.tag;
        }
        let done = self
            .reassembler
            .push(&fragment, self.heard, &mut self.frame);
        self.count_losses();
        let Some(done) = done else {
            return Step::Nothing;
        };
        self.frames += 1;
        self.report.frames += 1;
        self.report.last_bytes = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
        self.report.last_spread_us = u32::try_from(done.spread.as_micros()).unwrap_or(u32::MAX);
        Step::Frame(done, std::mem::take(&mut self.frame_bytes))
    }

    /// Whether the frame `done` is a delta that cannot decode: a frame before it was lost (or
    /// one since the last keyframe was). Then it waits for a keyframe, asking for one in its
    /// reports, the first at once (again after [`KEYFRAME_ASK`]).
    fn awaits_keyframe(&mut self, done: &Complete, now: Instant) -> io::Result<bool> {
        let gap = self.handed != 0 && done.sent != self.handed.wrapping_add(1);
        self.handed = done.sent;
        if !done.delta {
            self.report.keyframe = false;
            return Ok(false);
        }
        if !gap && !self.report.keyframe {
            return Ok(false);
        }
        self.report.keyframe = true;
        self.losses.awaited_keyframe.fetch_add(1, Ordering::Relaxed);
        if self
            .asked
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_ASK)
        {
            self.asked = Some(now);
            self.report_now(now)?;
        }
        Ok(true)
    }

    /// Sends a report (a refused one counts as lost and goes again at the next); `Err` when
    /// the socket itself failed.
    fn report_now(&mut self, now: Instant) -> io::Result<()> {
        self.report.write(&mut self.out);
        self.refused = match self.wire.send(&self.out) {
            Ok(()) => None,
            Err(e) => Some(count_unsent(&self.losses, self.peer, e)?),
        };
        self.next_report = now + REPORT_EVERY;
        Ok(())
    }

    /// Adds what the reassembler counted since last time to the shared losses.
    fn count_losses(&mut self) {
        let now = self.reassembler.losses();
        let before = std::mem::replace(&mut self.counted, now);
        let add = |a: &AtomicU64, n: u64| a.fetch_add(n, Ordering::Relaxed);
        add(&self.losses.lost, now.lost - before.lost);
        add(
            &self.losses.fragments_lost,
            now.fragments_lost - before.fragments_lost,
        );
        add(&self.losses.recovered, now.recovered - before.recovered);
        let dropped = |l: &Losses| l.late_or_duplicate + l.inconsistent + l.out_of_window;
        add(
            &self.losses.dropped_datagrams,
            dropped(&now) - dropped(&before),
        );
    }

    fn fill(&mut self, packet: &mut Packet, seq: u64, capture_us: u64, bytes: u64) -> Received {
        packet.seq = seq;
        packet.capture_us = capture_us;
        packet.keyframe = self.keyframe;
        packet.rendition = self.placement.id;
        packet.payload.clear();
        packet.payload.extend_from_slice(&self.frame[PREFIX_LEN..]);
        Received::Packet { bytes }
    }
}

/// What one datagram gave.
enum Step {
    /// Nothing to hand on yet.
    Nothing,
    /// A complete frame (now in the subscription's frame buffer), and the bytes it took.
    Frame(Complete, u64),
    /// What `recv` returns now.
    Return(Result<Received, TransportError>),
}

/// Datagrams read at most, after a frame completed, to find a newer one.
const MAX_DRAIN: usize = 4096;

/// Receives one datagram from `peer`, waiting until `until`; `None` when it passed. An ICMP
/// error answering an earlier send is one lost datagram, counted in `losses`.
fn recv_until(
    socket: &UdpSocket,
    buf: &mut [u8],
    until: Instant,
    losses: &UdpLosses,
    peer: SocketAddr,
) -> io::Result<Option<usize>> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => drop(count_unsent(losses, peer, e)?),
        }
    }
}

impl Drop for UdpSubscription {
    fn drop(&mut self) {
        // Leaving: the server need not wait out its idle timeout.
        datagram::write_end(&self.key.id(), None, &mut self.out);
        let _ = self.wire.send(&self.out);
    }
}

impl Subscription for UdpSubscription {
    fn stream(&self) -> StreamInfo {
        self.placement.rendition.stream
    }

    fn placement(&self) -> Placement {
        self.placement
    }

    fn fps(&self) -> f64 {
        self.fps
    }

    fn peer(&self) -> String {
        format!("server udp://{}", self.peer)
    }

    fn position(&self) -> String {
        format!("frame {}", self.frames)
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        if let Some((seq, capture_us, bytes)) = self.held.take() {
            return Ok(self.fill(packet, seq, capture_us, bytes));
        }
        if let Some(report) = self.told.take() {
            return Ok(Received::Report(report));
        }
        let peer = self.peer;
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(lost(peer, io::Error::other("closed")));
            }
            let now = Instant::now();
            if now >= self.next_report {
                self.report_now(now).map_err(|e| lost(peer, e))?;
            }
            let idle = self.heard + self.config.idle_timeout;
            if now >= idle {
                return Err(lost(
                    peer,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no datagram from the server for {}s{}",
                            self.config.idle_timeout.as_secs_f64(),
                            refused_here("report", self.refused.as_ref())
                        ),
                    ),
                ));
            }
            let until = self.next_report.min(idle);
            let socket = &self.wire.socket;
            let Some(n) = recv_until(socket, &mut self.buf, until, &self.losses, peer)
                .map_err(|e| lost(peer, e))?
            else {
                continue;
            };
            let (mut done, mut bytes) = match self.take(n) {
                Step::Nothing => match self.told.take() {
                    Some(report) => return Ok(Received::Report(report)),
                    None => continue,
                },
                Step::Return(r) => return r,
                Step::Frame(done, bytes) => (done, bytes),
            };
            // Newest wins here too: datagrams already queued may complete a newer frame, and
            // an older one is not worth decoding then (a bounded number, so a fast stream
            // cannot keep this loop from returning). Not for an inter-frame codec, whose
            // frames each need the one before.
            let inter = !self.placement.rendition.stream.codec.is_intra_only();
            self.wire
                .socket
                .set_nonblocking(true)
                .map_err(|e| lost(peer, e))?;
            let mut early = None;
            for _ in 0..if inter { 0 } else { MAX_DRAIN } {
                let n = match self.wire.socket.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => match count_unsent(&self.losses, peer, e) {
                        Ok(_) => continue,
                        Err(e) => {
                            early = Some(Err(lost(peer, e)));
                            break;
                        }
                    },
                };
                match self.take(n) {
                    Step::Nothing => {}
                    Step::Return(r) => {
                        early = Some(r);
                        break;
                    }
                    Step::Frame(newer, more) => (done, bytes) = (newer, bytes + more),
                }
            }
            self.wire
                .socket
                .set_nonblocking(false)
                .map_err(|e| lost(peer, e))?;
            if let Some(r) = early {
                return r;
            }
            if self
                .awaits_keyframe(&done, now)
                .map_err(|e| lost(peer, e))?
            {
                continue;
            }
            self.keyframe = !done.delta;
            let prefix: [u8; SWITCH_LEN] = self.frame[..PREFIX_LEN].try_into().expect("prefix");
            if prefix != self.prefix {
                let switch = Switch::parse(&prefix).map_err(|e| {
                    TransportError::fatal(format!("server udp://{peer}: frame {}: {e}", done.seq))
                })?;
                self.prefix = prefix;
                self.placement = switch.placement;
                self.held = Some((done.seq, done.capture_us, bytes));
                return Ok(Received::Switched(self.placement));
            }
            return Ok(self.fill(packet, done.seq, done.capture_us, bytes));
        }
    }

    fn closer(&self) -> Closer {
        let closed = Arc::clone(&self.closed);
        Arc::new(move || closed.store(true, Ordering::SeqCst))
    }
}
