//! What `serve` and `chat` share on the sending side: the flags that choose a source, its size,
//! codec and quality ladder, and their assembly into the session's [`Sender`].

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use framewire_capture::{
    ResizeFilter, Resizer, SourceOptions, SourceSpec, fit_size, open_feed, open_source_with,
};
use framewire_codec::{EncodeOptions, JpegBackend};
use framewire_core::{
    CodecError, CodecKind, Feed, FrameSink, Ladder, MakeRendition, PixelFormat, Publisher,
    Rendition, Scaler, SourceEvent,
};
use framewire_session::ladder::default_rungs;
use framewire_session::stage::MakeEncoder;
use framewire_session::{SendConfig, SendError, SendEvent, Sender};

use crate::args::{Rungs, parse_fps, parse_ladder, parse_on_off, parse_size};
use crate::live::LiveLine;

/// The sending side's flags.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Where frames come from: test (a synthetic moving pattern; test:2, test:3 ... other
    /// colours, frame numbers from 1000000, 2000000 ...), camera, camera:N, or file:PATH (Y4M,
    /// MJPEG, a PNG or JPEG still, a framewire recording)
    #[arg(long, default_value = "test", value_name = "SOURCE")]
    pub source: SourceSpec,
    /// Start a file source again at its end, instead of ending the stream
    #[arg(long = "loop")]
    pub looping: bool,
    /// Size the source captures at
    #[arg(long, default_value = "640x480", value_parser = parse_size, value_name = "WxH")]
    pub size: (u32, u32),
    /// Frames per second the source is paced to; 0 = as fast as the pipeline takes them
    /// [default: 30, or a file's own rate]
    #[arg(long, value_parser = parse_fps)]
    pub fps: Option<f64>,
    /// Resize to this width before encoding, keeping the aspect ratio (with --height: exactly that size)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub width: Option<u32>,
    /// Resize to this height before encoding, keeping the aspect ratio
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub height: Option<u32>,
    /// How frames are encoded on the wire: raw, bincode or jpeg
    #[arg(long, default_value = "raw")]
    pub codec: CodecKind,
    /// JPEG quality, 1-100
    #[arg(long, default_value = "80", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    // The help names the encoders this build has, so it is made at run time.
    #[arg(long, default_value_t = JpegBackend::default(), value_name = "ENCODER", help = jpeg_encoder_help())]
    pub jpeg_encoder: JpegBackend,
    /// Move each viewer along the quality ladder by what its link carries (off: every viewer
    /// gets the top rung, unless it asks for another)
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub adapt: bool,
    /// The quality ladder, best first: sizes with a JPEG quality, like 640x480@80,320x240@50
    /// (sizes alone for raw and bincode); default: the asked size and quality, a lower quality,
    /// and half the size
    #[arg(long, value_name = "RUNGS", value_parser = parse_ladder)]
    pub ladder: Option<Rungs>,
    /// Threads that resize and encode, alternate frames each (the serving thread is one); default: one per core (up to 4) with --fps 0, else 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,
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

/// A source opened and its stream planned: what [`Prepared::sender`] assembles.
pub struct Prepared {
    /// The source's frames (or its own JPEG, passed through).
    pub feed: Box<dyn Feed>,
    /// The renditions on offer.
    pub ladder: Arc<Ladder>,
    /// Makes each rendition's encoder.
    pub make_encoder: Arc<MakeEncoder>,
    /// The source's name, for messages.
    pub source_name: String,
    /// The size the source captures at, and the size sent.
    pub sizes: ((u32, u32), (u32, u32)),
    /// Whether the source's own JPEG goes out as it is.
    pub passthrough: bool,
    /// Lanes of the encode stage.
    pub threads: usize,
    /// Frames per second the source is paced to (0 = unpaced).
    pub fps: f64,
    /// The flags as they apply: a replayed recording sets the codec and one rung.
    pub args: SendArgs,
}

impl SendArgs {
    /// Opens the source and plans the stream: its size, ladder and encoders. `preview`: frames
    /// are also shown locally, so a camera's JPEG cannot go out untouched.
    pub fn prepare(&self, preview: bool) -> anyhow::Result<Prepared> {
        // Before anything opens: a build without the encoder asked for says how to get it.
        if let Err(CodecError::Unsupported { reason, .. }) = self.jpeg_encoder.ensure_available() {
            anyhow::bail!("--jpeg-encoder {}: {reason}", self.jpeg_encoder);
        }
        let (width, height) = self.size;
        let pace = SourceOptions {
            fps: self.fps,
            looping: self.looping,
        };
        let source = open_source_with(&self.source, width, height, &pace)
            .with_context(|| format!("--source {}", self.source))?;
        let info = source.info();
        let mut args = self.clone();
        let resizing = self.width.is_some() || self.height.is_some();
        let laddered = self.ladder.is_some();
        if let Some(codec) = crate::files::replayed(&*source, resizing, laddered, preview)? {
            (args.codec, args.adapt) = (codec, false);
        }
        let this = &args;
        let (out_w, out_h) = fit_size(info.width, info.height, this.width, this.height)?;
        let options = EncodeOptions {
            quality: this.quality,
            jpeg_backend: this.jpeg_encoder,
        };
        // Only a stream of one rendition can pass a camera's JPEG through as it is.
        let resize = (out_w, out_h) != (info.width, info.height);
        let one_rung = !this.adapt && this.ladder.is_none();
        let as_is = this.codec == CodecKind::Jpeg && !resize && !preview && one_rung;
        let feed = open_feed(
            source,
            &this.source,
            this.size,
            info.fps,
            as_is.then_some(this.codec),
        )
        .with_context(|| format!("--source {}", this.source))?;
        let passthrough = feed.passthrough().is_some();
        let ladder = Arc::new(build_ladder(
            this,
            &options,
            info.format,
            (out_w, out_h),
            passthrough,
        )?);
        Ok(Prepared {
            feed,
            ladder,
            make_encoder: encoder_maker(options),
            source_name: info.name.clone(),
            sizes: ((info.width, info.height), (out_w, out_h)),
            passthrough,
            threads: threads(this.threads, info.fps),
            fps: info.fps,
            args,
        })
    }
}

