//! Flags to transports: `--transport`, `--mtu` and `--fec` as the kit's [`TransportOptions`]
//! (with which the kit binds `serve`'s server and makes `chat`'s call side), the connector
//! `view` receives through, and a transport's own figures in `--stats json`. The only file in
//! `src/` that names a transport (checked by `tests/architecture.rs`): the subcommands see a
//! publisher, a [`Connector`] and a call side, and the transport's figures as [`Extra`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use framewire_core::{Connector, Request};
use framewire_kit::{Extra, Receiving, Transport, TransportOptions};
use framewire_net::TlsClient;
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

    /// The kit's options from these flags: the kit binds servers and makes call sides with them.
    pub fn options(&self) -> TransportOptions {
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

/// The receiving side's figures for `--stats json`: the session's, and the transport's own.
pub fn received_stats(
    stats: &framewire_session::Stats,
    stream: &framewire_core::StreamInfo,
    extra: &Extra,
) -> anyhow::Result<serde_json::Value> {
    let report = stats.report(stream.codec.name(), stream.width, stream.height);
    let mut report = serde_json::to_value(&report)?;
    if let Some(map) = report.as_object_mut() {
        for (name, value) in extra.figures() {
            map.insert(name.into(), value.into());
        }
    }
    Ok(report)
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
