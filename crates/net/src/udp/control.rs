//! The TLS control connection of a sealed UDP stream (`--transport udp --tls`): on the TCP
//! port with the UDP port's number, a viewer runs a TLS handshake (trusting the certificate as
//! `view --tls` does), says a control hello, and both sides export the stream's keys from the
//! session ([`StreamKeys`]); the datagrams are then sealed with them ([`super::seal`]). The
//! connection stays open while the stream runs: when it closes, the server forgets the keys
//! and ends the viewer; when the server has heard nothing under them for its idle timeout, it
//! closes the connection.
//!
//! ```text
//! viewer -> server  TLS handshake
//! viewer -> server  "FWUC", version 1, flags (1: a call; export the caller's stream too), 0, 0
//! server -> viewer  "FWUC", version 1, 0, 0, 0
//! ```
//!
//! Anything else first (a framewire TCP hello) is answered with a framewire error saying to
//! add `--transport udp`; a plaintext peer is told to add `--tls` as well.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::NetError;
use crate::conn::Conn;
use crate::fanout::ServerEvent;
use crate::slots::{NoSlot, Pending, PendingSlots};
use crate::tls::{PlaintextAnswer, TlsClient, TlsServer, framewire_error};
use framewire_wire::seal::{self, Session, Stream, StreamKeys};

/// The control hello's and answer's first bytes.
const MAGIC: &[u8; 4] = b"FWUC";
/// The control layout's version.
const VERSION: u8 = 1;
/// The hello's flag for a call.
const CALL: u8 = 1;
/// How long a control connection may take to its hello.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How often a held control connection looks at its session.
const TICK: Duration = Duration::from_millis(500);
/// What this port tells a peer that speaks something else over TLS.
const NOT_CONTROL: &str = "this port is a udp stream's TLS control port: add --transport udp";
/// What it tells a plaintext peer.
const EXPECTS_UDP_TLS: &str = "this port is a udp stream with TLS: add --transport udp --tls";

/// The sessions a sealed server knows, by id: each keyed by a control connection (or, for a
/// caller's own stream, by the caller's control connection to the listener).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 8], Entry>>,
}

/// A session and, when its control connection is a call's, the caller's stream keys.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The server's end of the stream's session.
    pub session: Arc<Session>,
    /// A call's other stream: the caller's, which the listener joins.
    pub caller: Option<Arc<StreamKeys>>,
}

impl Sessions {
    /// Adds a session; it is forgotten (and closed) when the guard drops.
    pub fn insert(self: &Arc<Self>, entry: Entry) -> Registered {
        let id = entry.session.id();
        let session = Arc::clone(&entry.session);
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, entry);
        Registered {
            sessions: Arc::clone(self),
            session,
        }
    }

    /// The session of `id`.
    pub fn get(&self, id: &[u8; 8]) -> Option<Entry> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 8], Entry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's place in [`Sessions`]; dropping it forgets the session and closes it.
#[derive(Debug)]
pub struct Registered {
    sessions: Arc<Sessions>,
    session: Arc<Session>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.session.close();
        self.sessions.lock().remove(&self.session.id());
    }
}

