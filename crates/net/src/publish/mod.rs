//! Publishing to a media server (nginx-rtmp, MediaMTX, SRS, a live platform): the stream pushed
//! out over RTMP (H.264 in FLV) or RTSP (ANNOUNCE and RECORD, H.264 in RTP over the RTSP
//! connection), where the server fans it out to its own readers. A [`Push`] is one more
//! [`Publisher`] of the send path: its one subscriber is the server, one more member of the
//! [`Roster`] fed by the one delivery loop, so the fan-out's rules hold for it as for a viewer
//! (newest wins; after a packet it missed it waits for a keyframe, which its rendition's
//! encoder is asked for). It asks the ladder for an H.264 rendition of the top rung's size (the
//! top rung when that is H.264, else one encoded for it alone) and stays there.
//!
//! A thread per target dials, opens the protocol under [`OPEN_TIMEOUT`], publishes until the
//! connection fails or the server goes, and dials again after a backoff that doubles from
//! [`BACKOFF_MIN`] to [`BACKOFF_MAX`] (back to the least after a connection that held for
//! [`BACKOFF_RESET`]); each failure is one [`PushEvent::Lost`] line. A credential in the URL
//! (a password, an RTMP stream key) is never in a line: [`Target`]'s `Display` hides it.
//!
//! - `rtmp`: the RTMP publisher: the opening through `rml_rtmp`, and its outlet.
//! - `rtsp`: the RTSP RECORD publisher and its outlet.

mod rtmp;
mod rtsp;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Ladder, Latest, Packet, Placement, Publisher, Request};

use crate::conn::{Conn, InboundBudget, is_timeout};
use crate::fanout::{Drain, SHUTDOWN_GRACE, stalled, wait_drained, write_error};
use crate::roster::{Delivery, Gone, Member, Outlet, Roster, ServerEvent, lock};
use crate::tls::TlsClient;

/// The time from the dial to the first packet: connecting, the TLS and protocol handshakes,
/// and the server's yes to publishing.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a dial again, doubled after each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between dials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that published this long resets the backoff to [`BACKOFF_MIN`].
pub const BACKOFF_RESET: Duration = Duration::from_secs(10);

/// The protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `rtmp://`: RTMP on TCP, port 1935 by default.
    Rtmp,
    /// `rtmps://`: RTMP in TLS, port 443 by default.
    Rtmps,
    /// `rtsp://`: RTSP on TCP, port 554 by default; the media interleaved on the same connection.
    Rtsp,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
            Scheme::Rtsp => "rtsp",
        }
    }
}

/// Where to publish: `rtmp://HOST[:PORT]/APP/STREAM`, `rtmps://...`, or
/// `rtsp://[USER:PASS@]HOST[:PORT]/PATH`.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The protocol.
    pub scheme: Scheme,
    /// The host, as written (a name, an IPv4 address, or an IPv6 one without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The path after the host, without its leading `/` (RTMP: `APP/STREAM`).
    pub path: String,
    /// The user and password of the URL, when it has them.
    pub credentials: Option<(String, String)>,
}

impl Target {
    /// Reads a URL; the error says what is wrong with it and what is expected.
    pub fn parse(url: &str) -> Result<Target, String> {
        let expected = "expected rtmp://HOST[:PORT]/APP/STREAM, rtmps://HOST[:PORT]/APP/STREAM \
                        or rtsp://[USER:PASS@]HOST[:PORT]/PATH";
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{}: not a URL; {expected}", redact_all(url)))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => Scheme::Rtmp,
            "rtmps" => Scheme::Rtmps,
            "rtsp" => Scheme::Rtsp,
            other => {
                return Err(format!(
                    "{other}://: not a protocol framewire publishes over; {expected}"
                ));
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => {
                let (u, p) = user.split_once(':').unwrap_or((user, ""));
                // RFC 3986: a user or password with `@`, `:` or `/` in it is written %-encoded.
                let decoded = |part: &str, what: &str| {
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| {
                            format!(
                                "{}: the {what} is not UTF-8 once %-decoded",
                                redact_all(url)
                            )
                        })
                };
                let credentials = (decoded(u, "user name")?, decoded(p, "password")?);
                (Some(credentials), hostport)
            }
            None => (None, authority),
        };
        let default_port = match scheme {
            Scheme::Rtmp => 1935,
            Scheme::Rtmps => 443,
            Scheme::Rtsp => 554,
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{}: an IPv6 host without its ']'", redact_all(url)))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{}: port {p:?} is not 1..=65535", redact_all(url)))?,
        };
        if host.is_empty() {
            return Err(format!("{}: no host; {expected}", redact_all(url)));
        }
        let path = path.to_string();
        let target = Target {
            scheme,
            host: host.to_string(),
            port,
            path,
            credentials,
        };
        if matches!(scheme, Scheme::Rtmp | Scheme::Rtmps) && target.rtmp_app().is_none() {
            return Err(format!(
                "{target}: an RTMP URL names an application and a stream: rtmp://HOST[:PORT]/APP/STREAM"
            ));
        }
        if scheme == Scheme::Rtsp && target.path.is_empty() {
            return Err(format!(
                "{target}: an RTSP URL names a path: rtsp://HOST[:PORT]/PATH"
            ));
        }
        Ok(target)
    }

    /// RTMP's application (every segment of the path but the last) and stream key (the last).
    fn rtmp_app(&self) -> Option<(&str, &str)> {
        let (app, stream) = self.path.rsplit_once('/')?;
        (!app.is_empty() && !stream.is_empty()).then_some((app, stream))
    }

    /// `HOST:PORT`, with IPv6 hosts in brackets: the known-hosts key of its TLS.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL without its credentials (what the protocol names itself).
    fn bare_url(&self) -> String {
        format!(
            "{}://{}/{}",
            self.scheme.name(),
            self.host_port(),
            self.path
        )
    }
}

