//! A sender planned from plain options: the source opened, its size fitted, the quality ladder
//! built (the options' rungs or the session's default) and each rendition's encoder made; then
//! the session's [`Sender`] to any list of publishers.

use std::sync::Arc;

use framewire_capture::{
    ResizeFilter, Resizer, SourceOptions, SourceSpec, fit_size, open_feed, open_source_with,
};
use framewire_codec::{EncodeOptions, JpegBackend};
use framewire_core::{
    CaptureError, CodecError, CodecKind, Feed, FrameSink, FrameSource, Ladder, LadderError,
    MakeRendition, PixelFormat, Publisher, Rendition, Scaler, SourceInfo,
};
use framewire_net::Board;
pub use framewire_session::ladder::Rung;
use framewire_session::ladder::default_rungs;
use framewire_session::stage::MakeEncoder;
use framewire_session::{SendConfig, SendError, Sender};

/// What a sending side sends: the command line's `serve` and `chat` flags, as values. Errors
/// name each option by its flag (`--ladder`, `--source`).
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Where frames come from.
    pub source: SourceSpec,
    /// Start a file source again at its end.
    pub looping: bool,
    /// The size the source captures at.
    pub size: (u32, u32),
    /// Frames per second the source is paced to (0: unpaced; `None`: 30, or a file's own).
    pub fps: Option<f64>,
    /// The width to resize to before encoding (with `height`: exactly that size).
    pub width: Option<u32>,
    /// The height to resize to before encoding.
    pub height: Option<u32>,
    /// How frames are encoded.
    pub codec: CodecKind,
    /// JPEG quality, 1-100.
    pub quality: u8,
    /// Which JPEG encoder.
    pub jpeg_encoder: JpegBackend,
    /// Whether each viewer moves along the ladder by what its link carries.
    pub adapt: bool,
    /// The quality ladder, best first; `None`: the session's default.
    pub ladder: Option<Vec<Rung>>,
    /// Lanes of the encode stage; `None`: one per core (up to 4) unpaced, else one (always one
    /// for an inter-frame codec, whose every frame follows the one before).
    pub threads: Option<u32>,
    /// H.264's bitrate for the top rung in kbit/s (the default ladder's rungs below at parts
    /// of it); `None`: one that fits the size ([`framewire_codec::default_bitrate`]).
    pub bitrate: Option<u32>,
    /// H.264's frames from keyframe to keyframe.
    pub keyint: u32,
}

/// Why a sender could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The JPEG encoder asked for is not in this build.
    #[error("--jpeg-encoder {backend}: {reason}")]
    Encoder {
        /// The encoder asked for.
        backend: JpegBackend,
        /// Why it is missing, and how to get it.
        reason: String,
    },
    /// The source could not be opened.
    #[error("--source {spec}")]
    Source {
        /// The source, as the user named it.
        spec: SourceSpec,
        /// Why.
        #[source]
        error: CaptureError,
    },
    /// The size to resize to is out of range.
    #[error(transparent)]
    Size(CaptureError),
    /// A recording is replayed as recorded: an option that would need a decode is refused.
    #[error(
        "{flag}: a recording is replayed as it was recorded ({codec}), with no decode; leave out {flag}"
    )]
    Replayed {
        /// The option refused.
        flag: &'static str,
        /// The recording's codec.
        codec: CodecKind,
    },
    /// A rung has a quality its codec does not take.
    #[error(
        "--ladder: {width}x{height}@{quality}: only jpeg has a quality; for {codec} give {}",
        rung_hint(*codec, *width, *height)
    )]
    RungQuality {
        /// The rung's width.
        width: u32,
        /// The rung's height.
        height: u32,
        /// The quality given.
        quality: u8,
        /// The ladder's codec.
        codec: CodecKind,
    },
    /// A rung has a bitrate its codec does not take.
    #[error(
        "--ladder: {width}x{height}@{kbit}k: only h264 has a bitrate; for {codec} give {}",
        rung_hint(*codec, *width, *height)
    )]
    RungBitrate {
        /// The rung's width.
        width: u32,
        /// The rung's height.
        height: u32,
        /// The bitrate given, kbit/s.
        kbit: u32,
        /// The ladder's codec.
        codec: CodecKind,
    },
    /// A rung's encoder cannot be made.
    #[error("--ladder: {0}")]
    Rendition(CodecError),
    /// A camera's JPEG passed through has one rendition.
    #[error(
        "--ladder: a camera's JPEG passed through as it is has one rendition; add --adapt off without --ladder, or --width to re-encode"
    )]
    PassthroughLadder,
    /// The ladder itself is refused.
    #[error("--ladder: {0}")]
    Ladder(LadderError),
    /// More than one encode thread for an inter-frame codec.
    #[error(
        "--threads {threads}: {codec} encodes each frame after the one before, on one thread; leave out --threads"
    )]
    InterFrameThreads {
        /// The threads asked for.
        threads: u32,
        /// The codec.
        codec: CodecKind,
    },
}

