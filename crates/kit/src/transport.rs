//! Each transport's parts from plain options: the framewire server a sending side binds, the
//! connector a viewer receives through, and the side a call is made with, over TCP or UDP. The
//! only file in this crate that names a transport (checked by `tests/architecture.rs`): callers
//! see a [`Publisher`], a [`Connector`] and a [`CallSide`], and the transport's own figures as
//! [`Extra`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use framewire_core::{CallSide, Connector, Ladder, Publisher, Request, Subscription};
use framewire_net::hub::{HubConfig, HubListener, HubPusher, PushEvent as HubPushEvent};
use framewire_net::publish::{Push, PushConfig, PushEvent, Scheme, Target};
use framewire_net::udp::{
    UdpCallConfig, UdpChatDialer, UdpChatListener, UdpClientConfig, UdpConfig, UdpConnector,
    UdpLosses, UdpServer,
};
use framewire_net::{
    Board, CallConfig, ChatDialer, ChatListener, ClientConfig, HttpProtocol, Server, ServerConfig,
    ServerEvent, TcpConnector, TlsClient,
};
use framewire_wire::token::Token;

/// How a stream travels: framewire over TCP, or over UDP datagrams (frames cut to the MTU, with
/// parity). Written `tcp` and `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// framewire over TCP (TLS under it with a TLS config).
    #[default]
    Tcp,
    /// framewire over UDP datagrams.
    Udp,
}

impl Transport {
    /// Every transport, as written.
    pub const NAMES: [&'static str; 2] = ["tcp", "udp"];
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// A transport's name that is not one: `tcp` and `udp` are.
#[derive(Debug, thiserror::Error)]
#[error("expected tcp or udp, got {0:?}")]
pub struct UnknownTransport(String);

impl std::str::FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Transport, UnknownTransport> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(UnknownTransport(s.to_string())),
        }
    }
}

/// How a sending side's stream travels, and the settings only UDP has.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransportOptions {
    /// The transport.
    pub transport: Transport,
    /// UDP: frame bytes per datagram (`None`: UDP's default).
    pub mtu: Option<usize>,
    /// UDP: data datagrams per parity datagram, 0 for none (`None`: UDP's default).
    pub fec: Option<u8>,
}

impl TransportOptions {
    /// The UDP server's settings, silence past `idle_timeout` ending a viewer.
    fn udp(&self, idle_timeout: Duration) -> UdpConfig {
        let default = UdpConfig::default();
        UdpConfig {
            mtu: self.mtu.unwrap_or(default.mtu),
            fec: self.fec.unwrap_or(default.fec),
            idle_timeout,
            ..default
        }
    }
}

/// Why a transport's part could not be made: where it was to listen or call, and the error.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A listener could not bind.
    #[error("cannot listen on {at}")]
    Listen {
        /// The address, `udp://` before a datagram one.
        at: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// A caller could not be made.
    #[error("cannot call {at}")]
    Call {
        /// The address, `udp://` before a datagram one.
        at: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
}

/// What a transport adds to the receiving side's figures beside the session's (UDP: what it
/// lost).
#[derive(Default)]
pub struct Extra(Option<Arc<UdpLosses>>);

impl Extra {
    /// The figures by name: UDP's `lost`, `fragments_lost`, `fragments_recovered` and
    /// `datagrams_dropped`, `datagrams_forged`, `datagrams_unsent` and
    /// `frames_before_keyframe`; none for TCP.
    pub fn figures(&self) -> Vec<(&'static str, u64)> {
        let Some(losses) = &self.0 else {
            return Vec::new();
        };
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("lost", n(&losses.lost)),
            ("fragments_lost", n(&losses.fragments_lost)),
            ("fragments_recovered", n(&losses.recovered)),
            ("datagrams_dropped", n(&losses.dropped_datagrams)),
            ("datagrams_forged", n(&losses.forged)),
            ("datagrams_unsent", n(&losses.unsent)),
            ("frames_before_keyframe", n(&losses.awaited_keyframe)),
        ]
    }
}

/// A bound framewire server: the publisher, where it listens (`udp://` before a datagram
/// address), and its closing line (UDP: the datagrams it dropped, by why).
pub struct Served {
    /// The server, as a publisher.
    pub publisher: Arc<dyn Publisher>,
    /// Where it listens.
    pub at: String,
    /// Its closing line, if it has one.
    pub closing: Option<Box<dyn Fn() -> String>>,
}

