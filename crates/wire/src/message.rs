//! The fixed-size messages of wire format version 2, hand-written: viewer hello, stream
//! handshake, frame header and switch. Layouts are drawn in the crate doc; this file is the one
//! place that turns them into bytes and back.

use std::fmt;

use std::time::Duration;

use framewire_core::{
    CodecKind, PeerReport, PixelFormat, Placement, Rendition, Request, StreamInfo,
};

/// The wire format version this crate speaks.
pub const VERSION: u16 = 2;
/// Magic that opens a viewer's hello.
pub const HELLO_MAGIC: [u8; 4] = *b"FWVH";
/// Magic that opens the server's stream handshake.
pub const HANDSHAKE_MAGIC: [u8; 4] = *b"FWST";
/// Magic that opens every frame header.
pub const FRAME_MAGIC: [u8; 4] = *b"FWFR";
/// Bytes of a viewer hello that every wire version shares: magic, version, reserved. The
/// server reads these first, and the rest only once it knows the version.
pub const HELLO_HEAD_LEN: usize = 8;
/// Bytes in a viewer hello.
pub const HELLO_LEN: usize = 16;
/// Bytes in a stream handshake.
pub const HANDSHAKE_LEN: usize = 24;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 32;
/// Bytes in a switch message's payload.
pub const SWITCH_LEN: usize = 16;
/// Bytes in a report message's payload.
pub const REPORT_LEN: usize = 16;
pub use crate::token::PROOF_LEN;
/// The rung byte for "no rung": in a hello, follow the link; in a handshake or switch, a
/// rendition off the ladder.
pub const NO_RUNG: u8 = 0xFF;
/// Largest width or height a handshake may announce.
pub const MAX_DIMENSION: u32 = 16_384;
/// Default largest payload a reader accepts: 64 MiB, enough for raw 4K RGBA.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 << 20;
/// Largest name a sender pushing to a hub may go by, in bytes.
pub const MAX_NAME: usize = 64;
/// Largest payload of an [`MessageKind::Error`] message (a reason text).
pub const MAX_ERROR_TEXT: u32 = 1024;

/// The first message on a connection, sent by the viewer: it says "I am a framewire viewer"
/// and what it asks for. The default asks for nothing: the server chooses, following the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hello {
    /// What the viewer asks for. A rung of [`NO_RUNG`] or a width of 0 is sent as "none".
    pub request: Request,
    /// `None` for a one-way viewer; for a side of a two-way call (`framewire chat`), the
    /// call's number, never 0: the caller picks it, the listener's hello answers with it, and
    /// a redial after a lost connection carries it again.
    pub call: Option<u16>,
    /// A call that sends one way only, to a hub (`serve --push`): its name follows the hello
    /// in a [`MessageKind::Name`] message, and the hub sends no stream back.
    pub push: bool,
}

impl Hello {
    /// The 16 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&HELLO_MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&self.call.unwrap_or(0).to_le_bytes());
        b[8] = self.request.codec.map_or(0, CodecKind::wire_id);
        b[9] = self.request.rung.unwrap_or(NO_RUNG);
        b[10] = u8::from(self.push);
        b[12..16].copy_from_slice(&self.request.width.unwrap_or(0).to_le_bytes());
        b
    }

    /// Checks the first [`HELLO_HEAD_LEN`] bytes: the magic and the version. A viewer of
    /// another version fails with [`WireErrorKind::UnsupportedVersion`], which names both.
    pub fn parse_head(b: &[u8; HELLO_HEAD_LEN]) -> Result<(), WireErrorKind> {
        check_magic("viewer hello", HELLO_MAGIC, b)?;
        check_version(Side::Viewer, [b[4], b[5]])
    }

    /// Parses and checks a whole hello: magic, version, a known codec, a width in range.
    /// Reserved bytes are ignored; the rung is checked against the ladder by the server.
    pub fn parse(b: &[u8; HELLO_LEN]) -> Result<Hello, WireErrorKind> {
        Hello::parse_head(b[..HELLO_HEAD_LEN].try_into().expect("8 bytes"))?;
        let codec = match b[8] {
            0 => None,
            id => Some(codec(id, "viewer hello")?),
        };
        let rung = (b[9] != NO_RUNG).then_some(b[9]);
        let width = match u32_at(b, 12) {
            0 => None,
            w if w <= MAX_DIMENSION => Some(w),
            w => return Err(WireErrorKind::BadWidth(w)),
        };
        let call = match u16::from_le_bytes([b[6], b[7]]) {
            0 => None,
            n => Some(n),
        };
        Ok(Hello {
            request: Request { rung, codec, width },
            call,
            push: b[10] & 1 != 0,
        })
    }
}

