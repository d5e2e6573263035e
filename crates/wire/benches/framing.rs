//! Framing micro-benches: header to/from bytes, and the sans-IO reader fed one message in
//! 64 KiB reads (what a loopback socket hands back), beside a plain copy of the same bytes
//! in the same reads (`framing/memcpy/...`, the baseline `cargo xtask bench` divides by), and that
//! copy followed by one read of the message's first bytes (`framing/memcpy-then-read/...`).
//!
//! Run with `cargo bench -p framewire-net --bench framing`.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_core::{CodecKind, PixelFormat, Placement, Rendition};
use framewire_wire::{DEFAULT_MAX_PAYLOAD, Event, FrameHeader, FrameReader, Handshake};

/// Bytes one socket read returns on loopback, roughly.
const READ: usize = 64 * 1024;

/// Payload sizes of real streams: JPEG 320x240 and 640x480 of the test pattern (about), raw 1280x720.
const CASES: [(&str, usize); 3] = [
    ("jpeg-320x240", 14_000),
    ("jpeg-640x480", 40_000),
    ("raw-1280x720", 1280 * 720 * 3),
];

/// Pseudo-random payload bytes: the reader never looks at them, but they are not zeros.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn header(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes(32));
    let h = FrameHeader::frame(123_456, 1_700_000_000_000_000, 40_000);
    group.bench_function("header_encode", |b| {
        b.iter(|| black_box(black_box(&h).to_bytes()))
    });
    let bytes = h.to_bytes();
    group.bench_function("header_decode", |b| {
        b.iter(|| FrameHeader::parse(black_box(&bytes), DEFAULT_MAX_PAYLOAD).expect("valid"))
    });
    group.finish();
}

fn reader(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing");
    let handshake = Handshake {
        placement: Placement {
            id: 0,
            rendition: Rendition::new(CodecKind::Raw, 1280, 720, PixelFormat::Rgb8, 0),
            rung: Some(0),
            rungs: 1,
        },
        fps: 30.0,
    };
    for (name, len) in CASES {
        let mut message = FrameHeader::frame(0, 0, len as u32).to_bytes().to_vec();
        message.extend_from_slice(&payload(len));
        group.throughput(Throughput::Bytes(message.len() as u64));

        // What a client does per frame: poll, and while not ready, one read into `space()`.
        let mut r = FrameReader::new(DEFAULT_MAX_PAYLOAD);
        r.push(&handshake.to_bytes());
        assert!(matches!(r.next_event(), Ok(Some(Event::Handshake(_)))));
        let read_one = |r: &mut FrameReader| {
            let mut fed = 0;
            loop {
                if r.poll().expect("valid stream") {
                    break;
                }
                let space = r.space();
                let n = space.len().min(READ).min(message.len() - fed);
                space[..n].copy_from_slice(&message[fed..fed + n]);
                r.advance(n);
                fed += n;
            }
            match r.next_event() {
                Ok(Some(Event::Frame(h, p))) => {
                    // Each on its own: a tuple through `black_box` is stored as two words and
                    // loaded as one, a store-forwarding stall that would be charged to the reader.
                    black_box(h.seq);
                    black_box(p.as_ptr());
                }
                other => panic!("expected a frame, got {other:?}"),
            }
        };
        // Once before measuring, so the reader's buffer has its steady-state size and place.
        read_one(&mut r);
        group.bench_function(format!("reader/{name}"), |b| b.iter(|| read_one(&mut r)));

        // The floor: the same bytes copied in the same reads into a buffer, nothing else. The
        // buffer sits where the reader's reads land, modulo a 4 KiB page: a copy's speed
        // depends on where source and destination sit relative to each other (one fixed pair
        // of allocations measured anywhere from 0.82x to 1.13x of another for 40 KB), so both
        // copy with the same placement and the ratio is the reader's own cost.
        let page_offset = |p: *const u8| p as usize % 4096;
        let landing = page_offset(r.space().as_ptr());
        let mut placed = vec![1u8; message.len() + 4096];
        let skip = (landing + 4096 - page_offset(placed.as_ptr())) % 4096;
        let dst = &mut placed[skip..skip + message.len()];
        group.bench_function(format!("memcpy/{name}"), |b| {
            b.iter(|| {
                for (d, s) in dst.chunks_mut(READ).zip(message.chunks(READ)) {
                    d.copy_from_slice(black_box(s));
                }
                black_box(dst.as_ptr());
            })
        });

        // The copy, then one 8-byte load of the message's first bytes, as any consumer of the
        // bytes must: a load right after a copy waits on it (4-25 ns at 14 KB here, whether
        // glibc copies with `rep movsb` or vector moves), which the plain copy never pays.
        // Informative: `cargo xtask bench` shows the reader against it beside the target row.
        group.bench_function(format!("memcpy-then-read/{name}"), |b| {
            b.iter(|| {
                for (d, s) in dst.chunks_mut(READ).zip(message.chunks(READ)) {
                    d.copy_from_slice(black_box(s));
                }
                let first: [u8; 8] = dst[..8].try_into().expect("8 bytes");
                black_box(u64::from_le_bytes(first));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, header, reader);
criterion_main!(benches);
