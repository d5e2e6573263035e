//! Golden-image tests of the wgpu renderer on whatever adapter there is (CI: Mesa lavapipe).
//!
//! Each case renders a small synthetic frame through [`HeadlessRenderer`] and compares the RGBA
//! result with `tests/golden/NAME.png`: every channel of every pixel must be within
//! [`TOLERANCE`] of the golden (linear filtering differs by a few steps between rasterisers).
//! A missing golden is written (review it, then commit it); on a mismatch the actual image and a
//! difference image are written under the target directory and the test fails naming them.
//! Without an adapter the tests skip with a printed reason, unless `FRAMEWIRE_REQUIRE_GPU=1`
//! or `FRAMEWIRE_REQUIRE_ALL=1` demands one.

// Tests report skips on stderr.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use framewire_core::{Frame, PixelFormat};
use framewire_display::{HeadlessRenderer, hardware_required, letterbox, write_png};

/// Largest allowed difference of one channel from the golden image.
const TOLERANCE: u8 = 4;

/// The headless renderer, or `None` (with the reason printed) when there is no adapter and none is required.
fn renderer_or_skip() -> Option<HeadlessRenderer> {
    match HeadlessRenderer::new() {
        Ok(r) => {
            eprintln!("rendering on {}", r.adapter_name());
            Some(r)
        }
        Err(e) if !hardware_required() => {
            eprintln!("skipped: {e} (set FRAMEWIRE_REQUIRE_GPU=1 to make this a failure)");
            None
        }
        Err(e) => panic!("{e} (FRAMEWIRE_REQUIRE_GPU or FRAMEWIRE_REQUIRE_ALL is set)"),
    }
}

/// A frame with smooth gradients and a sharp quadrant split, distinct in every channel.
fn gradient(width: u32, height: u32, format: PixelFormat) -> Frame {
    let mut frame = Frame::new(width, height, format);
    let bpp = format.bytes_per_pixel();
    for y in 0..height {
        for x in 0..width {
            let i = y as usize * frame.stride + x as usize * bpp;
            let r = (x * 255 / (width - 1).max(1)) as u8;
            let g = (y * 255 / (height - 1).max(1)) as u8;
            let b = if (x < width / 2) == (y < height / 2) {
                230
            } else {
                20
            };
            for (at, v) in format.rgb_offsets().into_iter().zip([r, g, b]) {
                frame.pixels[i + at] = v;
            }
            if bpp == 4 {
                frame.pixels[i + 3] = 255;
            }
        }
    }
    frame
}

/// `frame` with `pad` bytes of padding after every row.
fn padded(frame: &Frame, pad: usize) -> Frame {
    let mut out = frame.clone();
    out.stride = frame.row_bytes() + pad;
    out.pixels = (0..frame.height)
        .flat_map(|y| {
            frame
                .row(y)
                .iter()
                .copied()
                .chain(std::iter::repeat_n(7, pad))
        })
        .collect();
    out
}

/// RGBA pixels of `frame` (RGB and BGR get alpha 255), packed.
fn rgba(frame: &Frame) -> Vec<u8> {
    let [r, g, b] = frame.format.rgb_offsets();
    (0..frame.height)
        .flat_map(|y| {
            frame
                .row(y)
                .chunks(frame.format.bytes_per_pixel())
                .flat_map(|p| [p[r], p[g], p[b], p.get(3).copied().unwrap_or(255)])
                .collect::<Vec<_>>()
        })
        .collect()
}

fn read_png(path: &Path) -> Frame {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    buf.truncate(info.buffer_size());
    let mut frame = Frame::new(info.width, info.height, PixelFormat::Rgba8);
    frame.pixels = buf;
    frame
}

