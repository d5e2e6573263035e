//! The UDP datagrams, to and from bytes (sans-IO). The layout is drawn in the crate doc
//! (`lib.rs`, "UDP datagrams"); every length is checked before anything is sized by it.

use framewire_core::{PeerReport, Request};

use crate::message::{HANDSHAKE_LEN, Handshake, NO_RUNG, Report, SWITCH_LEN, WireErrorKind};
use crate::session::{KEY_LEN, PROOF_LEN as SESSION_PROOF, Proof};
use crate::token::PROOF_LEN;

/// First bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"FWUD";
/// The UDP datagram layout's version.
pub const UDP_VERSION: u8 = 2;
/// Bytes of the common head: magic, version, kind, two reserved.
pub const HEAD_LEN: usize = 8;
/// A hello is padded to this size, so that the cookie answering it is never larger.
pub const HELLO_LEN: usize = 64;
/// A cookie answer: never larger than the hello it answers.
pub const COOKIE_LEN: usize = 64;
/// Bytes in a cookie.
pub const COOKIE_BYTES: usize = 16;
/// A start datagram: the head, a stream handshake, the session key and the start's check.
pub const START_LEN: usize = HEAD_LEN + HANDSHAKE_LEN + KEY_LEN + SESSION_PROOF;
/// A fragment's header, before its piece of the frame.
pub const FRAGMENT_HEAD_LEN: usize = 48;
/// A report (the viewer's keepalive).
pub const REPORT_LEN: usize = 56;
/// A peer report: the head, the session id and a report message.
pub const PEER_REPORT_LEN: usize = HEAD_LEN + SESSION_PROOF + crate::message::REPORT_LEN;
/// A rejoin: the head and the session id of the report it answers.
pub const REJOIN_LEN: usize = HEAD_LEN + SESSION_PROOF;
/// An end's fixed part: the head and whom it is for (below).
pub const END_LEN: usize = HEAD_LEN + SESSION_PROOF;
/// The longest reason an end carries.
pub const MAX_REASON: usize = 512;
/// The most fragments one frame may have.
pub const MAX_FRAGMENTS: u16 = u16::MAX;
/// Default payload bytes per datagram (`--mtu`): fits any path with IPv6 and tunnels.
pub const DEFAULT_MTU: usize = 1200;
/// The smallest and largest `--mtu`.
pub const MIN_MTU: usize = 64;
/// See [`MIN_MTU`].
pub const MAX_MTU: usize = 65_507 - FRAGMENT_HEAD_LEN;
/// What precedes a frame's payload inside the fragmented bytes: its rendition (a switch
/// message), so that a frame is never decoded as another rendition.
pub const PREFIX_LEN: usize = SWITCH_LEN;

/// The kinds of datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// viewer -> server: join (first without, then with the cookie).
    Hello = 1,
    /// server -> viewer: the cookie to echo (and a challenge when a token is needed).
    Cookie = 2,
    /// server -> viewer: the stream starts; a handshake.
    Start = 3,
    /// server -> viewer: a piece of a frame.
    Fragment = 4,
    /// viewer -> server: what arrived; also the keepalive.
    Report = 5,
    /// either way: the end (server: with its reason; viewer: leaving).
    End = 6,
    /// server -> an address it has no viewer for: join again (no larger than what it answers).
    Rejoin = 7,
    /// server -> viewer, between the two sides of a call: how this side shows the stream the
    /// viewer's side sends it.
    PeerReport = 8,
}

impl Kind {
    fn from_id(id: u8) -> Option<Kind> {
        Some(match id {
            1 => Kind::Hello,
            2 => Kind::Cookie,
            3 => Kind::Start,
            4 => Kind::Fragment,
            5 => Kind::Report,
            6 => Kind::End,
            7 => Kind::Rejoin,
            8 => Kind::PeerReport,
            _ => return None,
        })
    }
}

