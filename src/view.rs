//! `framewire view`: flags → a connector (made by `assemble`), the codec registry and a sink
//! (a window, or none) → the session's receive path; then the snapshot and the stats.

use framewire_kit::value;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use framewire_core::{
    CodecKind, Connector, Flow, Frame, FrameSink, PixelFormat, Request, SinkError,
};
use framewire_session::{Outcome, ReceiveConfig, StopSignal, receive};

use crate::args::{StatsArgs, TlsClientArgs, TokenArgs};
use crate::assemble::ViewTransportArgs;
use framewire_kit::Extra;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Server to connect to
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = value::host_port, value_name = "ADDR")]
    connect: value::HostPort,
    /// Receive and decode without opening a window
    #[arg(long)]
    headless: bool,
    /// Exit after this many frames (counted across reconnects, and after --warmup)
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Leave the first DURATION out of the statistics (while the stream settles on a rung)
    #[arg(long, value_parser = value::duration, value_name = "DURATION")]
    warmup: Option<Duration>,
    #[command(flatten)]
    stats: StatsArgs,
    /// Write the last frame received to this PNG file at exit
    #[arg(long, value_name = "PATH")]
    snapshot: Option<PathBuf>,
    /// Record the stream's packets as they arrive, with their timing (serve --source file:PATH
    /// replays it)
    #[arg(long, value_name = "PATH")]
    record: Option<PathBuf>,
    /// Write what arrives to a file ffmpeg reads: PATH.y4m (decoded frames) or PATH.mjpeg (the
    /// JPEGs as they arrived, for a JPEG stream)
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Check every frame against the test pattern's frame number (for `serve --source test`)
    #[arg(long)]
    verify_test_pattern: bool,
    /// Exit when the connection to the server is lost, instead of reconnecting with backoff
    #[arg(long)]
    no_reconnect: bool,
    /// Time without data from the server before the connection counts as lost
    #[arg(long, default_value = "15s", value_parser = value::duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Stay on this rung of the server's quality ladder (0 = its best), whatever the link
    #[arg(long, value_name = "N", conflicts_with_all = ["codec", "width"])]
    rung: Option<u8>,
    /// Ask the server for this codec (raw, bincode or jpeg) instead of what its ladder offers
    #[arg(long)]
    codec: Option<CodecKind>,
    /// Ask the server for this width (the height keeps the stream's aspect ratio)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    width: Option<u32>,
    #[command(flatten)]
    token: TokenArgs,
    /// Speak TLS to a server started with serve --tls. Its certificate is trusted on first use,
    /// as ssh does: recorded in known_hosts in the config folder ($XDG_CONFIG_HOME/framewire or
    /// ~/.config/framewire) and refused later if it changed. With --transport udp, TLS runs on a
    /// control connection and the datagrams are sealed under its keys
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    tls_client: TlsClientArgs,
    /// Largest frame payload accepted, in bytes (K, M, G suffixes)
    #[arg(long, default_value = "64M", value_parser = value::bytes, value_name = "BYTES")]
    max_payload: u32,
    #[command(flatten)]
    net: ViewTransportArgs,
}

