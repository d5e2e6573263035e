//! Flags to transports: `--transport`, `--mtu` and `--fec` as the kit's [`TransportOptions`],
//! and the framewire server `serve` binds, the connector `view` receives through and the side
//! `chat` calls with, made by the kit. The only file in `src/` that names a transport (checked
//! by `tests/architecture.rs`): the subcommands see a [`Publisher`](framewire_core::Publisher),
//! a [`Connector`] and a [`CallSide`], and the transport's own figures as [`Extra`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use framewire_core::{CallSide, Connector, Ladder, Request};
use framewire_kit::{Extra, Place, Receiving, Served, Transport, TransportOptions};
use framewire_net::{Board, CallConfig, ServerConfig, ServerEvent, TlsClient};
use framewire_wire::token::Token;

use crate::args::exit_usage;

/// `--transport`'s values, as the kit writes them.
fn transport_parser() -> impl TypedValueParser<Value = Transport> {
    PossibleValuesParser::new(Transport::NAMES).map(|name| name.parse().unwrap_or_default())
}

/// How a sending side's stream travels, and the settings only UDP has (`serve`, `chat`).
#[derive(Debug, clap::Args)]
pub struct TransportArgs {
    /// How the stream travels: tcp, or udp (datagrams; see README's UDP section)
    #[arg(long, default_value_t, value_parser = transport_parser())]
    transport: Transport,
    /// With --transport udp: frame bytes per datagram [default: 1200]
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// With --transport udp: data datagrams per parity datagram, 0 for none [default: 8]
    #[arg(long, value_name = "N")]
    fec: Option<u8>,
}

impl TransportArgs {
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

    fn options(&self) -> TransportOptions {
        TransportOptions {
            transport: self.transport,
            mtu: self.mtu,
            fec: self.fec,
        }
    }
}

/// `view`'s `--transport`: how the stream travels to it.
#[derive(Debug, clap::Args)]
pub struct ViewTransportArgs {
    /// How the stream travels: tcp, or udp (datagrams; `--stats json` adds `lost` and
    /// `fragments_lost`)
    #[arg(long, default_value_t, value_parser = transport_parser())]
    transport: Transport,
}

/// Adds a transport's own figures to a stats object.
pub fn add_figures(extra: &Extra, stats: &mut serde_json::Value) {
    if let Some(map) = stats.as_object_mut() {
        for (name, value) in extra.figures() {
            map.insert(name.into(), value.into());
        }
    }
}

/// The framewire server of `ladder`'s renditions on `listen` over `net`'s transport, its
/// figures on `board`; `idle` is UDP's silence before a viewer is gone.
pub fn server(
    listen: SocketAddr,
    net: &TransportArgs,
    idle: Option<Duration>,
    ladder: (Arc<Ladder>, f64),
    config: ServerConfig,
    board: &Board,
    on_event: fn(ServerEvent),
) -> anyhow::Result<Served> {
    let options = net.options();
    Ok(framewire_kit::server(
        listen, &options, idle, ladder, config, board, on_event,
    )?)
}

/// The connector `view` receives through.
pub fn connector(
    addr: SocketAddr,
    request: Request,
    net: &ViewTransportArgs,
    (max_payload, idle_timeout): (u32, Duration),
    token: Option<Token>,
    tls: Option<TlsClient>,
) -> (Box<dyn Connector>, Extra) {
    let how = Receiving {
        transport: net.transport,
        max_payload,
        idle_timeout,
        token,
        tls,
    };
    framewire_kit::connector(addr, request, how)
}

/// A side of a call over `net`'s transport, listening on `listen` or calling `call`, sending
/// `ladder`'s renditions; its sending half's events go to `on_event`.
pub fn call_side(
    (listen, call): (Option<SocketAddr>, Option<SocketAddr>),
    net: &TransportArgs,
    ladder: (Arc<Ladder>, f64),
    config: CallConfig,
    on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
) -> anyhow::Result<(Box<dyn CallSide>, Extra)> {
    let place = match (listen, call) {
        (Some(addr), _) => Place::Listen(addr),
        (None, Some(addr)) => Place::Call(addr),
        (None, None) => anyhow::bail!("a call needs --listen or --connect"),
    };
    let options = net.options();
    Ok(framewire_kit::call_side(
        place, &options, ladder, config, on_event,
    )?)
}
