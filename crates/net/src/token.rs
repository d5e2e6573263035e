//! The shared token: a secret both ends know, proved without crossing the wire.
//!
//! A server with a token answers a hello with a challenge (32 fresh random bytes); the viewer
//! answers with HMAC-SHA256, keyed by the token, of a fixed label and the challenge; the server
//! checks it in constant time (the `hmac` crate's `verify_slice`) before it sends a byte of the
//! stream. A fresh challenge per connection makes a recorded answer worthless. Failed proofs
//! are counted per address ([`Failures`]): an address that keeps failing is refused at once for
//! a while, which costs the server nothing and the other viewers nothing.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes in a challenge and in a proof.
pub const PROOF_LEN: usize = 32;

/// What the proof's HMAC covers before the challenge, so that a proof made for this purpose
/// cannot be taken for another.
const LABEL: &[u8] = b"framewire token proof v1";

/// The environment variable a token may come from.
pub const TOKEN_ENV: &str = "FRAMEWIRE_TOKEN";

/// A shared secret. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token of these bytes: at least one, after trailing line ends are cut (a file written
    /// by `echo`).
    pub fn new(bytes: &[u8]) -> Result<Token, String> {
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        if end == 0 {
            return Err("the token is empty".into());
        }
        Ok(Token(bytes[..end].to_vec()))
    }

    /// The token in the file at `path`.
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Token::new(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The token from `file` if given, else from [`TOKEN_ENV`] if set; `None` when neither is.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Token>, String> {
        if let Some(path) = file {
            return Token::from_file(path).map(Some);
        }
        match std::env::var_os(TOKEN_ENV) {
            Some(v) => Token::new(v.as_encoded_bytes())
                .map(Some)
                .map_err(|e| format!("{TOKEN_ENV}: {e}")),
            None => Ok(None),
        }
    }

    fn mac(&self, challenge: &[u8; PROOF_LEN]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(LABEL);
        mac.update(challenge);
        mac
    }

    /// The answer to `challenge`.
    pub fn prove(&self, challenge: &[u8; PROOF_LEN]) -> [u8; PROOF_LEN] {
        self.mac(challenge).finalize().into_bytes().into()
    }

    /// Whether `presented` is this token, compared in constant time (`subtle`; only a length
    /// that differs is told apart early).
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(presented))
    }

    /// Whether `proof` answers `challenge` for this token, compared in constant time.
    pub fn verify(&self, challenge: &[u8; PROOF_LEN], proof: &[u8; PROOF_LEN]) -> bool {
        self.mac(challenge).verify_slice(proof).is_ok()
    }
}

/// A fresh challenge from the operating system's random source.
pub fn challenge() -> Result<[u8; PROOF_LEN], String> {
    let mut bytes = [0u8; PROOF_LEN];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes for a challenge: {e}"))?;
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

    /// `ip` failed a proof at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            let oldest = map.iter().min_by_key(|(_, (_, at))| *at).map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
    }

    /// `ip` proved the token: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.by_address
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
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
        assert_eq!(Token::new(b"\n\n").unwrap_err(), "the token is empty");
        assert_eq!(format!("{token:?}"), "Token(..)");
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
}