pub fn run(args: ViewArgs) -> anyhow::Result<()> {
    if !args.headless {
        framewire_display::window::display_available()
            .map_err(|e| anyhow::anyhow!("{e}; add --headless to receive without a window"))?;
    }
    let token = args.token.token()?;
    let tls = args.tls_client.client(args.tls, &args.connect)?;
    let request = Request {
        rung: args.rung,
        codec: args.codec,
        width: args.width,
    };
    let limits = (args.max_payload, args.idle_timeout);
    let (connector, extra) =
        crate::assemble::connector(args.connect.addr, request, &args.net, limits, token, tls);
    let signal = Arc::new(StopSignal::default());
    let on_ctrlc = Arc::clone(&signal);
    ctrlc::set_handler(move || on_ctrlc.stop()).context("cannot install the Ctrl-C handler")?;
    if std::io::stdin().is_terminal() {
        let on_enter = Arc::clone(&signal);
        std::thread::spawn(move || {
            if std::io::stdin()
                .lock()
                .read_line(&mut String::new())
                .is_ok()
            {
                on_enter.stop();
            }
        });
    }
    let keep = args.snapshot.is_some();
    let mut files = crate::files::view_files(args.record.as_deref(), args.output.as_deref())?;
    let (outcome, last) = if args.headless {
        let mut sink = KeepLast::new(keep, files.sink(None));
        (
            receive_into(&args, connector, &signal, &mut sink, files),
            sink.last,
        )
    } else {
        let title = format!("framewire: receiving from {}", args.connect);
        let (args, worker_signal) = (Arc::new(args), Arc::clone(&signal));
        let worker_args = Arc::clone(&args);
        let (closed, out) = framewire_display::window::run_beside(title, move |window| {
            let on_close = Arc::clone(&worker_signal);
            window.on_close(move || on_close.stop());
            let mut sink = KeepLast::new(keep, files.sink(Some(Box::new(window))));
            let outcome = receive_into(&worker_args, connector, &worker_signal, &mut sink, files);
            (outcome, sink.last)
        })?;
        if closed {
            signal.stop();
        }
        return finish(&args, out.0, &out.1, &extra);
    };
    finish(&args, outcome, &last, &extra)
}

/// Runs the receive path into `sink`, printing what happens on stderr.
fn receive_into(
    args: &ViewArgs,
    connector: Box<dyn Connector>,
    signal: &StopSignal,
    sink: &mut dyn FrameSink,
    mut files: framewire_kit::files::ViewFiles,
) -> Outcome {
    let read = |f: &Frame| framewire_pattern::read_frame_number(f);
    let config = ReceiveConfig {
        frames: args.frames,
        no_reconnect: args.no_reconnect,
        verify: args.verify_test_pattern.then_some(&read),
        warmup: args.warmup,
    };
    let mut live = crate::live::LiveLine::on_stderr();
    let addr = args.connect.addr;
    let connector = files.connector(connector);
    let outcome = receive(
        &*connector,
        &|s| framewire_codec::decoder(s),
        sink,
        signal,
        &config,
        &mut |event| live.receive_event(event, |e| framewire_kit::lines::view_event(e, addr)),
    );
    live.end();
    outcome
}

/// Passes frames on to an optional sink, keeping a copy of the last one when asked (for
/// `--snapshot`).
struct KeepLast {
    keep: bool,
    last: Frame,
    inner: Option<Box<dyn FrameSink>>,
}

impl KeepLast {
    fn new(keep: bool, inner: Option<Box<dyn FrameSink>>) -> KeepLast {
        KeepLast {
            keep,
            last: Frame::empty(PixelFormat::Rgb8),
            inner,
        }
    }
}

impl FrameSink for KeepLast {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        if self.keep {
            self.last.clone_from(frame);
        }
        match &mut self.inner {
            Some(sink) => sink.show(frame),
            None => Ok(Flow::Continue),
        }
    }
}

/// Writes the snapshot and the stats, and turns the outcome into the exit status.
fn finish(args: &ViewArgs, outcome: Outcome, last: &Frame, extra: &Extra) -> anyhow::Result<()> {
    let Outcome {
        stats,
        stream,
        result,
    } = outcome;
    let mut result = result.map_err(anyhow::Error::new);
    if let Some(path) = &args.snapshot {
        if stats.frames() > 0 {
            framewire_display::write_snapshot(path, last).context("--snapshot")?;
            eprintln!("wrote the last frame to {}", path.display());
        } else if result.is_ok() {
            result = Err(anyhow::anyhow!(
                "--snapshot {}: no frame was received",
                path.display()
            ));
        }
    }
    if let Some(stream) = stream.filter(|_| args.stats.asked()) {
        let report = stats.report(stream.codec.name(), stream.width, stream.height);
        let mut report = serde_json::to_value(&report).context("writing stats")?;
        crate::assemble::add_figures(extra, &mut report);
        args.stats.print(&report)?;
    }
    result
}