/// The framewire server of `ladder`'s renditions on `listen` over `net`'s transport, its
/// figures on `board`; `idle` is UDP's silence before a viewer is gone.
pub fn server(
    listen: SocketAddr,
    net: &TransportOptions,
    idle: Option<Duration>,
    (ladder, fps): (Arc<Ladder>, f64),
    config: ServerConfig,
    board: &Board,
    on_event: fn(ServerEvent),
) -> Result<Served, TransportError> {
    if net.transport == Transport::Udp {
        let idle = idle.unwrap_or(UdpConfig::default().idle_timeout);
        let config = UdpConfig {
            max_viewers: config.max_viewers,
            token: config.token,
            tls: config.tls,
            ..net.udp(idle)
        };
        let server = UdpServer::bind(listen, ladder, fps, config, on_event).map_err(|error| {
            let at = format!("udp://{listen}");
            TransportError::Listen { at, error }
        })?;
        board.watch(&server);
        let server = Arc::new(server);
        let drops = Arc::clone(&server);
        return Ok(Served {
            at: format!("udp://{}", server.local_addr()),
            publisher: server,
            closing: Some(Box::new(move || drops.drops().to_string())),
        });
    }
    let server = Server::bind(listen, ladder, fps, config, on_event).map_err(|error| {
        let at = listen.to_string();
        TransportError::Listen { at, error }
    })?;
    board.watch(&server);
    Ok(Served {
        at: server.local_addr().to_string(),
        publisher: Arc::new(server),
        closing: None,
    })
}

/// The HTTP server of `ladder`'s renditions (as JPEG, the page, `/stats`) on `addr`, HTTPS
/// with `config`'s TLS, its figures on `board`; `names`: the host names requests may give
/// besides its addresses (`--http-host`).
pub fn http(
    addr: SocketAddr,
    ladder: Arc<Ladder>,
    board: &Arc<Board>,
    config: ServerConfig,
    names: Vec<String>,
    on_event: fn(ServerEvent),
) -> Result<Served, TransportError> {
    let board = Arc::clone(board);
    let http =
        HttpProtocol::bind(addr, ladder, board, config, names, on_event).map_err(|error| {
            TransportError::Listen {
                at: addr.to_string(),
                error,
            }
        })?;
    Ok(Served {
        at: http.local_addr().to_string(),
        publisher: Arc::new(http),
        closing: None,
    })
}

/// What a receiving side's connection needs, whatever carries it.
pub struct Receiving {
    /// The transport.
    pub transport: Transport,
    /// The largest frame payload accepted, in bytes.
    pub max_payload: u32,
    /// Time without data before the connection counts as lost.
    pub idle_timeout: Duration,
    /// The shared token, if the server asks for one.
    pub token: Option<Token>,
    /// TLS, and how the server's certificate is trusted.
    pub tls: Option<TlsClient>,
}

/// The connector a viewer of `addr` receives through, asking for `request`.
pub fn connector(
    addr: SocketAddr,
    request: Request,
    how: Receiving,
) -> (Box<dyn Connector>, Extra) {
    if how.transport == Transport::Udp {
        let losses = Arc::new(UdpLosses::default());
        let udp = UdpConnector {
            addr,
            request,
            config: UdpClientConfig {
                max_payload: how.max_payload,
                idle_timeout: how.idle_timeout,
                token: how.token,
                tls: how.tls,
                ..UdpClientConfig::default()
            },
            losses: Arc::clone(&losses),
        };
        return (Box::new(udp), Extra(Some(losses)));
    }
    let tcp = TcpConnector {
        addr,
        request,
        config: ClientConfig {
            max_payload: how.max_payload,
            read_timeout: how.idle_timeout,
            token: how.token,
            tls: how.tls,
            ..ClientConfig::default()
        },
    };
    (Box::new(tcp), Extra::default())
}

/// Where a side of a call is: listening on an address, or calling one.
pub enum Place {
    /// Waits for a call on this address.
    Listen(SocketAddr),
    /// Calls this address.
    Call(SocketAddr),
}

