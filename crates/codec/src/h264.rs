//! H.264 (feature `h264`): Cisco's OpenH264, built from the source the `openh264` crate bundles
//! (no download at build or run time; it needs a C++ compiler). Chosen as the one maintained
//! Rust binding to an H.264 encoder that needs no system library: `x264` bindings need
//! libx264 installed (and are GPL), `ffmpeg-next` needs libav*; it has no crypto, so the
//! workspace's ring-only rule is untouched. The Cisco patent licence covers only Cisco's own
//! binaries: whoever builds this feature from source is responsible for its use (README says so).
//!
//! The payload of a frame is one access unit in Annex-B form (start codes before each NAL unit):
//! a keyframe carries its SPS and PPS before the IDR slice, so it decodes on its own.
//!
//! Real-time settings: constrained baseline profile (no B-frames, no lookahead: a frame leaves as
//! soon as it is encoded), one slice, rate control on a target bitrate that never skips a frame,
//! and an IDR every `keyint` frames or when asked ([`FrameEncoder::request_keyframe`]). The
//! decoder refuses a stream of another profile with one line saying why, and gives no picture
//! ([`Decoded::NotYet`]) until the first keyframe.

use framewire_core::{
    CodecError, CodecKind, Decoded, Encoded, Frame, FrameDecoder, FrameEncoder, PixelFormat,
    StreamInfo,
};
use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::{RgbSliceU8, YUVBuffer, YUVSource};

use framewire_file::h264::{NAL_IDR, NAL_SPS, Sps, SpsError, nal_units, sps};

use crate::{DEFAULT_KEYINT, check_frame, default_bitrate, packed_pixels, stream_frame_bytes};

/// What an H.264 encoder is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Options {
    /// Target bitrate in kbit/s; 0: [`default_bitrate`] of the frame size.
    pub bitrate_kbit: u32,
    /// Frames from one keyframe to the next (at least 1).
    pub keyint: u32,
    /// The frame rate the rate control plans for (whole frames a second, at least 1).
    pub fps: u32,
}

impl Default for H264Options {
    fn default() -> Self {
        H264Options {
            bitrate_kbit: 0,
            keyint: DEFAULT_KEYINT,
            fps: 30,
        }
    }
}

fn error(context: &'static str) -> impl Fn(openh264::Error) -> CodecError {
    move |e| CodecError::Backend {
        codec: CodecKind::H264,
        context,
        source: Box::new(e),
    }
}

/// Encodes RGB frames into H.264 access units. The encoder is made at the first frame and made
/// again when the size changes (whose first frame is then a keyframe).
pub struct H264Encoder {
    options: H264Options,
    encoder: Option<(Encoder, u32, u32)>,
    yuv: Option<YUVBuffer>,
    scratch: Vec<u8>,
    keyframe_asked: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// An encoder with `options`.
    pub fn new(options: H264Options) -> Result<H264Encoder, CodecError> {
        if options.keyint == 0 {
            return Err(CodecError::Unsupported {
                codec: CodecKind::H264,
                reason: "keyint 0: at least one frame from keyframe to keyframe".into(),
            });
        }
        Ok(H264Encoder {
            options,
            encoder: None,
            yuv: None,
            scratch: Vec::new(),
            keyframe_asked: false,
        })
    }

    fn encoder(&mut self, width: u32, height: u32) -> Result<&mut Encoder, CodecError> {
        if !matches!(&self.encoder, Some((_, w, h)) if (*w, *h) == (width, height)) {
            let kbit = match self.options.bitrate_kbit {
                0 => default_bitrate(width, height),
                k => k,
            };
            let config = EncoderConfig::new()
                .profile(Profile::Baseline)
                .usage_type(UsageType::CameraVideoRealTime)
                .rate_control_mode(RateControlMode::Bitrate)
                .bitrate(BitRate::from_bps(kbit.saturating_mul(1000)))
                .max_frame_rate(FrameRate::from_hz(self.options.fps.max(1) as f32))
                .skip_frames(false)
                .intra_frame_period(IntraFramePeriod::from_num_frames(self.options.keyint))
                .num_threads(1);
            let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
                .map_err(error("starting openh264's encoder"))?;
            quiet(&mut encoder);
            self.encoder = Some((encoder, width, height));
            self.yuv = Some(YUVBuffer::new(width as usize, height as usize));
        }
        Ok(&mut self.encoder.as_mut().expect("made above").0)
    }
}

