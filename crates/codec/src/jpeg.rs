//! The JPEG codec: the payload is a baseline JPEG file, encoded with `jpeg-encoder` and decoded with `zune-jpeg`.
//!
//! Lossy, and always decodes to [`PixelFormat::Rgb8`]: an rgba8 frame is encoded without its
//! alpha channel. Frames are at most 65535 pixels wide and high (JPEG's limit).
//!
//! The decoder is configured for hostile input: strict mode (a non-conforming stream is an
//! error, not a guess), the stream's width and height as the largest image it accepts (so a
//! header cannot make it allocate for a bigger one), RGB output. A smaller JPEG than the
//! stream's is [`CodecError::Mismatch`], checked before any pixel is decoded; a bigger one is
//! refused by zune-jpeg's size limit ([`CodecError::Backend`]).
//!
//! zune-jpeg 0.5.15 still panics on some hostile inputs (upstream etemesi254/zune-image#409).
//! The decoder catches such a panic and returns [`CodecError::Backend`]. That needs the default
//! `panic = "unwind"`, and the default panic hook still writes the panic message to stderr.

use framewire_core::{
    CodecError, CodecKind, Frame, FrameDecoder, FrameEncoder, PixelFormat, StreamInfo,
};
use jpeg_encoder::{ColorType, Encoder};
use zune_jpeg::JpegDecoder as ZuneDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::{check_frame, check_quality, packed_pixels, stream_frame_bytes};

/// Writes a baseline JPEG.
#[derive(Debug)]
pub struct JpegEncoder {
    quality: u8,
    /// Packed rows of a frame whose rows are padded; kept so steady state does not allocate.
    scratch: Vec<u8>,
}

impl JpegEncoder {
    /// An encoder at `quality` (1..=100; 80 is a good default for video).
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] when `quality` is outside 1..=100.
    pub fn new(quality: u8) -> Result<JpegEncoder, CodecError> {
        check_quality(CodecKind::Jpeg, quality)?;
        Ok(JpegEncoder {
            quality,
            scratch: Vec::new(),
        })
    }

    /// The quality this encoder writes at.
    pub fn quality(&self) -> u8 {
        self.quality
    }
}

impl FrameEncoder for JpegEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Jpeg
    }

    fn output_format(&self, _input: PixelFormat) -> PixelFormat {
        PixelFormat::Rgb8
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        let unsupported = |reason: String| CodecError::Unsupported {
            codec: CodecKind::Jpeg,
            reason,
        };
        let packed = check_frame(CodecKind::Jpeg, frame)?;
        let (width, height) = (frame.width, frame.height);
        if width == 0 || height == 0 {
            return Err(unsupported(format!(
                "frame is {width}x{height}, expected at least 1x1 pixels"
            )));
        }
        let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(unsupported(format!(
                "frame is {width}x{height}, expected at most 65535x65535 pixels"
            )));
        };
        let color = match frame.format {
            PixelFormat::Rgb8 => ColorType::Rgb,
            PixelFormat::Rgba8 => ColorType::Rgba,
            other => {
                return Err(unsupported(format!(
                    "pixel format {other}, expected rgb8 or rgba8"
                )));
            }
        };
        let data = packed_pixels(frame, packed, &mut self.scratch);
        dst.clear();
        Encoder::new(&mut *dst, self.quality)
            .encode(data, w16, h16, color)
            .map_err(|e| CodecError::Backend {
                codec: CodecKind::Jpeg,
                context: "encoding",
                source: Box::new(e),
            })
    }
}

/// Reads baseline or progressive JPEGs of the stream's size into rgb8 frames.
#[derive(Debug)]
pub struct JpegDecoder {
    info: StreamInfo,
    options: DecoderOptions,
}

impl JpegDecoder {
    /// A decoder for frames of `info`'s size. `info.format` must be rgb8 (what
    /// [`JpegEncoder::output_format`] announces); any other makes every payload a
    /// [`CodecError::Mismatch`].
    pub fn new(info: StreamInfo) -> JpegDecoder {
        let options = DecoderOptions::default()
            .set_strict_mode(true)
            .set_max_width(info.width as usize)
            .set_max_height(info.height as usize)
            .jpeg_set_out_colorspace(ColorSpace::RGB);
        JpegDecoder { info, options }
    }

