//! Files beside a stream: a recording of what is sent (one more publisher), and what a viewer
//! keeps of what arrives: a recording, decoded frames as Y4M, received JPEGs as MJPEG. A write
//! error that ends a file goes to the caller's [`OnError`] in one line while the stream goes on.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use framewire_core::{CodecKind, Connector, FrameSink, Ladder, Publisher};
use framewire_file::CreateError;
use framewire_file::tap::{
    OnError, PayloadFile, RecordFile, RecordPublisher, Tap, TapConnector, Y4mSink,
};

/// A recording of `ladder`'s top rung, as sent, from the start: one more publisher.
pub fn recorder(
    path: &Path,
    ladder: Arc<Ladder>,
    fps: f64,
    on_error: OnError,
) -> Result<Arc<dyn Publisher>, CreateError> {
    let file = RecordFile::create(path, on_error)?;
    Ok(Arc::new(RecordPublisher::new(file, ladder, fps)))
}

/// Why a viewer's output file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Neither `.y4m`, `.mjpeg` nor `.h264`.
    #[error(
        "--output {0}: expected a .y4m file (decoded frames), a .mjpeg file (the JPEGs as they arrive) or a .h264 file (the H.264 stream as it arrives)"
    )]
    Kind(String),
    /// It could not be created.
    #[error(transparent)]
    Create(#[from] CreateError),
}

/// What a viewer writes besides showing: a recording, and an output file.
pub struct ViewFiles {
    /// Taps the packets (a recording, an `.mjpeg` or `.h264` output).
    tap: Tap,
    /// Writes decoded frames (a `.y4m` output).
    y4m: Option<Y4mSink>,
    on_error: OnError,
}

impl ViewFiles {
    /// Opens `output` (`.y4m`: decoded frames; `.mjpeg`: the JPEGs as they arrived; `.h264`:
    /// the H.264 stream as it arrived, Annex-B) before
    /// connecting, so a bad one fails at once.
    pub fn open(output: Option<&Path>, on_error: OnError) -> Result<ViewFiles, OutputError> {
        let mut files = ViewFiles {
            tap: Tap::default(),
            y4m: None,
            on_error,
        };
        let Some(path) = output else {
            return Ok(files);
        };
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "y4m" => {
                // The header takes the sender's frame rate, which the tap learns.
                let rate = Arc::new(AtomicU64::new(0));
                files.tap.rate = Some(Arc::clone(&rate));
                files.y4m = Some(Y4mSink::create(path, rate)?);
            }
            "mjpeg" | "mjpg" | "h264" | "264" => {
                let codec = match ext.as_str() {
                    "h264" | "264" => CodecKind::H264,
                    _ => CodecKind::Jpeg,
                };
                let on_error = Arc::clone(&files.on_error);
                files.tap.payloads = Some(PayloadFile::create(path, codec, on_error)?);
            }
            _ => return Err(OutputError::Kind(path.display().to_string())),
        }
        Ok(files)
    }

    /// Also records the stream's packets as they arrive, with their timing, to `path`.
    pub fn record(&mut self, path: &Path) -> Result<(), CreateError> {
        self.tap.record = Some(RecordFile::create(path, Arc::clone(&self.on_error))?);
        Ok(())
    }

    /// The sink frames go to: the Y4M writer before `next`, when there is one.
    pub fn sink(&mut self, next: Option<Box<dyn FrameSink>>) -> Option<Box<dyn FrameSink>> {
        match self.y4m.take() {
            Some(y4m) => Some(Box::new(y4m.then(next))),
            None => next,
        }
    }

    /// `connector`, tapped when some packet is to be kept.
    pub fn connector(&mut self, connector: Box<dyn Connector>) -> Box<dyn Connector> {
        let tap = &self.tap;
        if tap.record.is_none() && tap.payloads.is_none() && tap.rate.is_none() {
            return connector;
        }
        Box::new(TapConnector::new(connector, std::mem::take(&mut self.tap)))
    }
}
