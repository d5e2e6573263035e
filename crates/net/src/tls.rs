//! TLS for the stream protocols (rustls on ring): the server's identity and how a client
//! trusts it.
//!
//! A server ([`TlsServer`]) has a certificate from PEM files, or a self-signed one that rcgen
//! made once and that is kept in the user's config folder, so that a viewer's trust on first
//! use survives a restart. A client ([`TlsClient`]) trusts a server one of three ways
//! ([`Trust`]): on first use, as ssh does, through a known-hosts file (one line per
//! `HOST:PORT`); by a pinned fingerprint; or by a CA. A fingerprint is `sha256:` and the
//! lowercase hex of SHA-256 of the end-entity certificate's DER. Certificates are never
//! checked by hand: the pin and first-use verifiers compare fingerprints and hand every
//! signature to rustls (`verify_tls12_signature`, `verify_tls13_signature`).
//!
//! On a TLS port the server peeks the first byte: a TLS handshake starts with 0x16, framewire's
//! hello with `F`. A plaintext peer is answered in plaintext that it must add `--tls`; a TLS
//! client at a plaintext port is answered in plaintext framewire, which the client recognises
//! (`FW`) and tells its user to drop `--tls`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::conn::{Conn, HandshakeError, TLS_HANDSHAKE_BYTE, handshake};

/// The file names of the kept self-signed certificate and its key, in [`config_dir`].
pub const KEPT_CERT: &str = "tls-cert.pem";
/// See [`KEPT_CERT`].
pub const KEPT_KEY: &str = "tls-key.pem";
/// The known-hosts file's name, in [`config_dir`].
pub const KNOWN_HOSTS: &str = "known_hosts";

/// Why a TLS identity, a fingerprint or a known-hosts check could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// There is no config folder to keep the certificate or the known hosts in.
    #[error("neither XDG_CONFIG_HOME nor HOME is set: no config folder")]
    NoConfigDir,
    /// A fingerprint as the user typed it, which is not one.
    #[error("expected sha256: and 64 hex digits (what serve --tls prints), got {0:?}")]
    Fingerprint(String),
    /// A file that cannot be read, created or written, or is not what it should be.
    #[error("{}: {what}", path.display())]
    File {
        /// The file (or folder).
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// rustls or rcgen refused what it was given.
    #[error("{0}")]
    Setup(String),
    /// A known host shows another certificate than the one recorded for it.
    #[error(
        "{host} shows a different TLS certificate: {fingerprint}, where {} line {line} records \
         {recorded}; if the server's certificate changed on purpose, delete that line (or view \
         with --tls-pin {fingerprint})",
        file.display()
    )]
    Changed {
        /// The host, as the user wrote it.
        host: String,
        /// What it shows now.
        fingerprint: String,
        /// The known-hosts file.
        file: PathBuf,
        /// The line that records it.
        line: usize,
        /// What that line records.
        recorded: String,
    },
}

/// A [`TlsError::File`].
fn file_error(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// framewire's config folder: `$XDG_CONFIG_HOME/framewire`, else `~/.config/framewire`.
pub fn config_dir() -> Result<PathBuf, TlsError> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("framewire"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("framewire")),
        None => Err(TlsError::NoConfigDir),
    }
}

/// `sha256:HEX` of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Reads a `sha256:HEX` fingerprint as a user typed it (any case); errors say what was expected.
pub fn parse_fingerprint(s: &str) -> Result<String, TlsError> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s).to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TlsError::Fingerprint(s.to_string()));
    }
    Ok(format!("sha256:{hex}"))
}

