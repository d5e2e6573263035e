//! `framewire view`: connect -> read frames -> decode -> show, measuring as it goes, and
//! reconnecting with backoff when the server goes away.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use framewire_core::{Flow, Frame, now_micros};
use framewire_net::{Client, ClientConfig, Incoming, NetError, WireErrorKind, wire::HEADER_LEN};

use crate::args::{parse_addr, parse_bytes, parse_duration};
use crate::stats::Stats;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Server to connect to
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = parse_addr, value_name = "ADDR")]
    connect: SocketAddr,
    /// Receive and decode without opening a window
    #[arg(long)]
    headless: bool,
    /// Exit after this many frames (counted across reconnects)
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
    /// Exit when the connection to the server is lost, instead of reconnecting with backoff
    #[arg(long)]
    no_reconnect: bool,
    /// Time without data from the server before the connection counts as lost
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Largest frame payload accepted, in bytes (K, M, G suffixes)
    #[arg(long, default_value = "64M", value_parser = parse_bytes, value_name = "BYTES")]
    max_payload: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatsFormat {
    /// One JSON object
    Json,
}

/// Shared between the receive loop and whatever may stop it (Ctrl-C, Enter, a closed window):
/// setting `stop` and shutting the current socket wakes a blocked read.
#[derive(Default)]
pub struct StopSignal {
    stop: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
}

impl StopSignal {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = &*self.socket.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn watch(&self, client: &Client) {
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = client.closer().ok();
        if self.is_stopped() {
            self.stop();
        }
    }
}

pub fn run(args: ViewArgs) -> anyhow::Result<()> {
    if !args.headless {
        framewire_display::window::display_available()
            .map_err(|e| anyhow::anyhow!("{e}; add --headless to receive without a window"))?;
    }
    let signal = Arc::new(StopSignal::default());
    {
        let signal = Arc::clone(&signal);
        ctrlc::set_handler(move || signal.stop()).context("cannot install the Ctrl-C handler")?;
    }
    if std::io::stdin().is_terminal() {
        let signal = Arc::clone(&signal);
        std::thread::spawn(move || {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_ok() {
                signal.stop();
            }
        });
    }
    if !args.headless {
        return crate::display::view_in_window(args.connect, args.snapshot.is_some(), args, signal);
    }
    let mut last = Frame::empty(framewire_core::PixelFormat::Rgb8);
    let outcome = receive(&args, &signal, |frame| {
        if args.snapshot.is_some() {
            last.clone_from(frame);
        }
        Flow::Continue
    });
    finish(&args, outcome, &last)
}

/// What a receive session ended with.
pub struct Outcome {
    pub stats: Stats,
    /// Codec, width and height of the last stream, for the report.
    pub stream: Option<framewire_core::StreamInfo>,
    pub result: anyhow::Result<()>,
}