/// What was wrong with a datagram: one line, for a counted drop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramError {
    /// Shorter than its kind's fixed part.
    #[error("{what} datagram of {got} bytes, expected {want}")]
    Length {
        /// The kind.
        what: &'static str,
        /// Its length.
        got: usize,
        /// What it must be (at least).
        want: usize,
    },
    /// Not framewire's magic.
    #[error("not a framewire datagram (magic {0:02x?})")]
    Magic([u8; 4]),
    /// Another version of the layout.
    #[error("datagram layout version {got}, this build speaks {UDP_VERSION}")]
    Version {
        /// The version it names.
        got: u8,
    },
    /// A kind this build does not know.
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
    /// A fragment whose numbers cannot be.
    #[error("impossible fragment of frame {seq}: {why}")]
    Fragment {
        /// The frame it claims.
        seq: u64,
        /// What is impossible.
        why: String,
    },
    /// A message inside the datagram was wrong.
    #[error(transparent)]
    Wire(#[from] WireErrorKind),
}

/// A parsed datagram; borrowed parts point into the received bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Datagram<'a> {
    /// A hello.
    Hello(HelloMsg),
    /// A cookie answer.
    Cookie(CookieMsg),
    /// The stream starts.
    Start(StartMsg),
    /// A piece of a frame.
    Fragment(Fragment<'a>),
    /// A report.
    Report(ReportMsg),
    /// The end.
    End(EndMsg),
    /// Join again: the session id of the report it answers.
    Rejoin(Proof),
    /// How the other side of a call shows this side's stream, with the session id.
    PeerReport(Proof, PeerReport),
}

/// The server's start: the stream's handshake and the session's key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartMsg {
    /// The stream handshake, as over TCP.
    pub handshake: Handshake,
    /// The session key ([`crate::session`]).
    pub key: [u8; KEY_LEN],
    /// The session key's check of the cookie the answered hello echoed.
    pub check: Proof,
}

/// An end, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndMsg {
    /// Whom it is for: the session id; a refused hello's cookie (its first 8 bytes); zero
    /// for the answer to a hello without a cookie.
    pub who: Proof,
    /// The server's reason, when there is one.
    pub reason: Option<String>,
}

/// A viewer's hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloMsg {
    /// What it asks for.
    pub request: Request,
    /// The cookie echoed, zero in a first hello.
    pub cookie: [u8; COOKIE_BYTES],
    /// The token's proof of the challenge, zero when none is needed.
    pub proof: [u8; PROOF_LEN],
    /// A side of a call (`chat --transport udp`): the call's number; 0 for a one-way viewer.
    pub call: u16,
    /// A caller's hello: the port its own stream is served on, for the listener to join
    /// (from the hello's source address); 0 otherwise.
    pub port: u16,
}

/// The server's cookie answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieMsg {
    /// The cookie to echo.
    pub cookie: [u8; COOKIE_BYTES],
    /// The challenge to prove, when the server asks for the token.
    pub challenge: Option<[u8; PROOF_LEN]>,
}

/// A viewer's report: totals since it joined, and the last frame's spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportMsg {
    /// The session id.
    pub session: Proof,
    /// Frames that arrived complete.
    pub frames: u64,
    /// Bytes of datagrams that arrived.
    pub bytes: u64,
    /// Bytes of the last complete frame.
    pub last_bytes: u32,
    /// Microseconds from its first datagram's arrival to its last one's.
    pub last_spread_us: u32,
    /// The number (among frames sent to this viewer) of the newest frame a piece of which
    /// arrived: the frames the server had sent by then, so that both counts are of about the
    /// same moment (and a link that completes no frame at all still shows as full).
    pub last_sent: u32,
    /// The tag of frame `last_sent` (zero while it is 0): the proof that it arrived.
    pub receipt: Proof,
    /// It lost a frame of an inter-frame codec and waits for a keyframe (flags bit 0).
    pub keyframe: bool,
}

