//! Aspect-keeping frame resizing: [`fit_size`] picks the output size, [`Resizer`] scales the
//! pixels, reusing its buffers from frame to frame: with its own 2x2 means where each output pixel
//! is one (`mean2x2`: area at half size, bilinear at even factors), otherwise with
//! `fast_image_resize`.

mod mean2x2;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions};
use framewire_core::{CaptureError, Frame, MAX_SIDE, PixelFormat};

/// How pixels are combined when a frame is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeFilter {
    /// Box filter: every output pixel averages the source pixels it covers, like OpenCV's
    /// `INTER_AREA` when shrinking. Alias-free for downscaling: the default. At exactly half
    /// size it is the rounded mean of each 2x2 block; at other integer factors k, within 1 of
    /// the rounded mean of each k x k block.
    #[default]
    Area,
    /// Bilinear interpolation, what OpenCV's `INTER_LINEAR` does: each output pixel blends the
    /// 2x2 source pixels around its centre, whatever the scale. No antialiasing: shrinking by
    /// more than 2x skips source pixels, so fine detail aliases (moiré, flicker). Cheaper than
    /// [`Area`](ResizeFilter::Area) on big shrinks, and the same at exactly half size.
    Bilinear,
}

impl ResizeFilter {
    fn algorithm(self) -> ResizeAlg {
        match self {
            ResizeFilter::Area => ResizeAlg::Convolution(FilterType::Box),
            ResizeFilter::Bilinear => ResizeAlg::Interpolation(FilterType::Bilinear),
        }
    }
}

/// The output size for resizing a `src_w` x `src_h` frame, like Python's
/// `imutils.resize(frame, width=320)`.
///
/// - only `width`: the height keeps the aspect ratio, `round(src_h * width / src_w)`;
/// - only `height`: the width likewise;
/// - both: exactly that size (the aspect ratio is not kept: the user asked for it);
/// - neither: the source size.
///
/// Computed sides are at least 1. A requested side of 0 or above 16384, an empty source, or a
/// computed side above 16384 is a [`CaptureError::Config`].
pub fn fit_size(
    src_w: u32,
    src_h: u32,
    width: Option<u32>,
    height: Option<u32>,
) -> Result<(u32, u32), CaptureError> {
    for (name, value) in [("width", width), ("height", height)] {
        if let Some(v) = value
            && (v == 0 || v > MAX_SIDE)
        {
            return Err(CaptureError::Config(format!(
                "requested {name} {v} is out of range, expected 1 to {MAX_SIDE}"
            )));
        }
    }
    if src_w == 0 || src_h == 0 {
        return Err(CaptureError::Config(format!(
            "cannot fit a {src_w}x{src_h} frame, expected a non-empty source"
        )));
    }
    let size = match (width, height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, scale(src_h, w, src_w)),
        (None, Some(h)) => (scale(src_w, h, src_h), h),
        (None, None) => (src_w, src_h),
    };
    if size.0 > MAX_SIDE || size.1 > MAX_SIDE {
        return Err(CaptureError::Config(format!(
            "keeping the aspect ratio of {src_w}x{src_h} gives {}x{}, expected sides of at most \
             {MAX_SIDE}",
            size.0, size.1
        )));
    }
    Ok(size)
}

/// `round(value * num / den)`, halves rounded up, at least 1. `den` is not 0.
fn scale(value: u32, num: u32, den: u32) -> u32 {
    let (value, num, den) = (u64::from(value), u64::from(num), u64::from(den));
    let scaled = (2 * value * num + den) / (2 * den);
    u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
}

/// A reusable resizer: it keeps its own and `fast_image_resize`'s intermediate buffers. Resizing
/// a stream of same-sized frames through 2x2 means (area at half size, bilinear at even factors)
/// allocates nothing once warm; fast_image_resize rebuilds its coefficient tables on every call.
#[derive(Debug)]
pub struct Resizer {
    filter: ResizeFilter,
    inner: fast_image_resize::Resizer,
    /// Packed copy of a source whose rows are padded.
    scratch: Vec<u8>,
    /// One row of 2x2 means.
    means: Vec<u8>,
}

