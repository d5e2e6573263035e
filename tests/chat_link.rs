//! `framewire chat` across a real, narrow link (netbed namespaces), both directions at once:
//! the listener in A, the caller in B, each sending 640x480 JPEG at 30 fps (adaptation off)
//! through a link that carries 60% of one stream each way. In the same run, one-way `serve`
//! and `view` cross the same link; each direction of the call must reach the frames per second
//! and the latency (in frame-times) that one way reaches. On a quiet machine a call's directions
//! are within a few points of one way's share and 0.1-0.2 frame-times of its p50 and p99; the
//! margins are what two cores shared with other work need: at least 0.75 of one way's share,
//! a p50 at most one frame-time and a p99 at most two frame-times above one way's (a queue of
//! frames would add ten). A stall elsewhere on the machine can spoil a few seconds of frames,
//! so the run is measured again once before the test fails (docs/performance.md has figures).
//!
//! Needs root (netbed); skips with the reason otherwise, fails under `FRAMEWIRE_REQUIRE_ALL=1`.
//! `FRAMEWIRE_LINK_REPORT=1` prints the figures.

use framewire_netbed::{Link, Side, Testbed};
use serde_json::Value;

mod common;
use common::{Serve, finish_view, spawn_call_in, spawn_view_in, stats, wait_timeout};

const FPS: f64 = 30.0;
/// Seconds of streaming, at the rate the link carries: long enough that a p99 is not just the
/// worst frame or two (8 s at 60%: about 145 frames).
const SECONDS: f64 = 8.0;
/// What each side sends.
const STREAM: [&str; 8] = [
    "--codec", "jpeg", "--size", "640x480", "--fps", "30", "--adapt", "off",
];

fn f64_of(s: &Value, key: &str) -> f64 {
    s[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {s}"))
}

/// fps as a share of what the link carries, and p50 and p99 latency in frame-times, of one
/// direction's `received` stats through a link of `rate_kbit`.
fn figures(s: &Value, rate_kbit: u32) -> (f64, f64, f64) {
    let bytes = f64_of(s, "bytes") / f64_of(s, "frames");
    let frame_ms = bytes / (f64::from(rate_kbit) / 8.0);
    let latency = |q: &str| f64_of(&s["latency_ms"], q) / frame_ms;
    (
        f64_of(s, "fps") / (1000.0 / frame_ms),
        latency("p50"),
        latency("p99"),
    )
}

/// Bytes per frame of the stream (headers included), from a short view on loopback.
fn bytes_per_frame() -> f64 {
    let serve = Serve::start(&STREAM);
    let child = spawn_view_in(
        None,
        &[
            "--headless",
            "--stats",
            "json",
            "--frames",
            "15",
            "--connect",
            &serve.addr,
        ],
    );
    let s = stats(&finish_view(child));
    f64_of(&s, "bytes") / f64_of(&s, "frames")
}

#[test]
#[allow(clippy::print_stderr)] // the figures, when asked for
fn each_direction_of_a_call_does_what_one_way_does_on_the_same_link() {
    if framewire_netbed::available_or_skip().is_none() {
        return;
    }
    let report = std::env::var("FRAMEWIRE_LINK_REPORT").is_ok_and(|v| v == "1");
    let stream_kbit = bytes_per_frame() * 8.0 * FPS / 1000.0;
    let rate_kbit = (stream_kbit * 0.6).round() as u32;
    let Some(bed) = Link::builder().rate_kbit(rate_kbit).build_or_skip() else {
        return;
    };
    let frames =
        (f64::from(rate_kbit) * 1000.0 / 8.0 / (stream_kbit * 125.0 / FPS) * SECONDS).ceil() as u64;
    let mut failed = Vec::new();
    for _ in 0..2 {
        let [one_way, a_to_b, b_to_a] = measure(&bed, rate_kbit, frames);
        let line = |what: &str, (share, p50, p99): (f64, f64, f64)| {
            format!(
                "{what}: {:.0}% of the frames per second the link carries, p50 {p50:.2}, p99 {p99:.2} frame-times",
                share * 100.0
            )
        };
        let lines = [
            line("one way, A to B", one_way),
            line("call, A to B", a_to_b),
            line("call, B to A", b_to_a),
        ];
        if report {
            eprintln!(
                "60% link each way ({rate_kbit} kbit/s):\n{}",
                lines.join("\n")
            );
            return;
        }
        let short: Vec<_> = [("A to B", a_to_b), ("B to A", b_to_a)]
            .into_iter()
            .filter(|(_, got)| {
                got.0 < one_way.0 * 0.75 || got.1 > one_way.1 + 1.0 || got.2 > one_way.2 + 2.0
            })
            .map(|(what, _)| what)
            .collect();
        if short.is_empty() {
            return;
        }
        failed.push(format!(
            "the call's {} falls short of one way:\n{}",
            short.join(" and "),
            lines.join("\n")
        ));
    }
    panic!("in both runs:\n{}", failed.join("\n"));
}

/// One run on `bed`: one way, then a call of `frames` frames each way; the figures of one way,
/// the call's A to B and its B to A.
fn measure(bed: &Testbed, rate_kbit: u32, frames: u64) -> [(f64, f64, f64); 3] {
    let listen = format!("{}:0", bed.a().addr());
    let frames_arg = frames.to_string();

    // One way: serve in A, view in B.
    let serve = Serve::start_in(Some((bed, Side::A)), &listen, &STREAM);
    let view = spawn_view_in(
        Some((bed, Side::B)),
        &[
            "--headless",
            "--no-reconnect",
            "--stats",
            "json",
            "--connect",
            &serve.addr,
            "--frames",
            &frames_arg,
        ],
    );
    let one_way = figures(&stats(&finish_view(view)), rate_kbit);
    drop(serve);

    // Both ways: the listener in A, the caller in B, which hangs up after as many frames.
    let call = [&STREAM[..], &["--stats", "json"]].concat();
    let mut listener = Serve::chat_in(Some((bed, Side::A)), &listen, &call);
    let caller = spawn_call_in(
        Some((bed, Side::B)),
        &listener.addr,
        &[&call[..], &["--frames", &frames_arg]].concat(),
    );
    let called = stats(&finish_view(caller));
    assert!(
        wait_timeout(&mut listener.child, "the listener to exit").success(),
        "the listener failed"
    );
    let listened: Value =
        serde_json::from_str(&listener.line_starting("{")).expect("the listener's stats");
    [
        one_way,
        figures(&called["received"], rate_kbit),
        figures(&listened["received"], rate_kbit),
    ]
}
