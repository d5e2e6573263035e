//! `framewire serve`: flags → a source, the codec registry and a framewire server → the
//! session's send path (source → resize → encode once → every viewer).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use framewire_capture::{ResizeFilter, Resizer, SourceSpec, fit_size, open_feed, open_source};
use framewire_codec::{EncodeOptions, JpegBackend};
use framewire_core::{
    CodecError, CodecKind, FrameSink, Ladder, MakeRendition, PixelFormat, Publisher, Rendition,
    Scaler, SourceEvent,
};
use framewire_net::{Board, HttpProtocol, Server, ServerConfig, ServerEvent};
use framewire_session::stage::MakeEncoder;
use framewire_session::{SendConfig, SendError, SendEvent, Sender};

use crate::args::{
    Rungs, parse_addr, parse_addr_or_port, parse_duration, parse_fps, parse_ladder, parse_on_off,
    parse_size,
};
use crate::live::LiveLine;

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
    /// Also serve HTTP here, for browsers and players: the page at /, MJPEG at /stream, /snapshot,
    /// /stats (JSON), /metrics (Prometheus). A port alone is on loopback; port 0 picks a free one
    /// (printed). Each protocol serves up to --max-viewers
    #[arg(long, value_parser = parse_addr_or_port, value_name = "ADDR|PORT")]
    http: Option<SocketAddr>,
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
    /// Move each viewer along the quality ladder by what its link carries (off: every viewer
    /// gets the top rung, unless it asks for another)
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    adapt: bool,
    /// The quality ladder, best first: sizes with a JPEG quality, like 640x480@80,320x240@50
    /// (sizes alone for raw and bincode); default: the asked size and quality, a lower quality,
    /// and half the size
    #[arg(long, value_name = "RUNGS", value_parser = parse_ladder)]
    ladder: Option<Rungs>,
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
        framewire_display::window::display_available()
            .map_err(|e| anyhow::anyhow!("--preview: {e}; run without --preview"))?;
        let title = "framewire: transmitting video".to_string();
        let (_, served) = crate::display::in_window(title, move |window| {
            let stop = Arc::new(AtomicBool::new(false));
            let on_close = Arc::clone(&stop);
            window.on_close(move || on_close.store(true, Ordering::SeqCst));
            serve(args, stop, Some(Box::new(window)))
        })
        .context("--preview")?;
        return served;
    }
    serve(args, Arc::new(AtomicBool::new(false)), None)
}