/// A piece of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The frame's sequence number (capture's).
    pub seq: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// The frame's number among those sent to this viewer (gaps: frames lost whole).
    pub sent: u32,
    /// Bytes of the whole frame (prefix and payload).
    pub frame_len: u32,
    /// Where this piece goes in it.
    pub offset: u32,
    /// This piece's index, below `count`.
    pub index: u16,
    /// Data pieces of the frame; an index from `count` on is a parity piece (below).
    pub count: u16,
    /// Data pieces per parity piece (0: none). Parity piece `count + g` is the XOR of data
    /// pieces `g*fec .. (g+1)*fec` (each padded with zeros to the full piece size), so one
    /// piece lost in a group is rebuilt without waiting for anything.
    pub fec: u8,
    /// A delta of an inter-frame codec: it needs the frames before it (byte 7, bit 0).
    pub delta: bool,
    /// The frame's tag under the session's key.
    pub tag: Proof,
    /// The piece.
    pub data: &'a [u8],
}

fn head(b: &mut Vec<u8>, kind: Kind) {
    b.clear();
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&[UDP_VERSION, kind as u8, 0, 0]);
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn proof_at(b: &[u8], at: usize) -> Proof {
    b[at..at + SESSION_PROOF].try_into().expect("8 bytes")
}

impl HelloMsg {
    /// Its bytes, into `b`.
    pub fn write(&self, b: &mut Vec<u8>) {
        head(b, Kind::Hello);
        b[6..8].copy_from_slice(&self.call.to_le_bytes());
        b.push(self.request.codec.map_or(0, |c| c.wire_id()));
        b.push(self.request.rung.unwrap_or(NO_RUNG));
        b.extend_from_slice(&self.port.to_le_bytes());
        b.extend_from_slice(&self.request.width.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&self.cookie);
        b.extend_from_slice(&self.proof);
        b.resize(HELLO_LEN, 0);
    }
}

impl CookieMsg {
    /// Its bytes, into `b`.
    pub fn write(&self, b: &mut Vec<u8>) {
        head(b, Kind::Cookie);
        b.extend_from_slice(&self.cookie);
        b.push(u8::from(self.challenge.is_some()));
        b.resize(32, 0);
        b.extend_from_slice(&self.challenge.unwrap_or_default());
        debug_assert_eq!(b.len(), COOKIE_LEN);
    }
}

impl ReportMsg {
    /// Its bytes, into `b`.
    pub fn write(&self, b: &mut Vec<u8>) {
        head(b, Kind::Report);
        b.extend_from_slice(&self.session);
        b.extend_from_slice(&self.frames.to_le_bytes());
        b.extend_from_slice(&self.bytes.to_le_bytes());
        b.extend_from_slice(&self.last_bytes.to_le_bytes());
        b.extend_from_slice(&self.last_spread_us.to_le_bytes());
        b.extend_from_slice(&self.last_sent.to_le_bytes());
        b.extend_from_slice(&u32::from(self.keyframe).to_le_bytes());
        debug_assert_eq!(b.len(), REPORT_LEN - SESSION_PROOF);
        b.extend_from_slice(&self.receipt);
    }
}

impl StartMsg {
    /// Its bytes, into `b`.
    pub fn write(&self, b: &mut Vec<u8>) {
        head(b, Kind::Start);
        b.extend_from_slice(&self.handshake.to_bytes());
        b.extend_from_slice(&self.key);
        b.extend_from_slice(&self.check);
    }
}

/// An end datagram for `who` with `reason` (cut to [`MAX_REASON`] bytes at a character
/// boundary).
pub fn write_end(who: &Proof, reason: Option<&str>, b: &mut Vec<u8>) {
    head(b, Kind::End);
    b.extend_from_slice(who);
    if let Some(r) = reason {
        let mut end = r.len().min(MAX_REASON);
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        b.extend_from_slice(&r.as_bytes()[..end]);
    }
}

/// A peer report datagram: the head, the session id and a report message's 16 bytes.
pub fn write_peer_report(session: &Proof, report: &PeerReport, b: &mut Vec<u8>) {
    head(b, Kind::PeerReport);
    b.extend_from_slice(session);
    b.extend_from_slice(&Report(*report).to_bytes());
}

