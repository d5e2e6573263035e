//! Two-way calls (`framewire chat`): one TCP connection carries a framewire stream each way.
//!
//! A call opens with a hello from each side (the caller's first, then the listener's), both
//! carrying the call's number (see the crate doc). With a token, each side proves it to the
//! other before either sends a byte of its stream: the listener challenges the caller, the
//! caller answers and challenges back, and the listener answers (only to a caller that proved
//! it) before its hello; a caller with a token hangs up on a listener that proves none. From
//! then on each side is both a server
//! and a viewer on the same socket: it writes its stream handshake, frames, switches and
//! goodbye through a [`Fanout`] (so its stream keeps to the link, moves along its quality
//! ladder and drops stale frames exactly as `serve` does), and reads the peer's with a
//! [`Client`]. A listener refuses a second caller ("busy") and a one-way viewer; a caller that
//! lost its connection dials again with the same number, which the listener takes over the
//! old call, if it comes within the receiving half's read timeout (else the line is free): the
//! desk and the call's halves are [`crate::call`]'s, for every transport.
//!
//! [`ChatListener`] and [`ChatDialer`] are the two sides' [`Connector`]s: each call (or redial)
//! they make hands the sending half to their fan-out and returns the receiving half as a
//! [`Subscription`], whose closer hangs up (the goodbye goes out before the socket closes).

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{
    CallSide, Connector, Ladder, Publisher, Request, Subscription, TransportError,
};

use crate::call::{CallHalf, Cut, Desk, Line, Offer};
use crate::client::{Client, ClientConfig, NetError};
use crate::conn::Conn;
use crate::conn::is_timeout;
use crate::fanout::{Fanout, Opening, Protocol, Refused, ServerConfig, ServerEvent, read_full};
use crate::framewire::{FramewireProtocol, write_end};
use framewire_wire::framer::FramewireFramer;
use framewire_wire::message::{
    FRAME_MAGIC, FrameHeader, HANDSHAKE_LEN, HANDSHAKE_MAGIC, HEADER_LEN, HELLO_HEAD_LEN,
    HELLO_LEN, HELLO_MAGIC, Handshake, Hello, MAX_ERROR_TEXT, MessageKind, PROOF_LEN, WireError,
    WireErrorKind, token_message,
};
use framewire_wire::token;

/// What a listener answers a one-way viewer.
pub const NOT_A_VIEWER: &str =
    "this is a two-way call (framewire chat --listen): call it with framewire chat --connect";

/// What a listener answers a sender pushing to a hub (`serve --push`).
pub const NOT_A_HUB: &str =
    "this is a two-way call (framewire chat --listen), not a hub: push to framewire hub --listen";

pub use crate::call::BUSY;

/// Limits of one side of a call.
#[derive(Debug, Clone, Default)]
pub struct CallConfig {
    /// The receiving half: connect timeout, idle timeout, largest payload.
    pub client: ClientConfig,
    /// The sending half: handshake deadline (for the peer's hello), write timeout.
    pub server: ServerConfig,
}

/// A call's opening: framewire's protocol for the stream it sends, and, on a listener, the
/// hellos and the one-call-at-a-time rule.
struct ChatProtocol {
    framewire: FramewireProtocol,
    /// What this side asks of the peer's ladder.
    request: Request,
    /// The listener's record of its call; `None` on a caller, which takes no calls.
    desk: Option<Arc<Desk<TcpOffer>>>,
}

