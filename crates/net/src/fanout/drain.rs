//! When a subscriber's socket can take its next packet without the packet queueing behind older
//! ones, and the pace the kernel sends it at.

use super::*;

/// How long a delivery-rate sample counts toward the link-rate estimate: the estimate is the
/// highest sample of the last one to two windows (TCP's own samples run low while the sender
/// idles between frames, so the highest recent one is the link's rate).
pub(super) const RATE_WINDOW: Duration = Duration::from_secs(2);

/// The longest pause between two looks at a draining socket's queue; a pause shorter than
/// `POLL_SLEEP_MIN` (a fast link: loopback) only yields, as a sleep would oversleep it.
pub(super) const POLL_MAX: Duration = Duration::from_millis(5);
pub(super) const POLL_SLEEP_MIN: Duration = Duration::from_micros(50);

/// Decides when a subscriber's socket can take its next packet without the packet queueing
/// behind older ones (in the kernel's send buffer or a narrow link's queue), where the
/// newest-wins slot could no longer replace them.
///
/// The rule: write once the bytes not yet acknowledged (`SIOCOUTQ`: unsent plus in flight)
/// are at most one bandwidth-delay product (link rate x smallest round trip, from `TCP_INFO`)
/// plus two segments, or what leaves within [`QUEUE_BUDGET`] if that is more. With that much in flight the bytes ahead of the bottleneck take about as
/// long to cross it as the new packet takes to reach it, so the link stays busy and nothing
/// waits in a queue; waiting for a full drain would idle the link one round trip per packet.
/// A socket that drains at once (loopback, a fast network) is never waited for.
///
/// The socket is also paced: the kernel spaces its packets out at [`PACE_HEADROOM`] times the
/// rate its writes drain at (`SO_MAX_PACING_RATE`; Linux paces TCP itself, with no `fq` qdisc,
/// since 4.13), instead of sending each packet in one burst that waits in the bottleneck's
/// queue. That matters when traffic flows the other way too (a call): the peer's
/// acknowledgements wait in that same queue, behind the burst, and the rule above waits for
/// them; paced, the queue stays short and they pass. The headroom lets the estimate grow when
/// the link widens (a paced write drains at the pace, which is then the next estimate). A write
/// found drained at the first look (a fast link, or a subscriber that adapts: it times each
/// drain to its end before this rule looks), or one at [`UNPACED_DRAIN`] or faster, lifts the
/// cap for a window or two, so one drain slowed by a busy machine cannot pace a fast link down.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// The link-rate estimate from `TCP_INFO`'s delivery rate (bytes/s), for the allowance.
    pub(super) delivered: WindowMax,
    /// The link-rate estimate from how fast writes drain (bytes/s), for pacing.
    pub(super) drained: WindowMax,
    /// The pacing cap set on the socket (bytes/s; 0: none yet).
    pub(super) paced: u64,
}

/// The highest sample of the current and the previous [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub(super) struct WindowMax {
    pub(super) now: u64,
    pub(super) before: u64,
    pub(super) start: Option<Instant>,
}

impl WindowMax {
    /// Takes in a sample (0: none); returns the estimate (0: unknown).
    fn add(&mut self, sample: u64, now: Instant) -> u64 {
        match self.start {
            Some(start) if now.duration_since(start) < RATE_WINDOW => {}
            _ => {
                self.before = self.now;
                self.now = 0;
                self.start = Some(now);
            }
        }
        self.now = self.now.max(sample);
        self.now.max(self.before)
    }
}

/// How fast a drain went: the bytes acknowledged from the first look at the queue (just after
/// a write) to the last, over the time between them less one round trip (the first byte's ack
/// comes back no sooner). The last byte of a write is acknowledged no sooner than it crosses
/// the bottleneck, so a drain never reads much faster than the link, however its
/// acknowledgements bunch up on the way back; it reads slower when they were held up.
#[derive(Debug, Default)]
pub(super) struct DrainClock {
    pub(super) first: Option<(usize, Instant)>,
    pub(super) last: Option<(usize, Instant)>,
}

impl DrainClock {
    fn look(&mut self, queued: usize, now: Instant) {
        if self.first.is_none() {
            self.first = Some((queued, now));
        } else {
            self.last = Some((queued, now));
        }
    }