/// The server's answer to a hello: the rendition the stream starts in and its place on the
/// ladder.
///
/// The rendition's number ([`Placement::id`]) is not on the wire: [`Handshake::parse`] (and
/// [`Switch::parse`]) give the rung, or the ladder's rung count for a rendition off the ladder,
/// so that, as on the server, a number below [`Placement::rungs`] is a rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Handshake {
    /// The rendition and its rung.
    pub placement: Placement,
    /// Frames per second the source is paced to, 0 when unpaced. Informational.
    pub fps: f64,
}

impl Handshake {
    /// The 24 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut b = Handshake::version_answer();
        let p = &self.placement;
        b[6] = p.rendition.stream.codec.wire_id();
        b[7] = p.rendition.stream.format.wire_id();
        b[8..12].copy_from_slice(&p.rendition.stream.width.to_le_bytes());
        b[12..16].copy_from_slice(&p.rendition.stream.height.to_le_bytes());
        let milli = (self.fps * 1000.0).round().clamp(0.0, u32::MAX as f64) as u32;
        b[16..20].copy_from_slice(&milli.to_le_bytes());
        b[20] = p.rung.unwrap_or(NO_RUNG);
        b[21] = p.rungs;
        b[22] = p.rendition.quality;
        b
    }

    /// What a server answers a viewer of another wire version: the handshake's magic and this
    /// version, the rest zero. The viewer stops at the version and names both.
    pub fn version_answer() -> [u8; HANDSHAKE_LEN] {
        let mut b = [0u8; HANDSHAKE_LEN];
        b[0..4].copy_from_slice(&HANDSHAKE_MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b
    }

    /// Parses and checks a handshake: magic, version, known codec and format, size in range,
    /// a rung on the ladder.
    pub fn parse(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireErrorKind> {
        const WHAT: &str = "stream handshake";
        check_magic(WHAT, HANDSHAKE_MAGIC, b)?;
        check_version(Side::Server, [b[4], b[5]])?;
        let stream = stream_info(WHAT, b[6], b[7], u32_at(b, 8), u32_at(b, 12))?;
        let milli = u32_at(b, 16);
        Ok(Handshake {
            placement: placement(WHAT, stream, b[22], b[20], b[21])?,
            fps: f64::from(milli) / 1000.0,
        })
    }
}

/// The payload of a [`MessageKind::Switch`] message: the rendition the frames that follow are
/// in. Its [`Placement::id`] reads as in a [`Handshake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The new rendition and its rung.
    pub placement: Placement,
}

impl Switch {
    /// The header in front of the payload (sequence number and capture time zero).
    pub fn header() -> FrameHeader {
        FrameHeader {
            kind: MessageKind::Switch,
            seq: 0,
            capture_us: 0,
            payload_len: SWITCH_LEN as u32,
            delta: false,
        }
    }

    /// The 16 bytes of the payload.
    pub fn to_bytes(&self) -> [u8; SWITCH_LEN] {
        let p = &self.placement;
        let mut b = [0u8; SWITCH_LEN];
        b[0] = p.rendition.stream.codec.wire_id();
        b[1] = p.rendition.stream.format.wire_id();
        b[2] = p.rung.unwrap_or(NO_RUNG);
        b[3] = p.rendition.quality;
        b[4..8].copy_from_slice(&p.rendition.stream.width.to_le_bytes());
        b[8..12].copy_from_slice(&p.rendition.stream.height.to_le_bytes());
        b[12] = p.rungs;
        b
    }

    /// Parses and checks a switch payload as [`Handshake::parse`] checks a handshake.
    pub fn parse(b: &[u8; SWITCH_LEN]) -> Result<Switch, WireErrorKind> {
        const WHAT: &str = "switch message";
        let stream = stream_info(WHAT, b[0], b[1], u32_at(b, 4), u32_at(b, 8))?;
        Ok(Switch {
            placement: placement(WHAT, stream, b[3], b[2], b[12])?,
        })
    }
}

