//! The binary's glue to files: `serve --record` and `view --record` (recordings, a write error
//! said in one line while the stream goes on), `view --output` (`.y4m` decoded frames, `.mjpeg`
//! received JPEGs as they arrived).

use std::path::Path;
use std::sync::Arc;

use framewire_core::{Connector, FrameSink, Ladder, Publisher};
use framewire_file::tap::{
    MjpegFile, OnError, RecordFile, RecordPublisher, Tap, TapConnector, Y4mSink,
};

/// Says a write error that ended a file, on one line.
fn on_error() -> OnError {
    Arc::new(|line| eprintln!("framewire: {line}"))
}

/// Opens `--record PATH`; a file that cannot be created is said in one line, and the stream goes
/// on without it.
fn record_file(path: &Path) -> Option<RecordFile> {
    match RecordFile::create(path, on_error()) {
        Ok(file) => Some(file),
        Err(e) => {
            eprintln!("framewire: --record: {e}; streaming without recording");
            None
        }
    }
}

/// `serve --record PATH`: one more publisher, recording the top rung from the start.
pub fn recorder(path: &Path, ladder: Arc<Ladder>, fps: f64) -> Option<Arc<dyn Publisher>> {
    let file = record_file(path)?;
    println!("recording the stream to {}", path.display());
    Some(Arc::new(RecordPublisher::new(file, ladder, fps)))
}

/// What `view` writes besides showing: a recording, and `--output`.
pub struct ViewFiles {
    /// Taps the packets (`--record`, `--output x.mjpeg`).
    tap: Tap,
    /// Writes decoded frames (`--output x.y4m`).
    y4m: Option<Y4mSink>,
}

impl ViewFiles {
    /// Opens `--record` and `--output` before connecting, so a bad `--output` fails at once.
    pub fn open(record: Option<&Path>, output: Option<&Path>) -> anyhow::Result<ViewFiles> {
        let mut files = ViewFiles {
            tap: Tap {
                record: record.and_then(record_file),
                ..Tap::default()
            },
            y4m: None,
        };
        if let Some(path) = output {
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            match ext.as_str() {
                "y4m" => {
                    // The header takes the sender's frame rate, which the tap learns.
                    let rate = Arc::new(std::sync::atomic::AtomicU64::new(0));
                    files.tap.rate = Some(Arc::clone(&rate));
                    files.y4m = Some(Y4mSink::create(path, rate).map_err(anyhow::Error::msg)?);
                }
                "mjpeg" | "mjpg" => {
                    files.tap.mjpeg =
                        Some(MjpegFile::create(path, on_error()).map_err(anyhow::Error::msg)?);
                }
                _ => anyhow::bail!(
                    "--output {}: expected a .y4m file (decoded frames) or a .mjpeg file (the \
                     JPEGs as they arrive)",
                    path.display()
                ),
            }
        }
        Ok(files)
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
        if tap.record.is_none() && tap.mjpeg.is_none() && tap.rate.is_none() {
            return connector;
        }
        Box::new(TapConnector::new(connector, std::mem::take(&mut self.tap)))
    }
}