/// What a rung of `codec` takes after its size.
fn rung_hint(codec: CodecKind, width: u32, height: u32) -> String {
    match codec {
        CodecKind::Jpeg => format!("a quality ({width}x{height}@80) or the size alone"),
        CodecKind::H264 => format!("a bitrate ({width}x{height}@400k) or the size alone"),
        _ => format!("the size alone ({width}x{height})"),
    }
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
    /// The options as they apply: a replayed recording sets the codec and one rung.
    pub options: SendOptions,
    /// What the caller may tell the user (more threads than cores).
    pub notes: Vec<String>,
}

impl SendOptions {
    /// Opens the source and plans the stream: its size, ladder and encoders. `preview`: frames
    /// are also shown locally, so a camera's JPEG cannot go out untouched.
    pub fn prepare(&self, preview: bool) -> Result<Prepared, PrepareError> {
        // Before anything opens: a build without the encoder asked for says how to get it.
        self.encoder_available()?;
        let in_source = |error| PrepareError::Source {
            spec: self.source.clone(),
            error,
        };
        let (width, height) = self.size;
        let pace = SourceOptions {
            fps: self.fps,
            looping: self.looping,
        };
        let source = open_source_with(&self.source, width, height, &pace).map_err(in_source)?;
        let info = source.info();
        let mut this = self.clone();
        let resizing = self.width.is_some() || self.height.is_some();
        if let Some(codec) = replayed(&*source, resizing, self.ladder.is_some(), preview)? {
            (this.codec, this.adapt) = (codec, false);
        }
        let (spec, size, fps) = (&self.source, self.size, info.fps);
        this.plan(info, preview, |codec| {
            open_feed(source, spec, size, fps, codec).map_err(in_source)
        })
    }

    /// Plans the stream of frames a program hands over itself (`feed`, RGB of `feed.info()`'s
    /// size), as [`prepare`](Self::prepare) plans an opened source's; `source` is not read.
    pub fn prepare_feed(&self, feed: Box<dyn Feed>) -> Result<Prepared, PrepareError> {
        self.encoder_available()?;
        let info = feed.info();
        self.clone().plan(info, false, |_| Ok(feed))
    }