/// Compares `actual` (RGBA) with the golden image `name`, writing the golden when it is missing.
fn check_golden(name: &str, actual: &Frame) {
    let golden_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.png"));
    if !golden_path.exists() {
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        write_png(&golden_path, actual).unwrap();
        eprintln!("wrote missing golden {}", golden_path.display());
        return;
    }
    let golden = read_png(&golden_path);
    let same_size = (golden.width, golden.height) == (actual.width, actual.height);
    let mut worst = (0u8, 0u32, 0u32);
    let mut diff = Frame::new(actual.width, actual.height, PixelFormat::Rgba8);
    if same_size {
        for (i, (a, g)) in actual
            .pixels
            .chunks(4)
            .zip(golden.pixels.chunks(4))
            .enumerate()
        {
            let d = a
                .iter()
                .zip(g)
                .map(|(a, g)| a.abs_diff(*g))
                .max()
                .unwrap_or(0);
            let (x, y) = (i as u32 % actual.width, i as u32 / actual.width);
            if d > worst.0 {
                worst = (d, x, y);
            }
            let v = if d > TOLERANCE {
                255
            } else {
                d.saturating_mul(16)
            };
            diff.pixels[i * 4..i * 4 + 4].copy_from_slice(&[v, v, v, 255]);
        }
        if worst.0 <= TOLERANCE {
            return;
        }
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&out).unwrap();
    let actual_path = out.join(format!("{name}-actual.png"));
    let diff_path = out.join(format!("{name}-difference.png"));
    write_png(&actual_path, actual).unwrap();
    write_png(&diff_path, &diff).unwrap();
    if same_size {
        panic!(
            "{name}: differs from {} by {} at ({}, {}) (tolerance {TOLERANCE}); see {} and {}",
            golden_path.display(),
            worst.0,
            worst.1,
            worst.2,
            actual_path.display(),
            diff_path.display()
        );
    }
    panic!(
        "{name}: rendered {}x{}, golden {} is {}x{}; see {}",
        actual.width,
        actual.height,
        golden_path.display(),
        golden.width,
        golden.height,
        actual_path.display()
    );
}

/// Checks that everything outside the letterboxed picture is opaque black.
fn assert_black_bars(name: &str, frame_size: (u32, u32), out: &Frame) {
    let (x0, y0, w, h) = letterbox(frame_size.0, frame_size.1, out.width, out.height);
    for y in 0..out.height {
        for x in 0..out.width {
            if (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y) {
                continue;
            }
            let i = (y * out.width + x) as usize * 4;
            assert_eq!(
                &out.pixels[i..i + 4],
                &[0, 0, 0, 255],
                "{name}: bar pixel ({x}, {y}) is not black"
            );
        }
    }
}

#[test]
fn same_size_draws_every_format_and_stride_exactly() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let mut out = Frame::empty(PixelFormat::Rgba8);
    // 5x3 RGB is 45 bytes: not a multiple of the GPU's 4-byte copy alignment.
    for (w, h) in [(32, 24), (5, 3), (1, 1)] {
        for format in PixelFormat::ALL {
            let frame = gradient(w, h, format);
            for (what, f) in [("packed", frame.clone()), ("padded", padded(&frame, 5))] {
                r.render(&f, w, h, &mut out).unwrap();
                assert_eq!((out.width, out.height), (w, h));
                assert!(
                    out.pixels == rgba(&frame),
                    "{w}x{h} {format} {what}: drawn pixels differ from the frame's"
                );
            }
        }
    }
}

#[test]
fn letterbox_wide_target_has_bars_left_and_right() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let frame = gradient(32, 24, PixelFormat::Rgb8);
    let mut out = Frame::empty(PixelFormat::Rgba8);
    r.render(&frame, 80, 30, &mut out).unwrap();
    assert_black_bars("letterbox-wide", (32, 24), &out);
    check_golden("letterbox-wide", &out);
}

#[test]
fn letterbox_tall_target_has_bars_above_and_below() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let frame = gradient(32, 24, PixelFormat::Rgba8);
    let mut out = Frame::empty(PixelFormat::Rgba8);
    r.render(&frame, 40, 64, &mut out).unwrap();
    assert_black_bars("letterbox-tall", (32, 24), &out);
    check_golden("letterbox-tall", &out);
}

