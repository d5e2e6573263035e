//! Accepting: the accept loop, the cap on connections still in their handshake, the TLS
//! handshake when configured, and each connection's request under one deadline.

use super::*;
use crate::roster::{Delivery, Refusal};
use std::collections::HashMap;
use std::net::IpAddr;

pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.roster.is_stopping() {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: say so, back off, keep serving.
                tracing::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let id = match shared.pending.admit(peer.ip(), &stream, &shared.config) {
            Ok((id, evicted)) => {
                if let Some(evicted) = evicted {
                    (shared.on_event)(ServerEvent::Rejected {
                        peer: evicted,
                        error: format!(
                            "closed in its handshake: all {} handshake slots were taken, and \
                             {peer} needed one more than this address",
                            shared.config.max_pending
                        ),
                    });
                }
                id
            }
            Err(error) => {
                drop(stream);
                (shared.on_event)(ServerEvent::Rejected { peer, error });
                continue;
            }
        };
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-viewer-{peer}", shared.protocol.name()))
            .spawn(move || serve_viewer(stream, peer, id, conn_shared));
        let mut handlers = lock(&shared.handlers);
        handlers.retain(|h| !h.is_finished());
        match spawned {
            Ok(h) => handlers.push(h),
            Err(e) => {
                shared.pending.release(peer.ip(), id);
                (shared.on_event)(ServerEvent::Rejected {
                    peer,
                    error: format!("cannot start a thread for it: {e}"),
                })
            }
        }
    }
}

/// Connections between accept and the end of their handshake, by address (an IPv6 address
/// counts with its /64, which one host usually holds whole): at most `max_pending` in all. While
/// slots are free any address takes them. When they are all taken, a connection from an address
/// holding fewer than `max_pending_per_address` takes the slot of the oldest pending connection
/// of the address that holds the most (that connection is closed), so one client that opens
/// connections and stalls them cannot keep another address's viewer out; one from an address
/// holding its share or more is closed at once.
#[derive(Debug, Default)]
pub(super) struct PendingSlots(Mutex<Slots>);

#[derive(Debug, Default)]
struct Slots {
    next: u64,
    total: usize,
    /// Each address's pending connections, oldest first: an id and a handle to close it by.
    by: HashMap<IpAddr, Vec<(u64, Option<TcpStream>)>>,
}

