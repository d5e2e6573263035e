//! Sealed datagrams (`--transport udp --tls`): each datagram of the UDP layout, whole, sealed
//! with ChaCha20-Poly1305 (ring's AEAD) under keys that rustls exports from the TLS session
//! of the viewer's control connection (framewire-net's `udp::control`). Nothing here is cryptography of
//! its own: the keys come from the TLS exporter (RFC 8446 section 7.5), the sealing from ring;
//! this module holds the layout, the nonce counter and the replay window.
//!
//! ```text
//! offset size field
//! 0      4    magic "FWUS"
//! 4      1    layout version (1)
//! 5      1    way: 0 server -> viewer, 1 viewer -> server
//! 6      2    reserved, zero
//! 8      8    the session's id (from the exporter, as the keys)
//! 16     8    the sender's counter for this way, from 0 (the nonce: way, 3 zero bytes, counter)
//! 24     ...  the datagram, sealed; the 24 bytes above are its associated data
//! end-16 16   the tag
//! ```
//!
//! ChaCha20-Poly1305 rather than AES-GCM: a stream sends thousands of datagrams a second, and
//! ChaCha20-Poly1305 has no per-key message limit a long stream could reach. A receiver takes
//! a counter once (a window of the last 128), so a replayed datagram is dropped like a forged
//! one, and a session answers one address only: the first whose datagram opened.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// The first bytes of a sealed datagram.
pub const MAGIC: &[u8; 4] = b"FWUS";
/// The sealed layout's version.
pub const VERSION: u8 = 1;
/// Bytes before the sealed datagram.
pub const HEAD_LEN: usize = 24;
/// Bytes after it: the tag.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a datagram.
pub const OVERHEAD: usize = HEAD_LEN + TAG_LEN;
/// The exporter's label (RFC 5705 asks for the `EXPORTER` prefix).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-framewire-udp-v1";
/// Bytes the exporter is asked for: id, down key, up key.
pub const EXPORTED_LEN: usize = 72;
/// Counters a receiver remembers behind the newest.
const WINDOW: u64 = 128;

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Way {
    /// From the stream's server to its viewer.
    Down = 0,
    /// From the viewer to the server.
    Up = 1,
}

/// The keys of one stream, both ways, as exported from a TLS session.
pub struct StreamKeys {
    id: [u8; 8],
    down: [u8; 32],
    up: [u8; 32],
}

impl std::fmt::Debug for StreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamKeys")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Which stream of a control connection: the one its TLS server sends, or (in a call) the one
/// its TLS client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The stream of the side that accepted the control connection.
    OfAcceptor,
    /// A caller's own stream, which the listener joins.
    OfCaller,
}

impl Stream {
    /// The exporter's context for this stream's keys.
    pub fn context(self) -> &'static [u8] {
        match self {
            Stream::OfAcceptor => b"acceptor's stream",
            Stream::OfCaller => b"caller's stream",
        }
    }
}

impl StreamKeys {
    /// Keys from the exporter's output: id, down, up.
    pub fn from_bytes(b: &[u8; EXPORTED_LEN]) -> StreamKeys {
        let mut keys = StreamKeys {
            id: [0; 8],
            down: [0; 32],
            up: [0; 32],
        };
        keys.id.copy_from_slice(&b[..8]);
        keys.down.copy_from_slice(&b[8..40]);
        keys.up.copy_from_slice(&b[40..72]);
        keys
    }

    /// The session's id.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// Why a datagram did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed datagram (another magic or version, too short, or the wrong way).
    #[error("not a sealed datagram of this layout")]
    NotSealed,
    /// Sealed for another session.
    #[error("sealed for another session")]
    OtherSession,
    /// Its counter was seen already or is too old.
    #[error("replayed or too late")]
    Replayed,
    /// It does not open under the session's key: forged or damaged.
    #[error("does not open: forged or damaged")]
    Forged,
}

