//! What a protocol on the fan-out supplies: its reading of a connection's request (an
//! [`Opening`]) and, for a subscriber, the [`Framer`] that writes its stream as bytes; and the
//! reads and writes every protocol shares.

use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use framewire_core::Request;
use framewire_wire::framer::Framer;

use crate::conn::Conn;
pub use crate::roster::Refused;
use crate::tls::PlaintextAnswer;

/// What a connection asked for, as its protocol read it.
pub enum Opening {
    /// A subscriber: packets of the rendition it asks for, until it or the stream goes, written
    /// by `framer` (which also words a refusal).
    Stream {
        /// What it asks for.
        request: Request,
        /// How its stream is written.
        framer: Box<dyn Framer>,
        /// What reads what it sends while its stream is written (WebSocket's frames), if it
        /// may send anything.
        reader: Option<Box<dyn PeerReader>>,
    },
    /// One packet of the rendition it asks for, written by `framer`, then the connection
    /// closes (HTTP's snapshot).
    One {
        /// What it asks for.
        request: Request,
        /// How the packet is written.
        framer: Box<dyn Framer>,
    },
    /// The protocol answered it in full (HTTP: the page, the stats); it is closed quietly.
    Answered,
}

impl fmt::Debug for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opening::Stream { request, .. } => write!(f, "Stream({request:?})"),
            Opening::One { request, .. } => write!(f, "One({request:?})"),
            Opening::Answered => f.write_str("Answered"),
        }
    }
}

/// Reads a subscriber's side of its connection on a thread of its own while the fan-out writes
/// its stream (a WebSocket's control frames), until the subscriber goes or breaks its protocol.
/// It must return once the connection is shut down (the stream's end closes it).
pub trait PeerReader: Send {
    /// Reads until the peer says goodbye or breaks its protocol.
    fn read(self: Box<Self>) -> PeerEnd;
}

/// How a [`PeerReader`]'s reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEnd {
    /// The peer said goodbye or just went: nothing more is sent to it (but what answers its
    /// goodbye, [`Framer::left`]).
    Left,
    /// The peer broke its protocol: its stream ends with this line, said to it and logged.
    Broke(String),
}

/// What a protocol does on its own connections: it reads the opening; the fan-out does the
/// rest, writing a subscriber's stream with the [`Framer`] the opening names.
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for the log: `framewire`, `http`.
    fn name(&self) -> &'static str;

    /// Reads the peer's opening, all within `timeout` (one deadline for every byte, so a peer
    /// sending one byte at a time cannot stretch it), and says what it asks for. An error is
    /// one line naming what was wrong; the protocol may have answered it first (an old peer is
    /// told both wire versions). The connection is then closed.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, Refused>;

    /// What this protocol's TLS port answers a peer that speaks plaintext: by default a
    /// framewire error message telling it to add `--tls`.
    fn plaintext_at_tls_port(&self) -> PlaintextAnswer {
        PlaintextAnswer::framewire()
    }

    /// What a connection that gets no handshake slot is told before it is closed (`why`: the
    /// server's log line): by default a framewire error message, `busy: ` and `why`.
    fn busy(&self, why: &str) -> Vec<u8> {
        crate::tls::framewire_error(&format!("busy: {why}"))
    }
}

/// Reads exactly `buf.len()` bytes before `deadline`, or says how many arrived before the
/// stream ended. The deadline covers the whole read, so a peer sending one byte at a time
/// (slowloris) cannot stretch it.
pub(crate) fn read_full(stream: &mut Conn, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
