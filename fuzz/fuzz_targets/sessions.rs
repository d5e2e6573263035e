//! Fuzz target: a UDP session's join, report and seal state (`framewire_wire::session`,
//! `seal`) driven by a run of operations, authentic ones interleaved with forged input: the
//! server sends frames, the viewer receives some and reports with receipts, time passes, and
//! forged reports, ends, starts, fragments and sealed datagrams (the input's bytes, or earlier
//! authentic ones replayed) arrive. Nothing forged or replayed confirms a session, keeps a
//! viewer (its silence only grows) or is taken by the viewer; a sealed datagram opens once.
#![no_main]

use std::time::{Duration, Instant};

use framewire_wire::seal::{Session, StreamKeys};
use framewire_wire::session::{Heard, Liveness, Proof, SessionKey};
use libfuzzer_sys::fuzz_target;

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = data.split_at_checked(N)?;
    *data = tail;
    head.try_into().ok()
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let Some(key) = take::<16>(&mut data) else {
        return;
    };
    let key = SessionKey::new(key);
    let cookie = [3u8; 16];
    let mut now = Instant::now();
    let mut live = Liveness::new(now);
    let (mut sent, mut seen): (u32, Option<(u32, Proof)>) = (0, None);
    let mut reports: Vec<(u32, Proof)> = Vec::new();
    let keys = StreamKeys::from_bytes(&[9; 72]);
    let (server, viewer) = (Session::server(&keys), Session::viewer(&keys));
    let mut sealed: Vec<Vec<u8>> = Vec::new();
    while let Some([op]) = take::<1>(&mut data) {
        let before = live.silent_for(now);
        match op % 9 {
            // The server sends a frame; the viewer gets it when the next bit says so.
            0 => {
                sent += 1;
                live.sending(sent);
                if take::<1>(&mut data).is_some_and(|[b]| b & 1 == 0) {
                    seen = Some((sent, key.tag(sent)));
                }
            }
            // The viewer reports what it saw, as it does.
            1 => {
                let (last, receipt) = seen.unwrap_or((0, [0; 8]));
                let (proved, _) = live.proved();
                let said = live.report(&key, &key.id(), last, &receipt, now);
                assert_ne!(said, Heard::Forged, "the viewer's own report");
                if last > proved {
                    assert_eq!(said, Heard::Alive, "a receipt of a newer frame");
                }
                reports.push((last, receipt));
            }
            // A forged report: any id, frame and receipt.
            2 => {
                let (Some(id), Some(n), Some(receipt)) = (
                    take::<8>(&mut data),
                    take::<4>(&mut data),
                    take::<8>(&mut data),
                ) else {
                    return;
                };
                let n = u32::from_le_bytes(n);
                let confirmed = live.confirmed();
                let said = live.report(&key, &id, n, &receipt, now);
                if id != key.id() {
                    assert_eq!(said, Heard::Forged);
                    assert_eq!(live.confirmed(), confirmed);
                    assert_eq!(
                        live.silent_for(now),
                        before,
                        "a forged report kept the viewer"
                    );
                } else if receipt != key.tag(n) && live.confirmed() && confirmed {
                    // The id alone (seen on the path of the reports) proves no new frame.
                    let (proved, out) = live.proved();
                    if proved != out {
                        assert_eq!(said, Heard::Stale);
                    }
                }
            }
            // An earlier report of the viewer's, replayed.
            3 => {
                let Some(&(n, receipt)) =
                    reports.get(take::<1>(&mut data).map_or(0, |[b]| b) as usize)
                else {
                    continue;
                };
                let (proved, out) = live.proved();
                let said = live.report(&key, &key.id(), n, &receipt, now);
                if n <= proved && proved != out && live.confirmed() {
                    assert_eq!(said, Heard::Stale, "a replayed receipt kept the viewer");
                }
            }
            // Time passes.
            4 => {
                let ms = take::<2>(&mut data).map_or(0, u16::from_le_bytes);
                now += Duration::from_millis(u64::from(ms));
                assert!(live.silent_for(now) >= before);
            }
            // A forged start, end, rejoin or fragment at the viewer.
            5 => {
                let (Some(check), Some(n)) = (take::<8>(&mut data), take::<4>(&mut data)) else {
                    return;
                };
                if check != key.check(&cookie) {
                    assert!(SessionKey::from_start(*key.bytes(), &check, &cookie).is_none());
                }
                if check != key.id() {
                    assert!(
                        !key.is_id(&check),
                        "a forged end or rejoin was the viewer's"
                    );
                }
                let n = u32::from_le_bytes(n);
                if check != key.tag(n) {
                    assert!(
                        !key.is_tag(n, &check),
                        "a forged fragment was the session's"
                    );
                }
            }
            // The viewer seals a datagram (the input's next bytes); the server opens it once.
            6 => {
                let len = take::<1>(&mut data)
                    .map_or(0, |[b]| usize::from(b))
                    .min(data.len());
                let (body, rest) = data.split_at(len);
                data = rest;
                let mut out = Vec::new();
                viewer.seal(body, &mut out);
                let mut once = out.clone();
                let range = server
                    .open(&mut once, now)
                    .expect("a sealed datagram opens");
                assert_eq!(&once[range], body);
                sealed.push(out);
            }
            // A sealed datagram replayed, or changed in one byte: neither opens.
            7 => {
                let (Some([i]), Some([at]), Some([x])) = (
                    take::<1>(&mut data),
                    take::<1>(&mut data),
                    take::<1>(&mut data),
                ) else {
                    return;
                };
                let Some(d) = sealed.get(usize::from(i) % sealed.len().max(1)) else {
                    continue;
                };
                let mut again = d.clone();
                assert!(server.open(&mut again, now).is_err(), "a replay opened");
                let mut changed = d.clone();
                changed[usize::from(at) % d.len()] ^= x.max(1);
                assert!(
                    server.open(&mut changed, now).is_err(),
                    "a changed datagram opened"
                );
            }
            // Input bytes as a sealed datagram: they do not open.
            _ => {
                let mut raw = data.to_vec();
                assert!(
                    server.open(&mut raw, now).is_err(),
                    "bytes nobody sealed opened"
                );
            }
        }
    }
});
