//! `GET /ws`: the stream over a WebSocket (RFC 6455), for the page's WebCodecs decoder.
//!
//! The opening is HTTP's, read and admitted (token, cookie, `Host`) as every other route; a
//! WebSocket upgrade must also say `Sec-WebSocket-Version: 13` (else 426) and carry a key
//! (else 400), and a browser's `Origin` must be the server it asks (else 403: a page of another
//! site cannot watch through the visitor's cookie). The answer is `101 Switching Protocols`;
//! then the server sends only:
//!
//! - a text message at the start and before the first packet of another rendition, JSON:
//!   `{"rendition":"640x480 h264","codec":"h264","width":640,"height":480,"rung":0,"rungs":3}`
//!   (`rung` is `null` off the ladder);
//! - a binary message per access unit, a 20-byte header then the access unit (H.264 Annex B,
//!   parameter sets before each keyframe):
//!
//! ```text
//!  offset  size  field
//!  0       1     kind: 1, an access unit
//!  1       1     flags: bit 0, a keyframe
//!  2       1     rung (255: off the ladder)
//!  3       1     0
//!  4       8     frame number (little-endian)
//!  12      8     capture time, microseconds since the Unix epoch (little-endian)
//!  20      ...   the access unit
//! ```
//!
//! - a close frame at the end, with the reason: 1001 when the stream ends, 1013 when the
//!   server is full, 1003 when it has no H.264 to give (a build without it, a camera's JPEG
//!   passed through: the page then shows MJPEG), 1011 when it is cut off (stalled), and the
//!   codes below when the client broke the protocol.
//!
//! The client's frames are read by tungstenite on a thread of the subscriber's own
//! ([`WsReader`]): its close is echoed and its pings answered (the answers go out with the
//! next packet, in the one writer's order), and anything else ends it with a close code and
//! one log line: an unmasked or malformed frame 1002, a message or frame over
//! [`MAX_INBOUND_MESSAGE`] 1009, text that is not UTF-8 1007, a data message (the stream takes
//! none) 1003, and more than [`INBOUND_MAX`] bytes within [`INBOUND_WINDOW`] (a flood, pings
//! included) 1008.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use framewire_core::{Packet, Placement};
use framewire_wire::framer::Framer;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Message, handshake::derive_accept_key};

use super::{Head, Refusal, preview, refuse};
use crate::conn::{Conn, InboundBudget};
use crate::fanout::{PeerEnd, PeerReader};

/// The size of the header before each access unit.
pub const AU_HEADER: usize = 20;

/// The largest message or frame a client may send (the stream takes none; control frames are
/// at most 125 bytes).
pub const MAX_INBOUND_MESSAGE: usize = 4 * 1024;

/// The most bytes a client may send within [`INBOUND_WINDOW`]; more is a flood.
pub const INBOUND_MAX: usize = 64 * 1024;

/// The window [`INBOUND_MAX`] counts in.
pub const INBOUND_WINDOW: Duration = Duration::from_secs(10);

/// The most bytes of answers (pongs, the close's echo) waiting for the writer; tungstenite
/// keeps the newest pong while they wait.
const REPLIES_MAX: usize = 1024;

/// The longest close reason a close frame carries (125 bytes less the code).
const CLOSE_REASON_MAX: usize = 123;