/// ring's provider, AES-128-GCM first: 10 AES rounds where AES-256 takes 14, for the same
/// 128-bit security TLS 1.3's other suites give; raw video is where the difference shows.
fn provider() -> Arc<CryptoProvider> {
    use rustls::CipherSuite as C;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            C::TLS13_AES_128_GCM_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// A server's TLS identity: its certificate chain and key, ready for connections.
#[derive(Debug, Clone)]
pub struct TlsServer {
    config: Arc<rustls::ServerConfig>,
    fingerprint: String,
}

impl TlsServer {
    /// The certificate chain in `cert` and the private key in `key` (PEM files). Errors name
    /// the file and what is wrong with it.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsServer, TlsError> {
        let chain = read_certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                file_error(key, "no private key in it (expected PEM)")
            }
            e => pem_error(key, e),
        })?;
        TlsServer::new(chain, key)
    }

    /// The self-signed certificate kept in `dir` ([`KEPT_CERT`], [`KEPT_KEY`]), made by rcgen
    /// and written there (the key readable by its owner alone) when there is none yet.
    pub fn kept_self_signed(dir: &Path) -> Result<TlsServer, TlsError> {
        let (cert, key) = (dir.join(KEPT_CERT), dir.join(KEPT_KEY));
        if !cert.exists() && !key.exists() {
            make_self_signed(dir, &cert, &key)?;
        }
        TlsServer::from_pem_files(&cert, &key)
    }

    /// A self-signed certificate made now and kept nowhere (tests, benches).
    pub fn self_signed() -> Result<TlsServer, TlsError> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .map_err(|e| TlsError::Setup(format!("making a self-signed certificate: {e}")))?;
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| TlsError::Setup(format!("the self-signed key: {e}")))?;
        TlsServer::new(vec![made.cert.der().clone()], key)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let fingerprint = fingerprint(&chain[0]);
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(format!("tls setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                TlsError::Setup(format!("the certificate and key do not go together: {e}"))
            })?;
        // No tickets: after its handshake a connection writes only from its writer.
        config.send_tls13_tickets = 0;
        Ok(TlsServer {
            config: Arc::new(config),
            fingerprint,
        })
    }

    /// `sha256:HEX` of the end-entity certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Takes a connection on a TLS port: peeks its first byte, then runs the handshake before
    /// `deadline`. A plaintext peer gets `plaintext`: what its protocol says and what the log
    /// says it was told. Errors are one line for the server's log.
    pub(crate) fn accept(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        plaintext: &PlaintextAnswer,
    ) -> Result<Conn, String> {
        let timeout = || "sent no TLS handshake in time".to_string();
        let left = deadline.saturating_duration_since(Instant::now());
        tcp.set_read_timeout(Some(left.max(std::time::Duration::from_millis(1))))
            .map_err(|e| format!("socket setup failed: {e}"))?;
        let mut first = [0u8; 1];
        match tcp.peek(&mut first) {
            Ok(0) => return Err("closed before its TLS handshake".into()),
            Ok(_) => {}
            Err(e) if crate::conn::is_timeout(&e) => return Err(timeout()),
            Err(e) => return Err(format!("reading the TLS handshake: {e}")),
        }
        if first[0] != TLS_HANDSHAKE_BYTE {
            let what = match first[0] {
                b'F' => "plaintext framewire",
                b'A'..=b'Z' => "plaintext HTTP",
                _ => "something that is not TLS",
            };
            answer_plaintext(&tcp, &plaintext.bytes);
            return Err(format!("{what} at this TLS port: {}", plaintext.told));
        }
        let server = rustls::ServerConnection::new(Arc::clone(&self.config))
            .map_err(|e| format!("tls setup: {e}"))?;
        let mut conn = rustls::Connection::Server(server);
        match handshake(&tcp, &mut conn, deadline, &|_| Ok(())) {
            Ok(()) => Ok(Conn::tls(tcp, conn)),
            Err(HandshakeError::Io(e)) if crate::conn::is_timeout(&e) => Err(timeout()),
            Err(HandshakeError::Io(e)) => Err(format!("TLS handshake failed: {e}")),
            Err(HandshakeError::Closed) => {
                Err("closed during the TLS handshake (did it refuse the certificate?)".into())
            }
            Err(HandshakeError::Refused(e)) => Err(e),
            Err(HandshakeError::Tls(e)) => Err(format!("TLS handshake failed: {e}")),
        }
    }
}

