//! The bincode codec: the payload is a frame record in bincode 1.x's legacy layout, written and read with `wincode`.
//!
//! This is what the Python tutorial's `pickle.dumps(frame)` does, minus running the sender's
//! code: a record that names its own size and format, followed by the packed pixel rows. The
//! record is `struct { width: u32, height: u32, format: u8, pixels: &[u8] }` in bincode's legacy
//! configuration (fixed-size little-endian integers, `u64` sequence lengths), so the payload of a
//! `width` x `height` frame is `17 + width * height * bytes_per_pixel` bytes:
//!
//! | offset | size | field | value |
//! |---:|---:|---|---|
//! | 0 | 4 | width | `u32` little-endian, pixels |
//! | 4 | 4 | height | `u32` little-endian, pixels |
//! | 8 | 1 | format | `u8` [`PixelFormat::wire_id`]: 1 = rgb8, 2 = rgba8, 3 = bgr8 |
//! | 9 | 8 | length | `u64` little-endian, number of pixel bytes that follow |
//! | 17 | length | pixels | packed rows, top row first, no padding |
//!
//! The decoder checks the record against the stream's [`StreamInfo`]: width, height and format
//! must be the announced ones ([`CodecError::Mismatch`]) and the length must be the stream's
//! frame size; anything else, trailing bytes included, is [`CodecError::BadPayload`]. `pixels`
//! is read as a borrow of the payload, so a hostile declared length allocates nothing: it fails
//! as a short read.

use framewire_core::{
    CodecError, CodecKind, Decoded, Encoded, Frame, FrameDecoder, FrameEncoder, PixelFormat,
    StreamInfo,
};
use wincode::config::Configuration;
use wincode::{SchemaRead, SchemaWrite};

use crate::{MAX_FRAME_BYTES, check_frame, packed_pixels, stream_frame_bytes};

/// Bytes before the pixels: width, height, format and the pixel length.
pub const HEADER_LEN: usize = 4 + 4 + 1 + 8;

/// wincode's preallocation cap for this codec. wincode's default (4 MiB) is below a 1080p
/// frame; [`MAX_FRAME_BYTES`] is the codec's hard cap anyway. `pixels` is borrowed, so wincode
/// never preallocates for it today; the cap keeps that true should the record change.
const PREALLOCATION_LIMIT: usize = MAX_FRAME_BYTES as usize;

/// wincode's default configuration (byte-identical to bincode 1.x's legacy one) with the
/// preallocation cap raised to [`PREALLOCATION_LIMIT`].
type WireConfig = Configuration<true, PREALLOCATION_LIMIT>;

const CONFIG: WireConfig =
    Configuration::default().with_preallocation_size_limit::<PREALLOCATION_LIMIT>();

/// The record on the wire. Field order is the wire format: see the module doc.
#[derive(Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
struct WireFrame<'a> {
    width: u32,
    height: u32,
    format: u8,
    pixels: &'a [u8],
}

/// Writes a frame record.
#[derive(Debug, Default)]
pub struct BincodeEncoder {
    /// Packed rows of a frame whose rows are padded; kept so steady state does not allocate.
    scratch: Vec<u8>,
}

impl BincodeEncoder {
    /// A bincode encoder.
    pub fn new() -> BincodeEncoder {
        BincodeEncoder::default()
    }
}

impl FrameEncoder for BincodeEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Bincode
    }

    fn output_format(&self, input: PixelFormat) -> PixelFormat {
        input
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let packed = check_frame(CodecKind::Bincode, frame)?;
        let record = WireFrame {
            width: frame.width,
            height: frame.height,
            format: frame.format.wire_id(),
            pixels: packed_pixels(frame, packed, &mut self.scratch),
        };
        dst.clear();
        dst.reserve(HEADER_LEN + packed);
        wincode::config::serialize_into(&mut *dst, &record, CONFIG).map_err(|e| {
            CodecError::Backend {
                codec: CodecKind::Bincode,
                context: "writing the frame record",
                source: Box::new(e),
            }
        })?;
        Ok(Encoded::Keyframe)
    }
}