/// A server's control port: accepts control connections and keeps their sessions.
pub struct ControlPort {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

type EventFn = dyn Fn(ServerEvent) + Send + Sync;

impl ControlPort {
    /// Listens on TCP `addr` (the UDP socket's address) for control connections, at most
    /// `max` at once, each closed once its session has been silent for `idle`. The slots are
    /// fair ([`crate::slots`]): when all are taken, an address holding fewer than a quarter
    /// of them takes the oldest of the address holding the most.
    pub fn bind(
        addr: SocketAddr,
        tls: TlsServer,
        sessions: Arc<Sessions>,
        idle: Duration,
        max: usize,
        on_event: Arc<EventFn>,
    ) -> io::Result<ControlPort> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("its TLS control port, tcp {addr}, cannot be bound: {e}"),
            )
        })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(PendingSlots::default());
        let share = (max / 4).max(1);
        let accept = {
            let stopping = Arc::clone(&stopping);
            thread::Builder::new()
                .name("udp-control".into())
                .spawn(move || {
                    for accepted in listener.incoming() {
                        if stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(tcp) = accepted else { continue };
                        let Ok(peer) = tcp.peer_addr() else { continue };
                        let id = match slots.admit(peer.ip(), &tcp, max, share) {
                            Ok((id, evicted)) => {
                                if let Some(evicted) = evicted {
                                    on_event(ServerEvent::Rejected {
                                        peer: evicted,
                                        error: format!(
                                            "control connection closed: all {max} were taken, \
                                             and {peer} needed one more than this address"
                                        ),
                                    });
                                }
                                id
                            }
                            Err(no_slot) => {
                                let error = match no_slot {
                                    NoSlot::Share { mine, .. } => format!(
                                        "control connection: {max} are open already, {mine} \
                                         of them from this address"
                                    ),
                                    NoSlot::Full { .. } => {
                                        format!("control connection: {max} are open already")
                                    }
                                };
                                on_event(ServerEvent::Rejected { peer, error });
                                continue;
                            }
                        };
                        let slots = Arc::clone(&slots);
                        let (tls, sessions, stopping, on_event) = (
                            tls.clone(),
                            Arc::clone(&sessions),
                            Arc::clone(&stopping),
                            Arc::clone(&on_event),
                        );
                        let spawned = thread::Builder::new()
                            .name(format!("udp-control-{peer}"))
                            .spawn(move || {
                                let _slot = Pending(&slots, peer.ip(), id, false);
                                let held_conn = Held {
                                    tls: &tls,
                                    sessions: &sessions,
                                    idle,
                                    stopping: &stopping,
                                };
                                if let Err(error) = held_conn.serve(tcp) {
                                    on_event(ServerEvent::Rejected { peer, error });
                                }
                            });
                        if let Err(e) = spawned {
                            tracing::warn!(%peer, "cannot start a control thread: {e}");
                        }
                    }
                })?
        };
        Ok(ControlPort {
            addr,
            stopping,
            accept: Some(accept),
        })
    }

    /// Stops taking control connections; those held end within a tick.
    pub fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        crate::conn::wake_accept(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for ControlPort {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One control connection on the server.
struct Held<'a> {
    tls: &'a TlsServer,
    sessions: &'a Arc<Sessions>,
    idle: Duration,
    stopping: &'a AtomicBool,
}

impl Held<'_> {
    /// Runs the connection: handshake, hello, keys, then held until it closes or its session
    /// goes silent. An error is one line for the server's log.
    fn serve(&self, tcp: TcpStream) -> Result<(), String> {
        let deadline = Instant::now() + HANDSHAKE;
        let plaintext = PlaintextAnswer {
            bytes: framewire_error(EXPECTS_UDP_TLS),
            told: "told to add --transport udp --tls",
        };
        let mut conn = self.tls.accept(tcp, deadline, &plaintext)?;
        let left = deadline.saturating_duration_since(Instant::now());
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| format!("control connection: {e}"))?;
        let mut hello = [0u8; 8];
        conn.read_exact(&mut hello)
            .map_err(|e| format!("control connection: no control hello: {e}"))?;
        if &hello[..4] != MAGIC {
            let _ = conn.write_all(&framewire_error(NOT_CONTROL));
            let _ = conn.shutdown(std::net::Shutdown::Write);
            return Err(format!(
                "control connection: not a udp viewer (told: {NOT_CONTROL})"
            ));
        }
        if hello[4] != VERSION {
            return Err(format!(
                "control connection: layout version {}, this server speaks {VERSION}",
                hello[4]
            ));
        }
        let export =
            |stream| export_keys(&conn, stream).map_err(|e| format!("control connection: {e}"));
        let keys = export(Stream::OfAcceptor)?;
        let caller = if hello[5] & CALL != 0 {
            Some(Arc::new(export(Stream::OfCaller)?))
        } else {
            None
        };
        let session = Arc::new(Session::server(&keys));
        let _registered = self.sessions.insert(Entry {
            session: Arc::clone(&session),
            caller,
        });
        conn.write_all(&[MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0])
            .map_err(|e| format!("control connection: {e}"))?;
        conn.set_read_timeout(Some(TICK))
            .map_err(|e| format!("control connection: {e}"))?;
        let opened = Instant::now();
        let mut sink = [0u8; 64];
        loop {
            match conn.read(&mut sink) {
                Ok(0) => return Ok(()),
                // Nothing is said after the hello; whatever comes is read and dropped.
                Ok(_) => {}
                Err(e) if crate::conn::is_timeout(&e) => {
                    if self.stopping.load(Ordering::SeqCst) || session.is_closed() {
                        return Ok(());
                    }
                    if session.heard().unwrap_or(opened).elapsed() > self.idle {
                        return Ok(());
                    }
                }
                Err(_) => return Ok(()),
            }
        }
    }
}

/// A viewer's control connection, held open while its stream runs.
pub struct Control {
    _conn: Conn,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control(..)")
    }
}

/// Opens the control connection to the server at `addr` (TCP, the UDP port's number), trusts
/// its certificate as `tls` says, and exports the stream's keys (and, for a `call`, the
/// caller's stream's keys as well).
pub fn dial(
    addr: SocketAddr,
    tls: &TlsClient,
    call: bool,
    timeout: Duration,
) -> Result<(Control, StreamKeys, Option<StreamKeys>), NetError> {
    let deadline = Instant::now() + timeout;
    let connect_err = |source: io::Error| NetError::Connect {
        addr,
        source: io::Error::new(
            source.kind(),
            format!(
                "its TLS control port (tcp {addr}): {source}; is it started with --transport udp --tls?"
            ),
        ),
    };
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(connect_err)?;
    tcp.set_nodelay(true).map_err(connect_err)?;
    tcp.set_write_timeout(Some(timeout)).map_err(connect_err)?;
    let mut conn = tls.connect(tcp, deadline).map_err(|r| NetError::Tls {
        peer: addr,
        reason: r.reason,
        retry: r.retry,
    })?;
    let left = deadline.saturating_duration_since(Instant::now());
    conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .map_err(connect_err)?;
    let flags = if call { CALL } else { 0 };
    let hello = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, flags, 0, 0];
    let not_control = || NetError::Refused {
        peer: addr,
        reason: Some(format!(
            "its TCP port {} is not a udp stream's TLS control port: is it serve --transport udp --tls?",
            addr.port()
        )),
    };
    conn.write_all(&hello).map_err(connect_err)?;
    let mut answer = [0u8; 8];
    match conn.read_exact(&mut answer) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(not_control()),
        Err(e) => return Err(connect_err(e)),
    }
    if &answer[..4] != MAGIC || answer[4] != VERSION {
        return Err(not_control());
    }
    let export = |stream| export_keys(&conn, stream).map_err(connect_err);
    let keys = export(Stream::OfAcceptor)?;
    let caller = if call {
        Some(export(Stream::OfCaller)?)
    } else {
        None
    };
    Ok((Control { _conn: conn }, keys, caller))
}

/// Exports the keys of `stream` from the TLS session of `conn` (both sides get the same).
fn export_keys(conn: &Conn, stream: Stream) -> io::Result<StreamKeys> {
    let mut out = [0u8; seal::EXPORTED_LEN];
    conn.export_keying_material(&mut out, seal::EXPORTER_LABEL, stream.context())?;
    Ok(StreamKeys::from_bytes(&out))
}
