//! What `serve` and `chat` share on the sending side: the flags that choose a source, its size,
//! codec and quality ladder (the kit's [`SendOptions`]), and the send path's events as lines.

use clap::Args;
use framewire_capture::SourceSpec;
use framewire_codec::JpegBackend;
use framewire_core::CodecKind;
use framewire_kit::value;
use framewire_kit::{Prepared, Rung, SendOptions};
use framewire_session::SendEvent;

use crate::live::LiveLine;

/// The rungs `--ladder` gives, best first (one value, not a list of them, to clap).
#[derive(Debug, Clone)]
pub struct Rungs(Vec<Rung>);

/// `--source`, read without clap's own error line, which would repeat the value as given: a
/// password in an RTSP URL with it.
#[derive(Debug, Clone, Copy)]
struct SourceParser;

impl clap::builder::TypedValueParser for SourceParser {
    type Value = SourceSpec;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SourceSpec, clap::Error> {
        let kind = clap::error::ErrorKind::ValueValidation;
        let refuse = |why: String| {
            clap::Error::raw(
                kind,
                format!("invalid value for '--source <SOURCE>': {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8".to_string()))?;
        text.parse().map_err(refuse)
    }
}

/// The sending side's flags.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Where frames come from: test (a synthetic moving pattern; test:2, test:3 ... other
    /// colours, frame numbers from 1000000, 2000000 ...), camera, camera:N, file:PATH (Y4M,
    /// MJPEG, a PNG or JPEG still, a framewire recording), or rtsp://[USER:PASS@]HOST[:PORT]/PATH
    /// (an IP camera: its H.264 served as it is with --codec h264, its MJPEG like a camera's)
    #[arg(long, default_value = "test", value_parser = SourceParser, value_name = "SOURCE")]
    pub source: SourceSpec,
    /// Start a file source again at its end, instead of ending the stream
    #[arg(long = "loop")]
    pub looping: bool,
    /// Size the source captures at
    #[arg(long, default_value = "640x480", value_parser = value::size, value_name = "WxH")]
    pub size: (u32, u32),
    /// Frames per second the source is paced to; 0 = as fast as the pipeline takes them
    /// [default: 30, or a file's own rate]
    #[arg(long, value_parser = value::fps)]
    pub fps: Option<f64>,
    /// Resize to this width before encoding, keeping the aspect ratio (with --height: exactly that size)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub width: Option<u32>,
    /// Resize to this height before encoding, keeping the aspect ratio
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub height: Option<u32>,
    /// How frames are encoded on the wire: raw, bincode, jpeg or h264 (a build with --features
    /// h264)
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
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = value::on_off, action = clap::ArgAction::Set)]
    pub adapt: bool,
    /// The quality ladder, best first: sizes with a JPEG quality, like 640x480@80,320x240@50,
    /// with an H.264 bitrate, like 640x480@1500k,320x240@400k, or sizes alone; default: the
    /// asked size at the asked quality (bitrate), at a lower one, and half the size
    #[arg(long, value_name = "RUNGS", value_parser = |s: &str| value::ladder(s).map(Rungs))]
    pub ladder: Option<Rungs>,
    /// Threads that resize and encode, alternate frames each (the serving thread is one); default: one per core (up to 4) with --fps 0, else 1; h264: 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,
    /// H.264's bitrate for the top rung in kbit/s; the default ladder's rungs below at 5/8, 3/8
    /// and (at half the size) 3/16 of it [default: 0.25 bits a pixel at 30 fps, 2304 at 640x480]
    #[arg(long, value_name = "KBIT", value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub bitrate: Option<u32>,
    /// H.264's frames from one keyframe to the next (a viewer that joins or loses a frame gets
    /// one sooner)
    #[arg(long, default_value_t = framewire_codec::DEFAULT_KEYINT, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keyint: u32,
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

impl SendArgs {
    /// The flags as the kit's options.
    pub fn options(&self) -> SendOptions {
        SendOptions {
            source: self.source.clone(),
            looping: self.looping,
            size: self.size,
            fps: self.fps,
            width: self.width,
            height: self.height,
            codec: self.codec,
            quality: self.quality,
            jpeg_encoder: self.jpeg_encoder,
            adapt: self.adapt,
            ladder: self.ladder.clone().map(|Rungs(rungs)| rungs),
            threads: self.threads,
            bitrate: self.bitrate,
            keyint: self.keyint,
        }
    }

    /// Opens the source and plans the stream (see [`SendOptions::prepare`]), saying its notes.
    pub fn prepare(&self, preview: bool) -> anyhow::Result<Prepared> {
        let prepared = self.options().prepare(preview)?;
        for note in &prepared.notes {
            eprintln!("framewire: note: {note}");
        }
        Ok(prepared)
    }
}

/// Tells the user what the send path did: the live line, a camera lost and back, the end.
pub fn print_send_event(event: SendEvent, source: &str, live: &mut LiveLine) {
    match framewire_kit::lines::send_event(&event, source) {
        Some(line) if matches!(event, SendEvent::Live { .. }) => live.show(&line),
        Some(line) => println!("{line}"),
        None => {}
    }
}
