//! Capture-to-display latency of a page in Chromium, as `browser-latency` and `browser-link`
//! measure it: Chromium in an app window at the top-left corner of a private Xvfb; ffmpeg's
//! `x11grab` grabs the picture 23 times a second (no fraction of 30, so every phase of a
//! frame's time on screen is sampled); each grab's test-pattern frame number, read off the
//! pixels, is looked up in the capture times a side client reads from `/stream`'s
//! `X-Timestamp`s ([`record_captures`]), and the latency is the time the grab arrived less that
//! capture time (a grab that arrives within 20 ms of the one before waited in the pipe, and is
//! left out). It includes the time a frame stays on screen until the next one (half a
//! frame-time on average) and the grab itself, the same for every case.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};

/// A child killed when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Seconds since the epoch now.
pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether `program arg` runs at all (the program is installed).
pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Each frame number's capture time (seconds since the epoch), as [`record_captures`] reads them.
pub type Captures = Mutex<HashMap<u64, f64>>;

/// Reads `/stream` at `addr` (a `w` x `h` test pattern) and records each frame number's
/// capture time, until the stream ends.
pub fn record_captures(addr: &str, (w, h): (u32, u32), captured: &Captures) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    if stream.write_all(b"GET /stream HTTP/1.1\r\n\r\n").is_err() {
        return;
    }
    let info = StreamInfo {
        codec: CodecKind::Jpeg,
        width: w,
        height: h,
        format: PixelFormat::Rgb8,
    };
    let mut decoder = framewire_codec::decoder(&info);
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut reader = BufReader::new(stream);
    crate::read_mjpeg_parts(&mut reader, |jpeg, stamp| {
        if let (Some(t), Ok(_)) = (stamp, decoder.decode(jpeg, &mut frame))
            && let Some(number) = framewire_pattern::read_frame_number(&frame)
        {
            captured
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(number, t);
        }
        true
    });
}

/// Starts a private Xvfb; returns it and its display (`:N`).
///
/// # Panics
/// When Xvfb cannot start or says no display.
pub fn xvfb() -> (Reaped, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x1024x24",
            "-nolisten",
            "tcp",
        ])
        .args(["-noreset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("Xvfb's display number");
    (Reaped(child), format!(":{}", line.trim()))
}

/// Chromium's arguments to show `url` in an app window at the screen's top-left corner, with a
/// profile of its own at `profile`.
pub fn chromium_args(url: &str, profile: &std::path::Path, (w, h): (u32, u32)) -> Vec<String> {
    [
        "--no-sandbox",
        "--test-type",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--window-position=0,0",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        format!("--window-size={},{}", w + 200, h + 200),
        format!("--user-data-dir={}", profile.display()),
        format!("--app={url}"),
    ])
    .collect()
}

/// What [`measure`] saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Each fresh grab's capture-to-display latency, ms.
    pub latencies: Vec<f64>,
    /// The page's title at the end (`framewire fps=... latency_ms=... mode=...`), if any.
    pub title: Option<String>,
}

impl Seen {
    /// The value of `key=` in the page's title.
    pub fn word(&self, key: &str) -> Option<&str> {
        self.title
            .as_deref()?
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// The number `key=` in the page's title.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.word(key)?.parse().ok()
    }
}

/// Starts `browser` (Chromium on `display`, showing a `w` x `h` test pattern at the top-left
/// corner) and grabs it for a warm-up and `seconds`; returns each grab's latency and the
/// page's title at the end.
///
/// # Panics
/// When the browser or ffmpeg cannot start.
pub fn measure(
    mut browser: Command,
    display: &str,
    (w, h): (u32, u32),
    seconds: f64,
    captured: &Captures,
) -> Seen {
    let _browser = Reaped(
        browser
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium"),
    );
    // Rows grabbed: the picture and room above it for whatever bar Chromium shows.
    let grab_h = h + 80;
    let warm = 3.0;
    let mut grab = Reaped(
        Command::new("ffmpeg")
            .args(["-v", "error", "-fflags", "nobuffer", "-flush_packets", "1"])
            // 23 grabs a second: a rate that is no fraction of the stream's 30 fps, so the grabs
            // fall at every phase of a frame's time on screen, not at one chosen by chance.
            .args(["-f", "x11grab", "-framerate", "23"])
            .args(["-video_size", &format!("{w}x{grab_h}")])
            .args(["-i", &format!("{display}+0,0")])
            // Long enough for a slow start (a page behind a narrow link) and the grabs.
            .args(["-t", &format!("{}", warm + seconds + 30.0)])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg x11grab"),
    );
    let mut stdout = grab.0.stdout.take().expect("piped");
    let mut shot = vec![0u8; (w * grab_h * 3) as usize];
    let mut latencies = Vec::new();
    let mut top = None;
    let mut first_seen = None;
    let mut last_read = f64::NEG_INFINITY;
    while stdout.read_exact(&mut shot).is_ok() {
        let at = now_s();
        // A grab read right after the one before waited in the pipe (ffmpeg caught up after a
        // stall): its read time is not its grab time, so it is left out.
        let fresh = at - last_read >= 0.020;
        last_read = at;
        let number = top.and_then(|y| read_at(&shot, (w, h), y)).or_else(|| {
            (0..grab_h - h)
                .find_map(|y| read_at(&shot, (w, h), y).map(|n| (n, y)))
                .map(|(n, y)| {
                    top = Some(y);
                    n
                })
        });
        let Some(n) = number else {
            continue;
        };
        let since = *first_seen.get_or_insert_with(Instant::now);
        if since.elapsed().as_secs_f64() < warm {
            continue;
        }
        if since.elapsed().as_secs_f64() > warm + seconds {
            break;
        }
        let captured_at = captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&n)
            .copied();
        if let Some(t) = captured_at
            && fresh
        {
            latencies.push((at - t) * 1000.0);
        }
    }
    Seen {
        latencies,
        title: title(display),
    }
}

/// The frame number in the `w` x `h` picture whose top is row `y` of a grab.
fn read_at(shot: &[u8], (w, h): (u32, u32), y: u32) -> Option<u64> {
    let row = (w * 3) as usize;
    let start = y as usize * row;
    let mut frame = Frame::new(w, h, PixelFormat::Rgb8);
    frame
        .pixels
        .copy_from_slice(&shot[start..start + h as usize * row]);
    framewire_pattern::read_frame_number(&frame)
}

/// The title of the page's window (`framewire fps=... latency_ms=...`), where xdotool is installed.
pub fn title(display: &str) -> Option<String> {
    let out = Command::new("xdotool")
        .args(["search", "--name", "^framewire", "getwindowname"])
        .env("DISPLAY", display)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// The `q` quantile of `v` (NaN when empty).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// `v` to one decimal as JSON, null when not finite.
pub fn round(v: f64) -> serde_json::Value {
    if v.is_finite() {
        ((v * 10.0).round() / 10.0).into()
    } else {
        serde_json::Value::Null
    }
}