/// A WebSocket opening's `Sec-WebSocket-Accept`, or why it is refused.
pub(super) fn accept_key(head: &Head) -> Result<String, Refusal> {
    if !head.upgrade_websocket {
        return Err(Refusal {
            extra: "Upgrade: websocket\r\n",
            ..refuse(
                "426 Upgrade Required",
                "/ws is a WebSocket: open it with a WebSocket client (the page at / does); \
                 /stream is the same picture as MJPEG",
            )
        });
    }
    if head.ws_version.as_deref() != Some("13") {
        return Err(Refusal {
            extra: "Sec-WebSocket-Version: 13\r\n",
            ..refuse(
                "426 Upgrade Required",
                format!(
                    "WebSocket version {}: this server speaks 13 (RFC 6455)",
                    head.ws_version.as_deref().map_or("none".into(), preview)
                ),
            )
        });
    }
    let key = head.ws_key.as_deref().unwrap_or_default();
    // The key is 16 random bytes in base64: 24 characters, the last two `==`.
    if key.len() != 24 || !key.ends_with("==") {
        return Err(refuse(
            "400 Bad Request",
            format!(
                "Sec-WebSocket-Key {:?} is not 16 bytes in base64",
                preview(key)
            ),
        ));
    }
    if let Some(origin) = &head.origin
        && !same_origin(origin, head.host.as_deref())
    {
        return Err(refuse(
            "403 Forbidden",
            format!(
                "a page from {:?} may not open this server's WebSocket (Host {:?})",
                preview(origin),
                preview(head.host.as_deref().unwrap_or_default())
            ),
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Whether a browser's `Origin` (`scheme://host[:port]`) names the server its `Host` does.
/// `null` (a file or sandboxed page) never does.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let with_port = |h: &str| {
        let h = h.to_ascii_lowercase();
        let has_port = match h.rfind(']') {
            Some(end) => h[end..].contains(':'),
            None => h.contains(':'),
        };
        if has_port { h } else { h + default }
    };
    host.is_some_and(|host| with_port(rest) == with_port(host))
}

/// What the reader hands the writer: answers to send, and the close code it chose.
#[derive(Debug, Default)]
struct Exchange {
    /// Frames tungstenite wrote (pongs, the close's echo), sent before the next packet.
    replies: Vec<u8>,
    /// The close code for the line the reader ended the subscriber with.
    close: Option<CloseCode>,
}

fn lock(m: &Mutex<Exchange>) -> MutexGuard<'_, Exchange> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A WebSocket subscriber's stream as bytes: the 101 answer, the text and binary messages of
/// the module doc, the close frame.
#[derive(Debug)]
pub(super) struct WsFramer {
    accept: String,
    exchange: Arc<Mutex<Exchange>>,
    started: bool,
    /// The rung the packets are on (255: off the ladder).
    rung: u8,
    text: Vec<u8>,
}

/// A new WebSocket subscriber's writer and reader: `accept` answers its key; `conn` is a clone
/// of its connection, `rest` what arrived after its request.
pub(super) fn subscriber(
    accept: String,
    conn: Conn,
    rest: Vec<u8>,
) -> (Box<WsFramer>, Box<WsReader>) {
    let exchange = Arc::new(Mutex::new(Exchange::default()));
    let framer = WsFramer {
        accept,
        exchange: Arc::clone(&exchange),
        started: false,
        rung: u8::MAX,
        text: Vec::new(),
    };
    let reader = WsReader {
        conn,
        rest,
        exchange,
    };
    (Box::new(framer), Box::new(reader))
}

impl WsFramer {
    fn upgrade(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\n\
                     Upgrade: websocket\r\n\
                     Connection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    self.accept
                )
                .as_bytes(),
            );
        }
    }

    /// The text message that names `at`.
    fn rendition(&mut self, at: &Placement, out: &mut Vec<u8>) {
        self.rung = at.rung.unwrap_or(u8::MAX);
        let r = &at.rendition;
        let json = serde_json::json!({
            "rendition": r.to_string(),
            "codec": r.stream.codec.to_string(),
            "width": r.stream.width,
            "height": r.stream.height,
            "rung": at.rung,
            "rungs": at.rungs,
        });
        self.text.clear();
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.text, &json);
        frame_header(OpCode::Data(Data::Text), self.text.len(), out);
        out.extend_from_slice(&self.text);
    }

    /// The answers the reader left, before anything else goes out.
    fn replies(&mut self, out: &mut Vec<u8>) {
        out.append(&mut lock(&self.exchange).replies);
    }
}

/// A frame's header (server to client: final, unmasked) for a payload of `len` bytes.
fn frame_header(opcode: OpCode, len: usize, out: &mut Vec<u8>) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(len as u64, out);
}

