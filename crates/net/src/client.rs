//! The TCP client a viewer uses: connect, say hello (asking for a rung, codec or width), read
//! the handshake, then frames and switches. Errors name the server, the byte offset and the
//! last frame read whole.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{
    Closer, CodecKind, Connector, Packet, PixelFormat, Placement, Received, Rendition, Request,
    StreamInfo, Subscription, TransportError,
};

use crate::conn::Conn;
use crate::tls::TlsClient;
use framewire_wire::message::{
    DEFAULT_MAX_PAYLOAD, FrameHeader, Hello, MessageKind, PROOF_LEN, VERSION, WireError,
    WireErrorKind, token_message,
};
use framewire_wire::reader::{Event, FrameReader};
use framewire_wire::token::Token;

/// Limits of a client; each has a documented default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time to establish the TCP connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time without a byte from the server before giving up. Default 15 s.
    pub read_timeout: Duration,
    /// Largest frame payload accepted. Default [`DEFAULT_MAX_PAYLOAD`] (64 MiB).
    pub max_payload: u32,
    /// The shared token, proved when the server asks. Default none.
    pub token: Option<Token>,
    /// TLS, and how the server's certificate is trusted. Default none (plain TCP).
    pub tls: Option<TlsClient>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(15),
            max_payload: DEFAULT_MAX_PAYLOAD,
            token: None,
            tls: None,
        }
    }
}

/// What a connection to a server failed with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server sent bytes that are not a valid framewire stream.
    #[error("server {peer}")]
    Wire {
        /// The server.
        peer: SocketAddr,
        /// What and where.
        #[source]
        source: WireError,
    },
    /// The connection failed or went silent.
    #[error("server {peer}: {what} at byte {offset}{}", after(*last_seq))]
    Io {
        /// The server.
        peer: SocketAddr,
        /// What happened, in words.
        what: String,
        /// Bytes read from the stream so far.
        offset: u64,
        /// Last frame read whole.
        last_seq: Option<u64>,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server refused the viewer (or ended the stream) before its handshake.
    #[error(
        "server {peer} {}",
        match reason {
            Some(r) => format!("refused the viewer: {r}"),
            None => "ended the stream before starting it".to_string(),
        }
    )]
    Refused {
        /// The server.
        peer: SocketAddr,
        /// The server's reason; `None` when it only said the stream ended (it is shutting down).
        reason: Option<String>,
    },
    /// The server asks for the token, and this side has none.
    #[error(
        "server {peer} asks for a token: give the same one as the server, in the file named by \
         --token-file or in the environment variable FRAMEWIRE_TOKEN"
    )]
    TokenNeeded {
        /// The server.
        peer: SocketAddr,
    },
    /// The TLS handshake failed or the server's certificate is not trusted; the reason says
    /// what to do.
    #[error("{reason}")]
    Tls {
        /// The server.
        peer: SocketAddr,
        /// One line: what happened and what to do.
        reason: String,
        /// Whether trying again may help.
        retry: bool,
    },
    /// The other side of a call refused it (busy, not a call, shutting down).
    #[error("peer {peer} refused the call: {reason}")]
    CallRefused {
        /// The listener.
        peer: SocketAddr,
        /// Its reason.
        reason: String,
    },
    /// A call's listener did not prove the token this caller has: the caller hung up before
    /// sending a byte of its stream.
    #[error("refused listener {peer}: {reason}")]
    ListenerUnproven {
        /// The listener.
        peer: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The server closed the connection (or reset it) right after the hello, without a byte:
    /// what a server of an older wire version does with a newer hello, and what a server does
    /// with a connection it cannot take now (too many in their handshake).
    #[error(
        "server {peer} closed the connection before its stream handshake: it speaks an older \
         wire version ({}) than this viewer ({VERSION}), or it refused the viewer",
        VERSION - 1
    )]
    ClosedBeforeHandshake {
        /// The server.
        peer: SocketAddr,
    },
    /// The server closed the connection between messages, without saying the stream ended.
    #[error(
        "server {peer} closed the connection at byte {offset}{} without ending the stream",
        after(*last_seq)
    )]
    Closed {
        /// The server.
        peer: SocketAddr,
        /// Bytes read from the stream so far.
        offset: u64,
        /// Last frame read whole.
        last_seq: Option<u64>,
    },
}