impl Resizer {
    /// A resizer that scales with `filter`.
    pub fn new(filter: ResizeFilter) -> Resizer {
        Resizer {
            filter,
            inner: fast_image_resize::Resizer::new(),
            scratch: Vec::new(),
            means: Vec::new(),
        }
    }

    /// The filter this resizer scales with.
    pub fn filter(&self) -> ResizeFilter {
        self.filter
    }

    /// Scales `src` into `dst` at `out_w` x `out_h`.
    ///
    /// `dst` is reset to that size with packed rows and `src`'s pixel format, and gets `src`'s
    /// `seq` and `capture_us`. Works for [`PixelFormat::Rgb8`] and [`PixelFormat::Rgba8`]; source
    /// rows may be padded (`stride` > row bytes). An unchanged size copies the pixels. Alpha is
    /// scaled as a plain channel, not premultiplied: frames in this pipeline are opaque.
    ///
    /// Errors ([`CaptureError::Backend`], naming the sizes) for an invalid or empty source, an
    /// empty output size, or an unsupported pixel format.
    pub fn resize(
        &mut self,
        src: &Frame,
        dst: &mut Frame,
        out_w: u32,
        out_h: u32,
    ) -> Result<(), CaptureError> {
        let context = || {
            format!(
                "cannot resize {}x{} {} frame to {out_w}x{out_h}",
                src.width, src.height, src.format
            )
        };
        let fail = |reason: String| CaptureError::Backend {
            context: context(),
            source: reason.into(),
        };
        src.validate().map_err(|e| fail(e.to_string()))?;
        if src.width == 0 || src.height == 0 || out_w == 0 || out_h == 0 {
            return Err(fail("expected non-empty source and output sizes".into()));
        }
        if !matches!(
            src.format,
            PixelFormat::Rgb8 | PixelFormat::Rgba8 | PixelFormat::Bgr8
        ) {
            return Err(fail(format!(
                "pixel format {} is not supported, expected rgb8, rgba8 or bgr8",
                src.format
            )));
        }

        dst.reset(out_w, out_h, src.format);
        dst.seq = src.seq;
        dst.capture_us = src.capture_us;

        if (out_w, out_h) == (src.width, src.height) {
            let row_bytes = src.row_bytes();
            for (y, row) in dst.pixels.chunks_exact_mut(row_bytes).enumerate() {
                row.copy_from_slice(src.row(y as u32));
            }
            return Ok(());
        }
        if let (Some(x), Some(y)) = (
            mean2x2::Axis::new(src.width, out_w, self.filter),
            mean2x2::Axis::new(src.height, out_h, self.filter),
        ) {
            mean2x2::shrink(src, dst, x, y, &mut self.means);
            return Ok(());
        }

        let packed: &[u8] = if src.is_packed() {
            &src.pixels[..src.row_bytes() * src.height as usize]
        } else {
            self.scratch.clear();
            for y in 0..src.height {
                self.scratch.extend_from_slice(src.row(y));
            }
            &self.scratch
        };
        let options = ResizeOptions::new()
            .resize_alg(self.filter.algorithm())
            .use_alpha(false);
        let result = match src.format {
            // The filter treats the channels alike, so BGR resizes as RGB does.
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => {
                resize_typed::<U8x3>(&mut self.inner, &options, src, packed, dst)
            }
            _ => resize_typed::<U8x4>(&mut self.inner, &options, src, packed, dst),
        };
        result.map_err(|source| CaptureError::Backend {
            context: context(),
            source,
        })
    }
}

