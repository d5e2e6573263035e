//! Cross-crate benchmarks and measurements for framewire: criterion benches in `benches/`
//! (loopback end to end), the counting-allocator test in `tests/`, and five small binaries that
//! `cargo xtask bench` runs: `write-pattern` (raw RGB test-pattern pixels for the OpenCV
//! baseline), `viewers-fed` (how many 30 fps viewers, framewire or HTTP, one server feeds),
//! `sink` (a viewer that receives without decoding, to time `framewire serve`'s send pipeline),
//! `narrow-link` (latency and frame rate of `framewire serve` -> `view` across a narrow netbed
//! link) and `browser-latency` (capture to screen in Chromium watching `serve --http`).
//! Micro-benchmarks live beside the code they measure.

use framewire_core::{Frame, PixelFormat};
use framewire_pattern::TestPattern;

/// Frame `n` of the `w` x `h` RGB8 test pattern, rows packed.
///
/// # Panics
/// On a size the test pattern refuses (a side of 0 or above 16384).
pub fn pattern_frame(w: u32, h: u32, n: u64) -> Frame {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    TestPattern::new(w, h, 0.0)
        .expect("a valid test pattern size")
        .render(n, &mut frame);
    frame
}
