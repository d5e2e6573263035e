//! An RTSP camera (or an NVR, a media server's RTSP out) as a source: `--source
//! rtsp://[USER:PASS@]HOST[:PORT]/PATH`, read with `retina`, the RTSP client of Moonfire NVR,
//! made for IP cameras (their quirks, Digest logins, parameter sets that change mid-stream)
//! and kept up to date; it is async, so a source runs its own single-threaded tokio runtime and
//! blocks on it, as every other source blocks on its device. The media come interleaved on the
//! RTSP connection (TCP), which passes any firewall the RTSP port does.
//!
//! The first video stream that is H.264 or JPEG is read. H.264 (constrained baseline, as
//! every framewire viewer takes it; another profile is refused at open) is passed through as it came,
//! Annex-B with the parameter sets before each keyframe (the capture crate has no codec, so it
//! is served as a `.h264` file is: its codec, its size, one rendition). JPEG is passed through
//! when the ladder's top rung is JPEG at its size, and decoded to be resized otherwise, as a USB
//! camera's MJPEG is. The camera's frames get their arrival time as capture time (its own clock
//! is not this one). A camera that drops or stalls (no frame for [`STALL`]) is an error the
//! capture thread answers by dialing again ([`reopener`]: after 1 s, doubling up to 30 s).
//!
//! [`reopener`]: crate::reopener

use std::pin::Pin;
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, PixelFormat, SourceInfo,
    now_micros,
};
use futures::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoFrame};

use framewire_file::h264::{NAL_SPS, nal_units, sps as sps_of};

use crate::convert::{mjpeg_passthrough, mjpeg_to_rgb, scan_jpeg};

/// The time from the dial to the first frame: connecting, the login, DESCRIBE, SETUP, PLAY.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A camera that sends no frame this long counts as lost.
pub const STALL: Duration = Duration::from_secs(5);

/// An RTSP URL as given: the URL without its credentials, and them.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    url: url::Url,
    credentials: Option<(String, String)>,
}

impl RtspUrl {
    /// Reads `rtsp://[USER:PASS@]HOST[:PORT]/PATH`; the error names what is wrong (never the
    /// password).
    pub fn parse(s: &str) -> Result<RtspUrl, String> {
        let mut url = url::Url::parse(s).map_err(|e| format!("{}: {e}", redact(s)))?;
        if url.scheme() != "rtsp" {
            return Err(format!("{}: not an rtsp:// URL", redact(s)));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{}: no host", redact(s)));
        }
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |v: &str| {
                url::form_urlencoded::parse(format!("x={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(RtspUrl { url, credentials })
    }
}

impl std::fmt::Display for RtspUrl {
    /// The URL with the password as `****`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.credentials {
            None => write!(f, "{}", self.url),
            Some((user, _)) => {
                let bare = self.url.as_str();
                let rest = bare.strip_prefix("rtsp://").unwrap_or(bare);
                write!(f, "rtsp://{user}:****@{rest}")
            }
        }
    }
}

impl std::fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtspUrl({self})")
    }
}

/// A URL that did not parse, with whatever may be a password hidden.
fn redact(s: &str) -> String {
    match s.split_once('@') {
        Some((_, host)) => format!("rtsp://****@{host}"),
        None => s.to_string(),
    }
}

/// A runtime for one source's session.
fn runtime(name: &str) -> Result<tokio::runtime::Runtime, CaptureError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CaptureError::Open {
            source_name: name.to_string(),
            reason: format!("cannot start its runtime: {e}"),
        })
}

/// DESCRIBE: the session, with the login the URL carries.
async fn describe(url: &RtspUrl) -> Result<Session<retina::client::Described>, String> {
    let creds = url
        .credentials
        .as_ref()
        .map(|(username, password)| Credentials {
            username: username.clone(),
            password: password.clone(),
        });
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent("framewire".to_string());
    Session::describe(url.url.clone(), options)
        .await
        .map_err(|e| e.to_string())
}

/// The codec of a stream framewire can take.
fn codec_of(encoding: &str) -> Option<CodecKind> {
    match encoding.to_ascii_lowercase().as_str() {
        "h264" => Some(CodecKind::H264),
        "jpeg" => Some(CodecKind::Jpeg),
        _ => None,
    }
}

