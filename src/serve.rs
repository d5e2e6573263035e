//! `framewire serve`: source -> resize -> encode once -> every connected viewer.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use framewire_capture::{ResizeFilter, Resizer, SourceSpec, fit_size, open_source};
use framewire_codec::{EncodeOptions, JpegBackend};
use framewire_core::{CodecError, CodecKind, Flow, Frame, FrameSink, StreamInfo};
use framewire_display::window::WindowSink;
use framewire_net::{EncodedFrame, Handshake, Server, ServerConfig, ServerEvent};

use crate::args::{parse_addr, parse_duration, parse_fps, parse_size};
use crate::live::{Feed, Pulled};
use crate::pipeline::Encoding;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where frames come from: test (a synthetic moving pattern), camera or camera:N
    #[arg(long, default_value = "test", value_name = "SOURCE")]
    source: SourceSpec,
    /// Size the source captures at
    #[arg(long, default_value = "640x480", value_parser = parse_size, value_name = "WxH")]
    size: (u32, u32),
    /// Frames per second the source is paced to; 0 = as fast as the pipeline takes them
    #[arg(long, default_value = "30", value_parser = parse_fps)]
    fps: f64,
    /// Resize to this width before encoding, keeping the aspect ratio (with --height: exactly that size)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    width: Option<u32>,
    /// Resize to this height before encoding, keeping the aspect ratio
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    height: Option<u32>,
    /// How frames are encoded on the wire: raw, bincode or jpeg
    #[arg(long, default_value = "raw")]
    codec: CodecKind,
    /// JPEG quality, 1-100
    #[arg(long, default_value = "80", value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    // The help names the encoders this build has, so it is made at run time.
    #[arg(long, default_value_t = JpegBackend::default(), value_name = "ENCODER", help = jpeg_encoder_help())]
    jpeg_encoder: JpegBackend,
    /// Address to listen on; port 0 picks a free one (printed). Use 0.0.0.0:9999 to serve a network
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = parse_addr, value_name = "ADDR")]
    listen: SocketAddr,
    /// Show what is being sent in a local window
    #[arg(long)]
    preview: bool,
    /// Stop after sending this many frames (frames are only captured while a viewer is connected)
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Viewers served at once; one more is told the server is full
    #[arg(long, default_value = "64", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_viewers: u32,
    /// Time a new connection has to send its viewer hello
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    handshake_timeout: Duration,
    /// Time one write to a viewer may block before that viewer is dropped as stalled
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    write_timeout: Duration,
    /// Threads that resize and encode, alternate frames each (the serving thread is one); default: one per core (up to 4) with --fps 0, else 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: Option<u32>,
}

/// `--jpeg-encoder`'s help: the choices, and which of them this build has.
fn jpeg_encoder_help() -> String {
    let built: Vec<_> = JpegBackend::available().map(JpegBackend::name).collect();
    let mut help = format!(
        "JPEG encoder for --codec jpeg: rust (framewire's own, pure Rust) or turbojpeg (libjpeg-turbo, faster); this build has {}",
        built.join(", ")
    );
    if !JpegBackend::Turbo.is_available() {
        help.push_str(" (turbojpeg needs a build with --features turbojpeg)");
    }
    help
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Before anything opens: a build without the encoder asked for says how to get it.
    if let Err(CodecError::Unsupported { reason, .. }) = args.jpeg_encoder.ensure_available() {
        anyhow::bail!("--jpeg-encoder {}: {reason}", args.jpeg_encoder);
    }
    if args.preview {
        return crate::display::serve_with_preview(move |sink| serve(args, Some(sink)));
    }
    serve(args, None)
}