impl Protocol for ChatProtocol {
    fn name(&self) -> &'static str {
        "chat"
    }

    /// Reads a caller's hello and answers it with this side's, or refuses: a one-way viewer,
    /// another wire version, a second caller while in a call.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, Refused> {
        let Some(desk) = &self.desk else {
            return Err("this side dials; it takes no calls".into());
        };
        let deadline = Instant::now() + timeout;
        let hello = self.framewire.read_hello(stream, deadline, timeout)?;
        let Some(call) = hello.call else {
            let _ = write_end(stream, Some(NOT_A_VIEWER));
            return Err("a one-way viewer, not a caller: told to use framewire chat".into());
        };
        if hello.push {
            let _ = write_end(stream, Some(NOT_A_HUB));
            return Err("a sender pushing to a hub, not a caller: told so".into());
        }
        let mut read = HELLO_LEN as u64 + self.framewire.check_token(stream, deadline, timeout)?;
        // The caller proved the token; it asks this side to prove it back.
        let proof_back = match self.framewire.token() {
            Some(token) => {
                let challenge = read_challenge(stream, deadline, timeout)?;
                read += (HEADER_LEN + PROOF_LEN) as u64;
                Some(token_message(
                    MessageKind::Proof,
                    &token.prove_listener(&challenge),
                ))
            }
            None => None,
        };
        let (peer, cut) = peer_and_cut(stream)?;
        let cut: Cut = Box::new(cut);
        let generation = match desk.take_call(peer.ip(), call, Some(cut), |_| None) {
            Ok(g) => g,
            Err(reason) => {
                let _ = write_end(stream, Some(&reason));
                return Err(reason.into());
            }
        };
        let answer = Hello {
            request: self.request,
            call: Some(call),
            push: false,
        };
        let mut opening = proof_back.map(Vec::from).unwrap_or_default();
        opening.extend_from_slice(&answer.to_bytes());
        let offered = stream.write_all(&opening).and_then(|()| stream.try_clone());
        match offered {
            Ok(receiving) => {
                desk.offer(TcpOffer {
                    stream: receiving,
                    peer,
                    generation,
                    read,
                });
                Ok(Opening::Stream {
                    request: hello.request,
                    framer: self.framewire.framer(),
                    reader: None,
                })
            }
            Err(e) => {
                Line::end(&**desk, generation);
                Err(format!("answering the caller's hello: {e}").into())
            }
        }
    }
}

/// Reads the challenge a caller that proved the token sends next, before `deadline`.
pub(crate) fn read_challenge(
    stream: &mut Conn,
    deadline: Instant,
    timeout: Duration,
) -> Result<[u8; PROOF_LEN], String> {
    let mut message = [0u8; HEADER_LEN + PROOF_LEN];
    match read_full(stream, &mut message, deadline) {
        Ok(n) if n == message.len() => {}
        Ok(n) => {
            return Err(format!(
                "closed after {n} of the {} bytes of its challenge to this side",
                message.len()
            ));
        }
        Err(e) if is_timeout(&e) => {
            return Err(format!(
                "sent no challenge to this side within {:.1}s",
                timeout.as_secs_f64()
            ));
        }
        Err(e) => return Err(format!("reading the caller's challenge: {e}")),
    }
    let head: &[u8; HEADER_LEN] = message[..HEADER_LEN].try_into().expect("header");
    if !FrameHeader::parse(head, 0).is_ok_and(|h| h.kind == MessageKind::Challenge) {
        let _ = write_end(stream, Some(NO_CHALLENGE));
        return Err(NO_CHALLENGE.into());
    }
    Ok(message[HEADER_LEN..].try_into().expect("32 bytes"))
}

/// Who is at the other end of `stream`, and what ends its connection at once (a caller or
/// sender replaced by its own new connection).
pub(crate) fn peer_and_cut(
    stream: &Conn,
) -> Result<(SocketAddr, impl Fn() + Send + Sync + 'static), String> {
    let peer = stream
        .peer_addr()
        .map_err(|e| format!("socket setup failed: {e}"))?;
    let socket = stream
        .tcp()
        .try_clone()
        .map_err(|e| format!("socket setup failed: {e}"))?;
    Ok((peer, move || {
        let _ = socket.shutdown(Shutdown::Both);
    }))
}

/// What a listener answers a caller that proved the token but did not ask it to prove it back
/// (an older build).
pub const NO_CHALLENGE: &str =
    "the caller proved the token but did not ask this side to prove it back (an older build?)";

/// What a caller with a token tells a listener that proved none, and says itself.
pub const LISTENER_PROVED_NONE: &str = "the listener proved no token, and the caller has one: \
     it is not the listener meant, or it needs the same token";

/// What a caller tells a listener that proved another token, and says itself.
pub const LISTENER_WRONG_TOKEN: &str =
    "the listener proved another token: it is not the listener meant, or its token differs";

/// A connection whose openings are done, waiting for the listener's receiving side to take it.
struct TcpOffer {
    stream: Conn,
    peer: SocketAddr,
    generation: u64,
    /// Bytes read from it so far: the caller's hello and proof.
    read: u64,
}

