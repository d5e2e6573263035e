//! What `--source` accepts ([`SourceSpec`]) and opening the source it names ([`open_source`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use framewire_core::{CaptureError, FrameSource};

use crate::file::SourceOptions;
use framewire_pattern::TestPattern;

/// A parsed `--source` value: `test` (the same as `test:1`), `test:N`, `camera` (the same as
/// `camera:0`), `camera:N` or `file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The synthetic [`TestPattern`], in this variant (1 and up; see [`TestPattern::variant`]).
    Test(u32),
    /// The camera with this index, as the operating system numbers them.
    Camera(u32),
    /// A file: Y4M, MJPEG, a still PNG or JPEG, or a framewire recording (see [`crate::file`]).
    File(PathBuf),
    /// An RTSP camera (see [`crate::rtsp`]); boxed, as a URL is large beside the others.
    Rtsp(Box<crate::rtsp::RtspUrl>),
}

impl FromStr for SourceSpec {
    type Err = String;

    /// Parses `test`, `test:N` (N from 1), `camera`, `camera:N` or `file:PATH`, ignoring ASCII
    /// case (but the path's).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 5 && s[..5].eq_ignore_ascii_case("file:") {
            return Ok(SourceSpec::File(PathBuf::from(&s[5..])));
        }
        if s.len() > 7 && s[..7].eq_ignore_ascii_case("rtsp://") {
            return crate::rtsp::RtspUrl::parse(s).map(|url| SourceSpec::Rtsp(Box::new(url)));
        }
        let lower = s.to_ascii_lowercase();
        let spec = match lower.as_str() {
            "test" => Some(SourceSpec::Test(1)),
            "camera" => Some(SourceSpec::Camera(0)),
            other => match other.split_once(':') {
                Some(("camera", index)) => index.parse().ok().map(SourceSpec::Camera),
                Some(("test", variant)) => variant
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .map(SourceSpec::Test),
                _ => None,
            },
        };
        spec.ok_or_else(|| {
            format!(
                "unknown source {s:?}, expected test, test:N (N from 1), camera, camera:N, \
                 file:PATH or rtsp://[USER:PASS@]HOST[:PORT]/PATH"
            )
        })
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Test(1) => f.write_str("test"),
            SourceSpec::Test(n) => write!(f, "test:{n}"),
            SourceSpec::Camera(index) => write!(f, "camera:{index}"),
            SourceSpec::File(path) => write!(f, "file:{}", path.display()),
            SourceSpec::Rtsp(url) => write!(f, "{url}"),
        }
    }
}

/// What a build without the `camera` feature says when asked for a camera.
pub const NO_CAMERA_SUPPORT: &str =
    "this build has no camera support; rebuild with --features camera, or use --source test";

/// Opens the source `spec` names, producing `width` x `height` frames paced to `fps`
/// (0 = as fast as they are asked for). A camera picks its mode closest to that (see
/// [`crate::negotiate()`]); its [`framewire_core::SourceInfo`] names the mode it picked.
///
/// Without the `camera` feature, asking for a camera is a [`CaptureError::Open`] that says what
/// to do instead.
pub fn open_source(
    spec: &SourceSpec,
    width: u32,
    height: u32,
    fps: f64,
) -> Result<Box<dyn FrameSource>, CaptureError> {
    let options = SourceOptions {
        fps: Some(fps),
        looping: false,
    };
    open_source_with(spec, width, height, &options)
}

/// [`open_source`] with the pace left to the source where `options.fps` is `None` (a file's own
/// rate; 30 for the others) and a file started again at its end with `options.looping`.
pub fn open_source_with(
    spec: &SourceSpec,
    width: u32,
    height: u32,
    options: &SourceOptions,
) -> Result<Box<dyn FrameSource>, CaptureError> {
    let fps = options.fps.unwrap_or(crate::file::DEFAULT_FPS);
    match spec {
        SourceSpec::File(path) => crate::file::open_file(path, options),
        SourceSpec::Test(n) => Ok(Box::new(TestPattern::new(width, height, fps)?.variant(*n))),
        SourceSpec::Rtsp(url) => Ok(Box::new(crate::rtsp::RtspSource::open_url(url)?)),
        #[cfg(feature = "camera")]
        SourceSpec::Camera(index) => Ok(Box::new(crate::camera::CameraSource::open(
            *index, width, height, fps,
        )?)),
        #[cfg(not(feature = "camera"))]
        SourceSpec::Camera(_) => Err(CaptureError::Open {
            source_name: spec.to_string(),
            reason: NO_CAMERA_SUPPORT.to_string(),
        }),
    }
}

