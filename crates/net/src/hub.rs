//! A hub that many senders push to (`framewire hub --listen`, `serve --push HOST:PORT --name
//! NAME`): the senders dial out, the hub listens and watches each one's stream.
//!
//! A push is a call that carries a stream one way (the crate doc of framewire-wire draws it):
//! the sender says a hello with a call number and the push flag, and its name in a name message
//! in the same write; the token is proved both ways as in a call; the hub answers with its
//! hello, and from then on the sender writes a stream handshake and frames as a server does,
//! through a [`Fanout`] of its own (newest wins, the ladder, the write timeout), and the hub
//! reads them with a [`Client`]. The sender dials again with backoff when the connection is
//! lost (the hub restarted); a sender of a name already pushing replaces the old connection
//! (it restarted before the hub noticed).
//!
//! [`HubListener`] accepts pushes on the shared fan-out's accept loop (its TLS, handshake
//! deadline and fair pending slots), each handed over as a [`Pushed`] stream.
//! [`HubPusher`] is the sender's [`Publisher`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use framewire_core::{
    Closer, Ladder, Packet, Placement, Publisher, Received, Request, StreamInfo, Subscription,
    TransportError,
};
use framewire_wire::framer::FramewireFramer;
use framewire_wire::message::{
    FrameHeader, HEADER_LEN, Hello, MAX_NAME, MessageKind, check_name, name_message, token_message,
};

use crate::chat::{CallConfig, dial_call, peer_and_cut, read_challenge};
use crate::client::{Client, ClientConfig, NetError};
use crate::conn::{Conn, is_timeout};
use crate::fanout::{Fanout, Opening, Protocol, Refused, ServerConfig, ServerEvent, read_full};
use crate::framewire::{FramewireProtocol, write_end};

/// What a hub answers a one-way viewer.
pub const NOT_A_VIEWER: &str =
    "this is a hub (framewire hub --listen): senders push to it with framewire serve --push";

/// What a hub answers a caller.
pub const NOT_A_CALL: &str = "this is a hub (framewire hub --listen), not a two-way call: \
     push to it with framewire serve --push";

/// The start of what a full hub answers; a sender told so dials again later.
pub const FULL: &str = "busy: the hub has";

/// Limits of a hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Each sender's stream: idle timeout, largest payload.
    pub client: ClientConfig,
    /// The listener: handshake deadline, pending slots, token, TLS; `max_viewers` is the most
    /// senders at once.
    pub server: ServerConfig,
}

/// A sender's stream, as the hub reads it.
pub struct Pushed {
    /// The name it goes by.
    pub name: String,
    /// Its frames.
    pub stream: Box<dyn Subscription>,
}

/// Ends a sender's connection at once.
type Cut = Arc<dyn Fn() + Send + Sync>;

/// The hub's record of its senders: who pushes now (to cut a replaced one, to count), and the
/// streams not taken yet.
#[derive(Default)]
struct Senders {
    /// Name → (generation, how to cut its connection).
    live: HashMap<String, (u64, Cut)>,
    arrived: VecDeque<(Pushed, u64)>,
    generations: u64,
    closed: bool,
}

struct Desk {
    state: Mutex<Senders>,
    changed: Condvar,
    max: usize,
}

impl Desk {
    fn lock(&self) -> std::sync::MutexGuard<'_, Senders> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sender of `generation` is gone (unless a newer one of its name replaced it).
    fn gone(&self, name: &str, generation: u64) {
        let mut state = self.lock();
        if state.live.get(name).is_some_and(|(g, _)| *g == generation) {
            state.live.remove(name);
        }
    }
}

/// The hub's protocol on the fan-out: reads a push's opening and hands the stream over.
struct HubProtocol {
    framewire: FramewireProtocol,
    desk: Arc<Desk>,
    client: ClientConfig,
}