    fn mismatch(&self, got_w: u32, got_h: u32) -> CodecError {
        CodecError::Mismatch {
            codec: CodecKind::Jpeg,
            got_w,
            got_h,
            got_format: PixelFormat::Rgb8,
            want_w: self.info.width,
            want_h: self.info.height,
            want_format: self.info.format,
        }
    }
}

/// Boxes a zune-jpeg error as the source of a [`CodecError::Backend`].
fn backend(context: &'static str) -> impl FnOnce(zune_jpeg::errors::DecodeErrors) -> CodecError {
    move |e| CodecError::Backend {
        codec: CodecKind::Jpeg,
        context,
        source: Box::new(e),
    }
}

impl FrameDecoder for JpegDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Jpeg
    }

    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<(), CodecError> {
        let info = self.info;
        stream_frame_bytes(&info, payload.len())?;
        if info.format != PixelFormat::Rgb8 {
            return Err(self.mismatch(info.width, info.height));
        }
        // zune-jpeg 0.5.15 still panics on some hostile inputs (tests/data has one; upstream
        // etemesi254/zune-image#409). The decoder state is thrown away with the closure and `dst`
        // only holds pixels, so a panic leaves nothing inconsistent behind: turn it into an error.
        framewire_core::contain_panic(|| self.decode_unguarded(payload, dst)).unwrap_or_else(
            |what| {
                Err(CodecError::Backend {
                    codec: CodecKind::Jpeg,
                    context: "decoding",
                    source: format!("zune-jpeg panicked on this payload: {what}").into(),
                })
            },
        )
    }
}

