//! Fuzz target: the fixed messages (viewer hello, stream handshake, frame header, switch
//! payload) parsed from arbitrary bytes; whatever parses must encode back to the same meaning.
#![no_main]

use framewire_wire::message::{
    FrameHeader, HANDSHAKE_LEN, HEADER_LEN, HELLO_HEAD_LEN, HELLO_LEN, Handshake, Hello,
    SWITCH_LEN, Switch,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = <[u8; HELLO_HEAD_LEN]>::try_from(data.get(..HELLO_HEAD_LEN).unwrap_or_default())
    {
        let _ = Hello::parse_head(&b);
    }
    if let Ok(b) = <[u8; HELLO_LEN]>::try_from(data.get(..HELLO_LEN).unwrap_or_default()) {
        if let Ok(h) = Hello::parse(&b) {
            assert_eq!(Hello::parse(&h.to_bytes()), Ok(h));
        }
    }
    if let Ok(b) = <[u8; HANDSHAKE_LEN]>::try_from(data.get(..HANDSHAKE_LEN).unwrap_or_default()) {
        if let Ok(h) = Handshake::parse(&b) {
            assert_eq!(Handshake::parse(&h.to_bytes()), Ok(h));
        }
    }
    if let Ok(b) = <[u8; HEADER_LEN]>::try_from(data.get(..HEADER_LEN).unwrap_or_default()) {
        if let Ok(h) = FrameHeader::parse(&b, u32::MAX) {
            assert_eq!(FrameHeader::parse(&h.to_bytes(), u32::MAX), Ok(h));
        }
    }
    if let Ok(b) = <[u8; SWITCH_LEN]>::try_from(data.get(..SWITCH_LEN).unwrap_or_default()) {
        if let Ok(s) = Switch::parse(&b) {
            assert_eq!(Switch::parse(&s.to_bytes()), Ok(s));
        }
    }
});
