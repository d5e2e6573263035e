//! framewire's frame sinks: where decoded frames end up.
//!
//! - [`Renderer`] (wgpu) draws a frame, letterboxed, into any texture view; it knows no window.
//! - [`HeadlessRenderer`] draws into an offscreen texture and reads back RGBA bytes (tests,
//!   benches, `framewire view --snapshot`).
//! - [`window`] opens a winit window that shows the newest frame a producer thread hands it.
//! - [`write_png`] saves a frame, [`write_snapshot`] as a window would draw it; [`PngSnapshot`] is a [`FrameSink`] that writes the newest frame at the end.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use framewire_core::{Flow, Frame, FrameSink, PixelFormat, SinkError};

mod gpu;
mod headless;
mod renderer;
pub mod window;

pub use gpu::{DisplayError, Gpu, hardware_required};
pub use headless::HeadlessRenderer;
pub use renderer::{Renderer, inset_area, letterbox};
/// The wgpu this crate draws with, so that callers use the same version.
pub use wgpu;

/// Why a snapshot was not written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The renderer failed.
    #[error("rendering the snapshot")]
    Render(#[source] DisplayError),
    /// The PNG could not be written.
    #[error(transparent)]
    Write(#[from] SinkError),
}

/// Writes `frame` to `path` as a window would draw it: through the headless renderer at the
/// frame's own size. Without a GPU adapter it writes the decoded frame as it is (the same
/// pixels: the renderer draws a frame at its own size exactly) and says so in the log.
pub fn write_snapshot(path: &Path, frame: &Frame) -> Result<(), SnapshotError> {
    match HeadlessRenderer::new() {
        Ok(mut renderer) => {
            let mut rendered = Frame::empty(PixelFormat::Rgba8);
            renderer
                .render(frame, frame.width, frame.height, &mut rendered)
                .map_err(SnapshotError::Render)?;
            write_png(path, &rendered)?;
        }
        Err(e @ DisplayError::NoAdapter { .. }) => {
            tracing::info!("{e}; writing the decoded frame without rendering it");
            write_png(path, frame)?;
        }
        Err(e) => return Err(SnapshotError::Render(e)),
    }
    Ok(())
}

/// Writes `frame` to `path` as an 8-bit PNG (RGB or RGBA, as the frame is; a BGR frame as RGB).
pub fn write_png(path: &Path, frame: &Frame) -> Result<(), SinkError> {
    let backend = |context: &str, e: png::EncodingError| SinkError::Backend {
        context: format!("{context} {}", path.display()),
        source: Box::new(e),
    };
    frame.validate().map_err(|reason| SinkError::Backend {
        context: format!("cannot write {}: invalid frame", path.display()),
        source: reason.into(),
    })?;
    if frame.width == 0 || frame.height == 0 {
        return Err(SinkError::Backend {
            context: format!("cannot write {}", path.display()),
            source: "no frame was received".into(),
        });
    }
    let file = File::create(path).map_err(|source| SinkError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), frame.width, frame.height);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_color(match frame.format {
        PixelFormat::Rgba8 => png::ColorType::Rgba,
        _ => png::ColorType::Rgb,
    });
    let mut writer = encoder
        .write_header()
        .map_err(|e| backend("writing the PNG header of", e))?;
    let mut stream = writer.stream_writer().map_err(|e| backend("writing", e))?;
    let mut swapped = Vec::new();
    for y in 0..frame.height {
        let row = if frame.format == PixelFormat::Bgr8 {
            swapped.clear();
            frame.extend_rgb_row(y, &mut swapped);
            &swapped[..]
        } else {
            frame.row(y)
        };
        std::io::Write::write_all(&mut stream, row).map_err(|source| SinkError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    stream.finish().map_err(|e| backend("finishing", e))?;
    Ok(())
}

/// A sink that keeps the newest frame and writes it as a PNG when the stream ends.
#[derive(Debug)]
pub struct PngSnapshot {
    path: PathBuf,
    last: Option<Frame>,
}

impl PngSnapshot {
    /// A snapshot sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> PngSnapshot {
        PngSnapshot {
            path: path.into(),
            last: None,
        }
    }
}

impl FrameSink for PngSnapshot {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        match &mut self.last {
            Some(last) => last.clone_from(frame),
            None => self.last = Some(frame.clone()),
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        match &self.last {
            Some(frame) => write_png(&self.path, frame),
            None => Err(SinkError::Backend {
                context: format!("cannot write {}", self.path.display()),
                source: "no frame was received".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_png(path: &Path) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn png_round_trips_every_format_with_padded_rows() {
        let dir = tempfile::tempdir().unwrap();
        for format in PixelFormat::ALL {
            let mut frame = Frame::new(5, 3, format);
            for (i, b) in frame.pixels.iter_mut().enumerate() {
                *b = (i * 7) as u8;
            }
            let packed = frame.pixels.clone();
            // A PNG holds RGB: a BGR frame's bytes come back in that order.
            let want: Vec<u8> = if format == PixelFormat::Bgr8 {
                packed
                    .chunks_exact(3)
                    .flat_map(|p| [p[2], p[1], p[0]])
                    .collect()
            } else {
                packed.clone()
            };
            // The same pixels with 3 bytes of padding per row must give the same file.
            let row = frame.row_bytes();
            let mut padded = frame.clone();
            padded.stride = row + 3;
            padded.pixels = packed
                .chunks(row)
                .flat_map(|r| r.iter().copied().chain([9, 9, 9]))
                .collect();
            for f in [&frame, &padded] {
                let path = dir.path().join(format!("{format}.png"));
                write_png(&path, f).unwrap();
                let (info, pixels) = read_png(&path);
                assert_eq!((info.width, info.height), (5, 3));
                assert_eq!(pixels, want, "{format}");
            }
        }
    }

    #[test]
    fn snapshot_keeps_the_newest_frame_and_says_when_there_was_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.png");
        let mut sink = PngSnapshot::new(&path);
        let err = sink.finish().unwrap_err().to_string();
        assert!(err.starts_with("cannot write"), "{err}");
        for v in [10u8, 200] {
            let mut f = Frame::new(2, 2, PixelFormat::Rgb8);
            f.pixels.fill(v);
            assert_eq!(sink.show(&f).unwrap(), Flow::Continue);
        }
        sink.finish().unwrap();
        assert_eq!(read_png(&path).1, vec![200; 12]);
    }

    #[test]
    fn unwritable_path_is_named() {
        let f = Frame::new(2, 2, PixelFormat::Rgb8);
        let err = write_png(Path::new("/nonexistent-dir/x.png"), &f).unwrap_err();
        assert_eq!(err.to_string(), "cannot write /nonexistent-dir/x.png");
    }
}
