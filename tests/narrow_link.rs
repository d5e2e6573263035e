//! The real `framewire` binaries across a real, narrow link (netbed namespaces): `serve` in A
//! with quality adaptation off, `view` in B, a 640x480 JPEG stream at 30 fps through a rate-limited link carrying 60% and
//! 30% of it, with no added delay and with a 40 ms round trip. The viewer must get frames about
//! one frame-time (bytes of a frame / link rate) after capture, not after a queue of them,
//! and nearly as many frames per second as the link can carry. A case that misses is measured
//! once more before it fails: a stall elsewhere on two shared cores can spoil a few seconds.
//!
//! Needs root (netbed); skips with the reason otherwise, fails under `FRAMEWIRE_REQUIRE_ALL=1`.
//! `FRAMEWIRE_LINK_REPORT=1` prints each case's figures, and checks nothing (for measuring).

use std::time::Duration;

use framewire_netbed::{Link, Side};
use serde_json::Value;

mod common;
use common::{Place, Serve, finish_view, spawn_view_in, stats};

const FPS: f64 = 30.0;
/// Seconds of streaming per case, at the rate the link can carry.
const SECONDS: f64 = 4.0;

/// `serve` of 640x480 JPEG at 30 fps, adaptation off: every viewer gets the one rung.
fn serve(place: Place<'_>, listen: &str) -> Serve {
    Serve::start_in(
        place,
        listen,
        &[
            "--codec", "jpeg", "--size", "640x480", "--fps", "30", "--adapt", "off",
        ],
    )
}

/// Runs `framewire view --headless --frames N --stats json` to its end, with a deadline.
fn view(place: Place<'_>, addr: &str, frames: u64) -> Value {
    let frames = frames.to_string();
    let args = [
        "--headless",
        "--no-reconnect",
        "--stats",
        "json",
        "--connect",
        addr,
    ];
    let child = spawn_view_in(place, &[&args[..], &["--frames", &frames]].concat());
    stats(&finish_view(child))
}

fn f64_of(s: &Value, key: &str) -> f64 {
    s[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {s}"))
}

/// Bytes per frame of the stream (headers included), from a short view on loopback.
fn bytes_per_frame() -> f64 {
    let serve = serve(None, "127.0.0.1:0");
    let s = view(None, &serve.addr, 15);
    f64_of(&s, "bytes") / f64_of(&s, "frames")
}

/// What one case measured, in frame-times (bytes per frame / link rate).
#[derive(Debug)]
struct Measured {
    rtt_ms: u64,
    frame_ms: f64,
    p50: f64,
    p99: f64,
    /// Frames per second received / frames per second the link carries.
    fps_share: f64,
}

impl Measured {
    /// Latency bound in milliseconds: `frames` frame-times plus the round trip.
    fn bound_ms(&self, frames: f64) -> f64 {
        frames * self.frame_ms + self.rtt_ms as f64
    }
}

/// Streams through a link carrying `share` percent of a stream of `frame_bytes`-byte frames
/// at 30 fps, with `rtt` of added round trip.
fn run_case(frame_bytes: f64, share: u32, rtt: Duration) -> Option<Measured> {
    let stream_kbit = frame_bytes * 8.0 * FPS / 1000.0;
    let rate_kbit = (stream_kbit * f64::from(share) / 100.0).round() as u32;
    let bed = Link::builder()
        .rate_kbit(rate_kbit)
        .rtt(rtt)
        .build_or_skip()?;
    let listen = format!("{}:0", bed.a().addr());
    let serve = serve(Some((&bed, Side::A)), &listen);
    let capacity_fps = f64::from(rate_kbit) * 1000.0 / 8.0 / frame_bytes;
    let frames = (capacity_fps * SECONDS).ceil() as u64;
    let s = view(Some((&bed, Side::B)), &serve.addr, frames);
    drop(serve);
    assert_eq!(
        (s["rung"].as_str(), s["rung_changes"].as_u64()),
        (Some("640x480@80"), Some(0)),
        "--adapt off: the viewer stays on the top rung"
    );
    // The frame size of this very run, and the rate configured.
    let bytes = f64_of(&s, "bytes") / f64_of(&s, "frames");
    let rate_bytes_per_ms = f64::from(rate_kbit) / 8.0;
    let frame_ms = bytes / rate_bytes_per_ms;
    let latency = &s["latency_ms"];
    let ms = |q: &str| {
        latency[q]
            .as_f64()
            .unwrap_or_else(|| panic!("no latency_ms.{q} in {s}"))
    };
    let rtt_ms = rtt.as_millis() as u64;
    let in_frame_times = |v: f64| (v - rtt_ms as f64) / frame_ms;
    Some(Measured {
        rtt_ms,
        frame_ms,
        p50: in_frame_times(ms("p50")),
        p99: in_frame_times(ms("p99")),
        fps_share: f64_of(&s, "fps") / (1000.0 / frame_ms),
    })
}

#[test]
#[allow(clippy::print_stderr)] // the figures, when asked for
fn jpeg_through_narrow_links_arrives_a_few_frame_times_after_capture() {
    if framewire_netbed::available_or_skip().is_none() {
        return;
    }
    let report = std::env::var("FRAMEWIRE_LINK_REPORT").is_ok_and(|v| v == "1");
    let frame_bytes = bytes_per_frame();
    // One case at a time: the machine has two cores, and each case encodes and decodes 640x480.
    let mut failures = Vec::new();
    for rtt in [Duration::ZERO, Duration::from_millis(40)] {
        for share in [60, 30] {
            // A stall elsewhere on the two cores can spoil a few seconds of frames: a case that
            // misses is measured once more before it fails.
            let mut tries = Vec::new();
            for _ in 0..2 {
                let Some(m) = run_case(frame_bytes, share, rtt) else {
                    return;
                };
                let passed = m.p50 <= 3.0 && m.p99 <= 5.0 && m.fps_share >= 0.75;
                tries.push(m);
                if passed || report {
                    break;
                }
            }
            let m = tries.last().expect("a try");
            let line = format!(
                "{share}% link, {} ms RTT: frame-time {:.1} ms; p50 {:.2}, p99 {:.2} frame-times \
                 (after subtracting the RTT); {:.0}% of the frames per second the link carries",
                m.rtt_ms,
                m.frame_ms,
                m.p50,
                m.p99,
                m.fps_share * 100.0
            );
            if report {
                eprintln!("{line}");
                continue;
            }
            // Looser than the targets (p50 2, p99 3, 90%): two noisy cores run all of it.
            if m.p50 > 3.0 || m.p99 > 5.0 || m.fps_share < 0.75 {
                failures.push(format!(
                    "{line} (twice; first {:?}); want p50 <= 3 ({:.0} ms), p99 <= 5 ({:.0} ms), >= 75%",
                    tries[0],
                    m.bound_ms(3.0),
                    m.bound_ms(5.0)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
