//! [`UdpServer`]: a [`Publisher`] over one UDP socket. A receiving thread answers hellos
//! (a stateless cookie first: nothing larger than a hello goes to an address before it echoes
//! one), hears reports (the keepalive, and what moves a viewer along the ladder through
//! `adapt.rs`) and forgets viewers that go silent; each viewer has its own sending thread and
//! a `Latest` slot, so the newest frame wins and a slow viewer never holds up another.
//!
//! A viewer is its session, not its address ([`framewire_wire::session`]): its frames flow
//! only after a report carries the session id that the start gave it, its report, end or
//! rejoin counts only with that id, and it stays only while its reports prove receipt of the
//! frames sent to it. So a forged source address gets nothing larger than what it sent.
//!
//! Pacing: a viewer's thread spreads a frame's datagrams at twice the rate its reports say the
//! link carries (a token bucket of four datagrams, [`Pacer`]), instead of one burst that a
//! narrow link's queue cuts the tail off. Twice, so that the arrival spread still measures the
//! link and not the pacing: where the link is faster, the next estimate doubles. Before the
//! first report with a frame in it the datagrams leave unpaced. The thread sleeps holding no
//! lock.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use framewire_core::{Ladder, Packet, Placement, Publisher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::control::{ControlPort, Entry, Sessions};
use crate::adapt::{Adapter, Counters};
use crate::board::{Census, ProtocolFigures, Watched};
use crate::roster::{
    Delivery, EventFn, Gone, Link, Member, Outlet, Refusal, Refused, Roster, ServerEvent, lock,
};
use crate::tls::TlsServer;
use framewire_core::{Latest, PeerReport};
use framewire_wire::datagram::{
    self, COOKIE_BYTES, CookieMsg, DEFAULT_MTU, Datagram, HelloMsg, Outgoing, ReportMsg, StartMsg,
};
use framewire_wire::message::{Handshake, SWITCH_LEN, Switch};
use framewire_wire::pacing::{PACE_BURST, Pacer};
use framewire_wire::seal::{self, Session, StreamKeys};
use framewire_wire::session::{self as proofs, Heard, Liveness, Proof, SessionKey};
use framewire_wire::token::{self, Token};

/// Limits of a UDP server; each has a documented default.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// Viewers served at once; one more is told the server is full. Default 64.
    pub max_viewers: usize,
    /// Silence from a viewer (no report) after which it is gone. Default 5 s.
    pub idle_timeout: Duration,
    /// Frame bytes per datagram. Default [`DEFAULT_MTU`] (1200).
    pub mtu: usize,
    /// Data datagrams per parity datagram; 0 sends none. Default 8 (12.5% more datagrams).
    pub fec: u8,
    /// The shared token a viewer must prove. Default none.
    pub token: Option<Token>,
    /// Who may join, asked once a hello has echoed its cookie (and proved the token). `None`
    /// (the default) takes one-way viewers and refuses a hello with a call number; a side of
    /// a call ([`super::chat`]) takes its peer only.
    pub admit: Option<Admit>,
    /// Seal every datagram under keys from a TLS control connection on the TCP port with the
    /// UDP port's number, which presents this identity ([`super::control`]). Default none.
    pub tls: Option<TlsServer>,
    /// Seal every datagram under sessions registered with [`UdpServer::sessions`] by the
    /// caller itself, with no control port (a call's caller: its control connection is to
    /// the listener). Implied by `tls`. Default false.
    pub sealed: bool,
}

/// A rule for who may join: `Err(reason)` refuses the hello with that reason. It also gets
/// the caller's stream keys when the hello came sealed under a call's control connection.
#[derive(Clone)]
pub struct Admit(pub Arc<AdmitFn>);

/// See [`Admit`].
pub type AdmitFn =
    dyn Fn(SocketAddr, &HelloMsg, Option<&Arc<StreamKeys>>) -> Result<(), Refused> + Send + Sync;

impl std::fmt::Debug for Admit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admit(..)")
    }
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_viewers: 64,
            idle_timeout: Duration::from_secs(5),
            mtu: DEFAULT_MTU,
            fec: 8,
            token: None,
            admit: None,
            tls: None,
            sealed: false,
        }
    }
}

