//! framewire's frame codecs (raw, bincode, JPEG) behind core's `FrameEncoder`/`FrameDecoder`, and the registry that picks one by `CodecKind`.
//!
//! Each codec lives in its own module, which documents its payload layout:
//!
//! | kind | payload | lossless |
//! |---|---|---|
//! | [`raw`] | packed pixel rows, nothing else | yes |
//! | [`bincode`] | a frame record in bincode's legacy layout (written with `wincode`) | yes |
//! | `h264` (feature `h264`) | one H.264 access unit, Annex-B, constrained baseline (`h264.rs`) | no |
//! | [`jpeg`] | a baseline JPEG file (from framewire's own encoder or, with the feature `turbojpeg`, libjpeg-turbo: [`JpegBackend`]); decodes to [`PixelFormat::Rgb8`](framewire_core::PixelFormat::Rgb8) with framewire's own decoder (zune-jpeg for non-baseline JPEG) | no |
//!
//! [`encoder`] and [`decoder`] build the implementation a [`CodecKind`] names, so the binary
//! can pick one from a flag or a handshake. A decoder is made for one stream: it knows the
//! announced size and format, and a payload that does not match them is an error, never a
//! reallocation to whatever the payload claims.
//!
//! Payloads come from the network: no byte sequence makes a decoder panic, and no decoder
//! allocates more than the stream's frame size (capped at [`MAX_FRAME_BYTES`]) plus what the
//! JPEG backend needs for a frame of that size. Decoders fill the [`Frame`] they are handed and
//! keep its allocation ([`Frame::reset`]).

use framewire_core::{
    CodecError, CodecKind, Decoded, Frame, FrameDecoder, FrameEncoder, StreamInfo,
};

pub mod bincode;
#[cfg(feature = "h264")]
pub mod h264;
pub mod jpeg;
pub mod raw;

pub use bincode::{BincodeDecoder, BincodeEncoder};
#[cfg(feature = "h264")]
pub use h264::{H264Decoder, H264Encoder, H264Options};
pub use jpeg::{JpegBackend, JpegDecoder, JpegEncoder};
pub use raw::{RawDecoder, RawEncoder};

/// The largest decoded frame, in bytes, that any codec here encodes or decodes: 256 MiB.
///
/// An 8K (7680x4320) RGBA frame is about 127 MiB. The cap bounds what a hostile handshake
/// can make a decoder allocate.
pub const MAX_FRAME_BYTES: u64 = 256 << 20;

/// The JPEG quality [`EncodeOptions::default`] uses.
pub const DEFAULT_QUALITY: u8 = 80;

/// H.264's keyframe interval when none is asked for: 2 s at 30 fps. A viewer that joins or
/// loses a frame asks for a keyframe sooner, so this bounds only how long a stream runs on
/// deltas.
pub const DEFAULT_KEYINT: u32 = 60;

/// H.264's bitrate for a `width` x `height` stream when none is asked for, kbit/s: 0.25 bits
/// per pixel at 30 fps (2,304 kbit/s at 640x480, about what camera-like content needs for JPEG
/// q80's picture at a quarter of its bytes), within 100..=100 000.
pub fn default_bitrate(width: u32, height: u32) -> u32 {
    (u64::from(width) * u64::from(height) * 30 / 4 / 1000).clamp(100, 100_000) as u32
}

/// Options for encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// JPEG quality, 1..=100 (default 80); ignored by lossless codecs, but checked for every codec.
    pub quality: u8,
    /// The library that encodes JPEG (default: [`JpegBackend::default`], the fastest this build
    /// has); ignored by the other codecs, but checked for every codec.
    pub jpeg_backend: JpegBackend,
    /// H.264's target bitrate in kbit/s; 0 (the default): one that fits the frame size.
    pub bitrate_kbit: u32,
    /// H.264's frames from keyframe to keyframe (default [`DEFAULT_KEYINT`]).
    pub keyint: u32,
    /// The frame rate an inter-frame codec's rate control plans for (default 30).
    pub fps: u32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            quality: DEFAULT_QUALITY,
            jpeg_backend: JpegBackend::default(),
            bitrate_kbit: 0,
            keyint: DEFAULT_KEYINT,
            fps: 30,
        }
    }
}