/// Which end sent a version: the peer of the one reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The server sent it (a viewer is reading).
    Server,
    /// The viewer sent it (a server is reading).
    Viewer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Viewer => "viewer",
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Server => Side::Viewer,
            Side::Viewer => Side::Server,
        }
    }
}

fn check_version(peer: Side, bytes: [u8; 2]) -> Result<(), WireErrorKind> {
    let got = u16::from_le_bytes(bytes);
    if got == VERSION {
        Ok(())
    } else {
        Err(WireErrorKind::UnsupportedVersion {
            peer,
            got,
            supported: VERSION,
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn codec(id: u8, what: &'static str) -> Result<CodecKind, WireErrorKind> {
    CodecKind::from_wire_id(id).ok_or(WireErrorKind::UnknownCodec { id, what })
}

fn stream_info(
    what: &'static str,
    codec_id: u8,
    format_id: u8,
    width: u32,
    height: u32,
) -> Result<StreamInfo, WireErrorKind> {
    let codec = codec(codec_id, what)?;
    let format = PixelFormat::from_wire_id(format_id).ok_or(WireErrorKind::UnknownPixelFormat {
        id: format_id,
        what,
    })?;
    if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
        return Err(WireErrorKind::BadSize { width, height });
    }
    Ok(StreamInfo {
        codec,
        width,
        height,
        format,
    })
}

/// The placement a handshake or switch announces, numbered as [`Handshake`] says.
fn placement(
    what: &'static str,
    stream: StreamInfo,
    quality: u8,
    rung: u8,
    rungs: u8,
) -> Result<Placement, WireErrorKind> {
    if rungs == 0 || (rung != NO_RUNG && rung >= rungs) {
        return Err(WireErrorKind::BadRung { what, rung, rungs });
    }
    let rung = (rung != NO_RUNG).then_some(rung);
    Ok(Placement {
        id: rung.map_or(usize::from(rungs), usize::from),
        // A rung's bitrate stays with the sender: the viewer measures what arrives.
        rendition: Rendition {
            stream,
            quality,
            bitrate_kbit: 0,
        },
        rung,
        rungs,
    })
}

/// The payload of a [`MessageKind::Report`] message: how the sender of the report shows the
/// stream it receives, over about the last second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report(pub PeerReport);

impl Report {
    /// The header in front of the payload (sequence number and capture time zero).
    pub fn header() -> FrameHeader {
        FrameHeader {
            kind: MessageKind::Report,
            seq: 0,
            capture_us: 0,
            payload_len: REPORT_LEN as u32,
            delta: false,
        }
    }

    /// The 16 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        let milli = (self.0.fps * 1000.0).round().clamp(0.0, u32::MAX as f64) as u32;
        b[0..4].copy_from_slice(&milli.to_le_bytes());
        let latency = self
            .0
            .latency
            .map_or(0, |l| l.as_micros().clamp(1, u32::MAX as u128) as u32);
        b[4..8].copy_from_slice(&latency.to_le_bytes());
        b
    }

    /// Reads a report; every value is valid (reserved bytes are ignored).
    pub fn parse(b: &[u8; REPORT_LEN]) -> Report {
        let latency = match u32_at(b, 4) {
            0 => None,
            us => Some(Duration::from_micros(u64::from(us))),
        };
        Report(PeerReport {
            fps: f64::from(u32_at(b, 0)) / 1000.0,
            latency,
        })
    }
}

/// A challenge or proof message whole: its header and its [`PROOF_LEN`] bytes.
pub fn token_message(kind: MessageKind, bytes: &[u8; PROOF_LEN]) -> [u8; HEADER_LEN + PROOF_LEN] {
    let header = FrameHeader {
        kind,
        seq: 0,
        capture_us: 0,
        payload_len: PROOF_LEN as u32,
        delta: false,
    };
    let mut message = [0u8; HEADER_LEN + PROOF_LEN];
    message[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    message[HEADER_LEN..].copy_from_slice(bytes);
    message
}

/// The [`MessageKind::Name`] message a pushing sender goes by.
pub fn name_message(name: &str) -> Vec<u8> {
    let header = FrameHeader {
        kind: MessageKind::Name,
        seq: 0,
        capture_us: 0,
        payload_len: name.len() as u32,
        delta: false,
    };
    let mut message = header.to_bytes().to_vec();
    message.extend_from_slice(name.as_bytes());
    message
}

/// Checks a pushing sender's name: 1 to [`MAX_NAME`] bytes of UTF-8, letters, digits and
/// `-_.:@` only, so that it is safe in a log line, a file name and a label. The error says
/// what is wrong, for the sender and the hub.
pub fn check_name(bytes: &[u8]) -> Result<&str, String> {
    let name = std::str::from_utf8(bytes).map_err(|_| "the name is not UTF-8".to_string())?;
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "the name {name:?} has {} bytes; a name has 1 to {MAX_NAME}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_.:@".contains(*c)))
    {
        Some(c) => Err(format!(
            "the name {name:?} holds {c:?}; a name has letters, digits and -_.:@ only"
        )),
        None => Ok(name),
    }
}

/// What follows a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// An encoded frame.
    Frame,
    /// The server is closing the stream on purpose (it is shutting down); no payload.
    End,
    /// The server refuses or ends the stream; the payload is a UTF-8 reason.
    Error,
    /// The frames that follow are another rendition; the payload is a [`Switch`].
    Switch,
    /// How the sender shows the stream it receives (a side of a two-way call); the payload
    /// is a [`Report`].
    Report,
    /// A server with a token asks the viewer to prove it knows it; the payload is 32 random
    /// bytes. Comes after the hello, before the handshake.
    Challenge,
    /// The answer to a challenge: 32 bytes of HMAC (see `token.rs`). A viewer or caller
    /// answers the server's or listener's; a listener answers its caller's.
    Proof,
    /// The name a sender pushing to a hub goes by; the payload is UTF-8, 1 to [`MAX_NAME`]
    /// bytes. Follows a push's hello, once.
    Name,
}