/// Resizes `packed` (the pixels of `src`, rows packed) into `dst`, already reset to its size.
fn resize_typed<P: PixelTrait>(
    inner: &mut fast_image_resize::Resizer,
    options: &ResizeOptions,
    src: &Frame,
    packed: &[u8],
    dst: &mut Frame,
) -> Result<(), framewire_core::BoxError> {
    let src_image = TypedImageRef::<P>::from_buffer(src.width, src.height, packed)?;
    let mut dst_image = TypedImage::<P>::from_buffer(dst.width, dst.height, &mut dst.pixels)?;
    inner.resize_typed(&src_image, &mut dst_image, options)?;
    Ok(())
}

impl framewire_core::Scaler for Resizer {
    fn scale(
        &mut self,
        src: &Frame,
        dst: &mut Frame,
        width: u32,
        height: u32,
    ) -> Result<(), CaptureError> {
        self.resize(src, dst, width, height)
    }
}

#[cfg(test)]
mod tests {
    use framewire_pattern::{TestPattern, read_frame_number};

    use super::*;

    fn check(src: (u32, u32), width: Option<u32>, height: Option<u32>, want: (u32, u32)) {
        let got = fit_size(src.0, src.1, width, height).unwrap();
        assert_eq!(
            got, want,
            "fit {src:?} into width {width:?} height {height:?}"
        );
    }

    #[test]
    fn fit_size_keeps_the_aspect_ratio() {
        check((640, 480), Some(320), None, (320, 240));
        check((1280, 720), Some(320), None, (320, 180));
        check((1920, 1080), None, Some(180), (320, 180));
        check((1920, 1080), Some(100), Some(100), (100, 100));
        check((1920, 1080), None, None, (1920, 1080));
        check((641, 481), Some(320), None, (320, 240));
        check((1000, 999), Some(500), None, (500, 500)); // 499.5 rounds up
        check((3, 2), Some(2), None, (2, 1)); // 1.33 rounds down
        check((100, 1), Some(10), None, (10, 1)); // 0.1, at least 1
        check((1, 100), None, Some(10), (1, 10));
        check((320, 240), Some(640), None, (640, 480)); // upscaling
        check((16384, 1), Some(16384), None, (16384, 1));
    }