/// What the camera offers, a line per stream, for `framewire devices --probe`.
pub fn probe(url: &str) -> Result<Vec<String>, CaptureError> {
    let url = RtspUrl::parse(url).map_err(CaptureError::Config)?;
    let name = url.to_string();
    let runtime = runtime(&name)?;
    // The session ends inside the runtime, which its goodbye needs.
    let _inside = runtime.enter();
    let session = runtime
        .block_on(async { tokio::time::timeout(OPEN_TIMEOUT, describe(&url)).await })
        .map_err(|_| {
            open_error(
                &name,
                format!("no answer within {}s", OPEN_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| open_error(&name, e))?;
    let mut lines = Vec::new();
    for (i, s) in session.streams().iter().enumerate() {
        let mut line = format!(
            "stream {i}: {} {}/{}",
            s.media(),
            s.encoding_name(),
            s.clock_rate_hz()
        );
        if let Some(ParametersRef::Video(v)) = s.parameters() {
            let (w, h) = v.pixel_dimensions();
            line.push_str(&format!(" {w}x{h} ({})", v.rfc6381_codec()));
        }
        if let Some(fps) = s.framerate() {
            line.push_str(&format!(" at {fps} fps"));
        }
        line.push_str(match codec_of(s.encoding_name()) {
            Some(_) if s.media() == "video" => ": framewire reads it",
            _ => ": framewire leaves it",
        });
        lines.push(line);
    }
    Ok(lines)
}

fn open_error(name: &str, reason: impl Into<String>) -> CaptureError {
    CaptureError::Open {
        source_name: name.to_string(),
        reason: reason.into(),
    }
}

/// An RTSP camera's video.
pub struct RtspSource {
    name: String,
    runtime: tokio::runtime::Runtime,
    /// Taken only by `drop`, inside the runtime.
    demuxed: Option<Pin<Box<Demuxed>>>,
    stream: usize,
    codec: CodecKind,
    width: u32,
    height: u32,
    fps: f64,
    seq: u64,
    /// The frame read at the open (its size), handed out first.
    first: Option<VideoFrame>,
    scratch: Vec<u8>,
}

impl RtspSource {
    /// Dials the camera at `url` and reads its first frame, under [`OPEN_TIMEOUT`].
    pub fn open(url: &str) -> Result<RtspSource, CaptureError> {
        RtspSource::open_url(&RtspUrl::parse(url).map_err(CaptureError::Config)?)
    }

    /// [`RtspSource::open`] of a URL read already.
    pub fn open_url(url: &RtspUrl) -> Result<RtspSource, CaptureError> {
        let name = url.to_string();
        let runtime = runtime(&name)?;
        let opened = runtime.block_on(async {
            tokio::time::timeout(OPEN_TIMEOUT, start(url))
                .await
                .unwrap_or_else(|_| Err(format!("no frame within {}s", OPEN_TIMEOUT.as_secs())))
        });
        let (demuxed, stream, codec, first) = opened.map_err(|e| open_error(&name, e))?;
        let params = demuxed.streams()[stream].parameters();
        if codec == CodecKind::H264 {
            // Constrained baseline only, as the `.h264` source and every framewire viewer take.
            let sps = nal_units(first.data()).find(|u| u[0] & 0x1f == NAL_SPS);
            if let Some(Err(e)) = sps.map(sps_of) {
                return Err(open_error(&name, format!("{e} (set the camera's profile)")));
            }
        }
        let (width, height) = match (codec, params.clone()) {
            (CodecKind::H264, Some(ParametersRef::Video(v))) => v.pixel_dimensions(),
            (CodecKind::H264, _) => {
                return Err(open_error(&name, "the camera's H.264 says no picture size"));
            }
            _ => {
                let info = scan_jpeg(first.data())
                    .map_err(|e| open_error(&name, format!("its first JPEG: {e}")))?;
                (info.width, info.height)
            }
        };
        let fps = match params {
            Some(ParametersRef::Video(v)) => v
                .frame_rate()
                .filter(|&(num, den)| num > 0 && den > 0)
                .map(|(num, den)| f64::from(den) / f64::from(num)),
            _ => None,
        }
        .or(demuxed.streams()[stream].framerate().map(f64::from))
        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0)
        .unwrap_or(30.0);
        Ok(RtspSource {
            name,
            runtime,
            demuxed: Some(demuxed),
            stream,
            codec,
            width,
            height,
            fps,
            seq: 0,
            first: Some(first),
            scratch: Vec::new(),
        })
    }

    fn failed(&self, e: impl std::fmt::Display) -> CaptureError {
        CaptureError::Device {
            source_name: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The next video frame of the stream, or why there is none.
    fn next_video(&mut self) -> Result<VideoFrame, CaptureError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let stream = self.stream;
        let Some(demuxed) = self.demuxed.as_mut() else {
            return Err(self.failed("closed"));
        };
        let next = self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + STALL;
            loop {
                match tokio::time::timeout_at(deadline, demuxed.next()).await {
                    Err(_) => return Err(format!("no frame for {}s", STALL.as_secs())),
                    Ok(None) => return Err("the camera ended the stream".to_string()),
                    Ok(Some(Err(e))) => return Err(e.to_string()),
                    Ok(Some(Ok(CodecItem::VideoFrame(f)))) if f.stream_id() == stream => {
                        return Ok(f);
                    }
                    Ok(Some(Ok(_))) => {}
                }
            }
        });
        next.map_err(|reason| CaptureError::Device {
            source_name: self.name.clone(),
            reason,
        })
    }
}

impl Drop for RtspSource {
    /// The session ends inside its runtime, which its goodbye needs.
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        self.demuxed = None;
    }
}

/// What [`start`] gives: the frames, the stream's index and codec, its first frame.
type Started = (Pin<Box<Demuxed>>, usize, CodecKind, VideoFrame);