impl MessageKind {
    fn id(self) -> u8 {
        match self {
            MessageKind::Frame => 0,
            MessageKind::End => 1,
            MessageKind::Error => 2,
            MessageKind::Switch => 3,
            MessageKind::Report => 4,
            MessageKind::Challenge => 5,
            MessageKind::Proof => 6,
            MessageKind::Name => 7,
        }
    }

    /// The kind with this id on the wire, if there is one.
    pub fn from_id(id: u8) -> Option<MessageKind> {
        match id {
            0 => Some(MessageKind::Frame),
            1 => Some(MessageKind::End),
            2 => Some(MessageKind::Error),
            3 => Some(MessageKind::Switch),
            4 => Some(MessageKind::Report),
            5 => Some(MessageKind::Challenge),
            6 => Some(MessageKind::Proof),
            7 => Some(MessageKind::Name),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Frame => "frame",
            MessageKind::End => "end",
            MessageKind::Error => "error",
            MessageKind::Switch => "switch",
            MessageKind::Report => "report",
            MessageKind::Challenge => "challenge",
            MessageKind::Proof => "proof",
            MessageKind::Name => "name",
        })
    }
}

/// The fixed header in front of every message after the handshake (and of a refusal, which
/// comes instead of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload is.
    pub kind: MessageKind,
    /// Sequence number of the frame in the stream; gaps are frames this viewer did not get.
    pub seq: u64,
    /// Capture time in microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Bytes of payload that follow.
    pub payload_len: u32,
    /// A frame of an inter-frame codec that needs the ones before it back to a keyframe (byte
    /// 5, bit 0); false for a keyframe and for every frame of an intra-only codec.
    pub delta: bool,
}

impl FrameHeader {
    /// The header of a frame.
    pub fn frame(seq: u64, capture_us: u64, payload_len: u32) -> FrameHeader {
        FrameHeader {
            kind: MessageKind::Frame,
            seq,
            capture_us,
            payload_len,
            delta: false,
        }
    }

