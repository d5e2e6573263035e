//! Camera bytes to RGB frames: YUYV and NV12 through the `yuv` crate (BT.601, limited range,
//! as webcams send them), MJPEG through zune-jpeg, and MJPEG passthrough ([`mjpeg_passthrough`]):
//! the camera's JPEG as it is, cut from the driver's buffer. Pure functions over byte slices;
//! wrong, short or truncated bytes are errors, never panics.

use framewire_core::{Frame, MAX_SIDE, PixelFormat};
use yuv::{YuvBiPlanarImage, YuvConversionMode, YuvPackedImage, YuvRange, YuvStandardMatrix};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::negotiate::FourCc;

/// Camera bytes that cannot be turned into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Fewer bytes than a frame of this layout and size needs.
    #[error("{fourcc} {width}x{height} frame needs {need} bytes, got {got}")]
    Short {
        /// The layout.
        fourcc: FourCc,
        /// Width of the frame.
        width: u32,
        /// Height of the frame.
        height: u32,
        /// Bytes a frame needs.
        need: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A size this layout cannot have (odd sides for subsampled chroma, 0, above 16384).
    #[error("{fourcc} cannot be {width}x{height}: {reason}")]
    BadSize {
        /// The layout.
        fourcc: FourCc,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Why not.
        reason: &'static str,
    },
    /// The bytes are not a well-formed JPEG.
    #[error("bad JPEG at byte {at} of {len}: {reason}")]
    BadJpeg {
        /// Offset of the problem.
        at: usize,
        /// Length of the data.
        len: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The JPEG decoder refused the data.
    #[error("JPEG decoder: {0}")]
    Decode(String),
}

/// Converts one camera frame of `fourcc` layout and `width` x `height` in `src` into `dst` as
/// packed [`PixelFormat::Rgb8`]. `src` may be longer than a frame (driver buffers are); MJPEG
/// frames carry their own size, which must be `width` x `height`. `scratch` is reused for
/// MJPEG frames that need their Huffman tables added.
pub fn to_rgb(
    fourcc: FourCc,
    src: &[u8],
    width: u32,
    height: u32,
    dst: &mut Frame,
    scratch: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    match fourcc {
        FourCc::Yuyv => yuyv_to_rgb(src, width, height, dst),
        FourCc::Nv12 => nv12_to_rgb(src, width, height, dst),
        FourCc::Mjpeg => {
            let info = mjpeg_to_rgb(src, dst, scratch)?;
            if (info.width, info.height) != (width, height) {
                return Err(ConvertError::BadJpeg {
                    at: 0,
                    len: src.len(),
                    reason: "the JPEG's size is not the size the camera was set to",
                });
            }
            Ok(())
        }
    }
}

fn check_size(fourcc: FourCc, src: &[u8], width: u32, height: u32) -> Result<usize, ConvertError> {
    let bad = |reason| ConvertError::BadSize {
        fourcc,
        width,
        height,
        reason,
    };
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(bad("sides must be 1 to 16384"));
    }
    if !width.is_multiple_of(2) || (fourcc == FourCc::Nv12 && !height.is_multiple_of(2)) {
        return Err(bad(
            "chroma is shared by pixel pairs, so the sides must be even",
        ));
    }
    let need = fourcc.frame_bytes(width, height).unwrap_or(0);
    if src.len() < need {
        return Err(ConvertError::Short {
            fourcc,
            width,
            height,
            need,
            got: src.len(),
        });
    }
    Ok(need)
}

fn backend_error(e: yuv::YuvError) -> ConvertError {
    ConvertError::Decode(format!("yuv conversion: {e}"))
}

