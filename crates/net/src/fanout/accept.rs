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
        if let Err(error) = shared.pending.admit(peer.ip(), &shared.config) {
            drop(stream);
            (shared.on_event)(ServerEvent::Rejected { peer, error });
            continue;
        }
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-viewer-{peer}", shared.protocol.name()))
            .spawn(move || serve_viewer(stream, peer, conn_shared));
        let mut handlers = lock(&shared.handlers);
        handlers.retain(|h| !h.is_finished());
        match spawned {
            Ok(h) => handlers.push(h),
            Err(e) => {
                shared.pending.release(peer.ip());
                (shared.on_event)(ServerEvent::Rejected {
                    peer,
                    error: format!("cannot start a thread for it: {e}"),
                })
            }
        }
    }
}

/// Connections between accept and the end of their handshake: in all (at most `max_pending`),
/// and per address (at most `max_pending_per_address`; an IPv6 address counts with its /64, which
/// one host usually holds whole), so one client that opens connections and stalls them cannot
/// take every slot from the others.
#[derive(Debug, Default)]
pub(super) struct PendingSlots(Mutex<(usize, HashMap<IpAddr, usize>)>);

impl PendingSlots {
    /// Takes a slot for a connection from `ip`, or says why there is none.
    pub(super) fn admit(&self, ip: IpAddr, config: &ServerConfig) -> Result<(), String> {
        let mut slots = lock(&self.0);
        let (total, by) = &mut *slots;
        if *total >= config.max_pending {
            return Err(format!(
                "closed at once: {} connections are already in their handshake",
                config.max_pending
            ));
        }
        let mine = by.entry(slot_key(ip)).or_insert(0);
        if *mine >= config.max_pending_per_address {
            return Err(format!(
                "closed at once: {} connections from this address are already in their handshake",
                config.max_pending_per_address
            ));
        }
        *mine += 1;
        *total += 1;
        Ok(())
    }

    /// Gives back the slot of a connection from `ip`.
    pub(super) fn release(&self, ip: IpAddr) {
        let mut slots = lock(&self.0);
        let (total, by) = &mut *slots;
        *total = total.saturating_sub(1);
        let key = slot_key(ip);
        if let Some(n) = by.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                by.remove(&key);
            }
        }
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

/// Holds a connection's handshake slot until its handshake is over, whatever way it ends.
pub(super) struct Pending<'a>(&'a PendingSlots, IpAddr, bool);

impl Pending<'_> {
    fn done(&mut self) {
        if !std::mem::replace(&mut self.2, true) {
            self.0.release(self.1);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

pub(super) fn serve_viewer(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut pending = Pending(&shared.pending, peer.ip(), false);
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

    #[test]
    fn one_address_fills_its_share_of_handshake_slots_and_no_more() {
        let config = ServerConfig::default();
        let slots = PendingSlots::default();
        let greedy: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..config.max_pending_per_address {
            assert_eq!(slots.admit(greedy, &config), Ok(()));
        }
        let refused = slots.admit(greedy, &config).unwrap_err();
        assert!(
            refused.contains("16 connections from this address"),
            "{refused}"
        );
        assert_eq!(slots.admit([10, 0, 0, 2].into(), &config), Ok(()));
        slots.release(greedy);
        assert_eq!(slots.admit(greedy, &config), Ok(()));
        // One IPv6 host's /64 counts as one address; the next /64 does not share it.
        let v6 = |last: u16, net: u16| IpAddr::from([0x2001, 0xdb8, 0, net, 0, 0, 0, last]);
        for i in 0..config.max_pending_per_address as u16 {
            assert_eq!(slots.admit(v6(i, 1), &config), Ok(()));
        }
        assert!(slots.admit(v6(999, 1), &config).is_err());
        assert_eq!(slots.admit(v6(1, 2), &config), Ok(()));
    }

    #[test]
    fn the_total_still_caps_every_address_together() {
        let config = ServerConfig {
            max_pending: 4,
            ..ServerConfig::default()
        };
        let slots = PendingSlots::default();
        for i in 0..4u8 {
            assert_eq!(slots.admit([10, 0, 0, i].into(), &config), Ok(()));
        }
        let refused = slots.admit([10, 0, 0, 9].into(), &config).unwrap_err();
        assert!(refused.contains("4 connections are already"), "{refused}");
    }
}
