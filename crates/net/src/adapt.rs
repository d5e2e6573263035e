//! Moves one subscriber along the quality ladder by what its link carries: the decisions only,
//! fed with counters and the kernel's delivery-rate samples, so they are tested without a socket.
//!
//! Once a second the subscriber's last second is judged:
//! - **Saturated** (it took fewer than [`SATURATED`] of the frames offered to it: the drain
//!   rule held the rest back, so the link is full; or, an inter-frame codec's deltas waiting
//!   in order behind its unsent packet, [`BACKLOG`] of them or more wait now): it moves down
//!   at once to the best rung whose bytes per second fit [`DOWN_FILL`] of what it actually
//!   carried.
//! - **Not saturated** for [`CLIMB_AFTER`] since its last move: it moves up to the best rung
//!   whose bytes per second fit [`UP_FILL`] of the link's rate. Each frame leaves as a burst
//!   and the link passes it at its own rate, so the time from writing a frame to its last
//!   byte's acknowledgement, less the smallest round trip, says the rate also while the link
//!   is not full: a link that widened shows without filling it. The rate is the median of the
//!   last two seconds' frames. (The kernel's own delivery-rate samples do not serve here: a
//!   frame's first few segments pass a token-bucket link at the speed of the wire, and a
//!   sample of them reads tens of times the link's rate. For the same reason a frame smaller
//!   than [`MIN_SAMPLE_BYTES`], such as an H.264 delta, is no sample: an H.264 stream's
//!   samples are its keyframes that drain within a frame interval.) Without a sample it
//!   climbs one rung, a probe, only after [`PROBE_AFTER`] on its rung.
//! - A climb that has to come back down within [`FAILED_CLIMB`] holds further climbs back
//!   for a while (2 s, doubling to [`MAX_HOLD`]), so a rate sample that ran high costs one
//!   short dip, not a see-saw; the hold stays short enough to climb back within 5 s.
//!
//! A rung's bytes per frame are the ladder's measured average ([`Ladder::rung_sizes`]); the
//! frame rate is the rate frames were offered to this subscriber.
//!
//! [`Ladder::rung_sizes`]: framewire_core::Ladder::rung_sizes

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the last window is judged.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// A subscriber that took fewer than this share of the frames offered was held back by its link.
pub(crate) const SATURATED: f64 = 0.85;
/// Packets waiting in a subscriber's slot that say its link is full (deltas wait behind an
/// unsent packet, up to `DELTAS_BEHIND` in the roster; a keyframe's drain on a link that
/// carries the rendition leaves fewer waiting).
pub(crate) const BACKLOG: u64 = 5;
/// Moving down, the new rung may fill this share of what the link carried.
pub(crate) const DOWN_FILL: f64 = 0.8;
/// Moving up, the new rung may fill this share of the link's measured rate.
pub(crate) const UP_FILL: f64 = 0.7;
/// Time without saturation after a move before a climb.
pub(crate) const CLIMB_AFTER: Duration = Duration::from_secs(2);
/// A move down this soon after a climb makes the climb a failed one.
pub(crate) const FAILED_CLIMB: Duration = Duration::from_secs(3);
/// Time on a rung before a climb without a rate sample (one rung, a probe): a link that
/// widened is found within this, and a probe that fails costs a dip this seldom.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(10);
/// The longest hold on climbing after failed climbs.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(3);
/// Bytes a packet costs on the wire besides its payload (headers: framing, TCP, IP).
const OVERHEAD: f64 = 96.0;
/// How long a frame's drain time counts toward the link's rate.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Drain times kept at most (two seconds of 60 fps).
const MAX_SAMPLES: usize = 120;
/// The shortest time a drain counts as taking (timer and polling granularity).
const MIN_DRAIN: Duration = Duration::from_micros(200);
/// The fewest bytes a frame's drain must span to sample the link: a token bucket's burst and
/// TCP's first window pass smaller writes at the speed of the wire.
pub(crate) const MIN_SAMPLE_BYTES: usize = 8 * 1024;

/// The subscriber's totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Frames offered to it (published while it was connected).
    pub offered: u64,
    /// Frames written to its socket.
    pub sent: u64,
    /// Bytes written to its socket.
    pub bytes: u64,
    /// Packets waiting in its slot now (not a total).
    pub waiting: u64,
}

/// A move the subscriber should make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Move {
    /// The rung to move to.
    pub to: usize,
    /// What the link carries, bytes per second, as judged.
    pub link: f64,
}

