//! A stream subscriber's [`Outlet`]: its protocol's [`Framer`] writing to its socket, the
//! drain rule deciding when the socket can take the next packet, and the drain's timing as
//! what it knows of its link.

use super::*;
use crate::roster::{Link, Outlet};
use framewire_wire::framer::Framer;

/// One stream subscriber's way out.
pub(super) struct StreamOutlet<'a> {
    pub(super) stream: &'a mut Conn,
    pub(super) framer: Box<dyn Framer>,
    pub(super) write_timeout: Duration,
    /// Whether its link is judged (timing each drain to its end costs a poll per packet).
    pub(super) adapts: bool,
    drain: Drain,
    /// The bytes of the last packet written, for the drain rule's pacing.
    last_written: usize,
    /// What goes before a payload (a switch, a report, the packet's own head) and after it.
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl<'a> StreamOutlet<'a> {
    pub(super) fn new(
        stream: &'a mut Conn,
        framer: Box<dyn Framer>,
        write_timeout: Duration,
        adapts: bool,
    ) -> StreamOutlet<'a> {
        StreamOutlet {
            stream,
            framer,
            write_timeout,
            adapts,
            drain: Drain::default(),
            last_written: 0,
            head: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Writes what the head holds, and empties it.
    fn flush_head(&mut self) -> io::Result<()> {
        let written = self.stream.write_all(&self.head);
        self.head.clear();
        written
    }
}

impl Outlet for StreamOutlet<'_> {
    fn start(&mut self, at: &Placement) -> io::Result<()> {
        self.framer.start(at, &mut self.head);
        self.flush_head()
    }

    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        // Take the next packet only once the socket can carry it without queueing it behind
        // older ones; meanwhile newer packets replace older ones in the slot.
        self.drain
            .wait(
                self.stream.tcp(),
                slot,
                self.last_written,
                self.write_timeout,
            )
            .map_err(|()| stalled(self.write_timeout))
    }

    /// Kept in the head: it goes out in one write with the packet that follows.
    fn switch(&mut self, to: &Placement) -> io::Result<()> {
        self.framer.switch(to, &mut self.head);
        Ok(())
    }

    fn send(&mut self, packet: &Packet, report: Option<&PeerReport>) -> io::Result<()> {
        if let Some(report) = report {
            self.framer.report(report, &mut self.head);
        }
        self.framer.packet(packet, &mut self.head, &mut self.tail);
        let written = self.stream.write_parts(&mut [
            IoSlice::new(&self.head),
            IoSlice::new(&packet.payload),
            IoSlice::new(&self.tail),
        ]);
        self.head.clear();
        self.tail.clear();
        self.last_written = packet.payload.len();
        written
    }

    fn end(&mut self, error: Option<&str>) -> io::Result<()> {
        self.framer.end(error, &mut self.head);
        self.flush_head()?;
        // Closing with the goodbye still queued could lose it: a peer's unread bytes make the
        // close a reset.
        wait_drained(self.stream.tcp(), SHUTDOWN_GRACE);
        Ok(())
    }

    fn left(&mut self) -> io::Result<()> {
        self.framer.left(&mut self.head);
        self.flush_head()
    }

    fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// How long the packet took to drain, against the smallest round trip.
    fn link(
        &mut self,
        slot: &Latest<Arc<Packet>>,
        ours: Counters,
        sent_at: Instant,
    ) -> Option<Link> {
        if !self.adapts {
            return None;
        }
        let drain = drain_time(self.stream.tcp(), slot, sent_at)
            .zip(tcp_queue::tcp_info(self.stream.tcp()).ok())
            .map(|(took, info)| (self.last_written + 64, took, info.min_rtt));
        Some(Link {
            drain,
            counters: ours,
        })
    }

    fn failed(&self, e: &io::Error) -> Option<String> {
        write_error(e, self.write_timeout)
    }
}

/// How long after `written` the socket's queue emptied (every byte acknowledged), polling it;
/// `None` when a newer packet arrives first (the link is busy), the slot closes, a second
/// passes, or the kernel cannot say.
pub(super) fn drain_time(
    stream: &TcpStream,
    slot: &Latest<Arc<Packet>>,
    written: Instant,
) -> Option<Duration> {
    loop {
        if tcp_queue::unacked_bytes(stream).ok()? == 0 {
            return Some(written.elapsed());
        }
        if slot.is_closed() || written.elapsed() > Duration::from_secs(1) {
            return None;
        }
        // A newer packet ends the wait at once: it goes out without delay.
        if slot.wait_full(Instant::now() + DRAIN_POLL) {
            return None;
        }
    }
}

/// Waits until every byte written to `stream` is acknowledged, or `limit` passes, or the
/// kernel cannot say.
pub(crate) fn wait_drained(stream: &TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    while tcp_queue::unacked_bytes(stream).is_ok_and(|n| n > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
}

/// How often [`drain_time`] looks at the socket's queue.
pub(super) const DRAIN_POLL: Duration = Duration::from_micros(500);

/// Why a write ended the viewer's stream: nothing for a peer that went away.
pub(crate) fn write_error(e: &io::Error, write_timeout: Duration) -> Option<String> {
    if is_peer_gone(e) {
        None
    } else if is_timeout(e) {
        Some(stalled(write_timeout))
    } else {
        Some(format!("write failed: {e}"))
    }
}

pub(crate) fn stalled(write_timeout: Duration) -> String {
    format!(
        "stalled: a write blocked for more than {:.1}s",
        write_timeout.as_secs_f64()
    )
}
