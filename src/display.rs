//! The binary's glue to the display crate: running a producer beside a window, and snapshots.

use std::path::Path;

use anyhow::Context;
use framewire_core::{Frame, PixelFormat};
use framewire_display::window::{self, WindowExit, WindowOptions, WindowSink};
use framewire_display::{DisplayError, HeadlessRenderer};

/// Opens a window titled `title` on the main thread and runs `producer` on a worker thread with
/// a sink into it, until the producer returns or the window is closed. Returns whether the user
/// closed the window, and what the producer returned.
pub fn in_window<T, P>(title: String, producer: P) -> anyhow::Result<(bool, T)>
where
    T: Send + 'static,
    P: FnOnce(WindowSink) -> T + Send + 'static,
{
    let options = WindowOptions {
        title,
        size: (640, 480),
        fit_first_frame: true,
    };
    let run = window::run(options, producer)?;
    let closed = run.exit == WindowExit::Closed;
    let out = run
        .producer
        .join()
        .map_err(|_| anyhow::anyhow!("the thread beside the window panicked"))?;
    Ok((closed, out))
}

/// Writes `frame` to `path` as the window would draw it: through the headless GPU renderer at
/// the frame's own size. Without a GPU adapter it writes the decoded frame as it is (the same
/// pixels: the renderer draws a frame at its own size exactly) and says so.
pub fn write_snapshot(path: &Path, frame: &Frame) -> anyhow::Result<()> {
    match HeadlessRenderer::new() {
        Ok(mut renderer) => {
            let mut rendered = Frame::empty(PixelFormat::Rgba8);
            renderer
                .render(frame, frame.width, frame.height, &mut rendered)
                .context("rendering the snapshot")?;
            framewire_display::write_png(path, &rendered)?;
        }
        Err(e @ DisplayError::NoAdapter { .. }) => {
            tracing::info!("{e}; writing the decoded frame without rendering it");
            framewire_display::write_png(path, frame)?;
        }
        Err(e) => return Err(e).context("rendering the snapshot"),
    }
    Ok(())
}
