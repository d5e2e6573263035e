//! `framewire view`: connect -> read frames -> decode -> show, measuring as it goes.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use framewire_core::{Frame, now_micros};
use framewire_net::{Client, ClientConfig, Received, wire::HEADER_LEN};

use crate::args::{parse_addr, parse_bytes};
use crate::stats::Stats;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Server to connect to
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = parse_addr, value_name = "ADDR")]
    connect: SocketAddr,
    /// Receive and decode without opening a window
    #[arg(long)]
    headless: bool,
    /// Exit after this many frames
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Print statistics at exit in this format on stdout
    #[arg(long, value_name = "FORMAT")]
    stats: Option<StatsFormat>,
    /// Write the last frame received to this PNG file at exit
    #[arg(long, value_name = "PATH")]
    snapshot: Option<PathBuf>,
    /// Check every frame against the test pattern's frame number (for `serve --source test`)
    #[arg(long)]
    verify_test_pattern: bool,
    /// Largest frame payload accepted, in bytes (K, M, G suffixes)
    #[arg(long, default_value = "64M", value_parser = parse_bytes, value_name = "BYTES")]
    max_payload: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatsFormat {
    /// One JSON object
    Json,
}

pub fn run(args: ViewArgs) -> anyhow::Result<()> {
    if !args.headless {
        bail!("this build has no viewer window yet; add --headless to receive without one");
    }
    let config = ClientConfig {
        max_payload: args.max_payload,
        ..ClientConfig::default()
    };
    let mut client = Client::connect(args.connect, config)?;
    let stream = client.handshake().stream;
    let fps = client.handshake().fps;
    eprintln!(
        "connected to {}: {} {}x{} {}{}",
        client.peer(),
        stream.codec,
        stream.width,
        stream.height,
        stream.format,
        if fps > 0.0 {
            format!(" at {fps} fps")
        } else {
            String::new()
        }
    );

    // Ctrl-C, or Enter on a terminal, ends the session cleanly: closing our side of the
    // socket wakes the blocked read.
    let stop = Arc::new(AtomicBool::new(false));
    let closer = client.closer().context("cannot set up the socket")?;
    let closer = Arc::new(closer);
    {
        let (stop, closer) = (Arc::clone(&stop), Arc::clone(&closer));
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            let _ = closer.shutdown(Shutdown::Both);
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    if std::io::stdin().is_terminal() {
        let (stop, closer) = (Arc::clone(&stop), Arc::clone(&closer));
        std::thread::spawn(move || {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_ok() {
                stop.store(true, Ordering::SeqCst);
                let _ = closer.shutdown(Shutdown::Both);
            }
        });
    }

    let mut decoder = framewire_codec::decoder(&stream);
    let mut frame = Frame::empty(stream.format);
    let mut stats = Stats::new(args.verify_test_pattern);
    let live = std::io::stderr().is_terminal();
    let mut outcome = Ok(());

    while args.frames.is_none_or(|n| stats.frames() < n) {
        let received = match client.recv() {
            Ok(r) => r,
            Err(_) if stop.load(Ordering::SeqCst) => break,
            Err(e) => {
                outcome = Err(anyhow::Error::new(e));
                break;
            }
        };
        match received {
            Received::Frame(header, payload) => {
                let bytes = (payload.len() + HEADER_LEN) as u64;
                if let Err(e) = decoder.decode(payload, &mut frame) {
                    outcome = Err(anyhow::Error::new(e).context(format!(
                        "server {}: frame {} at byte {}",
                        client.peer(),
                        header.seq,
                        client.offset()
                    )));
                    break;
                }
                frame.seq = header.seq;
                frame.capture_us = header.capture_us;
                stats.record(header.seq, header.capture_us, bytes, now_micros());
                if args.verify_test_pattern
                    && framewire_capture::read_frame_number(&frame)
                        != Some(header.seq & 0xFFFF_FFFF)
                {
                    stats.pattern_error();
                }
                if live && let Some(line) = stats.live_line(Duration::from_millis(500)) {
                    eprint!("\r\x1b[2K{line}");
                }
            }
            Received::End { reason: None } => {
                eprintln!("server {} ended the stream", client.peer());
                break;
            }
            Received::End {
                reason: Some(reason),
            } => {
                outcome = Err(anyhow::anyhow!(
                    "server {} ended the stream: {reason}",
                    client.peer()
                ));
                break;
            }
        }
    }
    drop(client);
    if live {
        eprintln!();
    }

    if let Some(path) = &args.snapshot {
        if stats.frames() > 0 {
            framewire_display::write_png(path, &frame).context("--snapshot")?;
            eprintln!("wrote the last frame to {}", path.display());
        } else if outcome.is_ok() {
            outcome = Err(anyhow::anyhow!(
                "--snapshot {}: no frame was received",
                path.display()
            ));
        }
    }
    if let Some(StatsFormat::Json) = args.stats {
        let report = stats.report(stream.codec.name(), stream.width, stream.height);
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report).context("writing stats")?;
        writeln!(out).context("writing stats")?;
    }
    outcome
}
