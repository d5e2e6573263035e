//! The fixed-size messages of wire format version 1, hand-written: viewer hello, stream
//! handshake and frame header. Layouts are drawn in the crate doc; this file is the one place
//! that turns them into bytes and back.

use std::fmt;

use framewire_core::{CodecKind, PixelFormat, StreamInfo};

/// The wire format version this crate speaks.
pub const VERSION: u16 = 1;
/// Magic that opens a viewer's hello.
pub const HELLO_MAGIC: [u8; 4] = *b"FWVH";
/// Magic that opens the server's stream handshake.
pub const HANDSHAKE_MAGIC: [u8; 4] = *b"FWST";
/// Magic that opens every frame header.
pub const FRAME_MAGIC: [u8; 4] = *b"FWFR";
/// Bytes in a viewer hello.
pub const HELLO_LEN: usize = 8;
/// Bytes in a stream handshake.
pub const HANDSHAKE_LEN: usize = 24;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 32;
/// Largest width or height a handshake may announce.
pub const MAX_DIMENSION: u32 = 16_384;
/// Default largest payload a reader accepts: 64 MiB, enough for raw 4K RGBA.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 << 20;
/// Largest payload of an [`MessageKind::Error`] message (a reason text).
pub const MAX_ERROR_TEXT: u32 = 1024;

/// The first message on a connection, sent by the viewer: it says "I am a framewire viewer".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The wire version the viewer speaks.
    pub version: u16,
}

impl Hello {
    /// The hello of this crate's version.
    pub const CURRENT: Hello = Hello { version: VERSION };

    /// The 8 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&HELLO_MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b
    }

    /// Parses and checks a hello. Reserved bytes are ignored.
    pub fn parse(b: &[u8; HELLO_LEN]) -> Result<Hello, WireErrorKind> {
        check_magic("viewer hello", HELLO_MAGIC, b)?;
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(WireErrorKind::UnsupportedVersion {
                got: version,
                supported: VERSION,
            });
        }
        Ok(Hello { version })
    }
}

/// The server's answer to a hello: what the stream carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Handshake {
    /// Codec, size and pixel format of the stream.
    pub stream: StreamInfo,
    /// Frames per second the source is paced to, 0 when unpaced. Informational.
    pub fps: f64,
}

impl Handshake {
    /// The 24 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut b = [0u8; HANDSHAKE_LEN];
        b[0..4].copy_from_slice(&HANDSHAKE_MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6] = self.stream.codec.wire_id();
        b[7] = self.stream.format.wire_id();
        b[8..12].copy_from_slice(&self.stream.width.to_le_bytes());
        b[12..16].copy_from_slice(&self.stream.height.to_le_bytes());
        let milli = (self.fps * 1000.0).round().clamp(0.0, u32::MAX as f64) as u32;
        b[16..20].copy_from_slice(&milli.to_le_bytes());
        b
    }

    /// Parses and checks a handshake: magic, version, known codec and format, size in range.
    pub fn parse(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireErrorKind> {
        check_magic("stream handshake", HANDSHAKE_MAGIC, b)?;
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(WireErrorKind::UnsupportedVersion {
                got: version,
                supported: VERSION,
            });
        }
        let codec = CodecKind::from_wire_id(b[6]).ok_or(WireErrorKind::UnknownCodec(b[6]))?;
        let format =
            PixelFormat::from_wire_id(b[7]).ok_or(WireErrorKind::UnknownPixelFormat(b[7]))?;
        let width = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        let height = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
        if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
            return Err(WireErrorKind::BadSize { width, height });
        }
        let milli = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes"));
        Ok(Handshake {
            stream: StreamInfo {
                codec,
                width,
                height,
                format,
            },
            fps: f64::from(milli) / 1000.0,
        })
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
}

impl MessageKind {
    fn id(self) -> u8 {
        match self {
            MessageKind::Frame => 0,
            MessageKind::End => 1,
            MessageKind::Error => 2,
        }
    }

    fn from_id(id: u8) -> Option<MessageKind> {
        match id {
            0 => Some(MessageKind::Frame),
            1 => Some(MessageKind::End),
            2 => Some(MessageKind::Error),
            _ => None,
        }
    }
}

/// The fixed header in front of every message after the handshake.
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
}

impl FrameHeader {
    /// The header of a frame.
    pub fn frame(seq: u64, capture_us: u64, payload_len: u32) -> FrameHeader {
        FrameHeader {
            kind: MessageKind::Frame,
            seq,
            capture_us,
            payload_len,
        }
    }

    /// The 32 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4] = self.kind.id();
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.capture_us.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_len.to_le_bytes());
        b
    }

    /// Parses a header and checks its payload length against `max_payload` (nothing is
    /// allocated for a payload before this check passes).
    #[inline]
    pub fn parse(b: &[u8; HEADER_LEN], max_payload: u32) -> Result<FrameHeader, WireErrorKind> {
        check_magic("frame header", FRAME_MAGIC, b)?;
        let kind = MessageKind::from_id(b[4]).ok_or(WireErrorKind::UnknownMessageKind(b[4]))?;
        let seq = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        let capture_us = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        let payload_len = u32::from_le_bytes(b[24..28].try_into().expect("4 bytes"));
        let max = match kind {
            MessageKind::Frame => max_payload,
            MessageKind::End => 0,
            MessageKind::Error => MAX_ERROR_TEXT,
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
    /// The peer speaks another version of the wire format.
    #[error("unsupported wire version {got}, this build speaks version {supported}")]
    UnsupportedVersion {
        /// The version the peer sent.
        got: u16,
        /// The version this build speaks.
        supported: u16,
    },
    /// The handshake names a codec this build does not know.
    #[error("unknown codec id {0} in stream handshake")]
    UnknownCodec(u8),
    /// The handshake names a pixel format this build does not know.
    #[error("unknown pixel format id {0} in stream handshake")]
    UnknownPixelFormat(u8),
    /// The handshake announces a size outside 1..=16384.
    #[error("stream size {width}x{height} is outside 1x1..={MAX_DIMENSION}x{MAX_DIMENSION}")]
    BadSize {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
    },
    /// A header names a message kind this build does not know.
    #[error("unknown message kind {0} in frame header")]
    UnknownMessageKind(u8),
    /// A header announces a payload above the configured maximum.
    #[error("{} payload length {len} exceeds max {max}", kind_name(*kind))]
    PayloadTooLarge {
        /// The kind of message.
        kind: MessageKind,
        /// The announced length.
        len: u32,
        /// The maximum.
        max: u32,
    },
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

fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Frame => "frame",
        MessageKind::End => "end",
        MessageKind::Error => "error",
    }
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