/// Makes the encoder for `kind`.
///
/// # Errors
/// [`CodecError::Unsupported`] when `options.quality` is outside 1..=100 or this build lacks
/// `options.jpeg_backend` (for every kind, so that a bad flag is reported whichever codec it is
/// combined with; the backend's error names jpeg), or when this build has no encoder for `kind`;
/// [`CodecError::Backend`] when libjpeg-turbo cannot start.
pub fn encoder(
    kind: CodecKind,
    options: &EncodeOptions,
) -> Result<Box<dyn FrameEncoder>, CodecError> {
    check_quality(kind, options.quality)?;
    options.jpeg_backend.ensure_available()?;
    match kind {
        CodecKind::Raw => Ok(Box::new(RawEncoder::new())),
        CodecKind::Bincode => Ok(Box::new(BincodeEncoder::new())),
        CodecKind::Jpeg => Ok(Box::new(JpegEncoder::with_backend(
            options.quality,
            options.jpeg_backend,
        )?)),
        #[cfg(feature = "h264")]
        CodecKind::H264 => Ok(Box::new(H264Encoder::new(H264Options {
            bitrate_kbit: options.bitrate_kbit,
            keyint: options.keyint,
            fps: options.fps,
        })?)),
        #[cfg(not(feature = "h264"))]
        CodecKind::H264 => Err(CodecError::Unsupported {
            codec: kind,
            reason: "this build has no encoder for it: build with --features h264 (it needs a \
                     C++ compiler: apt-get install g++)"
                .to_string(),
        }),
        #[allow(unreachable_patterns)]
        other => Err(CodecError::Unsupported {
            codec: other,
            reason: "this build has no encoder for it".to_string(),
        }),
    }
}

/// Makes the decoder for a stream: it knows the announced size and format and rejects payloads
/// that do not match them.
///
/// A codec this build does not know gives a decoder that rejects every payload with
/// [`CodecError::BadPayload`].
pub fn decoder(info: &StreamInfo) -> Box<dyn FrameDecoder> {
    match info.codec {
        CodecKind::Raw => Box::new(RawDecoder::new(*info)),
        CodecKind::Bincode => Box::new(BincodeDecoder::new(*info)),
        CodecKind::Jpeg => Box::new(JpegDecoder::new(*info)),
        #[cfg(feature = "h264")]
        CodecKind::H264 => Box::new(H264Decoder::new(*info)),
        #[allow(unreachable_patterns)]
        other => Box::new(UnknownDecoder { kind: other }),
    }
}

/// Stands in for a codec kind that a newer core knows and this crate does not.
struct UnknownDecoder {
    kind: CodecKind,
}

impl FrameDecoder for UnknownDecoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn decode(&mut self, payload: &[u8], _dst: &mut Frame) -> Result<Decoded, CodecError> {
        let how = match self.kind {
            CodecKind::H264 => {
                ": build with --features h264 (it needs a C++ compiler: apt-get install g++)"
            }
            _ => "",
        };
        Err(CodecError::BadPayload {
            codec: self.kind,
            len: payload.len(),
            reason: format!("this build has no decoder for this codec{how}"),
        })
    }
}

/// Checks a quality setting: 1..=100.
pub(crate) fn check_quality(codec: CodecKind, quality: u8) -> Result<(), CodecError> {
    if (1..=100).contains(&quality) {
        Ok(())
    } else {
        Err(CodecError::Unsupported {
            codec,
            reason: format!("quality {quality} is out of range, expected 1..=100"),
        })
    }
}

/// Checks that `frame` is consistent and within [`MAX_FRAME_BYTES`]; returns its packed size in bytes.
pub(crate) fn check_frame(codec: CodecKind, frame: &Frame) -> Result<usize, CodecError> {
    frame.validate().map_err(|reason| CodecError::Unsupported {
        codec,
        reason: reason.to_string(),
    })?;
    let packed = frame.row_bytes() as u64 * u64::from(frame.height);
    if packed > MAX_FRAME_BYTES {
        return Err(CodecError::Unsupported {
            codec,
            reason: format!(
                "{}x{} {} frame has {packed} bytes, expected at most {MAX_FRAME_BYTES}",
                frame.width, frame.height, frame.format
            ),
        });
    }
    // `validate` proved the frame's buffer holds at least this many bytes, so it fits a usize.
    Ok(packed as usize)
}

