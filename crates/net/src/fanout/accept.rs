//! Accepting: the accept loop, the cap on connections still in their handshake, the TLS
//! handshake when configured, and each connection's request under one deadline.

use super::*;
use crate::roster::{Delivery, Gone, Refusal};
use crate::slots::{NoSlot, Pending};

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
        let (max, share) = (
            shared.config.max_pending,
            shared.config.max_pending_per_address,
        );
        let id = match shared.pending.admit(peer.ip(), &stream, max, share) {
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
            Err(no_slot) => {
                let why = match no_slot {
                    NoSlot::Share { total, mine } => format!(
                        "all {total} handshake slots are taken, {mine} of them by this address"
                    ),
                    NoSlot::Full { total } => {
                        format!("{total} connections are already in their handshake")
                    }
                };
                // A plaintext peer is told why in its protocol (TLS has no words before its
                // handshake: its peer hears of a closed handshake, which names this case).
                if shared.config.tls.is_none() {
                    say_busy(&stream, &shared.protocol.busy(&why));
                }
                let error = format!("closed at once: {why}");
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

/// Writes `answer` to a connection that gets no slot, without waiting: what it sent so far is
/// read first (so that the close is not a reset that could lose the answer), then one write,
/// then the close.
fn say_busy(stream: &TcpStream, answer: &[u8]) {
    use std::io::{Read, Write};
    let mut stream = stream;
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.read(&mut [0u8; 4096]);
    let _ = stream.write(answer);
    let _ = stream.shutdown(Shutdown::Write);
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
        Ok(Opening::Stream {
            request,
            framer,
            reader,
        }) => (request, framer, reader, false),
        Ok(Opening::One { request, framer }) => (request, framer, None, true),
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

/// What a connection asked for: a rendition, how its stream is written, what reads the
/// subscriber's side, and whether it wants one packet only.
pub(super) type Asked = (Request, Box<dyn Framer>, Option<Box<dyn PeerReader>>, bool);

/// Places a subscriber that asked for `request` on the ladder (or refuses it), then serves it
/// until it goes: one packet when `once`, else a stream, written by `framer`, while `reader`
/// (if any) reads its side on a thread of its own.
pub(super) fn serve_request(
    mut stream: Conn,
    peer: SocketAddr,
    (request, mut framer, reader, once): Asked,
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
    let Some(reader) = reader else {
        return delivery.run(&mut outlet, placement, count);
    };
    // The reader returns once the delivery's end shuts the connection down, if not before.
    thread::scope(|scope| {
        let read = thread::Builder::new()
            .name(format!("{}-reader-{peer}", shared.protocol.name()))
            .spawn_scoped(scope, || {
                viewer.end(match reader.read() {
                    PeerEnd::Left => Gone::Left,
                    PeerEnd::Broke(why) => Gone::Lost(why),
                })
            });
        if let Err(e) = read {
            viewer.end(Gone::Lost(format!("cannot start a thread to read it: {e}")));
        }
        delivery.run(&mut outlet, placement, count);
    });
}
