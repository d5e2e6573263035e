//! The one registry of a publisher's subscribers, whatever carries their packets (a stream
//! socket of the fan-out, UDP datagrams): each subscriber's newest-wins slot and its place on
//! the ladder, publishing a frame to all of them, waiting for one, stopping, and the figures
//! `/stats` reads. What a transport keeps of its own per subscriber (a socket, a session) rides
//! along as the member's `T`; how the packets leave is the transport's [`Outlet`], and
//! [`Delivery`] is the one loop that hands a member's packets to its outlet, for every
//! transport.

mod outlet;

pub(crate) use outlet::{Delivery, Link, Outlet};

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use framewire_core::{Ladder, Latest, Packet, PeerReport, Placement};

/// Deltas (an inter-frame codec's packets, each of no use without the one before) that may
/// wait behind a subscriber's unsent packet instead of replacing it. A keyframe is several
/// deltas' bytes: while it drains through a narrow link, the deltas after it wait their turn
/// and the link catches up after, where replacing them would leave the subscriber nothing to
/// decode until another keyframe, which drains as slowly. Past this many (a link that does
/// not carry the rendition) they all go, newest wins, and the subscriber waits for a keyframe.
/// At 30 fps, 8 deltas are 267 ms.
pub(crate) const DELTAS_BEHIND: usize = 8;

use crate::board::{ProtocolFigures, ViewerFigures};

/// Something that happened to a subscriber, for the server's log.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A viewer completed its handshake.
    Joined {
        /// The viewer's address.
        peer: SocketAddr,
        /// Viewers connected now.
        viewers: usize,
        /// The rendition it starts on.
        placement: Placement,
        /// Whether it moves along the ladder with its link (else it stays where it asked).
        adapts: bool,
    },
    /// A viewer was moved to another rendition by what its link carries.
    Moved {
        /// The viewer's address.
        peer: SocketAddr,
        /// Where it was.
        from: Placement,
        /// Where it is now.
        to: Placement,
        /// What its link carried, bytes per second, as judged.
        link: f64,
    },
    /// A viewer went away or was disconnected.
    Left {
        /// The viewer's address.
        peer: SocketAddr,
        /// Viewers connected now.
        viewers: usize,
        /// Frames sent to it.
        frames: u64,
        /// Payload bytes of those frames.
        bytes: u64,
        /// Frames it missed because its socket was busy with an earlier one.
        dropped: u64,
        /// The rendition it was on last.
        placement: Placement,
        /// Why, when it was not a plain close by the viewer or a server shutdown.
        error: Option<String>,
    },
    /// A connection that was not served (not a viewer, wrong version, server full).
    Rejected {
        /// The peer's address.
        peer: SocketAddr,
        /// Why.
        error: String,
    },
}

/// Why a connection's opening (or a hello) was not served: one line for the server's log, naming what was
/// wrong (the protocol may have answered the peer first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl From<String> for Refused {
    fn from(reason: String) -> Refused {
        Refused(reason)
    }
}

impl From<&str> for Refused {
    fn from(reason: &str) -> Refused {
        Refused(reason.to_string())
    }
}

/// Where a publisher's [`ServerEvent`]s go.
pub(crate) type EventFn = dyn Fn(ServerEvent) + Send + Sync;

/// One subscriber: what every transport keeps of it, and its transport's own part (`T`).
pub(crate) struct Member<T> {
    pub(crate) peer: SocketAddr,
    /// The next packet to send: newest wins.
    pub(crate) slot: Latest<Arc<Packet>>,
    /// The rendition its packets are in now, and the one it is moving to (the same when it
    /// is not moving): publishing gives it the packet of `to` once there is one, else of `on`.
    pub(crate) on: AtomicUsize,
    pub(crate) to: AtomicUsize,
    /// Frames offered to it.
    pub(crate) offered: AtomicU64,
    /// Packets sent whole, and their bytes.
    pub(crate) sent: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Its frame rate, for the live figures.
    pub(crate) rate: Mutex<Rate>,
    /// A report of the other direction (a call) to send before its next packet: a newer one
    /// replaces one not sent yet.
    pub(crate) report: Mutex<Option<PeerReport>>,
    /// Why its transport ended it, once it did ([`Member::end`]).
    gone: Mutex<Option<Gone>>,
    /// What its transport keeps of it.
    pub(crate) transport: T,
}

