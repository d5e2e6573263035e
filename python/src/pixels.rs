//! Arrays and framewire's frames: a numpy array (H×W×3 BGR as OpenCV gives it, H×W×3 RGB, or
//! H×W grey) copied into a frame of its own byte order (a BGR array into a bgr8 frame, with no
//! channel swap), and a frame written into the memory an array then owns, each in one pass
//! (converted only when the frame's order is not the array's); and JPEG to and from arrays,
//! for the imagezmq shim.

use std::str::FromStr;

use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{error, value_error};

/// The pixel layout of the arrays a program hands in and gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
    /// H×W×3, blue green red: OpenCV's.
    Bgr,
    /// H×W×3, red green blue.
    Rgb,
    /// H×W, one byte of luma.
    Gray,
}

impl Color {
    /// The pixel format of the frames an array of this colour becomes: its own byte order (a
    /// grey array is spread over the three channels of an RGB frame).
    pub(crate) fn format(self) -> PixelFormat {
        match self {
            Color::Bgr => PixelFormat::Bgr8,
            Color::Rgb | Color::Gray => PixelFormat::Rgb8,
        }
    }
}

impl FromStr for Color {
    type Err = PyErr;

    fn from_str(s: &str) -> PyResult<Color> {
        match s.to_ascii_lowercase().as_str() {
            "bgr" => Ok(Color::Bgr),
            "rgb" => Ok(Color::Rgb),
            "gray" | "grey" => Ok(Color::Gray),
            _ => Err(value_error(format!(
                "color: expected \"bgr\", \"rgb\" or \"gray\", got {s:?}"
            ))),
        }
    }
}

/// An array handed in, checked: its size, and its bytes (row after row) if it is contiguous.
pub(crate) struct Incoming<'py> {
    array: PyReadonlyArrayDyn<'py, u8>,
    pub(crate) size: (u32, u32),
    color: Color,
}

impl<'py> Incoming<'py> {
    /// Checks `frame`: a uint8 array H×W×3 (`color` BGR or RGB) or H×W (grey), 1 to 16384 a
    /// side. The error says what was handed in instead.
    pub(crate) fn check(frame: &Bound<'py, PyAny>, color: Color) -> PyResult<Incoming<'py>> {
        let array: PyReadonlyArrayDyn<'py, u8> = frame.extract().map_err(|_| {
            let what = describe(frame);
            value_error(format!(
                "frame: expected a numpy array of uint8, H×W×3 (as OpenCV gives) or H×W, got {what}"
            ))
        })?;
        let shape = array.shape().to_vec();
        let (h, w) = match (shape.as_slice(), color) {
            ([h, w, 3], Color::Bgr | Color::Rgb) => (*h, *w),
            ([h, w], Color::Gray) => (*h, *w),
            (other, Color::Gray) => {
                return Err(value_error(format!(
                    "frame: a grey frame is H×W, got shape {other:?}"
                )));
            }
            (other, _) => {
                return Err(value_error(format!(
                    "frame: expected shape (height, width, 3), got {other:?} (a grey frame needs \
                     color=\"gray\")"
                )));
            }
        };
        if !(1..=16384).contains(&h) || !(1..=16384).contains(&w) {
            return Err(value_error(format!(
                "frame: {w}x{h} is outside 1x1..=16384x16384"
            )));
        }
        Ok(Incoming {
            array,
            size: (w as u32, h as u32),
            color,
        })
    }

    /// Writes the frame into `dst` (width × height × 3 bytes) in its colour's
    /// [`format`](Color::format).
    pub(crate) fn fill(&self, dst: &mut [u8]) {
        match self.array.as_slice() {
            Ok(bytes) => fill_pixels(bytes, self.color, dst),
            Err(_) => {
                // Not contiguous (a slice of a larger array): one pass in the array's order.
                let view = self.array.as_array();
                let step = if self.color == Color::Gray { 1 } else { 3 };
                let bytes: Vec<u8> = view.iter().copied().collect();
                debug_assert_eq!(bytes.len(), dst.len() / 3 * step);
                fill_pixels(&bytes, self.color, dst);
            }
        }
    }

    /// The contiguous bytes, if the array is contiguous: what [`fill`](Self::fill) reads with
    /// the GIL released.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.array.as_slice().ok()
    }

    /// The colour it is in.
    pub(crate) fn color(&self) -> Color {
        self.color
    }
}