#[test]
fn every_format_draws_the_same_picture() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let mut rgb_out = Frame::empty(PixelFormat::Rgba8);
    r.render(&gradient(24, 18, PixelFormat::Rgb8), 50, 40, &mut rgb_out)
        .unwrap();
    for format in [PixelFormat::Rgba8, PixelFormat::Bgr8] {
        let mut out = Frame::empty(PixelFormat::Rgba8);
        r.render(&gradient(24, 18, format), 50, 40, &mut out)
            .unwrap();
        assert!(rgb_out.pixels == out.pixels, "rgb8 and {format} differ");
    }
    check_golden("scaled-up", &rgb_out);
}

#[test]
fn frame_texture_is_recreated_only_when_size_or_format_changes() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let mut out = Frame::empty(PixelFormat::Rgba8);
    let steps = [
        (32, 24, PixelFormat::Rgb8, 1),
        (32, 24, PixelFormat::Rgb8, 1),
        (48, 20, PixelFormat::Rgb8, 2),
        (48, 20, PixelFormat::Rgb8, 2),
        (48, 20, PixelFormat::Rgba8, 3),
        (32, 24, PixelFormat::Rgba8, 4),
    ];
    for (i, (w, h, format, created)) in steps.into_iter().enumerate() {
        let mut frame = gradient(w, h, format);
        frame.seq = i as u64;
        r.render(&frame, 48, 36, &mut out).unwrap();
        assert_eq!(out.seq, i as u64);
        assert_eq!(
            r.renderer().textures_created(),
            created,
            "step {i}: {w}x{h} {format}"
        );
        assert_black_bars(&format!("step {i}"), (w, h), &out);
    }
    // After the size change the new frame fills the target, not the old one's texture.
    r.render(&gradient(48, 20, PixelFormat::Rgb8), 48, 36, &mut out)
        .unwrap();
    check_golden("size-change", &out);
}

#[test]
fn test_pattern_frame_number_survives_the_renderer() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let mut pattern = framewire_pattern::TestPattern::new(320, 240, 0.0).unwrap();
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut out = Frame::empty(PixelFormat::Rgba8);
    for n in [0, 1, 12345] {
        pattern.render(n, &mut frame);
        // Scaled down into a wide window: letterboxed, and still readable.
        r.render(&frame, 400, 200, &mut out).unwrap();
        let (x, y, w, h) = letterbox(320, 240, 400, 200);
        let mut picture = Frame::new(w, h, PixelFormat::Rgba8);
        for row in 0..h {
            let src = ((y + row) * out.width + x) as usize * 4;
            let dst = (row * w) as usize * 4;
            picture.pixels[dst..dst + w as usize * 4]
                .copy_from_slice(&out.pixels[src..src + w as usize * 4]);
        }
        assert_eq!(framewire_pattern::read_frame_number(&picture), Some(n));
    }
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let Some(mut r) = renderer_or_skip() else {
        return;
    };
    let mut out = Frame::empty(PixelFormat::Rgba8);
    let empty = Frame::new(0, 0, PixelFormat::Rgb8);
    let err = r.render(&empty, 10, 10, &mut out).unwrap_err().to_string();
    assert!(err.contains("has no pixels"), "{err}");
    let mut short = Frame::new(8, 8, PixelFormat::Rgba8);
    short.pixels.truncate(10);
    let err = r.render(&short, 10, 10, &mut out).unwrap_err().to_string();
    assert!(err.contains("needs 256 bytes"), "{err}");
    let huge = Frame {
        width: 100_000,
        height: 1,
        stride: 300_000,
        format: PixelFormat::Rgb8,
        seq: 3,
        capture_us: 0,
        pixels: vec![0; 300_000],
    };
    let err = r.render(&huge, 10, 10, &mut out).unwrap_err().to_string();
    assert!(err.contains("exceeds the GPU's largest texture"), "{err}");
    let err = r
        .render(&gradient(4, 4, PixelFormat::Rgb8), 0, 10, &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("output size 0x10"), "{err}");
    // And it still draws afterwards.
    r.render(&gradient(4, 4, PixelFormat::Rgb8), 4, 4, &mut out)
        .unwrap();
}