impl Offer for TcpOffer {
    fn cancel(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The listening side of calls: takes one call at a time on its address.
pub struct ChatListener {
    fanout: Arc<Fanout>,
    /// The TLS certificate's fingerprint, with TLS.
    fingerprint: Option<String>,
    desk: Arc<Desk<TcpOffer>>,
    config: ClientConfig,
}

impl ChatListener {
    /// Listens on `addr` for calls. Each call gets this side's stream of `ladder`'s renditions
    /// (paced to `fps`), asking the caller's ladder for `request`. `on_event` hears of the
    /// sending half's peer joining, moving and leaving.
    pub fn bind(
        addr: impl ToSocketAddrs,
        ladder: Arc<Ladder>,
        fps: f64,
        request: Request,
        config: CallConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<ChatListener> {
        let desk = Arc::new(Desk::new());
        let fingerprint = config
            .server
            .tls
            .as_ref()
            .map(|t| t.fingerprint().to_string());
        let protocol = ChatProtocol {
            framewire: FramewireProtocol::new(fps).with_token(config.server.token.clone()),
            request,
            desk: Some(Arc::clone(&desk)),
        };
        // Two: a redial's connection may start before the lost one's sending half is gone.
        let server = ServerConfig {
            max_viewers: 2,
            ..config.server
        };
        let fanout = Fanout::bind(addr, protocol, ladder, server, on_event)?;
        Ok(ChatListener {
            fanout: Arc::new(fanout),
            fingerprint,
            desk,
            config: config.client,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.fanout.local_addr()
    }

    /// The sending half, for the send path's publisher list.
    pub fn fanout(&self) -> Arc<Fanout> {
        Arc::clone(&self.fanout)
    }

    /// `sha256:HEX` of its TLS certificate, with TLS.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Hangs up: the peer gets the goodbye, no more calls are taken, and a
    /// [`connect`](Connector::connect) waiting for a call returns.
    pub fn hang_up(&self) {
        Line::close(&*self.desk);
        self.fanout.shutdown();
    }
}

impl CallSide for ChatListener {
    fn sending(&self) -> Arc<dyn Publisher> {
        self.fanout()
    }

    fn hang_up(&self) {
        ChatListener::hang_up(self);
    }

    fn listening(&self) -> Option<(String, Option<String>)> {
        let fingerprint = self.tls_fingerprint().map(str::to_string);
        Some((self.local_addr().to_string(), fingerprint))
    }
}

impl Connector for ChatListener {
    fn describe(&self) -> String {
        format!("calls on {}", self.local_addr())
    }

    /// Waits for the next call (or a lost call's redial) and returns its receiving half.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        // A lost caller has the idle timeout to call back.
        let offer = self.desk.next_call(self.config.read_timeout)?;
        let generation = offer.generation;
        match Client::after_opening(offer.stream, offer.peer, offer.read, self.config.clone()) {
            Ok(client) => Ok(Box::new(CallHalf {
                peer: format!("peer {}", client.peer()),
                receiving: Box::new(client),
                sending: self.fanout.clone(),
                desk: Some((self.desk.clone(), generation)),
                _keep: None,
            })),
            Err(e) => {
                Line::end(&*self.desk, generation);
                Err(e.into())
            }
        }
    }
}

/// The calling side: dials one address, and dials again with the same call number when the
/// connection is lost.
pub struct ChatDialer {
    addr: SocketAddr,
    request: Request,
    call: u16,
    fps: f64,
    fanout: Arc<Fanout>,
    config: CallConfig,
}

impl ChatDialer {
    /// A caller of `addr`, sending its stream of `ladder`'s renditions (paced to `fps`) and
    /// asking the listener's ladder for `request`. Dials on [`connect`](Connector::connect).
    pub fn new(
        addr: SocketAddr,
        ladder: Arc<Ladder>,
        fps: f64,
        request: Request,
        config: CallConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> ChatDialer {
        let protocol = ChatProtocol {
            framewire: FramewireProtocol::new(fps),
            request,
            desk: None,
        };
        let server = ServerConfig {
            max_viewers: 2,
            ..config.server.clone()
        };
        let fanout = Fanout::without_listener(protocol, ladder, server, on_event);
        ChatDialer {
            addr,
            request,
            call: call_number(),
            fps,
            fanout: Arc::new(fanout),
            config,
        }
    }

    /// The sending half, for the send path's publisher list.
    pub fn fanout(&self) -> Arc<Fanout> {
        Arc::clone(&self.fanout)
    }

    /// Hangs up: the peer gets the goodbye.
    pub fn hang_up(&self) {
        self.fanout.shutdown();
    }

    /// Dials, says hello and reads the listener's answer: its hello (what it asks of this
    /// side's ladder), or its refusal.
    fn dial(&self) -> Result<(Conn, Request, u64), NetError> {
        let hello = Hello {
            request: self.request,
            call: Some(self.call),
            push: false,
        };
        dial_call(self.addr, &self.config, &hello.to_bytes(), self.call)
    }
}

/// Dials `addr`, sends `opening` (a caller's hello, and what follows it in the same write) and
/// reads the listener's answer to call `call`: the token proved both ways when `config` has one,
/// then its hello (what it asks of this side's ladder), or its refusal. Returns the connection,
/// what the listener asks and the bytes read from it.
pub(crate) fn dial_call(
    addr: SocketAddr,
    config: &CallConfig,
    opening: &[u8],
    call: u16,
) -> Result<(Conn, Request, u64), NetError> {
    let mut stream = crate::client::open(addr, &config.client)?;
    let io_err = |what: &str, offset: u64, source| NetError::Io {
        peer: addr,
        what: what.into(),
        offset,
        last_seq: None,
        source,
    };
    stream
        .write_all(opening)
        .map_err(|e| io_err("sending the call's hello", 0, e))?;
    let deadline = Instant::now() + config.server.handshake_timeout;
    let mut head = [0u8; HEADER_LEN];
    let read = |stream: &mut Conn, buf: &mut [u8], from: u64| match read_full(stream, buf, deadline)
    {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(0) if from == 0 => Err(NetError::ClosedBeforeHandshake { peer: addr }),
        Ok(n) => Err(NetError::Wire {
            peer: addr,
            source: WireError {
                offset: from,
                last_good_seq: None,
                kind: WireErrorKind::Truncated {
                    inside: "the answer to the call",
                    need: buf.len(),
                    have: n,
                },
            },
        }),
        Err(e) if is_timeout(&e) => Err(io_err("no answer to the call's hello", from, e)),
        Err(e) => Err(io_err("reading the answer to the call", from, e)),
    };
    // Bytes read so far: a challenge and a proof may come before the listener's hello.
    let mut at = 0u64;
    // This side's challenge to the listener, once sent; whether the listener answered it.
    let mut asked = None;
    let mut proven = false;
    loop {
        read(&mut stream, &mut head[..HELLO_HEAD_LEN], at)?;
        let wire = |kind| NetError::Wire {
            peer: addr,
            source: WireError {
                offset: at,
                last_good_seq: None,
                kind,
            },
        };
        let magic: [u8; 4] = head[..4].try_into().expect("4 bytes");
        if magic == HELLO_MAGIC {
            read(
                &mut stream,
                &mut head[HELLO_HEAD_LEN..HELLO_LEN],
                at + HELLO_HEAD_LEN as u64,
            )?;
            let answer =
                Hello::parse(head[..HELLO_LEN].try_into().expect("16 bytes")).map_err(wire)?;
            if answer.call != Some(call) {
                return Err(refused(addr, "it answered with another call's number"));
            }
            if config.client.token.is_some() && !proven {
                return Err(unproven(addr, &mut stream, LISTENER_PROVED_NONE));
            }
            return Ok((stream, answer.request, at + HELLO_LEN as u64));
        }
        if magic == FRAME_MAGIC {
            read(
                &mut stream,
                &mut head[HELLO_HEAD_LEN..],
                at + HELLO_HEAD_LEN as u64,
            )?;
            let header = FrameHeader::parse(&head, MAX_ERROR_TEXT).map_err(wire)?;
            if header.kind == MessageKind::Challenge && asked.is_none() {
                let mut challenge = [0u8; PROOF_LEN];
                read(&mut stream, &mut challenge, at + HEADER_LEN as u64)?;
                asked = Some(prove(addr, config, &mut stream, &challenge, at)?);
                at += (HEADER_LEN + PROOF_LEN) as u64;
                continue;
            }
            if header.kind == MessageKind::Proof && !proven {
                let mut proof = [0u8; PROOF_LEN];
                read(&mut stream, &mut proof, at + HEADER_LEN as u64)?;
                let token = config.client.token.as_ref();
                let right = asked
                    .zip(token)
                    .is_some_and(|(c, token)| token.verify_listener(&c, &proof));
                if !right {
                    return Err(unproven(addr, &mut stream, LISTENER_WRONG_TOKEN));
                }
                proven = true;
                at += (HEADER_LEN + PROOF_LEN) as u64;
                continue;
            }
            if !matches!(header.kind, MessageKind::Error | MessageKind::End) {
                return Err(refused(addr, "it sent a frame before answering the hello"));
            }
            let mut reason = vec![0u8; header.payload_len as usize];
            read(&mut stream, &mut reason, at + HEADER_LEN as u64)?;
            let reason = framewire_wire::message::peer_text(&reason);
            return Err(NetError::CallRefused {
                peer: addr,
                reason: if reason.is_empty() {
                    "it is shutting down".into()
                } else {
                    reason
                },
            });
        }
        if magic == HANDSHAKE_MAGIC {
            // A one-way server of another version answers with its version.
            let mut handshake = [0u8; HANDSHAKE_LEN];
            handshake[..HELLO_HEAD_LEN].copy_from_slice(&head[..HELLO_HEAD_LEN]);
            if let Err(e @ WireErrorKind::UnsupportedVersion { .. }) = Handshake::parse(&handshake)
            {
                return Err(wire(e));
            }
            return Err(refused(
                addr,
                "it is a one-way stream (framewire serve): watch it with framewire view",
            ));
        }
        return Err(wire(WireErrorKind::BadMagic {
            what: "listener hello",
            expected: HELLO_MAGIC,
            got: framewire_wire::message::Preview::of(&head[..HELLO_HEAD_LEN]),
        }));
    }
}

/// Answers the listener's challenge, `at` bytes into the connection, with the token's
/// proof, and challenges it back in the same write; returns this side's challenge.
fn prove(
    addr: SocketAddr,
    config: &CallConfig,
    stream: &mut Conn,
    challenge: &[u8; PROOF_LEN],
    at: u64,
) -> Result<[u8; PROOF_LEN], NetError> {
    let Some(token) = &config.client.token else {
        return Err(NetError::TokenNeeded { peer: addr });
    };
    let mine = token::challenge().map_err(|e| NetError::Io {
        peer: addr,
        what: "making the token challenge".into(),
        offset: at,
        last_seq: None,
        source: io::Error::other(e),
    })?;
    let mut message = token_message(MessageKind::Proof, &token.prove(challenge)).to_vec();
    message.extend_from_slice(&token_message(MessageKind::Challenge, &mine));
    stream
        .write_all(&message)
        .map(|()| mine)
        .map_err(|source| NetError::Io {
            peer: addr,
            what: "sending the token's proof".into(),
            offset: at,
            last_seq: None,
            source,
        })
}

/// Hangs up on a listener that did not prove this side's token: tells it `reason` (an
/// Error message where its stream handshake would be) and closes. Not a byte of this
/// side's stream was sent.
fn unproven(addr: SocketAddr, stream: &mut Conn, reason: &str) -> NetError {
    let header = FrameHeader {
        kind: MessageKind::Error,
        seq: 0,
        capture_us: 0,
        payload_len: reason.len() as u32,
        delta: false,
    };
    let mut message = header.to_bytes().to_vec();
    message.extend_from_slice(reason.as_bytes());
    let _ = stream.write_all(&message);
    let _ = stream.shutdown(Shutdown::Both);
    NetError::ListenerUnproven {
        peer: addr,
        reason: reason.into(),
    }
}

fn refused(peer: SocketAddr, reason: &str) -> NetError {
    NetError::CallRefused {
        peer,
        reason: reason.into(),
    }
}

impl CallSide for ChatDialer {
    fn sending(&self) -> Arc<dyn Publisher> {
        self.fanout()
    }

    fn hang_up(&self) {
        ChatDialer::hang_up(self);
    }
}

impl Connector for ChatDialer {
    fn describe(&self) -> String {
        self.addr.to_string()
    }

    /// Dials the listener and returns the call's receiving half; its sending half goes to the
    /// fan-out.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        let (stream, asked, read) = self.dial()?;
        let sending = stream.try_clone().map_err(|source| NetError::Connect {
            addr: self.addr,
            source,
        })?;
        self.fanout
            .adopt(
                sending,
                self.addr,
                asked,
                Box::new(FramewireFramer { fps: self.fps }),
            )
            .map_err(|source| NetError::Connect {
                addr: self.addr,
                source,
            })?;
        let client = Client::after_opening(stream, self.addr, read, self.config.client.clone())?;
        Ok(Box::new(CallHalf {
            peer: format!("peer {}", client.peer()),
            receiving: Box::new(client),
            sending: self.fanout.clone(),
            desk: None,
            _keep: None,
        }))
    }
}

/// A call's number: nonzero, and unlikely to be another caller's from the same address.
pub(crate) fn call_number() -> u16 {
    let t = framewire_core::now_micros() ^ u64::from(std::process::id()).rotate_left(17);
    let n = (t ^ (t >> 16) ^ (t >> 32) ^ (t >> 48)) as u16;
    n.max(1)
}