/// A rejoin datagram answering a report of session `session` (smaller than the report).
pub fn write_rejoin(session: &Proof, b: &mut Vec<u8>) {
    head(b, Kind::Rejoin);
    b.extend_from_slice(session);
}

/// The header of one fragment, then `data`, into `b`.
pub fn write_fragment(f: &Fragment<'_>, b: &mut Vec<u8>) {
    head(b, Kind::Fragment);
    b[6] = f.fec;
    b[7] = u8::from(f.delta);
    b.extend_from_slice(&f.seq.to_le_bytes());
    b.extend_from_slice(&f.capture_us.to_le_bytes());
    b.extend_from_slice(&f.sent.to_le_bytes());
    b.extend_from_slice(&f.frame_len.to_le_bytes());
    b.extend_from_slice(&f.offset.to_le_bytes());
    b.extend_from_slice(&f.index.to_le_bytes());
    b.extend_from_slice(&f.count.to_le_bytes());
    b.extend_from_slice(&f.tag);
    debug_assert_eq!(b.len(), FRAGMENT_HEAD_LEN);
    b.extend_from_slice(f.data);
}

/// One frame as the server sends it: which frame, and its bytes in two parts (the rendition
/// prefix and the payload), cut into pieces of `mtu` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Capture's sequence number.
    pub seq: u64,
    /// Capture time.
    pub capture_us: u64,
    /// Its number among the frames sent to this viewer.
    pub sent: u32,
    /// A delta of an inter-frame codec.
    pub delta: bool,
    /// Its tag under the session's key.
    pub tag: Proof,
    /// The rendition prefix ([`PREFIX_LEN`] bytes).
    pub prefix: &'a [u8],
    /// The codec's payload.
    pub payload: &'a [u8],
}

/// A frame too large to cut into datagrams of its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a frame of {len} bytes needs more than {MAX_FRAGMENTS} datagrams of {mtu} bytes")]
pub struct TooLarge {
    /// The frame's bytes, with its prefix.
    pub len: usize,
    /// Frame bytes per datagram.
    pub mtu: usize,
}

impl Outgoing<'_> {
    /// Writes each datagram of the frame into `buf` and hands it to `send`: the data pieces,
    /// each followed, at the end of its parity group, by the group's parity piece (with `fec`
    /// data pieces per group; 0: none). Errors: a frame too large for `mtu` pieces.
    pub fn datagrams<E>(
        &self,
        mtu: usize,
        fec: u8,
        buf: &mut Vec<u8>,
        parity: &mut Vec<u8>,
        mut send: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, TooLarge> {
        let len = self.prefix.len() + self.payload.len();
        let count = len.div_ceil(mtu);
        let groups = parity_pieces(u16::try_from(count).unwrap_or(u16::MAX), fec) as usize;
        if count + groups > usize::from(MAX_FRAGMENTS) || len > u32::MAX as usize {
            return Err(TooLarge { len, mtu });
        }
        let byte = |k: usize| {
            if k < self.prefix.len() {
                self.prefix[k]
            } else {
                self.payload[k - self.prefix.len()]
            }
        };
        let mut piece = Fragment {
            seq: self.seq,
            capture_us: self.capture_us,
            sent: self.sent,
            frame_len: len as u32,
            offset: 0,
            index: 0,
            count: count as u16,
            fec,
            delta: self.delta,
            tag: self.tag,
            data: &[],
        };
        parity.clear();
        for i in 0..count {
            let at = i * mtu;
            let end = (at + mtu).min(len);
            piece.index = i as u16;
            piece.offset = at as u32;
            write_fragment(&piece, buf);
            if at >= self.prefix.len() {
                let p = self.prefix.len();
                buf.extend_from_slice(&self.payload[at - p..end - p]);
            } else {
                buf.extend((at..end).map(byte));
            }
            if fec > 0 {
                // A piece's full size: mtu, or the whole frame when it is one piece.
                parity.resize(mtu.min(len), 0);
                for (x, b) in parity.iter_mut().zip(&buf[FRAGMENT_HEAD_LEN..]) {
                    *x ^= b;
                }
            }
            if let Err(e) = send(buf) {
                return Ok(Err(e));
            }
            let last_of_group = fec > 0 && ((i + 1) % usize::from(fec) == 0 || i + 1 == count);
            if last_of_group {
                let p = Fragment {
                    index: (count + i / usize::from(fec)) as u16,
                    offset: 0,
                    data: parity,
                    ..piece
                };
                write_fragment(&p, buf);
                if let Err(e) = send(buf) {
                    return Ok(Err(e));
                }
                parity.clear();
            }
        }
        Ok(Ok(()))
    }
}

