//! Latency and frame rate through a narrow link, with the real `framewire` binary:
//! `narrow-link FRAMEWIRE [--quick] CASE...`, where CASE is `ADAPT:SHARE:RTT_MS` (`off:60:0`,
//! `on:30:0`, `off:30:40`, ...), optionally followed by `:TRANSPORT:LOSS` (`off:0:100:udp:1`:
//! framewire over UDP, 1% random loss each way; `rN` for LOSS: N% refused by each sender's own
//! firewall instead, its `sendto` failing; a SHARE of 0 is a link without a rate limit,
//! whose frame-time is the source's frame interval). TRANSPORT `udpchat` is a two-way call
//! instead: `framewire chat --transport udp --listen` in A, `chat --connect` in B, each
//! sending the stream; its object's figures are the worse direction's (the higher latency,
//! the lower fps), and `a_to_b`, `b_to_a` hold each direction's.
//!
//! First the stream's bytes per frame at its top rung (640x480 JPEG quality 80, headers
//! included) on loopback. Then, one case at a time, a netbed testbed whose link toward B carries
//! SHARE percent of that stream at 30 fps, with RTT_MS of added round trip: `framewire serve
//! --codec jpeg --size 640x480 --fps 30 --adapt ADAPT` in A, `framewire view --headless
//! --no-reconnect --stats json` in B. With adaptation on the viewer's first 3 s are left out
//! (`--warmup 3s`, while it settles on a rung), and serve's `moved` lines time its last move.
//!
//! One JSON object per case on stdout, in the order asked:
//! - `p50_ms`, `p99_ms`: capture-to-decoded latency minus the added round trip;
//! - `frame_ms`: one frame-time, the bytes per frame received over the link rate; the latency
//!   in frame-times is `p50_ms / frame_ms` (also given, `p50_frame_times`, `p99_frame_times`);
//! - `fps` received, `capacity_fps` (what the link carries of frames that size, `1000 /
//!   frame_ms`) and `source_fps` (30); `fps_share` is fps over capacity with adaptation off,
//!   and over the source's 30 fps with it on (the lower rungs' frames are smaller, so a link
//!   carries more of them than the source makes);
//! - `p99_total_ms`: the p99 with the round trip in; `transport`, `loss_percent`;
//! - `rung` the viewer ended on, `rung_changes`, serve's `moves` and `settled_ms` (from the
//!   viewer's start to its last move; 0 when it never moved), `warmup_ms`;
//! - `keyframes`; with `--codec h264`, `pattern_errors` (`view --verify-test-pattern`; a case
//!   with any fails) and, across a lossy link (where serve has no parity and no periodic
//!   keyframe, and the viewer no warm-up), `recovery_ms`: from a lost frame to the next
//!   picture, the frames not shown per recovery plus the keyframe's own, in frame intervals;
//! - or `{"case": .., "error": ..}` where the case failed.
//!
//! Where this machine cannot make a testbed (netbed needs root, `ip`, `tc`, `nft`,
//! `/dev/net/tun`) it prints one object, `{"unavailable": REASON}`, and exits 0.
//! `--quick` streams 3 s per case instead of 5 (after the warm-up). `--codec C` streams another
//! codec than JPEG (h264 needs a framewire built with its feature). `--link-of C` sizes each
//! link by codec C's top-rung stream instead of the streamed codec's own (`--codec h264
//! --link-of jpeg`: H.264 through a link that carries SHARE percent of what JPEG needs); a
//! frame-time is then never less than the source's frame interval, since a link wider than
//! the stream carries a frame in less.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use framewire_netbed::{Link, Side};
use serde_json::{Value, json};

/// The source's frame rate.
const FPS: f64 = 30.0;
/// The codec every case streams: jpeg, or what `--codec C` says (h264 needs a framewire built
/// with its feature).
static CODEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// The codec whose top-rung stream sizes the links: the streamed one, or what `--link-of C` says.
static LINK_OF: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn codec() -> &'static str {
    CODEC.get().map_or("jpeg", String::as_str)
}

fn link_of() -> &'static str {
    LINK_OF.get().map_or_else(codec, String::as_str)
}

