//! The raw codec: the payload is the frame's pixel rows, packed (no stride padding), and nothing else.
//! A packed frame whose pixels are needed no more becomes its payload without a copy
//! ([`FrameEncoder::encode_last`]), as a payload becomes a frame ([`FrameDecoder::decode_vec`]).
//!
//! Size and format are not in the payload; the decoder takes them from the stream's
//! [`StreamInfo`], so a payload is valid exactly when its length is
//! [`StreamInfo::frame_bytes`].

use framewire_core::{
    CodecError, CodecKind, Decoded, Encoded, Frame, FrameDecoder, FrameEncoder, PixelFormat,
    StreamInfo,
};

use crate::{check_frame, stream_frame_bytes};

/// Writes packed pixel rows: one copy of the frame, none for a frame's last use.
#[derive(Debug, Default)]
pub struct RawEncoder {}

impl RawEncoder {
    /// A raw encoder.
    pub fn new() -> RawEncoder {
        RawEncoder {}
    }
}

impl FrameEncoder for RawEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Raw
    }

    fn output_format(&self, input: PixelFormat) -> PixelFormat {
        input
    }

    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let packed = check_frame(CodecKind::Raw, frame)?;
        dst.clear();
        if frame.is_packed() {
            dst.extend_from_slice(&frame.pixels[..packed]);
        } else {
            dst.reserve(packed);
            for y in 0..frame.height {
                dst.extend_from_slice(frame.row(y));
            }
        }
        Ok(Encoded::Keyframe)
    }

    /// A packed frame's pixels become the payload by a swap: nothing is copied. The frame gets
    /// `dst`'s buffer back, sized to its rows again.
    fn encode_last(&mut self, frame: &mut Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let packed = check_frame(CodecKind::Raw, frame)?;
        if !frame.is_packed() || frame.pixels.len() != packed {
            return self.encode(frame, dst);
        }
        std::mem::swap(&mut frame.pixels, dst);
        let (width, height, format) = (frame.width, frame.height, frame.format);
        frame.reset(width, height, format);
        Ok(Encoded::Keyframe)
    }
}

/// Reads packed pixel rows of the stream's size and format.
#[derive(Debug)]
pub struct RawDecoder {
    info: StreamInfo,
}

impl RawDecoder {
    /// A decoder for frames of `info`'s size and format.
    pub fn new(info: StreamInfo) -> RawDecoder {
        RawDecoder { info }
    }

    /// An error unless `payload` is exactly one frame of the stream's size and format.
    fn check(&self, payload: &[u8]) -> Result<(), CodecError> {
        let info = &self.info;
        let expected = stream_frame_bytes(info, payload.len())?;
        if payload.len() != expected {
            return Err(CodecError::BadPayload {
                codec: CodecKind::Raw,
                len: payload.len(),
                reason: format!(
                    "expected {expected} bytes for a {}x{} {} frame, got {}",
                    info.width,
                    info.height,
                    info.format,
                    payload.len()
                ),
            });
        }
        Ok(())
    }
}

