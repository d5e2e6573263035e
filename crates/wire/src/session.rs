//! A UDP session's proofs (sans-IO): what ties every datagram after a join to that join, and
//! what a viewer proves it receives with, so that a forged source address can neither end,
//! freeze or redirect a viewer nor keep a stream flowing to an address that does not take it.
//!
//! The server draws a 16-byte session key at each join and sends it in the start, to the
//! address that echoed its cookie: an address that does not receive what is sent to it never
//! learns it. From the key come (HMAC-SHA256 under it, each under its own label, cut to 8 bytes):
//!
//! - the **session id**, which every later datagram of the viewer carries (report, end) and
//!   every later datagram of the server too (end, rejoin, peer report);
//! - the **start's check**, of the cookie the hello echoed: a start that is not the answer to
//!   this viewer's own hello is dropped;
//! - each frame's **tag**, of its number: every fragment of the frame carries it, and a report
//!   carries the tag of the newest frame it saw a piece of, its **receipt**. The viewer never
//!   sends the key, so the receipt of a frame is known only to whoever received that frame.
//!
//! The server's [`Liveness`] of a viewer: the stream starts only once a report carries the
//! session id (so a replayed join gets a start, never a frame); and a report keeps the viewer
//! only when its receipt proves a frame newer than any proved before (or when every frame sent
//! is proved already: a stalled source sends nothing to amplify). A viewer silent, or
//! reporting nothing new, for the idle timeout is forgotten, however many reports a spoofer
//! sends for it. Ids, checks and tags are compared in constant time.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes in a session key.
pub const KEY_LEN: usize = 16;
/// Bytes in a session id, a start's check, a frame's tag and a receipt.
pub const PROOF_LEN: usize = 8;

/// A session id, check, tag or receipt.
pub type Proof = [u8; PROOF_LEN];

const ID_LABEL: &[u8] = b"framewire udp session id v1";
const CHECK_LABEL: &[u8] = b"framewire udp start check v1";
const TAG_LABEL: &[u8] = b"framewire udp frame tag v1";

/// A session's key and what comes from it. Both ends hold one: the server draws it, the
/// viewer takes it from the start.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; KEY_LEN],
    id: Proof,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A session's key from its bytes.
    pub fn new(key: [u8; KEY_LEN]) -> SessionKey {
        let id = mac(&key, ID_LABEL, &[]);
        SessionKey { key, id }
    }

    /// A fresh random key (the server's, at a join).
    pub fn draw() -> Result<SessionKey, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        Ok(SessionKey::new(key))
    }

    /// The key's bytes, for the start.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The session id every later datagram carries.
    pub fn id(&self) -> Proof {
        self.id
    }

    /// Whether `who` is this session's id.
    pub fn is_id(&self, who: &Proof) -> bool {
        self.id.ct_eq(who).into()
    }

    /// The start's check of the cookie that the answered hello echoed.
    pub fn check(&self, cookie: &[u8]) -> Proof {
        mac(&self.key, CHECK_LABEL, cookie)
    }

    /// The viewer's side of a start: the key, when `check` is the one for `cookie`.
    pub fn from_start(key: [u8; KEY_LEN], check: &Proof, cookie: &[u8]) -> Option<SessionKey> {
        let session = SessionKey::new(key);
        bool::from(session.check(cookie).ct_eq(check)).then_some(session)
    }

    /// The tag of the frame numbered `sent` (its fragments carry it; a report's receipt).
    pub fn tag(&self, sent: u32) -> Proof {
        mac(&self.key, TAG_LABEL, &sent.to_le_bytes())
    }

    /// Whether `tag` is frame `sent`'s.
    pub fn is_tag(&self, sent: u32, tag: &Proof) -> bool {
        self.tag(sent).ct_eq(tag).into()
    }
}

fn mac(key: &[u8], label: &[u8], data: &[u8]) -> Proof {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(label);
    mac.update(data);
    mac.finalize().into_bytes()[..PROOF_LEN]
        .try_into()
        .expect("8 bytes")
}

/// What a report did for its viewer's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Not this session's id: forged, or of another session. Nothing changes.
    Forged,
    /// This session's, but it proves no frame newer than those proved already while newer
    /// ones were sent: its figures count, its viewer's silence goes on.
    Stale,
    /// It proved receipt (or there was nothing new to prove): the viewer is alive now.
    Alive,
}

