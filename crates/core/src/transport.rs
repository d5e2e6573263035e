//! The transport seam: what every protocol does on each side, so that the send and receive
//! paths (the session crate) never name TCP, HTTP or UDP.
//!
//! - The sending side is a [`Publisher`]: one encoded [`Packet`] in, delivered to every
//!   subscriber, the newest packet winning per subscriber.
//! - The receiving side is a [`Subscription`], opened (and reopened after a lost connection) by
//!   a [`Connector`]; its errors say whether a retry may help ([`TransportError::retry`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{BoxError, Placement, StreamInfo};

/// One encoded frame as it travels: shared by every subscriber it goes to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence number, given at capture (a gap is a frame this side never got).
    pub seq: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Whether the packet decodes on its own (every packet of an intra-only codec does).
    pub keyframe: bool,
    /// Which of the sender's renditions it is (see [`Ladder`](crate::Ladder)); 0 is the top rung.
    pub rendition: usize,
    /// The codec's payload.
    pub payload: Vec<u8>,
}

/// The sending side of one protocol: delivers each frame to every subscriber, in the
/// rendition that subscriber is on.
pub trait Publisher: Send + Sync {
    /// What and where, for the log: `framewire on 127.0.0.1:9999`.
    fn describe(&self) -> String;

    /// Hands one frame, encoded in the renditions `packets` hold, to every subscriber: each
    /// gets the packet of its rendition. One still busy with an earlier packet has that one
    /// replaced (newest wins) and counted as dropped. Never blocks on a socket.
    fn publish(&self, packets: &[Arc<Packet>]);

    /// Subscribers served now.
    fn subscribers(&self) -> usize;

    /// Blocks until there is a subscriber, the publisher shuts down, or `timeout` passes;
    /// returns the number of subscribers.
    fn wait_for_subscriber(&self, timeout: Duration) -> usize;

    /// Packets some subscriber missed because it was still busy, over the publisher's life.
    fn dropped_total(&self) -> u64;

    /// Blocks until every subscriber has taken the packet handed to it last (it is on its
    /// way: its link carried the one before), the publisher stops, or `deadline` passes;
    /// returns whether none waits. A producer that would rather not have packets replaced
    /// unsent (and counted as dropped) waits here before its next frame. By default at once.
    fn wait_taken(&self, deadline: Instant) -> bool {
        let _ = deadline;
        true
    }

    /// Says goodbye to every subscriber and stops. Idempotent.
    fn shutdown(&self);

    /// Tells every subscriber how this side shows the stream it sends this side (a two-way
    /// call), before its next packet; a newer report replaces one not sent yet. By default
    /// nothing: a one-way publisher has no such stream.
    fn report(&self, report: PeerReport) {
        let _ = report;
    }
}

/// What the receiving end of a stream says it shows, sent back to the sender (by a side of a
/// two-way call, inside its own stream): figures over about the last second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerReport {
    /// Frames per second shown.
    pub fps: f64,
    /// Mean time from capture to decoded, when a frame was shown.
    pub latency: Option<Duration>,
}

/// What [`Subscription::recv`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A packet, in the buffer handed to `recv`.
    Packet {
        /// Bytes the message took on the wire, framing included.
        bytes: u64,
    },
    /// The sender moved this subscriber to another rendition; the packets that follow are it.
    Switched(Placement),
    /// The sender ended the stream on purpose, with its reason when it gave one.
    End {
        /// The sender's reason (e.g. "server full: ...").
        reason: Option<String>,
    },
    /// The sender says how it shows the stream this side sends it (a two-way call).
    Report(PeerReport),
}

/// The receiving side of one connection.
pub trait Subscription: Send {
    /// The stream as the sender announced it (and as the last switch changed it).
    fn stream(&self) -> StreamInfo;

    /// The rendition the packets are now, and its place on the sender's ladder.
    fn placement(&self) -> Placement;

    /// The sender's frame rate (0 = unpaced), informational.
    fn fps(&self) -> f64;

    /// Who sends, for messages: `server 127.0.0.1:9999`.
    fn peer(&self) -> String;

    /// Where in the stream the last message ended, for messages: `byte 123456`.
    fn position(&self) -> String;

    /// Blocks for the next packet, filling `packet` (its buffers are reused).
    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError>;

    /// Something another thread may call to end a blocked [`Subscription::recv`] at once.
    fn closer(&self) -> Closer;
}

/// Ends a blocked receive from another thread (shuts the socket down).
pub type Closer = Arc<dyn Fn() + Send + Sync>;

/// Opens a [`Subscription`]; called again to reconnect.
pub trait Connector: Send + Sync {
    /// Where it connects, for messages.
    fn describe(&self) -> String;

    /// Connects and completes the handshake.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError>;
}

/// One side of a two-way call, whatever carries it: it connects to the peer's stream (a
/// [`Connector`]: a listener waits for the next call, a caller dials), and sends its own
/// stream through its sending half.
pub trait CallSide: Connector {
    /// The sending half, for the send path's publisher list.
    fn sending(&self) -> Arc<dyn Publisher>;

    /// Hangs up: the peer gets the goodbye, and a listener takes no more calls.
    fn hang_up(&self);

    /// A listening side: where it takes calls (`udp://` before a datagram address), and its
    /// TLS certificate's fingerprint (`sha256:HEX`) when it has one. `None` for a caller.
    fn listening(&self) -> Option<(String, Option<String>)> {
        None
    }
}

/// A transport failure, and whether trying again may help. It reads as the failure it wraps.
#[derive(Debug)]
pub struct TransportError {
    /// True for a lost connection (the peer died, restarted or went silent); false for a peer
    /// that broke the protocol, which is not worth retrying.
    pub retry: bool,
    /// What happened, naming the peer and where.
    pub source: BoxError,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl TransportError {
    /// A lost connection, worth retrying.
    pub fn lost(source: impl Into<BoxError>) -> TransportError {
        TransportError {
            retry: true,
            source: source.into(),
        }
    }

    /// A failure a retry would not fix.
    pub fn fatal(source: impl Into<BoxError>) -> TransportError {
        TransportError {
            retry: false,
            source: source.into(),
        }
    }
}
