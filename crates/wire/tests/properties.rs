//! Property tests of the sans-IO reader: any split of a valid stream (switches included) reads
//! the same, and random or mutated streams never panic and never yield a payload over the
//! limit; payloads taken out and read straight into the caller's buffer (`take_payload`) give
//! the same events and the same failures. That its memory stays within one message plus one read is checked by its own unit
//! test (`reader.rs`), which can see its buffer.

use framewire_core::{CodecKind, PixelFormat, Placement, Rendition};
use framewire_wire::{Event, FrameHeader, FrameReader, Handshake, MessageKind, Switch};
use proptest::prelude::*;

const MAX: u32 = 4096;

/// Rung `rung` of a ladder of three: bincode, 32x16 at the top, halved per rung.
fn placement(rung: u8) -> Placement {
    Placement {
        id: usize::from(rung),
        rendition: Rendition::new(
            CodecKind::Bincode,
            32 >> rung,
            16 >> rung,
            PixelFormat::Rgba8,
            0,
        ),
        rung: Some(rung),
        rungs: 3,
    }
}

fn handshake() -> Handshake {
    Handshake {
        placement: placement(0),
        fps: 25.0,
    }
}

/// A valid stream of frames with the given payload lengths, then an End; every third frame
/// comes after a switch to another rung.
fn stream(lens: &[u32]) -> Vec<u8> {
    let mut out = handshake().to_bytes().to_vec();
    for (seq, &len) in lens.iter().enumerate() {
        if seq % 3 == 2 {
            let switch = Switch {
                placement: placement(seq as u8 % 3),
            };
            out.extend_from_slice(&Switch::header().to_bytes());
            out.extend_from_slice(&switch.to_bytes());
        }
        out.extend_from_slice(&FrameHeader::frame(seq as u64, 7, len).to_bytes());
        out.extend((0..len).map(|i| (i as u64 + seq as u64) as u8));
    }
    let end = FrameHeader {
        kind: MessageKind::End,
        seq: 0,
        capture_us: 0,
        payload_len: 0,
        delta: false,
    };
    out.extend_from_slice(&end.to_bytes());
    out
}

/// Feeds `bytes` in pieces of the given sizes (cycled), returning a summary of every event and
/// whether an error ended it. With `direct`, every frame
/// payload the reader is inside is taken out with `take_payload` and its rest written straight
/// into it, piece by piece, as `Client::recv` does with a large payload.
fn read(bytes: &[u8], pieces: &[usize], direct: bool) -> (Vec<(u64, usize, u8)>, bool) {
    let mut r = FrameReader::new(MAX);
    let mut events = Vec::new();
    let mut payload = Vec::new();
    let mut at = 0;
    let mut sizes = pieces.iter().cycle();
    loop {
        loop {
            match r.next_event() {
                Ok(Some(Event::Handshake(_))) => events.push((u64::MAX, 0, 0)),
                Ok(Some(Event::Frame(h, p))) => {
                    assert!(p.len() as u32 <= MAX);
                    events.push((h.seq, p.len(), p.first().copied().unwrap_or(0)));
                }
                Ok(Some(Event::Switch(p))) => events.push((u64::MAX - 2, p.id, 0)),
                Ok(Some(Event::End { .. })) => events.push((u64::MAX - 1, 0, 0)),
                Ok(Some(Event::Report(r))) => events.push((u64::MAX - 3, r.fps as usize, 0)),
                Ok(Some(Event::Challenge(c))) => events.push((u64::MAX - 4, 0, c[0])),
                Ok(None) => break,
                Err(_) => return (events, true),
            }
        }
        if at == bytes.len() {
            break;
        }
        if direct && let Some((h, mut have)) = r.take_payload(&mut payload) {
            let len = h.payload_len as usize;
            assert!(len as u32 <= MAX && payload.len() == len && have < len);
            while have < len && at < bytes.len() {
                let n = (*sizes.next().unwrap()).clamp(1, (len - have).min(bytes.len() - at));
                payload[have..have + n].copy_from_slice(&bytes[at..at + n]);
                at += n;
                have += n;
                if r.payload_filled(n) {
                    events.push((h.seq, len, payload[0]));
                }
            }
            continue;
        }
        let n = (*sizes.next().unwrap()).clamp(1, bytes.len() - at);
        r.push(&bytes[at..at + n]);
        at += n;
    }
    (events, r.finish().is_err())
}

proptest! {
    #[test]
    fn any_split_of_a_valid_stream_reads_the_same(
        lens in prop::collection::vec(0u32..=MAX, 0..12),
        pieces in prop::collection::vec(1usize..300, 1..20),
    ) {
        let bytes = stream(&lens);
        let (whole, whole_err) = read(&bytes, &[bytes.len()], false);
        let (split, split_err) = read(&bytes, &pieces, false);
        let (direct, direct_err) = read(&bytes, &pieces, true);
        prop_assert!(!whole_err && !split_err && !direct_err);
        prop_assert_eq!(whole.len(), lens.len() + lens.len() / 3 + 2);
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(direct, whole);
    }

    #[test]
    fn mutated_streams_never_panic(
        lens in prop::collection::vec(0u32..=MAX, 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        pieces in prop::collection::vec(1usize..200, 1..10),
    ) {
        let mut bytes = stream(&lens);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        // Taking payloads out reads the same events and fails the same way.
        prop_assert_eq!(read(&bytes, &pieces, true), read(&bytes, &pieces, false));
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        pieces in prop::collection::vec(1usize..100, 1..10),
    ) {
        prop_assert_eq!(read(&bytes, &pieces, true), read(&bytes, &pieces, false));
    }

    #[test]
    fn a_valid_handshake_then_random_bytes_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut bytes = handshake().to_bytes().to_vec();
        bytes.extend(tail);
        let (events, failed) = read(&bytes, &[17], false);
        prop_assert!(!events.is_empty());
        prop_assert_eq!(read(&bytes, &[17], true), (events, failed));
    }
}