/// `serve`'s stream in `codec`; `--adapt` follows.
fn stream(codec: &str) -> [&str; 6] {
    ["--codec", codec, "--size", "640x480", "--fps", "30"]
}
/// What the viewer leaves out while it settles, with adaptation on.
const WARMUP: Duration = Duration::from_secs(3);
/// What the viewer leaves out in a lossy case (the stream's start).
const LOSSY_WARMUP: Duration = Duration::from_secs(1);
/// Frames of the loopback run that measures the top rung's bytes per frame.
const SIZE_FRAMES: u64 = 30;
/// The longest any one run may take before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// One case: adaptation on or off, the share of the top rung's stream the link carries, and
/// the round trip it adds.
#[derive(Clone, Copy, Debug)]
struct Case {
    adapt: bool,
    share_percent: u32,
    rtt_ms: u32,
    udp: bool,
    /// A two-way UDP call rather than serve and view.
    chat: bool,
    loss_percent: u8,
    /// The loss is each sender's firewall refusing its datagrams, not the link dropping them.
    refused: bool,
}

impl Case {
    /// `ADAPT:SHARE:RTT_MS`, e.g. `off:60:0`.
    fn parse(s: &str) -> Result<Case, String> {
        let bad =
            || format!("case {s:?}: expected ADAPT:SHARE:RTT_MS[:TRANSPORT:LOSS], e.g. off:60:0");
        let parts: Vec<&str> = s.split(':').collect();
        let (adapt, share, rtt, udp, chat, loss, refused) = match parts[..] {
            [a, s, r] => (a, s, r, false, false, 0, false),
            [a, s, r, t, l] => {
                let (udp, chat) = match t {
                    "udp" => (true, false),
                    "udpchat" => (true, true),
                    "tcp" => (false, false),
                    _ => return Err(bad()),
                };
                let (l, refused) = match l.strip_prefix('r') {
                    Some(l) => (l, true),
                    None => (l, false),
                };
                let loss = l.parse::<u8>().ok().filter(|l| *l <= 100).ok_or_else(bad)?;
                (a, s, r, udp, chat, loss, refused)
            }
            _ => return Err(bad()),
        };
        let adapt = match adapt {
            "on" => true,
            "off" => false,
            _ => return Err(bad()),
        };
        // 0: no rate limit, for a lossy case only.
        let share_percent = share
            .parse()
            .ok()
            .filter(|p| (1..=1000).contains(p) || (*p == 0 && parts.len() == 5));
        let rtt_ms = rtt.parse().ok().filter(|ms| *ms <= 10_000);
        let (Some(share_percent), Some(rtt_ms)) = (share_percent, rtt_ms) else {
            return Err(bad());
        };
        Ok(Case {
            adapt,
            share_percent,
            rtt_ms,
            udp,
            chat,
            loss_percent: loss,
            refused,
        })
    }

    fn name(self) -> String {
        let adapt = if self.adapt { "on" } else { "off" };
        let base = format!("{adapt}:{}:{}", self.share_percent, self.rtt_ms);
        if self.udp || self.loss_percent > 0 {
            let r = if self.refused { "r" } else { "" };
            format!("{base}:{}:{r}{}", self.transport(), self.loss_percent)
        } else {
            base
        }
    }

    fn transport(self) -> &'static str {
        match (self.udp, self.chat) {
            (true, true) => "udpchat",
            (true, false) => "udp",
            _ => "tcp",
        }
    }
}

