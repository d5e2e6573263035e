//! Frames per second the renderer sustains: upload + letterboxed draw + read back, per frame size.
//!
//! Run with `cargo bench -p framewire-display --bench render`. Throughput is in frames
//! (criterion's "elements"), so the report reads directly as frames per second. Without a GPU
//! adapter it prints why and measures nothing (unless FRAMEWIRE_REQUIRE_GPU=1 demands one).

#![allow(missing_docs, clippy::print_stderr)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_core::{Frame, PixelFormat};
use framewire_display::{HeadlessRenderer, hardware_required};
use framewire_pattern::TestPattern;

fn render(c: &mut Criterion) {
    let mut renderer = match HeadlessRenderer::new() {
        Ok(r) => r,
        Err(e) if !hardware_required() => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e} (FRAMEWIRE_REQUIRE_GPU is set)"),
    };
    eprintln!("renderer bench on {}", renderer.adapter_name());
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    for (w, h) in [(640, 480), (1920, 1080)] {
        for format in [PixelFormat::Rgb8, PixelFormat::Rgba8] {
            let mut pattern = TestPattern::new(w, h, 0.0)
                .expect("a valid test pattern size")
                .with_format(format);
            let mut frames = [Frame::empty(format), Frame::empty(format)];
            pattern.render(0, &mut frames[0]);
            pattern.render(1, &mut frames[1]);
            let mut out = Frame::empty(PixelFormat::Rgba8);
            let mut n = 0usize;
            // Drawn into a target of the frame's own size: upload, expand (RGB), draw, read back.
            group.bench_function(format!("{w}x{h}/{format}"), |b| {
                b.iter(|| {
                    n += 1;
                    renderer
                        .render(&frames[n % 2], w, h, &mut out)
                        .expect("rendering a test pattern frame");
                });
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = render
}
criterion_main!(benches);
