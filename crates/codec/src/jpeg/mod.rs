//! The JPEG codec: the payload is a baseline JPEG file, encoded by framewire's own encoder
//! (`encode.rs`, pure Rust) or libjpeg-turbo ([`JpegBackend`]), and decoded by framewire's own
//! decoder (`decode/`), with zune-jpeg for the JPEGs that one leaves alone.
//!
//! Lossy, and always decodes to [`PixelFormat::Rgb8`]: an rgba8 frame is encoded without its
//! alpha channel, a bgr8 frame read in its own order. Frames are at most 65535 pixels wide and
//! high (JPEG's limit).
//!
//! Two encoders write the same kind of payload (baseline JPEG, 4:2:0 chroma as OpenCV's
//! `imencode` writes by default, the same quality tables and standard Huffman tables), so a
//! viewer cannot tell them apart: [`JpegBackend::Rust`] (framewire's, always built, no
//! allocation per frame) and [`JpegBackend::Turbo`] (libjpeg-turbo through the `turbojpeg`
//! crate, faster (README's Performance table has the figures); only with the cargo feature `turbojpeg`, whose build needs cmake and
//! nasm; its handle is kept across frames). Decoding stays pure Rust whichever encoder the
//! server uses: the decoder is what faces bytes from the network, and C is not what should parse
//! hostile input.
//!
//! The decoder is strict (a non-conforming stream is an error, not a guess) and takes the
//! stream's width and height as the largest image it accepts, checked from the header before
//! anything is sized: a JPEG of another size is [`CodecError::Mismatch`]. framewire's decoder
//! takes baseline JPEG, what both encoders and webcams write, and keeps its tables and rows
//! between frames; a valid JPEG it does not take (progressive, arithmetic-coded, 12-bit, unusual
//! sampling) goes to zune-jpeg, which allocates its state per image.
//!
//! zune-jpeg 0.5.15 still panics on some hostile inputs (upstream etemesi254/zune-image#409).
//! The decoder catches such a panic and returns [`CodecError::Backend`]. That needs the default
//! `panic = "unwind"`, and the default panic hook still writes the panic message to stderr.

use std::fmt;
use std::str::FromStr;

use framewire_core::{
    CodecError, CodecKind, Decoded, Encoded, Frame, FrameDecoder, FrameEncoder, PixelFormat,
    StreamInfo,
};
use zune_jpeg::JpegDecoder as ZuneDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::{check_frame, check_quality, stream_frame_bytes};

mod decode;
mod encode;
mod tables;

use decode::{BaselineDecoder, DecodeError, Limits};
use encode::BaselineEncoder;

/// Which library encodes JPEG. Decoding is always zune-jpeg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JpegBackend {
    /// framewire's own encoder, pure Rust; in every build. Named `rust`.
    Rust,
    /// libjpeg-turbo through the `turbojpeg` crate; only in builds with the cargo feature
    /// `turbojpeg`. Named `turbojpeg`.
    Turbo,
}

impl JpegBackend {
    /// Every backend, whether this build has it or not.
    pub const ALL: [JpegBackend; 2] = [JpegBackend::Rust, JpegBackend::Turbo];

    /// The name flags use: `rust` or `turbojpeg`.
    pub const fn name(self) -> &'static str {
        match self {
            JpegBackend::Rust => "rust",
            JpegBackend::Turbo => "turbojpeg",
        }
    }

    /// The code behind it: `framewire` or `libjpeg-turbo`.
    pub const fn library(self) -> &'static str {
        match self {
            JpegBackend::Rust => "framewire",
            JpegBackend::Turbo => "libjpeg-turbo",
        }
    }

    /// Whether this build has it: [`JpegBackend::Turbo`] needs the cargo feature `turbojpeg`.
    pub const fn is_available(self) -> bool {
        match self {
            JpegBackend::Rust => true,
            JpegBackend::Turbo => cfg!(feature = "turbojpeg"),
        }
    }

    /// Checks that this build has this backend.
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] (for [`CodecKind::Jpeg`]) saying how to rebuild with it.
    pub fn ensure_available(self) -> Result<(), CodecError> {
        if self.is_available() {
            Ok(())
        } else {
            Err(unavailable(self))
        }
    }

    /// The backends this build has, in [`JpegBackend::ALL`]'s order.
    pub fn available() -> impl Iterator<Item = JpegBackend> {
        JpegBackend::ALL.into_iter().filter(|b| b.is_available())
    }
}