fn main() -> ExitCode {
    let mut exe = None;
    let mut quick = false;
    let mut cases = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--quick" {
            quick = true;
        } else if a == "--codec" {
            let Some(codec) = args.next() else {
                return usage("--codec needs a codec");
            };
            let _ = CODEC.set(codec);
        } else if a == "--link-of" {
            let Some(codec) = args.next() else {
                return usage("--link-of needs a codec");
            };
            let _ = LINK_OF.set(codec);
        } else if exe.is_none() {
            exe = Some(PathBuf::from(a));
        } else {
            match Case::parse(&a) {
                Ok(c) => cases.push(c),
                Err(e) => return usage(&e),
            }
        }
    }
    let Some(exe) = exe.filter(|_| !cases.is_empty()) else {
        return usage("expected the framewire binary's path and at least one case");
    };
    if !exe.is_file() {
        return usage(&format!("{} is not a file", exe.display()));
    }
    if let Err(reason) = framewire_netbed::available() {
        println!("{}", json!({ "unavailable": reason.to_string() }));
        return ExitCode::SUCCESS;
    }
    let top_bytes = |codec: &str| {
        top_frame_bytes(&exe, codec).map_err(|e| {
            eprintln!("narrow-link: {codec}'s bytes per frame on loopback: {e}");
            ExitCode::FAILURE
        })
    };
    let sizes = match (top_bytes(link_of()), top_bytes(codec())) {
        (Ok(link), Ok(own)) => Sizes { link, own },
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let seconds = if quick { 3.0 } else { 5.0 };
    for case in cases {
        let out = run_case(&exe, case, sizes, seconds)
            .unwrap_or_else(|e| json!({ "case": case.name(), "error": e }));
        println!("{out}");
    }
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "narrow-link: {problem}\nusage: narrow-link FRAMEWIRE [--quick] [--codec C] [--link-of C] ADAPT:SHARE:RTT_MS... \
         (e.g. narrow-link target/release/framewire off:60:0 on:30:0)"
    );
    ExitCode::from(2)
}

/// A running `framewire serve`, killed when dropped; its stdout lines arrive on `lines` with the
/// time each was read.
struct Serve {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Serve {
    /// Starts `cmd` (the framewire binary, here or in a namespace) as `serve --listen LISTEN`.
    fn start(
        mut cmd: Command,
        codec: &str,
        listen: &str,
        adapt: bool,
        transport: &str,
        extra: &[&str],
    ) -> Result<Serve, String> {
        let mut child = cmd
            .args(["serve", "--listen", listen, "--transport", transport])
            .args(stream(codec))
            .args(["--adapt", if adapt { "on" } else { "off" }])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start framewire serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("serve's stdout")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve {
            child,
            addr: String::new(),
            lines,
        };
        let first = serve
            .lines
            .recv_timeout(DEADLINE)
            .map_err(|_| "serve printed no `listening on ADDR` line".to_string())?
            .1;
        serve.addr = first
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("serve's first line was {first:?}"))?
            .trim()
            .trim_start_matches("udp://")
            .to_string();
        Ok(serve)
    }