impl Protocol for HubProtocol {
    fn name(&self) -> &'static str {
        "hub"
    }

    /// Reads a sender's hello and name, proves the token both ways, answers with the hub's
    /// hello and hands the stream to [`HubListener::next`]; refuses a viewer, a caller, a bad
    /// name and a sender past the most.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, Refused> {
        let deadline = Instant::now() + timeout;
        let hello = self.framewire.read_hello(stream, deadline, timeout)?;
        let call = match (hello.call, hello.push) {
            (Some(call), true) => call,
            (None, _) => {
                let _ = write_end(stream, Some(NOT_A_VIEWER));
                return Err("a one-way viewer, not a sender: told so".into());
            }
            (Some(_), false) => {
                let _ = write_end(stream, Some(NOT_A_CALL));
                return Err("a caller (framewire chat), not a sender: told so".into());
            }
        };
        let name = read_name(stream, deadline, timeout)?;
        let mut read = (HEADER_LEN + name.len()) as u64 + framewire_wire::message::HELLO_LEN as u64;
        read += self.framewire.check_token(stream, deadline, timeout)?;
        let mut answer = Vec::new();
        if let Some(token) = self.framewire.token() {
            let challenge = read_challenge(stream, deadline, timeout)?;
            read += (HEADER_LEN + framewire_wire::message::PROOF_LEN) as u64;
            answer.extend_from_slice(&token_message(
                MessageKind::Proof,
                &token.prove_listener(&challenge),
            ));
        }
        let (peer, cut) = peer_and_cut(stream)?;
        let cut: Cut = Arc::new(cut);
        // Taken before the answer: a full hub says so instead.
        let generation = {
            let mut state = self.desk.lock();
            if state.closed {
                let _ = write_end(stream, Some("the hub is shutting down"));
                return Err("the hub is shutting down".into());
            }
            if let Some((_, old)) = state.live.remove(&name) {
                old();
            } else if state.live.len() >= self.desk.max {
                let reason = format!("{FULL} {} senders, its most", state.live.len());
                drop(state);
                let _ = write_end(stream, Some(&reason));
                return Err(reason.into());
            }
            state.generations += 1;
            let generation = state.generations;
            state.live.insert(name.clone(), (generation, cut));
            generation
        };
        let hello = Hello {
            request: Request::default(),
            call: Some(call),
            push: true,
        };
        answer.extend_from_slice(&hello.to_bytes());
        let client = stream
            .write_all(&answer)
            .and_then(|()| stream.try_clone())
            .map_err(|e| format!("answering the sender's hello: {e}"))
            .and_then(|conn| {
                Client::after_opening(conn, peer, read, self.client.clone())
                    .map_err(|e| format!("reading {name}'s stream handshake: {e}"))
            });
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                self.desk.gone(&name, generation);
                return Err(e.into());
            }
        };
        let pushed = Pushed {
            name: name.clone(),
            stream: Box::new(PushedStream {
                client,
                name: name.clone(),
                generation,
                desk: Arc::clone(&self.desk),
            }),
        };
        let mut state = self.desk.lock();
        state.arrived.push_back((pushed, generation));
        drop(state);
        self.desk.changed.notify_all();
        Ok(Opening::Answered)
    }
}

/// Reads the name message that follows a push's hello.
fn read_name(stream: &mut Conn, deadline: Instant, timeout: Duration) -> Result<String, String> {
    let mut head = [0u8; HEADER_LEN];
    let mut read = |buf: &mut [u8], what: &str| match read_full(stream, buf, deadline) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(n) => Err(format!(
            "closed after {n} of the {} bytes of its {what}",
            buf.len()
        )),
        Err(e) if is_timeout(&e) => Err(format!(
            "sent no {what} within {:.1}s",
            timeout.as_secs_f64()
        )),
        Err(e) => Err(format!("reading its {what}: {e}")),
    };
    read(&mut head, "name")?;
    let header = match FrameHeader::parse(&head, 0) {
        Ok(h) if h.kind == MessageKind::Name => h,
        Ok(h) => return Err(format!("sent a {} message where its name belongs", h.kind)),
        Err(e) => return Err(format!("its name message: {e}")),
    };
    let mut name = vec![0u8; (header.payload_len as usize).min(MAX_NAME)];
    read(&mut name, "name")?;
    match check_name(&name) {
        Ok(name) => Ok(name.to_string()),
        Err(reason) => {
            let _ = write_end(stream, Some(&reason));
            Err(reason)
        }
    }
}