/// The frame's pixels as packed rows: borrowed when the frame is packed, else copied into `scratch`.
///
/// The frame must have passed [`check_frame`], which returned `packed`.
pub(crate) fn packed_pixels<'a>(
    frame: &'a Frame,
    packed: usize,
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    if frame.is_packed() {
        &frame.pixels[..packed]
    } else {
        scratch.clear();
        scratch.reserve(packed);
        for y in 0..frame.height {
            scratch.extend_from_slice(frame.row(y));
        }
        scratch
    }
}

/// The stream's decoded frame size in bytes, or an error when it exceeds [`MAX_FRAME_BYTES`].
///
/// Every decoder calls this before it sizes the destination frame, so a hostile handshake
/// cannot make it allocate more than the cap.
pub(crate) fn stream_frame_bytes(
    info: &StreamInfo,
    payload_len: usize,
) -> Result<usize, CodecError> {
    let bytes = info.frame_bytes();
    if bytes > MAX_FRAME_BYTES {
        return Err(CodecError::BadPayload {
            codec: info.codec,
            len: payload_len,
            reason: format!(
                "stream announced {}x{} {} frames of {bytes} bytes, expected at most {MAX_FRAME_BYTES}",
                info.width, info.height, info.format
            ),
        });
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::PixelFormat;

    /// The codecs this build has (h264 with its feature).
    fn built() -> impl Iterator<Item = CodecKind> {
        CodecKind::ALL
            .into_iter()
            .filter(|&k| k != CodecKind::H264 || cfg!(feature = "h264"))
    }

    #[test]
    fn default_quality_is_80() {
        assert_eq!(EncodeOptions::default().quality, 80);
    }

    #[test]
    fn encoder_rejects_quality_out_of_range_naming_the_value() {
        for kind in built() {
            for quality in [0u8, 101, 255] {
                let options = EncodeOptions {
                    quality,
                    ..EncodeOptions::default()
                };
                let err = encoder(kind, &options).err().unwrap();
                assert!(matches!(err, CodecError::Unsupported { .. }), "{err:?}");
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{kind} cannot encode this frame: quality {quality} is out of range, expected 1..=100"
                    )
                );
            }
            for quality in [1u8, 80, 100] {
                let options = EncodeOptions {
                    quality,
                    ..EncodeOptions::default()
                };
                assert!(encoder(kind, &options).is_ok());
            }
        }
    }

    #[test]
    fn registry_builds_the_kind_it_is_asked_for() {
        for kind in built() {
            let enc = encoder(kind, &EncodeOptions::default()).unwrap();
            assert_eq!(enc.kind(), kind);
            let info = StreamInfo {
                codec: kind,
                width: 4,
                height: 2,
                format: PixelFormat::Rgb8,
            };
            assert_eq!(decoder(&info).kind(), kind);
        }
    }

    #[test]
    fn oversized_stream_is_rejected_before_allocating() {
        for kind in built() {
            let info = StreamInfo {
                codec: kind,
                width: 65535,
                height: 65535,
                format: PixelFormat::Rgba8,
            };
            let mut dst = Frame::empty(PixelFormat::Rgba8);
            let err = decoder(&info).decode(&[0; 32], &mut dst).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "bad {kind} payload of 32 bytes: stream announced 65535x65535 rgba8 frames of \
                     17179344900 bytes, expected at most 268435456"
                )
            );
            assert_eq!(dst.pixels.capacity(), 0);
        }
    }

    #[test]
    fn inconsistent_frame_is_unsupported_not_a_panic() {
        let mut frame = Frame::new(4, 4, PixelFormat::Rgb8);
        frame.pixels.truncate(10);
        for kind in built() {
            let mut enc = encoder(kind, &EncodeOptions::default()).unwrap();
            let err = enc.encode(&frame, &mut Vec::new()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{kind} cannot encode this frame: 4x4 rgb8 frame needs 48 bytes, has 10")
            );
        }
    }

    #[test]
    fn padded_rows_are_packed() {
        let mut frame = Frame::new(2, 2, PixelFormat::Rgb8);
        frame.stride = 8;
        frame.pixels = vec![
            1, 2, 3, 4, 5, 6, 0xEE, 0xEE, 7, 8, 9, 10, 11, 12, 0xEE, 0xEE,
        ];
        let packed = check_frame(CodecKind::Raw, &frame).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(
            packed_pixels(&frame, packed, &mut scratch),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
    }
}
