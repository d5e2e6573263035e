//! framewire's own protocol on the shared [`Fanout`]: the viewer's hello (what it asks for)
//! and the token's challenge; its stream is written by framewire-wire's [`FramewireFramer`]
//! (the layout is drawn in that crate's doc).

use std::io::{self, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::Ladder;

use crate::conn::{Conn, TLS_HANDSHAKE_BYTE, is_timeout};
use crate::fanout::{Fanout, Opening, Protocol, Refused, ServerConfig, ServerEvent, read_full};
use framewire_wire::framer::{Framer, FramewireFramer, end_message};
use framewire_wire::message::{
    FrameHeader, HEADER_LEN, HELLO_HEAD_LEN, HELLO_LEN, Handshake, Hello, MessageKind, PROOF_LEN,
    WireErrorKind, token_message,
};
use framewire_wire::token::{self, Token};

/// The framewire protocol for one stream, whatever rendition each viewer is in.
#[derive(Debug, Clone)]
pub struct FramewireProtocol {
    fps: f64,
    /// The shared token a viewer must prove, if any, and who failed to.
    token: Option<Token>,
}

impl FramewireProtocol {
    /// Serves a stream paced to `fps` frames per second (0 = unpaced), which each viewer's
    /// handshake announces.
    pub fn new(fps: f64) -> FramewireProtocol {
        FramewireProtocol { fps, token: None }
    }

    /// Asks every viewer to prove `token` (none: nobody is asked).
    pub fn with_token(mut self, token: Option<Token>) -> FramewireProtocol {
        self.token = token;
        self
    }

    /// The token viewers are asked to prove, if any.
    pub(crate) fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }
}

impl Protocol for FramewireProtocol {
    fn name(&self) -> &'static str {
        "framewire"
    }

    /// Reads the viewer's hello (magic and version first, then its request) and refuses a side of a
    /// two-way call: this is a one-way stream.
    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, Refused> {
        let deadline = Instant::now() + timeout;
        let hello = self.read_hello(stream, deadline, timeout)?;
        if hello.push {
            let _ = write_end(stream, Some(NOT_A_HUB));
            return Err("a sender pushing to a hub, not a viewer: told so".into());
        }
        if hello.call.is_some() {
            let _ = write_end(stream, Some(NOT_A_CALL));
            return Err(
                "a caller (framewire chat), not a viewer: told to use framewire view".into(),
            );
        }
        self.check_token(stream, deadline, timeout)?;
        Ok(Opening::Stream {
            request: hello.request,
            framer: self.framer(),
            reader: None,
        })
    }
}

impl FramewireProtocol {
    /// How a viewer's stream is written.
    pub(crate) fn framer(&self) -> Box<dyn Framer> {
        Box::new(FramewireFramer { fps: self.fps })
    }
}

/// Writes framewire's goodbye (`None`) or refusal (`Some(reason)`).
pub(crate) fn write_end(stream: &mut Conn, error: Option<&str>) -> io::Result<()> {
    let mut bytes = Vec::new();
    end_message(error, &mut bytes);
    stream.write_all(&bytes)
}

