//! What the subcommands share of their flags: the groups of flags each declared once (token,
//! TLS server, TLS client, receiving, link, stats), a usage error, and the warning for an open address. Values
//! are read by the kit's `value` module.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use framewire_kit::value;
use framewire_net::{TlsClient, TlsServer};
use framewire_session::ReceiveConfig;
use framewire_wire::token::Token;

/// Warns, in one line on stderr, when `flag` opens `addr` beyond this machine without a token.
pub fn warn_if_open(addr: SocketAddr, has_token: bool, flag: &str) {
    if !has_token && !addr.ip().is_loopback() {
        eprintln!(
            "framewire: warning: {flag} {addr} without a token: anyone who can reach it can watch; \
             set FRAMEWIRE_TOKEN or --token-file"
        );
    }
}

/// The usage error `message` for `subcommand`: exits 2, as clap does for its own.
pub fn exit_usage(subcommand: &str, message: &str) -> ! {
    use clap::CommandFactory;
    let mut cli = crate::Cli::command();
    cli.build();
    let kind = clap::error::ErrorKind::ArgumentConflict;
    match cli.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(kind, message).exit(),
        None => cli.error(kind, message).exit(),
    }
}

/// The shared token's flag, as every subcommand takes it.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// A file holding the shared token both ends must have (without it, the environment
    /// variable FRAMEWIRE_TOKEN; a token on the command line would show in `ps`)
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token: from the file `--token-file` names, else from `FRAMEWIRE_TOKEN`; `None`
    /// when neither is given.
    pub fn token(&self) -> anyhow::Result<Option<Token>> {
        let file = self.token_file.as_deref();
        Token::from_file_or_env(file).map_err(|e| match file {
            Some(_) => anyhow::anyhow!("--token-file: {e}"),
            None => anyhow::anyhow!(e),
        })
    }
}

/// The flags of a side that presents a TLS certificate (`serve`, `chat --listen`).
#[derive(Debug, clap::Args)]
pub struct TlsServerArgs {
    /// With --tls: the certificate chain to present (PEM), instead of the self-signed one
    /// kept in the config folder
    #[arg(long, requires_all = ["tls", "tls_key"], value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// With --tls: the private key of --tls-cert (PEM)
    #[arg(long, requires_all = ["tls", "tls_cert"], value_name = "PEM")]
    tls_key: Option<PathBuf>,
}

impl TlsServerArgs {
    /// The first of these flags given, as clap names it.
    pub fn given(&self) -> Option<&'static str> {
        self.tls_cert.as_ref().map(|_| "--tls-cert <PEM>")
    }

    /// The identity to present with `tls`: the certificate and key `--tls-cert`/`--tls-key`
    /// name, else the self-signed one kept in the config folder (made on first use).
    pub fn server(&self, tls: bool) -> anyhow::Result<Option<TlsServer>> {
        let given = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        Ok(tls.then(|| framewire_kit::tls::server(given)).transpose()?)
    }
}

/// The flags of a side that checks a TLS certificate (`view`, `chat --connect`).
#[derive(Debug, clap::Args)]
pub struct TlsClientArgs {
    /// With --tls: trust only the certificate with this fingerprint (as serve --tls prints
    /// it); no file is read or written
    #[arg(long, requires = "tls", value_parser = value::pin, value_name = "sha256:HEX")]
    tls_pin: Option<String>,
    /// With --tls: trust certificates this CA (a PEM file) signed for the host connected to
    #[arg(long, requires = "tls", conflicts_with = "tls_pin", value_name = "PEM")]
    tls_ca: Option<PathBuf>,
}

impl TlsClientArgs {
    /// The first of these flags given, as clap names it.
    pub fn given(&self) -> Option<&'static str> {
        match (&self.tls_pin, &self.tls_ca) {
            (Some(_), _) => Some("--tls-pin <sha256:HEX>"),
            (_, Some(_)) => Some("--tls-ca <PEM>"),
            _ => None,
        }
    }

    /// With `tls`, how `host`'s certificate is trusted: by `--tls-pin`, else `--tls-ca`, else
    /// on first use through the known-hosts file in the config folder.
    pub fn client(&self, tls: bool, host: &value::HostPort) -> anyhow::Result<Option<TlsClient>> {
        let (pin, ca) = (self.tls_pin.as_deref(), self.tls_ca.as_ref());
        Ok(tls
            .then(|| framewire_kit::tls::client(pin, ca, &host.name))
            .transpose()?)
    }
}

/// What a receiving side takes (`view`, `chat`): a window or none, when to stop, what the
/// figures leave out, and what each frame is checked against.
#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {
    /// Run without a window
    #[arg(long)]
    pub headless: bool,
    /// Stop after receiving this many frames (counted across reconnects, and after --warmup)
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Leave the first DURATION out of the received statistics (while the stream settles on a
    /// rung)
    #[arg(long, value_parser = value::duration, value_name = "DURATION")]
    warmup: Option<Duration>,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Check every frame received against the test pattern's frame number (a sender of
    /// --source test)
    #[arg(long)]
    verify_test_pattern: bool,
    /// Time without data from the other side before the connection counts as lost; a chat
    /// listener also gives a lost caller this long to call back before the line is free
    #[arg(long, default_value = "15s", value_parser = value::duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
}

/// How long a write may block (`serve`, `chat`).
#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Time one write to a viewer or the peer may block before its connection counts as
    /// stalled (a stalled viewer is dropped)
    #[arg(long, default_value = "10s", value_parser = value::duration, value_name = "DURATION")]
    pub write_timeout: Duration,
}

impl ReceiveArgs {
    /// The receive path's settings from these flags (it reconnects unless told otherwise).
    pub fn config(&self) -> ReceiveConfig<'static> {
        ReceiveConfig {
            frames: self.frames,
            verify: self
                .verify_test_pattern
                .then_some(&framewire_pattern::read_frame_number),
            warmup: self.warmup,
            ..ReceiveConfig::default()
        }
    }
}

/// `--stats`, as `view` and `chat` take it.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print statistics at exit in this format on stdout
    #[arg(long, value_name = "FORMAT")]
    stats: Option<StatsFormat>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatsFormat {
    /// One JSON object
    Json,
}

impl StatsArgs {
    /// Prints `stats` as asked (one JSON object on a line of stdout); nothing when not asked.
    pub fn print(&self, stats: &serde_json::Value) -> anyhow::Result<()> {
        use std::io::Write;
        if let Some(StatsFormat::Json) = self.stats {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, stats).context("writing stats")?;
            writeln!(out).context("writing stats")?;
        }
        Ok(())
    }

    /// Whether statistics are asked for.
    pub fn asked(&self) -> bool {
        self.stats.is_some()
    }
}
