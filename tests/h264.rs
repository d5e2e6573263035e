//! `--codec h264` end to end with the real binaries (a build with the feature `h264`; `cargo
//! xtask test` runs this file in its features' pass): the test pattern's frame numbers read
//! back after H.264, a viewer that joins late starts at a keyframe asked for at its join (the
//! periodic one is set far away). The rule for a subscriber that lost a packet is tested
//! without sockets in `framewire-net`'s `roster/outlet.rs`.
#![cfg(feature = "h264")]

mod common;

use common::{Serve, finish_view, spawn_view, stats};

fn serve_h264(args: &[&str]) -> Serve {
    // No periodic keyframe within the test: every keyframe after the first is one asked for.
    Serve::start(&[&["--codec", "h264", "--keyint", "100000"], args].concat())
}

fn view_verified(serve: &Serve, frames: &str) -> serde_json::Value {
    let out = finish_view(spawn_view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        frames,
        "--stats",
        "json",
        "--verify-test-pattern",
    ]));
    let s = stats(&out);
    assert_eq!(s["codec"], "h264", "{s}");
    assert_eq!(s["pattern_errors"], 0, "{s}");
    assert_eq!(s["out_of_order"], 0, "{s}");
    s
}

#[test]
fn a_paced_stream_reads_back_every_frame_number() {
    let serve = serve_h264(&["--fps", "30", "--adapt", "off"]);
    let s = view_verified(&serve, "60");
    assert_eq!(s["frames"], 60, "{s}");
    assert_eq!(s["dropped"], 0, "{s}");
    // A quarter of what JPEG at q80 takes for the same 640x480 pattern at most.
    let mbit = s["mbit_per_s"].as_f64().unwrap();
    assert!(mbit < 4.0, "{mbit} Mbit/s: {s}");
}

#[test]
fn a_viewer_that_joins_late_starts_at_a_keyframe_asked_for_at_its_join() {
    let serve = serve_h264(&["--fps", "30", "--adapt", "off"]);
    let first = spawn_view(&["--connect", &serve.addr, "--headless", "--frames", "150"]);
    serve.line_containing("connected");
    // Twenty frames in (a short viewer beside the first one has seen them), well past the
    // stream's first keyframe: the next comes only when someone asks.
    assert_eq!(view_verified(&serve, "20")["frames"], 20);
    let s = view_verified(&serve, "30");
    assert_eq!(s["frames"], 30, "{s}");
    assert!(s["first_seq"].as_u64().unwrap() >= 20, "joined late: {s}");
    assert!(finish_view(first).status.success());
}