/// A close frame with `code` and as much of `reason` as fits, cut at a character.
fn close_frame(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
    let mut cut = reason.len().min(CLOSE_REASON_MAX);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    frame_header(
        OpCode::Control(tungstenite::protocol::frame::coding::Control::Close),
        2 + cut,
        out,
    );
    out.extend_from_slice(&u16::from(code).to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..cut]);
}

impl Framer for WsFramer {
    fn start(&mut self, at: &Placement, out: &mut Vec<u8>) {
        self.upgrade(out);
        self.rendition(at, out);
    }

    fn switch(&mut self, to: &Placement, out: &mut Vec<u8>) {
        self.rendition(to, out);
    }

    fn packet(&mut self, packet: &Packet, head: &mut Vec<u8>, _: &mut Vec<u8>) {
        self.replies(head);
        frame_header(
            OpCode::Data(Data::Binary),
            AU_HEADER + packet.payload.len(),
            head,
        );
        head.extend_from_slice(&au_header(packet, self.rung));
    }

    fn end(&mut self, error: Option<&str>, out: &mut Vec<u8>) {
        // Refused before its start, it still hears why: a browser sees no HTTP error's words.
        let refused = !self.started;
        self.upgrade(out);
        self.replies(out);
        let chosen = lock(&self.exchange).close;
        let code = match (error, chosen) {
            (None, _) => CloseCode::Away,
            (Some(_), Some(code)) => code,
            (Some(why), None) if why.starts_with(crate::roster::FULL) => CloseCode::Again,
            // No H.264 to be had (this build, a camera's JPEG passed through).
            (Some(_), None) if refused => CloseCode::Unsupported,
            (Some(_), None) => CloseCode::Error,
        };
        close_frame(code, error.unwrap_or("the stream ended"), out);
    }

    /// The echo of its close, which tungstenite left with the answers.
    fn left(&mut self, out: &mut Vec<u8>) {
        self.replies(out);
    }
}

/// The header before an access unit (drawn in the module doc).
pub fn au_header(packet: &Packet, rung: u8) -> [u8; AU_HEADER] {
    let mut h = [0u8; AU_HEADER];
    h[0] = 1;
    h[1] = u8::from(packet.keyframe);
    h[2] = rung;
    h[4..12].copy_from_slice(&packet.seq.to_le_bytes());
    h[12..20].copy_from_slice(&packet.capture_us.to_le_bytes());
    h
}

/// Reads a WebSocket subscriber's frames (see the module doc).
pub(super) struct WsReader {
    conn: Conn,
    rest: Vec<u8>,
    exchange: Arc<Mutex<Exchange>>,
}

/// The subscriber's side of its connection as tungstenite sees it: reads count against the
/// flood budget; writes (pongs, the close's echo) go to the writer through the exchange.
struct Half {
    conn: Conn,
    exchange: Arc<Mutex<Exchange>>,
    budget: InboundBudget,
    flooded: bool,
}

impl Read for Half {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.conn.read(buf)?;
        if !self.budget.take(n, Instant::now()) {
            self.flooded = true;
            return Err(io::Error::other("flood"));
        }
        Ok(n)
    }
}

