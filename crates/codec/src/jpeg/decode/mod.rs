//! Baseline JPEG decoder that keeps its buffers between images.
//!
//! Decodes sequential Huffman-coded 8-bit JPEGs (SOF0 and SOF1) with one
//! interleaved scan: grayscale (1 component) or YCbCr / Adobe RGB
//! (3 components) with sampling factors of 1 or 2 (4:4:4, 4:2:2, 4:2:0,
//! 4:4:0), restart markers, and the ITU T.81 Annex K Huffman tables when an
//! image carries no DHT segment (webcam MJPEG). Output is packed RGB8.
//!
//! Refused as [`DecodeError::Unsupported`] (so the caller can fall back to a
//! more complete decoder): progressive, lossless, hierarchical and
//! arithmetic-coded frames, 12-bit precision, 2 or 4 (CMYK) components,
//! sampling factors above 2, several scans, and a height given by a DNL
//! marker. Malformed or truncated input is [`DecodeError::Invalid`]; the
//! decoder never panics on any input bytes and checks the frame size
//! against the caller's [`Limits`] before sizing any buffer.
//!
//! [`BaselineDecoder`] keeps its Huffman lookup tables, quantisation tables,
//! component planes and row buffers between calls: decoding another image
//! with the same size, component count and sampling factors performs no heap
//! allocation (only errors allocate their message).
//!
//! The layers, in the order the bytes go through them: `markers.rs` parses
//! the segments up to the scan (SOI, SOF, DHT, DQT, DRI, Adobe APP14, SOS)
//! into a `FrameInfo` and the decoder's tables; `entropy.rs` builds the
//! Huffman lookup tables and reads the entropy-coded data block by block;
//! `idct.rs` dequantises and inverse-transforms each block into its component
//! plane; `color.rs` upsamples chroma and converts rows to RGB. This file
//! holds the types they share, sizes the buffers and drives the MCU loop.
//! That loop is compiled twice, for AVX2 (picked at run time) and for the
//! target's baseline, so everything it calls per block is
//! `#[inline(always)]`.

use std::fmt;

use super::tables::{AAN_SCALE, ZIGZAG};

mod color;
mod entropy;
mod idct;
mod markers;
#[cfg(test)]
mod tests;

use entropy::{BitReader, HuffTable, decode_block};
use idct::idct_block;

/// Largest size the caller accepts, checked before anything is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
}