impl FramewireProtocol {
    /// Reads a hello: its first 8 bytes (magic and version), then, for this version, the
    /// rest. A peer of another version is answered with this version's handshake (so that it
    /// names both) and refused; a hello this build cannot read (an unknown codec, a width out
    /// of range) is refused with the reason.
    pub(crate) fn read_hello(
        &self,
        stream: &mut Conn,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Hello, String> {
        let mut hello = [0u8; HELLO_LEN];
        read_hello_part(stream, &mut hello, 0..HELLO_HEAD_LEN, deadline, timeout)?;
        let head = hello[..HELLO_HEAD_LEN].try_into().expect("8 bytes");
        match Hello::parse_head(head) {
            Ok(()) => {}
            Err(e @ WireErrorKind::UnsupportedVersion { .. }) => {
                // The peer speaks framewire: tell it which version this end speaks.
                let _ = stream.write_all(&Handshake::version_answer());
                return Err(e.to_string());
            }
            Err(_) if hello[0] == TLS_HANDSHAKE_BYTE && !stream.is_tls() => {
                // A TLS client: answered in plaintext framewire, which it recognises.
                crate::tls::answer_plaintext(
                    stream.tcp(),
                    &crate::tls::framewire_error(crate::tls::PLAINTEXT_PORT),
                );
                return Err("a TLS client at this plaintext port: told to drop --tls".into());
            }
            Err(e) => return Err(format!("not a framewire viewer: {e}")),
        }
        read_hello_part(
            stream,
            &mut hello,
            HELLO_HEAD_LEN..HELLO_LEN,
            deadline,
            timeout,
        )?;
        Hello::parse(&hello).map_err(|e| {
            let reason = e.to_string();
            let _ = write_end(stream, Some(&reason));
            reason
        })
    }
}

impl FramewireProtocol {
    /// With a token, challenges the peer that said hello and checks its proof before
    /// `deadline` (`timeout` after the connection came, for messages); refuses it with the
    /// reason otherwise. An address that keeps failing is refused at once for a while.
    /// Returns the bytes read from the peer: its proof's, or none.
    pub(crate) fn check_token(
        &self,
        stream: &mut Conn,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u64, String> {
        let Some(token) = &self.token else {
            return Ok(0);
        };
        let ip = stream
            .peer_addr()
            .map_err(|e| format!("socket setup failed: {e}"))?
            .ip();
        if let Err(wait) = token.failures().check(ip, Instant::now()) {
            let reason = too_many_wrong(ip, wait);
            let _ = write_end(stream, Some(&reason));
            return Err(reason);
        }
        let challenge = token::challenge().map_err(|e| e.to_string())?;
        stream
            .write_all(&token_message(MessageKind::Challenge, &challenge))
            .map_err(|e| format!("sending the token challenge: {e}"))?;
        let mut answer = [0u8; HEADER_LEN + PROOF_LEN];
        let failed = |why: String| {
            token.failures().failed(ip, Instant::now());
            Err(why)
        };
        match read_full(stream, &mut answer, deadline) {
            Ok(n) if n == answer.len() => {}
            Ok(n) => {
                return failed(format!(
                    "closed after {n} of the {} bytes of its token proof (it has no token?)",
                    answer.len()
                ));
            }
            Err(e) if is_timeout(&e) => {
                return failed(format!(
                    "sent no token proof within {:.1}s",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("reading the token proof: {e}")),
        }
        let head: &[u8; HEADER_LEN] = answer[..HEADER_LEN].try_into().expect("header");
        let proof: &[u8; PROOF_LEN] = answer[HEADER_LEN..].try_into().expect("proof");
        let is_proof = FrameHeader::parse(head, 0).is_ok_and(|h| h.kind == MessageKind::Proof);
        // Judged with the address's failures held: attempts made in parallel are judged one
        // after another, and none while the address waits.
        let proved = || is_proof && token.verify(&challenge, proof);
        let reason = match token.failures().judge(ip, Instant::now(), proved) {
            Ok(true) => return Ok(answer.len() as u64),
            Ok(false) => WRONG_TOKEN.to_string(),
            Err(wait) => too_many_wrong(ip, wait),
        };
        let _ = write_end(stream, Some(&reason));
        Err(reason)
    }
}

/// What an address that keeps failing is told while it waits.
fn too_many_wrong(ip: std::net::IpAddr, wait: Duration) -> String {
    format!(
        "too many wrong tokens from {ip}: try again in {} s",
        wait.as_secs_f64().ceil()
    )
}

/// What a server answers a proof of another token.
pub const WRONG_TOKEN: &str = "wrong token";

/// What a one-way server answers a sender pushing to a hub (`serve --push`).
pub const NOT_A_HUB: &str =
    "this is a one-way stream (framewire serve), not a hub: push to framewire hub --listen";

/// What a one-way server answers a caller.
pub const NOT_A_CALL: &str =
    "this is a one-way stream (framewire serve): watch it with framewire view";

/// A framewire server: the [`Fanout`] speaking [`FramewireProtocol`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `addr` and starts accepting viewers of the renditions `ladder` offers, paced to
    /// `fps`. `on_event` is called (from server threads) for every viewer that joins, leaves
    /// or is rejected.
    pub fn bind(
        addr: impl ToSocketAddrs,
        ladder: Arc<Ladder>,
        fps: f64,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        let protocol = FramewireProtocol::new(fps).with_token(config.token.clone());
        Fanout::bind(addr, protocol, ladder, config, on_event)
    }
}

/// Reads bytes `range` of the viewer's hello before `deadline`. Errors are one line naming
/// what was wrong.
fn read_hello_part(
    stream: &mut Conn,
    hello: &mut [u8; HELLO_LEN],
    range: std::ops::Range<usize>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    let (from, to) = (range.start, range.end);
    match read_full(stream, &mut hello[range], deadline) {
        Ok(n) if n == to - from => Ok(()),
        Ok(n) => Err(format!(
            "closed after {} of {HELLO_LEN} bytes of the viewer hello",
            from + n
        )),
        Err(e) if is_timeout(&e) => Err(format!(
            "sent no viewer hello within {:.1}s",
            timeout.as_secs_f64()
        )),
        Err(e) => Err(format!("reading the viewer hello: {e}")),
    }
}
