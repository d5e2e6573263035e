//! Codec micro-benches: every codec's encode and decode at 320x240, 640x480 and 1920x1080 on
//! the test pattern (never zeros: zeros flatter JPEG), beside a plain copy of the frame
//! (`codec/memcpy/...`). Throughput is the frame's pixel bytes.
//!
//! `codec/encode/jpeg/...` is framewire's pure-Rust encoder in every build; with the
//! feature `turbojpeg`, `codec/encode/jpeg-turbo/...` is libjpeg-turbo at the same quality.
//!
//! Run with `cargo bench -p framewire-codec --bench codecs` (add `--features turbojpeg` for the
//! libjpeg-turbo rows). `cargo xtask bench` puts OpenCV's `cv2.imencode`/`cv2.imdecode`
//! (libjpeg-turbo) on the same pixels beside the JPEG rows.

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_codec::{EncodeOptions, JpegBackend, decoder, encoder};
use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};
use framewire_pattern::TestPattern;

const SIZES: [(u32, u32); 3] = [(320, 240), (640, 480), (1920, 1080)];

fn codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (w, h) in SIZES {
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        TestPattern::new(w, h, 0.0)
            .expect("valid size")
            .render(7, &mut frame);
        group.throughput(Throughput::Bytes(frame.pixels.len() as u64));
        // The floor for the lossless codecs: one copy of the frame's bytes.
        let mut copy = vec![1u8; frame.pixels.len()];
        group.bench_function(format!("memcpy/{w}x{h}"), |b| {
            b.iter(|| copy.copy_from_slice(std::hint::black_box(&frame.pixels)))
        });
        // The pure-Rust JPEG encoder, whatever this build's default is, so the ids mean the same
        // in every build.
        let rust = EncodeOptions {
            jpeg_backend: JpegBackend::Rust,
            ..EncodeOptions::default()
        };
        // One frame encoded and decoded again and again: the intra-only codecs (an H.264
        // delta decodes only after the frames before it).
        for kind in CodecKind::ALL.into_iter().filter(|k| k.is_intra_only()) {
            let mut enc = encoder(kind, &rust).expect("encoder");
            let mut payload = Vec::new();
            group.bench_function(format!("encode/{kind}/{w}x{h}"), |b| {
                b.iter(|| enc.encode(&frame, &mut payload).expect("encoding"))
            });
            let info = StreamInfo {
                codec: kind,
                width: w,
                height: h,
                format: enc.output_format(frame.format),
            };
            // The decode bench's payload, also when a filter skips the encode bench.
            enc.encode(&frame, &mut payload).expect("encoding");
            let mut dec = decoder(&info);
            let mut out = Frame::empty(info.format);
            group.bench_function(format!("decode/{kind}/{w}x{h}"), |b| {
                b.iter(|| dec.decode(&payload, &mut out).expect("decoding"))
            });
        }
        #[cfg(feature = "turbojpeg")]
        {
            let turbo = EncodeOptions {
                jpeg_backend: JpegBackend::Turbo,
                ..EncodeOptions::default()
            };
            let mut enc = encoder(CodecKind::Jpeg, &turbo).expect("encoder");
            let mut payload = Vec::new();
            group.bench_function(format!("encode/jpeg-turbo/{w}x{h}"), |b| {
                b.iter(|| enc.encode(&frame, &mut payload).expect("encoding"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