/// The id of the session a sealed datagram names, if it is one.
pub fn session_of(datagram: &[u8]) -> Option<[u8; 8]> {
    if datagram.len() < OVERHEAD || &datagram[..4] != MAGIC || datagram[4] != VERSION {
        return None;
    }
    datagram[8..16].try_into().ok()
}

/// One side's end of a sealed stream: seals one way, opens the other.
pub struct Session {
    id: [u8; 8],
    seal_way: Way,
    seal: LessSafeKey,
    counter: AtomicU64,
    open: LessSafeKey,
    window: Mutex<Window>,
    /// The address whose datagram opened first: the only one this session answers.
    peer: OnceLock<SocketAddr>,
    /// When a datagram last opened.
    heard: Mutex<Option<Instant>>,
    /// Set once the control connection is gone.
    closed: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("seal_way", &self.seal_way)
            .field("peer", &self.peer.get())
            .finish_non_exhaustive()
    }
}

fn key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key"))
}

fn nonce(way: Way, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = way as u8;
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl Session {
    /// The server's end: seals [`Way::Down`], opens [`Way::Up`].
    pub fn server(keys: &StreamKeys) -> Session {
        Session::new(keys.id, Way::Down, &keys.down, &keys.up)
    }

    /// The viewer's end: seals [`Way::Up`], opens [`Way::Down`].
    pub fn viewer(keys: &StreamKeys) -> Session {
        Session::new(keys.id, Way::Up, &keys.up, &keys.down)
    }

    fn new(id: [u8; 8], seal_way: Way, seal: &[u8; 32], open: &[u8; 32]) -> Session {
        Session {
            id,
            seal_way,
            seal: key(seal),
            counter: AtomicU64::new(0),
            open: key(open),
            window: Mutex::new(Window::default()),
            peer: OnceLock::new(),
            heard: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// The session's id.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }

    /// Seals `datagram` into `out` (cleared first).
    pub fn seal(&self, datagram: &[u8], out: &mut Vec<u8>) {
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        out.clear();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.seal_way as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(datagram);
        let (head, body) = out.split_at_mut(HEAD_LEN);
        let tag = self
            .seal
            .seal_in_place_separate_tag(nonce(self.seal_way, counter), Aad::from(&*head), body)
            .expect("a datagram is far below the AEAD's limit");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens a sealed datagram in place, arrived at `now`: the range of `datagram` that holds
    /// what was sealed. Its counter is taken (a second datagram with it is
    /// [`SealError::Replayed`]) only once it opened, so a forgery moves nothing.
    pub fn open(&self, datagram: &mut [u8], now: Instant) -> Result<Range<usize>, SealError> {
        let open_way = match self.seal_way {
            Way::Down => Way::Up,
            Way::Up => Way::Down,
        };
        let id = session_of(datagram).ok_or(SealError::NotSealed)?;
        if datagram[5] != open_way as u8 || datagram[6..8] != [0, 0] {
            return Err(SealError::NotSealed);
        }
        if id != self.id {
            return Err(SealError::OtherSession);
        }
        let counter = u64::from_le_bytes(datagram[16..24].try_into().expect("8 bytes"));
        if !lock(&self.window).fresh(counter) {
            return Err(SealError::Replayed);
        }
        let (head, body) = datagram.split_at_mut(HEAD_LEN);
        let opened = self
            .open
            .open_in_place(nonce(open_way, counter), Aad::from(&*head), body)
            .map_err(|_| SealError::Forged)?;
        let len = opened.len();
        if !lock(&self.window).take(counter) {
            return Err(SealError::Replayed);
        }
        *lock(&self.heard) = Some(now);
        Ok(HEAD_LEN..HEAD_LEN + len)
    }

    /// Binds the session to `peer` if it is bound to none yet; whether `peer` is its address.
    pub fn answers(&self, peer: SocketAddr) -> bool {
        *self.peer.get_or_init(|| peer) == peer
    }

    /// The address the session answers, once a datagram from it opened.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer.get().copied()
    }

    /// When a datagram last opened.
    pub fn heard(&self) -> Option<Instant> {
        *lock(&self.heard)
    }

    /// The control connection is gone: the stream it keyed ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The counters a receiver has taken: the newest, and a bit for each of the [`WINDOW`]
/// before it.
#[derive(Debug, Default)]
struct Window {
    /// The newest counter taken, plus one (0: none yet).
    next: u64,
    /// Bit i: counter `next - 1 - i` was taken.
    seen: u128,
}

impl Window {
    /// Whether `n` may be taken.
    fn fresh(&self, n: u64) -> bool {
        if n >= self.next {
            return true;
        }
        let back = self.next - 1 - n;
        back < WINDOW && self.seen & (1u128 << back) == 0
    }

    /// Takes `n`; false when it may not be taken.
    fn take(&mut self, n: u64) -> bool {
        if !self.fresh(n) {
            return false;
        }
        if n >= self.next {
            let shift = n - self.next + 1;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.next = n + 1;
        } else {
            self.seen |= 1u128 << (self.next - 1 - n);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let mut bytes = [0u8; 72];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let keys = StreamKeys::from_bytes(&bytes);
        (Session::server(&keys), Session::viewer(&keys))
    }

    #[test]
    fn a_datagram_sealed_one_way_opens_the_other_once() {
        let (server, viewer) = pair();
        let mut out = Vec::new();
        viewer.seal(b"FWUD hello", &mut out);
        assert_eq!(out.len(), 10 + OVERHEAD);
        assert!(
            !out.windows(4).any(|w| w == b"FWUD"),
            "the datagram travels sealed"
        );
        let mut copy = out.clone();
        let range = server.open(&mut out, Instant::now()).expect("opens");
        assert_eq!(&out[range], b"FWUD hello");
        // A replay is refused.
        assert_eq!(
            server.open(&mut copy, Instant::now()),
            Err(SealError::Replayed)
        );
        // The server's own way does not open at the server (a reflected datagram).
        server.seal(b"start", &mut out);
        let mut reflected = out.clone();
        assert_eq!(
            server.open(&mut reflected, Instant::now()),
            Err(SealError::NotSealed)
        );
        let range = viewer.open(&mut out, Instant::now()).expect("opens");
        assert_eq!(&out[range], b"start");
    }

    #[test]
    fn a_flipped_bit_anywhere_or_another_session_does_not_open_and_moves_nothing() {
        let (server, viewer) = pair();
        let mut sealed = Vec::new();
        viewer.seal(&[7u8; 100], &mut sealed);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(
                server.open(&mut bad, Instant::now()).is_err(),
                "byte {i} flipped opened"
            );
        }
        let mut other = sealed.clone();
        other[8] ^= 1;
        assert_eq!(
            server.open(&mut other, Instant::now()),
            Err(SealError::OtherSession)
        );
        // A forgery with a far counter does not move the window: the real one still opens.
        let mut forged = sealed.clone();
        forged[16..24].copy_from_slice(&1000u64.to_le_bytes());
        assert_eq!(
            server.open(&mut forged, Instant::now()),
            Err(SealError::Forged)
        );
        assert!(server.open(&mut sealed, Instant::now()).is_ok());
        // Every prefix is refused without a panic.
        for n in 0..sealed.len() {
            let mut cut = sealed[..n].to_vec();
            assert!(server.open(&mut cut, Instant::now()).is_err());
        }
    }

    #[test]
    fn the_window_takes_late_datagrams_once_and_drops_those_too_old() {
        let mut w = Window::default();
        assert!(w.take(0));
        assert!(w.take(5));
        assert!(w.take(3), "late but in the window");
        assert!(!w.take(3), "twice");
        assert!(!w.take(5));
        assert!(w.take(300));
        assert!(!w.take(300 - WINDOW), "too old");
        assert!(w.take(300 - WINDOW + 1), "the oldest the window holds");
        assert!(w.take(301));
        assert!(!w.take(0));
    }
}