/// A sender's stream: the client reading it, and the hub's record of it, which it leaves when
/// dropped.
struct PushedStream {
    client: Client,
    name: String,
    generation: u64,
    desk: Arc<Desk>,
}

impl Drop for PushedStream {
    fn drop(&mut self) {
        self.desk.gone(&self.name, self.generation);
    }
}

impl Subscription for PushedStream {
    fn stream(&self) -> StreamInfo {
        self.client.stream()
    }

    fn placement(&self) -> Placement {
        self.client.placement()
    }

    fn fps(&self) -> f64 {
        self.client.fps()
    }

    fn peer(&self) -> String {
        format!("sender {} at {}", self.name, self.client.peer())
    }

    fn position(&self) -> String {
        Subscription::position(&self.client)
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        Subscription::recv(&mut self.client, packet)
    }

    fn closer(&self) -> Closer {
        Subscription::closer(&self.client)
    }
}

/// The hub's listener: many senders push to it, each handed over by [`HubListener::next`].
pub struct HubListener {
    fanout: Fanout,
    desk: Arc<Desk>,
    fingerprint: Option<String>,
}

impl HubListener {
    /// Listens on `addr` for senders, at most `config.server.max_viewers` at once. `on_event`
    /// hears of connections refused in their opening.
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: HubConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<HubListener> {
        let desk = Arc::new(Desk {
            state: Mutex::new(Senders::default()),
            changed: Condvar::new(),
            max: config.server.max_viewers,
        });
        let fingerprint = config
            .server
            .tls
            .as_ref()
            .map(|t| t.fingerprint().to_string());
        let protocol = HubProtocol {
            framewire: FramewireProtocol::new(0.0).with_token(config.server.token.clone()),
            desk: Arc::clone(&desk),
            client: config.client,
        };
        // The fan-out only accepts here: every connection is answered by the protocol, and
        // none subscribes to its ladder, which is a placeholder.
        let placeholder = Arc::new(Ladder::single(framewire_core::Rendition::new(
            framewire_core::CodecKind::Raw,
            1,
            1,
            framewire_core::PixelFormat::Rgb8,
            0,
        )));
        let fanout = Fanout::bind(addr, protocol, placeholder, config.server, on_event)?;
        Ok(HubListener {
            fanout,
            desk,
            fingerprint,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.fanout.local_addr()
    }

    /// `sha256:HEX` of its TLS certificate, with TLS.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Senders pushing now.
    pub fn senders(&self) -> usize {
        self.desk.lock().live.len()
    }

    /// Waits up to `timeout` for the next sender's stream (a sender that dialed again comes
    /// again); `None` when none came or the hub is shutting down.
    pub fn next(&self, timeout: Duration) -> Option<Pushed> {
        let deadline = Instant::now() + timeout;
        // Streams replaced before they were taken; dropped once the lock is let go (a stream
        // leaves the hub's record as it drops, which takes the lock).
        let mut stale = Vec::new();
        let mut state = self.desk.lock();
        loop {
            if state.closed {
                return None;
            }
            while let Some((pushed, generation)) = state.arrived.pop_front() {
                if state
                    .live
                    .get(&pushed.name)
                    .is_some_and(|(g, _)| *g == generation)
                {
                    return Some(pushed);
                }
                stale.push(pushed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .desk
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops taking senders, cuts the ones pushing, and wakes a waiting [`next`](Self::next).
    pub fn shutdown(&self) {
        let (live, untaken) = {
            let mut state = self.desk.lock();
            state.closed = true;
            (
                std::mem::take(&mut state.live),
                std::mem::take(&mut state.arrived),
            )
        };
        // Dropped without the lock, which each takes to leave the hub's record.
        drop(untaken);
        for (_, cut) in live.values() {
            cut();
        }
        self.desk.changed.notify_all();
        self.fanout.shutdown();
    }
}

impl Drop for HubListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What happened to a sender's pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The hub took the stream.
    Connected {
        /// The hub.
        hub: SocketAddr,
        /// Whether it had been lost before.
        again: bool,
    },
    /// The connection failed or was lost; dialing again after `retry_in`, and again with
    /// backoff, told again only when the reason changes.
    Lost {
        /// Why, in one line.
        reason: String,
        /// The wait before the next dial.
        retry_in: Duration,
    },
    /// The hub refused in a way dialing again would not change (a token, a name, not a hub);
    /// the sender stops pushing.
    Refused(String),
}

/// A sender's end: its stream pushed to a hub, dialed again with backoff (0.1 s, doubling to
/// 2 s) whenever it is lost, until shut down.
pub struct HubPusher {
    fanout: Arc<Fanout>,
    shared: Arc<PushShared>,
    hub: SocketAddr,
    name: String,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct PushShared {
    stop: AtomicBool,
    /// Whether the hub takes the stream now (from the hub's answer to the end of its
    /// connection, which the dialer sees before the stream's writer does).
    connected: AtomicBool,
    /// Set when the hub's stream ended: the dialer dials again.
    left: Mutex<bool>,
    changed: Condvar,
    refused: Mutex<Option<String>>,
}

impl PushShared {
    /// Waits until `until` (the stream ended, or the pusher stops) or `timeout` (none:
    /// no limit).
    fn wait(&self, timeout: Option<Duration>, until: impl Fn(&Self, &bool) -> bool) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        while !until(self, &left) {
            left = match deadline {
                None => self
                    .changed
                    .wait(left)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let rest = deadline.saturating_duration_since(Instant::now());
                    if rest.is_zero() {
                        return;
                    }
                    self.changed
                        .wait_timeout(left, rest)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn set_connected(&self, on: bool) {
        self.connected.store(on, Ordering::SeqCst);
        let _held = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

/// How soon a lost push dials again first, and at most.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

impl HubPusher {
    /// Starts pushing `ladder`'s renditions (paced to `fps`) to the hub at `hub` as `name`,
    /// on a thread of its own; `on_event` hears of each connection made, lost or refused.
    /// A name the hub would refuse is refused here, before anything is dialed.
    pub fn start(
        hub: SocketAddr,
        name: &str,
        (ladder, fps): (Arc<Ladder>, f64),
        config: CallConfig,
        on_event: impl Fn(PushEvent) + Send + Sync + 'static,
    ) -> Result<HubPusher, String> {
        let name = check_name(name.as_bytes())?.to_string();
        let shared = Arc::new(PushShared {
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            left: Mutex::new(false),
            changed: Condvar::new(),
            refused: Mutex::new(None),
        });
        let watch = Arc::clone(&shared);
        let server = ServerConfig {
            max_viewers: 2,
            ..config.server.clone()
        };
        let fanout = Arc::new(Fanout::without_listener(
            FramewireProtocol::new(fps),
            ladder,
            server,
            move |event| {
                if let ServerEvent::Left { .. } | ServerEvent::Rejected { .. } = event {
                    *watch.left.lock().unwrap_or_else(PoisonError::into_inner) = true;
                    watch.changed.notify_all();
                }
            },
        ));
        let dialer = Dialer {
            hub,
            call: crate::chat::call_number(),
            name: name.clone(),
            fps,
            config,
            fanout: Arc::clone(&fanout),
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name(format!("push-{name}"))
            .spawn(move || dialer.run(&on_event))
            .map_err(|e| format!("cannot start the pushing thread: {e}"))?;
        Ok(HubPusher {
            fanout,
            shared,
            hub,
            name,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Why the hub refused this sender for good, if it did.
    pub fn refused(&self) -> Option<String> {
        self.shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The pushing thread's part.
struct Dialer {
    hub: SocketAddr,
    call: u16,
    name: String,
    fps: f64,
    config: CallConfig,
    fanout: Arc<Fanout>,
    shared: Arc<PushShared>,
}

impl Dialer {
    fn run(&self, on_event: &dyn Fn(PushEvent)) {
        let hello = Hello {
            request: Request::default(),
            call: Some(self.call),
            push: true,
        };
        let mut opening = hello.to_bytes().to_vec();
        opening.extend_from_slice(&name_message(&self.name));
        let mut backoff = BACKOFF.0;
        let mut again = false;
        let mut last: Option<String> = None;
        while !self.shared.stopped() {
            let lost = match dial_call(self.hub, &self.config, &opening, self.call) {
                Ok((stream, asked, _)) => {
                    *self
                        .shared
                        .left
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = false;
                    let framer = Box::new(FramewireFramer { fps: self.fps });
                    let watch = stream.try_clone();
                    match watch.and_then(|w| {
                        self.fanout
                            .adopt(stream, self.hub, asked, framer)
                            .map(|()| w)
                    }) {
                        Ok(mut watch) => {
                            self.shared.set_connected(true);
                            on_event(PushEvent::Connected {
                                hub: self.hub,
                                again,
                            });
                            again = true;
                            backoff = BACKOFF.0;
                            last = None;
                            let why = self.watch(&mut watch);
                            self.shared.set_connected(false);
                            why
                        }
                        Err(e) => format!("cannot start the sending thread: {e}"),
                    }
                }
                Err(e) if is_refusal(&e) => {
                    let reason = e.to_string();
                    *self
                        .shared
                        .refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
                    on_event(PushEvent::Refused(reason));
                    return;
                }
                Err(e) => chain(&e),
            };
            if self.shared.stopped() {
                return;
            }
            // Told once per reason: a hub that stays away is not a line per dial.
            if last.as_ref() != Some(&lost) {
                on_event(PushEvent::Lost {
                    reason: lost.clone(),
                    retry_in: backoff,
                });
                last = Some(lost);
            }
            self.shared.wait(Some(backoff), |s, _| s.stopped());
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }
}

impl Dialer {
    /// Waits while the hub's connection lasts: the hub sends nothing after its hello, so a
    /// read ends only when the hub closes it (a restart), the connection breaks, the stream's
    /// writer left, or the pusher stops (its shutdown closes the socket). Says why it ended.
    fn watch(&self, watch: &mut Conn) -> String {
        use std::io::Read;
        let mut scrap = [0u8; 256];
        let why = loop {
            if self.shared.stopped() {
                break "stopped".to_string();
            }
            if *self
                .shared
                .left
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
            {
                break "the stream to the hub ended".to_string();
            }
            match watch.read(&mut scrap) {
                Ok(0) => break "the hub closed the connection".to_string(),
                Ok(_) => continue,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => break format!("the hub's connection broke: {e}"),
            }
        };
        // The stream's writer stops at once instead of at its next write.
        let _ = watch.shutdown(Shutdown::Both);
        why
    }
}

/// An error and its sources on one line, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        line.push_str(": ");
        line.push_str(&s.to_string());
        next = s.source();
    }
    line
}

/// Whether the hub said no in a way dialing again would not change: a token, a name, not a
/// hub; a full hub may have room later, and a lost connection may come back.
fn is_refusal(e: &NetError) -> bool {
    match e {
        NetError::CallRefused { reason, .. } => !reason.starts_with(FULL),
        other => !other.is_connection_lost(),
    }
}

impl Publisher for HubPusher {
    fn describe(&self) -> String {
        format!("push to the hub {} as {}", self.hub, self.name)
    }

    fn publish(&self, packets: &[Arc<Packet>]) {
        self.fanout.publish(packets);
    }

    /// One while the hub takes the stream, else none.
    fn subscribers(&self) -> usize {
        match self.shared.is_connected() {
            true => self.fanout.viewer_count().min(1),
            false => 0,
        }
    }

    fn wait_for_subscriber(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        self.shared
            .wait(Some(timeout), |s, _| s.is_connected() || s.stopped());
        if self.shared.is_connected() {
            self.fanout
                .wait_for_viewer(deadline.saturating_duration_since(Instant::now()));
        }
        self.subscribers()
    }

    fn dropped_total(&self) -> u64 {
        self.fanout.dropped_total()
    }

    fn wait_taken(&self, deadline: Instant) -> bool {
        Publisher::wait_taken(&*self.fanout, deadline)
    }

    fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.fanout.shutdown();
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for HubPusher {
    fn drop(&mut self) {
        Publisher::shutdown(self);
    }
}