    /// The 32 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4] = self.kind.id();
        b[5] = u8::from(self.delta);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.capture_us.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_len.to_le_bytes());
        b
    }

    /// Parses a header and checks its payload length: a frame's against `max_payload`, an
    /// error's against [`MAX_ERROR_TEXT`], an end's is 0 and a switch's [`SWITCH_LEN`]
    /// (nothing is allocated for a payload before this check passes).
    #[inline]
    pub fn parse(b: &[u8; HEADER_LEN], max_payload: u32) -> Result<FrameHeader, WireErrorKind> {
        check_magic("frame header", FRAME_MAGIC, b)?;
        let kind = MessageKind::from_id(b[4]).ok_or(WireErrorKind::UnknownMessageKind(b[4]))?;
        let seq = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        let capture_us = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        let payload_len = u32_at(b, 24);
        let max = match kind {
            MessageKind::Frame => max_payload,
            MessageKind::End => 0,
            MessageKind::Error => MAX_ERROR_TEXT,
            MessageKind::Switch if payload_len == SWITCH_LEN as u32 => SWITCH_LEN as u32,
            MessageKind::Switch => {
                return Err(WireErrorKind::BadSwitchLength(payload_len));
            }
            MessageKind::Report if payload_len == REPORT_LEN as u32 => REPORT_LEN as u32,
            MessageKind::Report => {
                return Err(WireErrorKind::BadReportLength(payload_len));
            }
            MessageKind::Challenge | MessageKind::Proof if payload_len == PROOF_LEN as u32 => {
                PROOF_LEN as u32
            }
            MessageKind::Challenge | MessageKind::Proof => {
                return Err(WireErrorKind::BadProofLength {
                    kind,
                    len: payload_len,
                });
            }
            MessageKind::Name => MAX_NAME as u32,
        };
        if payload_len > max {
            return Err(WireErrorKind::PayloadTooLarge {
                kind,
                len: payload_len,
                max,
            });
        }
        Ok(FrameHeader {
            kind,
            seq,
            capture_us,
            payload_len,
            delta: kind == MessageKind::Frame && b[5] & 1 != 0,
        })
    }
}

#[inline]
fn check_magic(what: &'static str, expected: [u8; 4], b: &[u8]) -> Result<(), WireErrorKind> {
    if b[..4] == expected {
        Ok(())
    } else {
        Err(WireErrorKind::BadMagic {
            what,
            expected,
            got: Preview::of(b),
        })
    }
}

/// Up to 16 bytes of what was found, shown as hex and as text, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview(Vec<u8>);

impl Preview {
    /// The first bytes of `b`, capped at 16.
    pub fn of(b: &[u8]) -> Preview {
        Preview(b[..b.len().min(16)].to_vec())
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02x}")?;
        }
        let text: String = self
            .0
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() || c == b' ' {
                    c as char
                } else {
                    '.'
                }
            })
            .collect();
        write!(f, " ({text:?})")
    }
}