impl Default for JpegBackend {
    /// The fastest this build has: [`JpegBackend::Turbo`] with the feature `turbojpeg`, else
    /// [`JpegBackend::Rust`].
    fn default() -> Self {
        if JpegBackend::Turbo.is_available() {
            JpegBackend::Turbo
        } else {
            JpegBackend::Rust
        }
    }
}

impl fmt::Display for JpegBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JpegBackend {
    type Err = String;

    /// Parses a name ([`JpegBackend::name`], any case). Every backend parses, also one this
    /// build lacks: [`JpegEncoder::with_backend`] says how to get it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JpegBackend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = JpegBackend::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown JPEG encoder {s:?}, expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// Writes a baseline JPEG with the [`JpegBackend`] it was made with.
#[derive(Debug)]
pub struct JpegEncoder {
    quality: u8,
    state: Backend,
}

/// A backend and what it keeps between frames.
#[derive(Debug)]
enum Backend {
    /// Boxed: its code tables make it a few KiB.
    Rust(Box<BaselineEncoder>),
    #[cfg(feature = "turbojpeg")]
    Turbo(turbo::TurboEncoder),
}

impl JpegEncoder {
    /// An encoder at `quality` (1..=100; 80 is a good default for video) with this build's
    /// default backend ([`JpegBackend::default`]).
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] when `quality` is outside 1..=100.
    pub fn new(quality: u8) -> Result<JpegEncoder, CodecError> {
        JpegEncoder::with_backend(quality, JpegBackend::default())
    }

    /// An encoder at `quality` (1..=100) with `backend`.
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] when `quality` is outside 1..=100, or when this build does
    /// not have `backend` (the message says how to rebuild with it);
    /// [`CodecError::Backend`] when libjpeg-turbo cannot start.
    pub fn with_backend(quality: u8, backend: JpegBackend) -> Result<JpegEncoder, CodecError> {
        check_quality(CodecKind::Jpeg, quality)?;
        let state = match backend {
            JpegBackend::Rust => Backend::Rust(Box::new(BaselineEncoder::new(quality))),
            #[cfg(feature = "turbojpeg")]
            JpegBackend::Turbo => Backend::Turbo(turbo::TurboEncoder::new(quality)?),
            #[cfg(not(feature = "turbojpeg"))]
            JpegBackend::Turbo => return Err(unavailable(backend)),
        };
        Ok(JpegEncoder { quality, state })
    }

    /// The quality this encoder writes at.
    pub fn quality(&self) -> u8 {
        self.quality
    }

    /// The backend this encoder writes with.
    pub fn backend(&self) -> JpegBackend {
        match self.state {
            Backend::Rust(_) => JpegBackend::Rust,
            #[cfg(feature = "turbojpeg")]
            Backend::Turbo(_) => JpegBackend::Turbo,
        }
    }
}

/// The error for a backend this build lacks, saying how to rebuild with it.
fn unavailable(backend: JpegBackend) -> CodecError {
    CodecError::Unsupported {
        codec: CodecKind::Jpeg,
        reason: format!(
            "this build has no {backend} JPEG encoder ({}); rebuild with `--features turbojpeg` \
             (building it needs cmake and nasm: apt-get install cmake nasm)",
            backend.library()
        ),
    }
}

