//! Resize micro-benches on test-pattern frames: the sizes a streamer shrinks to, area and bilinear.
//!
//! Run with `cargo bench -p framewire-capture --bench resize`. `cargo xtask bench` puts OpenCV's
//! `cv2.resize` (INTER_AREA, INTER_LINEAR) on the same pixels beside these.

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_capture::{ResizeFilter, Resizer};
use framewire_core::{Frame, PixelFormat};
use framewire_pattern::TestPattern;

/// (source, output) sizes.
const CASES: [((u32, u32), (u32, u32)); 3] = [
    ((640, 480), (320, 240)),
    ((1280, 720), (320, 180)),
    ((1920, 1080), (320, 180)),
];

fn resize(c: &mut Criterion) {
    let mut group = c.benchmark_group("resize");
    for ((w, h), (ow, oh)) in CASES {
        let mut src = Frame::empty(PixelFormat::Rgb8);
        TestPattern::new(w, h, 0.0)
            .expect("valid size")
            .render(7, &mut src);
        group.throughput(Throughput::Bytes(src.pixels.len() as u64));
        for (name, filter) in [
            ("area", ResizeFilter::Area),
            ("bilinear", ResizeFilter::Bilinear),
        ] {
            let mut resizer = Resizer::new(filter);
            let mut dst = Frame::empty(PixelFormat::Rgb8);
            group.bench_function(format!("{name}/{w}x{h}-{ow}x{oh}"), |b| {
                b.iter(|| {
                    resizer
                        .resize(&src, &mut dst, ow, oh)
                        .expect("resizing the test pattern")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, resize);
criterion_main!(benches);