/// The server's side of one viewer's liveness. See the module doc.
#[derive(Debug, Clone)]
pub struct Liveness {
    confirmed: bool,
    sent: u32,
    proved: u32,
    heard: Instant,
}

impl Liveness {
    /// A viewer that joined at `now`: not confirmed, nothing sent.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            confirmed: false,
            sent: 0,
            proved: 0,
            heard: now,
        }
    }

    /// Whether a report with the session's id has come: the stream may flow.
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// Frame `n` (its number among those sent to this viewer) is going out.
    pub fn sending(&mut self, n: u32) {
        self.sent = self.sent.max(n);
    }

    /// Takes a report's session id `who` and receipt of frame `last_sent`, under `key`.
    pub fn report(
        &mut self,
        key: &SessionKey,
        who: &Proof,
        last_sent: u32,
        receipt: &Proof,
        now: Instant,
    ) -> Heard {
        if !key.is_id(who) {
            return Heard::Forged;
        }
        let proves =
            last_sent > self.proved && last_sent <= self.sent && key.is_tag(last_sent, receipt);
        if proves {
            self.proved = last_sent;
        }
        if !self.confirmed || proves || self.proved == self.sent {
            self.confirmed = true;
            self.heard = now;
            return Heard::Alive;
        }
        Heard::Stale
    }

    /// The newest frame proved received, and the newest sent (numbers among those sent).
    pub fn proved(&self) -> (u32, u32) {
        (self.proved, self.sent)
    }

    /// How long since the viewer last proved it is alive.
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.heard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::new([7; KEY_LEN])
    }

    #[test]
    fn a_start_is_taken_only_with_the_check_of_the_echoed_cookie() {
        let k = key();
        let check = k.check(&[1; 16]);
        assert!(SessionKey::from_start(*k.bytes(), &check, &[1; 16]).is_some());
        assert!(SessionKey::from_start(*k.bytes(), &check, &[2; 16]).is_none());
        assert!(SessionKey::from_start([8; KEY_LEN], &check, &[1; 16]).is_none());
    }

    #[test]
    fn ids_and_tags_differ_by_key_and_frame() {
        let (a, b) = (key(), SessionKey::new([8; KEY_LEN]));
        assert_ne!(a.id(), b.id());
        assert_ne!(a.tag(1), a.tag(2));
        assert_ne!(a.tag(1), b.tag(1));
        assert!(a.is_tag(5, &a.tag(5)) && !a.is_tag(6, &a.tag(5)));
        assert_ne!(a.id(), a.tag(0), "an id is no receipt");
    }

    #[test]
    fn only_reports_proving_a_new_frame_keep_a_streaming_viewer() {
        let k = key();
        let t0 = Instant::now();
        let mut live = Liveness::new(t0);
        assert!(!live.confirmed());
        // A forged id confirms nothing.
        assert_eq!(live.report(&k, &[0; 8], 0, &[0; 8], t0), Heard::Forged);
        assert!(!live.confirmed());
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(live.report(&k, &k.id(), 0, &[0; 8], t1), Heard::Alive);
        assert!(live.confirmed());
        for n in 1..=10 {
            live.sending(n);
        }
        let t2 = t1 + Duration::from_secs(1);
        // The id alone no longer keeps it: frames went out unproved.
        assert_eq!(live.report(&k, &k.id(), 0, &[0; 8], t2), Heard::Stale);
        assert_eq!(live.report(&k, &k.id(), 9, &k.tag(8), t2), Heard::Stale);
        assert_eq!(live.report(&k, &k.id(), 11, &k.tag(11), t2), Heard::Stale);
        assert_eq!(live.silent_for(t2), Duration::from_secs(1));
        assert_eq!(live.report(&k, &k.id(), 9, &k.tag(9), t2), Heard::Alive);
        assert_eq!(live.silent_for(t2), Duration::ZERO);
        // The same receipt again proves nothing new: a replay keeps nobody.
        let t3 = t2 + Duration::from_secs(1);
        assert_eq!(live.report(&k, &k.id(), 9, &k.tag(9), t3), Heard::Stale);
        assert_eq!(live.report(&k, &k.id(), 10, &k.tag(10), t3), Heard::Alive);
        // Everything sent is proved: a stalled source keeps its viewer with the id alone.
        let t4 = t3 + Duration::from_secs(1);
        assert_eq!(live.report(&k, &k.id(), 10, &[0; 8], t4), Heard::Alive);
    }
}