/// Reads frame records of the stream's size and format.
#[derive(Debug)]
pub struct BincodeDecoder {
    info: StreamInfo,
}

impl BincodeDecoder {
    /// A decoder for frames of `info`'s size and format.
    pub fn new(info: StreamInfo) -> BincodeDecoder {
        BincodeDecoder { info }
    }
}

impl FrameDecoder for BincodeDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Bincode
    }

    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<Decoded, CodecError> {
        let info = &self.info;
        let expected = stream_frame_bytes(info, payload.len())?;
        let bad = |reason: String| CodecError::BadPayload {
            codec: CodecKind::Bincode,
            len: payload.len(),
            reason,
        };
        // Zero-copy: `pixels` borrows from `payload`, so whatever length the record declares,
        // nothing is allocated for it; a length longer than the payload is a short read.
        let record: WireFrame<'_> = wincode::config::deserialize_exact(payload, CONFIG)
            .map_err(|_| bad(describe_bad_record(payload, expected)))?;
        let Some(format) = PixelFormat::from_wire_id(record.format) else {
            let known: Vec<_> = PixelFormat::ALL
                .iter()
                .map(|f| format!("{} ({f})", f.wire_id()))
                .collect();
            return Err(bad(format!(
                "unknown pixel format id {}, expected one of: {}",
                record.format,
                known.join(", ")
            )));
        };
        if (record.width, record.height, format) != (info.width, info.height, info.format) {
            return Err(CodecError::Mismatch {
                codec: CodecKind::Bincode,
                got_w: record.width,
                got_h: record.height,
                got_format: format,
                want_w: info.width,
                want_h: info.height,
                want_format: info.format,
            });
        }
        if record.pixels.len() != expected {
            return Err(bad(format!(
                "record holds {} pixel bytes, expected {expected} for a {}x{} {} frame",
                record.pixels.len(),
                info.width,
                info.height,
                info.format
            )));
        }
        dst.reset(info.width, info.height, info.format);
        dst.pixels.copy_from_slice(record.pixels);
        Ok(Decoded::Picture)
    }
}

