//! Fuzz target: the shared token's challenge and proof. Any token bytes, challenge and proof:
//! nothing panics, a token is accepted only as `Token::new` says, and a proof passes exactly
//! when it is the token's own answer to that challenge. The proof message's header parses
//! only with its one length. A browser cookie made for the token opens, and the input as a
//! cookie (any bytes) opens nothing and panics nowhere; a listener's proof is never a viewer's.
#![no_main]

use framewire_wire::token::{PROOF_LEN, Token};
use framewire_wire::message::{FrameHeader, HEADER_LEN, MessageKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 * PROOF_LEN {
        return;
    }
    let (fixed, key) = data.split_at(2 * PROOF_LEN);
    let challenge: [u8; PROOF_LEN] = fixed[..PROOF_LEN].try_into().unwrap();
    let proof: [u8; PROOF_LEN] = fixed[PROOF_LEN..].try_into().unwrap();
    if let Ok(token) = Token::new(key) {
        let answer = token.prove(&challenge);
        assert!(token.verify(&challenge, &answer));
        assert_eq!(token.verify(&challenge, &proof), proof == answer);
        assert!(!token.verify(&challenge, &token.prove_listener(&challenge)));
        let now = u64::from_le_bytes(challenge[..8].try_into().unwrap());
        let cookie = token.cookie(now).unwrap();
        assert!(token.cookie_valid(cookie.as_bytes(), now));
        assert!(!token.cookie_valid(data, now));
    }
    if let Ok(head) = <[u8; HEADER_LEN]>::try_from(&fixed[..HEADER_LEN]) {
        if let Ok(h) = FrameHeader::parse(&head, 0) {
            if matches!(h.kind, MessageKind::Challenge | MessageKind::Proof) {
                assert_eq!(h.payload_len as usize, PROOF_LEN);
            }
        }
    }
});
