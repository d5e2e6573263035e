//! Two-way calls over UDP (`framewire chat --transport udp`): each side runs a [`UdpServer`]
//! for the stream it sends and a [`UdpSubscription`] for the stream it receives, so a call is
//! the one-way session twice, with nothing of its own on the wire but two fields of the hello.
//!
//! The caller binds its server first (on the address it reaches the listener from, port 0),
//! then joins the listener's server with a hello carrying the call's number and its server's
//! port. The listener's server asks its [`Desk`] whether to take the call (one at a time:
//! another number is told "busy", a one-way viewer is told to use chat), and the listener's
//! receiving side then joins the caller's server at the hello's source address and the port
//! it named, with the same call number; the caller's server takes that hello only from the
//! listener's address with its own call number. Both joins pass the cookie (and the token,
//! when one is set) as any viewer's does, so neither server sends a frame to an address that
//! has not proved it receives.
//!
//! A hang-up shuts the side's server down: the peer's subscription receives the end and says
//! the peer hung up. A caller whose stream from the listener is lost joins again with the
//! same number (the session's reconnect, with backoff); the listener takes it over the old
//! call, and its own subscription to the caller's server carries on or rejoins the same way.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use framewire_core::{
    Closer, Connector, Ladder, Packet, Placement, Publisher, Received, Request, StreamInfo,
    Subscription, TransportError,
};

use super::client::{Sealing, UdpClientConfig, UdpLosses, UdpSubscription};
use super::control::{self, Entry, Registered};
use super::server::{Admit, UdpConfig, UdpServer};
use crate::chat::{BUSY, NOT_A_VIEWER};
use crate::fanout::ServerEvent;
use framewire_wire::datagram::HelloMsg;
use framewire_wire::seal::{Session, StreamKeys};

/// Limits of one side of a UDP call.
#[derive(Debug, Clone, Default)]
pub struct UdpCallConfig {
    /// The sending half (its `admit` is set by the side).
    pub server: UdpConfig,
    /// The receiving half (its call number and port are set by the side).
    pub client: UdpClientConfig,
}

/// The caller a listener is in a call with, waiting for its receiving side to join back.
#[derive(Debug, Clone)]
struct Offer {
    /// The caller's server.
    at: SocketAddr,
    call: u16,
    generation: u64,
    /// A sealed call: the caller's stream's keys, from its control connection.
    keys: Option<Arc<StreamKeys>>,
}

#[derive(Default)]
struct DeskState {
    /// The call on: the caller's address and number, and its generation.
    current: Option<(IpAddr, u16, u64)>,
    offered: Option<Offer>,
    generations: u64,
    closed: bool,
}

/// A listener's one call at a time.
#[derive(Default)]
struct Desk {
    state: Mutex<DeskState>,
    changed: Condvar,
}

impl Desk {
    fn lock(&self) -> MutexGuard<'_, DeskState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the hello of `peer` for call `call` (its server on `port`), unless another call
    /// is on; the same call joining again (its stream was lost) is taken over the old one.
    fn take_call(
        &self,
        peer: SocketAddr,
        call: u16,
        port: u16,
        keys: Option<Arc<StreamKeys>>,
    ) -> Result<(), String> {
        let mut state = self.lock();
        if call == 0 {
            return Err(NOT_A_VIEWER.into());
        }
        if state.closed {
            return Err("it is hanging up".into());
        }
        if let Some((ip, on, _)) = state.current
            && (ip, on) != (peer.ip(), call)
        {
            return Err(BUSY.into());
        }
        if port == 0 {
            return Err("a caller's hello names no port for its stream".into());
        }
        state.generations += 1;
        let generation = state.generations;
        state.current = Some((peer.ip(), call, generation));
        state.offered = Some(Offer {
            at: SocketAddr::new(peer.ip(), port),
            call,
            generation,
            keys,
        });
        self.changed.notify_all();
        Ok(())
    }

