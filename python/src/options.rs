//! Python's keyword arguments as the kit's options, each error naming the argument as the
//! command line names its flag.

use std::net::SocketAddr;

use framewire_core::CodecKind;
use framewire_kit::value::{self, HostPort};
use framewire_kit::{SendOptions, Transport};
use framewire_net::{TlsClient, TlsServer};
use framewire_wire::token::Token;
use pyo3::prelude::*;

use crate::{error, value_error};

/// `listen=`: an address to bind (`127.0.0.1:0` picks a free port).
pub(crate) fn listen(arg: &str, s: &str) -> PyResult<SocketAddr> {
    value::addr(s).map_err(|e| value_error(format!("{arg}: {e}")))
}

/// `connect=`: a host and port, resolved now so that a typo is reported at once.
pub(crate) fn connect(arg: &str, s: &str) -> PyResult<HostPort> {
    value::host_port(s).map_err(|e| value_error(format!("{arg}: {e}")))
}

/// `codec=`.
pub(crate) fn codec(s: &str) -> PyResult<CodecKind> {
    s.parse().map_err(|e| value_error(format!("codec: {e}")))
}

/// `transport=`: `tcp` or `udp`.
pub(crate) fn transport(s: &str) -> PyResult<Transport> {
    s.parse()
        .map_err(|e| value_error(format!("transport: {e}")))
}

/// `token=`: the shared token (str or bytes, at least 16 bytes); `None`: the environment
/// variable FRAMEWIRE_TOKEN if set, as the command line does.
pub(crate) fn token(token: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Token>> {
    let given = match token {
        None => return Token::from_file_or_env(None).map_err(error),
        Some(t) if t.is_none() => return Token::from_file_or_env(None).map_err(error),
        Some(t) => t,
    };
    let bytes: Vec<u8> = match given.extract::<String>() {
        Ok(s) => s.into_bytes(),
        Err(_) => given
            .extract::<Vec<u8>>()
            .map_err(|_| value_error("token: expected a str or bytes"))?,
    };
    Token::given(&bytes, "token").map(Some).map_err(value_error)
}

/// `tls=` of a side that presents a certificate: `False`, `True` (the self-signed one kept in
/// the config folder, as `serve --tls`), or `(cert_pem_path, key_pem_path)`.
pub(crate) fn tls_server(tls: Option<&Bound<'_, PyAny>>) -> PyResult<Option<TlsServer>> {
    let Some(tls) = tls.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    if let Ok(on) = tls.extract::<bool>() {
        return match on {
            false => Ok(None),
            true => framewire_kit::tls::server(None)
                .map(Some)
                .map_err(|e| error(format!("tls: {e}"))),
        };
    }
    let (cert, key): (std::path::PathBuf, std::path::PathBuf) = tls
        .extract()
        .map_err(|_| value_error("tls: expected True, False or (cert_pem_path, key_pem_path)"))?;
    framewire_kit::tls::server(Some((&cert, &key)))
        .map(Some)
        .map_err(|e| error(format!("tls: {e}")))
}

/// `tls=` of a side that checks a certificate: `False`; `True` (trusted on first use and kept
/// in known_hosts, as `view --tls`), `"sha256:HEX"` (only that certificate), or a path to a CA's
/// PEM file; for the host `host` as written.
pub(crate) fn tls_client(
    tls: Option<&Bound<'_, PyAny>>,
    host: &HostPort,
) -> PyResult<Option<TlsClient>> {
    let Some(tls) = tls.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    let client = |pin: Option<&str>, ca: Option<&std::path::PathBuf>| {
        framewire_kit::tls::client(pin, ca, &host.name)
            .map(Some)
            .map_err(|e| error(format!("tls: {e}")))
    };
    if let Ok(on) = tls.extract::<bool>() {
        return if on { client(None, None) } else { Ok(None) };
    }
    let s: String = tls.extract().map_err(|_| {
        value_error("tls: expected True, False, \"sha256:HEX\" or the path of a CA's PEM file")
    })?;
    if s.starts_with("sha256:") {
        let pin = value::pin(&s).map_err(|e| value_error(format!("tls: {e}")))?;
        return client(Some(&pin), None);
    }
    client(None, Some(&std::path::PathBuf::from(s)))
}

/// What every sending side takes: the codec, its quality or bitrate, the size sent.
pub(crate) struct Sending {
    pub(crate) codec: CodecKind,
    pub(crate) quality: u8,
    pub(crate) width: Option<u32>,
    pub(crate) fps: Option<f64>,
    pub(crate) bitrate: Option<u32>,
    pub(crate) adapt: bool,
}

impl Sending {
    /// Checks what the kit would take.
    pub(crate) fn new(
        codec: &str,
        quality: u8,
        width: Option<u32>,
        fps: Option<f64>,
        bitrate: Option<u32>,
        adapt: bool,
    ) -> PyResult<Sending> {
        if !(1..=100).contains(&quality) {
            return Err(value_error(format!(
                "quality: expected 1..=100, got {quality}"
            )));
        }
        if let Some(w) = width.filter(|w| !(1..=16384).contains(w)) {
            return Err(value_error(format!("width: expected 1..=16384, got {w}")));
        }
        if let Some(f) = fps.filter(|f| !(f.is_finite() && *f >= 0.0)) {
            return Err(value_error(format!(
                "fps: expected a frame rate of 0 (as frames come) or more, got {f}"
            )));
        }
        Ok(Sending {
            codec: self::codec(codec)?,
            quality,
            width,
            fps,
            bitrate,
            adapt,
        })
    }

    /// The kit's options for frames of `size` handed in by the program.
    pub(crate) fn options(&self, size: (u32, u32)) -> SendOptions {
        SendOptions {
            source: framewire_capture::SourceSpec::Test(1),
            looping: false,
            size,
            fps: self.fps,
            width: self.width,
            height: None,
            codec: self.codec,
            quality: self.quality,
            jpeg_encoder: framewire_codec::JpegBackend::default(),
            adapt: self.adapt,
            ladder: None,
            // One lane: each frame is sent as soon as it is encoded. With more, a frame waits
            // in its lane until the program's next one comes (the lanes' order), which is a
            // frame-time of latency at a program's pace.
            threads: Some(1),
            bitrate: self.bitrate,
            keyint: framewire_codec::DEFAULT_KEYINT,
        }
    }
}
