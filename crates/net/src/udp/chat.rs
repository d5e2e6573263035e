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
//! The listener's desk and the call's halves are [`crate::call`]'s, as over TCP, and so is the
//! rule for a caller that is lost.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use framewire_core::{
    CallSide, Connector, Ladder, Publisher, Request, Subscription, TransportError,
};

use super::client::{Sealing, UdpClientConfig, UdpLosses, UdpSubscription};
use super::control::{self, Entry};
use super::server::{Admit, UdpConfig, UdpServer};
use crate::call::{CallHalf, Desk, Line, Offer};
use crate::chat::NOT_A_VIEWER;
use crate::fanout::ServerEvent;
use crate::roster::Refused;
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
struct UdpOffer {
    /// The caller's server.
    at: SocketAddr,
    call: u16,
    generation: u64,
    /// A sealed call: the caller's stream's keys, from its control connection.
    keys: Option<Arc<StreamKeys>>,
}

impl Offer for UdpOffer {}

/// The listening side of UDP calls: takes one call at a time on its address.
pub struct UdpChatListener {
    server: Arc<UdpServer>,
    desk: Arc<Desk<UdpOffer>>,
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
        let desk = Arc::new(Desk::new());
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
                if hello.call == 0 {
                    return Err(NOT_A_VIEWER.into());
                }
                if hello.port == 0 {
                    return Err("a caller's hello names no port for its stream".into());
                }
                let offer = |generation| {
                    Some(UdpOffer {
                        at: SocketAddr::new(peer.ip(), hello.port),
                        call: hello.call,
                        generation,
                        keys: keys.cloned(),
                    })
                };
                desk.take_call(peer.ip(), hello.call, None, offer)
                    .map(drop)
                    .map_err(Refused)
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
        Line::close(&*self.desk);
        self.server.shutdown();
    }
}

impl CallSide for UdpChatListener {
    fn sending(&self) -> Arc<dyn Publisher> {
        self.server()
    }

    fn hang_up(&self) {
        UdpChatListener::hang_up(self);
    }

    fn listening(&self) -> Option<(String, Option<String>)> {
        let fingerprint = self.tls_fingerprint().map(str::to_string);
        Some((format!("udp://{}", self.local_addr()), fingerprint))
    }
}

impl Connector for UdpChatListener {
    fn describe(&self) -> String {
        format!("calls on udp://{}", self.local_addr())
    }

    /// Waits for the next call (or a lost call's rejoin) and joins the caller's stream.
    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        // A lost caller has the idle timeout to call back.
        let offer = self.desk.next_call(self.client.idle_timeout)?;
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
            Ok(subscription) => Ok(Box::new(CallHalf {
                receiving: Box::new(subscription),
                sending: self.server.clone(),
                peer: format!("peer udp://{}", offer.at),
                desk: Some((self.desk.clone(), offer.generation)),
                _keep: None,
            })),
            Err(e) => {
                Line::end(&*self.desk, offer.generation);
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
                Err(
                    format!("this side is calling {addr}: it takes no viewers and no other call")
                        .into(),
                )
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

impl CallSide for UdpChatDialer {
    fn sending(&self) -> Arc<dyn Publisher> {
        self.server()
    }

    fn hang_up(&self) {
        UdpChatDialer::hang_up(self);
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
        Ok(Box::new(CallHalf {
            receiving: Box::new(subscription),
            sending: self.server.clone(),
            peer: format!("peer udp://{}", self.addr),
            desk: None,
            _keep: registered.map(|r| Box::new(r) as Box<dyn Send>),
        }))
    }
}