/// What a TLS port answers a plaintext peer.
pub const EXPECTS_TLS: &str = "it expects TLS: add --tls";

/// What a protocol's TLS port answers a peer that speaks plaintext, in the protocol's own words.
#[derive(Debug, Clone)]
pub struct PlaintextAnswer {
    /// The bytes sent back.
    pub bytes: Vec<u8>,
    /// What the server's log says the peer was told.
    pub told: &'static str,
}

impl PlaintextAnswer {
    /// A framewire error message: [`EXPECTS_TLS`].
    pub fn framewire() -> PlaintextAnswer {
        PlaintextAnswer {
            bytes: framewire_error(EXPECTS_TLS),
            told: "told to add --tls",
        }
    }
}

/// What a plaintext port answers a TLS client (which reads it as plaintext framewire).
pub const PLAINTEXT_PORT: &str = "this port speaks plaintext framewire: drop --tls";

/// A framewire error message saying `reason`: what a framewire peer reads where it expected a
/// stream.
pub(crate) fn framewire_error(reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason
        .len()
        .min(framewire_wire::message::MAX_ERROR_TEXT as usize)];
    let header = framewire_wire::message::FrameHeader {
        kind: framewire_wire::message::MessageKind::Error,
        seq: 0,
        capture_us: 0,
        payload_len: reason.len() as u32,
        delta: false,
    };
    let mut message = header.to_bytes().to_vec();
    message.extend_from_slice(reason);
    message
}

/// Answers a peer that sent what this side cannot read with `answer` (its first message is
/// read and dropped first, so that closing does not reset the answer away).
pub(crate) fn answer_plaintext(tcp: &TcpStream, answer: &[u8]) {
    let _ = tcp.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let _ = (&*tcp).read(&mut sink);
    let _ = (&*tcp).write_all(answer);
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    // Wait (briefly) for the peer to close, so that the answer is read before the socket goes.
    let _ = (&*tcp).read(&mut sink);
}

fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let names = vec!["localhost".to_string(), "framewire".to_string()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::Setup(format!("making a self-signed certificate: {e}")))?;
    fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create it: {e}")))?;
    write_new(key, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, made.cert.pem().as_bytes(), 0o644)
}

/// Writes a file that must not exist yet, with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| file_error(path, format!("cannot create it: {e}")))?;
    f.write_all(bytes)
        .map_err(|e| file_error(path, format!("cannot write it: {e}")))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(file_error(path, "no certificate in it (expected PEM)"));
    }
    Ok(chain)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::Io(e) => file_error(path, e),
        e => file_error(path, format!("not a PEM file: {e}")),
    }
}

/// How a client trusts a server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// On first use: the fingerprint recorded in this known-hosts file, or, for a host not in
    /// it yet, the one it shows now (then recorded).
    KnownHosts(PathBuf),
    /// Only this fingerprint (`sha256:HEX`); no file is read or written.
    Pin(String),
    /// A certificate signed by one of the CAs in this PEM file, for the host's name.
    Ca(PathBuf),
}

/// A client's TLS: how it trusts servers, and the host as the user named it.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// How the server's certificate is trusted.
    pub trust: Trust,
    /// `HOST:PORT` as given: the known-hosts key; its host is the name a CA's certificate must carry.
    pub host: String,
}

/// Why a client's TLS handshake failed.
#[derive(Debug)]
pub struct TlsRefusal {
    /// One line: what happened and what to do.
    pub reason: String,
    /// Whether trying again may help (the connection failed, not the trust).
    pub retry: bool,
}

