//! Flags to transports: the framewire server `serve` binds, the connector `view` receives
//! through, and the side `chat` calls with, over TCP or UDP. The only file in `src/` that
//! names a transport (checked by `tests/architecture.rs`): the subcommands see a
//! [`Publisher`], a [`Connector`] and a [`CallSide`], and the transport's own figures as
//! [`Extra`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use framewire_core::{CallSide, Connector, Ladder, Publisher, Request};
use framewire_net::udp::{
    UdpCallConfig, UdpChatDialer, UdpChatListener, UdpClientConfig, UdpConfig, UdpConnector,
    UdpLosses, UdpServer,
};
use framewire_net::{
    Board, CallConfig, ChatDialer, ChatListener, ClientConfig, Server, ServerConfig, ServerEvent,
    TcpConnector, TlsClient,
};
use framewire_wire::token::Token;

use crate::args::exit_usage;

/// How a stream travels: `--transport` (tcp: framewire over TCP; udp: over UDP datagrams, frames
/// cut to --mtu, with parity). The variants carry no doc comment: clap would show it as help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

/// How a sending side's stream travels, and the settings only UDP has (`serve`, `chat`).
#[derive(Debug, clap::Args)]
pub struct TransportArgs {
    /// How the stream travels: tcp, or udp (datagrams; see README's UDP section)
    #[arg(long, value_enum, default_value_t)]
    pub transport: Transport,
    /// With --transport udp: frame bytes per datagram [default: 1200]
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// With --transport udp: data datagrams per parity datagram, 0 for none [default: 8]
    #[arg(long, value_name = "N")]
    fec: Option<u8>,
}

impl TransportArgs {
    /// The UDP server's settings from these flags, silence past `idle_timeout` ending a viewer.
    fn udp(&self, idle_timeout: Duration) -> UdpConfig {
        let default = UdpConfig::default();
        UdpConfig {
            mtu: self.mtu.unwrap_or(default.mtu),
            fec: self.fec.unwrap_or(default.fec),
            idle_timeout,
            ..default
        }
    }

    /// Exits with a usage error (as clap does, status 2) when a flag only UDP takes (`idle`
    /// among them, when given) comes with the TCP transport.
    pub fn check(&self, subcommand: &str, idle: Option<&'static str>) {
        if self.transport == Transport::Udp {
            return;
        }
        let flag = match (self.mtu, self.fec) {
            (Some(_), _) => Some("--mtu <BYTES>"),
            (_, Some(_)) => Some("--fec <N>"),
            _ => idle,
        };
        if let Some(flag) = flag {
            exit_usage(
                subcommand,
                &format!("the argument '{flag}' needs '--transport udp'"),
            );
        }
    }
}

/// What a transport adds to `--stats json` beside the session's figures (UDP: what it lost,
/// `lost`, `fragments_lost`, `fragments_recovered`, `datagrams_dropped`).
#[derive(Default)]
pub struct Extra(Option<Arc<UdpLosses>>);

impl Extra {
    /// Adds the figures to a stats object.
    pub fn add_to(&self, stats: &mut serde_json::Value) {
        let (Some(losses), Some(map)) = (&self.0, stats.as_object_mut()) else {
            return;
        };
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        map.insert("lost".into(), n(&losses.lost).into());
        map.insert("fragments_lost".into(), n(&losses.fragments_lost).into());
        map.insert("fragments_recovered".into(), n(&losses.recovered).into());
        map.insert(
            "datagrams_dropped".into(),
            n(&losses.dropped_datagrams).into(),
        );
    }
}

/// A bound framewire server: the publisher, where it listens (`udp://` before a datagram
/// address), and its closing line (UDP: the datagrams it dropped, by why).
pub struct Served {
    pub publisher: Arc<dyn Publisher>,
    pub at: String,
    pub closing: Option<Box<dyn Fn() -> String>>,
}

/// The framewire server of `ladder`'s renditions on `listen` over `net`'s transport, its
/// figures on `board`; `idle` is UDP's silence before a viewer is gone.
pub fn server(
    listen: SocketAddr,
    net: &TransportArgs,
    idle: Option<Duration>,
    (ladder, fps): (Arc<Ladder>, f64),
    config: ServerConfig,
    board: &Board,
    on_event: fn(ServerEvent),
) -> anyhow::Result<Served> {
    if net.transport == Transport::Udp {
        let idle = idle.unwrap_or(UdpConfig::default().idle_timeout);
        let config = UdpConfig {
            max_viewers: config.max_viewers,
            token: config.token,
            tls: config.tls,
            ..net.udp(idle)
        };
        let server = UdpServer::bind(listen, ladder, fps, config, on_event)
            .with_context(|| format!("cannot listen on udp://{listen}"))?;
        board.watch(&server);
        let server = Arc::new(server);
        let drops = Arc::clone(&server);
        return Ok(Served {
            at: format!("udp://{}", server.local_addr()),
            publisher: server,
            closing: Some(Box::new(move || drops.drops().to_string())),
        });
    }
    let server = Server::bind(listen, ladder, fps, config, on_event)
        .with_context(|| format!("cannot listen on {listen}"))?;
    board.watch(&server);
    Ok(Served {
        at: server.local_addr().to_string(),
        publisher: Arc::new(server),
        closing: None,
    })
}

/// What a receiving side's connection needs, whatever carries it.
pub struct Receiving {
    pub transport: Transport,
    pub max_payload: u32,
    pub idle_timeout: Duration,
    pub token: Option<Token>,
    pub tls: Option<TlsClient>,
}

/// The connector `view` receives through.
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
    Listen(SocketAddr),
    Call(SocketAddr),
}

/// A side of a call over `net`'s transport at `place`, sending `ladder`'s renditions; its
/// sending half's events go to `on_event`. `config` holds both halves' limits, token and TLS.
pub fn call_side(
    place: Place,
    net: &TransportArgs,
    (ladder, fps): (Arc<Ladder>, f64),
    config: CallConfig,
    on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
) -> anyhow::Result<(Box<dyn CallSide>, Extra)> {
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
                    .with_context(|| format!("cannot listen on udp://{addr}"))?,
            ),
            Place::Call(addr) => Box::new(
                UdpChatDialer::bind(addr, ladder, fps, request, config, losses, on_event)
                    .with_context(|| format!("cannot call udp://{addr}"))?,
            ),
        };
        return Ok((side, extra));
    }
    let side: Box<dyn CallSide> = match place {
        Place::Listen(addr) => Box::new(
            ChatListener::bind(addr, ladder, fps, request, config, on_event)
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        Place::Call(addr) => Box::new(ChatDialer::new(
            addr, ladder, fps, request, config, on_event,
        )),
    };
    Ok((side, Extra::default()))
}
