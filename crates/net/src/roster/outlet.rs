//! A subscriber's way out ([`Outlet`]: a stream socket, datagrams) and the one loop that feeds
//! it ([`Delivery`]): the start, then the newest packet of the member's slot whenever the
//! outlet can take one, the switch before the first packet of another rendition, the moves
//! along the ladder that its link asks for, and the goodbye. Every rule about which packet a
//! subscriber gets is here, once for every transport.
//!
//! Keyframes (an inter-frame codec, whose deltas need every packet before them back to a
//! keyframe): a subscriber gets a delta only while it has had every packet of its rendition
//! since a keyframe. Deltas wait behind an unsent packet in order, a few at most
//! ([`super::DELTAS_BEHIND`]), where a keyframe replaces what waits. At its start, after a
//! packet of its slot was replaced unsent (newest wins), and at a move to another rendition,
//! it gets no packet until a keyframe: the ladder
//! asks that rendition's encoder for one (at most 4 a second however many ask,
//! [`framewire_core::Ladder::keyframes_due`]), and the deltas meanwhile are skipped, so no
//! subscriber is ever sent a picture it cannot decode.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use framewire_core::{Latest, Packet, PeerReport, Placement, Waited};

use super::{EventFn, Gone, Member, Roster, ServerEvent, lock};
use crate::adapt::{Adapter, Counters};

/// One subscriber's way out: how its transport starts, switches, sends a packet, ends, and
/// what it knows of its link. The [`Delivery`] loop decides what goes out and when.
pub(crate) trait Outlet {
    /// Starts the stream in `at`.
    fn start(&mut self, at: &Placement) -> io::Result<()>;

    /// Returns once the next packet can go out without queueing behind older ones (the slot
    /// meanwhile keeps only the newest), or when `slot` closes; `Err` says why it never will
    /// (stalled). By default at once.
    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        let _ = slot;
        Ok(())
    }

    /// The packets that follow are `to`'s.
    fn switch(&mut self, to: &Placement) -> io::Result<()>;

    /// Sends `packet`, with a report of the other direction first when there is one.
    fn send(&mut self, packet: &Packet, report: Option<&PeerReport>) -> io::Result<()>;

    /// The goodbye: the stream ended (`None`), or the subscriber is told why it is cut off.
    fn end(&mut self, error: Option<&str>) -> io::Result<()>;

    /// Answers a subscriber that said goodbye itself, if its protocol does. By default nothing.
    fn left(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Releases what it holds once the delivery is over (a socket's both directions).
    fn close(&mut self) {}

    /// What it learnt of its link since the packet sent at `sent_at` (`ours`: the member's own
    /// counts then), for the ladder's decisions; `None` when it has nothing to say (by default:
    /// an outlet that never moves along the ladder).
    fn link(
        &mut self,
        slot: &Latest<Arc<Packet>>,
        ours: Counters,
        sent_at: Instant,
    ) -> Option<Link> {
        let _ = (slot, ours, sent_at);
        None
    }

    /// Takes in the link as `adapter` judges it now (a datagram outlet paces by it).
    fn judged(&mut self, adapter: &mut Adapter, now: Instant) {
        let _ = (adapter, now);
    }

    /// Why an error of this outlet ends the subscriber; `None` when the peer just went.
    fn failed(&self, e: &io::Error) -> Option<String>;
}

/// What an outlet learnt of its link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Link {
    /// A burst of this many bytes crossed the link in this time, of which this round trip
    /// was not the link's (see [`Adapter::observe_drain`]).
    pub drain: Option<(usize, Duration, Duration)>,
    /// The frame counts the link judgement compares: offered, taken whole, bytes.
    pub counters: Counters,
}

/// One member's deliveries, for any outlet.
pub(crate) struct Delivery<'a, T> {
    pub roster: &'a Roster<T>,
    pub member: &'a Member<T>,
    pub on_event: &'a EventFn,
    /// Packets sent whole to any member, over the publisher's life.
    pub sent: &'a AtomicU64,
    /// Whether it moves along the ladder with its link.
    pub adapts: bool,
    /// Whether it asked for one packet only (a snapshot).
    pub once: bool,
}