    /// Whether this build has the JPEG encoder asked for; if not, how to get it.
    fn encoder_available(&self) -> Result<(), PrepareError> {
        match self.jpeg_encoder.ensure_available() {
            Err(CodecError::Unsupported { reason, .. }) => Err(PrepareError::Encoder {
                backend: self.jpeg_encoder,
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Plans the stream of a source that delivers `info`: its size fitted, the encode stage's
    /// lanes, the ladder, each rendition's encoder; `feed` opens the feed, passing through the
    /// codec it is given, if any.
    fn plan(
        mut self,
        info: SourceInfo,
        preview: bool,
        feed: impl FnOnce(Option<CodecKind>) -> Result<Box<dyn Feed>, PrepareError>,
    ) -> Result<Prepared, PrepareError> {
        let this = &mut self;
        let mut notes = Vec::new();
        let (out_w, out_h) = fit_size(info.width, info.height, this.width, this.height)
            .map_err(PrepareError::Size)?;
        let inter = !this.codec.is_intra_only();
        if let Some(threads @ 2..) = this.threads.filter(|_| inter) {
            let codec = this.codec;
            return Err(PrepareError::InterFrameThreads { threads, codec });
        }
        let lanes = match inter {
            true => 1,
            false => threads(this.threads, info.fps, &mut notes),
        };
        let options = EncodeOptions {
            quality: this.quality,
            jpeg_backend: this.jpeg_encoder,
            bitrate_kbit: this.bitrate.unwrap_or(0),
            keyint: this.keyint,
            fps: if info.fps > 0.0 {
                info.fps.round() as u32
            } else {
                30
            },
        };
        // Only a stream of one rendition can pass a camera's JPEG through as it is.
        let resize = (out_w, out_h) != (info.width, info.height);
        let one_rung = !this.adapt && this.ladder.is_none();
        let as_is = this.codec == CodecKind::Jpeg && !resize && !preview && one_rung;
        let feed = feed(as_is.then_some(this.codec))?;
        let passthrough = feed.passthrough().is_some();
        let ladder = build_ladder(
            this,
            &options,
            info.format,
            (out_w, out_h),
            (passthrough, lanes),
        )?;
        Ok(Prepared {
            feed,
            ladder: Arc::new(ladder),
            make_encoder: encoder_maker(options),
            source_name: info.name.clone(),
            sizes: ((info.width, info.height), (out_w, out_h)),
            passthrough,
            threads: lanes,
            fps: info.fps,
            options: self,
            notes,
        })
    }
}

impl Prepared {
    /// Says what is sent, in lines: the stream, its ladder, a passthrough.
    pub fn describe(&self) -> String {
        let (from, to) = self.sizes;
        let mut text = streaming(&self.options, &self.source_name, from, to, self.fps);
        text.push('\n');
        text.push_str(&ladder_line(&self.ladder));
        if self.passthrough {
            text.push_str(&format!(
                "\npassing the source's {} frames through as they are (no re-encode)",
                self.options.codec
            ));
        }
        text
    }

    /// Times each encode into `board` (for `/stats` and `/metrics`).
    pub fn time_encodes(&mut self, board: &Arc<Board>) {
        let (make, board) = (Arc::clone(&self.make_encoder), Arc::clone(board));
        self.make_encoder = Arc::new(move |r: &Rendition| make(r).map(|e| board.timed(e)));
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
        let (feed, make, ladder) = (self.feed, self.make_encoder, self.ladder);
        Sender::new(feed, make, &scaler, ladder, publishers, preview, &config)
    }
}

/// Whether `source` is a recording, which is sent as it was recorded: its codec, its size, one
/// rendition. Options that would need a decode are refused.
fn replayed(
    source: &dyn FrameSource,
    resize: bool,
    ladder: bool,
    preview: bool,
) -> Result<Option<CodecKind>, PrepareError> {
    let Some(codec) = source
        .compressed_codec()
        .filter(|_| source.compressed_only())
    else {
        return Ok(None);
    };
    let refused = [
        (resize, "--width/--height"),
        (ladder, "--ladder"),
        (preview, "--preview"),
    ];
    match refused.iter().find(|(on, _)| *on) {
        Some(&(_, flag)) => Err(PrepareError::Replayed { flag, codec }),
        None => Ok(Some(codec)),
    }
}

/// The quality ladder a sender offers: the options' rungs, or the session's default. Viewers
/// may ask for other codecs and widths (`make`), except from a camera whose JPEG is passed
/// through as it is. An H.264 rung without a bitrate of its own, and a rendition asked for,
/// takes the top's bitrate scaled by its pixels.
fn build_ladder(
    args: &SendOptions,
    options: &EncodeOptions,
    source_format: PixelFormat,
    (w, h): (u32, u32),
    (passthrough, lanes): (bool, usize),
) -> Result<Ladder, PrepareError> {
    let rendition = rendition_maker(*options, source_format, lanes);
    let adapts = args.adapt && !passthrough;
    let kbit = args
        .bitrate
        .unwrap_or_else(|| framewire_codec::default_bitrate(w, h));
    let scaled = move |width: u32, height: u32| {
        let share = f64::from(width) * f64::from(height) / (f64::from(w) * f64::from(h));
        ((f64::from(kbit) * share).round() as u32).max(1)
    };
    let sizes = match &args.ladder {
        Some(rungs) => rungs.clone(),
        None => default_rungs(args.codec, (w, h), (args.quality, kbit), adapts),
    };
    let codec = args.codec;
    let mut rungs = Vec::new();
    for Rung {
        width,
        height,
        quality,
        bitrate_kbit,
    } in sizes
    {
        if let Some(quality) = quality.filter(|_| codec != CodecKind::Jpeg) {
            return Err(PrepareError::RungQuality {
                width,
                height,
                quality,
                codec,
            });
        }
        if let Some(kbit) = bitrate_kbit.filter(|_| codec != CodecKind::H264) {
            return Err(PrepareError::RungBitrate {
                width,
                height,
                kbit,
                codec,
            });
        }
        let quality = quality.unwrap_or(args.quality);
        let kbit = bitrate_kbit.unwrap_or_else(|| scaled(width, height));
        let r = rendition(codec, width, height, quality, kbit).map_err(PrepareError::Rendition)?;
        // Two rungs alike (a low quality) would be one rung offered twice.
        if !rungs.contains(&r) {
            rungs.push(r);
        }
    }
    if passthrough && rungs.len() > 1 {
        return Err(PrepareError::PassthroughLadder);
    }
    let quality = args.quality;
    let make = (!passthrough).then(|| {
        Box::new(move |codec, width, height| {
            rendition(codec, width, height, quality, scaled(width, height))
        }) as Box<MakeRendition>
    });
    Ladder::new(rungs, args.adapt, make).map_err(PrepareError::Ladder)
}

/// Makes a rendition of a codec, size and quality or bitrate (each ignored by the codecs
/// without one), checking that this build has its encoder, and that an inter-frame codec has
/// the stage's one lane.
fn rendition_maker(
    options: EncodeOptions,
    source_format: PixelFormat,
    lanes: usize,
) -> impl Fn(CodecKind, u32, u32, u8, u32) -> Result<Rendition, CodecError> + Send + Sync + 'static
{
    move |codec, width, height, quality, kbit| {
        if !codec.is_intra_only() && lanes > 1 {
            return Err(CodecError::Unsupported {
                codec,
                reason: format!(
                    "it encodes each frame after the one before, on one thread, and this server \
                     encodes on {lanes} (--threads)"
                ),
            });
        }
        let encoder = framewire_codec::encoder(codec, &options)?;
        let quality = if codec == CodecKind::Jpeg { quality } else { 0 };
        let kbit = if codec == CodecKind::H264 { kbit } else { 0 };
        let format = encoder.output_format(source_format);
        Ok(Rendition::new(codec, width, height, format, quality).with_bitrate(kbit))
    }
}

/// Makes each rendition's encoder, at the rendition's quality or bitrate.
fn encoder_maker(options: EncodeOptions) -> Arc<MakeEncoder> {
    Arc::new(move |rendition: &Rendition| {
        let options = EncodeOptions {
            quality: rendition.quality.max(1),
            bitrate_kbit: rendition.bitrate_kbit,
            ..options
        };
        framewire_codec::encoder(rendition.stream.codec, &options)
            .map_err(|e| SendError::Stage(framewire_session::chain(&e)))
    })
}

/// `streaming test pattern 640x480 -> jpeg (rust encoder) 320x240 at 30 fps`.
fn streaming(
    args: &SendOptions,
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

/// Lanes of the encode stage: `asked`, else one per core (up to 4) unpaced, else one. More than
/// the cores here is kept, with a note.
fn threads(asked: Option<u32>, fps: f64, notes: &mut Vec<String>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match asked {
        Some(n) => n as usize,
        None if fps > 0.0 => 1,
        None => cores.min(4),
    };
    if threads > cores {
        notes.push(format!(
            "--threads {threads} is more than the {cores} cores here; the extra threads only \
             hold more frames in flight"
        ));
    }
    threads
}
