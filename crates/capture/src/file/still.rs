//! A still image (PNG or JPEG) as a source: decoded once, then handed out again at `--fps` (30
//! by default) until the stream stops.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use framewire_core::{
    CaptureError, Frame, FrameSource, MAX_SIDE, PixelFormat, SourceInfo, now_micros,
};
use framewire_pattern::Pacer;

use super::{DEFAULT_FPS, SourceOptions, label, open, open_error};

/// The largest image file read, and what its decoding may allocate.
const MAX_BYTES: usize = 256 << 20;

/// One picture, repeated.
pub struct StillSource {
    path: PathBuf,
    image: Frame,
    fps: f64,
    pacer: Pacer,
    seq: u64,
}

impl StillSource {
    /// Opens and decodes `path`.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<StillSource, CaptureError> {
        let mut bytes = Vec::new();
        open(path)?
            .take(MAX_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| open_error(path, e.to_string()))?;
        if bytes.len() > MAX_BYTES {
            return Err(open_error(
                path,
                format!("byte {MAX_BYTES}: an image file larger than {MAX_BYTES} bytes"),
            ));
        }
        let image = if bytes.starts_with(b"\x89PNG") {
            decode_png(&bytes)
        } else {
            let mut frame = Frame::empty(PixelFormat::Rgb8);
            crate::convert::mjpeg_to_rgb(&bytes, &mut frame, &mut Vec::new())
                .map(|_| frame)
                .map_err(|e| e.to_string())
        }
        .map_err(|e| open_error(path, e))?;
        let fps = options.fps.unwrap_or(DEFAULT_FPS);
        Ok(StillSource {
            path: path.to_path_buf(),
            image,
            fps,
            pacer: Pacer::new(fps),
            seq: 0,
        })
    }
}

/// Decodes a PNG into RGB (or RGBA where it has alpha), 8 bits a sample.
fn decode_png(bytes: &[u8]) -> Result<Frame, String> {
    let limits = png::Limits { bytes: MAX_BYTES };
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let fail = |e: png::DecodingError| format!("PNG: {e}");
    let mut reader = decoder.read_info().map_err(fail)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "PNG of {width}x{height}; sides are 1 to {MAX_SIDE}"
        ));
    }
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = vec![0; size];
    let out = reader.next_frame(&mut buf).map_err(fail)?;
    let (color, _) = reader.output_color_type();
    let (format, from): (PixelFormat, usize) = match color {
        png::ColorType::Rgb => (PixelFormat::Rgb8, 3),
        png::ColorType::Rgba => (PixelFormat::Rgba8, 4),
        png::ColorType::Grayscale => (PixelFormat::Rgb8, 1),
        png::ColorType::GrayscaleAlpha => (PixelFormat::Rgba8, 2),
        png::ColorType::Indexed => return Err("PNG palette was not expanded".into()),
    };
    let mut frame = Frame::new(width, height, format);
    for y in 0..height as usize {
        let src = &buf[y * out.line_size..][..width as usize * from];
        let row_bytes = frame.row_bytes();
        let dst = &mut frame.pixels[y * row_bytes..][..row_bytes];
        match from {
            3 | 4 => dst.copy_from_slice(src),
            1 => {
                for (d, &g) in dst.chunks_exact_mut(3).zip(src) {
                    d.fill(g);
                }
            }
            _ => {
                for (d, ga) in dst.chunks_exact_mut(4).zip(src.chunks_exact(2)) {
                    d.copy_from_slice(&[ga[0], ga[0], ga[0], ga[1]]);
                }
            }
        }
    }
    Ok(frame)
}

impl FrameSource for StillSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: label(&self.path),
            width: self.image.width,
            height: self.image.height,
            format: self.image.format,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        let wait = self.pacer.wait(self.seq, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let image = &self.image;
        dst.reset(image.width, image.height, image.format);
        dst.pixels.copy_from_slice(&image.pixels);
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }
}
