//! Values as a user writes them, on a command line or in a binding's keyword: sizes, quality
//! ladders, addresses, frame rates, byte counts, durations, certificate pins. Each reader says
//! what it expected and what it got.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::Rung;

/// A value that does not read: what was expected, and what was written.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// Not in the form or range expected.
    #[error("expected {expected}, got {got:?}")]
    Expected {
        /// The form expected, with an example.
        expected: &'static str,
        /// What was written.
        got: String,
    },
    /// One rung of a ladder does not read.
    #[error("rung {rung:?}: {error}")]
    Rung {
        /// The rung as written.
        rung: String,
        /// Why.
        error: Box<ValueError>,
    },
    /// A rung's quality is not in 1..=100.
    #[error("expected a quality in 1..=100 after @ (or a bitrate like 1500k)")]
    Quality,
    /// A rung's bitrate is not in 10..=100000 kbit/s.
    #[error("expected a bitrate in 10k..=100000k after @")]
    Bitrate,
    /// A ladder of too many rungs.
    #[error("at most {max} rungs, got {got}")]
    Rungs {
        /// The most rungs a ladder has.
        max: usize,
        /// The rungs given.
        got: usize,
    },
    /// A host:port that does not resolve.
    #[error("expected HOST:PORT like 127.0.0.1:9999, got {got:?} ({error})")]
    Resolve {
        /// What was written.
        got: String,
        /// The resolver's error.
        error: std::io::Error,
    },
    /// A host that resolves to no address.
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
    /// A certificate fingerprint that does not read.
    #[error(transparent)]
    Pin(framewire_net::tls::TlsError),
}

fn expected(expected: &'static str, got: &str) -> ValueError {
    ValueError::Expected {
        expected,
        got: got.to_string(),
    }
}

/// `640x480` -> (640, 480).
pub fn size(s: &str) -> Result<(u32, u32), ValueError> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| expected("WIDTHxHEIGHT like 640x480", s))?;
    let dim = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=16384).contains(n))
            .ok_or_else(|| expected("WIDTHxHEIGHT with each in 1..=16384", s))
    };
    Ok((dim(w)?, dim(h)?))
}

/// `on` or `off`.
pub fn on_off(s: &str) -> Result<bool, ValueError> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(expected("on or off", s)),
    }
}

/// A quality ladder, best first: `640x480@80,320x240@50` (a JPEG quality after `@`),
/// `640x480@1500k,320x240@400k` (an H.264 bitrate in kbit/s), or sizes alone:
/// `640x480,320x240`.
pub fn ladder(s: &str) -> Result<Vec<Rung>, ValueError> {
    let rungs = s
        .split(',')
        .map(|rung| {
            let in_rung = |error| ValueError::Rung {
                rung: rung.to_string(),
                error: Box::new(error),
            };
            let (at, setting) = match rung.split_once('@') {
                Some((at, setting)) => (at, Some(setting.trim())),
                None => (rung, None),
            };
            let (w, h) = size(at.trim()).map_err(in_rung)?;
            let rung_of = Rung::size(w, h);
            Ok(match setting {
                None => rung_of,
                Some(kbit) if kbit.ends_with(['k', 'K']) => {
                    let kbit = kbit[..kbit.len() - 1].parse::<u32>().ok();
                    let kbit = kbit.filter(|k| (10..=100_000).contains(k));
                    rung_of.at_kbit(kbit.ok_or_else(|| in_rung(ValueError::Bitrate))?)
                }
                Some(q) => {
                    let q = q.parse::<u8>().ok().filter(|q| (1..=100).contains(q));
                    rung_of.at_quality(q.ok_or_else(|| in_rung(ValueError::Quality))?)
                }
            })
        })
        .collect::<Result<Vec<_>, ValueError>>()?;
    let max = framewire_core::MAX_RENDITIONS;
    if rungs.len() > max {
        return Err(ValueError::Rungs {
            max,
            got: rungs.len(),
        });
    }
    Ok(rungs)
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

/// A host:port kept as written beside its address (see [`addr`]).
pub fn host_port(s: &str) -> Result<HostPort, ValueError> {
    Ok(HostPort {
        addr: addr(s)?,
        name: s.to_string(),
    })
}

/// `sha256:HEX`, as a TLS server prints its fingerprint.
pub fn pin(s: &str) -> Result<String, ValueError> {
    framewire_net::tls::parse_fingerprint(s).map_err(ValueError::Pin)
}

/// A host:port, resolved now so that a typo is reported before anything starts.
pub fn addr(s: &str) -> Result<SocketAddr, ValueError> {
    s.to_socket_addrs()
        .map_err(|error| ValueError::Resolve {
            got: s.to_string(),
            error,
        })?
        .next()
        .ok_or_else(|| ValueError::NoAddress(s.to_string()))
}

/// An address, or a port alone on loopback: `8080` is `127.0.0.1:8080`.
pub fn addr_or_port(s: &str) -> Result<SocketAddr, ValueError> {
    match s.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => addr(s),
    }
}