impl FrameEncoder for JpegEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Jpeg
    }

    fn output_format(&self, _input: PixelFormat) -> PixelFormat {
        PixelFormat::Rgb8
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let unsupported = |reason: String| CodecError::Unsupported {
            codec: CodecKind::Jpeg,
            reason,
        };
        check_frame(CodecKind::Jpeg, frame)?;
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
        if !matches!(
            frame.format,
            PixelFormat::Rgb8 | PixelFormat::Rgba8 | PixelFormat::Bgr8
        ) {
            return Err(unsupported(format!(
                "pixel format {}, expected rgb8, rgba8 or bgr8",
                frame.format
            )));
        }
        dst.clear();
        match &mut self.state {
            // Padded rows are read where they are: no packing copy.
            Backend::Rust(rust) => {
                let (pixels, stride) = (&frame.pixels[..], frame.stride);
                match frame.format {
                    PixelFormat::Rgba8 => rust.encode::<4, false>(pixels, stride, w16, h16, dst),
                    PixelFormat::Bgr8 => rust.encode::<3, true>(pixels, stride, w16, h16, dst),
                    _ => rust.encode::<3, false>(pixels, stride, w16, h16, dst),
                }
            }
            #[cfg(feature = "turbojpeg")]
            Backend::Turbo(turbo) => turbo.encode(frame, dst)?,
        }
        Ok(Encoded::Keyframe)
    }
}

/// A backend's failure to encode as a [`CodecError::Backend`].
#[cfg(feature = "turbojpeg")]
fn encoding_error(source: Box<dyn std::error::Error + Send + Sync>) -> CodecError {
    CodecError::Backend {
        codec: CodecKind::Jpeg,
        context: "encoding",
        source,
    }
}

/// The libjpeg-turbo encoder.
#[cfg(feature = "turbojpeg")]
mod turbo {
    use framewire_core::{CodecError, CodecKind, Frame, PixelFormat};
    use turbojpeg::{Compressor, Image, Subsamp};

    use super::encoding_error;

    /// A libjpeg-turbo compressor set to a quality and 4:2:0 chroma, kept across frames.
    #[derive(Debug)]
    pub(super) struct TurboEncoder {
        compressor: Compressor,
        /// libjpeg-turbo writes into this (its worst case for the frame size), and the JPEG is
        /// copied out into the caller's buffer. Writing into the caller's buffer directly would
        /// zero that worst case (3 bytes a pixel, more than the frame) on every frame and leave
        /// every pooled payload buffer that big; this way one buffer per encoder is, and the
        /// copy is of the JPEG's few percent of it.
        out: Vec<u8>,
    }

    impl TurboEncoder {
        pub(super) fn new(quality: u8) -> Result<TurboEncoder, CodecError> {
            let start = |e: turbojpeg::Error| CodecError::Backend {
                codec: CodecKind::Jpeg,
                context: "starting libjpeg-turbo",
                source: Box::new(e),
            };
            let mut compressor = Compressor::new().map_err(start)?;
            compressor.set_quality(i32::from(quality)).map_err(start)?;
            compressor.set_subsamp(Subsamp::Sub2x2).map_err(start)?;
            Ok(TurboEncoder {
                compressor,
                out: Vec::new(),
            })
        }

        /// Encodes a frame the caller checked: rgb8, rgba8 or bgr8, 1..=65535 pixels each way,
        /// `stride * height` bytes at least (so libjpeg-turbo reads within `pixels`).
        pub(super) fn encode(
            &mut self,
            frame: &Frame,
            dst: &mut Vec<u8>,
        ) -> Result<(), CodecError> {
            let format = match frame.format {
                PixelFormat::Rgba8 => turbojpeg::PixelFormat::RGBX,
                PixelFormat::Bgr8 => turbojpeg::PixelFormat::BGR,
                _ => turbojpeg::PixelFormat::RGB,
            };
            let (width, height) = (frame.width as usize, frame.height as usize);
            let image = Image {
                pixels: &frame.pixels[..],
                width,
                // Padded rows are read where they are: no packing copy.
                pitch: frame.stride,
                height,
                format,
            };
            let bound = turbojpeg::compressed_buf_len(width, height, Subsamp::Sub2x2)
                .map_err(|e| encoding_error(Box::new(e)))?;
            if self.out.len() < bound {
                self.out.resize(bound, 0);
            }
            let len = self
                .compressor
                .compress_to_slice(image, &mut self.out)
                .map_err(|e| encoding_error(Box::new(e)))?;
            dst.extend_from_slice(&self.out[..len]);
            Ok(())
        }
    }
}

