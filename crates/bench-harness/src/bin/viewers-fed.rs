//! How many viewers one server feeds at 30 fps: `viewers-fed [--quick] [--only MODE]`.
//!
//! For JPEG 320x240 and 640x480 test-pattern frames, a `framewire_net::Server` publishes at
//! 30 fps (render the pattern, encode, publish) while viewer threads in this process connect,
//! receive and count frames (no decode). Viewers are added in steps (1, 2, 3, 4, 6, 8, 12, ...)
//! until the slowest one gets fewer than 29 frames/s over the measuring window. Three modes:
//! `once` encodes each frame once for every viewer (what `framewire serve` does), `per-viewer`
//! encodes it once per viewer (what a server that encodes per connection does), and `http`
//! (320x240 only) encodes once for HTTP clients of `serve --http`'s protocol, each reading
//! `/stream` (MJPEG) and counting its parts; `websocket` (320x240, in a build with H.264)
//! encodes H.264 once for WebSocket clients of `/ws`, each counting its access units.
//!
//! Server CPU is the user+system time of the server's threads only (publisher, accept and
//! per-viewer sender threads, read from /proc/self/task/*/stat by thread name), so the viewer
//! threads' own CPU is not counted; they do share the machine's cores, so the viewer count is
//! a floor for a server whose viewers are elsewhere. One JSON object per (size, mode) on stdout.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framewire_codec::JpegEncoder;
use framewire_core::Packet;
use framewire_core::{CodecKind, Frame, FrameEncoder, Ladder, PixelFormat, Rendition, Request};
use framewire_net::{Board, Client, ClientConfig, Fanout, HttpProtocol, Server, ServerConfig};
use framewire_pattern::TestPattern;

const FPS: f64 = 30.0;
const MIN_FPS: f64 = 29.0;
const STEPS: [usize; 16] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].as_str());
    let (warm, window, max) = if quick {
        (Duration::from_millis(300), Duration::from_millis(700), 32)
    } else {
        (Duration::from_secs(1), Duration::from_secs(2), 256)
    };
    let ticks = clock_ticks();
    for (w, h) in [(320, 240), (640, 480)] {
        for mode in [Mode::Once, Mode::PerViewer, Mode::Http, Mode::WebSocket] {
            let http = matches!(mode, Mode::Http | Mode::WebSocket);
            if (http && w != 320) || only.is_some_and(|o| o != mode.name()) {
                continue;
            }
            if mode == Mode::WebSocket && !cfg!(feature = "h264") {
                eprintln!("viewers-fed: no H.264 in this build: no websocket figures");
                println!(
                    "{{\"size\": \"{w}x{h}\", \"mode\": \"websocket\", \"max_viewers\": null, \
                     \"server_cpu_per_viewer\": null}}"
                );
                continue;
            }
            let r = measure(w, h, mode, warm, window, max, ticks);
            println!("{r}");
        }
    }
}

/// How frames reach the viewers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Encoded once, framewire viewers.
    Once,
    /// Encoded once per viewer, framewire viewers.
    PerViewer,
    /// Encoded once, HTTP clients reading MJPEG.
    Http,
    /// Encoded once (H.264), WebSocket clients of `/ws`.
    WebSocket,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::PerViewer => "per-viewer",
            Mode::Http => "http",
            Mode::WebSocket => "websocket",
        }
    }
}

/// Clock ticks per second of /proc times (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds so far of this process's server threads (publisher, accept, viewer senders).
fn server_cpu(ticks: f64) -> f64 {
    let mut total = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let server = ["framewire-", "http-"].iter().any(|p| name.starts_with(p));
        if !(server || name == "fw-publish") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime); field 3 is the first after the name.
        let t = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += t(11) + t(12);
    }
    total as f64 / ticks
}

struct Viewer {
    frames: Arc<AtomicU64>,
    handle: JoinHandle<()>,
}