/// One subscriber's adaptation state. See the module doc.
#[derive(Debug)]
pub(crate) struct Adapter {
    start: (Instant, Counters),
    last_move: Instant,
    last_climb: Option<Instant>,
    hold: Duration,
    hold_until: Option<Instant>,
    /// Recent frames' rates across the link (bytes/s), oldest first.
    rates: VecDeque<(Instant, f64)>,
}

impl Adapter {
    pub(crate) fn new(now: Instant, counters: Counters) -> Adapter {
        Adapter {
            start: (now, counters),
            last_move: now,
            last_climb: None,
            hold: Duration::ZERO,
            hold_until: None,
            rates: VecDeque::new(),
        }
    }

    /// Takes in one frame's drain: `bytes` written, all acknowledged after `took`, on a
    /// connection whose smallest round trip is `min_rtt` (fewer than [`MIN_SAMPLE_BYTES`]:
    /// no sample).
    pub(crate) fn observe_drain(
        &mut self,
        bytes: usize,
        took: Duration,
        min_rtt: Duration,
        now: Instant,
    ) {
        if bytes < MIN_SAMPLE_BYTES {
            return;
        }
        let crossing = took.saturating_sub(min_rtt).max(MIN_DRAIN);
        if self.rates.len() == MAX_SAMPLES {
            self.rates.pop_front();
        }
        self.rates
            .push_back((now, bytes as f64 / crossing.as_secs_f64()));
    }