/// Converts a packed YUYV (4:2:2) frame into packed RGB in `dst`.
pub fn yuyv_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    dst: &mut Frame,
) -> Result<(), ConvertError> {
    let need = check_size(FourCc::Yuyv, src, width, height)?;
    dst.reset(width, height, PixelFormat::Rgb8);
    let image = YuvPackedImage {
        yuy: &src[..need],
        yuy_stride: width * 2,
        width,
        height,
    };
    yuv::yuyv422_to_rgb(
        &image,
        &mut dst.pixels,
        width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    )
    .map_err(backend_error)
}

/// Converts an NV12 (4:2:0, Y plane then interleaved UV plane) frame into packed RGB in `dst`.
pub fn nv12_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    dst: &mut Frame,
) -> Result<(), ConvertError> {
    let need = check_size(FourCc::Nv12, src, width, height)?;
    let luma = width as usize * height as usize;
    dst.reset(width, height, PixelFormat::Rgb8);
    let image = YuvBiPlanarImage {
        y_plane: &src[..luma],
        y_stride: width,
        uv_plane: &src[luma..need],
        uv_stride: width,
        width,
        height,
    };
    yuv::yuv_nv12_to_rgb(
        &image,
        &mut dst.pixels,
        width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(backend_error)
}

/// What [`scan_jpeg`] found in a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Bytes from the start marker to the end marker, both included.
    pub len: usize,
    /// Width from the frame header.
    pub width: u32,
    /// Height from the frame header.
    pub height: u32,
    /// Whether the JPEG carries Huffman tables (MJPEG may leave them out).
    pub has_huffman: bool,
    /// Offset of the first start-of-scan marker, where missing tables go.
    pub first_scan: usize,
}