/// What was wrong with bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The bytes do not start with the expected magic: the peer is not speaking framewire.
    #[error(
        "expected {what} magic {:?}, got {got}",
        String::from_utf8_lossy(expected)
    )]
    BadMagic {
        /// Which message was expected.
        what: &'static str,
        /// Its magic.
        expected: [u8; 4],
        /// What was there instead.
        got: Preview,
    },
    /// The peer speaks another version of the wire format: `viewer speaks wire version 1,
    /// this server speaks version 2: the viewer needs a newer framewire`.
    #[error(
        "{} speaks wire version {got}, this {} speaks version {supported}: {} needs a newer \
         framewire",
        peer.name(),
        peer.other().name(),
        if got < supported { format!("the {}", peer.name()) } else { format!("this {}", peer.other().name()) }
    )]
    UnsupportedVersion {
        /// Which end sent the version.
        peer: Side,
        /// The version the peer sent.
        got: u16,
        /// The version this build speaks.
        supported: u16,
    },
    /// A message names a codec this build does not know.
    #[error("unknown codec id {id} in {what}")]
    UnknownCodec {
        /// The codec's id.
        id: u8,
        /// Which message.
        what: &'static str,
    },
    /// A message names a pixel format this build does not know.
    #[error("unknown pixel format id {id} in {what}")]
    UnknownPixelFormat {
        /// The format's id.
        id: u8,
        /// Which message.
        what: &'static str,
    },
    /// A handshake or switch announces a size outside 1..=16384.
    #[error("stream size {width}x{height} is outside 1x1..={MAX_DIMENSION}x{MAX_DIMENSION}")]
    BadSize {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
    },
    /// A hello asks for a width above 16384.
    #[error("viewer hello asks for width {0}, outside 1..={MAX_DIMENSION}")]
    BadWidth(u32),
    /// A handshake or switch names a rung the ladder it announces does not have.
    #[error(
        "{what} names {} of a ladder of {rungs} rungs",
        if *rung == NO_RUNG { "no rung".to_string() } else { format!("rung {rung}") }
    )]
    BadRung {
        /// Which message.
        what: &'static str,
        /// The rung ([`NO_RUNG`]: off the ladder).
        rung: u8,
        /// The rungs on the ladder.
        rungs: u8,
    },
    /// A header names a message kind this build does not know.
    #[error("unknown message kind {0} in frame header")]
    UnknownMessageKind(u8),
    /// A header announces a payload above the configured maximum.
    #[error("{kind} payload length {len} exceeds max {max}")]
    PayloadTooLarge {
        /// The kind of message.
        kind: MessageKind,
        /// The announced length.
        len: u32,
        /// The maximum.
        max: u32,
    },
    /// A switch header announces a payload of another length than [`SWITCH_LEN`].
    #[error("switch payload length {0}, it must be {SWITCH_LEN}")]
    BadSwitchLength(u32),
    /// A message other than an end or an error came where the stream handshake belongs.
    #[error(
        "a {0} message before the stream handshake (only an end or an error may come instead of it)"
    )]
    BeforeHandshake(MessageKind),
    /// A challenge or proof header announces a payload of another length than [`PROOF_LEN`].
    #[error("{kind} payload length {len}, it must be {PROOF_LEN}")]
    BadProofLength {
        /// Challenge or proof.
        kind: MessageKind,
        /// The length announced.
        len: u32,
    },
    /// A message that has its place before the handshake came after it.
    #[error("{0} message after the stream handshake")]
    AfterHandshake(MessageKind),
    /// A report header announces a payload of another length than [`REPORT_LEN`].
    #[error("report payload length {0}, it must be {REPORT_LEN}")]
    BadReportLength(u32),
    /// The stream ended in the middle of a message.
    #[error("stream ended inside {inside}: got {have} of {need} bytes")]
    Truncated {
        /// Which part was cut.
        inside: &'static str,
        /// Bytes of it received.
        have: usize,
        /// Bytes it should have had.
        need: usize,
    },
}

/// A [`WireErrorKind`] with where it happened in the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}{}: {kind}", after_frame(*last_good_seq))]
pub struct WireError {
    /// Offset of the offending message from the start of the stream.
    pub offset: u64,
    /// Sequence number of the last frame read whole, if any.
    pub last_good_seq: Option<u64>,
    /// What was wrong.
    pub kind: WireErrorKind,
}

fn after_frame(seq: Option<u64>) -> String {
    match seq {
        Some(s) => format!(" (after frame {s})"),
        None => " (before any frame)".to_string(),
    }
}

/// The most characters of a peer's text (a refusal's or goodbye's reason) kept for printing.
pub const MAX_PEER_TEXT: usize = 200;