    /// The median rate of the last [`RATE_WINDOW`]'s frames (0: none).
    pub(crate) fn link_rate(&mut self, now: Instant) -> f64 {
        while self
            .rates
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.rates.pop_front();
        }
        let mut rates: Vec<f64> = self.rates.iter().map(|(_, r)| *r).collect();
        if rates.is_empty() {
            return 0.0;
        }
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    }

    /// Whether the window is [`WINDOW`] old, so [`Adapter::decide`] would judge it.
    pub(crate) fn due(&self, now: Instant) -> bool {
        now.duration_since(self.start.0) >= WINDOW
    }

    /// Judges the window once it is [`WINDOW`] old: where the subscriber on rung `current`
    /// should go, given each rung's bytes per frame (`None`: not measured yet).
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        counters: Counters,
        current: usize,
        sizes: &[Option<f64>],
    ) -> Option<Move> {
        if !self.due(now) {
            return None;
        }
        let (since, before) = self.start;
        let secs = now.duration_since(since).as_secs_f64();
        self.start = (now, counters);
        let offered = (counters.offered - before.offered) as f64 / secs;
        let sent = (counters.sent - before.sent) as f64 / secs;
        let carried = (counters.bytes - before.bytes) as f64 / secs;
        if offered < 1.0 {
            return None;
        }
        tracing::debug!(
            current,
            offered,
            sent,
            carried,
            link = self.link_rate(now),
            ?sizes,
            "judging a subscriber's link"
        );
        let need = |rung: usize| sizes[rung].map(|b| (b + OVERHEAD) * offered);
        let best_within =
            |budget: f64| (0..sizes.len()).find(|&r| need(r).is_some_and(|n| n <= budget));
        if sent < SATURATED * offered || counters.waiting >= BACKLOG {
            let lowest = sizes.len() - 1;
            let to = best_within(DOWN_FILL * carried)
                .unwrap_or(lowest)
                .max((current + 1).min(lowest));
            if to == current {
                return None;
            }
            self.moved(now, false);
            return Some(Move { to, link: carried });
        }
        let held = self.hold_until.is_some_and(|t| now < t);
        if now.duration_since(self.last_move) < CLIMB_AFTER || held || current == 0 {
            return None;
        }
        let link = self.link_rate(now);
        let to = if link > 0.0 {
            best_within(UP_FILL * link).filter(|&r| r < current)?
        } else if now.duration_since(self.last_move) >= PROBE_AFTER {
            current - 1
        } else {
            return None;
        };
        self.moved(now, true);
        Some(Move { to, link })
    }

    fn moved(&mut self, now: Instant, up: bool) {
        self.last_move = now;
        if up {
            self.last_climb = Some(now);
            return;
        }
        let failed = self
            .last_climb
            .take()
            .is_some_and(|t| now.duration_since(t) < FAILED_CLIMB);
        if failed {
            self.hold = (self.hold * 2).clamp(Duration::from_secs(2), MAX_HOLD);
            self.hold_until = Some(now + self.hold);
        } else {
            self.hold = Duration::ZERO;
        }
        // Frames of the new rung measure the link afresh.
        self.rates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three rungs of 40, 24 and 8 KB per frame.
    const SIZES: [Option<f64>; 3] = [Some(40_000.0), Some(24_000.0), Some(8_000.0)];

    /// One second at `fps` offered, `sent` taken, frames of `bytes`.
    fn second(c: &mut Counters, fps: u64, sent: u64, bytes: u64) {
        c.offered += fps;
        c.sent += sent;
        c.bytes += sent * bytes;
    }

    #[test]
    fn a_full_link_moves_down_at_once_to_the_rung_that_fits() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        // A link of 360 KB/s: 9 of 30 top frames a second.
        second(&mut c, 30, 9, 40_000);
        let m = a.decide(t0 + WINDOW, c, 0, &SIZES).expect("moves down");
        assert_eq!(
            m.to, 2,
            "24 KB x 30 = 720 KB/s does not fit 360 KB/s; 8 KB x 30 does"
        );
        assert!((m.link - 360_000.0).abs() < 1.0);
    }

    #[test]
    fn deltas_piling_up_behind_an_unsent_packet_move_it_down_though_it_took_every_frame() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        second(&mut c, 30, 30, 10_000);
        c.waiting = BACKLOG - 1;
        assert_eq!(
            a.decide(t0 + WINDOW, c, 0, &SIZES),
            None,
            "a keyframe draining"
        );
        second(&mut c, 30, 30, 10_000);
        c.waiting = BACKLOG;
        let m = a.decide(t0 + WINDOW * 2, c, 0, &SIZES).expect("moves down");
        assert_eq!(
            m.to, 2,
            "300 KB/s carried: 24 KB x 30 does not fit, the lowest it is"
        );
    }

    #[test]
    fn nothing_moves_before_a_window_or_while_frames_all_go_out() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        second(&mut c, 30, 30, 40_000);
        assert_eq!(a.decide(t0 + WINDOW / 2, c, 0, &SIZES), None);
        assert_eq!(
            a.decide(t0 + WINDOW, c, 0, &SIZES),
            None,
            "on top, all taken"
        );
    }

    #[test]
    fn a_wider_link_climbs_back_after_a_quiet_spell() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        let mut t = t0;
        t += WINDOW;
        a.observe_drain(16_000, Duration::from_millis(8), Duration::ZERO, t);
        second(&mut c, 30, 30, 8_000);
        assert_eq!(
            a.decide(t, c, 2, &SIZES),
            None,
            "climbs only after {CLIMB_AFTER:?}"
        );
        t += WINDOW;
        a.observe_drain(16_000, Duration::from_millis(8), Duration::ZERO, t);
        second(&mut c, 30, 30, 8_000);
        let m = a.decide(t, c, 2, &SIZES).expect("climbs");
        assert_eq!(m.to, 0, "40 KB x 30 = 1.2 MB/s fits 0.7 x 2 MB/s");
    }

    #[test]
    fn small_frames_are_no_sample_and_without_one_a_climb_is_a_rare_probe_of_one_rung() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        let mut t = t0;
        loop {
            t += WINDOW;
            // Small frames cross a token bucket at the wire's speed: they would read 6.7 MB/s.
            a.observe_drain(2_000, Duration::from_micros(300), Duration::ZERO, t);
            assert_eq!(a.link_rate(t), 0.0);
            second(&mut c, 30, 30, 8_000);
            if let Some(m) = a.decide(t, c, 2, &SIZES) {
                assert_eq!(m.to, 1, "one rung up");
                assert!(
                    t.duration_since(t0) >= PROBE_AFTER,
                    "not before {PROBE_AFTER:?}"
                );
                break;
            }
            assert!(t.duration_since(t0) <= PROBE_AFTER, "no probe");
        }
    }

    #[test]
    fn a_failed_climb_holds_the_next_one_back_but_not_beyond_the_cap() {
        let t0 = Instant::now();
        let mut c = Counters::default();
        let mut a = Adapter::new(t0, c);
        let mut t = t0;
        let mut rung = 2;
        let mut climbs = Vec::new();
        // The rate samples run high (2 MB/s) but the link carries 400 KB/s.
        for _ in 0..20 {
            t += WINDOW;
            a.observe_drain(16_000, Duration::from_millis(8), Duration::ZERO, t);
            if rung == 0 {
                second(&mut c, 30, 10, 40_000);
            } else {
                second(&mut c, 30, 30, 8_000);
            }
            if let Some(m) = a.decide(t, c, rung, &SIZES) {
                if m.to < rung {
                    climbs.push(t.duration_since(t0).as_secs());
                }
                rung = m.to;
            }
        }
        assert!(climbs.len() >= 3, "keeps trying: {climbs:?}");
        let gaps: Vec<u64> = climbs.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|&g| g >= 3),
            "held back after a failure: {climbs:?}"
        );
        assert!(
            gaps.iter().all(|&g| g <= 5),
            "but tries within 5 s: {climbs:?}"
        );
    }
}