/// For sources that can disappear and come back (cameras): how often to look for it again and
/// how to reopen it with the same settings, for [`crate::LatestFrame::spawn_with`]. `None` for
/// sources that cannot get lost.
pub fn reopener(
    spec: &SourceSpec,
    width: u32,
    height: u32,
    fps: f64,
) -> Option<(std::time::Duration, crate::Reopen)> {
    match spec {
        SourceSpec::Test(_) | SourceSpec::File(_) => None,
        SourceSpec::Rtsp(url) => {
            // Looked for every second; dialed after a backoff that doubles with each failure.
            let url = url.clone();
            let mut backoff = crate::rtsp::Backoff::new();
            Some((
                std::time::Duration::from_secs(1),
                Box::new(move || {
                    let now = std::time::Instant::now();
                    if !backoff.due(now) {
                        return Err(CaptureError::Config("not yet: backing off".into()));
                    }
                    let opened = crate::rtsp::RtspSource::open_url(&url);
                    match &opened {
                        Ok(_) => backoff = crate::rtsp::Backoff::new(),
                        Err(_) => backoff.failed(now),
                    }
                    opened.map(|s| Box::new(s) as Box<dyn FrameSource>)
                }),
            ))
        }
        SourceSpec::Camera(_) => {
            let spec = spec.clone();
            Some((
                std::time::Duration::from_secs(1),
                Box::new(move || open_source(&spec, width, height, fps)),
            ))
        }
    }
}

/// Every camera there is, with the modes framewire can read (`framewire devices`); empty when
/// there is none. Without the `camera` feature, a [`CaptureError::Open`] saying so.
pub fn list_cameras() -> Result<Vec<crate::negotiate::CameraDescription>, CaptureError> {
    #[cfg(feature = "camera")]
    return crate::camera::list_cameras();
    #[cfg(not(feature = "camera"))]
    Err(CaptureError::Open {
        source_name: "cameras".to_string(),
        reason: NO_CAMERA_SUPPORT.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, want: Result<SourceSpec, &str>) {
        let got = input.parse::<SourceSpec>();
        assert_eq!(got, want.map_err(str::to_string), "parsing {input:?}");
        if let Ok(spec) = got {
            assert_eq!(spec.to_string().parse::<SourceSpec>(), Ok(spec.clone()));
        }
    }

    #[test]
    fn parses_the_accepted_forms() {
        check("test", Ok(SourceSpec::Test(1)));
        check("TEST", Ok(SourceSpec::Test(1)));
        check("test:1", Ok(SourceSpec::Test(1)));
        check("test:2", Ok(SourceSpec::Test(2)));
        check("camera", Ok(SourceSpec::Camera(0)));
        check("camera:0", Ok(SourceSpec::Camera(0)));
        check("camera:2", Ok(SourceSpec::Camera(2)));
        check("Camera:12", Ok(SourceSpec::Camera(12)));
        check("file:clip.y4m", Ok(SourceSpec::File("clip.y4m".into())));
        check(
            "FILE:/tmp/A B.mjpeg",
            Ok(SourceSpec::File("/tmp/A B.mjpeg".into())),
        );
    }

    #[test]
    fn rejects_anything_else_listing_the_accepted_forms() {
        let msg = |s: &str| {
            format!(
                "unknown source {s:?}, expected test, test:N (N from 1), camera, camera:N, file:PATH or rtsp://[USER:PASS@]HOST[:PORT]/PATH"
            )
        };
        for bad in [
            "cam",
            "",
            " test",
            "camera:",
            "camera:x",
            "camera:-1",
            "camera:1:2",
            "camera:99999999999",
            "test:0",
            "test:",
            "test:two",
            "file.mp4",
            "file:",
        ] {
            check(bad, Err(&msg(bad)));
        }
    }

    #[test]
    fn displays_as_it_parses() {
        assert_eq!(SourceSpec::Test(1).to_string(), "test");
        assert_eq!(SourceSpec::Test(2).to_string(), "test:2");
        assert_eq!(SourceSpec::Camera(0).to_string(), "camera:0");
        assert_eq!(SourceSpec::Camera(3).to_string(), "camera:3");
    }

    #[test]
    fn opens_the_test_pattern() {
        let source = open_source(&SourceSpec::Test(1), 64, 48, 0.0).unwrap();
        let info = source.info();
        assert_eq!(
            (info.name.as_str(), info.width, info.height),
            ("test pattern", 64, 48)
        );
        assert!(matches!(
            open_source(&SourceSpec::Test(1), 0, 48, 0.0),
            Err(CaptureError::Config(_))
        ));
    }

    #[cfg(not(feature = "camera"))]
    #[test]
    fn camera_says_this_build_has_none() {
        let Err(err) = open_source(&SourceSpec::Camera(1), 640, 480, 30.0) else {
            panic!("opening a camera should fail without camera support");
        };
        assert!(
            matches!(&err, CaptureError::Open { source_name, .. } if source_name == "camera:1")
        );
        assert_eq!(
            err.to_string(),
            "cannot open camera:1: this build has no camera support; rebuild with --features \
             camera, or use --source test"
        );
    }
}