    /// Waits for a call to join back; `None` once the desk is closed.
    fn wait_offer(&self) -> Option<Offer> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(offer) = state.offered.take() {
                return Some(offer);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The call of `generation` is over (unless a rejoin replaced it already).
    fn end(&self, generation: u64) {
        let mut state = self.lock();
        if state.current.is_some_and(|(_, _, g)| g == generation) {
            state.current = None;
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.offered = None;
        self.changed.notify_all();
    }
}

/// The listening side of UDP calls: takes one call at a time on its address.
pub struct UdpChatListener {
    server: Arc<UdpServer>,
    desk: Arc<Desk>,
    request: Request,
    client: UdpClientConfig,
    losses: Arc<UdpLosses>,
    fingerprint: Option<String>,
}

impl UdpChatListener {
    /// Listens on `addr` for calls. Each call gets this side's stream of `ladder`'s renditions
    /// and is asked for `request` of the caller's ladder; `losses` sums what the receiving
    /// side lost. `on_event` hears of the sending half's peer joining, moving and leaving.
    pub fn bind(
        addr: SocketAddr,
        ladder: Arc<Ladder>,
        fps: f64,
        request: Request,
        config: UdpCallConfig,
        losses: Arc<UdpLosses>,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<UdpChatListener> {
        let desk = Arc::new(Desk::default());
        let fingerprint = config
            .server
            .tls
            .as_ref()
            .map(|t| t.fingerprint().to_string());
        let sealed = fingerprint.is_some();
        let admit = {
            let desk = Arc::clone(&desk);
            Admit(Arc::new(move |peer, hello, keys| {
                if sealed && keys.is_none() && hello.call != 0 {
                    return Err("a call over TLS needs the caller's stream keys".into());
                }
                desk.take_call(peer, hello.call, hello.port, keys.cloned())
            }))
        };
        // Two: a rejoin may arrive before the lost subscription's silence ends it.
        let server = UdpConfig {
            max_viewers: 2,
            admit: Some(admit),
            ..config.server
        };
        let server = UdpServer::bind(addr, ladder, fps, server, on_event)?;
        Ok(UdpChatListener {
            server: Arc::new(server),
            desk,
            request,
            client: config.client,
            losses,
            fingerprint,
        })
    }

    /// With TLS, the certificate's fingerprint (`sha256:HEX`) callers may pin.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The sending half, for the send path's publisher list.
    pub fn server(&self) -> Arc<UdpServer> {
        Arc::clone(&self.server)
    }

    /// Hangs up: the peer gets the end, no more calls are taken, and a
    /// [`connect`](Connector::connect) waiting for a call returns.
    pub fn hang_up(&self) {
        self.desk.close();
        self.server.shutdown();
    }
}

impl Connector for UdpChatListener {
    fn describe(&self) -> String {
        format!("calls on udp://{}", self.local_addr())
    }

    /// Waits for the next call (or a lost call's rejoin) and joins the caller's stream.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        let Some(offer) = self.desk.wait_offer() else {
            return Err(TransportError {
                retry: false,
                source: "hung up while waiting for a call".into(),
            });
        };
        let config = UdpClientConfig {
            call: offer.call,
            port: 0,
            tls: None,
            ..self.client.clone()
        };
        let sealed = offer.keys.as_ref().map(|keys| Sealing {
            session: Arc::new(Session::viewer(keys)),
            _control: None,
        });
        let losses = Arc::clone(&self.losses);
        match UdpSubscription::join_sealed(offer.at, self.request, config, losses, sealed) {
            Ok(subscription) => Ok(Box::new(UdpCallHalf {
                subscription,
                peer: offer.at,
                server: Arc::clone(&self.server),
                desk: Some((Arc::clone(&self.desk), offer.generation)),
                _registered: None,
            })),
            Err(e) => {
                self.desk.end(offer.generation);
                Err(e)
            }
        }
    }
}

/// The calling side over UDP: serves its stream to the listener only, and joins the
/// listener's stream, again with the same call number when it is lost.
pub struct UdpChatDialer {
    addr: SocketAddr,
    request: Request,
    server: Arc<UdpServer>,
    client: UdpClientConfig,
    losses: Arc<UdpLosses>,
}

impl UdpChatDialer {
    /// A caller of `addr`: binds its server (on the local address that reaches `addr`, a
    /// free port) for its stream of `ladder`'s renditions, and asks the listener's ladder
    /// for `request` on [`connect`](Connector::connect).
    pub fn bind(
        addr: SocketAddr,
        ladder: Arc<Ladder>,
        fps: f64,
        request: Request,
        config: UdpCallConfig,
        losses: Arc<UdpLosses>,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<UdpChatDialer> {
        let call = crate::chat::call_number();
        let local = {
            let any: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let probe = UdpSocket::bind(any)?;
            probe.connect(addr)?;
            SocketAddr::new(probe.local_addr()?.ip(), 0)
        };
        let admit = Admit(Arc::new(move |peer: SocketAddr, hello: &HelloMsg, _| {
            if peer.ip() == addr.ip() && hello.call == call {
                Ok(())
            } else {
                Err(format!(
                    "this side is calling {addr}: it takes no viewers and no other call"
                ))
            }
        }));
        let server = UdpConfig {
            max_viewers: 2,
            admit: Some(admit),
            // Its streams are keyed by its own control connection to the listener.
            tls: None,
            sealed: config.client.tls.is_some(),
            ..config.server
        };
        let server = UdpServer::bind(local, ladder, fps, server, on_event)?;
        let client = UdpClientConfig {
            call,
            port: server.local_addr().port(),
            ..config.client
        };
        Ok(UdpChatDialer {
            addr,
            request,
            server: Arc::new(server),
            client,
            losses,
        })
    }

    /// The sending half, for the send path's publisher list.
    pub fn server(&self) -> Arc<UdpServer> {
        Arc::clone(&self.server)
    }

    /// Hangs up: the peer gets the end.
    pub fn hang_up(&self) {
        self.server.shutdown();
    }
}

impl Connector for UdpChatDialer {
    fn describe(&self) -> String {
        format!("udp://{}", self.addr)
    }

