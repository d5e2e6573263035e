//! What a link does to the packets crossing it, per direction: rate, random loss, delay.

use std::fmt;
use std::time::Duration;

use crate::{NetbedError, Side, Testbed};

/// The longest one-way delay a link accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// The delay forwarder's queue limit per direction unless [`LinkBuilder::queue_limit_packets`]
/// says otherwise: 2048 packets of at most 1500 bytes (the MTU), about 3 MiB. That holds one
/// direction of 100 ms at 100 Mbit/s; beyond it packets are dropped, as a full router queue does.
pub const DEFAULT_QUEUE_LIMIT: usize = 2048;

/// What happens to packets travelling toward one side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Direction {
    /// Rate limit in kbit/s (1000 bit), counting Ethernet, IP and transport headers; `None`:
    /// no limit.
    pub rate_kbit: Option<u32>,
    /// Percentage of packets dropped at random (0-100) on the link: the sender never knows.
    pub loss_percent: u8,
    /// Percentage of packets the sending side's own firewall refuses at random (0-100), on its
    /// output hook: the sender's `sendto` fails with `EPERM`, as on a host whose firewall drops.
    pub refused_percent: u8,
    /// How long each packet is held (one way).
    pub delay: Duration,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate_kbit {
            Some(kbit) => write!(f, "{kbit} kbit/s")?,
            None => write!(f, "unlimited")?,
        }
        write!(f, ", {}% loss", self.loss_percent)?;
        if self.refused_percent > 0 {
            write!(f, ", {}% refused at the sender", self.refused_percent)?;
        }
        write!(f, ", {} ms", self.delay.as_millis())
    }
}

/// A link's shape in both directions. Made by [`Link::builder`]; a built testbed tells its own
/// with [`Testbed::link`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    toward_a: Direction,
    toward_b: Direction,
    queue_limit: usize,
}

impl Link {
    /// A link with no limit, no loss and no delay until told otherwise.
    pub fn builder() -> LinkBuilder {
        LinkBuilder {
            link: Link {
                toward_a: Direction::default(),
                toward_b: Direction::default(),
                queue_limit: DEFAULT_QUEUE_LIMIT,
            },
        }
    }

    /// What happens to packets sent toward `side` (from the other side).
    pub fn toward(&self, side: Side) -> &Direction {
        match side {
            Side::A => &self.toward_a,
            Side::B => &self.toward_b,
        }
    }

    pub(crate) fn set_rate_toward(&mut self, side: Side, kbit: Option<u32>) {
        self.toward_mut(side).rate_kbit = kbit;
    }

    fn toward_mut(&mut self, side: Side) -> &mut Direction {
        match side {
            Side::A => &mut self.toward_a,
            Side::B => &mut self.toward_b,
        }
    }

    /// The round-trip time the link adds: both one-way delays.
    pub fn rtt(&self) -> Duration {
        self.toward_a.delay + self.toward_b.delay
    }

    /// The delay forwarder's queue limit per direction, in packets.
    pub fn queue_limit_packets(&self) -> usize {
        self.queue_limit
    }