/// What a Python value is, for an error.
fn describe(value: &Bound<'_, PyAny>) -> String {
    let kind = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let dtype = value
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_default();
    if dtype.is_empty() {
        kind
    } else {
        format!("{kind} of {dtype}")
    }
}

/// `src` in `color` (packed rows) into `dst` in the colour's [`format`](Color::format): a
/// plain copy, or a grey value spread over three channels.
pub(crate) fn fill_pixels(src: &[u8], color: Color, dst: &mut [u8]) {
    match color {
        Color::Rgb | Color::Bgr => dst.copy_from_slice(src),
        Color::Gray => {
            for (o, &y) in dst.chunks_exact_mut(3).zip(src) {
                o.fill(y);
            }
        }
    }
}

/// A frame (rgb8, bgr8 or rgba8) as the bytes an array of `color` will own, and its shape:
/// H×W×3 or H×W. A packed frame in the array's own order gives its pixels away (the frame is
/// left empty); one with padded rows is copied row by row; any other is converted (the
/// channel swaps are yuv's, with SIMD picked at run time).
pub(crate) fn take_frame(frame: &mut Frame, color: Color) -> (Vec<u8>, [usize; 3]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let whole = frame.is_packed() && frame.pixels.len() >= w * h * 3;
    if color != Color::Gray && frame.format == color.format() && whole {
        let mut pixels = std::mem::take(&mut frame.pixels);
        pixels.truncate(w * h * 3);
        return (pixels, [h, w, 3]);
    }
    from_frame(frame, color)
}

/// [`take_frame`] for a frame that stays as it is: its pixels copied or converted.
pub(crate) fn from_frame(frame: &Frame, color: Color) -> (Vec<u8>, [usize; 3]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = if color == Color::Gray { 1 } else { 3 };
    let row_out = w * channels;
    let mut out = Vec::with_capacity(w * h * channels);
    if color != Color::Gray && frame.format == color.format() {
        // Nothing to convert: straight from the frame's rows.
        for y in 0..frame.height {
            out.extend_from_slice(frame.row(y));
        }
        return (out, [h, w, channels]);
    }
    // Converted a band of rows at a time into a buffer that stays in the cache, then appended:
    // the array's memory is written once (a zeroed vector would be written twice, as the
    // allocator hands large blocks back from its heap, not as fresh pages).
    let band = (BAND_BYTES / row_out.max(1)).max(1);
    let mut scratch = vec![0u8; band.min(h) * row_out];
    let (stride, width) = (frame.stride as u32, frame.width);
    let mut y = 0;
    while y < h {
        let rows = band.min(h - y);
        let dst = &mut scratch[..rows * row_out];
        let src = &frame.pixels[y * frame.stride..];
        let (to, n) = (row_out as u32, rows as u32);
        let swapped = match (frame.format, color) {
            (_, Color::Gray) => {
                luma(frame, y, dst, row_out);
                Ok(())
            }
            (PixelFormat::Rgba8, Color::Rgb) => yuv::rgba_to_rgb(src, stride, dst, to, width, n),
            (PixelFormat::Rgba8, _) => yuv::rgba_to_bgr(src, stride, dst, to, width, n),
            // rgb8 to BGR, bgr8 to RGB: the same swap of the first and third bytes.
            _ => yuv::rgb_to_bgr(src, stride, dst, to, width, n),
        };
        swapped.expect("a frame's rows fit its stride");
        out.extend_from_slice(dst);
        y += rows;
    }
    (out, [h, w, channels])
}

