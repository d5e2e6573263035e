//! The shared token: a secret both ends know, proved without crossing the wire.
//!
//! A server with a token answers a hello with a challenge (32 fresh random bytes); the viewer
//! answers with HMAC-SHA256, keyed by the token, of a fixed label and the challenge; the server
//! checks it in constant time (the `hmac` crate's `verify_slice`) before it sends a byte of the
//! stream. A fresh challenge per connection makes a recorded answer worthless. Failed proofs
//! are counted per address ([`Failures`]): an address that keeps failing is refused at once for
//! a while, which costs the server nothing and the other viewers nothing.
//!
//! A call's listener proves the token back to its caller ([`Token::prove_listener`]) under
//! another label, so that a proof of one direction is never taken for the other. A browser
//! that logged in with the token gets a cookie made from it ([`Token::cookie`]): not the
//! token, but HMAC of its issue time and a random nonce under a third label, checked
//! without any state kept ([`Token::cookie_valid`]).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes in a challenge and in a proof.
pub const PROOF_LEN: usize = 32;

/// What the proof's HMAC covers before the challenge, so that a proof made for this purpose
/// cannot be taken for another.
const LABEL: &[u8] = b"framewire token proof v1";

/// What a call listener's proof covers before the challenge.
const LISTENER_LABEL: &[u8] = b"framewire token proof v1 listener";

/// What a browser cookie's HMAC covers before its issue time and nonce.
const COOKIE_LABEL: &[u8] = b"framewire cookie v1";

/// Bytes of a cookie before its HMAC: the issue time (seconds since the epoch, big-endian)
/// and a random nonce.
const COOKIE_HEAD: usize = 8 + 16;

/// Characters in a cookie: its head and HMAC in lowercase hex.
pub const COOKIE_CHARS: usize = 2 * (COOKIE_HEAD + PROOF_LEN);

/// How long a cookie opens the stream after it was issued.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The fewest bytes of a token a user gives: a proof seen on the wire must not let anyone guess
/// it offline.
pub const MIN_TOKEN_LEN: usize = 16;

/// The environment variable a token may come from.
pub const TOKEN_ENV: &str = "FRAMEWIRE_TOKEN";

/// Why there is no token, or no random bytes for one of its values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The bytes were empty once trailing line ends were cut.
    #[error("the token is empty")]
    Empty,
    /// Its file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its file holds no token.
    #[error("{}: the token is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// [`TOKEN_ENV`] holds no token.
    #[error("{TOKEN_ENV}: the token is empty")]
    EmptyEnv,
    /// A token given by a user (a file, [`TOKEN_ENV`]) is shorter than [`MIN_TOKEN_LEN`]: one
    /// captured exchange would let anyone guess it offline.
    #[error(
        "{from}: the token is {len} bytes; it needs at least {MIN_TOKEN_LEN} (make one with \
         `head -c 32 /dev/urandom | base64 > token`)"
    )]
    Short {
        /// Where it came from: the file, or the variable.
        from: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The operating system gave no random bytes.
    #[error("no random bytes for {what}: {reason}")]
    NoRandom {
        /// What they were for.
        what: &'static str,
        /// Why (getrandom's error; without its `std` feature it is no `std::error::Error`).
        reason: getrandom::Error,
    },
}

/// A shared secret. Its `Debug` never shows it. Its clones share one count of failed proofs
/// per address ([`Token::failures`]), so the protocols a server runs with the same token (the
/// framewire port, HTTP, UDP) slow an address down together.
#[derive(Clone)]
pub struct Token {
    secret: Vec<u8>,
    failures: Arc<Failures>,
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.matches(&other.secret)
    }
}