    fn check(&self) -> Result<(), NetbedError> {
        for side in [Side::A, Side::B] {
            let dir = self.toward(side);
            let problem = if dir.rate_kbit == Some(0) {
                "rate 0 kbit/s passes nothing".to_string()
            } else if dir.loss_percent > 100 {
                format!("loss {}% is over 100%", dir.loss_percent)
            } else if dir.refused_percent > 100 {
                format!("refusal {}% is over 100%", dir.refused_percent)
            } else if dir.delay > MAX_DELAY {
                format!("delay {:?} exceeds max {MAX_DELAY:?}", dir.delay)
            } else {
                continue;
            };
            return Err(NetbedError::InvalidLink(format!(
                "toward {side}: {problem}"
            )));
        }
        if self.queue_limit == 0 {
            return Err(NetbedError::InvalidLink(
                "a queue limit of 0 packets passes nothing".into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.toward_a == self.toward_b {
            write!(f, "{} each way", self.toward_b)
        } else {
            write!(f, "A->B {}; B->A {}", self.toward_b, self.toward_a)
        }
    }
}

/// Builds a [`Link`] and the [`Testbed`] that carries it. Setters without `_toward` set both
/// directions; a later setter overrides an earlier one.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until build() or build_or_skip()"]
pub struct LinkBuilder {
    link: Link,
}

impl LinkBuilder {
    /// Rate limit both ways, in kbit/s (a token bucket: `tbf rate R burst 32kbit latency 50ms`).
    pub fn rate_kbit(self, kbit: u32) -> Self {
        self.rate_kbit_toward(Side::A, kbit)
            .rate_kbit_toward(Side::B, kbit)
    }

    /// Rate limit of the packets travelling toward `side`.
    pub fn rate_kbit_toward(mut self, side: Side, kbit: u32) -> Self {
        self.link.toward_mut(side).rate_kbit = Some(kbit);
        self
    }

    /// Random loss both ways, in percent (each packet is dropped with this probability).
    pub fn loss_percent(self, percent: u8) -> Self {
        self.loss_percent_toward(Side::A, percent)
            .loss_percent_toward(Side::B, percent)
    }

    /// Random loss of the packets travelling toward `side`.
    pub fn loss_percent_toward(mut self, side: Side, percent: u8) -> Self {
        self.link.toward_mut(side).loss_percent = percent;
        self
    }

    /// Random refusal both ways, in percent: each end's firewall refuses this share of what it
    /// sends toward the other, so the sender's `sendto` fails (`EPERM`).
    pub fn refused_percent(mut self, percent: u8) -> Self {
        for side in [Side::A, Side::B] {
            self.link.toward_mut(side).refused_percent = percent;
        }
        self
    }

    /// Round-trip time: half of it is added each way (the odd nanosecond toward A).
    pub fn rtt(self, rtt: Duration) -> Self {
        let half = rtt / 2;
        self.delay_toward(Side::B, half)
            .delay_toward(Side::A, rtt - half)
    }

    /// One-way delay of the packets travelling toward `side`.
    pub fn delay_toward(mut self, side: Side, delay: Duration) -> Self {
        self.link.toward_mut(side).delay = delay;
        self
    }

    /// The delay forwarder's queue limit per direction, in packets (default
    /// [`DEFAULT_QUEUE_LIMIT`]); packets arriving at a full queue are dropped.
    pub fn queue_limit_packets(mut self, packets: usize) -> Self {
        self.link.queue_limit = packets;
        self
    }

    /// The link as configured so far.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Creates the namespaces, the link and its shaping. Needs root (see [`crate::available`]).
    pub fn build(self) -> Result<Testbed, NetbedError> {
        self.link.check()?;
        Testbed::build(self.link)
    }

    /// For tests: the testbed, or `None` after printing `skipping: REASON` when this machine
    /// cannot make one (see [`crate::available_or_skip`]). Panics when building fails although
    /// the machine can, or when `FRAMEWIRE_REQUIRE_ALL=1` demands a testbed.
    #[track_caller]
    pub fn build_or_skip(self) -> Option<Testbed> {
        crate::available_or_skip()?;
        let link = self.link.clone();
        match self.build() {
            Ok(bed) => Some(bed),
            // Not a closure, so that #[track_caller] names the test.
            Err(e) => panic!("build a testbed with {link}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_without_toward_set_both_directions() {
        let link = Link::builder()
            .rate_kbit(8000)
            .loss_percent(3)
            .rtt(Duration::from_millis(41))
            .link()
            .clone();
        assert_eq!(link.toward(Side::A).rate_kbit, Some(8000));
        assert_eq!(link.toward(Side::B).rate_kbit, Some(8000));
        assert_eq!(link.toward(Side::A).loss_percent, 3);
        assert_eq!(link.toward(Side::B).delay, Duration::from_micros(20_500));
        assert_eq!(link.toward(Side::A).delay, Duration::from_micros(20_500));
        assert_eq!(link.rtt(), Duration::from_millis(41));
        assert_eq!(link.to_string(), "8000 kbit/s, 3% loss, 20 ms each way");
    }

    #[test]
    fn directions_are_independent() {
        let link = Link::builder()
            .rate_kbit(1000)
            .rate_kbit_toward(Side::B, 500)
            .loss_percent_toward(Side::A, 10)
            .delay_toward(Side::B, Duration::from_millis(5))
            .link()
            .clone();
        assert_eq!(
            link.to_string(),
            "A->B 500 kbit/s, 0% loss, 5 ms; B->A 1000 kbit/s, 10% loss, 0 ms"
        );
        let refusing = Link::builder().refused_percent(1).link().clone();
        assert_eq!(
            refusing.to_string(),
            "unlimited, 0% loss, 1% refused at the sender, 0 ms each way"
        );
        assert_eq!(link.rtt(), Duration::from_millis(5));
    }

    #[test]
    fn impossible_links_are_rejected_before_anything_is_made() {
        let check = |builder: LinkBuilder, expected: &str| {
            let err = builder.build().expect_err("an invalid link");
            assert_eq!(err.to_string(), expected);
        };
        check(
            Link::builder().rate_kbit_toward(Side::B, 0),
            "invalid link: toward B: rate 0 kbit/s passes nothing",
        );
        check(
            Link::builder().loss_percent(101),
            "invalid link: toward A: loss 101% is over 100%",
        );
        check(
            Link::builder().refused_percent(101),
            "invalid link: toward A: refusal 101% is over 100%",
        );
        check(
            Link::builder().delay_toward(Side::B, Duration::from_secs(11)),
            "invalid link: toward B: delay 11s exceeds max 10s",
        );
        check(
            Link::builder().queue_limit_packets(0),
            "invalid link: a queue limit of 0 packets passes nothing",
        );
    }
}