impl FrameDecoder for RawDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Raw
    }

    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<Decoded, CodecError> {
        self.check(payload)?;
        let info = &self.info;
        dst.reset(info.width, info.height, info.format);
        dst.pixels.copy_from_slice(payload);
        Ok(Decoded::Picture)
    }

    /// The payload becomes the frame's pixels by a swap: nothing is copied.
    fn decode_vec(
        &mut self,
        payload: &mut Vec<u8>,
        dst: &mut Frame,
    ) -> Result<Decoded, CodecError> {
        self.check(payload)?;
        std::mem::swap(payload, &mut dst.pixels);
        let info = &self.info;
        dst.reset(info.width, info.height, info.format);
        Ok(Decoded::Picture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(width: u32, height: u32, format: PixelFormat) -> StreamInfo {
        StreamInfo {
            codec: CodecKind::Raw,
            width,
            height,
            format,
        }
    }

    #[test]
    fn payload_is_packed_rows() {
        let mut frame = Frame::new(2, 2, PixelFormat::Rgb8);
        frame.stride = 7;
        frame.pixels = vec![1, 2, 3, 4, 5, 6, 0xEE, 7, 8, 9, 10, 11, 12, 0xEE];
        let mut payload = vec![0xAA; 100];
        RawEncoder::new().encode(&frame, &mut payload).unwrap();
        assert_eq!(payload, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

        let mut out = Frame::empty(PixelFormat::Rgba8);
        RawDecoder::new(info(2, 2, PixelFormat::Rgb8))
            .decode(&payload, &mut out)
            .unwrap();
        assert_eq!((out.width, out.height, out.stride), (2, 2, 6));
        assert_eq!(out.format, PixelFormat::Rgb8);
        assert_eq!(out.pixels, payload);
    }

    #[test]
    fn encode_last_swaps_a_packed_frame_in_and_copies_a_padded_one() {
        let mut frame = Frame::new(2, 2, PixelFormat::Rgb8);
        frame.pixels = (1..=12).collect();
        let rows = frame.pixels.as_ptr();
        let mut payload = vec![0xAA; 100];
        let old = payload.as_ptr();
        let encoded = RawEncoder::new().encode_last(&mut frame, &mut payload);
        assert_eq!(encoded.unwrap(), Encoded::Keyframe);
        assert_eq!(payload, (1..=12).collect::<Vec<u8>>());
        assert_eq!(payload.as_ptr(), rows, "swapped, not copied");
        assert_eq!(
            frame.pixels.as_ptr(),
            old,
            "the frame gets the payload's buffer"
        );
        assert_eq!((frame.width, frame.height, frame.pixels.len()), (2, 2, 12));

        // Rows with padding are packed by a copy; the frame keeps its pixels.
        frame.stride = 7;
        frame.pixels = vec![1, 2, 3, 4, 5, 6, 0xEE, 7, 8, 9, 10, 11, 12, 0xEE];
        RawEncoder::new()
            .encode_last(&mut frame, &mut payload)
            .unwrap();
        assert_eq!(payload, (1..=12).collect::<Vec<u8>>());
        assert_eq!(frame.pixels.len(), 14);
    }

    #[test]
    fn decode_reuses_the_frame_allocation() {
        let mut dec = RawDecoder::new(info(8, 8, PixelFormat::Rgba8));
        let payload = vec![7; 8 * 8 * 4];
        let mut out = Frame::new(16, 16, PixelFormat::Rgba8);
        let ptr = out.pixels.as_ptr();
        dec.decode(&payload, &mut out).unwrap();
        assert_eq!(out.pixels.as_ptr(), ptr);
        assert_eq!(out.pixels, payload);
    }

    #[test]
    fn decode_vec_swaps_the_payload_in_and_hands_the_old_pixels_back() {
        let mut dec = RawDecoder::new(info(4, 2, PixelFormat::Rgb8));
        let mut out = Frame::new(4, 2, PixelFormat::Rgb8);
        let old_pixels = out.pixels.as_ptr();
        let mut payload: Vec<u8> = (0..24).collect();
        let payload_ptr = payload.as_ptr();
        dec.decode_vec(&mut payload, &mut out).unwrap();
        assert_eq!(out.pixels, (0..24).collect::<Vec<u8>>());
        assert_eq!((out.width, out.height, out.stride), (4, 2, 12));
        assert_eq!(out.pixels.as_ptr(), payload_ptr, "swapped, not copied");
        assert_eq!(payload.as_ptr(), old_pixels, "the old buffer comes back");

        // A wrong length leaves both as they were.
        let mut short = vec![9u8; 23];
        let err = dec.decode_vec(&mut short, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::BadPayload { .. }), "{err:?}");
        assert_eq!(short, vec![9u8; 23]);
        assert_eq!(out.pixels, (0..24).collect::<Vec<u8>>());
    }

    #[test]
    fn wrong_length_names_expected_and_got() {
        let mut dec = RawDecoder::new(info(4, 2, PixelFormat::Rgba8));
        let mut out = Frame::empty(PixelFormat::Rgba8);
        for len in [0, 31, 33] {
            let err = dec.decode(&vec![0; len], &mut out).unwrap_err();
            assert!(matches!(err, CodecError::BadPayload { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "bad raw payload of {len} bytes: expected 32 bytes for a 4x2 rgba8 frame, got {len}"
                )
            );
        }
    }
}