    #[test]
    fn fit_size_rejects_what_it_cannot_serve() {
        let err = |w, h, width, height| match fit_size(w, h, width, height) {
            Err(CaptureError::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            err(640, 480, Some(0), None),
            "requested width 0 is out of range, expected 1 to 16384"
        );
        assert_eq!(
            err(640, 480, None, Some(16385)),
            "requested height 16385 is out of range, expected 1 to 16384"
        );
        assert_eq!(
            err(0, 480, Some(320), None),
            "cannot fit a 0x480 frame, expected a non-empty source"
        );
        assert_eq!(
            err(1, 100, Some(200), None),
            "keeping the aspect ratio of 1x100 gives 200x20000, expected sides of at most 16384"
        );
    }

    fn uniform(w: u32, h: u32, format: PixelFormat, px: &[u8]) -> Frame {
        let mut f = Frame::new(w, h, format);
        for chunk in f.pixels.chunks_exact_mut(format.bytes_per_pixel()) {
            chunk.copy_from_slice(px);
        }
        f
    }

    #[test]
    fn output_has_the_size_and_format_asked_and_carries_seq_and_time() {
        for format in PixelFormat::ALL {
            for filter in [ResizeFilter::Area, ResizeFilter::Bilinear] {
                let mut src = Frame::new(64, 48, format);
                src.seq = 7;
                src.capture_us = 123_456;
                let mut dst = Frame::empty(PixelFormat::Rgb8);
                let mut r = Resizer::new(filter);
                r.resize(&src, &mut dst, 33, 17).unwrap();
                assert_eq!((dst.width, dst.height, dst.format), (33, 17, format));
                assert_eq!((dst.seq, dst.capture_us), (7, 123_456));
                assert!(dst.is_packed() && dst.validate().is_ok());
            }
        }
    }

    #[test]
    fn uniform_colour_stays_that_colour() {
        for (format, px) in [
            (PixelFormat::Rgb8, &[200u8, 100, 30][..]),
            (PixelFormat::Rgba8, &[12u8, 250, 99, 255][..]),
        ] {
            for filter in [ResizeFilter::Area, ResizeFilter::Bilinear] {
                let src = uniform(97, 61, format, px);
                let mut dst = Frame::empty(format);
                let mut r = Resizer::new(filter);
                for (w, h) in [(32, 20), (160, 100), (1, 1)] {
                    r.resize(&src, &mut dst, w, h).unwrap();
                    for (got, want) in dst.pixels.iter().zip(px.iter().cycle()) {
                        assert!(got.abs_diff(*want) <= 1, "{format} {filter:?} {w}x{h}");
                    }
                }
            }
        }
    }

    #[test]
    fn padded_source_rows_give_the_same_result_as_packed_ones() {
        for format in PixelFormat::ALL {
            let mut packed = Frame::new(50, 30, format);
            for (i, b) in packed.pixels.iter_mut().enumerate() {
                *b = (i * 7 % 251) as u8;
            }
            let row_bytes = packed.row_bytes();
            let stride = row_bytes + 13;
            let mut padded = packed.clone();
            padded.stride = stride;
            padded.pixels = vec![0xAB; stride * 30];
            for y in 0..30 {
                padded.pixels[y * stride..y * stride + row_bytes]
                    .copy_from_slice(packed.row(y as u32));
            }
            let mut r = Resizer::new(ResizeFilter::Area);
            let (mut want, mut got) = (Frame::empty(format), Frame::empty(format));
            for (w, h) in [(25, 15), (50, 30)] {
                r.resize(&packed, &mut want, w, h).unwrap();
                r.resize(&padded, &mut got, w, h).unwrap();
                assert!(got.is_packed());
                assert_eq!(got, want, "{format} {w}x{h}");
            }
        }
    }

    /// Reproducible noise (xorshift): the hardest input for an average to get right.
    fn noise(w: u32, h: u32, format: PixelFormat, seed: u64) -> Frame {
        let mut f = Frame::new(w, h, format);
        let mut x = seed | 1;
        for b in &mut f.pixels {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        f
    }

    fn pattern(w: u32, h: u32, format: PixelFormat) -> Frame {
        let mut f = Frame::empty(format);
        TestPattern::new(w, h, 0.0)
            .unwrap()
            .with_format(format)
            .render(7, &mut f);
        f
    }

    /// `f` with `extra` bytes of junk after every row.
    fn padded(f: &Frame, extra: usize) -> Frame {
        let stride = f.row_bytes() + extra;
        let mut p = f.clone();
        p.stride = stride;
        p.pixels = vec![0xAB; stride * f.height as usize];
        for y in 0..f.height {
            let start = y as usize * stride;
            p.pixels[start..start + f.row_bytes()].copy_from_slice(f.row(y));
        }
        p
    }

    /// The rounded mean (halves up) of each block of `src.width / ow` x `src.height / oh`
    /// pixels: area at an integer factor.
    fn box_reference(src: &Frame, ow: u32, oh: u32) -> Frame {
        let (kx, ky) = (src.width / ow, src.height / oh);
        assert_eq!(
            (kx * ow, ky * oh),
            (src.width, src.height),
            "integer factors"
        );
        let bpp = src.format.bytes_per_pixel();
        let n = kx * ky;
        let mut out = Frame::new(ow, oh, src.format);
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..bpp {
                    let mut sum = 0;
                    for y in oy * ky..(oy + 1) * ky {
                        for x in ox * kx..(ox + 1) * kx {
                            sum += u32::from(src.row(y)[x as usize * bpp + c]);
                        }
                    }
                    let i = (oy * ow + ox) as usize * bpp + c;
                    out.pixels[i] = ((sum + n / 2) / n) as u8;
                }
            }
        }
        out
    }