    /// Joins the listener's stream, announcing this side's; the listener joins back. With
    /// TLS, a control connection to the listener first keys both streams.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        let (sealed, registered) = match (&self.client.tls, self.server.sessions()) {
            (Some(tls), Some(sessions)) => {
                let timeout = std::time::Duration::from_secs(3);
                let (control, keys, caller) = control::dial(self.addr, tls, true, timeout)?;
                let caller = caller.expect("a call's control connection exports both streams");
                let registered = sessions.insert(Entry {
                    session: Arc::new(Session::server(&caller)),
                    caller: None,
                });
                let sealing = Sealing {
                    session: Arc::new(Session::viewer(&keys)),
                    _control: Some(control),
                };
                (Some(sealing), Some(registered))
            }
            _ => (None, None),
        };
        let subscription = UdpSubscription::join_sealed(
            self.addr,
            self.request,
            UdpClientConfig {
                tls: None,
                ..self.client.clone()
            },
            Arc::clone(&self.losses),
            sealed,
        )?;
        Ok(Box::new(UdpCallHalf {
            subscription,
            peer: self.addr,
            server: Arc::clone(&self.server),
            desk: None,
            _registered: registered,
        }))
    }
}

/// A UDP call's receiving half. Its closer hangs up.
struct UdpCallHalf {
    subscription: UdpSubscription,
    /// The peer's server.
    peer: SocketAddr,
    server: Arc<UdpServer>,
    /// A listener's desk and this call's generation there.
    desk: Option<(Arc<Desk>, u64)>,
    /// A sealed caller: the session its listener joins its stream under, while the call is on.
    _registered: Option<Registered>,
}

impl Drop for UdpCallHalf {
    fn drop(&mut self) {
        if let Some((desk, generation)) = &self.desk {
            desk.end(*generation);
        }
    }
}

impl Subscription for UdpCallHalf {
    fn stream(&self) -> StreamInfo {
        self.subscription.stream()
    }

    fn placement(&self) -> Placement {
        self.subscription.placement()
    }

    fn fps(&self) -> f64 {
        self.subscription.fps()
    }

    fn peer(&self) -> String {
        format!("peer udp://{}", self.peer)
    }

    fn position(&self) -> String {
        self.subscription.position()
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        self.subscription.recv(packet)
    }

    /// Hangs up: the end goes out to the peer from this side's server, and the receive
    /// returns within a report interval.
    fn closer(&self) -> Closer {
        let server = Arc::clone(&self.server);
        let desk = self.desk.as_ref().map(|(d, _)| Arc::clone(d));
        let closed = self.subscription.closer();
        Arc::new(move || {
            if let Some(desk) = &desk {
                desk.close();
            }
            server.shutdown();
            closed();
        })
    }
}