impl TlsClient {
    /// Runs the client's handshake on `tcp` before `deadline` and checks the server's
    /// certificate as [`Trust`] says; a host seen for the first time is recorded.
    pub fn connect(&self, tcp: TcpStream, deadline: Instant) -> Result<Conn, TlsRefusal> {
        let refuse = |reason: String| TlsRefusal {
            reason,
            retry: false,
        };
        // A CA's certificate is checked against the host's name, so that name must be one; the
        // fingerprint checks name no host, and any name will do for them.
        let name = match (
            ServerName::try_from(self.host_name().to_string()),
            &self.trust,
        ) {
            (Ok(name), _) => name,
            (Err(e), Trust::Ca(_)) => {
                return Err(refuse(format!(
                    "{}: not a host name a CA's certificate can carry ({e}); --tls-ca needs one",
                    self.host
                )));
            }
            (Err(_), _) => ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])),
        };
        let seen = Arc::new(Mutex::new(None::<String>));
        let provider = provider();
        let algorithms = provider.signature_verification_algorithms;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| refuse(format!("tls setup: {e}")))?;
        let config = match &self.trust {
            Trust::Ca(file) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(file).map_err(|e| refuse(format!("--tls-ca {e}")))? {
                    roots
                        .add(cert)
                        .map_err(|e| refuse(format!("--tls-ca {}: {e}", file.display())))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pin(_) | Trust::KnownHosts(_) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Fingerprints {
                    pin: match &self.trust {
                        Trust::Pin(p) => Some(p.clone()),
                        _ => None,
                    },
                    seen: Arc::clone(&seen),
                    algorithms,
                }))
                .with_no_client_auth(),
        };
        let client = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| refuse(format!("tls setup: {e}")))?;
        let mut conn = rustls::Connection::Client(client);
        let at = &self.host;
        let first = |head: &[u8]| {
            if head.starts_with(b"FW") {
                Err(format!("{at} answered plaintext framewire: drop --tls"))
            } else if head[0] != TLS_HANDSHAKE_BYTE && head[0] != 0x15 {
                Err(format!(
                    "{at} answered something that is not TLS: drop --tls?"
                ))
            } else {
                Ok(())
            }
        };
        let seen_now = || seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match handshake(&tcp, &mut conn, deadline, &first) {
            Ok(()) => {}
            Err(HandshakeError::Refused(reason)) => return Err(refuse(reason)),
            Err(HandshakeError::Tls(e)) => {
                if let (Trust::Pin(pin), Some(got)) = (&self.trust, seen_now())
                    && got != *pin
                {
                    return Err(refuse(format!(
                        "{at} shows the TLS certificate {got}, not the pinned {pin}"
                    )));
                }
                let against = match &self.trust {
                    Trust::Ca(file) => format!(" (checked against --tls-ca {})", file.display()),
                    _ => String::new(),
                };
                return Err(refuse(format!("{at}: TLS handshake failed: {e}{against}")));
            }
            Err(HandshakeError::Closed) => {
                return Err(TlsRefusal {
                    reason: format!(
                        "{at} closed the connection during the TLS handshake: it may not serve \
                         TLS (that needs serve --tls), or it had no free handshake slot (its log \
                         says so)"
                    ),
                    retry: true,
                });
            }
            Err(HandshakeError::Io(e)) => {
                return Err(TlsRefusal {
                    reason: format!("{at}: TLS handshake failed: {e}"),
                    retry: true,
                });
            }
        }
        if let (Trust::KnownHosts(file), Some(got)) = (&self.trust, seen_now()) {
            known_host(file, &self.host, &got).map_err(|e| refuse(e.to_string()))?;
        }
        Ok(Conn::tls(tcp, conn))
    }

    /// The host part of [`host`](Self::host) (brackets of an IPv6 address removed).
    fn host_name(&self) -> &str {
        let host = match self.host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.host,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Checks `fingerprint` for `host` against the known-hosts `file`: the recorded one must match;
/// a host not in it is added. Errors are one line saying what changed and how to accept it.
pub fn known_host(file: &Path, host: &str, fingerprint: &str) -> Result<(), TlsError> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create it: {e}")))?;
    }
    // Read and appended under the file's lock, so that two viewers meeting a host at once
    // record it once (a file that cannot be written is still read, under a shared lock).
    let opened = fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file);
    let (mut f, writable) = match opened {
        Ok(f) => {
            f.lock().map_err(|e| file_error(file, e))?;
            (f, true)
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let f = fs::File::open(file).map_err(|e| file_error(file, e))?;
            f.lock_shared().map_err(|e| file_error(file, e))?;
            (f, false)
        }
        Err(e) => return Err(file_error(file, e)),
    };
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| file_error(file, e))?;
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(h), Some(fp)) = (words.next(), words.next()) else {
            continue;
        };
        if h.starts_with('#') || h != host {
            continue;
        }
        if fp == fingerprint {
            return Ok(());
        }
        return Err(TlsError::Changed {
            host: host.to_string(),
            fingerprint: fingerprint.to_string(),
            file: file.to_path_buf(),
            line: i + 1,
            recorded: fp.to_string(),
        });
    }
    if !writable {
        return Err(file_error(
            file,
            "cannot record the host: the file is read-only",
        ));
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{host} {fingerprint}\n").as_bytes())
        .map_err(|e| file_error(file, e))?;
    tracing::info!("recorded {host} {fingerprint} in {}", file.display());
    Ok(())
}

