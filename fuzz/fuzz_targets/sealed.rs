//! Fuzz target: sealed UDP datagrams (`--transport udp --tls`). Any input, as a datagram, does
//! not open at a server and panics nothing; the input sealed by a viewer opens at the server
//! as itself, once; and that sealed datagram with any one byte changed does not open.
#![no_main]

use std::time::Instant;

use framewire_wire::seal::{Session, StreamKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let keys = StreamKeys::from_bytes(&[7; 72]);
    let (server, viewer) = (Session::server(&keys), Session::viewer(&keys));
    let mut raw = data.to_vec();
    assert!(server.open(&mut raw, now).is_err(), "bytes nobody sealed opened");

    let mut sealed = Vec::new();
    viewer.seal(data, &mut sealed);
    let mut changed = sealed.clone();
    let mut again = sealed.clone();
    let range = server.open(&mut sealed, now).expect("a sealed datagram opens");
    assert_eq!(&sealed[range], data);
    assert!(server.open(&mut again, now).is_err(), "a replay opened");

    let at = data.first().map_or(0, |&b| usize::from(b)) % changed.len();
    changed[at] ^= data.get(1).copied().unwrap_or(1).max(1);
    assert!(server.open(&mut changed, now).is_err(), "a changed datagram opened");
});