/// Walks the markers of the JPEG at the start of `data` (which may go on with stale bytes, as a
/// V4L2 buffer does) and finds its size, its end and whether it has Huffman tables.
pub fn scan_jpeg(data: &[u8]) -> Result<JpegInfo, ConvertError> {
    let bad = |at: usize, reason| ConvertError::BadJpeg {
        at,
        len: data.len(),
        reason,
    };
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(bad(0, "no start-of-image marker"));
    }
    let mut size = None;
    let mut has_huffman = false;
    let mut first_scan = None;
    let mut pos = 2;
    loop {
        // A marker: 0xFF (possibly repeated as fill) and a code.
        if data.get(pos) != Some(&0xFF) {
            return Err(bad(pos, "expected a marker"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = data.get(pos) else {
            return Err(bad(pos, "truncated before the end-of-image marker"));
        };
        let marker_at = pos - 1;
        pos += 1;
        match code {
            0xD9 => return Err(bad(marker_at, "ends before any scan")),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len_bytes) = data.get(pos..pos + 2) else {
            return Err(bad(pos, "truncated in a segment length"));
        };
        let seg_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if seg_len < 2 || pos + seg_len > data.len() {
            return Err(bad(pos, "segment length runs past the data"));
        }
        let body = &data[pos + 2..pos + seg_len];
        pos += seg_len;
        match code {
            0xC4 => has_huffman = true,
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                if body.len() < 5 {
                    return Err(bad(marker_at, "frame header too short"));
                }
                let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
                let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
                if width == 0 || height == 0 {
                    return Err(bad(marker_at, "frame header has a zero side"));
                }
                size = Some((width, height));
            }
            0xDA => {
                first_scan.get_or_insert(marker_at);
                let Some((width, height)) = size else {
                    return Err(bad(marker_at, "scan before the frame header"));
                };
                // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart
                // marker, more 0xFF fill, or the next marker.
                loop {
                    let Some(off) = data[pos..].iter().position(|&b| b == 0xFF) else {
                        return Err(bad(data.len(), "truncated before the end-of-image marker"));
                    };
                    pos += off;
                    match data.get(pos + 1) {
                        None => return Err(bad(pos, "truncated before the end-of-image marker")),
                        Some(0x00 | 0xD0..=0xD7) => pos += 2,
                        Some(0xFF) => pos += 1,
                        Some(0xD9) => {
                            return Ok(JpegInfo {
                                len: pos + 2,
                                width,
                                height,
                                has_huffman,
                                first_scan: first_scan.unwrap_or(marker_at),
                            });
                        }
                        Some(_) => break,
                    }
                }
            }
            _ => {}
        }
    }
}

/// The standard Huffman tables (ITU T.81 K.3) as one DHT segment: what MJPEG frames without
/// tables are coded with (OpenDML), and what `ffmpeg -bsf:v mjpeg2jpeg` inserts.
const STANDARD_DHT: [u8; 420] = [
    0xFF, 0xC4, 0x01, 0xA2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A,
    0x0B, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x10, 0x00,
    0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7D, 0x01,
    0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24,
    0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8,
    0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6,
    0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3,
    0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9,
    0xFA, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01,
    0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
    0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
    0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19,
    0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46,
    0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66,
    0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85,
    0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3,
    0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
    0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
    0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6,
    0xF7, 0xF8, 0xF9, 0xFA,
];

/// Copies the JPEG at the start of `camera_bytes` into `dst`, ready to be a payload: the bytes
/// unchanged from the start marker to the end marker (what follows in a driver buffer is
/// dropped); when the camera left the Huffman tables out, as MJPEG may, the standard tables are
/// inserted before the scan so that any JPEG decoder reads it.
pub fn mjpeg_passthrough(camera_bytes: &[u8], dst: &mut Vec<u8>) -> Result<JpegInfo, ConvertError> {
    let info = scan_jpeg(camera_bytes)?;
    dst.clear();
    if info.has_huffman {
        dst.extend_from_slice(&camera_bytes[..info.len]);
    } else {
        dst.reserve(info.len + STANDARD_DHT.len());
        dst.extend_from_slice(&camera_bytes[..info.first_scan]);
        dst.extend_from_slice(&STANDARD_DHT);
        dst.extend_from_slice(&camera_bytes[info.first_scan..info.len]);
    }
    Ok(info)
}

/// Decodes the MJPEG frame at the start of `src` into `dst` as packed RGB; `scratch` holds the
/// frame with Huffman tables added when the camera left them out.
pub fn mjpeg_to_rgb(
    src: &[u8],
    dst: &mut Frame,
    scratch: &mut Vec<u8>,
) -> Result<JpegInfo, ConvertError> {
    let info = scan_jpeg(src)?;
    let jpeg = if info.has_huffman {
        &src[..info.len]
    } else {
        mjpeg_passthrough(src, scratch)?;
        &scratch[..]
    };
    if info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(ConvertError::BadSize {
            fourcc: FourCc::Mjpeg,
            width: info.width,
            height: info.height,
            reason: "sides must be 1 to 16384",
        });
    }
    // zune-jpeg may panic on hostile input (see crates/codec's JPEG decoder): contain it.
    framewire_core::contain_panic(|| decode_jpeg(jpeg, info, dst)).unwrap_or_else(|what| {
        Err(ConvertError::Decode(format!(
            "zune-jpeg panicked on this frame: {what}"
        )))
    })?;
    Ok(info)
}

fn decode_jpeg(jpeg: &[u8], info: JpegInfo, dst: &mut Frame) -> Result<(), ConvertError> {
    let options = DecoderOptions::default()
        .set_max_width(info.width as usize)
        .set_max_height(info.height as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let fail = |e: zune_jpeg::errors::DecodeErrors| ConvertError::Decode(e.to_string());
    decoder.decode_headers().map_err(fail)?;
    dst.reset(info.width, info.height, PixelFormat::Rgb8);
    if decoder.output_buffer_size() != Some(dst.pixels.len()) {
        return Err(ConvertError::Decode(format!(
            "decoder wants {:?} output bytes for a {}x{} rgb8 frame of {}",
            decoder.output_buffer_size(),
            info.width,
            info.height,
            dst.pixels.len()
        )));
    }
    decoder.decode_into(&mut dst.pixels).map_err(fail)
}