fn exact(what: &'static str, b: &[u8], want: usize) -> Result<(), DatagramError> {
    if b.len() != want {
        return Err(DatagramError::Length {
            what,
            got: b.len(),
            want,
        });
    }
    Ok(())
}

/// Parses one datagram. Nothing is allocated from a length it names; a fragment's numbers are
/// checked against each other and against `max_frame` (bytes of prefix and payload).
pub fn parse(b: &[u8], max_frame: u32) -> Result<Datagram<'_>, DatagramError> {
    if b.len() < HEAD_LEN {
        return Err(DatagramError::Length {
            what: "a",
            got: b.len(),
            want: HEAD_LEN,
        });
    }
    let magic: [u8; 4] = b[..4].try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(DatagramError::Magic(magic));
    }
    if b[4] != UDP_VERSION {
        return Err(DatagramError::Version { got: b[4] });
    }
    let kind = Kind::from_id(b[5]).ok_or(DatagramError::UnknownKind(b[5]))?;
    Ok(match kind {
        Kind::Hello => {
            exact("hello", b, HELLO_LEN)?;
            let codec = match b[8] {
                0 => None,
                id => Some(framewire_core::CodecKind::from_wire_id(id).ok_or(
                    WireErrorKind::UnknownCodec {
                        id,
                        what: "udp hello",
                    },
                )?),
            };
            let width = match u32_at(b, 12) {
                0 => None,
                w if w <= crate::message::MAX_DIMENSION => Some(w),
                w => return Err(WireErrorKind::BadWidth(w).into()),
            };
            Datagram::Hello(HelloMsg {
                request: Request {
                    rung: (b[9] != NO_RUNG).then_some(b[9]),
                    codec,
                    width,
                },
                cookie: b[16..32].try_into().expect("16 bytes"),
                proof: b[32..64].try_into().expect("32 bytes"),
                call: u16_at(b, 6),
                port: u16_at(b, 10),
            })
        }
        Kind::Cookie => {
            exact("cookie", b, COOKIE_LEN)?;
            Datagram::Cookie(CookieMsg {
                cookie: b[8..24].try_into().expect("16 bytes"),
                challenge: (b[24] == 1).then(|| b[32..64].try_into().expect("32 bytes")),
            })
        }
        Kind::Start => {
            exact("start", b, START_LEN)?;
            let at = HEAD_LEN + HANDSHAKE_LEN;
            Datagram::Start(StartMsg {
                handshake: Handshake::parse(b[HEAD_LEN..at].try_into().expect("handshake"))?,
                key: b[at..at + KEY_LEN].try_into().expect("key"),
                check: proof_at(b, at + KEY_LEN),
            })
        }
        Kind::Report => {
            exact("report", b, REPORT_LEN)?;
            Datagram::Report(ReportMsg {
                session: proof_at(b, 8),
                frames: u64_at(b, 16),
                bytes: u64_at(b, 24),
                last_bytes: u32_at(b, 32),
                last_spread_us: u32_at(b, 36),
                last_sent: u32_at(b, 40),
                keyframe: u32_at(b, 44) & 1 != 0,
                receipt: proof_at(b, 48),
            })
        }
        Kind::End => {
            if !(END_LEN..=END_LEN + MAX_REASON).contains(&b.len()) {
                return Err(DatagramError::Length {
                    what: "end",
                    got: b.len(),
                    want: END_LEN,
                });
            }
            let text = &b[END_LEN..];
            Datagram::End(EndMsg {
                who: proof_at(b, HEAD_LEN),
                reason: (!text.is_empty()).then(|| crate::message::peer_text(text)),
            })
        }
        Kind::Rejoin => {
            exact("rejoin", b, REJOIN_LEN)?;
            Datagram::Rejoin(proof_at(b, HEAD_LEN))
        }
        Kind::PeerReport => {
            exact("peer report", b, PEER_REPORT_LEN)?;
            let bytes = b[HEAD_LEN + SESSION_PROOF..].try_into().expect("16 bytes");
            Datagram::PeerReport(proof_at(b, HEAD_LEN), Report::parse(bytes).0)
        }
        Kind::Fragment => {
            if b.len() <= FRAGMENT_HEAD_LEN {
                return Err(DatagramError::Length {
                    what: "fragment",
                    got: b.len(),
                    want: FRAGMENT_HEAD_LEN + 1,
                });
            }
            let f = Fragment {
                seq: u64_at(b, 8),
                capture_us: u64_at(b, 16),
                sent: u32_at(b, 24),
                frame_len: u32_at(b, 28),
                offset: u32_at(b, 32),
                index: u16_at(b, 36),
                count: u16_at(b, 38),
                fec: b[6],
                delta: b[7] & 1 != 0,
                tag: proof_at(b, 40),
                data: &b[FRAGMENT_HEAD_LEN..],
            };
            check_fragment(&f, max_frame)?;
            Datagram::Fragment(f)
        }
    })
}

