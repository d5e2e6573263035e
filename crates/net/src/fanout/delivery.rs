//! One subscriber's thread: its start, then the newest packet of its slot each time its socket
//! can take one, its moves along the ladder, and its goodbye.

use super::*;

/// One viewer's deliveries: its socket, and the rendition its packets are in.
pub(super) struct Delivery<'a> {
    pub(super) stream: &'a mut Conn,
    pub(super) viewer: &'a Viewer,
    pub(super) shared: &'a Shared,
    pub(super) placement: Placement,
    /// How the protocol writes to it ([`Opening::Stream`]).
    pub(super) style: u8,
}

impl Delivery<'_> {
    /// Starts the stream (and says the viewer joined, one of `viewers`, once its start is
    /// written), then sends the newest packet whenever there is one (moving the viewer along
    /// the ladder when it `adapts`), until the viewer goes or the server stops. Returns why it
    /// stopped when that was an error (not a plain close or a shutdown).
    pub(super) fn run(&mut self, adapts: bool, viewers: usize) -> Option<String> {
        let write_timeout = self.shared.config.write_timeout;
        let protocol = &*self.shared.protocol;
        if let Err(e) = protocol.write_start(self.stream, &self.placement, self.style) {
            return write_error(&e, write_timeout);
        }
        (self.shared.on_event)(ServerEvent::Joined {
            peer: self.viewer.peer,
            viewers,
            placement: self.placement,
            adapts,
        });
        let mut drain = Drain::default();
        // The bytes of the last packet written, for the drain rule's pacing.
        let mut last_written = 0;
        let mut adapter = adapts.then(|| Adapter::new(Instant::now(), self.counters()));
        loop {
            // Take the next packet only once the socket can carry it without queueing it
            // behind older ones; meanwhile newer packets replace older ones in the slot.
            if drain
                .wait(
                    self.stream.tcp(),
                    &self.viewer.slot,
                    last_written,
                    write_timeout,
                )
                .is_err()
            {
                return Some(stalled(write_timeout));
            }
            // A packet published before the shutdown still goes out, then the goodbye.
            let packet = match self.viewer.slot.wait(None) {
                Waited::Value(p) => p,
                Waited::Closed => {
                    let said = protocol.write_end(self.stream, None);
                    if said.is_ok() {
                        // Closing with the goodbye still queued could lose it: a peer's
                        // unread bytes make the close a reset.
                        wait_drained(self.stream.tcp(), SHUTDOWN_GRACE);
                    }
                    return said
                        .err()
                        .filter(|e| !is_peer_gone(e))
                        .map(|e| format!("saying goodbye: {e}"));
                }
                Waited::Timeout => continue,
            };
            let written = Instant::now();
            if let Err(e) = self.write(&packet) {
                return write_error(&e, write_timeout);
            }
            last_written = packet.payload.len();
            if let Some(adapter) = &mut adapter {
                self.adapt(adapter, written, packet.payload.len());
            }
        }
    }

    /// Writes the one packet an [`Opening::One`] asked for, once there is one.
    pub(super) fn run_once(&mut self, viewers: usize) -> Option<String> {
        (self.shared.on_event)(ServerEvent::Joined {
            peer: self.viewer.peer,
            viewers,
            placement: self.placement,
            adapts: false,
        });
        let Waited::Value(packet) = self.viewer.slot.wait(None) else {
            return None;
        };
        let protocol = &*self.shared.protocol;
        let placement = self.shared.roster.ladder.placement(packet.rendition);
        if let Err(e) = protocol.write_one(self.stream, &placement, &packet) {
            return write_error(&e, self.shared.config.write_timeout);
        }
        self.viewer.sent.fetch_add(1, Ordering::Relaxed);
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Writes `packet`, announcing its rendition first when the viewer just moved to it.
    fn write(&mut self, packet: &Packet) -> io::Result<()> {
        let protocol = &*self.shared.protocol;
        if packet.rendition != self.placement.id {
            let left = self.placement.id;
            self.placement = self.shared.roster.ladder.placement(packet.rendition);
            self.viewer.on.store(packet.rendition, Ordering::Relaxed);
            self.shared.roster.ladder.leave(left);
            protocol.write_switch(self.stream, &self.placement)?;
        }
        let report = lock(&self.viewer.report).take();
        if let Some(report) = report {
            protocol.write_report(self.stream, &report)?;
        }
        protocol.write_packet(self.stream, packet, self.style)?;
        let sent = self.viewer.sent.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
        lock(&self.viewer.rate).record(sent, Instant::now());
        let bytes = packet.payload.len() as u64;
        self.viewer.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn counters(&self) -> Counters {
        Counters {
            offered: self.viewer.offered.load(Ordering::Relaxed),
            sent: self.viewer.sent.load(Ordering::Relaxed),
            bytes: self.viewer.bytes.load(Ordering::Relaxed),
        }
    }

    /// Times the drain of the packet of `bytes` written at `written`, judges the viewer's
    /// link, and starts a move when it should move.
    fn adapt(&mut self, adapter: &mut Adapter, written: Instant, bytes: usize) {
        if let Some(took) = drain_time(self.stream.tcp(), &self.viewer.slot, written)
            && let Ok(info) = tcp_queue::tcp_info(self.stream.tcp())
        {
            adapter.observe_drain(bytes + 64, took, info.min_rtt, Instant::now());
        }
        let now = Instant::now();
        // Once a window, and not while moving (the next packet is the new rendition's).
        if !adapter.due(now) || self.viewer.to.load(Ordering::Relaxed) != self.placement.id {
            return;
        }
        let ladder = &self.shared.roster.ladder;
        let sizes = ladder.rung_sizes();
        let Some(to) = adapter.decide(now, self.counters(), self.placement.id, &sizes) else {
            return;
        };
        ladder.enter(to.to);
        self.viewer.to.store(to.to, Ordering::Relaxed);
        (self.shared.on_event)(ServerEvent::Moved {
            peer: self.viewer.peer,
            from: self.placement,
            to: ladder.placement(to.to),
            link: to.link,
        });
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
pub(super) fn wait_drained(stream: &TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    while tcp_queue::unacked_bytes(stream).is_ok_and(|n| n > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
}

/// How often [`drain_time`] looks at the socket's queue.
pub(super) const DRAIN_POLL: Duration = Duration::from_micros(500);

/// Why a write ended the viewer's stream: nothing for a peer that went away.
pub(super) fn write_error(e: &io::Error, write_timeout: Duration) -> Option<String> {
    if is_peer_gone(e) {
        None
    } else if is_timeout(e) {
        Some(stalled(write_timeout))
    } else {
        Some(format!("write failed: {e}"))
    }
}

pub(super) fn stalled(write_timeout: Duration) -> String {
    format!(
        "stalled: a write blocked for more than {:.1}s",
        write_timeout.as_secs_f64()
    )
}