fn measure(
    w: u32,
    h: u32,
    mode: Mode,
    warm: Duration,
    window: Duration,
    max: usize,
    ticks: f64,
) -> String {
    let codec = if mode == Mode::WebSocket {
        CodecKind::H264
    } else {
        CodecKind::Jpeg
    };
    let ladder = Ladder::single(Rendition::new(codec, w, h, PixelFormat::Rgb8, 80));
    let config = ServerConfig {
        max_viewers: 1024,
        max_pending: 1024,
        ..ServerConfig::default()
    };
    let ladder = Arc::new(ladder);
    let server = Arc::new(
        if matches!(mode, Mode::Http | Mode::WebSocket) {
            let board = Arc::new(Board::new("test pattern", FPS));
            let ladder = Arc::clone(&ladder);
            HttpProtocol::bind("127.0.0.1:0", ladder, board, config, Vec::new(), |_| {})
        } else {
            Server::bind("127.0.0.1:0", Arc::clone(&ladder), FPS, config, |_| {})
        }
        .expect("bind"),
    );
    let per_viewer = mode == Mode::PerViewer;
    let viewers_now = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let late = Arc::new(Mutex::new(0u64));
    let publisher = {
        let ladder = Arc::clone(&ladder);
        let (server, viewers_now, stop, late) = (
            Arc::clone(&server),
            Arc::clone(&viewers_now),
            Arc::clone(&stop),
            Arc::clone(&late),
        );
        thread::Builder::new()
            .name("fw-publish".into())
            .spawn(move || {
                publish(
                    &server,
                    &ladder,
                    (w, h, codec),
                    per_viewer,
                    &viewers_now,
                    &stop,
                    &late,
                );
            })
            .expect("publisher thread")
    };

    let mut viewers: Vec<Viewer> = Vec::new();
    let mut best: Option<(usize, f64, f64)> = None;
    let mut failed: Option<(usize, f64)> = None;
    for &n in STEPS.iter().filter(|&&n| n <= max) {
        while viewers.len() < n {
            viewers.push(spawn_viewer(&server, mode));
        }
        viewers_now.store(n as u64, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.viewer_count() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(warm);
        let before: Vec<u64> = viewers
            .iter()
            .map(|v| v.frames.load(Ordering::SeqCst))
            .collect();
        let cpu0 = server_cpu(ticks);
        let t0 = Instant::now();
        thread::sleep(window);
        let secs = t0.elapsed().as_secs_f64();
        let cpu = server_cpu(ticks) - cpu0;
        let min_fps = viewers
            .iter()
            .zip(&before)
            .map(|(v, b)| (v.frames.load(Ordering::SeqCst) - b) as f64 / secs)
            .fold(f64::INFINITY, f64::min);
        eprintln!(
            "viewers-fed: {codec} {w}x{h} {} viewers {n}: slowest {min_fps:.1} fps, server cpu {:.0}% of a core",
            match mode {
                Mode::Once => "encode once",
                Mode::PerViewer => "per-viewer encode",
                Mode::Http => "http clients, encode once",
                Mode::WebSocket => "websocket clients, h264 encoded once",
            },
            cpu / secs * 100.0
        );
        if min_fps >= MIN_FPS {
            best = Some((n, min_fps, cpu / secs));
        } else {
            failed = Some((n, min_fps));
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    publisher.join().expect("publisher");
    server.shutdown();
    for v in viewers {
        let _ = v.handle.join();
    }
    let (n, fps, cpu) = best.unwrap_or((0, 0.0, 0.0));
    let per = if n > 0 { cpu / n as f64 } else { f64::NAN };
    format!(
        "{{\"size\": \"{w}x{h}\", \"mode\": \"{}\", \"max_viewers\": {n}, \"slowest_fps\": {fps:.2}, \
         \"server_cpu_cores\": {cpu:.4}, \"server_cpu_per_viewer\": {}, \"failed_at\": {}, \"capped\": {}}}",
        mode.name(),
        if per.is_finite() {
            format!("{per:.5}")
        } else {
            "null".into()
        },
        failed.map_or("null".into(), |(n, _)| n.to_string()),
        failed.is_none()
    )
}

fn spawn_viewer(server: &Fanout, mode: Mode) -> Viewer {
    let frames = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&frames);
    let addr = server.local_addr();
    let handle = thread::Builder::new()
        .name("fw-client".into())
        .spawn(move || {
            match mode {
                Mode::Http => return read_mjpeg(addr, &counter),
                Mode::WebSocket => return read_websocket(addr, &counter),
                Mode::Once | Mode::PerViewer => {}
            }
            let Ok(mut client) = Client::connect(addr, Request::default(), ClientConfig::default())
            else {
                return;
            };
            let mut packet = framewire_core::Packet::default();
            while let Ok(framewire_core::Received::Packet { .. }) = client.recv(&mut packet) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("viewer thread");
    Viewer { frames, handle }
}

/// An HTTP client: `GET /stream`, then counts the MJPEG parts (read by their Content-Length,
/// not decoded) until the stream ends.
fn read_mjpeg(addr: std::net::SocketAddr, counter: &AtomicU64) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    if stream.write_all(b"GET /stream HTTP/1.1\r\n\r\n").is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    framewire_bench_harness::read_mjpeg_parts(&mut reader, |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        true
    });
}

/// A WebSocket client of `/ws`: counts the binary messages (access units) until it closes.
fn read_websocket(addr: std::net::SocketAddr, counter: &AtomicU64) {
    let Ok(tcp) = TcpStream::connect(addr) else {
        return;
    };
    let Ok((mut ws, _)) = tungstenite::client::client(format!("ws://{addr}/ws"), tcp) else {
        return;
    };
    while let Ok(message) = ws.read() {
        if message.is_binary() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Renders, encodes (once, or once per viewer) and publishes a frame every 1/30 s.
fn publish(
    server: &Fanout,
    ladder: &Ladder,
    (w, h, codec): (u32, u32, CodecKind),
    per_viewer: bool,
    viewers: &AtomicU64,
    stop: &AtomicBool,
    late: &Mutex<u64>,
) {
    let mut pattern = TestPattern::new(w, h, 0.0).expect("pattern size");
    let mut encoder: Box<dyn FrameEncoder> = if codec == CodecKind::Jpeg {
        Box::new(JpegEncoder::new(80).expect("quality"))
    } else {
        framewire_codec::encoder(codec, &framewire_codec::EncodeOptions::default())
            .expect("an H.264 encoder")
    };
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut pool: Vec<Arc<Packet>> = Vec::new();
    let period = Duration::from_secs_f64(1.0 / FPS);
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        pattern.render(seq, &mut frame);
        let mut slot = match pool.iter().position(|f| Arc::strong_count(f) == 1) {
            Some(i) => pool.swap_remove(i),
            None => Arc::new(Packet::default()),
        };
        let f = Arc::get_mut(&mut slot).expect("pooled frames are not shared");
        f.seq = seq;
        let encodes = if per_viewer {
            viewers.load(Ordering::SeqCst).max(1)
        } else {
            1
        };
        // A new H.264 subscriber waits for a keyframe, which the ladder asks for.
        if ladder.keyframes_due(Instant::now()) != 0 {
            encoder.request_keyframe();
        }
        for _ in 0..encodes {
            f.keyframe = encoder
                .encode(&frame, &mut f.payload)
                .expect("encoding")
                .is_keyframe();
        }
        server.publish(std::slice::from_ref(&slot));
        if pool.len() < 8 {
            pool.push(slot);
        }
        seq += 1;
        next += period;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            *late.lock().expect("late counter") += 1;
            next = now;
        }
    }
}
