//! UDP against TCP across a real lossy, distant link (netbed namespaces), in the same run:
//! `serve` in A, `view` in B, 640x480 JPEG at 30 fps with adaptation off, 100 ms round trip
//! and 1% random loss each way. Over TCP a lost packet holds every frame behind it until it
//! is resent (a round trip or more); over UDP a frame's lost piece is rebuilt from parity, or
//! the frame is lost alone. Bounds, looser than the targets (UDP p99 at most half of
//! TCP's, at least 95% of the frames shown) for two noisy cores: UDP p99 at most 0.7 of TCP's,
//! at least 90% of the frames shown.
//!
//! A UDP call (`chat --transport udp`, each side sending the same stream) crosses the same link
//! in both directions at once, after one-way TCP in the same run, with the same bounds for each
//! direction. On a quiet machine the call's p99 is about a quarter of TCP's and it shows 97-99% of
//! the frames; two encoders and two decoders share the two cores, so a stall elsewhere can spoil
//! it, and the call is measured once more before the test fails (docs/performance.md has figures).
//!
//! When each side's own firewall refuses 1% of what it sends (no delay, no loss in transit), a
//! refused datagram is one lost datagram, with adaptation on and off; and a viewer whose
//! firewall refuses every other datagram it sends, its join first, still joins and watches; one
//! whose firewall refuses everything times out with a line that says so.
//!
//! Needs root (netbed); skips with the reason otherwise, fails under `FRAMEWIRE_REQUIRE_ALL=1`.
//! `FRAMEWIRE_LINK_REPORT=1` prints the figures.

use std::time::Duration;

use framewire_netbed::{Link, Side, Testbed};
use serde_json::Value;

mod common;
use common::{Serve, finish_view, spawn_call_in, spawn_view_in, stats, wait_timeout};

/// Frames each viewer takes (10 s at 30 fps).
const FRAMES: &str = "300";

/// Held by each test while it streams: two at once (four or six encoders and decoders) would
/// measure the machine's two cores, not the link.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn f64_of(s: &Value, key: &str) -> f64 {
    s[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {s}"))
}

/// Figures of one transport: (p50 ms, p99 ms, share of the frames sent that were shown).
fn run(bed: &Testbed, transport: &str) -> (f64, f64, f64, Value) {
    run_with(bed, transport, "off")
}

/// As [`run`], with adaptation `adapt` (`on` or `off`).
fn run_with(bed: &Testbed, transport: &str, adapt: &str) -> (f64, f64, f64, Value) {
    let listen = format!("{}:0", bed.a().addr());
    let serve = Serve::start_in(
        Some((bed, Side::A)),
        &listen,
        &[
            "--transport",
            transport,
            "--codec",
            "jpeg",
            "--size",
            "640x480",
            "--fps",
            "30",
            "--adapt",
            adapt,
        ],
    );
    let addr = serve.addr.trim_start_matches("udp://").to_string();
    let child = spawn_view_in(
        Some((bed, Side::B)),
        &[
            "--transport",
            transport,
            "--headless",
            "--no-reconnect",
            "--stats",
            "json",
            "--connect",
            &addr,
            "--frames",
            FRAMES,
            "--warmup",
            "1s",
        ],
    );
    let s = stats(&finish_view(child));
    drop(serve);
    let sent = f64_of(&s, "last_seq") - f64_of(&s, "first_seq") + 1.0;
    let latency = &s["latency_ms"];
    (
        f64_of(latency, "p50"),
        f64_of(latency, "p99"),
        f64_of(&s, "frames") / sent,
        s,
    )
}