/// Serves until `stop` is set or the source ends; with `preview`, shows it every frame sent
/// and stops when it closes.
fn serve(
    args: ServeArgs,
    stop: Arc<AtomicBool>,
    preview: Option<Box<dyn FrameSink>>,
) -> anyhow::Result<()> {
    let (width, height) = args.size;
    let source = open_source(&args.source, width, height, args.fps)
        .with_context(|| format!("--source {}", args.source))?;
    let info = source.info();
    let (out_w, out_h) = fit_size(info.width, info.height, args.width, args.height)?;
    let options = EncodeOptions {
        quality: args.quality,
        jpeg_backend: args.jpeg_encoder,
    };
    // Only a stream of one rendition can pass a camera's JPEG through as it is.
    let resize = (out_w, out_h) != (info.width, info.height);
    let one_rung = !args.adapt && args.ladder.is_none();
    let as_is = args.codec == CodecKind::Jpeg && !resize && preview.is_none() && one_rung;
    let feed = open_feed(
        source,
        &args.source,
        args.size,
        args.fps,
        as_is.then_some(args.codec),
    )
    .with_context(|| format!("--source {}", args.source))?;
    let passthrough = feed.passthrough().is_some();
    let ladder = Arc::new(build_ladder(
        &args,
        &options,
        info.format,
        (out_w, out_h),
        passthrough,
    )?);
    // Ctrl-C is handled before the address is announced, so that a script which reads the
    // address and then interrupts the server always gets a clean stop.
    let on_ctrlc = Arc::clone(&stop);
    ctrlc::set_handler(move || on_ctrlc.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let server = bind(&args, Arc::clone(&ladder))?;
    let board = Arc::new(Board::new(&info.name, args.fps));
    board.watch(&server);
    let http = match args.http {
        Some(addr) => Some(
            HttpProtocol::bind(
                addr,
                Arc::clone(&ladder),
                Arc::clone(&board),
                config(&args),
                print_http_event,
            )
            .with_context(|| format!("--http: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    println!("listening on {}", server.local_addr());
    if let Some(http) = &http {
        println!("http on http://{}/", http.local_addr());
    }
    print_streaming(&args, &info.name, (info.width, info.height), (out_w, out_h));
    print_ladder(&ladder);
    if passthrough {
        println!("passing the camera's JPEG frames through as they are (no re-encode)");
    }
    let config = SendConfig {
        frames: args.frames,
        threads: threads(args.threads, args.fps),
    };
    let mut publishers: Vec<Arc<dyn Publisher>> = vec![Arc::new(server)];
    publishers.extend(http.map(|h| Arc::new(h) as Arc<dyn Publisher>));
    let scaler = || Box::new(Resizer::new(ResizeFilter::Area)) as Box<dyn Scaler>;
    let mut sender = Sender::new(
        feed,
        encoder_maker(options, board),
        &scaler,
        ladder,
        publishers,
        preview,
        &config,
    )?;
    let mut live = LiveLine::on_stderr();
    let report = sender.run(&stop, &mut |e| print_send_event(e, &info.name, &mut live));
    live.end();
    let report = report.map_err(|e| match e {
        SendError::Preview(e) => anyhow::Error::new(e).context("--preview"),
        e => e.into(),
    })?;
    println!("stopped after sending {} frames", report.frames);
    if report.dropped_at_capture > 0 {
        println!(
            "{} captured frames dropped because the pipeline was busy (newest frame wins)",
            report.dropped_at_capture
        );
    }
    Ok(())
}

/// The quality ladder `serve` offers: `--ladder`'s rungs, or by default the asked size and
/// quality, a lower quality, and half the size at that lower quality (for codecs without a
/// quality: the asked size, half and a quarter of it). Viewers may ask for other codecs and
/// widths (`make`), except from a camera whose JPEG is passed through as it is.
fn build_ladder(
    args: &ServeArgs,
    options: &EncodeOptions,
    source_format: PixelFormat,
    (w, h): (u32, u32),
    passthrough: bool,
) -> anyhow::Result<Ladder> {
    let rendition = rendition_maker(*options, source_format);
    let half = |n: u32| (n / 2).max(1);
    let lower = (args.quality as u32 * 5 / 8).max(1) as u8;
    let sizes: Vec<(u32, u32, Option<u8>)> = match &args.ladder {
        Some(Rungs(rungs)) => rungs.clone(),
        None if !args.adapt || passthrough => vec![(w, h, None)],
        None if args.codec == CodecKind::Jpeg => vec![
            (w, h, None),
            (w, h, Some(lower)),
            (half(w), half(h), Some(lower)),
        ],
        None => vec![
            (w, h, None),
            (half(w), half(h), None),
            (half(half(w)), half(half(h)), None),
        ],
    };
    let mut rungs = Vec::new();
    for (width, height, quality) in sizes {
        if quality.is_some() && args.codec != CodecKind::Jpeg {
            anyhow::bail!(
                "--ladder: {width}x{height}@{}: only jpeg has a quality; give sizes alone for {}",
                quality.unwrap_or_default(),
                args.codec
            );
        }
        let r = rendition(args.codec, width, height, quality.unwrap_or(args.quality))
            .map_err(|e| anyhow::anyhow!("--ladder: {e}"))?;
        // Two rungs alike (a low --quality) would be one rung offered twice.
        if !rungs.contains(&r) {
            rungs.push(r);
        }
    }
    if passthrough && rungs.len() > 1 {
        anyhow::bail!(
            "--ladder: a camera's JPEG passed through as it is has one rendition; add --adapt off              without --ladder, or --width to re-encode"
        );
    }
    let quality = args.quality;
    let make = (!passthrough).then(|| {
        Box::new(move |codec, width, height| rendition(codec, width, height, quality))
            as Box<MakeRendition>
    });
    Ladder::new(rungs, args.adapt, make).map_err(|e| anyhow::anyhow!("--ladder: {e}"))
}

/// Makes a rendition of a codec, size and quality (ignored by codecs without one), checking
/// that this build has its encoder.
fn rendition_maker(
    options: EncodeOptions,
    source_format: PixelFormat,
) -> impl Fn(CodecKind, u32, u32, u8) -> Result<Rendition, String> + Send + Sync + 'static {
    move |codec, width, height, quality| {
        let encoder = framewire_codec::encoder(codec, &options).map_err(|e| e.to_string())?;
        let quality = if codec == CodecKind::Jpeg { quality } else { 0 };
        let format = encoder.output_format(source_format);
        Ok(Rendition::new(codec, width, height, format, quality))
    }
}

/// Makes each rendition's encoder, at the rendition's quality, timed into `board`.
fn encoder_maker(options: EncodeOptions, board: Arc<Board>) -> Arc<MakeEncoder> {
    Arc::new(move |rendition: &Rendition| {
        let options = EncodeOptions {
            quality: rendition.quality.max(1),
            ..options
        };
        framewire_codec::encoder(rendition.stream.codec, &options)
            .map(|e| board.timed(e))
            .map_err(|e| SendError::Stage(framewire_session::chain(&e)))
    })
}

/// The framewire server of `ladder`'s renditions, on `--listen`.
fn bind(args: &ServeArgs, ladder: Arc<Ladder>) -> anyhow::Result<framewire_net::Fanout> {
    Server::bind(args.listen, ladder, args.fps, config(args), print_event)
        .with_context(|| format!("cannot listen on {}", args.listen))
}

/// The limits every protocol's server keeps.
fn config(args: &ServeArgs) -> ServerConfig {
    ServerConfig {
        max_viewers: args.max_viewers as usize,
        handshake_timeout: args.handshake_timeout,
        write_timeout: args.write_timeout,
        ..ServerConfig::default()
    }
}

/// `streaming test pattern 640x480 -> jpeg (rust encoder) 320x240 at 30 fps`.
fn print_streaming(args: &ServeArgs, name: &str, (w, h): (u32, u32), (ow, oh): (u32, u32)) {
    let codec_label = if args.codec == CodecKind::Jpeg {
        format!("{} ({} encoder)", args.codec, args.jpeg_encoder)
    } else {
        args.codec.to_string()
    };
    let fps = if args.fps > 0.0 {
        args.fps.to_string()
    } else {
        "unpaced".into()
    };
    println!("streaming {name} {w}x{h} -> {codec_label} {ow}x{oh} at {fps} fps");
    let _ = std::io::stdout().flush();
}

/// `quality ladder: 640x480@80, 640x480@50, 320x240@50 (each viewer follows its link)`.
fn print_ladder(ladder: &Ladder) {
    let rungs: Vec<String> = (0..ladder.rungs())
        .map(|id| ladder.placement(id).rendition.to_string())
        .collect();
    let how = if ladder.adapts() {
        "each viewer follows its link"
    } else {
        "viewers stay where they ask, the top by default"
    };
    println!("quality ladder: {} ({how})", rungs.join(", "));
}

/// Lanes of the encode stage: `--threads`, else one per core (up to 4) unpaced, else one.
fn threads(asked: Option<u32>, fps: f64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match asked {
        Some(n) => n as usize,
        None if fps > 0.0 => 1,
        None => cores.min(4),
    };
    if threads > cores {
        eprintln!(
            "framewire: note: --threads {threads} is more than the {cores} cores here; the extra \
             threads only hold more frames in flight"
        );
    }
    threads
}

fn print_send_event(event: SendEvent, source: &str, live: &mut LiveLine) {
    match event {
        SendEvent::Live {
            fps,
            mbit_per_s,
            subscribers,
            renditions,
            frames,
            dropped_for_slow,
            dropped_at_capture,
        } => {
            // `viewers 3 (640x480@80: 2, 320x240@50: 1)`: each viewer's rung.
            let on: Vec<String> = renditions
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            let on = if on.is_empty() {
                String::new()
            } else {
                format!(" ({})", on.join(", "))
            };
            live.show(&format!(
                "{fps:6.1} fps {mbit_per_s:8.2} Mbit/s  viewers {subscribers}{on}  frames {frames}  \
                 dropped for slow viewers {dropped_for_slow}  at capture {dropped_at_capture}"
            ));
        }
        SendEvent::Source(SourceEvent::Lost(why)) => {
            println!("camera lost: {why}; viewers stay connected, retrying every second");
        }
        SendEvent::Source(SourceEvent::Back) => println!("camera back: {source}"),
        SendEvent::Source(_) => {}
        SendEvent::Ended { frames } => println!("source ended after {frames} frames"),
    }
}

fn print_event(event: ServerEvent) {
    print_event_of("viewer", event);
}

/// An HTTP viewer's events: `http viewer 127.0.0.1:5000 connected ...`.
fn print_http_event(event: ServerEvent) {
    print_event_of("http viewer", event);
}

fn print_event_of(who: &str, event: ServerEvent) {
    let plural = |n: usize| if n == 1 { "viewer" } else { "viewers" };
    match event {
        ServerEvent::Joined {
            peer,
            viewers,
            placement,
            adapts,
        } => {
            let how = if adapts {
                "following its link"
            } else if placement.rung.is_some() && placement.rungs > 1 {
                "staying there"
            } else {
                ""
            };
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(", {how}")
            };
            println!(
                "{who} {peer} connected ({viewers} {}) on {}{how}",
                plural(viewers),
                placement
            );
        }
        ServerEvent::Moved {
            peer,
            from,
            to,
            link,
        } => {
            let way = if to.id > from.id { "down" } else { "up" };
            println!(
                "{who} {peer} moved {way} to {} from {}: its link carries about {:.2} Mbit/s",
                to,
                from.rendition,
                link * 8.0 / 1e6
            );
        }
        ServerEvent::Left {
            peer,
            viewers,
            frames,
            dropped,
            placement,
            error,
        } => {
            let why = error.map(|e| format!(": {e}")).unwrap_or_default();
            println!(
                "{who} {peer} left after {frames} frames, {dropped} dropped, on {} ({viewers} {}){why}",
                placement.rendition,
                plural(viewers)
            );
        }
        ServerEvent::Rejected { peer, error } => {
            eprintln!("framewire: connection from {peer} rejected: {error}");
        }
    }
    let _ = std::io::stdout().flush();
}
