//! The binary's glue to the display crate: the viewer's window, the sender's preview, snapshots.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use framewire_core::{Flow, Frame, FrameSink, PixelFormat};
use framewire_display::window::{self, WindowExit, WindowOptions, WindowSink};
use framewire_display::{DisplayError, HeadlessRenderer};

use crate::view::{Outcome, StopSignal, ViewArgs, finish, receive};

/// `framewire view` without `--headless`: the window owns the main thread while a worker thread
/// receives and decodes into it. Closing the window ends the session like Ctrl-C: exit 0.
pub fn view_in_window(
    connect: SocketAddr,
    keep_last: bool,
    args: ViewArgs,
    signal: Arc<StopSignal>,
) -> anyhow::Result<()> {
    let options = WindowOptions {
        title: format!("framewire: receiving from {connect}"),
        size: (640, 480),
        fit_first_frame: true,
    };
    let worker_signal = Arc::clone(&signal);
    let run = window::run(options, move |mut sink: WindowSink| {
        let hook_signal = Arc::clone(&worker_signal);
        sink.on_close(move || hook_signal.stop());
        let mut last = Frame::empty(PixelFormat::Rgb8);
        let outcome = receive(&args, &worker_signal, |frame| {
            if keep_last {
                last.clone_from(frame);
            }
            sink.show(frame).unwrap_or(Flow::Stop)
        });
        (args, outcome, last)
    })?;
    if run.exit == WindowExit::Closed {
        signal.stop();
    }
    let (args, outcome, last): (ViewArgs, Outcome, Frame) = run
        .producer
        .join()
        .map_err(|_| anyhow::anyhow!("the receiving thread panicked"))?;
    finish(&args, outcome, &last)
}

/// `framewire serve --preview`: the window owns the main thread while `serve` runs on a worker
/// thread and shows it every frame it sends. Closing the window stops the server.
pub fn serve_with_preview<F>(serve: F) -> anyhow::Result<()>
where
    F: FnOnce(WindowSink) -> anyhow::Result<()> + Send + 'static,
{
    window::display_available()
        .map_err(|e| anyhow::anyhow!("--preview: {e}; run without --preview"))?;
    let options = WindowOptions {
        title: "framewire: transmitting video".into(),
        size: (640, 480),
        fit_first_frame: true,
    };
    let run = window::run(options, serve).context("--preview")?;
    run.producer
        .join()
        .map_err(|_| anyhow::anyhow!("the serving thread panicked"))?
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