fn after(seq: Option<u64>) -> String {
    match seq {
        Some(s) => format!(" (after frame {s})"),
        None => " (before any frame)".to_string(),
    }
}

/// Payloads at least this long are read from the socket straight into the caller's buffer by
/// [`Client::recv`]; shorter ones arrive several to a read and are copied out.
const DIRECT_PAYLOAD: usize = 256 * 1024;

/// A connection to a framewire server.
pub struct Client {
    stream: Conn,
    reader: FrameReader,
    peer: SocketAddr,
    placement: Placement,
    fps: f64,
    config: ClientConfig,
}

impl Client {
    /// Connects to `addr`, sends the viewer hello asking for `request` and reads the stream
    /// handshake. A server that refuses the viewer (full, or unable to serve the request) says
    /// why: [`NetError::Refused`].
    pub fn connect(
        addr: SocketAddr,
        request: Request,
        config: ClientConfig,
    ) -> Result<Client, NetError> {
        let mut stream = open(addr, &config)?;
        let hello_err = |source| NetError::Io {
            peer: addr,
            what: "sending the viewer hello".into(),
            offset: 0,
            last_seq: None,
            source,
        };
        let hello = Hello {
            request,
            call: None,
            push: false,
        };
        stream.write_all(&hello.to_bytes()).map_err(hello_err)?;
        Client::read_handshake(stream, addr, 0, config)
    }

