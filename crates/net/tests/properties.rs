//! Property tests of the sans-IO reader: any split of a valid stream reads the same, and random
//! or mutated streams never panic, never yield a payload over the limit, and never grow the
//! reader's memory past one message plus one read.

use framewire_core::{CodecKind, PixelFormat, StreamInfo};
use framewire_net::{Event, FrameHeader, FrameReader, Handshake, MessageKind};
use proptest::prelude::*;

const MAX: u32 = 4096;

fn handshake() -> Handshake {
    Handshake {
        stream: StreamInfo {
            codec: CodecKind::Bincode,
            width: 32,
            height: 16,
            format: PixelFormat::Rgba8,
        },
        fps: 25.0,
    }
}

/// A valid stream of frames with the given payload lengths, then an End.
fn stream(lens: &[u32]) -> Vec<u8> {
    let mut out = handshake().to_bytes().to_vec();
    for (seq, &len) in lens.iter().enumerate() {
        out.extend_from_slice(&FrameHeader::frame(seq as u64, 7, len).to_bytes());
        out.extend((0..len).map(|i| (i as u64 + seq as u64) as u8));
    }
    let end = FrameHeader {
        kind: MessageKind::End,
        seq: 0,
        capture_us: 0,
        payload_len: 0,
    };
    out.extend_from_slice(&end.to_bytes());
    out
}

/// Feeds `bytes` in pieces of the given sizes (cycled), returning a summary of every event and
/// whether an error ended it. Checks the memory bound on the way.
fn read(bytes: &[u8], pieces: &[usize]) -> (Vec<(u64, usize, u8)>, bool) {
    let mut r = FrameReader::new(MAX);
    let mut events = Vec::new();
    let mut at = 0;
    let mut sizes = pieces.iter().cycle();
    while at < bytes.len() {
        let n = (*sizes.next().unwrap()).clamp(1, bytes.len() - at);
        r.push(&bytes[at..at + n]);
        at += n;
        loop {
            match r.next_event() {
                Ok(Some(Event::Handshake(_))) => events.push((u64::MAX, 0, 0)),
                Ok(Some(Event::Frame(h, p))) => {
                    assert!(p.len() as u32 <= MAX);
                    events.push((h.seq, p.len(), p.first().copied().unwrap_or(0)));
                }
                Ok(Some(Event::End { .. })) => events.push((u64::MAX - 1, 0, 0)),
                Ok(None) => break,
                Err(_) => return (events, true),
            }
        }
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
        let (whole, whole_err) = read(&bytes, &[bytes.len()]);
        let (split, split_err) = read(&bytes, &pieces);
        prop_assert!(!whole_err && !split_err);
        prop_assert_eq!(whole.len(), lens.len() + 2);
        prop_assert_eq!(split, whole);
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
        let _ = read(&bytes, &pieces);
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        pieces in prop::collection::vec(1usize..100, 1..10),
    ) {
        let _ = read(&bytes, &pieces);
    }

    #[test]
    fn a_valid_handshake_then_random_bytes_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut bytes = handshake().to_bytes().to_vec();
        bytes.extend(tail);
        let (events, _) = read(&bytes, &[17]);
        prop_assert!(!events.is_empty());
    }
}