/// Connects, then reads, decodes and measures frames, handing each to `show`, until `--frames`
/// is reached, the server ends the stream, `show` says stop, or `signal` is set. Reconnects with
/// backoff when the connection is lost, unless `--no-reconnect`.
pub fn receive(
    args: &ViewArgs,
    signal: &StopSignal,
    mut show: impl FnMut(&Frame) -> Flow,
) -> Outcome {
    let mut stats = Stats::new(args.verify_test_pattern);
    let config = ClientConfig {
        max_payload: args.max_payload,
        read_timeout: args.idle_timeout,
        ..ClientConfig::default()
    };
    let mut client = match Client::connect(args.connect, config.clone()) {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                stats,
                stream: None,
                result: Err(e.into()),
            };
        }
    };
    signal.watch(&client);
    announce(&client, "connected to");
    let mut stream = client.handshake().stream;
    let mut decoder = framewire_codec::decoder(&stream);
    let mut frame = Frame::empty(stream.format);
    let mut payload = Vec::new();
    let live = std::io::stderr().is_terminal();

    let result = loop {
        if args.frames.is_some_and(|n| stats.frames() >= n) || signal.is_stopped() {
            break Ok(());
        }
        let err = match client.recv_into(&mut payload) {
            Ok(Incoming::Frame(header)) => {
                let bytes = (payload.len() + HEADER_LEN) as u64;
                if let Err(e) = decoder.decode_vec(&mut payload, &mut frame) {
                    break Err(anyhow::Error::new(e).context(format!(
                        "server {}: frame {} at byte {}",
                        client.peer(),
                        header.seq,
                        client.offset()
                    )));
                }
                frame.seq = header.seq;
                frame.capture_us = header.capture_us;
                stats.record(header.seq, header.capture_us, bytes, now_micros());
                if args.verify_test_pattern
                    && framewire_pattern::read_frame_number(&frame)
                        != Some(header.seq & 0xFFFF_FFFF)
                {
                    stats.pattern_error();
                }
                if live && let Some(line) = stats.live_line(Duration::from_millis(500)) {
                    eprint!("\r\x1b[2K{line}");
                }
                if show(&frame) == Flow::Stop {
                    break Ok(());
                }
                continue;
            }
            Ok(Incoming::End { reason: None }) => {
                eprintln!("server {} ended the stream", client.peer());
                break Ok(());
            }
            Ok(Incoming::End {
                reason: Some(reason),
            }) => {
                break Err(anyhow::anyhow!(
                    "server {} ended the stream: {reason}",
                    client.peer()
                ));
            }
            Err(_) if signal.is_stopped() => break Ok(()),
            Err(e) => e,
        };
        if args.no_reconnect || !is_connection_lost(&err) {
            break Err(err.into());
        }
        if live {
            eprintln!();
        }
        eprintln!("{err}; reconnecting");
        let Some(new) = reconnect(args.connect, &config, signal) else {
            break Ok(());
        };
        client = new;
        signal.watch(&client);
        stats.reconnected();
        announce(&client, "reconnected to");
        if client.handshake().stream != stream {
            stream = client.handshake().stream;
            decoder = framewire_codec::decoder(&stream);
        }
    };
    if live {
        eprintln!();
    }
    Outcome {
        stats,
        stream: Some(stream),
        result,
    }
}

fn announce(client: &Client, what: &str) {
    let s = client.handshake().stream;
    let fps = client.handshake().fps;
    let fps = if fps > 0.0 {
        format!(" at {fps} fps")
    } else {
        String::new()
    };
    let line = format!(
        "{what} {}: {} {}x{} {}{fps}\n",
        client.peer(),
        s.codec,
        s.width,
        s.height,
        s.format
    );
    // One write: `eprintln!` writes each piece on its own, and a line another process prints
    // to the same terminal (the demo's server) could land in the middle.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A lost connection (the server died, restarted, or went silent) is worth reconnecting to; a
/// server that sends bad bytes is not.
fn is_connection_lost(e: &NetError) -> bool {
    match e {
        NetError::Closed { .. } | NetError::Io { .. } => true,
        NetError::Wire { source, .. } => matches!(source.kind, WireErrorKind::Truncated { .. }),
        _ => false,
    }
}

/// Tries to connect again, waiting 0.1 s, 0.2 s, 0.4 s ... up to 2 s between attempts, until it
/// succeeds or `signal` is set.
fn reconnect(addr: SocketAddr, config: &ClientConfig, signal: &StopSignal) -> Option<Client> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut last_error = String::new();
    for attempt in 1u64.. {
        let wake = Instant::now() + delay;
        while Instant::now() < wake {
            if signal.is_stopped() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20).min(wake - Instant::now()));
        }
        match Client::connect(addr, config.clone()) {
            Ok(client) => {
                eprintln!(
                    "reconnected after {attempt} attempts in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                return Some(client);
            }
            Err(e) => {
                let msg = format!("{:#}", anyhow::Error::new(e));
                if msg != last_error {
                    eprintln!("still reconnecting: {msg}");
                    last_error = msg;
                }
            }
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    None
}

/// Writes the snapshot and the stats, and turns the outcome into the exit status.
pub fn finish(args: &ViewArgs, outcome: Outcome, last: &Frame) -> anyhow::Result<()> {
    let Outcome {
        stats,
        stream,
        mut result,
    } = outcome;
    if let Some(path) = &args.snapshot {
        if stats.frames() > 0 {
            crate::display::write_snapshot(path, last).context("--snapshot")?;
            eprintln!("wrote the last frame to {}", path.display());
        } else if result.is_ok() {
            result = Err(anyhow::anyhow!(
                "--snapshot {}: no frame was received",
                path.display()
            ));
        }
    }
    if let (Some(StatsFormat::Json), Some(stream)) = (args.stats, stream) {
        let report = stats.report(stream.codec.name(), stream.width, stream.height);
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report).context("writing stats")?;
        writeln!(out).context("writing stats")?;
    }
    result
}