/// Says what is wrong with a payload wincode could not read as a [`WireFrame`]: with fixed-size
/// fields, either the header is cut short or the declared pixel length is not what follows it.
fn describe_bad_record(payload: &[u8], expected: usize) -> String {
    if payload.len() < HEADER_LEN {
        return format!(
            "expected a {HEADER_LEN}-byte record header and {expected} pixel bytes, got {} bytes in all",
            payload.len()
        );
    }
    let mut declared = [0; 8];
    declared.copy_from_slice(&payload[9..HEADER_LEN]);
    format!(
        "record declares {} pixel bytes and {} follow its header, expected {expected}",
        u64::from_le_bytes(declared),
        payload.len() - HEADER_LEN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(width: u32, height: u32, format: PixelFormat) -> StreamInfo {
        StreamInfo {
            codec: CodecKind::Bincode,
            width,
            height,
            format,
        }
    }

    /// A 2x1 rgb8 frame: one red-ish and one blue-ish pixel.
    fn two_pixels() -> Frame {
        let mut frame = Frame::new(2, 1, PixelFormat::Rgb8);
        frame
            .pixels
            .copy_from_slice(&[0xFF, 0x10, 0x20, 0x01, 0x02, 0xFE]);
        frame
    }

    /// The exact bytes of [`two_pixels`]: bincode 1.x with its legacy default options writes these.
    const TWO_PIXELS_PAYLOAD: [u8; 23] = [
        0x02, 0x00, 0x00, 0x00, // width 2, u32 LE
        0x01, 0x00, 0x00, 0x00, // height 1, u32 LE
        0x01, // format: rgb8
        0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 6 pixel bytes, u64 LE
        0xFF, 0x10, 0x20, 0x01, 0x02, 0xFE, // the pixels
    ];

    fn decode(info: StreamInfo, payload: &[u8]) -> Result<Frame, CodecError> {
        let mut out = Frame::empty(PixelFormat::Rgb8);
        BincodeDecoder::new(info)
            .decode(payload, &mut out)
            .map(|_| out)
    }

    #[test]
    fn payload_bytes_are_pinned() {
        let mut payload = vec![0xAA; 64];
        BincodeEncoder::new()
            .encode(&two_pixels(), &mut payload)
            .unwrap();
        assert_eq!(payload, TWO_PIXELS_PAYLOAD);
        assert_eq!(payload.len(), HEADER_LEN + 6);

        let out = decode(info(2, 1, PixelFormat::Rgb8), &TWO_PIXELS_PAYLOAD).unwrap();
        assert_eq!(out, two_pixels());
    }

    #[test]
    fn padded_rows_encode_like_packed_ones() {
        let packed = Frame::new(3, 2, PixelFormat::Rgba8);
        let mut padded = packed.clone();
        padded.stride = 16;
        padded.pixels = (0..32).collect();
        let mut packed = packed;
        for y in 0..2 {
            let row = padded.row(y).to_vec();
            packed.pixels[y as usize * 12..][..12].copy_from_slice(&row);
        }
        let mut enc = BincodeEncoder::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        enc.encode(&packed, &mut a).unwrap();
        enc.encode(&padded, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(decode(info(3, 2, PixelFormat::Rgba8), &b).unwrap(), packed);
    }

    #[test]
    fn other_size_or_format_is_a_mismatch() {
        let err = decode(info(1, 2, PixelFormat::Rgb8), &TWO_PIXELS_PAYLOAD).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bincode payload is 2x1 rgb8, stream announced 1x2 rgb8"
        );
        let err = decode(info(2, 1, PixelFormat::Rgba8), &TWO_PIXELS_PAYLOAD).unwrap_err();
        assert!(matches!(err, CodecError::Mismatch { .. }), "{err:?}");
    }

    #[test]
    fn unknown_format_id_lists_the_known_ones() {
        let mut payload = TWO_PIXELS_PAYLOAD;
        payload[8] = 9;
        let err = decode(info(2, 1, PixelFormat::Rgb8), &payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad bincode payload of 23 bytes: unknown pixel format id 9, expected one of: 1 (rgb8), 2 (rgba8), 3 (bgr8)"
        );
    }

    #[test]
    fn hostile_length_fails_without_allocating() {
        for declared in [7u64, 1 << 40, u64::MAX] {
            let mut payload = TWO_PIXELS_PAYLOAD;
            payload[9..17].copy_from_slice(&declared.to_le_bytes());
            let err = decode(info(2, 1, PixelFormat::Rgb8), &payload).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "bad bincode payload of 23 bytes: record declares {declared} pixel bytes and 6 \
                     follow its header, expected 6"
                )
            );
        }
    }

    #[test]
    fn short_length_with_matching_header_names_expected() {
        // A well-formed record whose pixels are one byte short of the announced size.
        let mut payload = TWO_PIXELS_PAYLOAD[..22].to_vec();
        payload[9] = 5;
        let err = decode(info(2, 1, PixelFormat::Rgb8), &payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad bincode payload of 22 bytes: record holds 5 pixel bytes, expected 6 for a 2x1 rgb8 frame"
        );
    }

    #[test]
    fn truncated_and_trailing_bytes_are_bad_payloads() {
        for len in 0..TWO_PIXELS_PAYLOAD.len() {
            let err =
                decode(info(2, 1, PixelFormat::Rgb8), &TWO_PIXELS_PAYLOAD[..len]).unwrap_err();
            assert!(matches!(err, CodecError::BadPayload { .. }), "{err:?}");
        }
        let err = decode(info(2, 1, PixelFormat::Rgb8), &TWO_PIXELS_PAYLOAD[..10]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad bincode payload of 10 bytes: expected a 17-byte record header and 6 pixel bytes, \
             got 10 bytes in all"
        );
        let mut long = TWO_PIXELS_PAYLOAD.to_vec();
        long.push(0);
        let err = decode(info(2, 1, PixelFormat::Rgb8), &long).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad bincode payload of 24 bytes: record declares 6 pixel bytes and 7 follow its header, \
             expected 6"
        );
    }
}