impl<T> Member<T> {
    /// A subscriber at `peer` placed on rendition `on` of the ladder.
    pub(crate) fn new(peer: SocketAddr, on: usize, transport: T) -> Member<T> {
        Member {
            peer,
            slot: Latest::new(),
            on: AtomicUsize::new(on),
            to: AtomicUsize::new(on),
            offered: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            rate: Mutex::new(Rate::new(Instant::now())),
            report: Mutex::new(None),
            gone: Mutex::new(None),
            transport,
        }
    }

    /// Ends it from outside its delivery (its transport heard it go, or heard nothing for too
    /// long): its slot closes, and its delivery says goodbye as `why` asks. The first end counts.
    pub(crate) fn end(&self, why: Gone) {
        let mut gone = lock(&self.gone);
        if gone.is_none() {
            *gone = Some(why);
            self.slot.close();
        }
    }

    /// Its frame counts now, as [`crate::adapt`] judges them.
    pub(crate) fn counters(&self) -> crate::adapt::Counters {
        crate::adapt::Counters {
            offered: self.offered.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            waiting: self.slot.waiting() as u64,
        }
    }
}

/// Why a transport ended a subscriber ([`Member::end`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gone {
    /// It said goodbye itself: nothing more is sent to it.
    Left,
    /// It went silent or its link closed: it is told why, and the log says so.
    Lost(String),
}

/// How the reason of a [`Refusal::Full`] begins (a WebSocket's close code tells it apart).
pub(crate) const FULL: &str = "server full";

/// Why a subscriber was not admitted ([`Roster::admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The publisher is stopping.
    Stopping,
    /// Every place is taken: the reason, to tell it.
    Full(String),
}

impl<T> Deref for Member<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.transport
    }
}