/// Serves until stopped; with `preview`, shows it every frame sent and stops when it closes.
fn serve(args: ServeArgs, mut preview: Option<WindowSink>) -> anyhow::Result<()> {
    let (width, height) = args.size;
    let source = open_source(&args.source, width, height, args.fps)
        .with_context(|| format!("--source {}", args.source))?;
    let info = source.info();
    let (out_w, out_h) = fit_size(info.width, info.height, args.width, args.height)?;
    let options = EncodeOptions {
        quality: args.quality,
        jpeg_backend: args.jpeg_encoder,
    };
    let encoder = framewire_codec::encoder(args.codec, &options)?;
    let handshake = Handshake {
        stream: StreamInfo {
            codec: args.codec,
            width: out_w,
            height: out_h,
            format: encoder.output_format(info.format),
        },
        fps: args.fps,
    };
    let config = ServerConfig {
        max_viewers: args.max_viewers as usize,
        handshake_timeout: args.handshake_timeout,
        write_timeout: args.write_timeout,
        ..ServerConfig::default()
    };
    // Ctrl-C is handled before the address is announced, so that a script which reads the
    // address and then interrupts the server always gets a clean stop.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    ctrlc::set_handler(move || stop_flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let server = Server::bind(args.listen, handshake, config, print_event)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("listening on {}", server.local_addr());
    let codec_label = if args.codec == CodecKind::Jpeg {
        format!("{} ({} encoder)", args.codec, args.jpeg_encoder)
    } else {
        args.codec.to_string()
    };
    println!(
        "streaming {} {}x{} -> {codec_label} {}x{} at {} fps",
        info.name,
        info.width,
        info.height,
        out_w,
        out_h,
        if args.fps > 0.0 {
            args.fps.to_string()
        } else {
            "unpaced".into()
        }
    );
    let _ = std::io::stdout().flush();

    if let Some(preview) = &preview {
        let stop_flag = Arc::clone(&stop);
        preview.on_close(move || stop_flag.store(true, Ordering::SeqCst));
    }

    let mut captured = Frame::empty(info.format);
    let resize = (out_w, out_h) != (info.width, info.height);
    let as_is = args.codec == CodecKind::Jpeg && !resize && preview.is_none();
    let mut feed = Feed::new(source, &args.source, args.size, args.fps, as_is)?;
    // Camera JPEG passed through.
    let mut passthrough = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match args.threads {
        Some(n) => n as usize,
        None if args.fps > 0.0 => 1,
        None => cores.min(4),
    };
    if threads > cores {
        eprintln!(
            "framewire: note: --threads {threads} is more than the {cores} cores here; the extra \
             threads only hold more frames in flight"
        );
    }
    let codec = args.codec;
    let make = move || Ok(framewire_codec::encoder(codec, &options)?);
    // The encode stage resizes on its own lanes, unless the preview needs the resized frame
    // here first.
    let (mut resized, mut resizer) = (Frame::empty(info.format), Resizer::new(ResizeFilter::Area));
    let resize_here = resize && preview.is_some();
    let stage_resize = (resize && !resize_here).then_some((out_w, out_h));
    let mut encoding = Encoding::new(&make, threads, stage_resize)?;
    let mut sent = Sent::new(std::io::stderr().is_terminal());
    let limit_left = |sent: &Sent| args.frames.is_none_or(|n| sent.count < n);

    while !stop.load(Ordering::SeqCst) && limit_left(&sent) {
        if server.viewer_count() == 0 {
            server.wait_for_viewer(Duration::from_millis(200));
            continue;
        }
        let pulled = feed
            .pull(&mut captured, &mut passthrough)
            .context("capturing a frame")?;
        match pulled {
            Pulled::Ended => {
                // Frames still in the encode stage are sent before the stream ends.
                while limit_left(&sent)
                    && let Some(slot) = encoding.finish()?
                {
                    sent.publish(&server, &mut encoding, slot);
                }
                println!("source ended after {} frames", sent.count);
                break;
            }
            Pulled::Nothing => {
                if feed.keepalive_due(&mut sent.at)
                    && let Some(last) = &sent.last
                {
                    server.publish(last);
                }
                continue;
            }
            Pulled::Frame | Pulled::Payload { .. } => {}
        }
        let frame = if resize_here {
            resizer.resize(&captured, &mut resized, out_w, out_h)?;
            &mut resized
        } else {
            &mut captured
        };
        if let Some(preview) = &mut preview
            && preview.show(frame).context("--preview")? == Flow::Stop
        {
            break;
        }
        if let Pulled::Payload { seq, capture_us } = pulled {
            let mut slot = encoding.free_buffer();
            let encoded = Arc::get_mut(&mut slot).expect("pooled frames are not shared");
            encoded.seq = seq;
            encoded.capture_us = capture_us;
            std::mem::swap(&mut encoded.payload, &mut passthrough);
            sent.publish(&server, &mut encoding, slot);
        } else {
            encoding.submit(frame)?;
            // One frame out per frame in: two published back to back would make every
            // viewer's newest-wins slot drop the first.
            if let Some(slot) = encoding.next_ready()? {
                sent.publish(&server, &mut encoding, slot);
            }
        }
        sent.live_line(&server, feed.dropped());
    }
    if sent.live {
        eprintln!();
    }
    server.shutdown();
    println!("stopped after sending {} frames", sent.count);
    if feed.dropped() > 0 {
        println!(
            "{} captured frames dropped because the pipeline was busy (newest frame wins)",
            feed.dropped()
        );
    }
    Ok(())
}