impl fmt::Display for Target {
    /// The URL for a log line: the password as `****`, and an RTMP stream key (which lets
    /// anyone who reads it publish) too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.name())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:****@")?;
        }
        write!(f, "{}/", self.host_port())?;
        match (self.scheme, self.rtmp_app()) {
            (Scheme::Rtmp | Scheme::Rtmps, Some((app, _))) => write!(f, "{app}/****"),
            _ => write!(f, "{}", self.path),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// A URL that did not parse, with anything after `://` that may be a secret hidden.
fn redact_all(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '@']).next().unwrap_or_default();
            if rest.contains('@') {
                format!("{scheme}://****@...")
            } else {
                format!("{scheme}://{host}/...")
            }
        }
        None => url.chars().take(24).collect(),
    }
}

/// What happened to a push, for the server's log.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    /// The server took the stream: it is being published.
    Publishing {
        /// The target (credentials hidden).
        to: String,
        /// The server's address.
        server: SocketAddr,
        /// The rendition published.
        placement: Placement,
    },
    /// A dial or the connection failed; the next dial is after `retry_in`.
    Lost {
        /// The target (credentials hidden).
        to: String,
        /// Frames this connection sent.
        frames: u64,
        /// What went wrong, one line.
        error: String,
        /// The wait before the next dial.
        retry_in: Duration,
    },
    /// The push stopped with the send path (its goodbye said to a connected server).
    Stopped {
        /// The target (credentials hidden).
        to: String,
        /// Frames sent over the push's life.
        frames: u64,
    },
}

/// Where a push's events go.
pub type PushEventFn = Arc<dyn Fn(PushEvent) + Send + Sync>;

/// How a push connects.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `rtmps://`'s TLS: how the server's certificate is trusted (the host is the target's).
    pub tls: Option<TlsClient>,
    /// A write that blocks this long ends the connection (a stalled server).
    pub write_timeout: Duration,
}

/// The stream published to one media server, redialed while the send path runs.
pub struct Push {
    target: Target,
    roster: Arc<Roster<()>>,
    sent: Arc<AtomicU64>,
    done: Mutex<Option<Receiver<()>>>,
}