impl<T> Delivery<'_, T> {
    /// Serves the member through `outlet` from its start in `placement` (saying it joined, one
    /// of `viewers`) until it goes or the publisher stops; then it leaves the roster, and the
    /// log hears why.
    pub(crate) fn run(&self, outlet: &mut dyn Outlet, mut placement: Placement, viewers: usize) {
        let error = self.serve(outlet, &mut placement, viewers);
        outlet.close();
        let member = self.member;
        let count = self.roster.remove(member);
        (self.on_event)(ServerEvent::Left {
            peer: member.peer,
            viewers: count,
            frames: member.sent.load(Ordering::Relaxed),
            bytes: member.bytes.load(Ordering::Relaxed),
            dropped: member.slot.dropped(),
            placement,
            error,
        });
    }

    /// The deliveries; why they stopped when that was an error (not a plain close or a stop).
    fn serve(
        &self,
        outlet: &mut dyn Outlet,
        placement: &mut Placement,
        viewers: usize,
    ) -> Option<String> {
        let member = self.member;
        if let Err(e) = outlet.start(placement) {
            return outlet.failed(&e);
        }
        (self.on_event)(ServerEvent::Joined {
            peer: member.peer,
            viewers,
            placement: *placement,
            adapts: self.adapts,
        });
        let mut adapter = None;
        // Whether it has had every packet of its rendition since a keyframe, and the slot's
        // count of packets replaced unsent when it last looked.
        let (mut keyed, mut replaced) = (false, member.slot.dropped());
        loop {
            if let Err(why) = outlet.ready(&member.slot) {
                return Some(why);
            }
            // A packet published before a stop still goes out, then the goodbye.
            let packet = match member.slot.wait(None) {
                Waited::Value(p) => p,
                Waited::Timeout => continue,
                Waited::Closed => return self.goodbye(outlet),
            };
            let now_replaced = member.slot.dropped();
            if now_replaced != replaced {
                (keyed, replaced) = (false, now_replaced);
            }
            if !packet.keyframe && (!keyed || packet.rendition != placement.id) {
                self.roster.ladder.request_keyframe(packet.rendition);
                keyed = false;
                continue;
            }
            keyed = true;
            if packet.rendition != placement.id {
                let left = placement.id;
                *placement = self.roster.ladder.placement(packet.rendition);
                member.on.store(packet.rendition, Ordering::Relaxed);
                self.roster.ladder.leave(left);
                if let Err(e) = outlet.switch(placement) {
                    return outlet.failed(&e);
                }
            }
            let report = lock(&member.report).take();
            let sent_at = Instant::now();
            if let Err(e) = outlet.send(&packet, report.as_ref()) {
                return outlet.failed(&e);
            }
            let sent = member.sent.fetch_add(1, Ordering::Relaxed) + 1;
            member
                .bytes
                .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
            self.sent.fetch_add(1, Ordering::SeqCst);
            lock(&member.rate).record(sent, Instant::now());
            if self.once {
                return None;
            }
            if let Some(link) = outlet.link(&member.slot, member.counters(), sent_at) {
                self.judge(outlet, &mut adapter, link, placement);
            }
        }
    }

    /// The goodbye once the slot closed: none to a member that left by itself, its reason to
    /// one its transport lost, the end of the stream at a stop.
    fn goodbye(&self, outlet: &mut dyn Outlet) -> Option<String> {
        let gone = lock(&self.member.gone).clone();
        let reason = match gone {
            _ if self.roster.is_stopping() => None,
            Some(Gone::Left) => {
                // It is going anyway: an answer that cannot be written is no error.
                let _ = outlet.left();
                return None;
            }
            Some(Gone::Lost(why)) => Some(why),
            None => None,
        };
        let said = outlet.end(reason.as_deref());
        match (reason, said) {
            (Some(why), _) => Some(why),
            (None, Ok(())) => None,
            (None, Err(e)) => outlet.failed(&e).map(|_| format!("saying goodbye: {e}")),
        }
    }

    /// Takes in what the outlet learnt of the link and, once a window and not while moving,
    /// starts a move when the link asks for one.
    fn judge(
        &self,
        outlet: &mut dyn Outlet,
        adapter: &mut Option<Adapter>,
        link: Link,
        placement: &Placement,
    ) {
        let now = Instant::now();
        let adapter = adapter.get_or_insert_with(|| Adapter::new(now, link.counters));
        if let Some((bytes, took, rtt)) = link.drain {
            adapter.observe_drain(bytes, took, rtt, now);
        }
        outlet.judged(adapter, now);
        let member = self.member;
        if !self.adapts || !adapter.due(now) || member.to.load(Ordering::Relaxed) != placement.id {
            return;
        }
        let ladder = &self.roster.ladder;
        let Some(to) = adapter.decide(now, link.counters, placement.id, &ladder.rung_sizes())
        else {
            return;
        };
        ladder.enter(to.to);
        member.to.store(to.to, Ordering::Relaxed);
        (self.on_event)(ServerEvent::Moved {
            peer: member.peer,
            from: *placement,
            to: ladder.placement(to.to),
            link: to.link,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::{CodecKind, Ladder, PixelFormat, Rendition};
    use std::sync::mpsc::{Receiver, Sender, channel};

    /// An outlet whose `ready` says it is there and waits for the test's word, and which says
    /// what it sent.
    struct Gated {
        at_ready: Sender<()>,
        go: Receiver<()>,
        sent: Sender<u64>,
    }

    impl Outlet for Gated {
        fn start(&mut self, _: &Placement) -> io::Result<()> {
            Ok(())
        }
        fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
            let _ = self.at_ready.send(());
            if self.go.recv().is_err() {
                slot.close();
            }
            Ok(())
        }
        fn switch(&mut self, _: &Placement) -> io::Result<()> {
            Ok(())
        }
        fn send(&mut self, packet: &Packet, _: Option<&PeerReport>) -> io::Result<()> {
            let _ = self.sent.send(packet.seq);
            Ok(())
        }
        fn end(&mut self, _: Option<&str>) -> io::Result<()> {
            Ok(())
        }
        fn link(&mut self, _: &Latest<Arc<Packet>>, _: Counters, _: Instant) -> Option<Link> {
            None
        }
        fn failed(&self, e: &io::Error) -> Option<String> {
            Some(e.to_string())
        }
    }

    fn packet(seq: u64, keyframe: bool) -> Arc<Packet> {
        Arc::new(Packet {
            seq,
            keyframe,
            ..Packet::default()
        })
    }

    #[test]
    fn an_inter_frame_subscriber_gets_deltas_in_order_and_none_after_a_gap_until_a_keyframe() {
        let rendition = Rendition::new(CodecKind::H264, 64, 48, PixelFormat::Rgb8, 0);
        let roster = Arc::new(Roster::<()>::new(Arc::new(Ladder::single(rendition))));
        let member = Arc::new(Member::new(([127, 0, 0, 1], 1).into(), 0, ()));
        roster.members().push(Arc::clone(&member));
        let (go, gate) = channel();
        let (said, sent) = channel();
        let (there, at_ready) = channel();
        let delivery = {
            let (roster, member) = (Arc::clone(&roster), Arc::clone(&member));
            std::thread::spawn(move || {
                let counted = AtomicU64::new(0);
                let delivery = Delivery {
                    roster: &roster,
                    member: &member,
                    on_event: &|_| {},
                    sent: &counted,
                    adapts: false,
                    once: false,
                };
                let placement = roster.ladder.placement(0);
                let mut outlet = Gated {
                    at_ready: there,
                    go: gate,
                    sent: said,
                };
                delivery.run(&mut outlet, placement, 1);
            })
        };
        let next = || sent.recv_timeout(Duration::from_secs(10)).unwrap();
        // Once the delivery waits in `ready` (it handled everything before), publish, go on.
        let step = |packets: &[Arc<Packet>]| {
            at_ready.recv_timeout(Duration::from_secs(10)).unwrap();
            for p in packets {
                roster.publish(std::slice::from_ref(p));
            }
            go.send(()).unwrap();
        };
        // A delta first: nothing until a keyframe, which the ladder was asked for.
        step(&[packet(1, false)]);
        step(&[packet(2, true)]);
        assert_eq!(next(), 2);
        assert_ne!(
            roster.ladder.keyframes_due(Instant::now()),
            0,
            "asked for a keyframe"
        );
        step(&[packet(3, false)]);
        assert_eq!(next(), 3, "a delta after its keyframe goes");
        // 4, 5, 6 published while it is busy: they wait in order, none replaced.
        step(&[packet(4, false), packet(5, false), packet(6, false)]);
        assert_eq!(next(), 4);
        step(&[]);
        step(&[]);
        assert_eq!((next(), next()), (5, 6));
        // More deltas than may wait: all are replaced but the newest, which cannot decode;
        // the keyframe after goes, then its delta.
        let burst: Vec<_> = (10..12 + super::super::DELTAS_BEHIND as u64)
            .map(|seq| packet(seq, false))
            .collect();
        step(&burst);
        step(&[packet(30, true)]);
        step(&[packet(31, false)]);
        assert_eq!((next(), next()), (30, 31));
        // A keyframe replaces the deltas waiting before it.
        step(&[packet(40, true), packet(41, false), packet(42, true)]);
        step(&[packet(43, false)]);
        assert_eq!((next(), next()), (42, 43));
        drop(go);
        roster.stop();
        delivery.join().unwrap();
        assert!(sent.try_recv().is_err(), "nothing else went");
    }
}