/// A peer's text as it may be printed: invalid UTF-8 replaced, control characters (a terminal's
/// escape sequences, line breaks) and bidirectional overrides shown as `\u{..}` escapes, and at
/// most [`MAX_PEER_TEXT`] characters (then `...`). A hostile server cannot redraw the viewer's
/// terminal or forge a log line this way.
pub fn peer_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(4 * MAX_PEER_TEXT));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_PEER_TEXT {
            out.push_str("...");
            break;
        }
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_peers_text_prints_without_escapes_breaks_or_overrides_and_is_bounded() {
        assert_eq!(peer_text(b"wrong token"), "wrong token");
        assert_eq!(
            peer_text(b"\x1b[2Jgone\nframewire: error: fake"),
            "\\u{1b}[2Jgone\\u{a}framewire: error: fake"
        );
        assert_eq!(peer_text("a\u{202E}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(peer_text(&[0xff, b'x']), "\u{fffd}x");
        let long = peer_text(&[b'a'; 1000]);
        assert_eq!(long.len(), MAX_PEER_TEXT + 3);
    }

    use super::*;

    fn placement(rung: Option<u8>, rungs: u8) -> Placement {
        Placement {
            id: rung.map_or(usize::from(rungs), usize::from),
            rendition: Rendition::new(CodecKind::Jpeg, 320, 240, PixelFormat::Rgb8, 50),
            rung,
            rungs,
        }
    }

    #[test]
    fn hellos_round_trip_and_the_head_checks_the_version() {
        let asks = [
            Request::default(),
            Request {
                rung: Some(2),
                ..Request::default()
            },
            Request {
                rung: None,
                codec: Some(CodecKind::Raw),
                width: Some(MAX_DIMENSION),
            },
            Request {
                rung: Some(0),
                codec: Some(CodecKind::Jpeg),
                width: Some(1),
            },
        ];
        for request in asks {
            for (call, push) in [(None, false), (Some(1), false), (Some(u16::MAX), true)] {
                let hello = Hello {
                    request,
                    call,
                    push,
                };
                assert_eq!(Hello::parse(&hello.to_bytes()), Ok(hello));
            }
        }
        let old = *b"FWVH\x01\x00\x00\x00";
        let named = name_message("cam-1");
        let header = FrameHeader::parse(named[..HEADER_LEN].try_into().unwrap(), 0).unwrap();
        assert_eq!((header.kind, header.payload_len), (MessageKind::Name, 5));
        assert_eq!(check_name(&named[HEADER_LEN..]), Ok("cam-1"));
        assert!(check_name(b"").is_err());
        assert!(check_name(&[b'a'; MAX_NAME + 1]).is_err());
        assert!(
            check_name(b"a\x1b[2J")
                .unwrap_err()
                .contains("letters, digits")
        );
        assert!(check_name(&[0xFF]).unwrap_err().contains("UTF-8"));
        assert_eq!(
            Hello::parse_head(&old).unwrap_err().to_string(),
            "viewer speaks wire version 1, this server speaks version 2: the viewer needs a \
             newer framewire"
        );
        let mut b = Hello::default().to_bytes();
        b[12..16].copy_from_slice(&(MAX_DIMENSION + 1).to_le_bytes());
        assert_eq!(Hello::parse(&b), Err(WireErrorKind::BadWidth(16_385)));
        b = Hello::default().to_bytes();
        b[8] = 77;
        assert_eq!(
            Hello::parse(&b).unwrap_err().to_string(),
            "unknown codec id 77 in viewer hello"
        );
    }

    #[test]
    fn handshakes_and_switches_round_trip_on_and_off_the_ladder() {
        for (rung, rungs) in [(Some(0), 1), (Some(2), 3), (None, 3), (Some(254), 255)] {
            let hs = Handshake {
                placement: placement(rung, rungs),
                fps: 29.97,
            };
            assert_eq!(Handshake::parse(&hs.to_bytes()), Ok(hs));
            let switch = Switch {
                placement: placement(rung, rungs),
            };
            assert_eq!(Switch::parse(&switch.to_bytes()), Ok(switch));
        }
        let header = Switch::header();
        assert_eq!(FrameHeader::parse(&header.to_bytes(), 0), Ok(header));
    }

    #[test]
    fn bad_placements_and_switch_lengths_are_named() {
        let mut b = Switch {
            placement: placement(Some(1), 2),
        }
        .to_bytes();
        b[2] = 2;
        assert_eq!(
            Switch::parse(&b).unwrap_err().to_string(),
            "switch message names rung 2 of a ladder of 2 rungs"
        );
        b[2] = NO_RUNG;
        b[12] = 0;
        assert_eq!(
            Switch::parse(&b).unwrap_err().to_string(),
            "switch message names no rung of a ladder of 0 rungs"
        );
        let mut header = Switch::header();
        header.payload_len = 17;
        assert_eq!(
            FrameHeader::parse(&header.to_bytes(), u32::MAX)
                .unwrap_err()
                .to_string(),
            "switch payload length 17, it must be 16"
        );
    }

    #[test]
    fn version_errors_name_both_versions_and_who_needs_a_newer_build() {
        let mut answer = Handshake::version_answer();
        assert_eq!(&answer[..6], b"FWST\x02\x00");
        answer[4] = 1;
        assert_eq!(
            Handshake::parse(&answer).unwrap_err().to_string(),
            "server speaks wire version 1, this viewer speaks version 2: the server needs a \
             newer framewire"
        );
        answer[4] = 3;
        assert_eq!(
            Handshake::parse(&answer).unwrap_err().to_string(),
            "server speaks wire version 3, this viewer speaks version 2: this viewer needs a \
             newer framewire"
        );
    }
}
