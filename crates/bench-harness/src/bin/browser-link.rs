//! The page through WebCodecs behind a narrow link: `browser-link FRAMEWIRE [--quick]
//! [--share PERCENT]`, FRAMEWIRE built with the feature `h264`.
//!
//! First the bytes per frame of 640x480 JPEG q80 (the test pattern, headers included), from a
//! short `view` on loopback: JPEG's demand at 30 fps. Then a netbed testbed whose link toward B
//! carries PERCENT (default 60) of that demand: `framewire serve --codec h264 --size 640x480
//! --fps 30 --http` in A (the ladder on, as a user runs it), real Chromium in B showing the page
//! at `/` (H.264 over its WebSocket, WebCodecs; the netbed address is let count as a secure
//! context with `--unsafely-treat-insecure-origin-as-secure`), in a private Xvfb. The latency
//! is measured as `browser-latency` measures it (`framewire_bench_harness::browser`), the
//! capture times read in A from `/stream`, which never crosses the link.
//!
//! One JSON object on stdout: `jpeg_kbit` (JPEG's demand), `link_kbit`, the page's own `fps`,
//! `size` (the picture's, from its canvas), `mode`, `decode_ms` (the page's p50 from a chunk
//! handed to the decoder to its picture), grabbed `p50_ms` and `p90_ms`, the page's own
//! `own_p50_ms` (capture to its draw call, which leaves out the compositor and the grab), `frame_ms` (one
//! frame-time: the source's frame interval, since H.264 needs less than the link carries),
//! `p50_frame_times`: (p50 less the page's decode) over a frame-time, and `bound_ms`, the goal:
//! two frame-times plus the page's decode. Where this machine lacks chromium, Xvfb, ffmpeg or
//! xdotool, or cannot make a testbed, `{"skipped": REASON}`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use framewire_bench_harness::browser::{
    Captures, Reaped, chromium_args, measure, percentile, record_captures, round, runs, xvfb,
};
use framewire_netbed::{Link, Side};
use serde_json::{Value, json};

const SIZE: (u32, u32) = (640, 480);
const FPS: f64 = 30.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(exe) = args.get(1).filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: browser-link FRAMEWIRE [--quick] [--share PERCENT]");
        return ExitCode::from(2);
    };
    let quick = args.iter().any(|a| a == "--quick");
    let share: f64 = args
        .windows(2)
        .find(|w| w[0] == "--share")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(60.0);
    for (tool, arg) in [
        ("chromium", "--version"),
        ("Xvfb", "-help"),
        ("ffmpeg", "-version"),
        ("xdotool", "version"),
    ] {
        if !runs(tool, arg) {
            println!(
                "{}",
                json!({ "skipped": format!("{tool} is not installed") })
            );
            return ExitCode::SUCCESS;
        }
    }
    if let Err(why) = framewire_netbed::available() {
        println!("{}", json!({ "skipped": why.to_string() }));
        return ExitCode::SUCCESS;
    }
    match run(Path::new(exe), share, if quick { 4.0 } else { 8.0 }) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("browser-link: {e}");
            println!("{}", json!({ "error": e }));
            ExitCode::FAILURE
        }
    }
}

/// Starts `cmd serve ARGS` and returns it with its `listening on` and `http on` addresses.
fn serve(mut cmd: Command, args: &[&str]) -> Result<(Reaped, String, Option<String>), String> {
    let mut child = cmd
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start framewire serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("serve's stdout")?;
    let child = Reaped(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "serve printed no address".to_string())
    };
    let first = next()?;
    let listen = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("serve's first line was {first:?}"))?
        .to_string();
    let http = if args.contains(&"--http") {
        let line = next()?;
        let a = line
            .strip_prefix("http on http://")
            .ok_or_else(|| format!("serve's second line was {line:?}"))?;
        Some(a.trim_end_matches('/').to_string())
    } else {
        None
    };
    // Read on while it runs: a closed pipe would end serve at its next line.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, listen, http))
}