/// Datagrams the server dropped, by why.
#[derive(Debug, Default)]
pub struct Drops {
    /// Not a datagram this server takes (bad bytes, a kind only a server sends).
    pub malformed: AtomicU64,
    /// A hello whose cookie was wrong or stale (answered with a fresh cookie).
    pub bad_cookie: AtomicU64,
    /// Reports from addresses that are not viewers (answered with a rejoin); sealed
    /// datagrams of no session this server knows, or from another address than the session's.
    pub unknown: AtomicU64,
    /// Reports and ends from a viewer's address without its session's id (a forged source,
    /// or an earlier session), and hellos sealed under another session than its viewer's.
    pub forged: AtomicU64,
    /// A sealed server: datagrams that were not sealed, or did not open (forged, damaged,
    /// replayed).
    pub unsealed: AtomicU64,
    /// Datagrams the socket refused to send (a firewall's `EPERM`, a full queue's `ENOBUFS`,
    /// an ICMP error's `ECONNREFUSED`): each is one lost datagram, and the rest still go.
    pub unsent: AtomicU64,
}

impl std::fmt::Display for Drops {
    /// `udp datagrams dropped: 3 malformed, 1 with a stale cookie, 2 from no viewer`, then
    /// `, 6 without their session's id` and `, 4 not sealed or not opening` when there were
    /// any such, and `; 5 refused by the socket as they were sent` when sends failed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write!(
            f,
            "udp datagrams dropped: {} malformed, {} with a stale cookie, {} from no viewer",
            n(&self.malformed),
            n(&self.bad_cookie),
            n(&self.unknown),
        )?;
        if let forged @ 1.. = n(&self.forged) {
            write!(f, ", {forged} without their session's id")?;
        }
        if let u @ 1.. = n(&self.unsealed) {
            write!(f, ", {u} not sealed or not opening")?;
        }
        match n(&self.unsent) {
            0 => Ok(()),
            u => write!(f, "; {u} refused by the socket as they were sent"),
        }
    }
}

/// How often the receiving thread looks for silent viewers and a shutdown.
const TICK: Duration = Duration::from_millis(100);
/// A cookie is good for this long (and the one before it as well).
const COOKIE_PERIOD: Duration = Duration::from_secs(30);
/// What the cookie's HMAC covers besides the address and the period.
const COOKIE_LABEL: &[u8] = b"framewire udp cookie v1";
const CHALLENGE_LABEL: &[u8] = b"framewire udp challenge v1";

/// What the UDP server keeps of a viewer beside what the roster keeps.
struct Datagrams {
    /// The session's key, drawn at the join; the start carries it.
    key: SessionKey,
    /// The cookie its join echoed, which the start's check covers.
    cookie: [u8; COOKIE_BYTES],
    /// Whether and when it last proved receipt, and its newest report (of its session) not
    /// yet taken in by its outlet.
    heard: Mutex<(Liveness, Option<ReportMsg>)>,
    /// Woken when the first report of its session confirms it.
    confirmed: Condvar,
    /// A sealed server: the session its datagrams are sealed under.
    session: Option<Arc<Session>>,
}

/// A viewer of the UDP server.
type Viewer = Member<Datagrams>;

struct Shared {
    socket: UdpSocket,
    fps: f64,
    config: UdpConfig,
    secret: [u8; 32],
    /// The viewers: their slots and places on the ladder.
    roster: Roster<Datagrams>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Frames whose datagrams all went to the socket, over every viewer.
    frames_out: AtomicU64,
    drops: Drops,
    on_event: Arc<EventFn>,
    /// A sealed server's sessions.
    sealed: Option<Arc<Sessions>>,
}

/// A running UDP server. Dropping it shuts it down.
pub struct UdpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    receiver: Mutex<Option<JoinHandle<()>>>,
    control: Mutex<Option<ControlPort>>,
}

