//! A raw MJPEG file (`.mjpeg`/`.mjpg`: JPEGs one after another, as `ffmpeg -f mjpeg` writes
//! them) as a source: each JPEG decoded to RGB, or handed over as it is for a JPEG stream of
//! the same size (no re-encode). The file is read in chunks; one JPEG may be at most
//! [`MAX_JPEG`] bytes.

use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, PixelFormat, SourceInfo,
    now_micros,
};
use framewire_pattern::Pacer;

use super::{DEFAULT_FPS, SourceOptions, label, open, open_error, read_error};
use crate::convert::{ConvertError, mjpeg_passthrough, mjpeg_to_rgb, scan_jpeg};

/// The largest JPEG read from a file.
pub const MAX_JPEG: usize = 64 << 20;

/// Cuts JPEGs out of a byte stream, keeping only the JPEG being cut in memory.
struct Splitter {
    r: BufReader<File>,
    buf: Vec<u8>,
    /// Where the next JPEG starts in `buf`.
    start: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Splitter {
    fn new(r: BufReader<File>) -> Splitter {
        Splitter {
            r,
            buf: Vec::new(),
            start: 0,
            base: 0,
            eof: false,
        }
    }

    /// The next JPEG's range in `self.buf`; `Ok(None)` at the end of the file.
    fn next(&mut self) -> Result<Option<Range<usize>>, String> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        loop {
            if self.buf.is_empty() && self.eof {
                return Ok(None);
            }
            match scan_jpeg(&self.buf) {
                Ok(info) => {
                    self.start = info.len;
                    return Ok(Some(0..info.len));
                }
                Err(e) if !self.eof && wants_more(&e, self.buf.len()) => {
                    if self.buf.len() >= MAX_JPEG {
                        return Err(format!(
                            "byte {}: no JPEG ends within {MAX_JPEG} bytes",
                            self.base
                        ));
                    }
                    self.fill()?;
                }
                Err(ConvertError::BadJpeg { at, reason, .. }) => {
                    return Err(format!(
                        "byte {}: {reason} (in the JPEG that starts at byte {})",
                        self.base + at as u64,
                        self.base
                    ));
                }
                Err(e) => return Err(format!("byte {}: {e}", self.base)),
            }
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        self.eof = super::fill(&mut self.r, &mut self.buf, self.base)?;
        Ok(())
    }
}

/// Whether a scan failed only because the JPEG goes on past the bytes read so far.
fn wants_more(e: &ConvertError, have: usize) -> bool {
    match e {
        ConvertError::BadJpeg { reason, at, .. } => {
            have < 4
                || reason.starts_with("truncated")
                || (*reason == "segment length runs past the data" && *at < have)
        }
        _ => false,
    }
}

/// The JPEGs of an MJPEG file, paced at `--fps` (30 by default).
pub struct MjpegSource {
    path: PathBuf,
    splitter: Splitter,
    jpeg: Range<usize>,
    /// The first JPEG, cut at open, not yet handed out.
    pending: bool,
    width: u32,
    height: u32,
    fps: f64,
    looping: bool,
    pacer: Pacer,
    scratch: Vec<u8>,
    seq: u64,
}

impl MjpegSource {
    /// Opens `path` and cuts its first JPEG, whose size is the stream's.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<MjpegSource, CaptureError> {
        let mut splitter = Splitter::new(open(path)?);
        let jpeg = match splitter.next() {
            Ok(Some(jpeg)) => jpeg,
            Ok(None) => return Err(open_error(path, "byte 0: no JPEG in the file".into())),
            Err(e) => return Err(open_error(path, e)),
        };
        let info =
            scan_jpeg(&splitter.buf[jpeg.clone()]).map_err(|e| open_error(path, e.to_string()))?;
        let fps = options.fps.unwrap_or(DEFAULT_FPS);
        Ok(MjpegSource {
            path: path.to_path_buf(),
            splitter,
            jpeg,
            pending: true,
            width: info.width,
            height: info.height,
            fps,
            looping: options.looping,
            pacer: Pacer::new(fps),
            scratch: Vec::new(),
            seq: 0,
        })
    }

    /// Cuts the next JPEG, starting again at the end when looping; paces; false at the end.
    fn advance(&mut self) -> Result<bool, CaptureError> {
        if !std::mem::take(&mut self.pending) {
            let next = match self.splitter.next() {
                Ok(None) if self.looping => {
                    self.splitter = Splitter::new(open(&self.path)?);
                    self.splitter.next()
                }
                other => other,
            };
            match next.map_err(|e| read_error(&self.path, e))? {
                Some(jpeg) => self.jpeg = jpeg,
                None => return Ok(false),
            }
        }
        let wait = self.pacer.wait(self.seq, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Ok(true)
    }

    /// The error for a JPEG that cannot be used, naming where it starts.
    fn bad(&self, e: impl std::fmt::Display) -> CaptureError {
        read_error(
            &self.path,
            format!("byte {}: {e}", self.splitter.base + self.jpeg.start as u64),
        )
    }

    fn check_size(&self, width: u32, height: u32) -> Result<(), CaptureError> {
        if (width, height) != (self.width, self.height) {
            return Err(self.bad(format!(
                "a {width}x{height} JPEG in a stream of {}x{} (every JPEG of an MJPEG file must have one size)",
                self.width, self.height
            )));
        }
        Ok(())
    }
}

impl FrameSource for MjpegSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: label(&self.path),
            width: self.width,
            height: self.height,
            format: PixelFormat::Rgb8,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        if !self.advance()? {
            return Ok(false);
        }
        let jpeg = &self.splitter.buf[self.jpeg.clone()];
        let info = mjpeg_to_rgb(jpeg, dst, &mut self.scratch).map_err(|e| self.bad(e))?;
        self.check_size(info.width, info.height)?;
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        Some(CodecKind::Jpeg)
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        if !self.advance()? {
            return Ok(false);
        }
        let jpeg = &self.splitter.buf[self.jpeg.clone()];
        let info = mjpeg_passthrough(jpeg, &mut dst.data).map_err(|e| self.bad(e))?;
        self.check_size(info.width, info.height)?;
        dst.codec = CodecKind::Jpeg;
        dst.width = info.width;
        dst.height = info.height;
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }
}