#[test]
#[allow(clippy::print_stderr)] // the figures, when asked for
fn over_a_lossy_distant_link_udp_shows_nearly_every_frame_sooner_than_tcp() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bed) = Link::builder()
        .rtt(Duration::from_millis(100))
        .loss_percent(1)
        .build_or_skip()
    else {
        return;
    };
    let (t50, t99, tshare, ts) = run(&bed, "tcp");
    let (u50, u99, ushare, us) = run(&bed, "udp");
    let line = format!(
        "100 ms RTT, 1% loss, 640x480 JPEG 30 fps: tcp p50 {t50:.0} ms p99 {t99:.0} ms, {:.1}% \
         of frames; udp p50 {u50:.0} ms p99 {u99:.0} ms, {:.1}% of frames (lost {}, fragments \
         lost {}, recovered {})",
        tshare * 100.0,
        ushare * 100.0,
        us["lost"],
        us["fragments_lost"],
        us["fragments_recovered"],
    );
    if std::env::var("FRAMEWIRE_LINK_REPORT").is_ok_and(|v| v == "1") {
        eprintln!("{line}\ntcp: {ts}\nudp: {us}");
        return;
    }
    assert!(u99 <= 0.7 * t99, "{line}: want udp p99 <= 0.7 x tcp's");
    assert!(
        ushare >= 0.90,
        "{line}: want udp to show >= 90% of the frames"
    );
}

#[test]
#[allow(clippy::print_stderr)] // the figures, when asked for
fn when_each_sides_firewall_refuses_one_datagram_in_a_hundred_udp_loses_only_those() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No delay and no loss on the link: what is lost, the senders' firewalls refused, each
    // refusal a failed `sendto` (EPERM) on the server or the viewer.
    let Some(bed) = Link::builder().refused_percent(1).build_or_skip() else {
        return;
    };
    for adapt in ["off", "on"] {
        let (_, _, share, s) = run_with(&bed, "udp", adapt);
        let line = format!(
            "1% of datagrams refused by each sender's firewall, 640x480 JPEG 30 fps, adaptation \
             {adapt}: {:.1}% of frames (lost {}, fragments lost {}, recovered {}, unsent {})",
            share * 100.0,
            s["lost"],
            s["fragments_lost"],
            s["fragments_recovered"],
            s["datagrams_unsent"],
        );
        if std::env::var("FRAMEWIRE_LINK_REPORT").is_ok_and(|v| v == "1") {
            eprintln!("{line}\nudp: {s}");
            continue;
        }
        // The target is 97%; looser for two noisy cores.
        assert!(
            share >= 0.93,
            "{line}: want udp to show >= 93% of the frames"
        );
    }
}

#[test]
fn a_viewer_whose_firewall_refuses_every_other_datagram_it_sends_joins_and_watches() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bed) = Link::builder().build_or_skip() else {
        return;
    };
    // B's firewall refuses its first datagram to A (the join), then every other one: joins and
    // reports fail to leave with EPERM, and must go again as if lost.
    refuse_at_b(&bed, "numgen inc mod 2 == 0");
    let listen = format!("{}:0", bed.a().addr());
    let args = ["--transport", "udp", "--codec", "jpeg", "--size", "320x240"];
    let serve = Serve::start_in(Some((&bed, Side::A)), &listen, &args);
    let addr = serve.addr.trim_start_matches("udp://").to_string();
    let child = spawn_view_in(
        Some((&bed, Side::B)),
        &[
            "--transport",
            "udp",
            "--headless",
            "--no-reconnect",
            "--stats",
            "json",
            "--connect",
            &addr,
            "--frames",
            "60",
        ],
    );
    // `--no-reconnect`: a refused join or report that ended the session would fail here.
    let s = stats(&finish_view(child));
    assert_eq!(s["frames"], 60, "{s}");
    assert!(s["datagrams_unsent"].as_u64().unwrap() >= 1, "{s}");
}

/// Makes B's firewall refuse the UDP datagrams B sends to A that match `rule` (nft words).
fn refuse_at_b(bed: &Testbed, rule: &str) {
    let ruleset = format!(
        "table ip refuse {{\n chain output {{\n  type filter hook output priority 0;\n  \
         ip daddr {} meta l4proto udp {rule} drop\n }}\n}}\n",
        bed.a().addr()
    );
    let mut child = bed
        .command_in(Side::B, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run nft");
    use std::io::Write as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ruleset.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "nft refused {ruleset}");
}