/// Bytes per frame of 640x480 JPEG q80 (headers included), from a short view on loopback.
fn jpeg_frame_bytes(exe: &Path) -> Result<f64, String> {
    let (_serve, addr, _) = serve(
        Command::new(exe),
        &[
            "--listen",
            "127.0.0.1:0",
            "--codec",
            "jpeg",
            "--size",
            "640x480",
            "--fps",
            "30",
            "--adapt",
            "off",
        ],
    )?;
    let out = Command::new(exe)
        .args(["view", "--connect", &addr, "--headless", "--no-reconnect"])
        .args(["--frames", "30", "--stats", "json"])
        .env_remove("RUST_LOG")
        .output()
        .map_err(|e| format!("framewire view: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let s: Value = serde_json::from_str(text.trim().lines().last().unwrap_or_default())
        .map_err(|e| format!("view's stats {text:?}: {e}"))?;
    match (s["bytes"].as_f64(), s["frames"].as_f64()) {
        (Some(b), Some(f)) if f > 0.0 => Ok(b / f),
        _ => Err(format!("no frames in {s}")),
    }
}

fn run(exe: &Path, share: f64, seconds: f64) -> Result<Value, String> {
    let jpeg_kbit = jpeg_frame_bytes(exe)? * 8.0 * FPS / 1000.0;
    let link_kbit = (jpeg_kbit * share / 100.0).round() as u32;
    let builder = Link::builder().rate_kbit_toward(Side::B, link_kbit.max(1));
    let described = builder.link().to_string();
    let bed = builder
        .build()
        .map_err(|e| format!("cannot build a testbed with {described}: {e}"))?;
    let a = bed.a().addr();
    let (_serve, _, http) = serve(
        bed.command_in(Side::A, exe),
        &[
            "--listen",
            &format!("{a}:0"),
            "--http",
            &format!("{a}:0"),
            "--codec",
            "h264",
            "--size",
            "640x480",
            "--fps",
            "30",
        ],
    )?;
    let http = http.ok_or("no http address")?;
    let captured: Arc<Captures> = Arc::default();
    {
        let (http, captured) = (http.clone(), Arc::clone(&captured));
        // In A: the capture times never cross the link.
        bed.spawn_in(Side::A, move || record_captures(&http, SIZE, &captured))
            .map_err(|e| format!("a thread in A: {e}"))?;
    }
    let (_xvfb, display) = xvfb();
    let origin = format!("http://{http}");
    let profile = std::env::temp_dir().join(format!("fw-browser-link-{}", std::process::id()));
    let mut chromium = bed.command_in(Side::B, "chromium");
    chromium
        .args(chromium_args(&format!("{origin}/"), &profile, SIZE))
        .arg(format!(
            "--unsafely-treat-insecure-origin-as-secure={origin}"
        ));
    let seen = measure(chromium, &display, SIZE, seconds, &captured);
    let _ = std::fs::remove_dir_all(&profile);
    let frame_ms = 1000.0 / FPS;
    let (p50, p90) = (
        percentile(&seen.latencies, 0.5),
        percentile(&seen.latencies, 0.9),
    );
    let decode = seen.number("decode_ms").unwrap_or(f64::NAN);
    eprintln!(
        "browser-link: {described}: {} grabs, p50 {p50:.1} ms, p90 {p90:.1} ms; the page: {:?}",
        seen.latencies.len(),
        seen.title
    );
    Ok(json!({
        "share_percent": share,
        "jpeg_kbit": jpeg_kbit.round(),
        "link_kbit": link_kbit,
        "fps": seen.number("fps"),
        "size": seen.word("size"),
        "mode": seen.word("mode"),
        "decode_ms": round(decode),
        "p50_ms": round(p50),
        "own_p50_ms": round(seen.number("latency_ms").unwrap_or(f64::NAN)),
        "p90_ms": round(p90),
        "grabs": seen.latencies.len(),
        "frame_ms": round(frame_ms),
        "p50_frame_times": round((p50 - decode) / frame_ms),
        "bound_ms": round(2.0 * frame_ms + decode),
    }))
}
