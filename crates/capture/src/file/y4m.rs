//! A Y4M file as a source: each frame's planes (4:2:0, 4:2:2 or 4:4:4, BT.601 limited range,
//! as ffmpeg writes them) converted to RGB with the `yuv` crate.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use framewire_core::{CaptureError, Frame, FrameSource, PixelFormat, SourceInfo, now_micros};
use framewire_file::y4m::{Chroma, Header, Reader};
use framewire_pattern::Pacer;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

use super::{DEFAULT_FPS, SourceOptions, label, open, open_error, read_error};

/// Frames of a Y4M file, paced at its rate (or the one asked for).
pub struct Y4mSource {
    path: PathBuf,
    reader: Reader<BufReader<File>>,
    header: Header,
    fps: f64,
    looping: bool,
    pacer: Pacer,
    planes: Vec<u8>,
    /// The first frame, read at open, not yet handed out.
    pending: bool,
    seq: u64,
}

impl Y4mSource {
    /// Opens `path` and reads its first frame.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<Y4mSource, CaptureError> {
        let mut reader = Reader::new(open(path)?).map_err(|e| open_error(path, e.to_string()))?;
        let header = reader.header();
        let mut planes = Vec::new();
        match reader.next_frame(&mut planes) {
            Ok(true) => {}
            Ok(false) => {
                return Err(open_error(
                    path,
                    format!("byte {}: no frames after the header", reader.position()),
                ));
            }
            Err(e) => return Err(open_error(path, e.to_string())),
        }
        let fps = options.fps.unwrap_or(header.fps.unwrap_or(DEFAULT_FPS));
        Ok(Y4mSource {
            path: path.to_path_buf(),
            reader,
            header,
            fps,
            looping: options.looping,
            pacer: Pacer::new(fps),
            planes,
            pending: true,
            seq: 0,
        })
    }

    /// Reads the next frame's planes, starting again at the end when looping.
    fn advance(&mut self) -> Result<bool, CaptureError> {
        let read = |r: &mut Reader<_>, planes: &mut Vec<u8>| r.next_frame(planes);
        match read(&mut self.reader, &mut self.planes) {
            Ok(true) => return Ok(true),
            Ok(false) if !self.looping => return Ok(false),
            Ok(false) => {}
            Err(e) => return Err(read_error(&self.path, e)),
        }
        let again = Reader::new(open(&self.path)?).map_err(|e| read_error(&self.path, e))?;
        if again.header() != self.header {
            return Err(read_error(
                &self.path,
                "byte 0: the file changed while it was being read",
            ));
        }
        self.reader = again;
        read(&mut self.reader, &mut self.planes).map_err(|e| read_error(&self.path, e))
    }
}

impl FrameSource for Y4mSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: label(&self.path),
            width: self.header.width,
            height: self.header.height,
            format: PixelFormat::Rgb8,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        if !std::mem::take(&mut self.pending) && !self.advance()? {
            return Ok(false);
        }
        let wait = self.pacer.wait(self.seq, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        to_rgb(&self.header, &self.planes, dst).map_err(|e| read_error(&self.path, e))?;
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }
}

/// Converts one frame's planes into packed RGB in `dst`.
fn to_rgb(header: &Header, planes: &[u8], dst: &mut Frame) -> Result<(), String> {
    let (w, h) = (header.width, header.height);
    let (cw, ch) = header.chroma.plane_size(w, h);
    let luma = w as usize * h as usize;
    let chroma = cw as usize * ch as usize;
    let image = YuvPlanarImage {
        y_plane: &planes[..luma],
        y_stride: w,
        u_plane: &planes[luma..luma + chroma],
        u_stride: cw,
        v_plane: &planes[luma + chroma..luma + 2 * chroma],
        v_stride: cw,
        width: w,
        height: h,
    };
    dst.reset(w, h, PixelFormat::Rgb8);
    let (range, matrix) = (YuvRange::Limited, YuvStandardMatrix::Bt601);
    let out = &mut dst.pixels;
    match header.chroma {
        Chroma::C420 => yuv::yuv420_to_rgb(&image, out, w * 3, range, matrix),
        Chroma::C422 => yuv::yuv422_to_rgb(&image, out, w * 3, range, matrix),
        Chroma::C444 => yuv::yuv444_to_rgb(&image, out, w * 3, range, matrix),
    }
    .map_err(|e| format!("converting a Y4M frame to RGB: {e}"))
}