/// Parity pieces of a frame of `count` data pieces with `fec` data pieces per parity piece.
pub fn parity_pieces(count: u16, fec: u8) -> u32 {
    if fec == 0 {
        0
    } else {
        u32::from(count).div_ceil(u32::from(fec))
    }
}

fn check_fragment(f: &Fragment<'_>, max_frame: u32) -> Result<(), DatagramError> {
    let bad = |why: String| DatagramError::Fragment { seq: f.seq, why };
    if f.frame_len > max_frame {
        return Err(bad(format!(
            "frame of {} bytes exceeds max {max_frame}",
            f.frame_len
        )));
    }
    if (f.frame_len as usize) < PREFIX_LEN {
        return Err(bad(format!("frame of {} bytes", f.frame_len)));
    }
    let pieces = u32::from(f.count) + parity_pieces(f.count, f.fec);
    if f.count == 0 || u32::from(f.index) >= pieces {
        return Err(bad(format!("piece {} of {}", f.index, f.count)));
    }
    if u64::from(f.offset) + f.data.len() as u64 > u64::from(f.frame_len) {
        return Err(bad(format!(
            "{} bytes at offset {} of a {}-byte frame",
            f.data.len(),
            f.offset,
            f.frame_len
        )));
    }
    // Each piece but the last is full, so the count must be what the frame needs at most.
    if u64::from(f.count) > u64::from(f.frame_len) {
        return Err(bad(format!("{} pieces for {} bytes", f.count, f.frame_len)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        write_fragment(
            &Fragment {
                seq: 7,
                capture_us: 9,
                sent: 1,
                frame_len: 100,
                offset: 0,
                index: 0,
                count: 2,
                fec: 0,
                delta: true,
                tag: [9; 8],
                data,
            },
            &mut b,
        );
        b
    }

    #[test]
    fn every_message_reads_back() {
        let mut b = Vec::new();
        let hello = HelloMsg {
            request: Request {
                rung: Some(1),
                codec: None,
                width: Some(320),
            },
            cookie: [3; 16],
            proof: [4; 32],
            call: 0x1234,
            port: 40_000,
        };
        hello.write(&mut b);
        assert_eq!(b.len(), HELLO_LEN);
        assert_eq!(parse(&b, 1000), Ok(Datagram::Hello(hello)));
        let cookie = CookieMsg {
            cookie: [5; 16],
            challenge: Some([6; 32]),
        };
        cookie.write(&mut b);
        assert!(b.len() <= HELLO_LEN);
        assert_eq!(parse(&b, 1000), Ok(Datagram::Cookie(cookie)));
        let report = ReportMsg {
            session: [8; 8],
            receipt: [9; 8],
            keyframe: true,
            frames: 1,
            bytes: 2,
            last_bytes: 3,
            last_spread_us: 4,
            last_sent: 5,
        };
        report.write(&mut b);
        assert_eq!(parse(&b, 1000), Ok(Datagram::Report(report)));
        let told = PeerReport {
            fps: 29.5,
            latency: Some(std::time::Duration::from_millis(40)),
        };
        write_peer_report(&[1; 8], &told, &mut b);
        assert_eq!(b.len(), PEER_REPORT_LEN);
        assert_eq!(parse(&b, 1000), Ok(Datagram::PeerReport([1; 8], told)));
        b.push(0);
        assert!(
            parse(&b, 1000).is_err(),
            "a peer report of the wrong length"
        );
        write_end(&[2; 8], Some("server full"), &mut b);
        assert_eq!(
            parse(&b, 1000),
            Ok(Datagram::End(EndMsg {
                who: [2; 8],
                reason: Some("server full".into())
            }))
        );
        write_rejoin(&[3; 8], &mut b);
        assert_eq!(parse(&b, 1000), Ok(Datagram::Rejoin([3; 8])));
        let start = StartMsg {
            handshake: {
                let mut bytes = b"FWST\x02\0\x03\x01".to_vec();
                bytes.extend_from_slice(&64u32.to_le_bytes());
                bytes.extend_from_slice(&48u32.to_le_bytes());
                bytes.extend_from_slice(&30_000u32.to_le_bytes());
                bytes.extend_from_slice(&[0, 1, 80, 0]);
                Handshake::parse(bytes[..].try_into().unwrap()).unwrap()
            },
            key: [4; 16],
            check: [5; 8],
        };
        start.write(&mut b);
        assert!(b.len() <= HELLO_LEN, "a start is no larger than the hello");
        assert_eq!(parse(&b, 1000), Ok(Datagram::Start(start)));
        let f = fragment(&[1; 50]);
        let Ok(Datagram::Fragment(p)) = parse(&f, 1000) else {
            panic!("fragment did not parse");
        };
        assert_eq!((p.seq, p.capture_us, p.sent, p.data.len()), (7, 9, 1, 50));
        assert_eq!(p.tag, [9; 8]);
    }

    #[test]
    fn impossible_fragments_are_refused() {
        let f = fragment(&[1; 50]);
        let e = parse(&f, 99).unwrap_err().to_string();
        assert_eq!(
            e,
            "impossible fragment of frame 7: frame of 100 bytes exceeds max 99"
        );
        let mut over = fragment(&[1; 50]);
        over[32..36].copy_from_slice(&60u32.to_le_bytes());
        assert!(
            parse(&over, 1000)
                .unwrap_err()
                .to_string()
                .contains("offset 60")
        );
        let mut index = fragment(&[1; 50]);
        index[36..38].copy_from_slice(&2u16.to_le_bytes());
        assert!(
            parse(&index, 1000)
                .unwrap_err()
                .to_string()
                .contains("piece 2 of 2")
        );
    }

    #[test]
    fn every_prefix_and_random_bytes_give_an_error_not_a_panic() {
        let f = fragment(&[1; 50]);
        for n in 0..f.len() {
            let _ = parse(&f[..n], 1000);
        }
        let mut x = 0x1234_5678_u32;
        for _ in 0..10_000 {
            let mut b = vec![0u8; (x % 80) as usize];
            for v in &mut b {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            if b.len() >= 6 {
                b[..4].copy_from_slice(&MAGIC);
                b[4] = UDP_VERSION;
                b[5] = (x % 9) as u8;
            }
            let _ = parse(&b, 1 << 20);
        }
    }
}