/// DESCRIBE, SETUP and PLAY of the first video stream framewire can read, and its first frame:
/// over TCP, or over UDP from a server that refuses TCP's SETUP (400 or 461: rtsp-server-perl
/// plays over UDP only).
async fn start(url: &RtspUrl) -> Result<Started, String> {
    match start_over(url, Transport::Tcp(TcpTransportOptions::default())).await {
        Err((Some(400 | 461), _)) => {
            start_over(url, Transport::Udp(UdpTransportOptions::default()))
                .await
                .map_err(|(_, e)| format!("{e} (over UDP, after its SETUP over TCP was refused)"))
        }
        other => other.map_err(|(_, e)| e),
    }
}

/// [`start`] over `transport`; an error with the status of a refused SETUP.
async fn start_over(url: &RtspUrl, transport: Transport) -> Result<Started, (Option<u16>, String)> {
    let mut session = describe(url).await.map_err(|e| (None, e))?;
    let streams = session.streams();
    let Some((stream, codec)) = streams.iter().enumerate().find_map(|(i, s)| {
        (s.media() == "video")
            .then(|| codec_of(s.encoding_name()))
            .flatten()
            .map(|c| (i, c))
    }) else {
        let offered: Vec<String> = streams
            .iter()
            .map(|s| format!("{} {}", s.media(), s.encoding_name()))
            .collect();
        let why = format!(
            "no H.264 or JPEG video among its streams ({})",
            offered.join(", ")
        );
        return Err((None, why));
    };
    let setup = SetupOptions::default()
        .transport(transport)
        .frame_format(FrameFormat::SIMPLE);
    session
        .setup(stream, setup)
        .await
        .map_err(|e| (e.status_code(), e.to_string()))?;
    let failed = |e: retina::Error| (None, e.to_string());
    let playing = session.play(PlayOptions::default()).await.map_err(failed)?;
    let mut demuxed = Box::pin(playing.demuxed().map_err(failed)?);
    loop {
        match demuxed.next().await {
            None => return Err((None, "the camera ended the stream before a frame".into())),
            Some(Err(e)) => return Err(failed(e)),
            Some(Ok(CodecItem::VideoFrame(f))) if f.stream_id() == stream => {
                // An H.264 stream starts at a keyframe: the frames before one are no picture.
                if codec == CodecKind::H264 && !f.is_random_access_point() {
                    continue;
                }
                return Ok((demuxed, stream, codec, f));
            }
            Some(Ok(_)) => {}
        }
    }
}

impl FrameSource for RtspSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            width: self.width,
            height: self.height,
            format: PixelFormat::Rgb8,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        if self.codec == CodecKind::H264 {
            return Err(CaptureError::Config(format!(
                "{} is served as it is (H.264, no decode here): serve it with --codec h264 at \
                 its size",
                self.name
            )));
        }
        let frame = self.next_video()?;
        mjpeg_to_rgb(frame.data(), dst, &mut self.scratch).map_err(|e| self.failed(e))?;
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        Some(self.codec)
    }

    fn compressed_only(&self) -> bool {
        self.codec == CodecKind::H264
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        let frame = self.next_video()?;
        dst.codec = self.codec;
        dst.keyframe = frame.is_random_access_point() || self.codec == CodecKind::Jpeg;
        if self.codec == CodecKind::Jpeg {
            let info =
                mjpeg_passthrough(frame.data(), &mut dst.data).map_err(|e| self.failed(e))?;
            (dst.width, dst.height) = (info.width, info.height);
        } else {
            dst.data = frame.into_data();
            (dst.width, dst.height) = (self.width, self.height);
        }
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }
}

/// How long a lost camera waits before its next dial: 1 s, doubling up to 30 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Instant,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: Instant::now(),
            delay: Duration::from_secs(1),
        }
    }

    /// Whether a dial is due now.
    pub(crate) fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// A dial failed at `now`: the next waits twice as long.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.next = now + self.delay;
        self.delay = (self.delay * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_its_login_apart_and_never_shows_the_password() {
        let u = RtspUrl::parse("rtsp://admin:p%40ss@192.168.1.20:8554/stream1").unwrap();
        assert_eq!(u.credentials, Some(("admin".into(), "p@ss".into())));
        assert_eq!(u.url.as_str(), "rtsp://192.168.1.20:8554/stream1");
        assert_eq!(u.to_string(), "rtsp://admin:****@192.168.1.20:8554/stream1");
        let e = RtspUrl::parse("rtsp://admin:secret@:554/x").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(
            RtspUrl::parse("http://h/x")
                .unwrap_err()
                .contains("not an rtsp:// URL")
        );
    }

    #[test]
    fn the_backoff_doubles_to_thirty_seconds() {
        let mut b = Backoff::new();
        let t = Instant::now();
        assert!(b.due(t));
        let mut waits = Vec::new();
        for _ in 0..7 {
            b.failed(t);
            waits.push(b.next.duration_since(t).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }
}
