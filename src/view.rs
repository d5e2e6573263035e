//! `framewire view`: flags → a connector (made by `assemble`), the codec registry and a sink
//! (a window, or none) → the session's receive path; then the snapshot and the stats.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use framewire_core::{CodecKind, Connector, Frame, FrameSink, Request};
use framewire_kit::value;
use framewire_session::{Outcome, ReceiveConfig, StopSignal, receive};

use crate::args::{ReceiveArgs, TlsClientArgs, TokenArgs};
use crate::assemble::ViewTransportArgs;
use framewire_kit::Extra;
use framewire_kit::sink::KeepLast;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Server to connect to
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = value::host_port, value_name = "ADDR")]
    connect: value::HostPort,
    #[command(flatten)]
    receive: ReceiveArgs,
    /// Write the last frame received to this PNG file at exit
    #[arg(long, value_name = "PATH")]
    snapshot: Option<PathBuf>,
    /// Record the stream's packets as they arrive, with their timing (serve --source file:PATH
    /// replays it)
    #[arg(long, value_name = "PATH")]
    record: Option<PathBuf>,
    /// Write what arrives to a file ffmpeg reads: PATH.y4m (decoded frames), PATH.mjpeg (the
    /// JPEGs as they arrived, for a JPEG stream) or PATH.h264 (the H.264 stream as it arrived)
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Exit when the connection to the server is lost, instead of reconnecting with backoff
    #[arg(long)]
    no_reconnect: bool,
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
    if !args.receive.headless {
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
    let limits = (args.max_payload, args.receive.idle_timeout);
    let (connector, extra) =
        crate::assemble::connector(args.connect.addr, request, &args.net, limits, token, tls);
    let signal = Arc::new(StopSignal::default());
    let on_stop = Arc::clone(&signal);
    crate::live::stop_on_ctrl_c_or_enter(move || on_stop.stop())?;
    let keep = args.snapshot.is_some();
    let mut files = crate::files::view_files(args.record.as_deref(), args.output.as_deref())?;
    let title = format!("framewire: receiving from {}", args.connect);
    let (headless, args) = (args.receive.headless, Arc::new(args));
    let (worker_args, worker_signal) = (Arc::clone(&args), Arc::clone(&signal));
    // The receive path into the window (or none), keeping the last frame for --snapshot.
    let receive = move |window: Option<Box<dyn FrameSink>>| {
        let mut sink = KeepLast::new(keep, files.sink(window));
        let outcome = receive_into(&worker_args, connector, &worker_signal, &mut sink, files);
        (outcome, sink.last)
    };
    let (outcome, last) = if headless {
        receive(None)
    } else {
        let on_close = Arc::clone(&signal);
        let (closed, out) = framewire_display::window::run_beside(title, move |window| {
            window.on_close(move || on_close.stop());
            receive(Some(Box::new(window)))
        })?;
        if closed {
            signal.stop();
        }
        out
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
    let config = ReceiveConfig {
        no_reconnect: args.no_reconnect,
        ..args.receive.config()
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
    if let Some(stream) = stream.filter(|_| args.receive.stats.asked()) {
        let report = crate::assemble::received_stats(&stats, &stream, extra);
        args.receive
            .stats
            .print(&report.context("writing stats")?)?;
    }
    result
}
