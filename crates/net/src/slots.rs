//! Fair slots for connections not yet served (in their handshake, or a UDP stream's control
//! connection): at most a total, counted by address (an IPv6 address with its /64, which one
//! host usually holds whole). While slots are free any address takes them. When all are taken,
//! a connection from an address holding fewer than its share takes the slot of the oldest
//! connection of the address that holds the most (which is closed), so one client that opens
//! connections and stalls them cannot keep another address out; one from an address holding
//! its share or more is closed at once.

use std::collections::HashMap;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;

use crate::roster::lock;

/// The slots, shared by a listener's connections.
#[derive(Debug, Default)]
pub(crate) struct PendingSlots(Mutex<Slots>);

#[derive(Debug, Default)]
struct Slots {
    next: u64,
    total: usize,
    /// Each address's connections, oldest first: an id and a handle to close it by.
    by: HashMap<IpAddr, Vec<(u64, Option<TcpStream>)>>,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// All are taken, and its address holds its share.
    Share {
        /// The slots in all.
        total: usize,
        /// Those its address holds.
        mine: usize,
    },
    /// All are taken, by addresses that each hold no more than this one (plus one).
    Full {
        /// The slots in all.
        total: usize,
    },
}

impl PendingSlots {
    /// Takes a slot for `stream`, a connection from `ip`, of `max` in all and `share` per
    /// address when full: its id, and the peer whose connection was closed to make room, if
    /// one was.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        stream: &TcpStream,
        max: usize,
        share: usize,
    ) -> Result<(u64, Option<SocketAddr>), NoSlot> {
        let mut slots = lock(&self.0);
        let slots = &mut *slots;
        let key = slot_key(ip);
        let mut evicted = None;
        if slots.total >= max {
            let mine = slots.by.get(&key).map_or(0, Vec::len);
            if mine >= share {
                return Err(NoSlot::Share { total: max, mine });
            }
            // The slot of the greediest address's oldest connection.
            let greediest = slots
                .by
                .iter_mut()
                .max_by_key(|(_, held)| held.len())
                .filter(|(_, held)| held.len() > mine + 1);
            let Some((_, held)) = greediest else {
                return Err(NoSlot::Full { total: max });
            };
            let (_, oldest) = held.remove(0);
            evicted = oldest.and_then(|oldest| {
                let _ = oldest.shutdown(Shutdown::Both);
                oldest.peer_addr().ok()
            });
            slots.total -= 1;
            slots.by.retain(|_, held| !held.is_empty());
        }
        slots.next += 1;
        let id = slots.next;
        let handle = stream.try_clone().ok();
        slots.by.entry(key).or_default().push((id, handle));
        slots.total += 1;
        Ok((id, evicted))
    }

    /// Gives back the slot `id` of a connection from `ip` (nothing when it was taken over).
    pub(crate) fn release(&self, ip: IpAddr, id: u64) {
        let mut slots = lock(&self.0);
        let key = slot_key(ip);
        let Some(held) = slots.by.get_mut(&key) else {
            return;
        };
        let Some(at) = held.iter().position(|(i, _)| *i == id) else {
            return;
        };
        held.remove(at);
        if held.is_empty() {
            slots.by.remove(&key);
        }
        slots.total -= 1;
    }
}

/// The address a slot counts for: an IPv4 address, or an IPv6 address's /64.
fn slot_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Holds a connection's slot (its address and id) until it is given back, whatever way the
/// connection ends.
pub(crate) struct Pending<'a>(pub &'a PendingSlots, pub IpAddr, pub u64, pub bool);

impl Pending<'_> {
    /// Gives the slot back (once).
    pub(crate) fn done(&mut self) {
        if !std::mem::replace(&mut self.3, true) {
            self.0.release(self.1, self.2);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A pending connection as the server holds it (the accepted end), and the client's end.
    fn conn(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn a_full_house_makes_room_for_another_address_by_closing_the_greediest_ones_oldest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (max, share) = (8, 2);
        let slots = PendingSlots::default();
        let greedy: IpAddr = [10, 0, 0, 1].into();
        // Free slots: any address takes them, past its share.
        let held: Vec<(TcpStream, TcpStream)> = (0..8).map(|_| conn(&listener)).collect();
        let ids: Vec<u64> = held
            .iter()
            .map(|(s, _)| slots.admit(greedy, s, max, share).unwrap().0)
            .collect();
        // Full: the greedy address gets no more.
        let refused = slots
            .admit(greedy, &conn(&listener).0, max, share)
            .unwrap_err();
        assert_eq!(refused, NoSlot::Share { total: 8, mine: 8 });
        // Another address takes the greedy one's oldest slot, which is closed.
        let other: IpAddr = [10, 0, 0, 2].into();
        let (_, evicted) = slots.admit(other, &conn(&listener).0, max, share).unwrap();
        let (oldest, oldest_client) = &held[0];
        assert_eq!(evicted, oldest.peer_addr().ok(), "the oldest pending one");
        assert_ne!(evicted, held[1].0.peer_addr().ok());
        let mut buf = [0u8; 1];
        let mut client = oldest_client;
        assert_eq!(
            std::io::Read::read(&mut client, &mut buf).unwrap(),
            0,
            "closed"
        );
        // Its release is a no-op; the others' still count.
        slots.release(greedy, ids[0]);
        slots.release(greedy, ids[1]);
        assert!(slots.admit(other, &conn(&listener).0, max, share).is_ok());
        // The other address at its share gets no more while the house is full.
        assert!(slots.admit(other, &conn(&listener).0, max, share).is_err());
    }

    #[test]
    fn an_ipv6_hosts_64_counts_as_one_address() {
        let v6 = |last: u16, net: u16| IpAddr::from([0x2001, 0xdb8, 0, net, 0, 0, 0, last]);
        assert_eq!(slot_key(v6(1, 1)), slot_key(v6(2, 1)));
        assert_ne!(slot_key(v6(1, 1)), slot_key(v6(1, 2)));
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(slot_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
