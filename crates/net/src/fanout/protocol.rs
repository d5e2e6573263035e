//! What a protocol on the fan-out supplies: its reading of a connection's request (an
//! [`Opening`]) and how its start, switches, packets, reports and goodbye are written; and the
//! reads and writes every protocol shares.

use std::io::{self, IoSlice, Read};
use std::time::{Duration, Instant};

use framewire_core::{Packet, PeerReport, Placement, Request};

use crate::conn::Conn;
use crate::tls::PlaintextAnswer;

/// What a connection asked for, as its protocol read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A subscriber: packets of the rendition it asks for, until it or the stream goes. `style`
    /// is handed back to [`Protocol::write_start`] and [`Protocol::write_packet`]: how the
    /// protocol writes to it, in the protocol's own numbering (HTTP: MJPEG parts with or without
    /// early headers; framewire has one style, 0).
    Stream {
        /// What it asks for.
        request: Request,
        /// How the protocol writes to it.
        style: u8,
    },
    /// One packet of the rendition it asks for, written by [`Protocol::write_one`], then the
    /// connection closes (HTTP's snapshot).
    One(Request),
    /// The protocol answered it in full (HTTP: the page, the stats); it is closed quietly.
    Answered,
}

/// What a protocol does on its own connections; the fan-out does the rest.
///
/// A connection goes: [`read_request`](Protocol::read_request), then either
/// [`write_start`](Protocol::write_start) or a refusal by [`write_end`](Protocol::write_end);
/// then packets, each rendition change announced by [`write_switch`](Protocol::write_switch)
/// before its first packet; then the goodbye ([`write_end`](Protocol::write_end)). A connection
/// that asked for one packet gets [`write_one`](Protocol::write_one) instead of all that.
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for the log: `framewire`, `http`.
    fn name(&self) -> &'static str;

    /// Reads the peer's opening, all within `timeout` (one deadline for every byte, so a peer
    /// sending one byte at a time cannot stretch it), and says what it asks for. An error is
    /// one line naming what was wrong; the protocol may have answered it first (an old peer is
    /// told both wire versions). The connection is then closed.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, String>;

    /// Answers the request: the stream starts in `placement`.
    fn write_start(&self, stream: &mut Conn, placement: &Placement, style: u8) -> io::Result<()>;

    /// Says that the packets that follow are `placement`'s.
    fn write_switch(&self, stream: &mut Conn, placement: &Placement) -> io::Result<()>;

    /// Writes one packet.
    fn write_packet(&self, stream: &mut Conn, packet: &Packet, style: u8) -> io::Result<()>;

    /// Tells the subscriber how this side shows the stream the subscriber sends it (a two-way
    /// call), before its next packet. A protocol without a way to say it writes nothing.
    fn write_report(&self, stream: &mut Conn, report: &PeerReport) -> io::Result<()> {
        let _ = (stream, report);
        Ok(())
    }

    /// Says goodbye: the stream ended (`None`), or the subscriber is refused (`Some(reason)`,
    /// e.g. the server is full, or it asked for what cannot be made), which may come instead
    /// of [`write_start`](Protocol::write_start).
    fn write_end(&self, stream: &mut Conn, error: Option<&str>) -> io::Result<()>;

    /// What this protocol's TLS port answers a peer that speaks plaintext: by default a
    /// framewire error message telling it to add `--tls`.
    fn plaintext_at_tls_port(&self) -> PlaintextAnswer {
        PlaintextAnswer::framewire()
    }

    /// Writes the one packet an [`Opening::One`] asked for, whole: by default its start, the
    /// packet and the goodbye.
    fn write_one(
        &self,
        stream: &mut Conn,
        placement: &Placement,
        packet: &Packet,
    ) -> io::Result<()> {
        self.write_start(stream, placement, 0)?;
        self.write_packet(stream, packet, 0)?;
        self.write_end(stream, None)
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

/// Writes header and payload with as few syscalls as the kernel allows, no copy.
pub(crate) fn write_message(stream: &mut Conn, header: &[u8], payload: &[u8]) -> io::Result<()> {
    write_parts(stream, &mut [IoSlice::new(header), IoSlice::new(payload)])
}

/// Writes every slice, in order, with as few syscalls as the kernel allows, no copy (plain
/// TCP), or sealed into TLS records ([`Conn::write_parts`]).
pub(crate) fn write_parts(stream: &mut Conn, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    stream.write_parts(slices)
}