#[test]
fn a_viewer_whose_firewall_refuses_everything_it_sends_says_so_when_its_join_times_out() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bed) = Link::builder().build_or_skip() else {
        return;
    };
    refuse_at_b(&bed, "");
    let listen = format!("{}:0", bed.a().addr());
    let serve = Serve::start_in(Some((&bed, Side::A)), &listen, &["--transport", "udp"]);
    let addr = serve.addr.trim_start_matches("udp://").to_string();
    let args = [
        "--transport",
        "udp",
        "--headless",
        "--no-reconnect",
        "--connect",
        &addr,
    ];
    let out = finish_view(spawn_view_in(Some((&bed, Side::B)), &args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // One line: the timeout, and why nothing left.
    assert!(
        stderr.contains("to the udp hello within")
            && stderr.contains("the last hello sent was refused here: Operation not permitted"),
        "{stderr}"
    );
}

/// One direction of a call: (p50 ms, p99 ms, share of the frames sent that were shown).
fn direction(s: &Value) -> (f64, f64, f64) {
    let sent = f64_of(s, "last_seq") - f64_of(s, "first_seq") + 1.0;
    let latency = &s["latency_ms"];
    (
        f64_of(latency, "p50"),
        f64_of(latency, "p99"),
        f64_of(s, "frames") / sent,
    )
}

#[test]
#[allow(clippy::print_stderr)] // the figures, when asked for
fn over_a_lossy_distant_link_both_directions_of_a_udp_call_do_what_udp_does_one_way() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bed) = Link::builder()
        .rtt(Duration::from_millis(100))
        .loss_percent(1)
        .build_or_skip()
    else {
        return;
    };
    let report = std::env::var("FRAMEWIRE_LINK_REPORT").is_ok_and(|v| v == "1");
    let mut failed = Vec::new();
    for _ in 0..2 {
        let (line, short) = call_against_tcp(&bed);
        if report {
            eprintln!("{line}");
            return;
        }
        if short.is_empty() {
            return;
        }
        failed.push(format!(
            "{line}: want each direction's p99 <= 0.7 of TCP's and >= 90% of the frames; {}",
            short.join(", ")
        ));
    }
    panic!("in both runs:\n{}", failed.join("\n"));
}

/// One run on `bed`: one-way TCP, then a UDP call. Returns the figures' line and the
/// directions that missed the bounds.
fn call_against_tcp(bed: &Testbed) -> (String, Vec<&'static str>) {
    let (_, t99, _, _) = run(bed, "tcp");
    let side = [
        "--transport",
        "udp",
        "--codec",
        "jpeg",
        "--size",
        "640x480",
        "--fps",
        "30",
        "--adapt",
        "off",
        "--stats",
        "json",
        "--warmup",
        "1s",
    ];
    let listen = format!("{}:0", bed.a().addr());
    let mut listener = Serve::chat_in(Some((bed, Side::A)), &listen, &side);
    let addr = listener.addr.trim_start_matches("udp://").to_string();
    let caller = spawn_call_in(
        Some((bed, Side::B)),
        &addr,
        &[&side[..], &["--frames", FRAMES]].concat(),
    );
    let called = stats(&finish_view(caller));
    assert!(
        wait_timeout(&mut listener.child, "the listener to exit").success(),
        "the listener failed"
    );
    let listened: Value =
        serde_json::from_str(&listener.line_starting("{")).expect("the listener's stats");
    let a_to_b = direction(&called["received"]);
    let b_to_a = direction(&listened["received"]);
    let line = format!(
        "100 ms RTT, 1% loss, 640x480 JPEG 30 fps each way: tcp one way p99 {t99:.0} ms; udp \
         call A to B p50 {:.0} ms p99 {:.0} ms, {:.1}% of frames; B to A p50 {:.0} ms p99 {:.0} \
         ms, {:.1}% of frames",
        a_to_b.0,
        a_to_b.1,
        a_to_b.2 * 100.0,
        b_to_a.0,
        b_to_a.1,
        b_to_a.2 * 100.0,
    );
    let short = [("A to B", a_to_b), ("B to A", b_to_a)]
        .into_iter()
        .filter(|(_, (_, p99, share))| *share < 0.90 || *p99 > 0.7 * t99)
        .map(|(what, _)| what)
        .collect();
    (
        format!("{line}\ncalled: {called}\nlistened: {listened}"),
        short,
    )
}
