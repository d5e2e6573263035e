//! TLS as a program asks for it: the identity a server presents (its own certificate, or the
//! self-signed one kept in the config folder), and how a client trusts a server (a pin, a CA, or
//! on first use through the known-hosts file).

use std::path::{Path, PathBuf};

use framewire_net::tls::{TlsError, config_dir};
use framewire_net::{TlsClient, TlsServer, Trust};

/// Why TLS could not be set up, naming the option.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The given certificate and key do not load.
    #[error("--tls-cert/--tls-key: {0}")]
    Given(TlsError),
    /// The config folder or what is kept there fails.
    #[error("--tls: {0}")]
    Kept(TlsError),
}

/// The identity to present: the certificate chain and key in `given` (PEM files), else the
/// self-signed one kept in the config folder (made on first use).
pub fn server(given: Option<(&Path, &Path)>) -> Result<TlsServer, TlsSetupError> {
    match given {
        Some((cert, key)) => TlsServer::from_pem_files(cert, key).map_err(TlsSetupError::Given),
        None => {
            let dir = config_dir().map_err(TlsSetupError::Kept)?;
            TlsServer::kept_self_signed(&dir).map_err(TlsSetupError::Kept)
        }
    }
}

/// How `host`'s certificate is trusted (`HOST:PORT` as written): by `pin` (`sha256:HEX`), else
/// the CA in `ca`, else on first use through the known-hosts file in the config folder.
pub fn client(
    pin: Option<&str>,
    ca: Option<&PathBuf>,
    host: &str,
) -> Result<TlsClient, TlsSetupError> {
    let trust = match (pin, ca) {
        (Some(pin), _) => Trust::Pin(pin.to_string()),
        (None, Some(ca)) => Trust::Ca(ca.clone()),
        (None, None) => {
            let dir = config_dir().map_err(TlsSetupError::Kept)?;
            Trust::KnownHosts(dir.join(framewire_net::tls::KNOWN_HOSTS))
        }
    };
    Ok(TlsClient {
        trust,
        host: host.to_string(),
    })
}
