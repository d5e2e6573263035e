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
//! `X-Timestamp`s (the method: `framewire_bench_harness::browser`). The page's own figure
//! (capture to its draw call, from its title) is reported beside. One JSON object on stdout;
//! where chromium, Xvfb or ffmpeg is missing, `{"skipped": "why"}`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;

use framewire_bench_harness::browser::{
    Captures, Reaped, chromium_args, measure, percentile, record_captures, round, runs, xvfb,
};

const W: u32 = 320;
const H: u32 = 240;

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
    let captured: Arc<Captures> = Arc::default();
    {
        let (addr, captured) = (addr.clone(), Arc::clone(&captured));
        thread::spawn(move || record_captures(&addr, (W, H), &captured));
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
        let profile =
            std::env::temp_dir().join(format!("fw-browser-latency-{}", std::process::id()));
        let mut chromium = Command::new("chromium");
        chromium.args(chromium_args(&url, &profile, (W, H)));
        let seen = measure(chromium, &display, (W, H), seconds, &captured);
        let _ = std::fs::remove_dir_all(&profile);
        let (lat, own, mode) = (
            &seen.latencies,
            seen.number("latency_ms"),
            seen.word("mode"),
        );
        if name == "webcodecs" && mode != Some("webcodecs") {
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
            percentile(lat, 0.5),
            percentile(lat, 0.9),
            own.map(|o| format!(", the page's own {o:.1} ms"))
                .unwrap_or_default()
        );
        out.insert(format!("{name}_p50_ms"), round(percentile(lat, 0.5)));
        out.insert(format!("{name}_p90_ms"), round(percentile(lat, 0.9)));
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