    /// Bytes per second, when enough bytes drained to tell; unbounded ([`u64::MAX`]) when a
    /// write of `written` bytes had all but a few KB gone by the first look (loopback, a fast
    /// network, or a write the caller waited to drain).
    fn rate(&self, written: usize, rtt: Duration) -> Option<u64> {
        if written >= DRAIN_CLOCK_MIN_BYTES && self.first?.0 < DRAIN_CLOCK_MIN_BYTES {
            return Some(u64::MAX);
        }
        let ((q0, t0), (q1, t1)) = (self.first?, self.last?);
        let secs = t1.duration_since(t0).saturating_sub(rtt).as_secs_f64();
        (q0.saturating_sub(q1) >= DRAIN_CLOCK_MIN_BYTES && secs >= 0.001)
            .then(|| ((q0 - q1) as f64 / secs) as u64)
    }
}

/// The fewest bytes a [`DrainClock`] sample spans (a token bucket passes its first few KB at once).
pub(super) const DRAIN_CLOCK_MIN_BYTES: usize = 8 * 1024;

impl Drain {
    /// Returns once the socket can take a packet, the slot is closed (the goodbye goes out at
    /// once), or the kernel cannot say; `Err` when its queue did not shrink for `write_timeout`.
    /// `written` is the size of the packet written last (0: none), whose drain this wait sees.
    pub(crate) fn wait(
        &mut self,
        stream: &TcpStream,
        slot: &Latest<Arc<Packet>>,
        written: usize,
        write_timeout: Duration,
    ) -> Result<(), ()> {
        let mut smallest = usize::MAX;
        let mut moved = Instant::now();
        let mut clock = DrainClock::default();
        let mut rtt = Duration::ZERO;
        loop {
            let Ok(queued) = tcp_queue::unacked_bytes(stream) else {
                return Ok(());
            };
            let now = Instant::now();
            clock.look(queued, now);
            if queued == 0 || slot.is_closed() {
                self.pace(stream, clock.rate(written, rtt), now);
                return Ok(());
            }
            let Ok(info) = tcp_queue::tcp_info(stream) else {
                return Ok(());
            };
            rtt = info.min_rtt;
            let rate = self.delivered.add(info.delivery_rate, now);
            let allowed = in_flight_allowed(&info, rate);
            if queued <= allowed {
                self.pace(stream, clock.rate(written, rtt), now);
                return Ok(());
            }
            if queued < smallest {
                smallest = queued;
                moved = now;
            } else if now.duration_since(moved) >= write_timeout {
                return Err(());
            }
            // About the time the excess takes to leave at the link's rate, within bounds.
            let pause = if rate > 0 {
                Duration::from_secs_f64((queued - allowed) as f64 / rate as f64)
            } else {
                POLL_MAX
            };
            if pause < POLL_SLEEP_MIN {
                thread::yield_now();
            } else {
                thread::sleep(pause.min(POLL_MAX));
            }
        }
    }

    /// Takes in how fast the drain that just ended went (`None`: it cannot tell), and caps the
    /// socket's sending rate at [`PACE_HEADROOM`] times the estimate; an unbounded estimate
    /// (a write drained at once in the last window or two) lifts the cap.
    fn pace(&mut self, stream: &TcpStream, drained: Option<u64>, now: Instant) {
        // A drain as fast as a LAN's needs no pacing: it is as good as unbounded.
        let sample = match drained {
            Some(rate) if rate >= UNPACED_DRAIN => u64::MAX,
            other => other.unwrap_or(0),
        };
        let rate = self.drained.add(sample, now);
        if rate == 0 || (rate == u64::MAX && self.paced == 0) {
            return;
        }
        // Saturates: an unbounded estimate asks for no cap (`!0`).
        let want = (rate as f64 * PACE_HEADROOM) as u64;
        // Setting it again only when it moved by more than 1/16.
        if self.paced.abs_diff(want) > self.paced / 16
            && tcp_queue::set_max_pacing_rate(stream, want).is_ok()
        {
            self.paced = want;
        }
    }
}

/// A drain at least this fast (bytes/s: 1 Gbit/s) lifts the pacing cap. Pacing keeps a burst
/// from waiting in a narrow link's queue; on a link this fast a frame crosses within a
/// millisecond, and a cap set from one slow drain (a busy machine, a reader not yet reading)
/// would hold a fast link down: paced, its drains read no faster than the pace.
pub(super) const UNPACED_DRAIN: u64 = 125_000_000;

/// How far above the drain-rate estimate a subscriber's socket is paced. The estimate reads
/// about the link's rate (0.9-1.1 times it through netbed's token bucket, which passes a
/// write's first few KB at once); paced above the link, the bottleneck's queue grows by
/// (1 - link / pace) of a write, about a tenth.
pub(super) const PACE_HEADROOM: f64 = 1.1;