impl JpegDecoder {
    /// Decodes with zune-jpeg, which may panic on hostile input: call it through `catch_unwind`.
    fn decode_unguarded(&self, payload: &[u8], dst: &mut Frame) -> Result<(), CodecError> {
        let info = self.info;
        let mut decoder = ZuneDecoder::new_with_options(ZCursor::new(payload), self.options);
        decoder
            .decode_headers()
            .map_err(backend("decoding the headers"))?;
        let (got_w, got_h) = match decoder.info() {
            Some(header) => (u32::from(header.width), u32::from(header.height)),
            None => (0, 0),
        };
        if (got_w, got_h) != (info.width, info.height) {
            return Err(self.mismatch(got_w, got_h));
        }
        dst.reset(info.width, info.height, PixelFormat::Rgb8);
        if decoder.output_buffer_size() != Some(dst.pixels.len()) {
            return Err(CodecError::BadPayload {
                codec: CodecKind::Jpeg,
                len: payload.len(),
                reason: format!(
                    "decoder wants {:?} output bytes, expected {} for a {}x{} rgb8 frame",
                    decoder.output_buffer_size(),
                    dst.pixels.len(),
                    info.width,
                    info.height
                ),
            });
        }
        decoder
            .decode_into(&mut dst.pixels)
            .map_err(backend("decoding the pixels"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(width: u32, height: u32) -> StreamInfo {
        StreamInfo {
            codec: CodecKind::Jpeg,
            width,
            height,
            format: PixelFormat::Rgb8,
        }
    }

    /// A smooth gradient, which JPEG keeps well.
    fn gradient(width: u32, height: u32, format: PixelFormat) -> Frame {
        let mut frame = Frame::new(width, height, format);
        let bpp = format.bytes_per_pixel();
        for y in 0..height as usize {
            for x in 0..width as usize {
                let px = &mut frame.pixels[(y * width as usize + x) * bpp..][..bpp];
                px[0] = (x * 4) as u8;
                px[1] = (y * 4) as u8;
                px[2] = 128;
                if bpp == 4 {
                    px[3] = 0x55;
                }
            }
        }
        frame
    }

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut payload = Vec::new();
        JpegEncoder::new(90)
            .unwrap()
            .encode(frame, &mut payload)
            .unwrap();
        payload
    }

    fn max_abs_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    #[test]
    fn output_format_is_always_rgb8() {
        let enc = JpegEncoder::new(80).unwrap();
        assert_eq!(enc.quality(), 80);
        for f in PixelFormat::ALL {
            assert_eq!(enc.output_format(f), PixelFormat::Rgb8);
        }
    }

    #[test]
    fn rgba_encodes_without_alpha() {
        let rgb = gradient(32, 16, PixelFormat::Rgb8);
        let rgba = gradient(32, 16, PixelFormat::Rgba8);
        let mut out = Frame::empty(PixelFormat::Rgba8);
        let mut dec = JpegDecoder::new(info(32, 16));
        dec.decode(&encode(&rgba), &mut out).unwrap();
        assert_eq!(
            (out.width, out.height, out.format),
            (32, 16, PixelFormat::Rgb8)
        );
        assert!(out.is_packed());
        assert!(max_abs_diff(&out.pixels, &rgb.pixels) < 12);
    }

    #[test]
    fn padded_rows_encode_like_packed_ones() {
        let packed = gradient(17, 9, PixelFormat::Rgb8);
        let mut padded = Frame::new(17, 9, PixelFormat::Rgb8);
        padded.stride = 17 * 3 + 5;
        padded.pixels = vec![0xEE; padded.stride * 9];
        for y in 0..9 {
            let row = packed.row(y).to_vec();
            padded.pixels[y as usize * padded.stride..][..row.len()].copy_from_slice(&row);
        }
        assert_eq!(encode(&packed), encode(&padded));
    }

    #[test]
    fn decode_reuses_the_frame_allocation() {
        let payload = encode(&gradient(16, 8, PixelFormat::Rgb8));
        let mut out = Frame::new(64, 64, PixelFormat::Rgba8);
        let ptr = out.pixels.as_ptr();
        JpegDecoder::new(info(16, 8))
            .decode(&payload, &mut out)
            .unwrap();
        assert_eq!(out.pixels.as_ptr(), ptr);
    }

    #[test]
    fn other_size_is_a_mismatch() {
        let payload = encode(&gradient(16, 8, PixelFormat::Rgb8));
        let mut out = Frame::empty(PixelFormat::Rgb8);
        let err = JpegDecoder::new(info(32, 8))
            .decode(&payload, &mut out)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg payload is 16x8 rgb8, stream announced 32x8 rgb8"
        );
        // Bigger than the stream: zune refuses it from the header, before allocating.
        let err = JpegDecoder::new(info(8, 8))
            .decode(&payload, &mut out)
            .unwrap_err();
        assert!(matches!(err, CodecError::Backend { .. }), "{err:?}");
        let mut rgba = info(16, 8);
        rgba.format = PixelFormat::Rgba8;
        let err = JpegDecoder::new(rgba)
            .decode(&payload, &mut out)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg payload is 16x8 rgb8, stream announced 16x8 rgba8"
        );
    }

    #[test]
    fn frames_jpeg_cannot_hold_are_unsupported() {
        let mut enc = JpegEncoder::new(80).unwrap();
        let mut dst = Vec::new();
        let err = enc
            .encode(&Frame::new(0, 4, PixelFormat::Rgb8), &mut dst)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg cannot encode this frame: frame is 0x4, expected at least 1x1 pixels"
        );
        let err = enc
            .encode(&Frame::new(65536, 1, PixelFormat::Rgb8), &mut dst)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg cannot encode this frame: frame is 65536x1, expected at most 65535x65535 pixels"
        );
    }

    #[test]
    fn backend_panic_is_an_error() {
        // A 64x48 JPEG with one chroma component's sampling factors raised to 4x4 and a few
        // other bytes damaged: zune-jpeg 0.5.15 panics on it (found by fuzzing).
        let payload = include_bytes!("../tests/data/zune-jpeg-0.5.15-panic.jpg");
        let mut out = Frame::empty(PixelFormat::Rgb8);
        let mut dec = JpegDecoder::new(info(64, 48));
        let err = dec.decode(payload, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::Backend { .. }), "{err:?}");
        // The decoder is still usable afterwards.
        let good = encode(&gradient(64, 48, PixelFormat::Rgb8));
        dec.decode(&good, &mut out).unwrap();
    }

    #[test]
    fn quality_out_of_range_is_unsupported() {
        for q in [0, 101] {
            let err = JpegEncoder::new(q).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "jpeg cannot encode this frame: quality {q} is out of range, expected 1..=100"
                )
            );
        }
    }
}