/// The subscribers of one publisher.
pub(crate) struct Roster<T> {
    pub(crate) ladder: Arc<Ladder>,
    members: Mutex<Vec<Arc<Member<T>>>>,
    /// Notified whenever a member joins or leaves, and when the publisher stops.
    pub(crate) changed: Condvar,
    stopping: AtomicBool,
    /// Frames replaced in some member's slot before they were sent, over the publisher's life.
    dropped: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking subscriber thread must not take the publisher down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Roster<T> {
    pub(crate) fn new(ladder: Arc<Ladder>) -> Roster<T> {
        Roster {
            ladder,
            members: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    /// The members, locked (to add, find or remove one; notify [`changed`](Self::changed)
    /// after a change).
    pub(crate) fn members(&self) -> MutexGuard<'_, Vec<Arc<Member<T>>>> {
        lock(&self.members)
    }

    /// Members now.
    pub(crate) fn count(&self) -> usize {
        self.members().len()
    }

    /// Adds `member`, placed on its rung already, unless the publisher is stopping or `max`
    /// members are there: then it leaves its rung and is refused. Returns the members now.
    pub(crate) fn admit(&self, member: &Arc<Member<T>>, max: usize) -> Result<usize, Refusal> {
        let mut members = self.members();
        let refusal = if self.is_stopping() {
            Refusal::Stopping
        } else if members.len() >= max {
            Refusal::Full(format!(
                "{FULL}: {} of {max} viewers connected",
                members.len()
            ))
        } else {
            members.push(Arc::clone(member));
            let count = members.len();
            drop(members);
            self.changed.notify_all();
            return Ok(count);
        };
        drop(members);
        self.ladder.leave(member.on.load(Ordering::Relaxed));
        Err(refusal)
    }

    /// Takes `member` off the roster as it goes: it leaves its rung on the ladder (and the one
    /// it was moving to), and the waiters hear of it. Returns the members left.
    pub(crate) fn remove(&self, member: &Member<T>) -> usize {
        let (on, to) = (
            member.on.load(Ordering::Relaxed),
            member.to.load(Ordering::Relaxed),
        );
        self.ladder.leave(on);
        if to != on {
            self.ladder.leave(to);
        }
        let left = {
            let mut members = self.members();
            members.retain(|m| !std::ptr::eq(Arc::as_ptr(m), member));
            members.len()
        };
        self.changed.notify_all();
        left
    }

    /// Hands one frame, in the renditions `packets` hold, to every member: the packet of the
    /// rendition it is moving to once there is one, else of the one it is on (none: it gets
    /// nothing). A member still busy with an earlier packet has that one replaced (newest
    /// wins) and counted as dropped, unless the new one is a delta, which waits behind it (up
    /// to [`DELTAS_BEHIND`]). Never blocks on a transport.
    pub(crate) fn publish(&self, packets: &[Arc<Packet>]) {
        let of = |id: usize| packets.iter().find(|p| p.rendition == id);
        for member in self.members().iter() {
            let to = member.to.load(Ordering::Relaxed);
            let Some(packet) = of(to).or_else(|| of(member.on.load(Ordering::Relaxed))) else {
                continue;
            };
            member.offered.fetch_add(1, Ordering::Relaxed);
            let behind = if packet.keyframe { 0 } else { DELTAS_BEHIND };
            let dropped = member.slot.put_behind(Arc::clone(packet), behind);
            if dropped > 0 {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    /// Holds the member list once `done` says so or `deadline` passes, whichever is first.
    pub(crate) fn wait_until(
        &self,
        deadline: Instant,
        done: impl Fn(&[Arc<Member<T>>]) -> bool,
    ) -> MutexGuard<'_, Vec<Arc<Member<T>>>> {
        let mut members = self.members();
        while !done(&members) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            members = self
                .changed
                .wait_timeout(members, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        members
    }

    /// Blocks until at least one member joined, the publisher stops, or `timeout` passes.
    /// Returns the number of members.
    pub(crate) fn wait_for_member(&self, timeout: Duration) -> usize {
        self.wait_until(Instant::now() + timeout, |members| {
            !members.is_empty() || self.is_stopping()
        })
        .len()
    }

    /// Hands `report` to every member, to be sent before its next packet (a newer report
    /// replaces one not sent yet).
    pub(crate) fn report(&self, report: PeerReport) {
        for member in self.members().iter() {
            *lock(&member.report) = Some(report);
        }
    }

    /// Marks the publisher stopping, closes every slot (each member's thread sends its
    /// goodbye) and wakes the waiters; whether it was stopping already.
    pub(crate) fn stop(&self) -> bool {
        let was = self.stopping.swap(true, Ordering::SeqCst);
        for member in self.members().iter() {
            member.slot.close();
        }
        self.changed.notify_all();
        was
    }

    /// Whether [`stop`](Self::stop) was called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Frames some member missed because it was still sending an earlier one.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every member has taken its last packet (see [`Publisher::wait_taken`]), its
    /// slot closed, or `deadline` passes; whether none waits.
    ///
    /// [`Publisher::wait_taken`]: framewire_core::Publisher::wait_taken
    pub(crate) fn wait_taken(&self, deadline: Instant) -> bool {
        // Outside the list's lock: a member joining or leaving meanwhile is not held up.
        let members: Vec<_> = self.members().iter().map(Arc::clone).collect();
        members.iter().all(|m| m.slot.wait_empty(deadline))
    }

    /// The figures of `protocol` at `addr` for `/stats`: its members now, and `frames` sent
    /// whole over its life.
    pub(crate) fn figures(
        &self,
        protocol: &'static str,
        addr: SocketAddr,
        frames: u64,
    ) -> ProtocolFigures {
        let now = Instant::now();
        let viewers = self
            .members()
            .iter()
            .map(|m| {
                let sent = m.sent.load(Ordering::Relaxed);
                ViewerFigures {
                    peer: m.peer,
                    placement: self.ladder.placement(m.on.load(Ordering::Relaxed)),
                    fps: lock(&m.rate).fps(sent, now),
                    frames: sent,
                    dropped: m.slot.dropped(),
                }
            })
            .collect();
        ProtocolFigures {
            protocol,
            addr,
            frames,
            dropped: self.dropped_total(),
            viewers,
        }
    }
}

/// A subscriber's frame rate: packets written over the last second or so.
#[derive(Debug)]
pub(crate) struct Rate {
    start: Instant,
    at_start: u64,
    fps: f64,
}

impl Rate {
    pub(crate) fn new(now: Instant) -> Rate {
        Rate {
            start: now,
            at_start: 0,
            fps: 0.0,
        }
    }

    /// Takes in that `sent` packets have been written by `now`; a window closes each second.
    pub(crate) fn record(&mut self, sent: u64, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64();
        if secs >= 1.0 {
            self.fps = (sent - self.at_start) as f64 / secs;
            self.start = now;
            self.at_start = sent;
        }
    }

    /// The rate at `now`: the last whole window's, or the open window's once it runs long (a
    /// stalled subscriber decays to 0) or before the first window closed.
    pub(crate) fn fps(&self, sent: u64, now: Instant) -> f64 {
        let secs = now.duration_since(self.start).as_secs_f64();
        if secs >= 2.0 || (self.fps == 0.0 && secs >= 0.25) {
            sent.saturating_sub(self.at_start) as f64 / secs
        } else {
            self.fps
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::{CodecKind, PixelFormat, Rendition, Waited};

    fn roster() -> Roster<()> {
        let rendition = |w| Rendition::new(CodecKind::Jpeg, w, w * 3 / 4, PixelFormat::Rgb8, 80);
        Roster::new(Arc::new(
            Ladder::new(vec![rendition(640), rendition(320)], true, None).unwrap(),
        ))
    }

    /// A JPEG packet: every one is a keyframe.
    fn packet(rendition: usize, seq: u64) -> Arc<Packet> {
        Arc::new(Packet {
            rendition,
            seq,
            keyframe: true,
            ..Packet::default()
        })
    }

    fn join(roster: &Roster<()>, port: u16, on: usize) -> Arc<Member<()>> {
        let member = Arc::new(Member::new(([127, 0, 0, 1], port).into(), on, ()));
        roster.members().push(Arc::clone(&member));
        roster.changed.notify_all();
        member
    }

    #[test]
    fn each_member_gets_the_newest_packet_of_its_rendition_and_a_replaced_one_is_dropped() {
        let roster = roster();
        let top = join(&roster, 1, 0);
        let low = join(&roster, 2, 1);
        roster.publish(&[packet(0, 1), packet(1, 1)]);
        roster.publish(&[packet(0, 2), packet(1, 2)]);
        let got = |m: &Member<()>| match m.slot.wait(Some(Instant::now())) {
            Waited::Value(p) => (p.rendition, p.seq),
            other => panic!("{other:?}"),
        };
        assert_eq!(got(&top), (0, 2));
        assert_eq!(got(&low), (1, 2));
        assert_eq!(roster.dropped_total(), 2, "one replaced in each slot");
        // Moving: the packet of the rung it moves to once there is one, else of its own.
        top.to.store(1, Ordering::Relaxed);
        roster.publish(&[packet(0, 3)]);
        assert_eq!(got(&top), (0, 3));
        roster.publish(&[packet(0, 4), packet(1, 4)]);
        assert_eq!(got(&top), (1, 4));
        let figures = roster.figures("test", ([127, 0, 0, 1], 9).into(), 7);
        assert_eq!(figures.viewers.len(), 2);
        assert_eq!(figures.frames, 7);
    }

    #[test]
    fn a_waiter_wakes_when_a_member_joins_or_the_roster_stops() {
        let roster = Arc::new(roster());
        assert_eq!(roster.wait_for_member(Duration::ZERO), 0);
        let waiter = {
            let roster = Arc::clone(&roster);
            std::thread::spawn(move || roster.wait_for_member(Duration::from_secs(30)))
        };
        join(&roster, 1, 0);
        assert_eq!(waiter.join().unwrap(), 1);
        let member = join(&roster, 2, 0);
        let other = join(&roster, 3, 1);
        assert_eq!(roster.remove(&other), 2, "the one removed, the others stay");
        assert!(!roster.stop());
        assert!(roster.stop(), "stopping twice says so");
        assert!(matches!(member.slot.wait(None), Waited::Closed));
    }
}
