//! Aspect-keeping frame resizing: [`fit_size`] picks the output size, [`Resizer`] scales the
//! pixels with `fast_image_resize`, reusing its buffers from frame to frame.

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions};
use framewire_core::{CaptureError, Frame, PixelFormat};

use crate::MAX_SIDE;

/// How pixels are combined when a frame is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeFilter {
    /// Box-filter convolution: every output pixel averages the source pixels it covers, like
    /// OpenCV's `INTER_AREA` when shrinking. Sharp and alias-free for downscaling.
    #[default]
    Area,
    /// Bilinear (triangle) convolution: smoother, a little slower.
    Bilinear,
}

impl ResizeFilter {
    fn algorithm(self) -> ResizeAlg {
        match self {
            ResizeFilter::Area => ResizeAlg::Convolution(FilterType::Box),
            ResizeFilter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
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

/// A reusable resizer: it keeps `fast_image_resize`'s intermediate buffers and a scratch buffer
/// for padded sources, so resizing a stream of same-sized frames allocates nothing once warm.
#[derive(Debug)]
pub struct Resizer {
    filter: ResizeFilter,
    inner: fast_image_resize::Resizer,
    /// Packed copy of a source whose rows are padded.
    scratch: Vec<u8>,
}

impl Resizer {
    /// A resizer that scales with `filter`.
    pub fn new(filter: ResizeFilter) -> Resizer {
        Resizer {
            filter,
            inner: fast_image_resize::Resizer::new(),
            scratch: Vec::new(),
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
        src.validate().map_err(fail)?;
        if src.width == 0 || src.height == 0 || out_w == 0 || out_h == 0 {
            return Err(fail("expected non-empty source and output sizes".into()));
        }
        if !matches!(src.format, PixelFormat::Rgb8 | PixelFormat::Rgba8) {
            return Err(fail(format!(
                "pixel format {} is not supported, expected rgb8 or rgba8",
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
            PixelFormat::Rgb8 => resize_typed::<U8x3>(&mut self.inner, &options, src, packed, dst),
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

#[cfg(test)]
mod tests {
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
}