    /// OpenCV's `INTER_LINEAR`: output pixel `i` samples source `(i + 0.5) * scale - 0.5`,
    /// clamped to the image, blending the 2x2 pixels around it; rounded, halves up.
    fn bilinear_reference(src: &Frame, ow: u32, oh: u32) -> Frame {
        let bpp = src.format.bytes_per_pixel();
        let taps = |o: u32, src_len: u32, out_len: u32| {
            let pos = (f64::from(o) + 0.5) * f64::from(src_len) / f64::from(out_len) - 0.5;
            let pos = pos.clamp(0.0, f64::from(src_len - 1));
            let i = pos.floor();
            (i as u32, (i as u32 + 1).min(src_len - 1), pos - i)
        };
        let mut out = Frame::new(ow, oh, src.format);
        for oy in 0..oh {
            let (y0, y1, fy) = taps(oy, src.height, oh);
            for ox in 0..ow {
                let (x0, x1, fx) = taps(ox, src.width, ow);
                for c in 0..bpp {
                    let px = |x: u32, y: u32| f64::from(src.row(y)[x as usize * bpp + c]);
                    let top = px(x0, y0) * (1.0 - fx) + px(x1, y0) * fx;
                    let bottom = px(x0, y1) * (1.0 - fx) + px(x1, y1) * fx;
                    let v = top * (1.0 - fy) + bottom * fy;
                    out.pixels[(oy * ow + ox) as usize * bpp + c] = (v + 0.5).floor() as u8;
                }
            }
        }
        out
    }