/// A side of a call over `net`'s transport at `place`, sending `ladder`'s renditions; its
/// sending half's events go to `on_event`. `config` holds both halves' limits, token and TLS.
pub fn call_side(
    place: Place,
    net: &TransportOptions,
    (ladder, fps): (Arc<Ladder>, f64),
    config: CallConfig,
    on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
) -> Result<(Box<dyn CallSide>, Extra), TransportError> {
    let request = Request::default();
    if net.transport == Transport::Udp {
        let idle = config.client.read_timeout;
        let config = UdpCallConfig {
            server: UdpConfig {
                token: config.server.token.clone(),
                tls: config.server.tls.clone(),
                ..net.udp(idle)
            },
            client: UdpClientConfig {
                idle_timeout: idle,
                token: config.client.token,
                tls: config.client.tls,
                ..UdpClientConfig::default()
            },
        };
        let losses = Arc::new(UdpLosses::default());
        let extra = Extra(Some(Arc::clone(&losses)));
        let side: Box<dyn CallSide> = match place {
            Place::Listen(addr) => Box::new(
                UdpChatListener::bind(addr, ladder, fps, request, config, losses, on_event)
                    .map_err(|error| TransportError::Listen {
                        at: format!("udp://{addr}"),
                        error,
                    })?,
            ),
            Place::Call(addr) => Box::new(
                UdpChatDialer::bind(addr, ladder, fps, request, config, losses, on_event).map_err(
                    |error| TransportError::Call {
                        at: format!("udp://{addr}"),
                        error,
                    },
                )?,
            ),
        };
        return Ok((side, extra));
    }
    let side: Box<dyn CallSide> = match place {
        Place::Listen(addr) => Box::new(
            ChatListener::bind(addr, ladder, fps, request, config, on_event).map_err(|error| {
                let at = addr.to_string();
                TransportError::Listen { at, error }
            })?,
        ),
        Place::Call(addr) => Box::new(ChatDialer::new(
            addr, ladder, fps, request, config, on_event,
        )),
    };
    Ok((side, Extra::default()))
}

/// The stream of `ladder` published to the media server at `target` (RTMP or RTSP) on its own
/// thread, redialed with backoff while the send path runs; an `rtmps://` server's certificate is
/// trusted by `tls_ca` (a PEM file of CAs), else on first use through the known-hosts file. A
/// write blocked for `write_timeout` ends a connection. The error says why it never can publish
/// (no H.264 in this build, the trust cannot be set up), naming `--publish`.
pub fn publish(
    target: Target,
    ladder: Arc<Ladder>,
    tls_ca: Option<&std::path::PathBuf>,
    write_timeout: Duration,
    on_event: fn(PushEvent),
) -> Result<Arc<dyn Publisher>, String> {
    let tls = (target.scheme == Scheme::Rtmps)
        .then(|| crate::tls::client(None, tls_ca, &target.host_port()))
        .transpose()
        .map_err(|e| format!("--publish {target}: {e}"))?;
    let config = PushConfig { tls, write_timeout };
    let push = Push::start(target, ladder, config, Arc::new(on_event))
        .map_err(|e| format!("--publish {e}"))?;
    Ok(Arc::new(push))
}

/// A hub that senders push to, listening: each sender's stream comes from
/// [`next`](Self::next).
pub struct HubListening {
    listener: HubListener,
    /// Where it listens.
    pub at: String,
    /// `sha256:HEX` of its TLS certificate, with TLS.
    pub fingerprint: Option<String>,
}

/// A pushing sender's stream, as the hub takes it: its name and its frames.
pub type Arrival = (String, Box<dyn Subscription>);

impl HubListening {
    /// The next sender's stream, waiting up to `timeout`; `None` when none came or the hub
    /// is shutting down.
    pub fn next(&self, timeout: Duration) -> Option<Arrival> {
        self.listener
            .next(timeout)
            .map(|pushed| (pushed.name, pushed.stream))
    }

    /// Senders pushing now.
    pub fn senders(&self) -> usize {
        self.listener.senders()
    }

    /// Stops taking senders and cuts the ones pushing.
    pub fn shutdown(&self) {
        self.listener.shutdown();
    }
}

/// A hub on `listen` taking at most `max` senders at once, whose streams are read with
/// `receiving`'s limits, token and TLS (a server's: `tls`); `on_event` hears of connections
/// refused in their opening.
pub fn hub(
    listen: SocketAddr,
    max: usize,
    (idle_timeout, max_payload): (Duration, u32),
    config: ServerConfig,
    on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
) -> Result<HubListening, TransportError> {
    let hub = HubConfig {
        client: ClientConfig {
            read_timeout: idle_timeout,
            max_payload,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            max_viewers: max,
            ..config
        },
    };
    let listener = HubListener::bind(listen, hub, on_event).map_err(|error| {
        let at = listen.to_string();
        TransportError::Listen { at, error }
    })?;
    Ok(HubListening {
        at: listener.local_addr().to_string(),
        fingerprint: listener.tls_fingerprint().map(str::to_string),
        listener,
    })
}

/// `ladder`'s stream pushed to the hub at `hub` as `name`, dialed again with backoff whenever
/// it is lost; `config` holds the token, the TLS trust and the write timeout. The error says
/// why the name is refused.
pub fn push(
    hub: SocketAddr,
    name: &str,
    (ladder, fps): (Arc<Ladder>, f64),
    config: CallConfig,
    on_event: impl Fn(HubPushEvent) + Send + Sync + 'static,
) -> Result<Arc<HubPusher>, String> {
    HubPusher::start(hub, name, (ladder, fps), config, on_event)
        .map(Arc::new)
        .map_err(|e| format!("--name {name:?}: {e}"))
}