/// BT.601 luma (as OpenCV's cvtColor) of the frame's rows from `top`, into `dst`'s rows of
/// `row_out` bytes.
fn luma(frame: &Frame, top: usize, dst: &mut [u8], row_out: usize) {
    let bpp = frame.format.bytes_per_pixel();
    let [r, g, b] = frame.format.rgb_offsets();
    for (i, d) in dst.chunks_exact_mut(row_out).enumerate() {
        let row = frame.row((top + i) as u32);
        for (o, p) in d.iter_mut().zip(row.chunks_exact(bpp)) {
            let y = 77 * u32::from(p[r]) + 150 * u32::from(p[g]) + 29 * u32::from(p[b]);
            *o = ((y + 128) >> 8) as u8;
        }
    }
}

/// How much of a frame [`from_frame`] converts at a time: well inside a core's L2 cache.
const BAND_BYTES: usize = 64 * 1024;

/// Bytes of `shape` as a numpy array that owns them (no copy).
pub(crate) fn to_array(py: Python<'_>, bytes: Vec<u8>, shape: [usize; 3]) -> Py<PyAny> {
    let [h, w, c] = shape;
    if c == 1 {
        let array = Array2::from_shape_vec((h, w), bytes).expect("shape matches the bytes");
        array.into_pyarray(py).into_any().unbind()
    } else {
        let array = Array3::from_shape_vec((h, w, c), bytes).expect("shape matches the bytes");
        array.into_pyarray(py).into_any().unbind()
    }
}

/// Encodes a frame (H×W×3 BGR, or `color`) as a JPEG of `quality` (1-100) with framewire's
/// encoder, as `cv2.imencode(".jpg", frame)[1]` or simplejpeg would; returns its bytes.
#[pyfunction]
#[pyo3(signature = (frame, quality = 90, color = "bgr"))]
pub fn encode_jpeg(
    py: Python<'_>,
    frame: &Bound<'_, PyAny>,
    quality: u8,
    color: &str,
) -> PyResult<Py<PyBytes>> {
    let color: Color = color.parse()?;
    let incoming = Incoming::check(frame, color)?;
    let (w, h) = incoming.size;
    let mut pixels = Frame::new(w, h, color.format());
    incoming.fill(&mut pixels.pixels);
    let options = framewire_codec::EncodeOptions {
        quality,
        ..Default::default()
    };
    let mut encoder = framewire_codec::encoder(CodecKind::Jpeg, &options).map_err(value_error)?;
    let mut out = Vec::new();
    py.detach(|| encoder.encode(&pixels, &mut out))
        .map_err(|e| error(framewire_session::chain(&e)))?;
    Ok(PyBytes::new(py, &out).unbind())
}

/// Decodes a JPEG into an array (H×W×3 BGR, or `color`), as `cv2.imdecode` or simplejpeg would.
#[pyfunction]
#[pyo3(signature = (data, color = "bgr"))]
pub fn decode_jpeg(py: Python<'_>, data: &[u8], color: &str) -> PyResult<Py<PyAny>> {
    let color: Color = color.parse()?;
    let decoded = py.detach(|| {
        let info = framewire_capture::convert::scan_jpeg(data).map_err(|e| e.to_string())?;
        let stream = StreamInfo {
            codec: CodecKind::Jpeg,
            width: info.width,
            height: info.height,
            format: PixelFormat::Rgb8,
        };
        let mut decoder = framewire_codec::decoder(&stream);
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        decoder
            .decode(data, &mut frame)
            .map_err(|e| framewire_session::chain(&e))?;
        Ok::<_, String>(from_frame(&frame, color))
    });
    let (bytes, shape) = decoded.map_err(|e| error(format!("decode_jpeg: {e}")))?;
    Ok(to_array(py, bytes, shape))
}