    fn max_difference(a: &Frame, b: &Frame) -> u8 {
        assert_eq!((a.width, a.height, a.format), (b.width, b.height, b.format));
        a.pixels
            .iter()
            .zip(&b.pixels)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    /// Resizes `src`, packed and with padded rows, and returns the largest difference from
    /// `reference` of either.
    fn difference_from(
        filter: ResizeFilter,
        src: &Frame,
        (ow, oh): (u32, u32),
        reference: fn(&Frame, u32, u32) -> Frame,
    ) -> u8 {
        let want = reference(src, ow, oh);
        let mut r = Resizer::new(filter);
        let mut got = Frame::empty(src.format);
        let mut worst = 0;
        for input in [src.clone(), padded(src, 5)] {
            r.resize(&input, &mut got, ow, oh).unwrap();
            worst = worst.max(max_difference(&got, &want));
        }
        worst
    }

    /// Whether resizing `w` x `h` to `ow` x `oh` takes the 2x2-mean path.
    fn takes_2x2_means(filter: ResizeFilter, (w, h): (u32, u32), (ow, oh): (u32, u32)) -> bool {
        mean2x2::Axis::new(w, ow, filter).is_some() && mean2x2::Axis::new(h, oh, filter).is_some()
    }

    #[test]
    fn two_by_two_means_equal_the_references_exactly() {
        let area = [
            ((640, 480), (320, 240)),
            ((642, 6), (321, 3)),
            ((2, 2), (1, 1)),
            ((10, 4), (5, 2)),
        ];
        let bilinear = [
            ((1280, 720), (320, 180)),
            ((1920, 1080), (320, 180)),
            ((16, 12), (4, 2)),
            ((12, 8), (6, 2)),
        ];
        let cases = area.iter().map(|&c| (ResizeFilter::Area, c)).chain(
            area.iter()
                .chain(&bilinear)
                .map(|&c| (ResizeFilter::Bilinear, c)),
        );
        for (filter, (size, out)) in cases {
            assert!(takes_2x2_means(filter, size, out), "{filter:?} {size:?}");
            let reference = match filter {
                ResizeFilter::Area => box_reference,
                ResizeFilter::Bilinear => bilinear_reference,
            };
            for format in PixelFormat::ALL {
                for (name, src) in [
                    ("noise", noise(size.0, size.1, format, 99)),
                    ("pattern", pattern(size.0, size.1, format)),
                ] {
                    let diff = difference_from(filter, &src, out, reference);
                    assert_eq!(diff, 0, "{filter:?} {format} {name} {size:?} -> {out:?}");
                }
            }
        }
    }

    #[test]
    fn other_sizes_stay_within_one_of_the_references() {
        // fast_image_resize: two passes, each rounded.
        let area = [((1280, 720), (320, 180)), ((30, 21), (10, 7))];
        let bilinear = [
            ((641, 481), (320, 240)),
            ((960, 540), (320, 180)),
            ((100, 75), (64, 48)),
            ((50, 30), (33, 17)),
            ((640, 480), (320, 480)),
        ];
        let cases = area
            .iter()
            .map(|&c| (ResizeFilter::Area, c))
            .chain(bilinear.iter().map(|&c| (ResizeFilter::Bilinear, c)));
        for (filter, (size, out)) in cases {
            assert!(!takes_2x2_means(filter, size, out), "{filter:?} {size:?}");
            let reference = match filter {
                ResizeFilter::Area => box_reference,
                ResizeFilter::Bilinear => bilinear_reference,
            };
            for format in PixelFormat::ALL {
                for (name, src) in [
                    ("noise", noise(size.0, size.1, format, 7)),
                    ("pattern", pattern(size.0, size.1, format)),
                ] {
                    let diff = difference_from(filter, &src, out, reference);
                    assert!(
                        diff <= 1,
                        "{filter:?} {format} {name} {size:?} -> {out:?}: {diff}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_size_copies_the_pixels() {
        let mut src = Frame::new(20, 10, PixelFormat::Rgb8);
        for (i, b) in src.pixels.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut dst = Frame::new(3, 3, PixelFormat::Rgba8);
        Resizer::new(ResizeFilter::Bilinear)
            .resize(&src, &mut dst, 20, 10)
            .unwrap();
        assert_eq!(dst, src);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_sizes() {
        let mut r = Resizer::new(ResizeFilter::Area);
        let mut dst = Frame::empty(PixelFormat::Rgb8);
        let src = Frame::new(8, 8, PixelFormat::Rgb8);
        let err = r.resize(&src, &mut dst, 0, 4).unwrap_err();
        assert_eq!(err.to_string(), "cannot resize 8x8 rgb8 frame to 0x4");
        let mut short = src.clone();
        short.pixels.truncate(10);
        let err = r.resize(&short, &mut dst, 4, 4).unwrap_err();
        assert_eq!(err.to_string(), "cannot resize 8x8 rgb8 frame to 4x4");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(source, "8x8 rgb8 frame needs 192 bytes, has 10");
    }

    #[test]
    fn test_pattern_frame_number_survives_resizing() {
        // Dependencies are built with debug assertions in tests, which makes resizing 1080p
        // slow: the largest size runs in one format only.
        let cases = [
            (640, 480, PixelFormat::Rgb8),
            (640, 480, PixelFormat::Rgba8),
            (1000, 700, PixelFormat::Rgb8),
            (1280, 720, PixelFormat::Rgba8),
            (1920, 1080, PixelFormat::Rgb8),
        ];
        // Bit patterns of every kind: none, one, runs across byte boundaries, all 32, alternating.
        let numbers = [
            0,
            1,
            255,
            256,
            65535,
            1 << 31,
            u64::from(u32::MAX),
            12345,
            0xA5A5_5A5A,
        ];
        let mut resizers = [ResizeFilter::Area, ResizeFilter::Bilinear].map(Resizer::new);
        for (w, h, format) in cases {
            let mut p = TestPattern::new(w, h, 0.0).unwrap().with_format(format);
            let (mut src, mut dst) = (Frame::empty(format), Frame::empty(format));
            for n in numbers {
                p.render(n, &mut src);
                for r in &mut resizers {
                    for out_w in [160, 320] {
                        let (ow, oh) = fit_size(w, h, Some(out_w), None).unwrap();
                        r.resize(&src, &mut dst, ow, oh).unwrap();
                        assert_eq!(
                            read_frame_number(&dst),
                            Some(n),
                            "{w}x{h} {format} -> {ow}x{oh} {:?} frame {n}",
                            r.filter()
                        );
                    }
                }
            }
        }
    }
}