    /// Takes over `stream`, a connection to `peer` whose first `read` bytes (a call's hello)
    /// were read elsewhere, and reads the stream handshake that comes next. The socket's
    /// timeouts are set from `config`.
    pub fn after_opening(
        stream: Conn,
        peer: SocketAddr,
        read: u64,
        config: ClientConfig,
    ) -> Result<Client, NetError> {
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(config.read_timeout)))
            .and_then(|()| stream.set_write_timeout(Some(config.read_timeout)))
            .map_err(|source| NetError::Io {
                peer,
                what: "setting up the socket".into(),
                offset: 0,
                last_seq: None,
                source,
            })?;
        Client::read_handshake(stream, peer, read, config)
    }

    /// Reads the stream handshake (or a refusal) from `stream`, `read` bytes into it.
    fn read_handshake(
        stream: Conn,
        addr: SocketAddr,
        read: u64,
        config: ClientConfig,
    ) -> Result<Client, NetError> {
        let mut client = Client {
            stream,
            reader: FrameReader::after(config.max_payload, read),
            peer: addr,
            // Until the handshake is read.
            placement: Placement {
                id: 0,
                rendition: Rendition::new(CodecKind::Raw, 0, 0, PixelFormat::Rgb8, 0),
                rung: None,
                rungs: 0,
            },
            fps: 0.0,
            config,
        };
        let mut received = 0;
        loop {
            if client.reader.poll().map_err(|e| client.wire_err(e))? {
                let peer = client.peer;
                match client.reader.next_event() {
                    Ok(Some(Event::Handshake(h))) => {
                        client.placement = h.placement;
                        client.fps = h.fps;
                        return Ok(client);
                    }
                    Ok(Some(Event::End { reason })) => {
                        return Err(NetError::Refused { peer, reason });
                    }
                    Ok(Some(Event::Challenge(challenge))) => {
                        client.prove(&challenge)?;
                        continue;
                    }
                    Err(source) => return Err(NetError::Wire { peer, source }),
                    Ok(_) => unreachable!("a handshake or an end is always the first event"),
                }
            }
            match client.fill() {
                Ok(n) => received += n,
                Err(e) if received == 0 && closed_at_once(&e) => {
                    return Err(NetError::ClosedBeforeHandshake { peer: addr });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Answers the server's challenge with the token's proof.
    fn prove(&mut self, challenge: &[u8; PROOF_LEN]) -> Result<(), NetError> {
        let Some(token) = &self.config.token else {
            return Err(NetError::TokenNeeded { peer: self.peer });
        };
        let message = token_message(MessageKind::Proof, &token.prove(challenge));
        self.stream
            .write_all(&message)
            .map_err(|source| NetError::Io {
                peer: self.peer,
                what: "sending the token's proof".into(),
                offset: self.reader.offset(),
                last_seq: None,
                source,
            })
    }

    /// The rendition the frames are in now, and its place on the server's ladder: from the
    /// handshake, then from each switch. Its `id` is the rung, or the ladder's rung count for a
    /// rendition off the ladder (the server's own number for it is not on the wire); it is
    /// what [`Subscription::recv`] puts in [`Packet::rendition`].
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Codec, size and pixel format of the frames now.
    pub fn stream(&self) -> StreamInfo {
        self.placement.rendition.stream
    }

    /// The server's frame rate (0 = unpaced), informational.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// A second handle on the socket, so another thread (a Ctrl-C handler) can shut it down
    /// and wake a blocked [`recv`](Self::recv).
    pub fn closer(&self) -> io::Result<TcpStream> {
        self.stream.tcp().try_clone()
    }

    /// Bytes read from the stream so far.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// Sequence number of the last frame read whole.
    pub fn last_seq(&self) -> Option<u64> {
        self.reader.last_seq()
    }

    /// Blocks for the next packet, switch, report, or the end of the stream. A packet is
    /// written into `packet` (its payload replacing what the buffer held, whose allocation is
    /// reused). A large payload (raw video) is read from the socket straight into that buffer;
    /// paired with [`FrameDecoder::decode_vec`](framewire_core::FrameDecoder::decode_vec), a
    /// raw frame then reaches its [`Frame`](framewire_core::Frame) without being copied in user
    /// space.
    pub fn recv(&mut self, packet: &mut Packet) -> Result<Received, NetError> {
        let payload = &mut packet.payload;
        let header = match self.recv_payload(payload)? {
            Ok(header) => header,
            Err(other) => return Ok(other),
        };
        packet.seq = header.seq;
        packet.capture_us = header.capture_us;
        packet.keyframe = !header.delta;
        packet.rendition = self.placement.id;
        Ok(Received::Packet {
            bytes: (packet.payload.len() + framewire_wire::message::HEADER_LEN) as u64,
        })
    }

    /// The next message: a frame's header (its payload in `payload`), or anything else.
    fn recv_payload(
        &mut self,
        payload: &mut Vec<u8>,
    ) -> Result<Result<FrameHeader, Received>, NetError> {
        loop {
            if self.reader.poll().map_err(|e| self.wire_err(e))? {
                break;
            }
            if self.reader.is_ended() {
                return Ok(Err(Received::End { reason: None }));
            }
            if self
                .reader
                .pending_payload()
                .is_some_and(|len| len >= DIRECT_PAYLOAD)
            {
                let (header, mut have) = self
                    .reader
                    .take_payload(payload)
                    .expect("inside a frame payload");
                while have < payload.len() {
                    let n = self.read_some(ReadInto::Payload(payload, have))?;
                    self.reader.payload_filled(n);
                    have += n;
                }
                return Ok(Ok(header));
            }
            self.fill()?;
        }
        let peer = self.peer;
        match self.reader.next_event() {
            Ok(Some(Event::Frame(h, p))) => {
                payload.clear();
                payload.extend_from_slice(p);
                Ok(Ok(h))
            }
            Ok(Some(Event::Switch(p))) => {
                self.placement = p;
                Ok(Err(Received::Switched(p)))
            }
            Ok(Some(Event::End { reason })) => Ok(Err(Received::End { reason })),
            Ok(Some(Event::Report(r))) => Ok(Err(Received::Report(r))),
            Ok(Some(Event::Handshake(_) | Event::Challenge(_)) | None) => {
                unreachable!("polled after the handshake")
            }
            Err(source) => Err(NetError::Wire { peer, source }),
        }
    }

    /// One read from the socket straight into the reader's buffer; returns the bytes read.
    fn fill(&mut self) -> Result<usize, NetError> {
        let n = self.read_some(ReadInto::Reader)?;
        self.reader.advance(n);
        Ok(n)
    }

    /// One read from the socket (at least one byte) into the reader's buffer or into the
    /// rest of a payload being read directly. End of stream and socket errors become
    /// errors that say where.
    fn read_some(&mut self, mut into: ReadInto<'_>) -> Result<usize, NetError> {
        loop {
            let buf = match &mut into {
                ReadInto::Reader => self.reader.space(),
                ReadInto::Payload(p, from) => &mut p[*from..],
            };
            match self.stream.read(buf) {
                Ok(0) => {
                    self.reader.finish().map_err(|e| self.wire_err(e))?;
                    return Err(NetError::Closed {
                        peer: self.peer,
                        offset: self.reader.offset(),
                        last_seq: self.reader.last_seq(),
                    });
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let what = if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) {
                        format!("no data for {:.1}s", self.config.read_timeout.as_secs_f64())
                    } else {
                        "read failed".to_string()
                    };
                    return Err(NetError::Io {
                        peer: self.peer,
                        what,
                        offset: self.reader.offset(),
                        last_seq: self.reader.last_seq(),
                        source: e,
                    });
                }
            }
        }
    }

    fn wire_err(&self, source: WireError) -> NetError {
        NetError::Wire {
            peer: self.peer,
            source,
        }
    }
}

/// Opens the connection to `addr`: TCP (no Nagle delay, `config`'s timeouts), then TLS when
/// `config` asks for it, its handshake within the connect timeout.
pub(crate) fn open(addr: SocketAddr, config: &ClientConfig) -> Result<Conn, NetError> {
    let connect_err = |source| NetError::Connect { addr, source };
    let tcp = TcpStream::connect_timeout(&addr, config.connect_timeout).map_err(connect_err)?;
    tcp.set_nodelay(true)
        .and_then(|()| tcp.set_write_timeout(Some(config.read_timeout)))
        .map_err(connect_err)?;
    let conn = match &config.tls {
        None => Conn::plain(tcp),
        Some(tls) => tls
            .connect(tcp, Instant::now() + config.connect_timeout)
            .map_err(|r| NetError::Tls {
                peer: addr,
                reason: r.reason,
                retry: r.retry,
            })?,
    };
    conn.set_read_timeout(Some(config.read_timeout))
        .map_err(connect_err)?;
    Ok(conn)
}

/// Whether `e`, before the first byte from the server, is the connection closed or reset.
fn closed_at_once(e: &NetError) -> bool {
    match e {
        NetError::Wire { source, .. } => {
            matches!(source.kind, WireErrorKind::Truncated { have: 0, .. })
        }
        NetError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}

/// Where [`Client::read_some`] reads to.
enum ReadInto<'a> {
    /// The reader's buffer.
    Reader,
    /// A payload handed out by [`FrameReader::take_payload`], from this offset.
    Payload(&'a mut Vec<u8>, usize),
}

impl NetError {
    /// Whether reconnecting may help: a lost connection (the server died, restarted or went
    /// silent, or cut a message short) may; a server that sends bad bytes is not retried.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            NetError::Connect { .. }
            | NetError::Closed { .. }
            | NetError::ClosedBeforeHandshake { .. }
            | NetError::Io { .. } => true,
            NetError::Refused { reason, .. } => reason.is_none(),
            NetError::CallRefused { .. }
            | NetError::TokenNeeded { .. }
            | NetError::ListenerUnproven { .. } => false,
            NetError::Tls { retry, .. } => *retry,
            NetError::Wire { source, .. } => {
                matches!(source.kind, WireErrorKind::Truncated { .. })
            }
        }
    }
}

impl From<NetError> for TransportError {
    fn from(e: NetError) -> TransportError {
        TransportError {
            retry: e.is_connection_lost(),
            source: Box::new(e),
        }
    }
}

impl Subscription for Client {
    fn stream(&self) -> StreamInfo {
        Client::stream(self)
    }

    fn placement(&self) -> Placement {
        self.placement
    }

    fn fps(&self) -> f64 {
        self.fps
    }

    fn peer(&self) -> String {
        format!("server {}", self.peer)
    }

    fn position(&self) -> String {
        format!("byte {}", self.offset())
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        Ok(Client::recv(self, packet)?)
    }

    fn closer(&self) -> Closer {
        let socket = self.stream.tcp().try_clone().ok();
        Arc::new(move || {
            if let Some(s) = &socket {
                let _ = s.shutdown(Shutdown::Both);
            }
        })
    }
}

/// Opens framewire connections over TCP to one address: the viewer's [`Connector`].
#[derive(Debug, Clone)]
pub struct TcpConnector {
    /// The server.
    pub addr: SocketAddr,
    /// What each connection asks for.
    pub request: Request,
    /// Limits of each connection.
    pub config: ClientConfig,
}

impl Connector for TcpConnector {
    fn describe(&self) -> String {
        self.addr.to_string()
    }

    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        Ok(Box::new(Client::connect(
            self.addr,
            self.request,
            self.config.clone(),
        )?))
    }
}