/// Silences OpenH264's log before the encoder starts: it would print a warning to stderr that
/// bitrate control without frame skipping cannot hold the bitrate exactly. framewire never
/// skips a frame (a viewer would see a stall), and the bitrate holds closely enough (measured
/// within 2% on the test pattern). The `openh264` crate sets the level only after the start,
/// and offers the option before it only through its raw API, hence one `unsafe` call.
#[allow(unsafe_code)]
fn quiet(encoder: &mut Encoder) {
    let mut level = openh264_sys2::WELS_LOG_QUIET as std::ffi::c_int;
    // SAFETY: the encoder is a live one the crate made; OpenH264 takes ENCODER_OPTION_TRACE_LEVEL
    // before Initialize (welsEncoderExt.cpp, SetOption) and reads one int through the pointer,
    // which lives across the call.
    unsafe {
        encoder.raw_api().set_option(
            openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
            (&raw mut level).cast(),
        );
    }
}

impl FrameEncoder for H264Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::H264
    }

    fn output_format(&self, _input: PixelFormat) -> PixelFormat {
        PixelFormat::Rgb8
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let packed = check_frame(CodecKind::H264, frame)?;
        if !matches!(frame.format, PixelFormat::Rgb8 | PixelFormat::Bgr8) {
            return Err(CodecError::Unsupported {
                codec: CodecKind::H264,
                reason: format!("{} frames (it encodes rgb8 and bgr8)", frame.format),
            });
        }
        let (width, height) = (frame.width, frame.height);
        if width % 2 != 0 || height % 2 != 0 || width < 16 || height < 16 {
            return Err(CodecError::Unsupported {
                codec: CodecKind::H264,
                reason: format!(
                    "{width}x{height}: it needs an even width and height of 16 or more"
                ),
            });
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let pixels = if frame.format == PixelFormat::Bgr8 {
            // openh264's fast reader takes RGB: a BGR frame's rows are swapped into the
            // scratch buffer (a small cost beside the encoding).
            scratch.clear();
            for y in 0..height {
                frame.extend_rgb_row(y, &mut scratch);
            }
            &scratch[..]
        } else {
            packed_pixels(frame, packed, &mut scratch)
        };
        let rgb = RgbSliceU8::new(pixels, (width as usize, height as usize));
        self.encoder(width, height)?;
        let yuv = self.yuv.as_mut().expect("made with the encoder");
        yuv.read_rgb8(rgb);
        self.scratch = scratch;
        let (encoder, ..) = self.encoder.as_mut().expect("made above");
        if std::mem::take(&mut self.keyframe_asked) {
            encoder.force_intra_frame();
        }
        let stream = encoder
            .encode(self.yuv.as_ref().expect("made with the encoder"))
            .map_err(error("openh264 encoding a frame"))?;
        dst.clear();
        stream.write_vec(dst);
        Ok(match stream.frame_type() {
            FrameType::IDR => Encoded::Keyframe,
            _ => Encoded::Delta,
        })
    }

    fn request_keyframe(&mut self) {
        self.keyframe_asked = true;
    }
}

/// What an access unit holds, as far as the decoder's rules go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Units {
    /// An IDR slice: the access unit decodes on its own (with the SPS and PPS before it).
    idr: bool,
    /// What an SPS in it says.
    sps: Option<Result<Sps, SpsError>>,
}

fn units(payload: &[u8]) -> Units {
    let mut found = Units::default();
    for unit in nal_units(payload) {
        match unit[0] & 0x1F {
            NAL_IDR => found.idr = true,
            NAL_SPS => found.sps = Some(sps(unit)),
            _ => {}
        }
    }
    found
}

