//! Cross-crate benchmarks and measurements for framewire: criterion benches in `benches/`
//! (loopback end to end), the counting-allocator test in `tests/`, and small binaries that
//! `cargo xtask bench` runs: `write-pattern` (raw RGB test-pattern pixels for the OpenCV
//! baseline), `viewers-fed` (how many 30 fps viewers, framewire or HTTP, one server feeds),
//! `sink` (a viewer that receives without decoding, to time `framewire serve`'s send pipeline),
//! `narrow-link` (latency and frame rate of `framewire serve` -> `view` across a narrow netbed
//! link), `browser-latency` (capture to screen in Chromium watching `serve --http`, through
//! the grabbing in [`browser`]), `browser-link` (the same behind a narrow netbed link),
//! `h264-vs-x264` (framewire's H.264 against JPEG and libx264) and `media-server` (one
//! `serve --publish` into nginx-rtmp as its readers grow).
//! Micro-benchmarks live beside the code they measure.

pub mod browser;

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

/// Reads an MJPEG body as `framewire serve --http` writes it (`/stream`, after the answer's
/// head), handing each part's JPEG and its `X-Timestamp` (seconds since the epoch) to `part`,
/// until `part` says stop (false) or the stream ends. Parts are found by their `Content-Length`.
pub fn read_mjpeg_parts(
    reader: &mut impl std::io::BufRead,
    mut part: impl FnMut(&[u8], Option<f64>) -> bool,
) {
    let (mut len, mut stamp) = (None, None);
    let mut line = String::new();
    let mut jpeg = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let l = line.trim_end();
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("x-timestamp") {
                stamp = value.trim().parse::<f64>().ok();
            }
        } else if l.is_empty()
            && let Some(n) = len.take()
        {
            jpeg.resize(n, 0);
            if reader.read_exact(&mut jpeg).is_err() || !part(&jpeg, stamp.take()) {
                return;
            }
        }
    }
}
