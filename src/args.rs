//! What the subcommands share of their flags: parsers for values (sizes, addresses, byte
//! counts, durations) and the groups of flags each declared once (token, TLS server, TLS
//! client, stats).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::Context;
use framewire_net::{TlsClient, TlsServer, Trust};
use framewire_wire::token::Token;

/// `640x480` -> (640, 480).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT like 640x480, got {s:?}"))?;
    let dim = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=16384).contains(n))
            .ok_or_else(|| format!("expected WIDTHxHEIGHT with each in 1..=16384, got {s:?}"))
    };
    Ok((dim(w)?, dim(h)?))
}

/// `on` or `off`.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

/// The rungs `--ladder` gives, best first: width, height, and a quality where one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rungs(pub Vec<(u32, u32, Option<u8>)>);

/// A quality ladder, best first: `640x480@80,320x240@50` (a JPEG quality after `@`), or sizes
/// alone for codecs without a quality: `640x480,320x240`.
pub fn parse_ladder(s: &str) -> Result<Rungs, String> {
    let rungs = s
        .split(',')
        .map(|rung| {
            let (size, quality) = match rung.split_once('@') {
                Some((size, q)) => {
                    let q = q
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|q| (1..=100).contains(q));
                    let q = q.ok_or_else(|| {
                        format!("rung {rung:?}: expected a quality in 1..=100 after @")
                    })?;
                    (size, Some(q))
                }
                None => (rung, None),
            };
            let (w, h) = parse_size(size.trim()).map_err(|e| format!("rung {rung:?}: {e}"))?;
            Ok((w, h, quality))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let max = framewire_core::MAX_RENDITIONS;
    if rungs.len() > max {
        return Err(format!("at most {max} rungs, got {}", rungs.len()));
    }
    Ok(Rungs(rungs))
}

/// A host:port as the user wrote it (the known-hosts key, the name a CA's certificate must
/// carry) and the address it resolved to.
#[derive(Debug, Clone)]
pub struct HostPort {
    /// The address it resolved to.
    pub addr: SocketAddr,
    /// As written.
    pub name: String,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A host:port kept as written beside its address (see [`parse_addr`]).
pub fn parse_host_port(s: &str) -> Result<HostPort, String> {
    Ok(HostPort {
        addr: parse_addr(s)?,
        name: s.to_string(),
    })
}

/// `sha256:HEX`, as `serve --tls` prints it.
pub fn parse_pin(s: &str) -> Result<String, String> {
    framewire_net::tls::parse_fingerprint(s).map_err(|e| e.to_string())
}

/// A host:port, resolved now so that a typo is reported before anything starts.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT like 127.0.0.1:9999, got {s:?} ({e})"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// An address, or a port alone on loopback: `8080` is `127.0.0.1:8080`.
pub fn parse_addr_or_port(s: &str) -> Result<SocketAddr, String> {
    match s.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => parse_addr(s),
    }
}

/// Frames per second: 0 (unpaced) up to 1000.
pub fn parse_fps(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=1000.0).contains(v))
        .ok_or_else(|| format!("expected frames per second in 0..=1000 (0 = unpaced), got {s:?}"))
}

/// A size in bytes, with an optional K/M/G (binary) suffix: `64M`.
pub fn parse_bytes(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| format!("expected a byte count like 64M (at most 4G), got {s:?}"))
}

/// A duration: `500ms`, `5s`, `2m`, or plain seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|v| v * unit)
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| {
            format!("expected a duration like 500ms, 5s or 2m (at most a day), got {s:?}")
        })
}

/// Warns, in one line on stderr, when `flag` opens `addr` beyond this machine without a token.
pub fn warn_if_open(addr: SocketAddr, has_token: bool, flag: &str) {
    if !has_token && !addr.ip().is_loopback() {
        eprintln!(
            "framewire: warning: {flag} {addr} without a token: anyone who can reach it can watch; \
             set FRAMEWIRE_TOKEN or --token-file"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        assert_eq!(parse_size("1920X1080"), Ok((1920, 1080)));
        for bad in ["640", "0x480", "640x", "axb", "20000x10"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_and_fps() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("5G").is_err());
        assert!(parse_bytes("0").is_err());
        assert_eq!(parse_fps("0"), Ok(0.0));
        assert!(parse_fps("-1").is_err());
        assert!(parse_fps("nan").is_err());
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "-1s", "abc", "5h", "2d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ladders() {
        assert_eq!(
            parse_ladder("640x480@80,320x240@50"),
            Ok(Rungs(vec![(640, 480, Some(80)), (320, 240, Some(50))]))
        );
        assert_eq!(parse_ladder("640x480"), Ok(Rungs(vec![(640, 480, None)])));
        for bad in [
            "",
            "640x480@0",
            "640x480@101",
            "640@80",
            "a,b",
            "1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1",
        ] {
            assert!(parse_ladder(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_on_off("off"), Ok(false));
        assert!(parse_on_off("no").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:9999").unwrap().to_string(),
            "127.0.0.1:9999"
        );
        assert!(parse_addr("127.0.0.1").is_err());
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
        if !tls {
            return Ok(None);
        }
        let server = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsServer::from_pem_files(cert, key)
                .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key: {e}"))?,
            _ => {
                let dir =
                    framewire_net::tls::config_dir().map_err(|e| anyhow::anyhow!("--tls: {e}"))?;
                TlsServer::kept_self_signed(&dir).map_err(|e| anyhow::anyhow!("--tls: {e}"))?
            }
        };
        Ok(Some(server))
    }
}

/// The flags of a side that checks a TLS certificate (`view`, `chat --connect`).
#[derive(Debug, clap::Args)]
pub struct TlsClientArgs {
    /// With --tls: trust only the certificate with this fingerprint (as serve --tls prints
    /// it); no file is read or written
    #[arg(long, requires = "tls", value_parser = parse_pin, value_name = "sha256:HEX")]
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
    pub fn client(&self, tls: bool, host: &HostPort) -> anyhow::Result<Option<TlsClient>> {
        if !tls {
            return Ok(None);
        }
        let trust = match (&self.tls_pin, &self.tls_ca) {
            (Some(pin), _) => Trust::Pin(pin.clone()),
            (None, Some(ca)) => Trust::Ca(ca.clone()),
            (None, None) => {
                let dir =
                    framewire_net::tls::config_dir().map_err(|e| anyhow::anyhow!("--tls: {e}"))?;
                Trust::KnownHosts(dir.join(framewire_net::tls::KNOWN_HOSTS))
            }
        };
        Ok(Some(TlsClient {
            trust,
            host: host.name.clone(),
        }))
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