impl Push {
    /// Starts publishing the stream of `ladder` to `target`, on its own thread. An error says
    /// why it never can: the ladder has no H.264 rendition of its top size and cannot make one
    /// (a build without H.264), or `rtmps://` without a TLS configuration.
    pub fn start(
        target: Target,
        ladder: Arc<Ladder>,
        config: PushConfig,
        on_event: PushEventFn,
    ) -> Result<Push, String> {
        let placement = ladder
            .join(&request())
            .map_err(|e| format!("{target}: {e}"))?;
        ladder.leave(placement.id);
        if target.scheme == Scheme::Rtmps && config.tls.is_none() {
            return Err(format!("{target}: rtmps:// needs a TLS configuration"));
        }
        let roster = Arc::new(Roster::new(ladder));
        let sent = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = channel();
        let pushing = Pushing {
            target: target.clone(),
            roster: Arc::clone(&roster),
            sent: Arc::clone(&sent),
            config,
            on_event,
        };
        thread::Builder::new()
            .name("framewire-push".into())
            .spawn(move || {
                pushing.run();
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("{target}: cannot start its thread: {e}"))?;
        Ok(Push {
            target,
            roster,
            sent,
            done: Mutex::new(Some(done)),
        })
    }

    /// Packets sent whole to the server, over the push's life.
    pub fn frames_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// What a push asks of the ladder: H.264 at the top rung's size.
fn request() -> Request {
    Request {
        rung: None,
        codec: Some(CodecKind::H264),
        width: None,
    }
}

impl Publisher for Push {
    fn describe(&self) -> String {
        format!("publishing to {}", self.target)
    }

    fn publish(&self, packets: &[Arc<Packet>]) {
        self.roster.publish(packets);
    }

    fn subscribers(&self) -> usize {
        self.roster.count()
    }

    fn wait_for_subscriber(&self, timeout: Duration) -> usize {
        self.roster.wait_for_member(timeout)
    }

    fn dropped_total(&self) -> u64 {
        self.roster.dropped_total()
    }

    /// Stops the push; waits up to [`SHUTDOWN_GRACE`] for its goodbye to the server (not for a
    /// dial in progress).
    fn shutdown(&self) {
        self.roster.stop();
        if let Some(done) = lock(&self.done).take() {
            let _ = done.recv_timeout(SHUTDOWN_GRACE);
        }
    }
}

impl Drop for Push {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The push's thread.
struct Pushing {
    target: Target,
    roster: Arc<Roster<()>>,
    sent: Arc<AtomicU64>,
    config: PushConfig,
    on_event: PushEventFn,
}

impl Pushing {
    fn run(&self) {
        let mut backoff = BACKOFF_MIN;
        let to = self.target.to_string();
        loop {
            let began = Instant::now();
            let (frames, error) = self.once();
            let total = self.sent.load(Ordering::SeqCst);
            if self.roster.is_stopping() {
                (self.on_event)(PushEvent::Stopped { to, frames: total });
                return;
            }
            if began.elapsed() >= BACKOFF_RESET {
                backoff = BACKOFF_MIN;
            }
            (self.on_event)(PushEvent::Lost {
                to: to.clone(),
                frames,
                error: error.unwrap_or_else(|| "the server closed the connection".into()),
                retry_in: backoff,
            });
            let until = Instant::now() + backoff;
            drop(self.roster.wait_until(until, |_| self.roster.is_stopping()));
            if self.roster.is_stopping() {
                (self.on_event)(PushEvent::Stopped { to, frames: total });
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection: the dial, the opening, the deliveries. Frames sent, and what ended it.
    fn once(&self) -> (u64, Option<String>) {
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let (conn, server) = match self.dial(deadline) {
            Ok(c) => c,
            Err(e) => return (0, Some(e)),
        };
        let ladder = &self.roster.ladder;
        let placement = match ladder.join(&request()) {
            Ok(p) => p,
            Err(e) => return (0, Some(e.to_string())),
        };
        let member = Arc::new(Member::new(server, placement.id, ()));
        let opened = match self.target.scheme {
            Scheme::Rtmp | Scheme::Rtmps => {
                rtmp::open(conn, &self.target, deadline, self.config.write_timeout)
                    .map(|o| Box::new(o) as Box<dyn PushOutlet>)
            }
            Scheme::Rtsp => rtsp::open(conn, &self.target, deadline, self.config.write_timeout)
                .map(|o| Box::new(o) as Box<dyn PushOutlet>),
        };
        let mut outlet = match opened {
            Ok(o) => o,
            Err(e) => {
                ladder.leave(placement.id);
                return (0, Some(e));
            }
        };
        if self.roster.admit(&member, 1).is_err() {
            outlet.close();
            return (0, None);
        }
        if let Err(e) = outlet.listen(Arc::clone(&member)) {
            self.roster.remove(&member);
            outlet.close();
            return (0, Some(format!("cannot start its reader: {e}")));
        }
        // The delivery's events say when publishing began and how it ended.
        let ended = Arc::new(Mutex::new(None));
        let on_event: Box<crate::roster::EventFn> = {
            let (ended, to, tell) = (
                Arc::clone(&ended),
                self.target.to_string(),
                Arc::clone(&self.on_event),
            );
            Box::new(move |event: ServerEvent| match event {
                ServerEvent::Joined { placement, .. } => tell(PushEvent::Publishing {
                    to: to.clone(),
                    server,
                    placement,
                }),
                ServerEvent::Left { frames, error, .. } => *lock(&ended) = Some((frames, error)),
                _ => {}
            })
        };
        let delivery = Delivery {
            roster: &self.roster,
            member: &member,
            on_event: &*on_event,
            sent: &self.sent,
            adapts: false,
            once: false,
        };
        delivery.run(outlet.as_mut(), placement, 1);
        let ended = lock(&ended).take();
        ended.unwrap_or((0, None))
    }

    /// Connects to the target (its first address that answers), in TLS for `rtmps://`.
    fn dial(&self, deadline: Instant) -> Result<(Conn, SocketAddr), String> {
        let target = &self.target;
        let addrs = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", target.host))?;
        let mut last = format!("{} resolves to no address", target.host);
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let conn = match (&self.config.tls, target.scheme) {
                        (Some(tls), Scheme::Rtmps) => tls
                            .connect(tcp, deadline)
                            .map_err(|refusal| refusal.reason)?,
                        _ => Conn::plain(tcp),
                    };
                    return Ok((conn, addr));
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }
}

/// A publishing connection as each publisher's outlet writes to it: the fan-out's drain rule
/// before each packet (so packets wait in the member's slot, where a newer one replaces them,
/// not in the socket), writes bounded by the write timeout, the goodbye drained, the close.
struct Wire {
    conn: Conn,
    write_timeout: Duration,
    drain: Drain,
    /// The bytes of the last packet written, whose drain the rule watches.
    last_written: usize,
}

impl Wire {
    fn new(conn: Conn, write_timeout: Duration) -> Wire {
        Wire {
            conn,
            write_timeout,
            drain: Drain::default(),
            last_written: 0,
        }
    }

    /// [`Outlet::ready`]: once the socket can take the next packet.
    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        self.drain
            .wait(self.conn.tcp(), slot, self.last_written, self.write_timeout)
            .map_err(|()| stalled(self.write_timeout))
    }

    /// Writes `parts` in order, of which the last `packet` bytes were a packet's.
    fn write(&mut self, parts: &[&[u8]], packet: usize) -> io::Result<()> {
        self.conn.set_write_timeout(Some(self.write_timeout))?;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            self.conn.write_all(part)?;
        }
        self.last_written = packet;
        Ok(())
    }

    /// Waits a moment for the goodbye to reach the server before the close.
    fn drained(&self) {
        wait_drained(self.conn.tcp(), SHUTDOWN_GRACE);
    }

    fn close(&self) {
        let _ = self.conn.shutdown(Shutdown::Both);
    }

    /// [`Outlet::failed`]: any write error ends a push's connection with its reason.
    fn failed(&self, e: &io::Error) -> Option<String> {
        Some(write_error(e, self.write_timeout).unwrap_or_else(|| format!("writing: {e}")))
    }
}

/// A publisher's outlet: the roster's [`Outlet`], and a reader of what the server says while
/// it publishes.
trait PushOutlet: Outlet + Send {
    /// Starts a thread reading the server: its answers (RTMP's pings, acknowledgements) go out
    /// before the next packet; an error from it, or its close, ends `member` with why.
    fn listen(&mut self, member: Arc<Member<()>>) -> io::Result<()>;
}

/// Reads `conn` until `deadline`, appending to `buf`; the bytes read (an error at the deadline,
/// when the server closes, or when nothing more may be read: `max` bytes buffered).
fn read_some(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
    max: usize,
    waiting_for: &str,
) -> Result<usize, String> {
    if buf.len() >= max {
        return Err(format!(
            "{waiting_for}: the server sent {max} bytes without one"
        ));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!(
            "{waiting_for}: no answer within {}s",
            OPEN_TIMEOUT.as_secs()
        ));
    }
    conn.set_read_timeout(Some(left))
        .map_err(|e| format!("{waiting_for}: {e}"))?;
    let mut chunk = [0u8; 4096];
    let room = chunk.len().min(max - buf.len());
    match conn.read(&mut chunk[..room]) {
        Ok(0) => Err(format!("{waiting_for}: the server closed the connection")),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if is_timeout(&e) => Err(format!(
            "{waiting_for}: no answer within {}s",
            OPEN_TIMEOUT.as_secs()
        )),
        Err(e) => Err(format!("{waiting_for}: {e}")),
    }
}

/// Writes `bytes` to `conn` by `deadline`.
fn write_by(conn: &mut Conn, bytes: &[u8], deadline: Instant, what: &str) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    conn.set_write_timeout(Some(left.max(Duration::from_millis(1))))
        .and_then(|()| conn.write_all(bytes))
        .map_err(|e| format!("{what}: {e}"))
}

/// The most a server may send a publisher in one [`INBOUND_WINDOW`]: a publisher hears only
/// acknowledgements, pings, statuses and reports (RTMP's chunk reader would hold the bytes of up
/// to 65,599 unfinished messages of 16 MiB each, so what comes in is bounded here).
pub const INBOUND_MAX: usize = 1 << 20;
/// The window [`INBOUND_MAX`] counts over.
pub const INBOUND_WINDOW: Duration = Duration::from_secs(10);

/// The reader thread of a publishing connection: hands each read to `take` (which answers
/// `Err(why)` when the server said to stop) until the connection closes or the server sends
/// more than a publisher hears ([`INBOUND_MAX`]), then ends `member`.
fn spawn_reader(
    mut conn: Conn,
    member: Arc<Member<()>>,
    mut take: impl FnMut(&[u8]) -> Result<(), String> + Send + 'static,
) -> io::Result<()> {
    conn.set_read_timeout(None)?;
    thread::Builder::new()
        .name("framewire-push-reader".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let mut inbound = InboundBudget::new(INBOUND_MAX, INBOUND_WINDOW);
            let why = loop {
                match conn.read(&mut buf) {
                    Ok(0) => break "the server closed the connection".to_string(),
                    Ok(n) => {
                        if !inbound.take(n, Instant::now()) {
                            break format!("the server {} to a publisher", inbound.overspent());
                        }
                        if let Err(why) = take(&buf[..n]) {
                            break why;
                        }
                    }
                    Err(e) => break format!("reading from the server: {e}"),
                }
            };
            member.end(Gone::Lost(why));
            let _ = conn.shutdown(Shutdown::Both);
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_may_send_a_publisher_a_mebibyte_a_window_and_no_more() {
        let mut inbound = InboundBudget::new(INBOUND_MAX, INBOUND_WINDOW);
        let t = Instant::now();
        assert!(inbound.take(INBOUND_MAX, t));
        // A new window starts afresh.
        assert!(inbound.take(INBOUND_MAX, t + INBOUND_WINDOW));
        assert!(!inbound.take(1, t + INBOUND_WINDOW));
        let e = inbound.overspent();
        assert_eq!(e, "sent more than 1024 KiB within 10s");
    }

    #[test]
    fn urls_are_read_with_their_default_ports_and_printed_without_secrets() {
        let t = Target::parse("rtmp://live.example.com/app/sk_secret").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str()),
            (Scheme::Rtmp, 1935, "app/sk_secret")
        );
        assert_eq!(t.rtmp_app(), Some(("app", "sk_secret")));
        assert_eq!(t.to_string(), "rtmp://live.example.com:1935/app/****");
        let t = Target::parse("rtmps://h:8443/a/b/key").unwrap();
        assert_eq!(t.rtmp_app(), Some(("a/b", "key")));
        assert_eq!(t.to_string(), "rtmps://h:8443/a/b/****");
        let t = Target::parse("rtsp://admin:hunter2@[::1]:8554/cam/1").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.credentials, Some(("admin".into(), "hunter2".into())));
        // %-encoded, as RFC 3986 writes a password with `@` or `:` in it.
        let encoded = Target::parse("rtsp://ad%20min:p%40ss%3Aword@cam/x").unwrap();
        assert_eq!(
            encoded.credentials,
            Some(("ad min".into(), "p@ss:word".into()))
        );
        assert!(!encoded.to_string().contains("ss"), "{encoded}");
        let e = Target::parse("rtsp://u:%ff%fe@cam/x").unwrap_err();
        assert!(
            e.contains("password is not UTF-8") && !e.contains("%ff"),
            "{e}"
        );
        assert_eq!(t.to_string(), "rtsp://admin:****@[::1]:8554/cam/1");
        assert_eq!(t.bare_url(), "rtsp://[::1]:8554/cam/1");
        assert_eq!(Target::parse("rtsp://cam/x").unwrap().port, 554);
    }

    #[test]
    fn a_bad_url_says_what_is_wrong_and_never_shows_a_password() {
        for (url, says) in [
            ("http://h/a/b", "not a protocol"),
            ("rtmp://h/onlyapp", "names an application and a stream"),
            ("rtmp://h:99999/a/b", "port \"99999\""),
            ("rtsp://h:8554", "names a path"),
            ("rtsp://u:pw@:1/x", "no host"),
            ("nonsense", "not a URL"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("pw"), "{url}: {e}");
        }
    }
}