/// What has been sent: the count, the last frame (re-sent as a keepalive while a camera is
/// gone) and when, and the live line's window.
struct Sent {
    count: u64,
    last: Option<Arc<EncodedFrame>>,
    at: Instant,
    /// Whether stderr is a terminal that gets the live line.
    live: bool,
    /// Start, frames and bytes of the live line's current window.
    window: (Instant, u64, u64),
}

impl Sent {
    fn new(live: bool) -> Sent {
        Sent {
            count: 0,
            last: None,
            at: Instant::now(),
            live,
            window: (Instant::now(), 0, 0),
        }
    }

    /// Sends `slot` to every viewer; its buffer goes back to the pool once they are done.
    fn publish(&mut self, server: &Server, encoding: &mut Encoding, slot: Arc<EncodedFrame>) {
        let bytes = slot.payload.len() as u64;
        server.publish(&slot);
        self.last = Some(Arc::clone(&slot));
        self.at = Instant::now();
        encoding.recycle(slot);
        self.count += 1;
        self.window.1 += 1;
        self.window.2 += bytes;
    }

    /// Rewrites the live line once a second on a terminal.
    fn live_line(&mut self, server: &Server, dropped_at_capture: u64) {
        if !self.live || self.window.0.elapsed() < Duration::from_secs(1) {
            return;
        }
        let secs = self.window.0.elapsed().as_secs_f64();
        eprint!(
            "\r\x1b[2K{:6.1} fps {:8.2} Mbit/s  viewers {}  frames {}  dropped for slow viewers {}  at capture {}",
            self.window.1 as f64 / secs,
            self.window.2 as f64 * 8.0 / secs / 1e6,
            server.viewer_count(),
            self.count,
            server.dropped_total(),
            dropped_at_capture
        );
        self.window = (Instant::now(), 0, 0);
    }
}

fn print_event(event: ServerEvent) {
    let plural = |n: usize| if n == 1 { "viewer" } else { "viewers" };
    match event {
        ServerEvent::Joined { peer, viewers } => {
            println!("viewer {peer} connected ({viewers} {})", plural(viewers));
        }
        ServerEvent::Left {
            peer,
            viewers,
            frames,
            dropped,
            error,
        } => {
            let why = error.map(|e| format!(": {e}")).unwrap_or_default();
            println!(
                "viewer {peer} left after {frames} frames, {dropped} dropped ({viewers} {}){why}",
                plural(viewers)
            );
        }
        ServerEvent::Rejected { peer, error } => {
            eprintln!("framewire: connection from {peer} rejected: {error}");
        }
    }
    let _ = std::io::stdout().flush();
}