/// The pin and first-use verifier: notes the end-entity certificate's fingerprint (and with a
/// pin, refuses any other); every signature is checked by rustls.
#[derive(Debug)]
struct Fingerprints {
    pin: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Fingerprints {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        let matches = self.pin.as_ref().is_none_or(|pin| *pin == got);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(got);
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_ca_checks_the_host_as_written_and_never_a_stand_in_name() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let client = TlsClient {
            trust: Trust::Ca(PathBuf::from("/nonexistent/ca.pem")),
            host: "not a host!:9999".into(),
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let Err(refused) = client.connect(tcp, deadline) else {
            panic!("a bad host name under --tls-ca connected")
        };
        assert!(
            refused
                .reason
                .contains("not a host name a CA's certificate can carry"),
            "{}",
            refused.reason
        );
    }

    use super::*;

    #[test]
    fn fingerprints_parse_in_any_case() {
        let hex = "AB".repeat(32);
        assert_eq!(
            parse_fingerprint(&format!("sha256:{hex}")).unwrap(),
            format!("sha256:{}", hex.to_lowercase())
        );
        assert!(parse_fingerprint("sha256:abc").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn known_hosts_records_then_refuses_a_change() {
        let dir = std::env::temp_dir().join(format!("fw-known-{}", std::process::id()));
        let file = dir.join("known_hosts");
        let _ = fs::remove_file(&file);
        let (a, b) = (fingerprint(b"a"), fingerprint(b"b"));
        known_host(&file, "h:1", &a).unwrap();
        known_host(&file, "h:1", &a).unwrap();
        known_host(&file, "h:2", &b).unwrap();
        let err = known_host(&file, "h:1", &b).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains(&a) && err.contains(&b),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn viewers_meeting_hosts_at_once_record_each_once() {
        let dir = std::env::temp_dir().join(format!("fw-known-race-{}", std::process::id()));
        let file = dir.join("known_hosts");
        let _ = fs::remove_dir_all(&dir);
        let fp = fingerprint(b"a");
        std::thread::scope(|s| {
            for i in 0..16 {
                let (file, fp) = (&file, &fp);
                s.spawn(move || {
                    known_host(file, &format!("h:{}", i % 4), fp).unwrap();
                });
            }
        });
        let text = fs::read_to_string(&file).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        let want: Vec<String> = (0..4).map(|i| format!("h:{i} {fp}")).collect();
        assert_eq!(lines, want, "each host once");
        let _ = fs::remove_dir_all(&dir);
    }
}