impl Eq for Token {}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token of these bytes: at least one, after trailing line ends are cut (a file written
    /// by `echo`).
    pub fn new(bytes: &[u8]) -> Result<Token, TokenError> {
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        if end == 0 {
            return Err(TokenError::Empty);
        }
        Ok(Token {
            secret: bytes[..end].to_vec(),
            failures: Arc::default(),
        })
    }

    /// The token in the file at `path`.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let bytes = std::fs::read(path).map_err(|source| TokenError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Token::new(&bytes).map_err(|_| TokenError::EmptyFile {
            path: path.to_path_buf(),
        })
    }

    /// The token from `file` if given, else from [`TOKEN_ENV`] if set; `None` when neither is.
    /// Either must hold at least [`MIN_TOKEN_LEN`] bytes.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Token>, TokenError> {
        let (token, from) = match (file, std::env::var_os(TOKEN_ENV)) {
            (Some(path), _) => (Token::from_file(path)?, path.display().to_string()),
            (None, Some(v)) => {
                let token = Token::new(v.as_encoded_bytes()).map_err(|_| TokenError::EmptyEnv)?;
                (token, TOKEN_ENV.to_string())
            }
            (None, None) => return Ok(None),
        };
        token.long_enough(from).map(Some)
    }

    /// A token a user gave (`from` says where, for the error): at least [`MIN_TOKEN_LEN`]
    /// bytes once trailing line ends are cut.
    pub fn given(bytes: &[u8], from: &str) -> Result<Token, TokenError> {
        Token::new(bytes)?.long_enough(from.to_string())
    }

    fn long_enough(self, from: String) -> Result<Token, TokenError> {
        match self.secret.len() {
            len if len < MIN_TOKEN_LEN => Err(TokenError::Short { from, len }),
            _ => Ok(self),
        }
    }

    fn mac(&self, label: &[u8], message: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        mac.update(label);
        mac.update(message);
        mac
    }

    /// The answer to `challenge`.
    pub fn prove(&self, challenge: &[u8; PROOF_LEN]) -> [u8; PROOF_LEN] {
        self.mac(LABEL, challenge).finalize().into_bytes().into()
    }

    /// A call listener's answer to its caller's `challenge`.
    pub fn prove_listener(&self, challenge: &[u8; PROOF_LEN]) -> [u8; PROOF_LEN] {
        self.mac(LISTENER_LABEL, challenge)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `proof` is a call listener's answer to `challenge` for this token, compared in
    /// constant time.
    pub fn verify_listener(&self, challenge: &[u8; PROOF_LEN], proof: &[u8; PROOF_LEN]) -> bool {
        self.mac(LISTENER_LABEL, challenge)
            .verify_slice(proof)
            .is_ok()
    }

    /// A fresh cookie for a browser that logged in at `now_s` (seconds since the epoch):
    /// [`COOKIE_CHARS`] lowercase hex characters.
    pub fn cookie(&self, now_s: u64) -> Result<String, TokenError> {
        let mut head = [0u8; COOKIE_HEAD];
        head[..8].copy_from_slice(&now_s.to_be_bytes());
        getrandom::fill(&mut head[8..]).map_err(|reason| TokenError::NoRandom {
            what: "a cookie",
            reason,
        })?;
        let mac = self.mac(COOKIE_LABEL, &head).finalize().into_bytes();
        let mut out = String::with_capacity(COOKIE_CHARS);
        for b in head.iter().chain(mac.iter()) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        Ok(out)
    }

    /// Whether `cookie` is one [`cookie`](Token::cookie) made for this token, issued at most
    /// [`COOKIE_LIFETIME`] before `now_s` (and not in the future, but for a minute of clock
    /// skew). The HMAC is compared in constant time; the shape (length, hex) is checked first.
    pub fn cookie_valid(&self, cookie: &[u8], now_s: u64) -> bool {
        let Some(bytes) = unhex::<{ COOKIE_HEAD + PROOF_LEN }>(cookie) else {
            return false;
        };
        let (head, mac) = bytes.split_at(COOKIE_HEAD);
        if self.mac(COOKIE_LABEL, head).verify_slice(mac).is_err() {
            return false;
        }
        let issued = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
        issued <= now_s.saturating_add(60)
            && now_s.saturating_sub(issued) < COOKIE_LIFETIME.as_secs()
    }

    /// Whether `presented` is this token, compared in constant time (`subtle`; only a length
    /// that differs is told apart early).
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.secret.as_slice().ct_eq(presented))
    }

    /// Failed proofs of this token per address, shared by its clones.
    pub fn failures(&self) -> &Failures {
        &self.failures
    }

    /// Whether `proof` answers `challenge` for this token, compared in constant time.
    pub fn verify(&self, challenge: &[u8; PROOF_LEN], proof: &[u8; PROOF_LEN]) -> bool {
        self.mac(LABEL, challenge).verify_slice(proof).is_ok()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `N` bytes from exactly `2 * N` lowercase hex characters.
fn unhex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| HEX.iter().position(|&h| h == c).map(|d| d as u8);
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A fresh challenge from the operating system's random source.
pub fn challenge() -> Result<[u8; PROOF_LEN], TokenError> {
    let mut bytes = [0u8; PROOF_LEN];
    getrandom::fill(&mut bytes).map_err(|reason| TokenError::NoRandom {
        what: "a challenge",
        reason,
    })?;
    Ok(bytes)
}

/// Failed proofs an address may make in a row before it is refused for a while.
const FREE_FAILURES: u32 = 3;
/// The first wait after those; each further failure doubles it, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the one that failed longest ago is forgotten first.
const MAX_ADDRESSES: usize = 4096;

/// Failed proofs per address, and how long each must wait before it is heard again.
#[derive(Debug, Default)]
pub struct Failures {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Failures {
    /// `Err(wait)` when `ip` failed too often and must wait that much longer.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        waiting(&map, ip, now)
    }

    /// Judges a proof from `ip` at `now`, with the count held: `Err(wait)` at once while the
    /// address waits (`proved` is not called); else whether `proved` says it proved the token,
    /// counted (a failure makes the address wait, a success forgets its failures). Parallel
    /// attempts from one address are judged one at a time, each after the failures before it,
    /// so opening many connections at once buys no extra guesses.
    pub fn judge(
        &self,
        ip: IpAddr,
        now: Instant,
        proved: impl FnOnce() -> bool,
    ) -> Result<bool, Duration> {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        waiting(&map, ip, now)?;
        let ok = proved();
        if ok {
            map.remove(&ip);
        } else {
            count_failure(&mut map, ip, now);
        }
        Ok(ok)
    }

    /// `ip` failed a proof at `now` (it sent none in time, or closed).
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        count_failure(&mut map, ip, now);
    }

    /// `ip` proved the token: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.by_address
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

/// `Err(wait)` when `ip` is in `map` and must wait that much longer.
fn waiting(
    map: &HashMap<IpAddr, (u32, Instant)>,
    ip: IpAddr,
    now: Instant,
) -> Result<(), Duration> {
    match map.get(&ip) {
        Some(&(n, last)) if n >= FREE_FAILURES => {
            let until = last + wait_after(n);
            if now < until {
                Err(until - now)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Counts a failure of `ip`. A full table makes room by forgetting the address that failed
/// longest ago among those not waiting: an address made to wait is never forgotten for another's
/// failures, so failing from many addresses cannot flush it. When every address waits, the new
/// one is not counted (the table stays bounded; each waiting address stays locked).
fn count_failure(map: &mut HashMap<IpAddr, (u32, Instant)>, ip: IpAddr, now: Instant) {
    if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
        let oldest = map
            .iter()
            .filter(|(ip, _)| waiting(map, **ip, now).is_ok())
            .min_by_key(|(_, (_, at))| *at)
            .map(|(ip, _)| *ip);
        match oldest {
            Some(oldest) => drop(map.remove(&oldest)),
            None => return,
        }
    }
    let entry = map.entry(ip).or_insert((0, now));
    *entry = (entry.0.saturating_add(1), now);
}

/// How long an address with `n` failures in a row waits after the last.
fn wait_after(n: u32) -> Duration {
    let doublings = n.saturating_sub(FREE_FAILURES).min(16);
    (FIRST_WAIT * 2u32.pow(doublings)).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_answers_one_challenge_for_one_token() {
        let token = Token::new(b"correct horse battery staple\n").unwrap();
        let c = challenge().unwrap();
        let proof = token.prove(&c);
        assert!(token.verify(&c, &proof));
        assert!(!Token::new(b"correct horse").unwrap().verify(&c, &proof));
        let other = challenge().unwrap();
        assert_ne!(c, other, "challenges are fresh");
        assert!(!token.verify(&other, &proof), "a replayed proof fails");
        let mut flipped = proof;
        flipped[31] ^= 1;
        assert!(!token.verify(&c, &flipped));
        // Line ends are cut; nothing else is.
        assert_eq!(
            token,
            Token::new(b"correct horse battery staple\r\n").unwrap()
        );
        assert_ne!(token, Token::new(b"correct horse battery staple ").unwrap());
        assert_eq!(
            Token::new(b"\n\n").unwrap_err().to_string(),
            "the token is empty"
        );
        assert_eq!(format!("{token:?}"), "Token(..)");
    }

    #[test]
    fn a_listener_proof_is_not_a_viewer_proof() {
        let token = Token::new(b"s3cret").unwrap();
        let c = challenge().unwrap();
        let back = token.prove_listener(&c);
        assert!(token.verify_listener(&c, &back));
        assert!(
            !token.verify(&c, &back),
            "one direction's proof fails the other"
        );
        assert!(!token.verify_listener(&c, &token.prove(&c)));
        assert!(!Token::new(b"guess").unwrap().verify_listener(&c, &back));
    }

    #[test]
    fn a_cookie_opens_for_its_token_until_it_expires_and_no_changed_byte_does() {
        let token = Token::new(b"s3cret").unwrap();
        let now = 1_764_770_000;
        let cookie = token.cookie(now).unwrap();
        assert_eq!(cookie.len(), COOKIE_CHARS);
        assert_ne!(
            cookie,
            token.cookie(now).unwrap(),
            "a fresh nonce each time"
        );
        let c = cookie.as_bytes();
        assert!(token.cookie_valid(c, now));
        assert!(token.cookie_valid(c, now + COOKIE_LIFETIME.as_secs() - 1));
        assert!(
            !token.cookie_valid(c, now + COOKIE_LIFETIME.as_secs()),
            "expired"
        );
        assert!(!token.cookie_valid(c, now - 3600), "issued in the future");
        assert!(!Token::new(b"guess").unwrap().cookie_valid(c, now));
        assert!(!token.cookie_valid(&c[..c.len() - 1], now), "truncated");
        assert!(!token.cookie_valid(&cookie.to_uppercase().into_bytes(), now));
        assert!(!token.cookie_valid(b"", now));
        for i in 0..c.len() {
            let mut forged = c.to_vec();
            forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
            assert!(!token.cookie_valid(&forged, now), "byte {i} changed");
        }
    }

    #[test]
    fn an_address_that_keeps_failing_waits_longer_and_others_do_not() {
        let failures = Failures::default();
        let (bad, good): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(failures.check(bad, t), Ok(()));
            failures.failed(bad, t);
        }
        assert_eq!(failures.check(bad, t), Err(Duration::from_secs(1)));
        assert_eq!(failures.check(good, t), Ok(()));
        assert_eq!(failures.check(bad, t + Duration::from_secs(1)), Ok(()));
        failures.failed(bad, t);
        assert_eq!(failures.check(bad, t), Err(Duration::from_secs(2)));
        for _ in 0..40 {
            failures.failed(bad, t);
        }
        assert_eq!(failures.check(bad, t), Err(MAX_WAIT));
        failures.succeeded(bad);
        assert_eq!(failures.check(bad, t), Ok(()));
    }

    #[test]
    fn a_proof_is_judged_after_the_failures_before_it_and_not_at_all_while_waiting() {
        let failures = Failures::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t = Instant::now();
        // Many attempts that all passed an earlier check: only the first few are judged.
        let mut judged = 0;
        for _ in 0..24 {
            let _ = failures.judge(ip, t, || {
                judged += 1;
                false
            });
        }
        assert_eq!(judged, FREE_FAILURES);
        assert_eq!(failures.judge(ip, t, || true), Err(Duration::from_secs(1)));
        let later = t + Duration::from_secs(1);
        assert_eq!(failures.judge(ip, later, || true), Ok(true));
        assert_eq!(
            failures.check(ip, later),
            Ok(()),
            "a success forgets the failures"
        );
    }

    #[test]
    fn failures_from_many_addresses_never_flush_a_waiting_one() {
        let failures = Failures::default();
        let t = Instant::now();
        let locked: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..FREE_FAILURES {
            failures.failed(locked, t);
        }
        for i in 0..2 * MAX_ADDRESSES as u32 {
            let other = IpAddr::from((0x0b00_0000u32 + i).to_be_bytes());
            failures.failed(other, t + Duration::from_millis(1));
        }
        assert!(failures.check(locked, t).is_err(), "still waiting");
        let len = failures.by_address.lock().unwrap().len();
        assert!(len <= MAX_ADDRESSES, "{len}");
    }
}
