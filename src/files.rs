//! The binary's word on files: `serve --record` and `view --record` (a file that cannot be
//! created is said in one line, and the stream goes on without it), and write errors that end
//! a file, each in one line.

use std::path::Path;
use std::sync::Arc;

use framewire_core::{Ladder, Publisher};
use framewire_file::tap::OnError;
use framewire_kit::files::ViewFiles;

/// Says a write error that ended a file, on one line.
pub fn on_error() -> OnError {
    Arc::new(|line| eprintln!("framewire: {line}"))
}

/// `serve --record PATH`: one more publisher, recording the top rung from the start.
pub fn recorder(path: &Path, ladder: Arc<Ladder>, fps: f64) -> Option<Arc<dyn Publisher>> {
    match framewire_kit::files::recorder(path, ladder, fps, on_error()) {
        Ok(publisher) => {
            println!("recording the stream to {}", path.display());
            Some(publisher)
        }
        Err(e) => {
            without_recording(&e);
            None
        }
    }
}

/// `view --record` and `--output`, opened before connecting.
pub fn view_files(record: Option<&Path>, output: Option<&Path>) -> anyhow::Result<ViewFiles> {
    let mut files = ViewFiles::open(output, on_error())?;
    if let Some(Err(e)) = record.map(|path| files.record(path)) {
        without_recording(&e);
    }
    Ok(files)
}

/// Says that `--record` could not create its file, and that the stream goes on without it.
fn without_recording(e: &framewire_file::CreateError) {
    eprintln!("framewire: --record: {e}; streaming without recording");
}
