//! framewire's file formats, kept apart from every plugin so that the capture side (files as
//! sources) and the writers (`serve --record`, `view --record`, `view --output`) share one
//! parser and one writer per format. Depends on core alone, like `framewire-pattern`.
//!
//! - [`recording`]: framewire recordings, the stream's packets as they crossed the wire with
//!   their timing; the format is versioned and drawn in that module's doc, the one place.
//! - [`y4m`]: YUV4MPEG2, read (4:2:0, 4:2:2, 4:4:4) and written (4:4:4 from RGB).
//! - [`h264`]: the H.264 Annex-B byte stream's NAL units and what an SPS says (profile, size),
//!   shared by the `.h264` file source and the codec's decoder.
//! - [`flv`]: H.264 in FLV video tags, the bodies of an RTMP publisher's video messages.
//! - [`tap`]: recorders at the packet seams: a [`Publisher`](framewire_core::Publisher) that
//!   records what a server sends, and a [`Connector`](framewire_core::Connector) wrapper that
//!   records (or writes as MJPEG) what a viewer receives.
//!
//! Every reader bounds what it allocates by what the file holds, and every error names the byte
//! offset where the file went wrong; the caller adds the file's name once, at the boundary.

pub mod flv;
pub mod h264;
pub mod recording;
pub mod tap;
pub mod y4m;

/// A file that is not what it should be, or could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The bytes are wrong at this offset.
    #[error("byte {at}: {what}")]
    Bad {
        /// Offset from the start of the file.
        at: u64,
        /// What was wrong, and what was expected.
        what: String,
    },
    /// Reading or writing failed at this offset.
    #[error("byte {at}: {source}")]
    Io {
        /// Offset from the start of the file.
        at: u64,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A file that could not be created, or whose header could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {doing} {}: {io}", path.display())]
pub struct CreateError {
    /// What was being done: `create recording`, `create`.
    pub doing: &'static str,
    /// The file.
    pub path: std::path::PathBuf,
    /// The system's error.
    pub io: std::io::Error,
}

impl CreateError {
    /// `doing` to `path` failed with `io`.
    pub fn new(doing: &'static str, path: &std::path::Path, io: std::io::Error) -> CreateError {
        CreateError {
            doing,
            path: path.to_path_buf(),
            io,
        }
    }
}

impl FileError {
    /// Wrong bytes at `at`.
    pub fn bad(at: u64, what: impl Into<String>) -> FileError {
        FileError::Bad {
            at,
            what: what.into(),
        }
    }

    /// The offset the error names.
    pub fn at(&self) -> u64 {
        match self {
            FileError::Bad { at, .. } | FileError::Io { at, .. } => *at,
        }
    }
}

/// Reads up to `n` bytes of `r` into `buf` (cleared first, its allocation kept), growing it only
/// as bytes arrive, so a length a hostile file claims never allocates more than the file holds.
/// Returns the bytes read: fewer than `n` means the file ended.
pub(crate) fn read_up_to(
    r: &mut impl std::io::Read,
    n: u64,
    buf: &mut Vec<u8>,
    at: u64,
) -> Result<usize, FileError> {
    use std::io::Read;
    if buf.capacity() as u64 >= n {
        // Known to fit: read straight into the kept allocation (zeroing only what it grows by).
        buf.truncate(n as usize);
        buf.resize(n as usize, 0);
        let got = read_full(r, buf, at)?;
        buf.truncate(got);
        return Ok(got);
    }
    buf.clear();
    r.take(n)
        .read_to_end(buf)
        .map_err(|source| FileError::Io { at, source })
}

/// Fills as much of `buf` as `r` holds; returns the bytes read (fewer: the file ended). An
/// error names the offset, counting from `at`.
pub fn read_full(r: &mut impl std::io::Read, buf: &mut [u8], at: u64) -> Result<usize, FileError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(FileError::Io {
                    at: at + got as u64,
                    source,
                });
            }
        }
    }
    Ok(got)
}