/// Frames per second: 0 (unpaced) up to 1000.
pub fn fps(s: &str) -> Result<f64, ValueError> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=1000.0).contains(v))
        .ok_or_else(|| expected("frames per second in 0..=1000 (0 = unpaced)", s))
}

/// A size in bytes, with an optional K/M/G (binary) suffix: `64M`.
pub fn bytes(s: &str) -> Result<u32, ValueError> {
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
        .ok_or_else(|| expected("a byte count like 64M (at most 4G)", s))
}

/// A duration: `500ms`, `5s`, `2m`, or plain seconds (`1.5`).
pub fn duration(s: &str) -> Result<Duration, ValueError> {
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
        .map(Duration::from_secs_f64)
        .ok_or_else(|| expected("a duration like 500ms, 5s or 2m (at most a day)", s))
}

/// This machine's host name, as a sender's name at a hub goes by default (imagezmq's too),
/// kept to the characters a name may hold; `framewire` when it cannot be read.
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    if name.is_empty() {
        "framewire".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("640x480").unwrap(), (640, 480));
        assert_eq!(size("1920X1080").unwrap(), (1920, 1080));
        for bad in ["640", "0x480", "640x", "axb", "20000x10"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            size("640").unwrap_err().to_string(),
            "expected WIDTHxHEIGHT like 640x480, got \"640\""
        );
    }

    #[test]
    fn bytes_and_fps() {
        assert_eq!(bytes("64M").unwrap(), 64 << 20);
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert!(bytes("5G").is_err());
        assert!(bytes("0").is_err());
        assert_eq!(fps("0").unwrap(), 0.0);
        assert!(fps("-1").is_err());
        assert!(fps("nan").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["0", "-1s", "abc", "5h", "2d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ladders() {
        assert_eq!(
            ladder("640x480@80,320x240@50").unwrap(),
            vec![
                Rung::size(640, 480).at_quality(80),
                Rung::size(320, 240).at_quality(50)
            ]
        );
        assert_eq!(ladder("640x480").unwrap(), vec![Rung::size(640, 480)]);
        assert_eq!(
            ladder("640x480@1500k, 320x240@400K").unwrap(),
            vec![
                Rung::size(640, 480).at_kbit(1500),
                Rung::size(320, 240).at_kbit(400)
            ]
        );
        for bad in [
            "",
            "640x480@0",
            "640x480@101",
            "640x480@0k",
            "640x480@9k",
            "640x480@100001k",
            "640x480@k",
            "640x480@1.5M",
            "640@80",
            "a,b",
            "1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1",
        ] {
            assert!(ladder(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ladder("640x480@0").unwrap_err().to_string(),
            "rung \"640x480@0\": expected a quality in 1..=100 after @ (or a bitrate like 1500k)"
        );
        assert_eq!(
            ladder("640x480@0k").unwrap_err().to_string(),
            "rung \"640x480@0k\": expected a bitrate in 10k..=100000k after @"
        );
        assert!(!on_off("off").unwrap());
        assert!(on_off("no").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            addr("127.0.0.1:9999").unwrap().to_string(),
            "127.0.0.1:9999"
        );
        assert!(addr("127.0.0.1").is_err());
    }
}