impl Prepared {
    /// Says what is sent, in lines: the stream, its ladder, a passthrough.
    pub fn describe(&self) -> String {
        let (from, to) = self.sizes;
        let mut text = streaming(&self.args, &self.source_name, from, to, self.fps);
        text.push('\n');
        text.push_str(&ladder_line(&self.ladder));
        if self.passthrough {
            text.push_str(&format!(
                "\npassing the source's {} frames through as they are (no re-encode)",
                self.args.codec
            ));
        }
        text
    }

    /// The send path to `publishers`, stopping after `frames` frames, with a `preview` sink.
    pub fn sender(
        self,
        publishers: Vec<Arc<dyn Publisher>>,
        preview: Option<Box<dyn FrameSink>>,
        frames: Option<u64>,
    ) -> Result<Sender, SendError> {
        let config = SendConfig {
            frames,
            threads: self.threads,
        };
        let scaler = || Box::new(Resizer::new(ResizeFilter::Area)) as Box<dyn Scaler>;
        Sender::new(
            self.feed,
            self.make_encoder,
            &scaler,
            self.ladder,
            publishers,
            preview,
            &config,
        )
    }
}

/// The quality ladder a sender offers: `--ladder`'s rungs, or the session's default. Viewers
/// may ask for other codecs and widths (`make`), except from a camera whose JPEG is passed
/// through as it is.
pub fn build_ladder(
    args: &SendArgs,
    options: &EncodeOptions,
    source_format: PixelFormat,
    (w, h): (u32, u32),
    passthrough: bool,
) -> anyhow::Result<Ladder> {
    let rendition = rendition_maker(*options, source_format);
    let adapts = args.adapt && !passthrough;
    let sizes = match &args.ladder {
        Some(Rungs(rungs)) => rungs.clone(),
        None => default_rungs(args.codec, (w, h), args.quality, adapts),
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
) -> impl Fn(CodecKind, u32, u32, u8) -> Result<Rendition, CodecError> + Send + Sync + 'static {
    move |codec, width, height, quality| {
        let encoder = framewire_codec::encoder(codec, &options)?;
        let quality = if codec == CodecKind::Jpeg { quality } else { 0 };
        let format = encoder.output_format(source_format);
        Ok(Rendition::new(codec, width, height, format, quality))
    }
}

/// Makes each rendition's encoder, at the rendition's quality.
fn encoder_maker(options: EncodeOptions) -> Arc<MakeEncoder> {
    Arc::new(move |rendition: &Rendition| {
        let options = EncodeOptions {
            quality: rendition.quality.max(1),
            ..options
        };
        framewire_codec::encoder(rendition.stream.codec, &options)
            .map_err(|e| SendError::Stage(framewire_session::chain(&e)))
    })
}

/// `streaming test pattern 640x480 -> jpeg (rust encoder) 320x240 at 30 fps`.
fn streaming(
    args: &SendArgs,
    name: &str,
    (w, h): (u32, u32),
    (ow, oh): (u32, u32),
    fps: f64,
) -> String {
    let codec_label = if args.codec == CodecKind::Jpeg {
        format!("{} ({} encoder)", args.codec, args.jpeg_encoder)
    } else {
        args.codec.to_string()
    };
    let fps = if fps > 0.0 {
        fps.to_string()
    } else {
        "unpaced".into()
    };
    format!("streaming {name} {w}x{h} -> {codec_label} {ow}x{oh} at {fps} fps")
}

/// `quality ladder: 640x480@80, 640x480@50, 320x240@50 (each viewer follows its link)`.
fn ladder_line(ladder: &Ladder) -> String {
    let rungs: Vec<String> = (0..ladder.rungs())
        .map(|id| ladder.placement(id).rendition.to_string())
        .collect();
    let how = if ladder.adapts() {
        "each viewer follows its link"
    } else {
        "viewers stay where they ask, the top by default"
    };
    format!("quality ladder: {} ({how})", rungs.join(", "))
}

/// Lanes of the encode stage: `--threads`, else one per core (up to 4) unpaced, else one.
pub fn threads(asked: Option<u32>, fps: f64) -> usize {
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

pub fn print_send_event(event: SendEvent, source: &str, live: &mut LiveLine) {
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