impl Write for Half {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut exchange = lock(&self.exchange);
        if exchange.replies.len() + buf.len() > REPLIES_MAX {
            // tungstenite keeps the frame and tries again later.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        exchange.replies.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PeerReader for WsReader {
    fn read(self: Box<Self>) -> PeerEnd {
        let WsReader {
            conn,
            rest,
            exchange,
        } = *self;
        if let Err(e) = conn.set_read_timeout(None) {
            return PeerEnd::Broke(format!("socket setup failed: {e}"));
        }
        let mut budget = InboundBudget::new(INBOUND_MAX, INBOUND_WINDOW);
        budget.take(rest.len(), Instant::now());
        let half = Half {
            conn,
            exchange: Arc::clone(&exchange),
            budget,
            flooded: false,
        };
        // Small buffers: a client sends a few control frames at most (tungstenite reads 128 KiB
        // at a time by default, per connection).
        let config = WebSocketConfig::default()
            .read_buffer_size(MAX_INBOUND_MESSAGE)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_INBOUND_MESSAGE))
            .max_frame_size(Some(MAX_INBOUND_MESSAGE));
        let mut ws = WebSocket::from_partially_read(half, rest, Role::Server, Some(config));
        let (code, why) = loop {
            match ws.read() {
                Ok(Message::Close(_)) => {
                    // The echo goes to the exchange, for the writer's goodbye.
                    let _ = ws.flush();
                    return PeerEnd::Left;
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Text(_) | Message::Binary(_)) => {
                    break (
                        CloseCode::Unsupported,
                        "sent a data message: this WebSocket only sends".to_string(),
                    );
                }
                Err(_) if ws.get_ref().flooded => {
                    break (CloseCode::Policy, ws.get_ref().budget.overspent());
                }
                Err(e) => match judged(&e) {
                    Some(broke) => break broke,
                    None => return PeerEnd::Left,
                },
            }
        };
        lock(&exchange).close = Some(code);
        PeerEnd::Broke(format!("websocket: {why} (closed {})", u16::from(code)))
    }
}

/// The close code and line for a client's error; `None` when it just went (closed its
/// connection, or the stream's end shut it).
fn judged(e: &WsError) -> Option<(CloseCode, String)> {
    match e {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_)
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => Some((
            CloseCode::Size,
            format!("sent a message or frame of {size} bytes; at most {MAX_INBOUND_MESSAGE}"),
        )),
        WsError::Capacity(e) => Some((CloseCode::Size, e.to_string())),
        WsError::Utf8(e) => Some((
            CloseCode::Invalid,
            format!("sent text that is not UTF-8: {e}"),
        )),
        WsError::Protocol(e) => Some((CloseCode::Protocol, e.to_string())),
        e => Some((CloseCode::Error, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_must_be_the_server_the_host_names() {
        let same = |o: &str, h: &str| same_origin(o, Some(h));
        assert!(same("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same("http://LOCALHOST:8080", "localhost:8080"));
        assert!(same("https://cam.local", "cam.local:443"));
        assert!(same("http://[::1]:80", "[::1]"));
        assert!(!same("http://evil.example:8080", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same("https://127.0.0.1:8080", "127.0.0.1"));
        assert!(!same("null", "127.0.0.1:8080"));
        assert!(!same_origin("http://127.0.0.1", None));
    }

    #[test]
    fn an_access_unit_is_its_header_then_its_bytes_in_one_binary_frame() {
        let (mut framer, _) = subscriber("k".into(), dummy_conn(), Vec::new());
        let packet = Packet {
            seq: 0x0102,
            capture_us: 1_764_770_000_000_042,
            keyframe: true,
            payload: vec![0, 0, 0, 1, 0x65],
            ..Packet::default()
        };
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        framer.packet(&packet, &mut head, &mut tail);
        // FIN + binary, 25 bytes unmasked; kind 1, keyframe, off the ladder.
        assert_eq!(&head[..6], &[0x82, 25, 1, 1, 255, 0]);
        assert_eq!(&head[6..14], &0x0102u64.to_le_bytes());
        assert_eq!(&head[14..22], &1_764_770_000_000_042u64.to_le_bytes());
        assert_eq!(head.len(), 2 + AU_HEADER);
        assert!(tail.is_empty());
    }

    #[test]
    fn a_close_reason_is_cut_to_what_a_close_frame_carries_at_a_character() {
        let mut out = Vec::new();
        close_frame(CloseCode::Again, &"é".repeat(100), &mut out);
        assert_eq!(out[0], 0x88);
        let len = usize::from(out[1]);
        assert!(len <= 125, "{len}");
        assert_eq!(&out[2..4], &1013u16.to_be_bytes());
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    fn dummy_conn() -> Conn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        Conn::plain(tcp)
    }
}