/// Why an image could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// A valid JPEG this decoder does not handle (progressive, arithmetic,
    /// 12-bit, CMYK, unusual sampling, several scans ...): the caller may try
    /// another decoder.
    Unsupported(String),
    /// Not a decodable JPEG: names what is wrong and the byte offset where it
    /// was found.
    Invalid {
        /// Byte offset in the input where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The header's size is above the limits.
    TooLarge {
        /// Width given by the frame header.
        width: u32,
        /// Height given by the frame header.
        height: u32,
        /// The limits that were exceeded.
        limits: Limits,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported(reason) => write!(f, "unsupported JPEG: {reason}"),
            DecodeError::Invalid { offset, reason } => write!(f, "at byte {offset}: {reason}"),
            DecodeError::TooLarge {
                width,
                height,
                limits,
            } => write!(
                f,
                "image {width}x{height} exceeds the limit of {}x{}",
                limits.max_width, limits.max_height
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

fn invalid(offset: usize, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        offset,
        reason: reason.into(),
    }
}

fn unsupported(reason: impl Into<String>) -> DecodeError {
    DecodeError::Unsupported(reason.into())
}

/// Frame size and component count of a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of colour components (1 or 3).
    pub components: u8,
}

// ---------------------------------------------------------------------------
// Decoder state
// ---------------------------------------------------------------------------

/// One component: its id, sampling factors and table ids.
#[derive(Debug, Default, Clone, Copy)]
struct CompInfo {
    id: u8,
    h: u8,
    v: u8,
    tq: u8,
    td: u8,
    ta: u8,
}

/// What the markers up to SOS say about the image: the frame header (SOF),
/// the scan's component order and tables, the restart interval (DRI) and the
/// Adobe colour transform. Named so as not to shadow framewire-core's `Frame`.
#[derive(Debug, Default, Clone, Copy)]
struct FrameInfo {
    width: u32,
    height: u32,
    ncomp: usize,
    comps: [CompInfo; 3],
    /// Frame component index of each scan component, in scan order.
    scan_order: [usize; 3],
    hmax: u8,
    vmax: u8,
    restart_interval: u16,
    adobe_transform: Option<u8>,
    /// Offset of the first entropy-coded byte.
    scan_start: usize,
}

/// Layout of one component's plane and how it is upsampled.
#[derive(Debug, Default, Clone, Copy)]
struct Geo {
    h: usize,
    v: usize,
    /// Plane row length in bytes (blocks per row * 8).
    stride: usize,
    /// Upsampling factor horizontally / vertically (1 or 2).
    sx: usize,
    sy: usize,
    /// Meaningful width / height of the component (ceil(W*h/hmax) ...).
    cw: usize,
    ch: usize,
}

/// Per-component buffers kept between images.
#[derive(Debug, Default)]
struct CompBuf {
    plane: Vec<u8>,
    row: Vec<u8>,
    colsum: Vec<u16>,
}

/// Resizes `v` to `n` elements, reporting allocation failure as an error.
fn size_vec<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> Result<(), DecodeError> {
    if v.len() != n {
        if n > v.len() {
            v.try_reserve_exact(n - v.len())
                .map_err(|_| invalid(0, "cannot allocate image buffers"))?;
        }
        v.resize(n, T::default());
    }
    Ok(())
}

/// A quantisation table in zigzag order.
#[derive(Debug, Clone, Copy)]
struct QTable([u16; 64]);

impl Default for QTable {
    fn default() -> Self {
        QTable([0; 64])
    }
}

/// Baseline JPEG decoder. Keeps Huffman tables' lookup arrays, quantisation
/// tables, component planes and row buffers between calls.
#[derive(Debug, Default)]
pub struct BaselineDecoder {
    qt: [QTable; 4],
    qt_defined: [bool; 4],
    dc: [HuffTable; 4],
    ac: [HuffTable; 4],
    bufs: [CompBuf; 3],
}

impl BaselineDecoder {
    /// Creates a decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses markers up to and including SOS (no pixel decoding); returns
    /// the frame size. Errors as for [`BaselineDecoder::decode_rgb`].
    pub fn read_header(&mut self, data: &[u8], limits: Limits) -> Result<Header, DecodeError> {
        let frame = self.parse(data, limits)?;
        Ok(Header {
            width: frame.width,
            height: frame.height,
            components: frame.ncomp as u8,
        })
    }

    /// Decodes the whole image into `out` as packed RGB8; `out.len()` must be
    /// exactly `width * height * 3`. Does not depend on
    /// [`BaselineDecoder::read_header`] having been called.
    pub fn decode_rgb(
        &mut self,
        data: &[u8],
        limits: Limits,
        out: &mut [u8],
    ) -> Result<Header, DecodeError> {
        let frame = self.parse(data, limits)?;
        let width = frame.width as usize;
        let height = frame.height as usize;
        let expected = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| invalid(0, "image size overflows usize"))?;
        if out.len() != expected {
            return Err(invalid(
                0,
                format!(
                    "output buffer is {} bytes, {width}x{height} RGB needs {expected}",
                    out.len()
                ),
            ));
        }
        self.decode_frame(data, &frame, out)?;
        Ok(Header {
            width: frame.width,
            height: frame.height,
            components: frame.ncomp as u8,
        })
    }

    /// [`BaselineDecoder::decode_rgb`] through the baseline build only, so that a test can
    /// check the AVX2 build against it. `out` must have the image's size.
    #[cfg(test)]
    pub(crate) fn decode_rgb_generic(
        &mut self,
        data: &[u8],
        limits: Limits,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let frame = self.parse(data, limits)?;
        self.decode_frame_generic(data, &frame, out)
    }

    /// Sizes the buffers, decodes the scan and converts to RGB: compiled for AVX2 where the
    /// CPU has it (the same code and float operations, so the same pixels), else for the
    /// target's baseline.
    fn decode_frame(
        &mut self,
        data: &[u8],
        f: &FrameInfo,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, checked just above; that is all the function requires.
            return unsafe { self.decode_frame_avx2(data, f, out) };
        }
        self.decode_frame_generic(data, f, out)
    }

    /// [`BaselineDecoder::decode_frame`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn decode_frame_avx2(
        &mut self,
        data: &[u8],
        f: &FrameInfo,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        self.decode_frame_generic(data, f, out)
    }

    /// The decoder itself, inlined into [`BaselineDecoder::decode_frame`]'s variants.
    #[inline(always)]
    fn decode_frame_generic(
        &mut self,
        data: &[u8],
        f: &FrameInfo,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let width = f.width as usize;
        let height = f.height as usize;
        let (hmax, vmax) = (usize::from(f.hmax), usize::from(f.vmax));
        let mcux = width.div_ceil(8 * hmax);
        let mcuy = height.div_ceil(8 * vmax);
        let too_big = || invalid(0, "image buffers overflow usize");

        let mut geo = [Geo::default(); 3];
        let mut qtf = [[0.0f32; 64]; 3];
        for ci in 0..f.ncomp {
            let c = &f.comps[ci];
            let (h, v) = (usize::from(c.h), usize::from(c.v));
            let stride = mcux.checked_mul(h * 8).ok_or_else(too_big)?;
            let rows = mcuy.checked_mul(v * 8).ok_or_else(too_big)?;
            let g = Geo {
                h,
                v,
                stride,
                sx: hmax / h,
                sy: vmax / v,
                cw: (width * h).div_ceil(hmax),
                ch: (height * v).div_ceil(vmax),
            };
            geo[ci] = g;
            let plane_len = stride.checked_mul(rows).ok_or_else(too_big)?;
            let buf = &mut self.bufs[ci];
            size_vec(&mut buf.plane, plane_len)?;
            size_vec(&mut buf.row, 2 * g.cw.max(width))?;
            size_vec(&mut buf.colsum, g.cw + 2)?;

            let q = &self.qt[usize::from(c.tq)].0;
            for (k, &qv) in q.iter().enumerate() {
                let n = ZIGZAG[k];
                let (row, col) = (n / 8, n % 8);
                qtf[ci][col * 8 + row] = f32::from(qv) * AAN_SCALE[row] * AAN_SCALE[col] / 8.0;
            }
        }

        let mut rd = BitReader::new(data, f.scan_start);
        let mut pred = [0i32; 3];
        let mut blk = [0i32; 64];
        let ri = usize::from(f.restart_interval);
        let mut left_in_interval = ri;
        let mut next_rst = 0u8;
        let mut converted = 0usize;

        for my in 0..mcuy {
            for mx in 0..mcux {
                if ri != 0 {
                    if left_in_interval == 0 {
                        rd.restart(next_rst).map_err(|r| invalid(rd.pos, r))?;
                        next_rst = (next_rst + 1) & 7;
                        pred = [0; 3];
                        left_in_interval = ri;
                    }
                    left_in_interval -= 1;
                }
                for &ci in &f.scan_order[..f.ncomp] {
                    let g = &geo[ci];
                    let c = &f.comps[ci];
                    let dc = &self.dc[usize::from(c.td)];
                    let ac = &self.ac[usize::from(c.ta)];
                    let plane = &mut self.bufs[ci].plane;
                    for by in 0..g.v {
                        for bx in 0..g.h {
                            let last = decode_block(&mut rd, dc, ac, &mut pred[ci], &mut blk)
                                .map_err(|r| invalid(rd.pos, r))?;
                            let off = (my * g.v + by) * 8 * g.stride + (mx * g.h + bx) * 8;
                            if let Some(dst) = plane.get_mut(off..) {
                                idct_block(&blk, &qtf[ci], last, dst, g.stride);
                            }
                            if last == 0 {
                                blk[0] = 0;
                            } else {
                                blk = [0; 64];
                            }
                        }
                    }
                }
                if rd.overrun() {
                    return Err(invalid(rd.pos, "entropy data truncated"));
                }
            }
            // Convert the rows whose samples (and upsampling neighbours) are
            // now decoded.
            let ready = if my + 1 == mcuy {
                height
            } else {
                let mut r = height;
                for g in &geo[..f.ncomp] {
                    let avail = (my + 1) * g.v * 8;
                    let lim = if g.sy == 2 { 2 * avail - 2 } else { avail };
                    r = r.min(lim);
                }
                r
            };
            if ready > converted {
                self.convert_rows(f, &geo, converted, ready, out);
                converted = ready;
            }
        }
        Ok(())
    }
}