/// Decodes an H.264 stream of the announced size into RGB frames.
pub struct H264Decoder {
    info: StreamInfo,
    decoder: Option<Decoder>,
    /// Whether a keyframe has come: before it, deltas give no picture.
    keyed: bool,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder")
            .field("info", &self.info)
            .field("keyed", &self.keyed)
            .finish_non_exhaustive()
    }
}

impl H264Decoder {
    /// A decoder for a stream of `info`'s size.
    pub fn new(info: StreamInfo) -> H264Decoder {
        H264Decoder {
            info,
            decoder: None,
            keyed: false,
        }
    }

    fn bad(&self, payload: &[u8], reason: impl Into<String>) -> CodecError {
        CodecError::BadPayload {
            codec: CodecKind::H264,
            len: payload.len(),
            reason: reason.into(),
        }
    }
}

impl FrameDecoder for H264Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::H264
    }

    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<Decoded, CodecError> {
        let bytes = stream_frame_bytes(&self.info, payload.len())?;
        let found = units(payload);
        // Refused before the library sees it: another profile, or an SPS whose size is not the
        // stream's (the library would allocate for whatever size it says).
        match found.sps {
            Some(Err(e)) => return Err(self.bad(payload, e.to_string())),
            Some(Ok(sps)) if (sps.width, sps.height) != (self.info.width, self.info.height) => {
                let (w, h) = (self.info.width, self.info.height);
                let reason = format!(
                    "an SPS of {}x{} in a stream announced as {w}x{h}",
                    sps.width, sps.height
                );
                return Err(self.bad(payload, reason));
            }
            _ => {}
        }
        if !self.keyed && !found.idr {
            return Ok(Decoded::NotYet);
        }
        self.keyed = true;
        if self.decoder.is_none() {
            self.decoder = Some(
                Decoder::with_api_config(OpenH264API::from_source(), Default::default())
                    .map_err(error("starting openh264's decoder"))?,
            );
        }
        let decoder = self.decoder.as_mut().expect("made above");
        let picture = match decoder.decode(payload) {
            Ok(Some(picture)) => picture,
            Ok(None) => return Ok(Decoded::NotYet),
            Err(e) => {
                // Its state may be broken: the next keyframe starts afresh.
                self.decoder = None;
                self.keyed = false;
                return Err(self.bad(payload, format!("h264 decoding failed: {e}")));
            }
        };
        let (w, h) = picture.dimensions();
        let (width, height) = (self.info.width as usize, self.info.height as usize);
        if (w, h) != (width, height) {
            return Err(self.bad(
                payload,
                format!("a {w}x{h} picture in a stream announced as {width}x{height}"),
            ));
        }
        dst.reset(self.info.width, self.info.height, PixelFormat::Rgb8);
        picture.write_rgb8(&mut dst.pixels[..bytes.min(w * h * 3)]);
        Ok(Decoded::Picture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_pattern::{TestPattern, read_frame_number};

    fn info(width: u32, height: u32) -> StreamInfo {
        StreamInfo {
            codec: CodecKind::H264,
            format: PixelFormat::Rgb8,
            width,
            height,
        }
    }

    #[test]
    fn the_test_pattern_round_trips_with_its_frame_numbers_and_keyframes_where_asked() {
        let mut pattern = TestPattern::new(320, 240, 30.0).unwrap();
        let mut encoder = H264Encoder::new(H264Options {
            keyint: 30,
            ..H264Options::default()
        })
        .unwrap();
        let mut decoder = H264Decoder::new(info(320, 240));
        let (mut frame, mut out, mut payload) = (
            Frame::new(2, 2, PixelFormat::Rgb8),
            Frame::new(2, 2, PixelFormat::Rgb8),
            Vec::new(),
        );
        let mut keys = Vec::new();
        for n in 0..50u64 {
            pattern.render(n, &mut frame);
            if n == 12 {
                encoder.request_keyframe();
            }
            let kind = encoder.encode(&frame, &mut payload).unwrap();
            if kind.is_keyframe() {
                keys.push(n);
            }
            assert_eq!(
                decoder.decode(&payload, &mut out).unwrap(),
                Decoded::Picture
            );
            assert_eq!(read_frame_number(&out), Some(n), "frame {n}");
        }
        assert_eq!(
            keys,
            vec![0, 12, 42],
            "the first, the one asked for, then keyint after it"
        );
    }

    #[test]
    fn a_decoder_shows_nothing_before_a_keyframe_and_refuses_other_profiles() {
        let mut pattern = TestPattern::new(64, 48, 30.0).unwrap();
        let mut encoder = H264Encoder::new(H264Options::default()).unwrap();
        let (mut frame, mut out) = (
            Frame::new(2, 2, PixelFormat::Rgb8),
            Frame::new(2, 2, PixelFormat::Rgb8),
        );
        let mut payloads = Vec::new();
        for n in 0..3 {
            pattern.render(n, &mut frame);
            let mut p = Vec::new();
            encoder.encode(&frame, &mut p).unwrap();
            payloads.push(p);
        }
        let mut late = H264Decoder::new(info(64, 48));
        assert_eq!(
            late.decode(&payloads[1], &mut out).unwrap(),
            Decoded::NotYet
        );
        let mut high = payloads[0].clone();
        let sps = high
            .windows(4)
            .position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1F == NAL_SPS)
            .unwrap();
        high[sps + 4] = 100;
        let e = H264Decoder::new(info(64, 48))
            .decode(&high, &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("high profile (100") && e.contains("constrained baseline"),
            "{e}"
        );
        let mut other = H264Decoder::new(info(32, 48));
        let e = other
            .decode(&payloads[0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("an SPS of 64x48 in a stream announced as 32x48"),
            "{e}"
        );
        // An SPS at the largest size, and one past it, then an IDR slice: refused before the
        // library allocates for them.
        for (mbs, want) in [
            (1024, "an SPS of 16384x16384 in a stream announced as 64x48"),
            (1025, "a truncated or malformed SPS"),
        ] {
            let mut au = vec![0, 0, 0, 1];
            au.extend(framewire_file::h264::test_sps(mbs, mbs));
            au.extend([0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33]);
            let e = H264Decoder::new(info(64, 48))
                .decode(&au, &mut out)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_bgr_frame_encodes_as_the_rgb_frame_of_its_colours() {
        let rgb_px: Vec<u8> = (0..32 * 32)
            .flat_map(|i| [(i % 32 * 8) as u8, (i / 32 * 8) as u8, 200])
            .collect();
        let mut rgb = Frame::new(32, 32, PixelFormat::Rgb8);
        rgb.pixels.copy_from_slice(&rgb_px);
        let mut bgr = Frame::new(32, 32, PixelFormat::Bgr8);
        for (o, p) in bgr.pixels.chunks_exact_mut(3).zip(rgb_px.chunks_exact(3)) {
            o.copy_from_slice(&[p[2], p[1], p[0]]);
        }
        let encode = |frame: &Frame| {
            let mut au = Vec::new();
            H264Encoder::new(H264Options::default())
                .unwrap()
                .encode(frame, &mut au)
                .unwrap();
            au
        };
        assert_eq!(encode(&bgr), encode(&rgb));
        let mut rgba = Frame::new(32, 32, PixelFormat::Rgba8);
        rgba.pixels.fill(7);
        let e = H264Encoder::new(H264Options::default())
            .unwrap()
            .encode(&rgba, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("rgba8 frames (it encodes rgb8 and bgr8)"), "{e}");
    }

    #[test]
    fn odd_sizes_and_no_keyint_are_refused_with_a_reason() {
        let mut frame = Frame::new(33, 20, PixelFormat::Rgb8);
        frame.pixels.fill(9);
        let e = H264Encoder::new(H264Options::default())
            .unwrap()
            .encode(&frame, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("33x20"), "{e}");
        let e = H264Encoder::new(H264Options {
            keyint: 0,
            ..H264Options::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("keyint 0"), "{e}");
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        let mut d = H264Decoder::new(info(64, 48));
        let mut out = Frame::new(2, 2, PixelFormat::Rgb8);
        let mut x = 0x1234_5678_u32;
        for len in 0..400 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if len > 8 {
                b[..5].copy_from_slice(&[0, 0, 0, 1, 0x65]);
            }
            let _ = d.decode(&b, &mut out);
        }
    }
}
