//! Pacing datagrams: a token bucket that says how long each datagram waits to leave at a
//! rate, so that a frame crosses a narrow link as a stream rather than as one burst that waits
//! in the bottleneck's queue. Time is passed in; the caller sleeps.

use std::time::{Duration, Instant};

/// Datagrams that may leave back to back.
pub const PACE_BURST: usize = 4;
/// A wait shorter than this is not slept: it is owed, and the next datagram waits for it.
pub const MIN_SLEEP: Duration = Duration::from_micros(200);

/// A token bucket: how long each datagram waits to leave at a rate.
#[derive(Debug)]
pub struct Pacer {
    /// Bytes that may leave now (negative: owed).
    tokens: f64,
    burst: f64,
    last: Instant,
}

impl Pacer {
    /// A full bucket of `burst` bytes at `now`.
    pub fn new(burst: usize, now: Instant) -> Pacer {
        Pacer {
            tokens: burst as f64,
            burst: burst as f64,
            last: now,
        }
    }

    /// How long to wait before `bytes` leave at `rate` bytes/s (0: unpaced), taking them
    /// from the bucket; a wait under [`MIN_SLEEP`] is zero (and owed).
    pub fn wait(&mut self, bytes: usize, rate: f64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if rate <= 0.0 {
            self.tokens = self.burst;
            return Duration::ZERO;
        }
        self.tokens = (self.tokens + elapsed * rate).min(self.burst) - bytes as f64;
        let wait = Duration::from_secs_f64((-self.tokens).max(0.0) / rate);
        if wait < MIN_SLEEP {
            Duration::ZERO
        } else {
            wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_lets_a_burst_go_then_spreads_the_rest_at_its_rate() {
        // Waits in whole microseconds (the float arithmetic may be a nanosecond off).
        let us = |d: Duration| (d.as_nanos() + 500) / 1000;
        let t0 = Instant::now();
        let mut p = Pacer::new(4000, t0);
        // Unpaced: nothing waits.
        assert_eq!(us(p.wait(100_000, 0.0, t0)), 0);
        // 4000 bytes back to back, then each 1000 waits 1 ms at 1 MB/s.
        for _ in 0..4 {
            assert_eq!(us(p.wait(1000, 1e6, t0)), 0);
        }
        assert_eq!(us(p.wait(1000, 1e6, t0)), 1000);
        // It waited that long: the next waits another 1 ms.
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(us(p.wait(1000, 1e6, t1)), 1000);
        // A short wait is owed, not slept: 150 bytes at 1 MB/s is 150 us; the next pays it.
        let t2 = t1 + Duration::from_millis(1);
        assert_eq!(us(p.wait(150, 1e6, t2)), 0);
        assert_eq!(us(p.wait(150, 1e6, t2)), 300);
        // A quiet second fills the bucket to its burst, no more.
        let t3 = t2 + Duration::from_secs(1);
        for _ in 0..4 {
            assert_eq!(us(p.wait(1000, 1e6, t3)), 0);
        }
        assert_eq!(us(p.wait(1000, 1e6, t3)), 1000);
    }
}
