//! Capture-to-display latency of a browser watching `framewire serve --http` on loopback:
//! `browser-latency FRAMEWIRE_BINARY [--seconds N]`.
//!
//! `framewire serve --codec jpeg --width 320` (30 fps) serves HTTP; real Chromium, in an app
//! window at the top-left corner of a private Xvfb, shows in turn the page at `/?mjpeg` (MJPEG
//! read with fetch(), drawn to a canvas), the page at `/` (H.264 over its WebSocket, decoded by
//! WebCodecs, where the binary has H.264: else its figures are null), an `<img>` of `/stream` (which gets the next part's headers early, for Chromium's
//! draw-one-late quirk), and an `<img>` of `/stream?advance_headers=0` (without them). ffmpeg's
//! `x11grab` grabs the picture 23 times a second (no fraction of 30, so every phase of a frame's
//! time on screen is sampled); each grab's test-pattern frame number, read
//! off the pixels, is looked up in the capture times a side client reads from `/stream`'s
//! `X-Timestamp`s, and the latency is the time the grab arrived less that capture time (a grab
//! that arrives within 20 ms of the one before waited in the pipe, and is left out). It
//! includes the time a frame stays on screen until the next one (half a frame-time on average)
//! and the grab itself, the same for every case. The page's own figure (capture to its draw
//! call, from its title) is reported beside. One JSON object on stdout; where chromium, Xvfb or
//! ffmpeg is missing, `{"skipped": "why"}`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};

const W: u32 = 320;
const H: u32 = 240;
/// Rows grabbed: the picture and room above it for whatever bar Chromium shows.
const GRAB_H: u32 = 320;

/// Kills a child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(framewire) = args.get(1).cloned() else {
        eprintln!("usage: browser-latency FRAMEWIRE_BINARY [--seconds N]");
        std::process::exit(2);
    };
    let seconds: f64 = args
        .windows(2)
        .find(|w| w[0] == "--seconds")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(6.0);
    for (tool, arg) in [
        ("chromium", "--version"),
        ("Xvfb", "-help"),
        ("ffmpeg", "-version"),
    ] {
        if !runs(tool, arg) {
            println!("{{\"skipped\": \"{tool} is not installed\"}}");
            return;
        }
    }
    let (_serve, addr) = serve(&framewire);
    let captured = Arc::new(Mutex::new(HashMap::new()));
    {
        let (addr, captured) = (addr.clone(), Arc::clone(&captured));
        thread::spawn(move || record_captures(&addr, &captured));
    }
    let (_xvfb, display) = xvfb();
    let mut out = serde_json::Map::new();
    let cases = [
        ("page", format!("http://{addr}/?mjpeg")),
        ("webcodecs", format!("http://{addr}/")),
        ("img", img_page(&addr, "/stream", "img")),
        (
            "img_late",
            img_page(&addr, "/stream?advance_headers=0", "img_late"),
        ),
    ];
    for (name, url) in cases {
        let (lat, own, mode) = measure(&display, &url, seconds, &captured);
        if name == "webcodecs" && mode.as_deref() != Some("webcodecs") {
            // A framewire without H.264: the page showed MJPEG.
            eprintln!("browser-latency: the page did not use WebCodecs (mode {mode:?})");
            for key in ["p50_ms", "p90_ms", "own_p50_ms"] {
                out.insert(format!("{name}_{key}"), serde_json::Value::Null);
            }
            continue;
        }
        eprintln!(
            "browser-latency: {name}: {} grabs, p50 {:.1} ms, p90 {:.1} ms{}",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.9),
            own.map(|o| format!(", the page's own {o:.1} ms"))
                .unwrap_or_default()
        );
        out.insert(format!("{name}_p50_ms"), round(percentile(&lat, 0.5)));
        out.insert(format!("{name}_p90_ms"), round(percentile(&lat, 0.9)));
        out.insert(format!("{name}_grabs"), lat.len().into());
        if let Some(own) = own {
            out.insert(format!("{name}_own_p50_ms"), round(own));
        }
    }
    for name in ["img", "img_late"] {
        let file = std::env::temp_dir().join(format!(
            "fw-browser-latency-{}-{name}.html",
            std::process::id()
        ));
        let _ = std::fs::remove_file(file);
    }
    println!("{}", serde_json::Value::Object(out));
}

fn round(v: f64) -> serde_json::Value {
    if v.is_finite() {
        ((v * 10.0).round() / 10.0).into()
    } else {
        serde_json::Value::Null
    }
}

fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// A page of one `<img>` of `path` (Chromium asks for it as an image), as a file: a `data:`
/// URL's page may not load from loopback (Private Network Access), a file's may.
fn img_page(addr: &str, path: &str, name: &str) -> String {
    let file = std::env::temp_dir().join(format!(
        "fw-browser-latency-{}-{name}.html",
        std::process::id()
    ));
    let html = format!(
        "<body style=\"margin:0;background:#000\"><img src=\"http://{addr}{path}\"></body>"
    );
    std::fs::write(&file, html).expect("write the <img> page");
    format!("file://{}", file.display())
}

/// Starts `framewire serve` with HTTP; returns it and the HTTP address.
fn serve(framewire: &str) -> (Reaped, String) {
    let mut child = Command::new(framewire)
        .args([
            "serve", "--codec", "jpeg", "--width", "320", "--adapt", "off",
        ])
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start framewire serve");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve printed no http line")
            .expect("read serve's output");
        if let Some(a) = line.strip_prefix("http on http://") {
            break a.trim_end_matches('/').to_string();
        }
    };
    thread::spawn(move || for _ in lines {});
    (Reaped(child), addr)
}

/// Reads `/stream` and records each frame number's capture time (seconds since the epoch).
fn record_captures(addr: &str, captured: &Mutex<HashMap<u64, f64>>) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    if stream.write_all(b"GET /stream HTTP/1.1\r\n\r\n").is_err() {
        return;
    }
    let info = StreamInfo {
        codec: CodecKind::Jpeg,
        width: W,
        height: H,
        format: PixelFormat::Rgb8,
    };
    let mut decoder = framewire_codec::decoder(&info);
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut reader = BufReader::new(stream);
    framewire_bench_harness::read_mjpeg_parts(&mut reader, |jpeg, stamp| {
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

fn xvfb() -> (Reaped, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
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

/// Shows `url` in Chromium for a warm-up and `seconds` of grabs; returns each grab's latency
/// in ms, and the page's own p50 (from its title) where it has one.
fn measure(
    display: &str,
    url: &str,
    seconds: f64,
    captured: &Mutex<HashMap<u64, f64>>,
) -> (Vec<f64>, Option<f64>, Option<String>) {
    let profile = std::env::temp_dir().join(format!("fw-browser-latency-{}", std::process::id()));
    let _chromium = Reaped(
        Command::new("chromium")
            .args(["--no-sandbox", "--test-type", "--no-first-run"])
            .args(["--no-default-browser-check", "--disable-gpu"])
            .args(["--window-position=0,0", "--window-size=640,480"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--app={url}"))
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium"),
    );
    let warm = 3.0;
    let mut grab = Reaped(
        Command::new("ffmpeg")
            .args(["-v", "error", "-fflags", "nobuffer", "-flush_packets", "1"])
            // 23 grabs a second: a rate that is no fraction of the stream's 30 fps, so the grabs
            // fall at every phase of a frame's time on screen, not at one chosen by chance.
            .args(["-f", "x11grab", "-framerate", "23"])
            .args(["-video_size", &format!("{W}x{GRAB_H}")])
            .args(["-i", &format!("{display}+0,0")])
            .args(["-t", &format!("{}", warm + seconds + 2.0)])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg x11grab"),
    );
    let mut stdout = grab.0.stdout.take().expect("piped");
    let mut shot = vec![0u8; (W * GRAB_H * 3) as usize];
    let mut lat = Vec::new();
    let mut top = None;
    let mut first_seen = None;
    let mut last_read = f64::NEG_INFINITY;
    while stdout.read_exact(&mut shot).is_ok() {
        let at = now_s();
        // A grab read right after the one before waited in the pipe (ffmpeg caught up after a
        // stall): its read time is not its grab time, so it is left out.
        let fresh = at - last_read >= 0.020;
        last_read = at;
        let number = top.and_then(|y| read_at(&shot, y)).or_else(|| {
            (0..GRAB_H - H)
                .find_map(|y| read_at(&shot, y).map(|n| (n, y)))
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
            lat.push((at - t) * 1000.0);
        }
    }
    let title = title(display);
    let word = |key: &str| {
        title
            .as_deref()?
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).map(str::to_string))
    };
    let own = word("latency_ms=").and_then(|v| v.parse().ok());
    let mode = word("mode=");
    let _ = std::fs::remove_dir_all(&profile);
    (lat, own, mode)
}

/// The frame number in the 320x240 picture whose top is row `y` of a grab.
fn read_at(shot: &[u8], y: u32) -> Option<u64> {
    let row = (W * 3) as usize;
    let start = y as usize * row;
    let mut frame = Frame::new(W, H, PixelFormat::Rgb8);
    frame
        .pixels
        .copy_from_slice(&shot[start..start + H as usize * row]);
    framewire_pattern::read_frame_number(&frame)
}

/// The title of the page's window (`framewire fps=... latency_ms=...`), where xdotool is installed.
fn title(display: &str) -> Option<String> {
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