    /// The times of serve's `viewer ... moved ...` lines read so far, after `since`.
    fn moves_since(&self, since: Instant) -> Vec<Instant> {
        self.lines
            .try_iter()
            .filter(|(at, line)| {
                *at >= since && line.starts_with("viewer ") && line.contains(" moved ")
            })
            .map(|(at, _)| at)
            .collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` (the framewire binary) as `view --headless --no-reconnect --stats json` with
/// `args`, to its end or `DEADLINE`, and returns its stats.
fn view(mut cmd: Command, args: &[&str]) -> Result<Value, String> {
    cmd.args(["view", "--headless", "--no-reconnect", "--stats", "json"]);
    finish(cmd, args, "view")
}

/// Runs `cmd` with `args` to its end or `DEADLINE` and returns the JSON object it printed.
fn finish(mut cmd: Command, args: &[&str], what: &str) -> Result<Value, String> {
    let mut child = cmd
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start framewire {what}: {e}"))?;
    // Read both pipes while it runs, so that neither fills.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {DEADLINE:?}"));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{what} failed ({status}): {}", stderr.trim()));
    }
    // The stats are the last line (a listener prints its address first).
    let last = stdout.trim().lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| format!("{what}'s stats {stdout:?}: {e}"))
}

fn number(s: &Value, key: &str) -> Result<f64, String> {
    s[key]
        .as_f64()
        .ok_or_else(|| format!("no number {key} in view's stats {s}"))
}

/// Bytes per frame of `codec`'s top rung (headers included), from a short view on loopback.
fn top_frame_bytes(exe: &Path, codec: &str) -> Result<f64, String> {
    let serve = Serve::start(Command::new(exe), codec, "127.0.0.1:0", false, "tcp", &[])?;
    let frames = SIZE_FRAMES.to_string();
    let s = view(
        Command::new(exe),
        &["--connect", &serve.addr, "--frames", &frames],
    )?;
    let bytes = number(&s, "bytes")? / number(&s, "frames")?;
    if bytes.is_finite() && bytes > 0.0 {
        Ok(bytes)
    } else {
        Err(format!("no frames in {s}"))
    }
}

/// Bytes per frame of the top rungs measured on loopback: of the codec that sizes the links,
/// and of the one streamed.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    link: f64,
    own: f64,
}

/// Streams `case` and returns its figures as one JSON object.
fn run_case(exe: &Path, case: Case, sizes: Sizes, seconds: f64) -> Result<Value, String> {
    if case.chat {
        return run_call(exe, case, seconds);
    }
    let stream_kbit = sizes.link * 8.0 * FPS / 1000.0;
    let rate_kbit = (stream_kbit * f64::from(case.share_percent) / 100.0).round() as u32;
    let rtt = Duration::from_millis(u64::from(case.rtt_ms));
    let mut builder = Link::builder().rtt(rtt);
    builder = match case.refused {
        true => builder.refused_percent(case.loss_percent),
        false => builder.loss_percent(case.loss_percent),
    };
    if case.share_percent > 0 {
        builder = builder.rate_kbit_toward(Side::B, rate_kbit.max(1));
    }
    let link = builder.link().to_string();
    let bed = builder
        .build()
        .map_err(|e| format!("cannot build a testbed with {link}: {e}"))?;
    // An inter-frame codec across a lossy link: no parity, so that a loss is a whole frame,
    // and no periodic keyframe, so that each keyframe after the first ends a recovery.
    let h264_lossy = codec() == "h264" && case.loss_percent > 0;
    let extra: &[&str] = if h264_lossy {
        &["--fec", "0", "--keyint", "100000"]
    } else {
        &[]
    };
    let serve = Serve::start(
        bed.command_in(Side::A, exe),
        codec(),
        &format!("{}:0", bed.a().addr()),
        case.adapt,
        case.transport(),
        extra,
    )?;
    // Frames to count: the link's worth with adaptation off, the source's with it on.
    let per_second = if case.adapt || case.share_percent == 0 {
        FPS
    } else {
        (f64::from(rate_kbit) * 1000.0 / 8.0 / sizes.own).min(FPS)
    };
    let frames = ((per_second * seconds).ceil() as u64).max(10).to_string();
    // A lossy case leaves its first second out (the stream's start), for both transports.
    // (An H.264 lossy case keeps its start: its recoveries are counted from it.)
    let warmup_time = if case.adapt {
        WARMUP
    } else if case.loss_percent > 0 && !h264_lossy {
        LOSSY_WARMUP
    } else {
        Duration::ZERO
    };
    let warmup = format!("{}s", warmup_time.as_secs());
    let mut args = vec![
        "--connect",
        &serve.addr,
        "--frames",
        &frames,
        "--transport",
        case.transport(),
    ];
    if !warmup_time.is_zero() {
        args.extend(["--warmup", &warmup]);
    }
    if codec() != "jpeg" {
        args.push("--verify-test-pattern");
    }
    let started = Instant::now();
    let s = view(bed.command_in(Side::B, exe), &args)?;
    let moves = serve.moves_since(started);
    drop(serve);
    drop(bed);

    if let Some(errors) = s["pattern_errors"].as_u64().filter(|&n| n > 0) {
        return Err(format!("{errors} frames showed a wrong picture: {s}"));
    }
    // From a loss to a picture: the frames not shown per recovery, and the keyframe's own.
    let recovery_ms = match (
        s["keyframes"].as_f64(),
        s["frames_before_keyframe"].as_f64(),
    ) {
        (Some(keyframes), Some(waited)) if h264_lossy && keyframes > 1.0 => {
            Some((waited / (keyframes - 1.0) + 1.0) * 1000.0 / FPS)
        }
        _ => None,
    };
    let received = number(&s, "frames")?;
    if received < 2.0 {
        return Err(format!("too few frames to measure: {s}"));
    }
    let frame_bytes = number(&s, "bytes")? / received;
    // Without a rate limit, a frame-time is the source's frame interval.
    let frame_ms = if case.share_percent == 0 {
        1000.0 / FPS
    } else if link_of() != codec() {
        (frame_bytes / (f64::from(rate_kbit) / 8.0)).max(1000.0 / FPS)
    } else {
        frame_bytes / (f64::from(rate_kbit) / 8.0)
    };
    let capacity_fps = 1000.0 / frame_ms;
    let fps = number(&s, "fps")?;
    let latency = |q: &str| {
        s["latency_ms"][q]
            .as_f64()
            .map(|ms| ms - f64::from(case.rtt_ms))
            .ok_or_else(|| format!("no latency_ms.{q} in view's stats {s}"))
    };
    let (p50, p99, max) = (latency("p50")?, latency("p99")?, latency("max")?);
    let fps_share = if case.adapt {
        fps / FPS
    } else {
        fps / capacity_fps.min(FPS)
    };
    let settled_ms = moves
        .last()
        .map_or(0.0, |at| at.duration_since(started).as_secs_f64() * 1e3);
    let warmup_ms = warmup_time.as_secs_f64() * 1e3;
    let round = |v: f64, places: i32| {
        let k = 10f64.powi(places);
        (v * k).round() / k
    };
    Ok(json!({
        "case": case.name(),
        "adapt": if case.adapt { "on" } else { "off" },
        "share_percent": case.share_percent,
        "rtt_ms": case.rtt_ms,
        "rate_kbit": rate_kbit,
        "codec": codec(),
        "link_of": link_of(),
        "top_frame_bytes": round(sizes.own, 0),
        "frames": s["frames"],
        "keyframes": s["keyframes"],
        "pattern_errors": s["pattern_errors"],
        "recovery_ms": recovery_ms.map(|ms| round(ms, 1)),
        "frame_bytes": round(frame_bytes, 0),
        "frame_ms": round(frame_ms, 3),
        "capacity_fps": round(capacity_fps, 3),
        "source_fps": FPS,
        "fps": fps,
        "fps_share": round(fps_share, 3),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "p99_total_ms": round(p99 + f64::from(case.rtt_ms), 3),
        "transport": case.transport(),
        "loss_percent": case.loss_percent,
        "refused": case.refused,
        "max_ms": round(max, 3),
        "p50_frame_times": round(p50 / frame_ms, 3),
        "p99_frame_times": round(p99 / frame_ms, 3),
        "rung": s["rung"],
        "rung_changes": s["rung_changes"],
        "moves": moves.len(),
        "settled_ms": round(settled_ms, 0),
        "warmup_ms": warmup_ms,
    }))
}

/// A two-way UDP call across a lossy link without a rate limit: the listener in A, the caller
/// in B, each sending the stream with adaptation off; the caller hangs up after `seconds` of
/// frames (after a 1 s warm-up, on both sides). The figures are the worse direction's.
fn run_call(exe: &Path, case: Case, seconds: f64) -> Result<Value, String> {
    if case.share_percent != 0 || case.adapt {
        return Err(
            "a udpchat case has no rate limit and adaptation off (off:0:RTT:udpchat:LOSS)".into(),
        );
    }
    let rtt = Duration::from_millis(u64::from(case.rtt_ms));
    let builder = Link::builder().rtt(rtt).loss_percent(case.loss_percent);
    let link = builder.link().to_string();
    let bed = builder
        .build()
        .map_err(|e| format!("cannot build a testbed with {link}: {e}"))?;
    let warmup = format!("{}s", LOSSY_WARMUP.as_secs());
    let side = |cmd: &mut Command| {
        cmd.args([
            "chat",
            "--headless",
            "--transport",
            "udp",
            "--stats",
            "json",
        ])
        .args(stream(codec()))
        .args(["--adapt", "off", "--warmup", &warmup]);
    };
    let mut listen = bed.command_in(Side::A, exe);
    side(&mut listen);
    let listen_at = format!("{}:0", bed.a().addr());
    let mut listener = listen
        .args(["--listen", &listen_at])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start framewire chat --listen: {e}"))?;
    let stdout = listener.stdout.take().ok_or("the listener's stdout")?;
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = (|| {
        let first = lines
            .recv_timeout(DEADLINE)
            .map_err(|_| "the listener printed no `listening on udp://ADDR` line".to_string())?;
        let addr = first
            .strip_prefix("listening on udp://")
            .ok_or_else(|| format!("the listener's first line was {first:?}"))?
            .to_string();
        let frames = ((FPS * seconds).ceil() as u64).to_string();
        let mut call = bed.command_in(Side::B, exe);
        side(&mut call);
        call.args(["--connect", &addr, "--frames", &frames]);
        let called = finish(call, &[], "chat --connect")?;
        // The caller hung up: the listener prints its stats and exits.
        let deadline = Instant::now() + DEADLINE;
        let listened = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| "the listener printed no stats after the hang-up".to_string())?;
            if line.starts_with('{') {
                break serde_json::from_str::<Value>(&line)
                    .map_err(|e| format!("the listener's stats {line:?}: {e}"))?;
            }
        };
        Ok::<_, String>((called, listened))
    })();
    let _ = listener.kill();
    let _ = listener.wait();
    drop(bed);
    let (called, listened) = result?;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let direction = |s: &Value| -> Result<Value, String> {
        let r = &s["received"];
        let p = |q: &str| {
            r["latency_ms"][q]
                .as_f64()
                .ok_or_else(|| format!("no latency_ms.{q} in the call's stats {s}"))
        };
        let sent = number(r, "last_seq")? - number(r, "first_seq")? + 1.0;
        let p99_total = p("p99")?;
        Ok(json!({
            "frames": r["frames"],
            "fps": number(r, "fps")?,
            "shown_share": round(number(r, "frames")? / sent),
            "p50_ms": round(p("p50")? - f64::from(case.rtt_ms)),
            "p99_ms": round(p99_total - f64::from(case.rtt_ms)),
            "p99_total_ms": round(p99_total),
            "lost": r["lost"],
            "fragments_lost": r["fragments_lost"],
            "fragments_recovered": r["fragments_recovered"],
        }))
    };
    let (a_to_b, b_to_a) = (direction(&called)?, direction(&listened)?);
    let worse = |key: &str, higher: bool| {
        let (a, b) = (a_to_b[key].as_f64(), b_to_a[key].as_f64());
        match (a, b) {
            (Some(a), Some(b)) if higher => a.max(b),
            (Some(a), Some(b)) => a.min(b),
            _ => f64::NAN,
        }
    };
    Ok(json!({
        "case": case.name(),
        "adapt": "off",
        "share_percent": 0,
        "rtt_ms": case.rtt_ms,
        "source_fps": FPS,
        "frame_ms": round(1000.0 / FPS),
        "fps": worse("fps", false),
        "shown_share": worse("shown_share", false),
        "p50_ms": worse("p50_ms", true),
        "p99_ms": worse("p99_ms", true),
        "p99_total_ms": worse("p99_total_ms", true),
        "transport": case.transport(),
        "loss_percent": case.loss_percent,
        "warmup_ms": LOSSY_WARMUP.as_secs_f64() * 1e3,
        "a_to_b": a_to_b,
        "b_to_a": b_to_a,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_read_and_name_themselves() {
        let c = Case::parse("on:30:40").unwrap();
        assert!(c.adapt && c.share_percent == 30 && c.rtt_ms == 40);
        assert_eq!(c.name(), "on:30:40");
        assert_eq!(Case::parse("off:60:0").unwrap().name(), "off:60:0");
        let c = Case::parse("off:0:100:udpchat:1").unwrap();
        assert!(c.udp && c.chat);
        assert_eq!(c.name(), "off:0:100:udpchat:1");
        let c = Case::parse("on:0:0:udp:r1").unwrap();
        assert!(c.udp && c.refused && c.loss_percent == 1 && c.adapt);
        assert_eq!(c.name(), "on:0:0:udp:r1");
        let c = Case::parse("off:0:100:udp:1").unwrap();
        assert!(c.udp && c.loss_percent == 1 && c.share_percent == 0);
        assert_eq!(c.name(), "off:0:100:udp:1");
        for bad in [
            "",
            "off",
            "off:60",
            "maybe:60:0",
            "off:0:0",
            "off:60:x",
            "off:60:0:1",
            "off:0:0",
            "off:0:100:quic:1",
            "off:0:100:udp:101",
        ] {
            assert!(Case::parse(bad).is_err(), "{bad}");
        }
    }
}