/// Bytes that may be unacknowledged when the next packet is written: one bandwidth-delay
/// product at `rate` bytes/s and the smallest round trip seen, plus two segments (an ack the
/// peer delays, a segment on the wire); or, if more, what leaves within [`QUEUE_BUDGET`] at
/// that rate.
pub(super) fn in_flight_allowed(info: &tcp_queue::TcpInfo, rate: u64) -> usize {
    let rtt = if info.min_rtt.is_zero() {
        info.srtt
    } else {
        info.min_rtt
    };
    let bdp = (rate as f64 * rtt.as_secs_f64()) as usize;
    let budget = (rate as f64 * QUEUE_BUDGET.as_secs_f64()) as usize;
    (bdp + 2 * info.mss.max(536) as usize).max(budget)
}

/// How long a packet may wait behind the bytes still queued: a queue that leaves within this
/// at the link's rate is written behind at once. On a fast link (loopback, a LAN) a frame of
/// several MB drains in well under it, and waiting for the drain would leave the link idle
/// while the next frame is written; on a narrow one (a few MB/s) it is under two segments, so
/// the bandwidth-delay rule above decides alone.
pub(super) const QUEUE_BUDGET: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_reads_the_bytes_acknowledged_over_the_time_less_one_round_trip() {
        let t0 = Instant::now();
        let mut clock = DrainClock::default();
        clock.look(60_000, t0);
        assert_eq!(
            clock.rate(60_000, Duration::ZERO),
            None,
            "one look tells nothing"
        );
        clock.look(30_000, t0 + Duration::from_millis(20));
        clock.look(3_000, t0 + Duration::from_millis(50));
        // 57 000 bytes in 50 ms, 10 of them the round trip: 57 000 / 0.040 s.
        assert_eq!(
            clock.rate(60_000, Duration::from_millis(10)),
            Some(1_425_000)
        );
    }

    #[test]
    fn a_drain_too_small_or_too_short_to_tell_gives_no_rate() {
        let t0 = Instant::now();
        let mut small = DrainClock::default();
        small.look(5_000, t0);
        small.look(0, t0 + Duration::from_millis(20));
        assert_eq!(small.rate(5_000, Duration::ZERO), None, "under 8 KiB");
        let mut quick = DrainClock::default();
        quick.look(60_000, t0);
        quick.look(0, t0 + Duration::from_millis(10));
        assert_eq!(
            quick.rate(60_000, Duration::from_millis(10)),
            None,
            "all round trip"
        );
    }

    #[test]
    fn a_write_gone_by_the_first_look_reads_unbounded() {
        let t0 = Instant::now();
        let mut fast = DrainClock::default();
        fast.look(0, t0);
        assert_eq!(fast.rate(60_000, Duration::ZERO), Some(u64::MAX));
        assert_eq!(
            fast.rate(0, Duration::ZERO),
            None,
            "nothing written: nothing to tell"
        );
    }

    #[test]
    fn the_estimate_is_the_highest_sample_of_this_window_and_the_last() {
        let t0 = Instant::now();
        let mut max = WindowMax::default();
        assert_eq!(max.add(0, t0), 0, "no sample: unknown");
        assert_eq!(max.add(500, t0), 500);
        assert_eq!(max.add(300, t0 + Duration::from_millis(100)), 500);
        // The next window keeps the last one's highest.
        assert_eq!(max.add(200, t0 + RATE_WINDOW), 500);
        // The one after that forgets it.
        assert_eq!(max.add(100, t0 + RATE_WINDOW * 2), 200);
    }

    #[test]
    fn a_queue_that_leaves_within_the_budget_is_written_behind_and_a_narrow_link_keeps_its_bdp() {
        let info = |rtt_us: u64| tcp_queue::TcpInfo {
            mss: 1448,
            srtt: Duration::from_micros(rtt_us),
            min_rtt: Duration::from_micros(rtt_us),
            delivery_rate: 0,
        };
        // Loopback: 8 GB/s and 10 us. One ms of it (8 MB) beats the BDP (80 KB).
        assert_eq!(in_flight_allowed(&info(10), 8_000_000_000), 8_000_000);
        // A narrow link: 1.1 MB/s and 100 ms. The BDP and two segments, as before.
        assert_eq!(
            in_flight_allowed(&info(100_000), 1_100_000),
            110_000 + 2 * 1448
        );
        // The same link with no delay: two segments (1.1 KB of budget is less).
        assert_eq!(in_flight_allowed(&info(0), 1_100_000), 2 * 1448);
        // No rate known yet: two segments.
        assert_eq!(in_flight_allowed(&info(10), 0), 2 * 1448);
    }
}