impl PendingSlots {
    /// Takes a slot for `stream`, a connection from `ip`: its id, and the peer whose pending
    /// connection was closed to make room, if one was; or why there is no slot.
    pub(super) fn admit(
        &self,
        ip: IpAddr,
        stream: &TcpStream,
        config: &ServerConfig,
    ) -> Result<(u64, Option<SocketAddr>), String> {
        let mut slots = lock(&self.0);
        let slots = &mut *slots;
        let key = slot_key(ip);
        let mut evicted = None;
        if slots.total >= config.max_pending {
            let mine = slots.by.get(&key).map_or(0, Vec::len);
            if mine >= config.max_pending_per_address {
                return Err(format!(
                    "closed at once: all {} handshake slots are taken, {mine} of them by this \
                     address",
                    config.max_pending
                ));
            }
            // The slot of the greediest address's oldest pending connection.
            let greediest = slots
                .by
                .iter_mut()
                .max_by_key(|(_, held)| held.len())
                .filter(|(_, held)| held.len() > mine + 1);
            let Some((_, held)) = greediest else {
                return Err(format!(
                    "closed at once: {} connections are already in their handshake",
                    config.max_pending
                ));
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
    pub(super) fn release(&self, ip: IpAddr, id: u64) {
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

/// Holds a connection's handshake slot (its address and id) until its handshake is over,
/// whatever way it ends.
pub(super) struct Pending<'a>(&'a PendingSlots, IpAddr, u64, bool);

impl Pending<'_> {
    fn done(&mut self) {
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

pub(super) fn serve_viewer(stream: TcpStream, peer: SocketAddr, id: u64, shared: Arc<Shared>) {
    let mut pending = Pending(&shared.pending, peer.ip(), id, false);
    serve_handshaken(stream, peer, &shared, &mut pending);
}

pub(super) fn serve_handshaken(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    pending: &mut Pending<'_>,
) {
    let reject = |error: String| (shared.on_event)(ServerEvent::Rejected { peer, error });
    let cfg = &shared.config;
    if let Err(e) = configure(&stream, cfg) {
        return reject(e);
    }
    // One deadline for the TLS handshake and the protocol's opening together.
    let deadline = Instant::now() + cfg.handshake_timeout;
    let mut stream = match &cfg.tls {
        None => Conn::plain(stream),
        Some(tls) => match tls.accept(stream, deadline, &shared.protocol.plaintext_at_tls_port()) {
            Ok(conn) => conn,
            Err(e) => return reject(e),
        },
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let asked = match shared
        .protocol
        .read_request(&mut stream, left.max(Duration::from_millis(1)))
    {
        Ok(Opening::Stream { request, framer }) => (request, framer, false),
        Ok(Opening::One { request, framer }) => (request, framer, true),
        Ok(Opening::Answered) => return,
        Err(e) => {
            let _ = stream.shutdown(Shutdown::Both);
            return reject(e.0);
        }
    };
    pending.done();
    serve_request(stream, peer, asked, shared);
}

/// Sets up a subscriber's socket: no Nagle delay, the handshake deadline for reads, the write
/// timeout for writes.
pub(super) fn configure(stream: &TcpStream, cfg: &ServerConfig) -> Result<(), String> {
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(cfg.handshake_timeout)))
        .and_then(|()| stream.set_write_timeout(Some(cfg.write_timeout)))
        .map_err(|e| format!("socket setup failed: {e}"))
}

/// Places a subscriber that asked for `request` on the ladder (or refuses it), then serves it
/// until it goes: one packet when `once`, else a stream, written by `framer`.
pub(super) fn serve_request(
    mut stream: Conn,
    peer: SocketAddr,
    (request, mut framer, once): (Request, Box<dyn Framer>, bool),
    shared: &Arc<Shared>,
) {
    let reject = |error: String| (shared.on_event)(ServerEvent::Rejected { peer, error });
    let cfg = &shared.config;
    let mut say_end = |stream: &mut Conn, reason: Option<&str>| {
        let mut bytes = Vec::new();
        framer.end(reason, &mut bytes);
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(Shutdown::Both);
    };
    let placement = match shared.roster.ladder.join(&request) {
        Ok(p) => p,
        Err(e) => {
            let reason = e.to_string();
            say_end(&mut stream, Some(&reason));
            return reject(reason);
        }
    };
    let adapts = !once && request.follows_link() && shared.roster.ladder.adapts();
    let socket = match stream.tcp().try_clone() {
        Ok(s) => s,
        Err(e) => {
            shared.roster.ladder.leave(placement.id);
            return reject(format!("socket setup failed: {e}"));
        }
    };
    let viewer = Arc::new(Viewer::new(peer, placement.id, Stream { socket }));
    let count = match shared.roster.admit(&viewer, cfg.max_viewers) {
        Ok(count) => count,
        Err(Refusal::Stopping) => return say_end(&mut stream, None),
        Err(Refusal::Full(reason)) => {
            say_end(&mut stream, Some(&reason));
            return reject(reason);
        }
    };
    let delivery = Delivery {
        roster: &shared.roster,
        member: &viewer,
        on_event: &*shared.on_event,
        sent: &shared.sent,
        adapts,
        once,
    };
    let mut outlet = StreamOutlet::new(&mut stream, framer, cfg.write_timeout, adapts);
    delivery.run(&mut outlet, placement, count);
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
        let config = ServerConfig {
            max_pending: 8,
            max_pending_per_address: 2,
            ..ServerConfig::default()
        };
        let slots = PendingSlots::default();
        let greedy: IpAddr = [10, 0, 0, 1].into();
        // Free slots: any address takes them, past its share.
        let held: Vec<(TcpStream, TcpStream)> = (0..8).map(|_| conn(&listener)).collect();
        let ids: Vec<u64> = held
            .iter()
            .map(|(s, _)| slots.admit(greedy, s, &config).unwrap().0)
            .collect();
        // Full: the greedy address gets no more.
        let refused = slots
            .admit(greedy, &conn(&listener).0, &config)
            .unwrap_err();
        assert!(refused.contains("8 of them by this address"), "{refused}");
        // Another address takes the greedy one's oldest slot, which is closed.
        let other: IpAddr = [10, 0, 0, 2].into();
        let (_, evicted) = slots.admit(other, &conn(&listener).0, &config).unwrap();
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
        assert!(slots.admit(other, &conn(&listener).0, &config).is_ok());
        // The other address at its share gets no more while the house is full.
        assert!(slots.admit(other, &conn(&listener).0, &config).is_err());
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