/// Reads JPEGs of the stream's size into rgb8 frames: baseline ones with framewire's own
/// decoder, which keeps its buffers between frames, the rest (progressive, arithmetic-coded,
/// 12-bit, unusual sampling) with zune-jpeg.
#[derive(Debug)]
pub struct JpegDecoder {
    info: StreamInfo,
    options: DecoderOptions,
    baseline: BaselineDecoder,
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
        JpegDecoder {
            info,
            options,
            baseline: BaselineDecoder::new(),
        }
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

    /// What a [`DecodeError`] of framewire's decoder means for this stream.
    fn baseline_error(&self, payload: &[u8], e: DecodeError) -> CodecError {
        match e {
            DecodeError::TooLarge { width, height, .. } => self.mismatch(width, height),
            other => CodecError::BadPayload {
                codec: CodecKind::Jpeg,
                len: payload.len(),
                reason: other.to_string(),
            },
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

    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<Decoded, CodecError> {
        let info = self.info;
        stream_frame_bytes(&info, payload.len())?;
        if info.format != PixelFormat::Rgb8 {
            return Err(self.mismatch(info.width, info.height));
        }
        let limits = Limits {
            max_width: info.width,
            max_height: info.height,
        };
        match self.baseline.read_header(payload, limits) {
            Ok(header) => {
                if (header.width, header.height) != (info.width, info.height) {
                    return Err(self.mismatch(header.width, header.height));
                }
                dst.reset(info.width, info.height, PixelFormat::Rgb8);
                return match self.baseline.decode_rgb(payload, limits, &mut dst.pixels) {
                    Ok(_) => Ok(Decoded::Picture),
                    Err(e) => Err(self.baseline_error(payload, e)),
                };
            }
            // A valid JPEG of a kind framewire's decoder leaves to zune-jpeg.
            Err(DecodeError::Unsupported(_)) => {}
            Err(e) => return Err(self.baseline_error(payload, e)),
        }
        // zune-jpeg 0.5.15 still panics on some hostile inputs (tests/data has one; upstream
        // etemesi254/zune-image#409). The decoder state is thrown away with the closure and `dst`
        // only holds pixels, so a panic leaves nothing inconsistent behind: turn it into an error.
        framewire_core::contain_panic(|| self.decode_unguarded(payload, dst))
            .map(|r| r.map(|()| Decoded::Picture))
            .unwrap_or_else(|what| {
                Err(CodecError::Backend {
                    codec: CodecKind::Jpeg,
                    context: "decoding",
                    source: format!("zune-jpeg panicked on this payload: {what}").into(),
                })
            })
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

    /// A smooth gradient, which JPEG keeps well: the same colours in every format.
    fn gradient(width: u32, height: u32, format: PixelFormat) -> Frame {
        let mut frame = Frame::new(width, height, format);
        let bpp = format.bytes_per_pixel();
        let [r, g, b] = format.rgb_offsets();
        for y in 0..height as usize {
            for x in 0..width as usize {
                let px = &mut frame.pixels[(y * width as usize + x) * bpp..][..bpp];
                px[r] = (x * 4) as u8;
                px[g] = (y * 4) as u8;
                px[b] = 128;
                if bpp == 4 {
                    px[3] = 0x55;
                }
            }
        }
        frame
    }

    fn encode(frame: &Frame) -> Vec<u8> {
        encode_with(JpegBackend::default(), frame)
    }

    fn encode_with(backend: JpegBackend, frame: &Frame) -> Vec<u8> {
        let mut payload = Vec::new();
        JpegEncoder::with_backend(90, backend)
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
        for backend in JpegBackend::available() {
            let enc = JpegEncoder::with_backend(80, backend).unwrap();
            assert_eq!((enc.quality(), enc.backend()), (80, backend));
            for f in PixelFormat::ALL {
                assert_eq!(enc.output_format(f), PixelFormat::Rgb8);
            }
        }
        assert_eq!(
            JpegEncoder::new(80).unwrap().backend(),
            JpegBackend::default()
        );
    }

    #[test]
    fn backends_have_names_and_the_default_is_the_fastest_built() {
        for backend in JpegBackend::ALL {
            assert_eq!(backend.name().parse::<JpegBackend>(), Ok(backend));
            assert_eq!(backend.to_string(), backend.name());
        }
        assert_eq!("TurboJPEG".parse::<JpegBackend>(), Ok(JpegBackend::Turbo));
        assert_eq!(
            "mozjpeg".parse::<JpegBackend>(),
            Err("unknown JPEG encoder \"mozjpeg\", expected one of: rust, turbojpeg".to_string())
        );
        let available: Vec<_> = JpegBackend::available().collect();
        if cfg!(feature = "turbojpeg") {
            assert_eq!(available, [JpegBackend::Rust, JpegBackend::Turbo]);
            assert_eq!(JpegBackend::default(), JpegBackend::Turbo);
        } else {
            assert_eq!(available, [JpegBackend::Rust]);
            assert_eq!(JpegBackend::default(), JpegBackend::Rust);
        }
    }

    #[cfg(not(feature = "turbojpeg"))]
    #[test]
    fn turbo_without_the_feature_says_how_to_get_it() {
        let err = JpegEncoder::with_backend(80, JpegBackend::Turbo).unwrap_err();
        assert!(matches!(err, CodecError::Unsupported { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "jpeg cannot encode this frame: this build has no turbojpeg JPEG encoder \
             (libjpeg-turbo); rebuild with `--features turbojpeg` (building it needs cmake and \
             nasm: apt-get install cmake nasm)"
        );
    }

    #[test]
    fn bgr_encodes_the_picture_an_rgb_frame_of_it_does() {
        let rgb = gradient(40, 16, PixelFormat::Rgb8);
        let bgr = gradient(40, 16, PixelFormat::Bgr8);
        for backend in JpegBackend::available() {
            let mut out = Frame::empty(PixelFormat::Rgb8);
            JpegDecoder::new(info(40, 16))
                .decode(&encode_with(backend, &bgr), &mut out)
                .unwrap();
            assert_eq!(out.format, PixelFormat::Rgb8);
            assert!(max_abs_diff(&out.pixels, &rgb.pixels) < 12, "{backend}");
        }
    }

    #[test]
    fn rgba_encodes_without_alpha() {
        let rgb = gradient(32, 16, PixelFormat::Rgb8);
        let rgba = gradient(32, 16, PixelFormat::Rgba8);
        for backend in JpegBackend::available() {
            let mut out = Frame::empty(PixelFormat::Rgba8);
            let mut dec = JpegDecoder::new(info(32, 16));
            dec.decode(&encode_with(backend, &rgba), &mut out).unwrap();
            assert_eq!(
                (out.width, out.height, out.format),
                (32, 16, PixelFormat::Rgb8)
            );
            assert!(out.is_packed());
            assert!(max_abs_diff(&out.pixels, &rgb.pixels) < 12, "{backend}");
        }
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
        for backend in JpegBackend::available() {
            assert_eq!(
                encode_with(backend, &packed),
                encode_with(backend, &padded),
                "{backend}"
            );
        }
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
        // Bigger than the stream: refused from the header, before anything is sized for it.
        let mut small = Frame::empty(PixelFormat::Rgb8);
        let err = JpegDecoder::new(info(8, 8))
            .decode(&payload, &mut small)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg payload is 16x8 rgb8, stream announced 8x8 rgb8"
        );
        assert_eq!(small.pixels.capacity(), 0);
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
        for backend in JpegBackend::available() {
            let mut enc = JpegEncoder::with_backend(80, backend).unwrap();
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
    }

    #[test]
    fn backend_panic_is_an_error() {
        // A 64x48 JPEG with one chroma component's sampling factors raised to 4x4 and a few
        // other bytes damaged: zune-jpeg 0.5.15 panics on it (found by fuzzing).
        let payload = include_bytes!("../../tests/data/zune-jpeg-0.5.15-panic.jpg");
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
        for backend in JpegBackend::ALL {
            for q in [0, 101] {
                let err = JpegEncoder::with_backend(q, backend).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!(
                        "jpeg cannot encode this frame: quality {q} is out of range, expected 1..=100"
                    )
                );
            }
        }
    }
}