impl UdpServer {
    /// Binds `addr` and serves `ladder`'s renditions (at `fps`, informational) to viewers.
    pub fn bind(
        addr: SocketAddr,
        ladder: Arc<Ladder>,
        fps: f64,
        config: UdpConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<UdpServer> {
        if !(datagram::MIN_MTU..=datagram::MAX_MTU).contains(&config.mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mtu {} is outside {}..={}",
                    config.mtu,
                    datagram::MIN_MTU,
                    datagram::MAX_MTU
                ),
            ));
        }
        let secret = token::challenge().map_err(io::Error::other)?;
        let on_event: Arc<EventFn> = Arc::new(on_event);
        let sealed = (config.sealed || config.tls.is_some()).then(Arc::default);
        let mut tries = 0;
        let (socket, control) = loop {
            let socket = UdpSocket::bind(addr)?;
            let Some((tls, sessions)) = config.tls.as_ref().zip(sealed.as_ref()) else {
                break (socket, None);
            };
            let control = ControlPort::bind(
                socket.local_addr()?,
                tls.clone(),
                Arc::clone(sessions),
                config.idle_timeout,
                config.max_viewers + 4,
                Arc::clone(&on_event),
            );
            match control {
                Ok(control) => break (socket, Some(control)),
                // Port 0 picked a UDP port whose TCP twin is taken: pick again.
                Err(e) if addr.port() == 0 && tries < 16 => {
                    tracing::debug!("{e}");
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        socket.set_read_timeout(Some(TICK))?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            socket,
            fps,
            config,
            secret,
            roster: Roster::new(ladder),
            threads: Mutex::new(Vec::new()),
            frames_out: AtomicU64::new(0),
            drops: Drops::default(),
            on_event,
            sealed,
        });
        let inner = Arc::clone(&shared);
        let receiver = thread::Builder::new()
            .name("udp-receive".into())
            .spawn(move || receive_loop(&inner))?;
        Ok(UdpServer {
            addr,
            shared,
            receiver: Mutex::new(Some(receiver)),
            control: Mutex::new(control),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A sealed server's sessions (a caller registers the one its listener joins under).
    pub fn sessions(&self) -> Option<Arc<Sessions>> {
        self.shared.sealed.clone()
    }

    /// Datagrams dropped so far, by why.
    pub fn drops(&self) -> &Drops {
        &self.shared.drops
    }

    /// Frames whose datagrams have all been handed to the socket, over every viewer (for
    /// tests that need to know a frame left).
    #[doc(hidden)]
    pub fn frames_out(&self) -> u64 {
        self.shared.frames_out.load(Ordering::SeqCst)
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Publisher for UdpServer {
    fn describe(&self) -> String {
        format!("framewire over udp on {}", self.addr)
    }

    fn publish(&self, packets: &[Arc<Packet>]) {
        self.shared.roster.publish(packets);
    }

    fn subscribers(&self) -> usize {
        self.shared.roster.count()
    }

    fn wait_for_subscriber(&self, timeout: Duration) -> usize {
        self.shared.roster.wait_for_member(timeout)
    }

    fn dropped_total(&self) -> u64 {
        self.shared.roster.dropped_total()
    }

    fn wait_taken(&self, deadline: Instant) -> bool {
        self.shared.roster.wait_taken(deadline)
    }

    /// Sent as a peer report datagram before the viewer's next frame.
    fn report(&self, report: PeerReport) {
        self.shared.roster.report(report);
    }

    fn shutdown(&self) {
        self.shared.roster.stop();
        if let Some(mut control) = lock(&self.control).take() {
            control.shutdown();
        }
        if let Some(r) = lock(&self.receiver).take() {
            let _ = r.join();
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Shared {
    /// Answers a datagram from `to`: sealed under the session it came sealed in, if it did.
    fn reply(&self, bytes: &[u8], to: SocketAddr, sealed: Option<&Entry>) {
        let result = match sealed {
            None => self.socket.send_to(bytes, to).map(drop),
            Some(entry) => self.send_sealed(&entry.session, bytes, to, &mut Vec::new()),
        };
        if let Err(e) = result {
            self.unsent(to, &e);
        }
    }

    /// Counts a datagram the socket refused to send to `to`: one lost datagram.
    fn unsent(&self, to: SocketAddr, e: &io::Error) {
        self.drops.unsent.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%to, "udp send failed: {e}");
    }

    /// Sends `bytes` sealed under `session`, through the `scratch` buffer.
    fn send_sealed(
        &self,
        session: &Session,
        bytes: &[u8],
        to: SocketAddr,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        session.seal(bytes, scratch);
        self.socket.send_to(scratch, to).map(drop)
    }

    /// Sends `bytes` to a viewer, sealed under its session when it has one.
    fn send_viewer(&self, viewer: &Viewer, bytes: &[u8], scratch: &mut Vec<u8>) -> io::Result<()> {
        match &viewer.session {
            Some(session) => self.send_sealed(session, bytes, viewer.peer, scratch),
            None => self.socket.send_to(bytes, viewer.peer).map(drop),
        }
    }

    fn mac(&self, label: &[u8], peer: SocketAddr, period: u64) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        mac.update(label);
        match peer.ip() {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&peer.port().to_le_bytes());
        mac.update(&period.to_le_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cookie(&self, peer: SocketAddr, period: u64) -> [u8; COOKIE_BYTES] {
        self.mac(COOKIE_LABEL, peer, period)[..COOKIE_BYTES]
            .try_into()
            .expect("16 bytes")
    }

    /// The cookie's period now.
    fn period() -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() / COOKIE_PERIOD.as_secs()
    }

    /// The period `cookie` was made in for `peer`: this one or the one before; compared in
    /// constant time by the `hmac` crate.
    fn cookie_period(&self, peer: SocketAddr, cookie: &[u8; COOKIE_BYTES]) -> Option<u64> {
        let now = Shared::period();
        [now, now.saturating_sub(1)].into_iter().find(|&p| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
                .expect("HMAC takes a key of any length");
            mac.update(COOKIE_LABEL);
            match peer.ip() {
                IpAddr::V4(ip) => mac.update(&ip.octets()),
                IpAddr::V6(ip) => mac.update(&ip.octets()),
            }
            mac.update(&peer.port().to_le_bytes());
            mac.update(&p.to_le_bytes());
            mac.verify_truncated_left(cookie).is_ok()
        })
    }

    /// The viewer at `peer`, which a sealed server looks for under the datagram's own
    /// session (`sealed`): `Err` when the address has one under another session.
    fn viewer(&self, peer: SocketAddr, sealed: Option<&Entry>) -> Result<Option<Arc<Viewer>>, ()> {
        let members = self.roster.members();
        let Some(viewer) = members.iter().find(|v| v.peer == peer) else {
            return Ok(None);
        };
        let same = match (&viewer.session, sealed) {
            (Some(a), Some(e)) => Arc::ptr_eq(a, &e.session),
            (a, e) => a.is_none() && e.is_none(),
        };
        if same {
            Ok(Some(Arc::clone(viewer)))
        } else {
            Err(())
        }
    }
}

impl Census for Shared {
    fn census(&self, addr: SocketAddr) -> ProtocolFigures {
        self.roster
            .figures("udp", addr, self.frames_out.load(Ordering::Relaxed))
    }
}

fn receive_loop(shared: &Arc<Shared>) {
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::with_capacity(datagram::COOKIE_LEN);
    let mut last_sweep = Instant::now();
    while !shared.roster.is_stopping() {
        match shared.socket.recv_from(&mut buf) {
            Ok((n, peer)) => match &shared.sealed {
                None => handle(shared, &buf[..n], peer, None, &mut out),
                Some(sessions) => {
                    if let Some((range, entry)) = open(shared, sessions, &mut buf[..n], peer) {
                        handle(shared, &buf[range], peer, Some(&entry), &mut out);
                    }
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // An ICMP error for an earlier send (a viewer's port closed) shows here on some
            // systems; the viewer's silence ends it.
            Err(e) => tracing::debug!("udp receive: {e}"),
        }
        if last_sweep.elapsed() >= TICK {
            last_sweep = Instant::now();
            sweep(shared);
        }
    }
}

/// What a sealed server tells a hello that came unsealed (no longer than the hello).
pub const NEEDS_TLS: &str = "its datagrams are sealed: add --tls";

/// Opens a datagram at a sealed server: the range of `buf` that holds the datagram, and its
/// session. An unsealed hello is told to add `--tls`, in no more bytes than it had; anything
/// else that does not open is counted and dropped.
fn open(
    shared: &Shared,
    sessions: &Sessions,
    buf: &mut [u8],
    peer: SocketAddr,
) -> Option<(std::ops::Range<usize>, Entry)> {
    let Some(id) = seal::session_of(buf) else {
        shared.drops.unsealed.fetch_add(1, Ordering::Relaxed);
        if let Ok(Datagram::Hello(_)) = datagram::parse(buf, 0) {
            let mut out = Vec::new();
            datagram::write_end(&[0; proofs::PROOF_LEN], Some(NEEDS_TLS), &mut out);
            if out.len() <= buf.len()
                && let Err(e) = shared.socket.send_to(&out, peer)
            {
                tracing::debug!(%peer, "udp send failed: {e}");
            }
        }
        return None;
    };
    let Some(entry) = sessions.get(&id) else {
        shared.drops.unknown.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    match entry.session.open(buf, Instant::now()) {
        Ok(range) if entry.session.answers(peer) => Some((range, entry)),
        Ok(_) => {
            shared.drops.unknown.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(e) => {
            shared.drops.unsealed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "sealed udp datagram dropped: {e}");
            None
        }
    }
}

/// Ends viewers that have been silent past the idle timeout, or whose control connection
/// closed.
fn sweep(shared: &Shared) {
    let idle = shared.config.idle_timeout;
    for viewer in shared.roster.members().iter() {
        let why = if viewer.session.as_ref().is_some_and(|s| s.is_closed()) {
            "its TLS control connection closed".to_string()
        } else if lock(&viewer.heard).0.silent_for(Instant::now()) > idle {
            format!("no report for {}s", idle.as_secs_f64())
        } else {
            continue;
        };
        viewer.end(Gone::Lost(why));
    }
}

fn handle(
    shared: &Arc<Shared>,
    bytes: &[u8],
    peer: SocketAddr,
    sealed: Option<&Entry>,
    out: &mut Vec<u8>,
) {
    let parsed = match datagram::parse(bytes, 0) {
        Ok(d) => d,
        Err(e) => {
            shared.drops.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "udp datagram dropped: {e}");
            return;
        }
    };
    let forged = || shared.drops.forged.fetch_add(1, Ordering::Relaxed);
    match parsed {
        Datagram::Hello(hello) => on_hello(shared, &hello, peer, sealed, out),
        Datagram::Report(report) => match shared.viewer(peer, sealed) {
            Ok(Some(viewer)) => on_report(shared, &viewer, report),
            Ok(None) => {
                // No larger than the report it answers, and only its own session takes it.
                shared.drops.unknown.fetch_add(1, Ordering::Relaxed);
                datagram::write_rejoin(&report.session, out);
                shared.reply(out, peer, sealed);
            }
            Err(()) => drop(forged()),
        },
        Datagram::End(end) => match shared.viewer(peer, sealed) {
            Ok(Some(viewer)) if viewer.key.is_id(&end.who) => viewer.end(Gone::Left),
            Ok(None) => drop(shared.drops.unknown.fetch_add(1, Ordering::Relaxed)),
            _ => drop(forged()),
        },
        _ => {
            shared.drops.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn on_hello(
    shared: &Arc<Shared>,
    hello: &HelloMsg,
    peer: SocketAddr,
    sealed: Option<&Entry>,
    out: &mut Vec<u8>,
) {
    let Some(period) = shared.cookie_period(peer, &hello.cookie) else {
        if hello.cookie != [0; COOKIE_BYTES] {
            shared.drops.bad_cookie.fetch_add(1, Ordering::Relaxed);
        }
        // Stateless, and no larger than the hello: a forged source gains nothing.
        let period = Shared::period();
        let cookie = shared.cookie(peer, period);
        let challenge = shared
            .config
            .token
            .as_ref()
            .map(|_| shared.mac(CHALLENGE_LABEL, peer, period));
        CookieMsg { cookie, challenge }.write(out);
        shared.reply(out, peer, sealed);
        return;
    };
    // The address echoed its cookie: it receives what is sent to it.
    match shared.viewer(peer, sealed) {
        Ok(Some(viewer)) => {
            // A repeated hello (the start was lost), or a join replayed: the start again,
            // no larger than the hello, and no frame before a report of the session.
            let placement = shared
                .roster
                .ladder
                .placement(viewer.on.load(Ordering::Relaxed));
            send_start(shared, &viewer, &placement, &hello.cookie, out);
            return;
        }
        Ok(None) => {}
        Err(()) => {
            shared.drops.forged.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let who: Proof = hello.cookie[..proofs::PROOF_LEN]
        .try_into()
        .expect("a cookie is longer than a proof");
    let refuse = |reason: String, out: &mut Vec<u8>| {
        datagram::write_end(&who, Some(&reason), out);
        shared.reply(out, peer, sealed);
        (shared.on_event)(ServerEvent::Rejected {
            peer,
            error: reason,
        });
    };
    if shared.roster.is_stopping() {
        return refuse("the server is shutting down".into(), out);
    }
    if let Some(token) = &shared.config.token {
        let challenge = shared.mac(CHALLENGE_LABEL, peer, period);
        // Judged with the address's failures held (see `Failures::judge`).
        let proved = || token.verify(&challenge, &hello.proof);
        match token.failures().judge(peer.ip(), Instant::now(), proved) {
            Ok(true) => {}
            Ok(false) => return refuse("wrong token".into(), out),
            Err(wait) => {
                let wait = wait.as_secs_f64().ceil();
                let reason = format!("too many wrong tokens from this address; wait {wait}s");
                return refuse(reason, out);
            }
        }
    }
    let admitted = match &shared.config.admit {
        Some(admit) => (admit.0)(peer, hello, sealed.and_then(|e| e.caller.as_ref())),
        None if hello.call != 0 => Err(crate::framewire::NOT_A_CALL.into()),
        None => Ok(()),
    };
    if let Err(reason) = admitted {
        return refuse(reason.0, out);
    }
    let placement = match shared.roster.ladder.join(&hello.request) {
        Ok(p) => p,
        Err(e) => return refuse(e.to_string(), out),
    };
    let adapts = hello.request.follows_link() && shared.roster.ladder.adapts();
    let key = match SessionKey::draw() {
        Ok(key) => key,
        Err(e) => {
            shared.roster.ladder.leave(placement.id);
            return refuse(format!("the server cannot draw a session key: {e}"), out);
        }
    };
    let viewer = Arc::new(Viewer::new(
        peer,
        placement.id,
        Datagrams {
            key,
            cookie: hello.cookie,
            heard: Mutex::new((Liveness::new(Instant::now()), None)),
            confirmed: Condvar::new(),
            session: sealed.map(|e| Arc::clone(&e.session)),
        },
    ));
    let count = match shared.roster.admit(&viewer, shared.config.max_viewers) {
        Ok(count) => count,
        Err(Refusal::Stopping) => return refuse("the server is shutting down".into(), out),
        Err(Refusal::Full(reason)) => return refuse(reason, out),
    };
    let inner = Arc::clone(shared);
    let member = Arc::clone(&viewer);
    let spawned = thread::Builder::new()
        .name(format!("udp-viewer-{peer}"))
        .spawn(move || {
            let delivery = Delivery {
                roster: &inner.roster,
                member: &member,
                on_event: &*inner.on_event,
                sent: &inner.frames_out,
                adapts,
                once: false,
            };
            delivery.run(&mut DatagramOutlet::new(&inner, &member), placement, count);
        });
    match spawned {
        Ok(t) => {
            let mut threads = lock(&shared.threads);
            threads.retain(|t| !t.is_finished());
            threads.push(t);
        }
        Err(e) => {
            tracing::warn!(%peer, "cannot start a viewer thread: {e}");
            shared.roster.remove(&viewer);
        }
    }
}

/// Sends `viewer` its start in `placement`: the handshake, the session's key and its check of
/// the `cookie` that the hello it answers echoed.
fn send_start(
    shared: &Shared,
    viewer: &Viewer,
    placement: &Placement,
    cookie: &[u8; COOKIE_BYTES],
    out: &mut Vec<u8>,
) {
    let start = StartMsg {
        handshake: Handshake {
            placement: *placement,
            fps: shared.fps,
        },
        key: *viewer.key.bytes(),
        check: viewer.key.check(cookie),
    };
    start.write(out);
    if let Err(e) = shared.send_viewer(viewer, out, &mut Vec::new()) {
        shared.unsent(viewer.peer, &e);
    }
}

/// Takes a report from a viewer's address: counted as forged without the session's id; else
/// its outlet takes in what it received, and it keeps the viewer when it proves receipt.
fn on_report(shared: &Shared, viewer: &Viewer, report: ReportMsg) {
    let mut heard = lock(&viewer.heard);
    let (live, newest) = &mut *heard;
    let was = live.confirmed();
    let said = live.report(
        &viewer.key,
        &report.session,
        report.last_sent,
        &report.receipt,
        Instant::now(),
    );
    match said {
        Heard::Forged => drop(shared.drops.forged.fetch_add(1, Ordering::Relaxed)),
        Heard::Stale | Heard::Alive => {
            if report.keyframe {
                // It lost a frame of an inter-frame codec: its rendition's next keyframe soon.
                let on = viewer.on.load(Ordering::Relaxed);
                shared.roster.ladder.request_keyframe(on);
            }
            *newest = Some(report);
        }
    }
    if !was && live.confirmed() {
        viewer.confirmed.notify_all();
    }
}

impl Watched for UdpServer {
    fn census(&self) -> (SocketAddr, std::sync::Weak<dyn Census>) {
        let shared: Arc<dyn Census> = self.shared.clone();
        (self.addr, Arc::downgrade(&shared))
    }
}

/// Datagrams are paced at this multiple of the link rate the reports say.
const PACE_GAIN: f64 = 2.0;
/// The slowest pace (bytes/s): 1 Mbit/s; a link estimate below it is paced at it.
const MIN_PACE: f64 = 125_000.0;
/// A viewer's way out: each packet cut into datagrams (with parity), paced by what its
/// reports say the link carries.
struct DatagramOutlet<'a> {
    shared: &'a Shared,
    viewer: &'a Viewer,
    /// A switch to the rendition its packets are in, which every frame's datagrams carry.
    prefix: [u8; SWITCH_LEN],
    pacer: Pacer,
    /// Bytes per second its datagrams are paced at; 0: unpaced.
    pace: f64,
    buf: Vec<u8>,
    parity: Vec<u8>,
    scratch: Vec<u8>,
}

impl<'a> DatagramOutlet<'a> {
    fn new(shared: &'a Shared, viewer: &'a Viewer) -> DatagramOutlet<'a> {
        let burst = PACE_BURST * (shared.config.mtu + datagram::FRAGMENT_HEAD_LEN);
        DatagramOutlet {
            shared,
            viewer,
            prefix: [0; SWITCH_LEN],
            pacer: Pacer::new(burst, Instant::now()),
            pace: 0.0,
            buf: Vec::new(),
            parity: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Outlet for DatagramOutlet<'_> {
    fn start(&mut self, at: &Placement) -> io::Result<()> {
        self.prefix = Switch { placement: *at }.to_bytes();
        let viewer = self.viewer;
        send_start(self.shared, viewer, at, &viewer.cookie, &mut self.buf);
        Ok(())
    }

    /// Not one frame before a report of the session (so a replayed join gets a start and no
    /// more); at once after.
    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        let viewer = self.viewer;
        let mut heard = lock(&viewer.heard);
        while !heard.0.confirmed() && !slot.is_closed() {
            heard = match viewer.confirmed.wait_timeout(heard, TICK) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        Ok(())
    }

    fn switch(&mut self, to: &Placement) -> io::Result<()> {
        self.prefix = Switch { placement: *to }.to_bytes();
        Ok(())
    }

    /// A datagram the socket refuses is one lost datagram: the rest still go.
    fn send(&mut self, packet: &Packet, report: Option<&PeerReport>) -> io::Result<()> {
        let (shared, viewer) = (self.shared, self.viewer);
        if let Some(report) = report {
            datagram::write_peer_report(&viewer.key.id(), report, &mut self.buf);
            if let Err(e) = shared.send_viewer(viewer, &self.buf, &mut self.scratch) {
                shared.unsent(viewer.peer, &e);
            }
        }
        // The frame's number on the wire counts frames sent to this viewer, mod 2^32.
        let sent = (viewer.sent.load(Ordering::Relaxed) + 1) as u32;
        lock(&viewer.heard).0.sending(sent);
        let frame = Outgoing {
            seq: packet.seq,
            capture_us: packet.capture_us,
            sent,
            delta: !packet.keyframe,
            tag: viewer.key.tag(sent),
            prefix: &self.prefix,
            payload: &packet.payload,
        };
        let (mtu, fec) = (shared.config.mtu, shared.config.fec);
        let (pacer, pace, scratch) = (&mut self.pacer, self.pace, &mut self.scratch);
        let result = frame.datagrams(mtu, fec, &mut self.buf, &mut self.parity, |d| {
            let wait = pacer.wait(d.len(), pace, Instant::now());
            if !wait.is_zero() {
                thread::sleep(wait);
            }
            if let Err(e) = shared.send_viewer(viewer, d, scratch) {
                shared.unsent(viewer.peer, &e);
            }
            Ok::<(), std::convert::Infallible>(())
        });
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(never)) => match never {},
            Err(e) => {
                self.end(Some(&e.to_string()))?;
                Err(io::Error::other(e))
            }
        }
    }

    /// Nothing to a viewer that never confirmed its session (a replayed join gets no more
    /// than its start).
    fn end(&mut self, error: Option<&str>) -> io::Result<()> {
        if !lock(&self.viewer.heard).0.confirmed() {
            return Ok(());
        }
        datagram::write_end(&self.viewer.key.id(), error, &mut self.buf);
        if let Err(e) = self
            .shared
            .send_viewer(self.viewer, &self.buf, &mut self.scratch)
        {
            self.shared.unsent(self.viewer.peer, &e);
        }
        Ok(())
    }

    /// The viewer's newest report, once: frames sent up to the newest one it saw a piece
    /// of, against those it completed (frames still on their way count for neither), and the
    /// spread of the last frame's arrival, which the link set.
    fn link(&mut self, _: &Latest<Arc<Packet>>, _: Counters, _: Instant) -> Option<Link> {
        let report = lock(&self.viewer.heard).1.take()?;
        let drain = (report.last_bytes > 0).then(|| {
            let spread = Duration::from_micros(u64::from(report.last_spread_us));
            (report.last_bytes as usize, spread, Duration::ZERO)
        });
        Some(Link {
            drain,
            counters: Counters {
                offered: u64::from(report.last_sent),
                sent: report.frames,
                bytes: report.bytes,
                ..Counters::default()
            },
        })
    }

    fn judged(&mut self, adapter: &mut Adapter, now: Instant) {
        let link = adapter.link_rate(now);
        self.pace = if link > 0.0 {
            (link * PACE_GAIN).max(MIN_PACE)
        } else {
            0.0
        };
    }

    fn failed(&self, e: &io::Error) -> Option<String> {
        Some(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_line_adds_what_the_socket_refused_only_when_it_refused_some() {
        let drops = Drops::default();
        drops.malformed.store(3, Ordering::Relaxed);
        assert_eq!(
            drops.to_string(),
            "udp datagrams dropped: 3 malformed, 0 with a stale cookie, 0 from no viewer"
        );
        drops.unsealed.store(4, Ordering::Relaxed);
        drops.unsent.store(5, Ordering::Relaxed);
        assert_eq!(
            drops.to_string(),
            "udp datagrams dropped: 3 malformed, 0 with a stale cookie, 0 from no viewer, 4 not \
             sealed or not opening; 5 refused by the socket as they were sent"
        );
    }
}
