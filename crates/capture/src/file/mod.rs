//! Files as sources (`--source file:PATH`): Y4M ([`y4m`]), raw MJPEG ([`mjpeg`]), an H.264
//! elementary stream ([`h264`], passed through), a still PNG or JPEG ([`still`]) and framewire
//! recordings ([`replay`]). The kind is told by the file's
//! first bytes (a JPEG by its extension too: `.mjpeg`/`.mjpg` is a stream, anything else a
//! still). Each is paced at the file's own rate unless an fps is given, restarts at the end when
//! looping, and otherwise ends. Every error names the file and the byte offset.

mod ahead;
mod h264;
mod mjpeg;
mod replay;
mod still;
mod y4m;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use framewire_core::{CaptureError, FrameSource};

/// How a source runs, beyond its size: the pace, and for files whether to loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceOptions {
    /// Frames per second; `None`: the file's own rate (a recording: its original pace; a file
    /// without a rate, the test pattern and a camera: 30); 0: unpaced.
    pub fps: Option<f64>,
    /// Start again at the end instead of ending.
    pub looping: bool,
}

/// The rate of a file that gives none (MJPEG, a still image).
pub const DEFAULT_FPS: f64 = 30.0;

/// What a file holds, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Y4m,
    Recording,
    Png,
    Mjpeg,
    Jpeg,
    H264,
}

/// Opens the file at `path` as a source (see the module doc). The first frame is read now, so
/// a file that is not what it claims fails here, before anyone connects.
pub fn open_file(
    path: &Path,
    options: &SourceOptions,
) -> Result<Box<dyn FrameSource>, CaptureError> {
    if let Some(fps) = options.fps
        && (!fps.is_finite() || !(0.0..=1000.0).contains(&fps))
    {
        return Err(CaptureError::Config(format!(
            "fps {fps} is not 0 (unpaced) to 1000"
        )));
    }
    match kind(path)? {
        // Converting a Y4M frame to RGB is the costly part: it runs ahead on its own thread.
        Kind::Y4m => Ok(Box::new(ahead::ReadAhead::new(Box::new(
            y4m::Y4mSource::open(path, options)?,
        ))?)),
        Kind::Recording => Ok(Box::new(replay::ReplaySource::open(path, options)?)),
        Kind::Mjpeg => Ok(Box::new(mjpeg::MjpegSource::open(path, options)?)),
        Kind::H264 => Ok(Box::new(h264::H264Source::open(path, options)?)),
        Kind::Png | Kind::Jpeg => Ok(Box::new(still::StillSource::open(path, options)?)),
    }
}

fn kind(path: &Path) -> Result<Kind, CaptureError> {
    let mut head = [0u8; 9];
    let mut file = open(path)?;
    let got = framewire_file::read_full(&mut file, &mut head, 0)
        .map_err(|e| open_error(path, e.to_string()))?;
    let head = &head[..got];
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(if head.starts_with(b"YUV4MPEG2") {
        Kind::Y4m
    } else if head.starts_with(&framewire_file::recording::MAGIC) {
        Kind::Recording
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if head.starts_with(&[0xFF, 0xD8]) && matches!(ext.as_str(), "mjpeg" | "mjpg") {
        Kind::Mjpeg
    } else if head.starts_with(&[0xFF, 0xD8]) {
        Kind::Jpeg
    } else if (head.starts_with(&[0, 0, 0, 1]) || head.starts_with(&[0, 0, 1]))
        && matches!(ext.as_str(), "h264" | "264")
    {
        Kind::H264
    } else {
        return Err(open_error(
            path,
            format!(
                "byte 0: not a file framewire reads (found {:?}); expected Y4M, MJPEG \
                 (.mjpeg), H.264 (.h264, Annex-B), PNG, JPEG or a framewire recording",
                head.escape_ascii().to_string()
            ),
        ));
    })
}

/// How much a file cut into pieces (MJPEG, H.264) is read at a time.
const CHUNK: usize = 1 << 16;

/// Reads up to [`CHUNK`] more bytes of `r` onto the end of `buf` (whose first byte is at file
/// offset `base`): whether the file ended. An error names the byte offset.
fn fill(r: &mut impl std::io::Read, buf: &mut Vec<u8>, base: u64) -> Result<bool, String> {
    let len = buf.len();
    buf.resize(len + CHUNK, 0);
    loop {
        match r.read(&mut buf[len..]) {
            Ok(n) => {
                buf.truncate(len + n);
                return Ok(n == 0);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(len);
                return Err(format!("byte {}: {e}", base + len as u64));
            }
        }
    }
}

/// The file, opened for reading, or an error naming it.
fn open(path: &Path) -> Result<BufReader<File>, CaptureError> {
    let file = File::open(path).map_err(|e| open_error(path, e.to_string()))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

fn open_error(path: &Path, reason: String) -> CaptureError {
    CaptureError::Open {
        source_name: name(path),
        reason,
    }
}

/// An error while streaming from the file, naming it (the reason names the byte offset).
fn read_error(path: &Path, reason: impl std::fmt::Display) -> CaptureError {
    CaptureError::Device {
        source_name: name(path),
        reason: reason.to_string(),
    }
}

/// A source's file name for its [`framewire_core::SourceInfo`]: `file clip.y4m`.
fn label(path: &Path) -> String {
    let short = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name(path));
    format!("file {short}")
}
