//! `cargo xtask bench [--quick]`: runs the criterion benches, the OpenCV baseline, the serve
//! pipeline through the real binary and the viewers-fed measure, and writes one summary table
//! (`target/framewire-bench/summary.json` and `summary.md`) where every row carries its ratio
//! against a baseline measured in the same run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{cargo, on_path, root, run_cmd, target_dir};

/// One line of the summary.
struct Row {
    case: String,
    value: f64,
    unit: &'static str,
    /// What the ratio divides by, with its value; empty where there is none.
    baseline: String,
    /// `value / baseline value`, in the row's unit.
    ratio: Option<f64>,
    /// The target on the ratio, e.g. `<= 1.05` or `>= 0.8`.
    target: Option<(Cmp, f64)>,
    note: String,
}

#[derive(Clone, Copy)]
enum Cmp {
    AtMost,
    AtLeast,
}

impl Row {
    fn new(case: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            case: case.into(),
            value,
            unit,
            baseline: String::new(),
            ratio: None,
            target: None,
            note: String::new(),
        }
    }

    fn against(mut self, name: &str, base: Option<f64>) -> Row {
        if let Some(b) = base.filter(|b| *b > 0.0 && b.is_finite()) {
            self.baseline = format!("{name}: {} {}", fmt_num(b), self.unit);
            self.ratio = Some(self.value / b);
        } else {
            self.baseline = format!("{name}: not measured");
        }
        self
    }

    fn target(mut self, cmp: Cmp, t: f64) -> Row {
        self.target = Some((cmp, t));
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    fn meets(&self) -> Option<bool> {
        let (cmp, t) = self.target?;
        let r = self.ratio?;
        Some(match cmp {
            Cmp::AtMost => r <= t,
            Cmp::AtLeast => r >= t,
        })
    }

    /// The row as `summary.json` has it.
    fn to_json(&self) -> Value {
        json!({
            "case": self.case,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target_text(),
            "meets": self.meets(),
            "note": self.note,
        })
    }

    fn target_text(&self) -> String {
        match self.target {
            Some((Cmp::AtMost, t)) => format!("<= {t}"),
            Some((Cmp::AtLeast, t)) => format!(">= {t}"),
            None => String::new(),
        }
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

pub fn run_bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown bench option {other:?} (see cargo xtask --help)"),
        }
    }
    let t0 = Instant::now();
    let started = SystemTime::now();
    let out_dir = target_dir().join("framewire-bench");
    std::fs::create_dir_all(&out_dir)?;
    let mut notes: Vec<String> = Vec::new();

    // The libjpeg-turbo backend is measured beside the pure-Rust one where it can be built.
    let turbo = on_path("cmake") && on_path("nasm");
    if turbo {
        notes.push(
            "both JPEG encoders measured: framewire's own (pure Rust, the default) and libjpeg-turbo \
             (`--features turbojpeg`, built because cmake and nasm are present)"
                .into(),
        );
    } else {
        notes.push(format!(
            "turbojpeg backend not measured: building it needs cmake and nasm on PATH \
             (cmake {}, nasm {}; Debian: apt-get install cmake nasm); only the pure-Rust JPEG \
             encoder (framewire's own) is measured",
            if on_path("cmake") { "found" } else { "missing" },
            if on_path("nasm") { "found" } else { "missing" },
        ));
    }

    // Build everything first, so that the timings below are not sharing the CPU with rustc.
    // Two builds: the harness's binaries keep the default JPEG encoder (the viewers-fed
    // measure is about the pure-Rust default), and framewire gets both backends where it can.
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--bins",
        "-p",
        "framewire-bench-harness",
    ]);
    run_cmd(build)?;
    let mut build = cargo();
    build.args(["build", "--release", "--bins", "-p", "framewire"]);
    if turbo {
        build.args(["--features", "turbojpeg"]);
    }
    run_cmd(build)?;
    let benches: [(&str, &str); 5] = [
        ("framewire-net", "framing"),
        ("framewire-capture", "resize"),
        ("framewire-codec", "codecs"),
        ("framewire-bench-harness", "loopback"),
        ("framewire-display", "render"),
    ];
    // One cargo invocation for all of them, here and below: the same feature set, so the
    // benches are built once. No features: `cargo bench` also rebuilds the harness's binaries,
    // which keep the default encoder. The libjpeg-turbo encoder's rows come from a second
    // invocation of the codecs bench alone, with the feature.
    let bench_cmd = || {
        let mut cmd = cargo();
        cmd.args(["bench", "--no-fail-fast"]);
        for (p, b) in benches {
            cmd.args(["-p", p, "--bench", b]);
        }
        cmd
    };
    let turbo_cmd = || {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "framewire-codec", "--bench", "codecs"]);
        cmd.args(["--features", "turbojpeg"]);
        cmd
    };
    let mut build = bench_cmd();
    build.arg("--no-run");
    run_cmd(build)?;
    if turbo {
        let mut build = turbo_cmd();
        build.arg("--no-run");
        run_cmd(build)?;
    }
    let build_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();

    let criterion_args: &[&str] = if quick {
        &[
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.6",
            "--sample-size",
            "10",
        ]
    } else {
        &["--warm-up-time", "1", "--measurement-time", "3"]
    };
    let mut cmd = bench_cmd();
    cmd.arg("--").args(criterion_args).arg("--noplot");
    if let Err(e) = run_cmd(cmd) {
        notes.push(format!(
            "a criterion bench failed (its rows are missing): {e:#}"
        ));
    }
    if turbo {
        let mut cmd = turbo_cmd();
        cmd.args(["--", "encode/jpeg-turbo/"])
            .args(criterion_args)
            .arg("--noplot");
        if let Err(e) = run_cmd(cmd) {
            notes.push(format!(
                "the libjpeg-turbo encode bench failed (its rows are missing): {e:#}"
            ));
        }
    }
    let crit = criterion_results(&target_dir().join("criterion"), started);

    let opencv = opencv_baseline(&out_dir, quick, &mut notes);
    let pipeline = pipeline_runs(quick, turbo, &mut notes);
    let viewers = viewers_fed(quick, &mut notes);

    let rows = build_rows(&crit, &opencv, &pipeline, &viewers, &mut notes);
    let run_secs = t1.elapsed().as_secs_f64();
    let md = markdown(&rows, &notes, quick, build_secs, run_secs);
    print!("{md}");
    let json_rows: Vec<Value> = rows.iter().map(Row::to_json).collect();
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&json_rows)? + "\n",
    )?;
    std::fs::write(out_dir.join("summary.md"), &md)?;
    eprintln!(
        "xtask bench: wrote {} and summary.md ({} rows; build {build_secs:.0}s, measuring {run_secs:.0}s)",
        out_dir.join("summary.json").display(),
        rows.len()
    );
    Ok(())
}

/// A criterion result: median ns per iteration, and the bytes per iteration it declared.
#[derive(Clone, Copy)]
struct Measured {
    ns: f64,
    bytes: Option<u64>,
}

/// Criterion's results by id, for every bench run since `since`, read from its own files
/// (`<group>/<id>/new/benchmark.json` and `estimates.json`).
fn criterion_results(dir: &Path, since: SystemTime) -> BTreeMap<String, Measured> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name().is_none_or(|n| n != "benchmark.json")
                || p.parent()
                    .and_then(Path::file_name)
                    .is_none_or(|n| n != "new")
            {
                continue;
            }
            let fresh = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since);
            if !fresh {
                continue;
            }
            let read = |path: &Path| -> Option<Value> {
                serde_json::from_slice(&std::fs::read(path).ok()?).ok()
            };
            let (Some(bench), Some(est)) = (read(&p), read(&p.with_file_name("estimates.json")))
            else {
                continue;
            };
            let (Some(id), Some(median)) = (
                bench["full_id"].as_str(),
                est["median"]["point_estimate"].as_f64(),
            ) else {
                continue;
            };
            let bytes = bench["throughput"]["Bytes"].as_u64();
            out.insert(id.to_string(), Measured { ns: median, bytes });
        }
    }
    out
}

/// OpenCV's median ms per op, keyed `"<op> <WxH>"` as opencv_micro.py prints it.
fn opencv_baseline(out_dir: &Path, quick: bool, notes: &mut Vec<String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let baselines = root().join("../shared/baselines");
    let script = baselines.join("opencv_micro.py");
    if !script.is_file() {
        notes.push(format!(
            "OpenCV ratios left empty: {} is missing",
            script.display()
        ));
        return out;
    }
    let venv = out_dir.join("venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import cv2, numpy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        if !on_path("python3") {
            notes.push("OpenCV ratios left empty: python3 is not on PATH".into());
            return out;
        }
        let mut mk = Command::new("python3");
        mk.arg("-m").arg("venv").arg(&venv);
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "-q", "-r"])
            .arg(baselines.join("requirements.txt"));
        if let Err(e) = run_cmd(mk).and_then(|()| run_cmd(pip)) {
            notes.push(format!(
                "OpenCV ratios left empty: cannot set up the Python venv with pip: {e:#}"
            ));
            return out;
        }
    }
    let runs = if quick { "40" } else { "200" };
    let jobs: [((u32, u32), Vec<String>); 5] = [
        (
            (320, 240),
            vec!["jpeg_encode:80".into(), "jpeg_decode:80".into()],
        ),
        (
            (640, 480),
            vec![
                "resize_area:320x240".into(),
                "resize_linear:320x240".into(),
                "jpeg_encode:80".into(),
                "jpeg_decode:80".into(),
            ],
        ),
        (
            (1280, 720),
            vec!["resize_area:320x180".into(), "resize_linear:320x180".into()],
        ),
        (
            (1920, 1080),
            vec![
                "resize_area:320x180".into(),
                "resize_linear:320x180".into(),
                "jpeg_encode:80".into(),
                "jpeg_decode:80".into(),
            ],
        ),
        ((0, 0), vec![]),
    ];
    let writer = target_dir().join("release/write-pattern");
    for ((w, h), ops) in jobs {
        if ops.is_empty() {
            continue;
        }
        let input = out_dir.join(format!("pattern-{w}x{h}.rgb"));
        let status = Command::new(&writer)
            .arg(&input)
            .arg(format!("{w}x{h}"))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            notes.push(format!("OpenCV {w}x{h}: cannot write the test pattern"));
            continue;
        }
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg("--input").arg(&input).args([
            "--size",
            &format!("{w}x{h}"),
            "--runs",
            runs,
        ]);
        for op in &ops {
            cmd.args(["--op", op]);
        }
        let output = cmd.stderr(Stdio::inherit()).output();
        let Ok(output) = output.map_err(|e| notes.push(format!("OpenCV {w}x{h}: {e}"))) else {
            continue;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let (Some(op), Some(ms)) = (v["op"].as_str(), v["median_ms"].as_f64())
            {
                if let Some(ver) = v["opencv"].as_str() {
                    let n = format!(
                        "OpenCV {ver} (opencv-python-headless, 1 thread) on the same test-pattern pixels"
                    );
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                out.insert(op.to_string(), ms);
            }
        }
    }
    out
}

/// `framewire serve --fps 0` fed to the harness's `sink` (a viewer that receives without
/// decoding, so the figure is the server's pipeline): frames per second for each label,
/// `"<label> threads"` (the default thread count) and `"<label> single"` (`--threads 1`).
/// Runs alternate single and threaded, and each figure is the median of its runs.
fn pipeline_runs(quick: bool, turbo: bool, notes: &mut Vec<String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let (frames, rounds) = if quick { (1500, 1) } else { (3000, 3) };
    let mut cases: Vec<(&str, &[&str])> = vec![
        (
            "jpeg 640x480->320",
            &[
                "--size",
                "640x480",
                "--width",
                "320",
                "--jpeg-encoder",
                "rust",
            ],
        ),
        (
            "jpeg 640x480",
            &["--size", "640x480", "--jpeg-encoder", "rust"],
        ),
    ];
    if turbo {
        cases.push((
            "jpeg-turbo 640x480->320",
            &[
                "--size",
                "640x480",
                "--width",
                "320",
                "--jpeg-encoder",
                "turbojpeg",
            ],
        ));
    }
    for (label, flags) in cases {
        for (mode, extra) in [("single", &["--threads", "1"][..]), ("threads", &[][..])] {
            let mut runs = Vec::new();
            for _ in 0..rounds {
                match pipeline_fps(flags, extra, frames) {
                    Ok(fps) => runs.push(fps),
                    Err(e) => notes.push(format!("pipeline {label} {mode}: {e:#}")),
                }
            }
            runs.sort_by(f64::total_cmp);
            if let Some(median) = runs.get(runs.len() / 2) {
                out.insert(format!("{label} {mode}"), *median);
            }
        }
    }
    out
}

fn pipeline_fps(flags: &[&str], extra: &[&str], frames: u64) -> anyhow::Result<f64> {
    let exe = target_dir().join("release/framewire");
    let mut server = Command::new(&exe)
        .args([
            "serve",
            "--fps",
            "0",
            "--codec",
            "jpeg",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(flags)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let result = (|| {
        let stdout = server.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().context("server exited before listening")??;
            if let Some(a) = line.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        // Drain the server's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let out = Command::new(target_dir().join("release/sink"))
            .args([addr, frames.to_string()])
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("sink failed ({})", out.status);
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("sink's json")?;
        v["fps"].as_f64().context("no fps in sink's json")
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// The viewers-fed binary's JSON objects.
fn viewers_fed(quick: bool, notes: &mut Vec<String>) -> Vec<Value> {
    let exe = target_dir().join("release/viewers-fed");
    let mut cmd = Command::new(&exe);
    if quick {
        cmd.arg("--quick");
    }
    match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Ok(o) => {
            notes.push(format!("viewers-fed failed ({})", o.status));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("cannot run {}: {e}", exe.display()));
            Vec::new()
        }
    }
}

fn build_rows(
    crit: &BTreeMap<String, Measured>,
    cv: &BTreeMap<String, f64>,
    pipe: &BTreeMap<String, f64>,
    viewers: &[Value],
    notes: &mut Vec<String>,
) -> Vec<Row> {
    let ns = |id: &str| crit.get(id).map(|m| m.ns);
    let ms = |id: &str| ns(id).map(|n| n / 1e6);
    let mut rows = Vec::new();

    // Framing.
    for (id, name) in [
        ("framing/header_encode", "framing header encode"),
        ("framing/header_decode", "framing header decode"),
    ] {
        if let Some(v) = ns(id) {
            rows.push(Row::new(name, v, "ns"));
        }
    }
    for case in ["jpeg-320x240", "jpeg-640x480", "raw-1280x720"] {
        if let Some(v) = ns(&format!("framing/reader/{case}")) {
            rows.push(
                Row::new(
                    format!("framing reader {case}, 64 KiB reads"),
                    v / 1e3,
                    "us",
                )
                .against(
                    "memcpy of the same bytes, same reads",
                    ns(&format!("framing/memcpy/{case}")).map(|n| n / 1e3),
                )
                .target(Cmp::AtMost, 1.05),
            );
            rows.push(
                Row::new(
                    format!("framing reader {case}, vs copy + one header read"),
                    v / 1e3,
                    "us",
                )
                .against(
                    "the same copy, then one 8-byte read of the message",
                    ns(&format!("framing/memcpy-then-read/{case}")).map(|n| n / 1e3),
                )
                .note("informative: a baseline that also reads what it copied, as any reader must"),
            );
        }
    }

    // Resize against OpenCV.
    for ((w, h), (ow, oh)) in [
        ((640, 480), (320, 240)),
        ((1280, 720), (320, 180)),
        ((1920, 1080), (320, 180)),
    ] {
        for (ours, theirs, cvname) in [
            ("area", "resize_area", "INTER_AREA"),
            ("bilinear", "resize_linear", "INTER_LINEAR"),
        ] {
            let Some(v) = ms(&format!("resize/{ours}/{w}x{h}-{ow}x{oh}")) else {
                continue;
            };
            let base = cv.get(&format!("{theirs}:{ow}x{oh} {w}x{h}")).copied();
            let t = if ours == "area" && w == 1920 {
                0.5
            } else {
                1.0
            };
            rows.push(
                Row::new(format!("resize {ours} {w}x{h}->{ow}x{oh}"), v, "ms")
                    .against(&format!("OpenCV {cvname}"), base)
                    .target(Cmp::AtMost, t),
            );
        }
    }

    // Codecs.
    for (w, h) in [(320, 240), (640, 480), (1920, 1080)] {
        let memcpy = ms(&format!("codec/memcpy/{w}x{h}"));
        for kind in ["raw", "bincode"] {
            for dir in ["encode", "decode"] {
                if let Some(v) = ms(&format!("codec/{dir}/{kind}/{w}x{h}")) {
                    rows.push(
                        Row::new(format!("{kind} {dir} {w}x{h}"), v, "ms")
                            .against("memcpy of the frame", memcpy),
                    );
                }
            }
        }
        if let Some(v) = ms(&format!("codec/encode/jpeg/{w}x{h}")) {
            rows.push(
                Row::new(
                    format!("jpeg encode {w}x{h} (framewire, pure Rust)"),
                    v,
                    "ms",
                )
                .against(
                    "OpenCV imencode (libjpeg-turbo)",
                    cv.get(&format!("jpeg_encode:80 {w}x{h}")).copied(),
                )
                .note("no per-frame target for the pure-Rust encoder; see the pipeline rows"),
            );
        }
        if let Some(v) = ms(&format!("codec/encode/jpeg-turbo/{w}x{h}")) {
            rows.push(
                Row::new(
                    format!("jpeg encode {w}x{h} (libjpeg-turbo, --features turbojpeg)"),
                    v,
                    "ms",
                )
                .against(
                    "OpenCV imencode (libjpeg-turbo)",
                    cv.get(&format!("jpeg_encode:80 {w}x{h}")).copied(),
                )
                .target(Cmp::AtMost, 1.1),
            );
        }
        if let Some(v) = ms(&format!("codec/decode/jpeg/{w}x{h}")) {
            rows.push(
                Row::new(
                    format!("jpeg decode {w}x{h} (framewire, pure Rust)"),
                    v,
                    "ms",
                )
                .against(
                    "OpenCV imdecode (libjpeg-turbo)",
                    cv.get(&format!("jpeg_decode:80 {w}x{h}")).copied(),
                )
                .target(Cmp::AtMost, 1.3),
            );
        }
    }

    // Loopback end to end.
    for (kind, (w, h)) in [
        ("raw", (640, 480)),
        ("raw", (1280, 720)),
        ("bincode", (1280, 720)),
        ("jpeg", (640, 480)),
        ("jpeg", (1280, 720)),
    ] {
        let id = format!("loopback/framewire/{kind}/{w}x{h}");
        let Some(Measured {
            ns: t,
            bytes: Some(bytes),
        }) = crit.get(&id).copied()
        else {
            continue;
        };
        // The matching plain-TCP bench is named by its message size.
        let tcp = ns(&format!("loopback/tcp/{bytes}"));
        let bytes = bytes as f64;
        let mbs = |t: f64| bytes / t * 1e3;
        let mut row = Row::new(
            format!("loopback {kind} {w}x{h} end to end"),
            mbs(t),
            "MB/s",
        )
        .against("plain TCP send/recv loop, same message size", tcp.map(mbs))
        .note(format!("{:.0} frames/s", 1e9 / t));
        if kind == "raw" && w == 1280 {
            row = row.target(Cmp::AtLeast, 0.8);
        }
        rows.push(row);
    }

    // The serve pipeline through the real binary.
    for (label, cv_key, encoder) in [
        ("jpeg 640x480->320", "jpeg_encode:80 320x240", "pure Rust"),
        ("jpeg 640x480", "jpeg_encode:80 640x480", "pure Rust"),
        (
            "jpeg-turbo 640x480->320",
            "jpeg_encode:80 320x240",
            "libjpeg-turbo",
        ),
    ] {
        let threaded = pipe.get(&format!("{label} threads")).copied();
        let single = pipe.get(&format!("{label} single")).copied();
        let Some(v) = threaded else { continue };
        let pure_rust = encoder == "pure Rust";
        let mut row = Row::new(format!("serve pipeline {label}, threaded"), v, "fps")
            .against("same, --threads 1", single)
            .note(format!(
                "framewire serve --fps 0 --jpeg-encoder {} -> a receive-only viewer, one machine",
                if pure_rust { "rust" } else { "turbojpeg" }
            ));
        if pure_rust {
            row = row.target(Cmp::AtLeast, 1.6);
        }
        rows.push(row);
        let mut row = Row::new(
            format!("serve pipeline {label}, threaded vs OpenCV"),
            v,
            "fps",
        )
        .against(
            "OpenCV single-thread imencode alone",
            cv.get(cv_key).map(|ms| 1e3 / ms),
        )
        .note(format!(
            "{encoder}; ours also captures, resizes and sends, on the same 2 cores"
        ));
        if pure_rust {
            row = row.target(Cmp::AtLeast, 1.0);
        }
        rows.push(row);
        // Where ours resizes, the loop a Python user writes does too: the same work in OpenCV,
        // from the same run's figures. Informative, no target.
        if label.ends_with("->320") {
            let loop_ms = cv.get(cv_key).zip(cv.get("resize_area:320x240 640x480"));
            rows.push(
                Row::new(
                    format!("serve pipeline {label}, threaded vs OpenCV resize + encode"),
                    v,
                    "fps",
                )
                .against(
                    "OpenCV single-thread cv2.resize INTER_AREA + imencode",
                    loop_ms.map(|(enc, resize)| 1e3 / (enc + resize)),
                )
                .note(format!(
                    "{encoder}; the Python tutorial's per-frame work, without its capture or send"
                )),
            );
        }
    }

    // Viewers fed at 30 fps.
    for size in ["320x240", "640x480"] {
        let find = |mode: &str| {
            viewers
                .iter()
                .find(|v| v["size"] == size && v["mode"] == mode)
        };
        if let Some(once) = find("once") {
            let per = find("per-viewer");
            let n = once["max_viewers"].as_f64().unwrap_or(0.0);
            let capped = if once["capped"].as_bool() == Some(true) {
                " (the most tried)"
            } else {
                ""
            };
            rows.push(
                Row::new(
                    format!("viewers fed, jpeg {size} 30 fps, all >= 29 fps, encode once"),
                    n,
                    "viewers",
                )
                .against(
                    "one encode per viewer",
                    per.and_then(|p| p["max_viewers"].as_f64()),
                )
                .note(format!(
                    "server threads' CPU {:.1}% of a core at {n}{capped}",
                    once["server_cpu_cores"].as_f64().unwrap_or(f64::NAN) * 100.0
                )),
            );
            let pct = |v: &Value| v["server_cpu_per_viewer"].as_f64().map(|c| c * 100.0);
            if let Some(c) = pct(once) {
                rows.push(
                    Row::new(
                        format!("server CPU per viewer, jpeg {size} 30 fps, encode once"),
                        c,
                        "% core",
                    )
                    .against("one encode per viewer", per.and_then(pct))
                    .note("user+system time of the server's threads / viewers, at the largest count fed"),
                );
            }
        }
    }
    if viewers.is_empty() {
        notes.push("viewers-fed: no results".into());
    }

    // Renderer.
    let renders: Vec<(&String, f64)> = crit
        .iter()
        .filter(|(k, _)| k.starts_with("render/"))
        .map(|(k, m)| (k, m.ns))
        .collect();
    if renders.is_empty() {
        notes.push(
            "renderer fps not measured: no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
                .into(),
        );
    }
    for (id, t) in renders {
        rows.push(
            Row::new(
                format!("render {} (upload+draw+read back)", &id["render/".len()..]),
                1e9 / t,
                "fps",
            )
            .note("software adapter where no GPU; no baseline"),
        );
    }
    rows
}

fn markdown(rows: &[Row], notes: &[String], quick: bool, build: f64, run: f64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "framewire bench{}: {} rows, measuring took {:.0}s (build {:.0}s)\n\n",
        if quick { " --quick" } else { "" },
        rows.len(),
        run,
        build
    ));
    s.push_str("| case | value | unit | baseline | ratio | target | meets |\n");
    s.push_str("|---|---:|---|---|---:|---|---|\n");
    for r in rows {
        let case = if r.note.is_empty() {
            r.case.clone()
        } else {
            format!("{} ({})", r.case, r.note)
        };
        s.push_str(&format!(
            "| {case} | {} | {} | {} | {} | {} | {} |\n",
            fmt_num(r.value),
            r.unit,
            r.baseline,
            r.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            r.target_text(),
            match r.meets() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        ));
    }
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str(
        "\nratio = value / baseline value, both measured in this run; for ms and us lower is \
         better, for fps, MB/s and viewers higher is better.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(entries: &[(&str, f64, Option<u64>)]) -> BTreeMap<String, Measured> {
        entries
            .iter()
            .map(|&(id, ns, bytes)| (id.to_string(), Measured { ns, bytes }))
            .collect()
    }

    /// OpenCV's or the pipeline's figures by key.
    fn figures(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    fn row<'a>(rows: &'a [Row], case: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.case == case)
            .unwrap_or_else(|| panic!("no row {case:?}"))
    }

    #[test]
    fn each_row_divides_by_its_own_baseline_and_says_whether_it_meets_its_target() {
        let crit = crit(&[
            ("framing/reader/jpeg-320x240", 109.0, Some(14_032)),
            ("framing/memcpy/jpeg-320x240", 100.0, Some(14_032)),
            ("framing/memcpy-then-read/jpeg-320x240", 107.0, Some(14_032)),
            ("framing/reader/jpeg-640x480", 104.0, Some(40_032)),
            ("framing/memcpy/jpeg-640x480", 100.0, Some(40_032)),
            ("resize/area/1920x1080-320x180", 0.4e6, None),
            ("codec/decode/jpeg/320x240", 0.3e6, None),
            ("loopback/framewire/raw/1280x720", 1e6, Some(2_764_832)),
            ("loopback/tcp/2764832", 0.9e6, Some(2_764_832)),
        ]);
        let cv = figures(&[
            ("resize_area:320x180 1920x1080", 1.0),
            ("jpeg_decode:80 320x240", 0.25),
            ("jpeg_encode:80 320x240", 0.25),
            ("resize_area:320x240 640x480", 0.15),
        ]);
        let pipe = figures(&[
            ("jpeg 640x480->320 threads", 3400.0),
            ("jpeg 640x480->320 single", 2000.0),
        ]);
        let mut notes = Vec::new();
        let rows = build_rows(&crit, &cv, &pipe, &[], &mut notes);

        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let r = row(&rows, "framing reader jpeg-320x240, 64 KiB reads");
        assert!(close(r.ratio, 1.09) && r.meets() == Some(false));
        let r = row(
            &rows,
            "framing reader jpeg-320x240, vs copy + one header read",
        );
        assert!(
            close(r.ratio, 109.0 / 107.0) && r.meets().is_none(),
            "no target"
        );
        let r = row(&rows, "framing reader jpeg-640x480, 64 KiB reads");
        assert!(close(r.ratio, 1.04) && r.meets() == Some(true));
        // Resize 1920x1080 area: at least 2x OpenCV, so at most 0.5 of its time.
        let r = row(&rows, "resize area 1920x1080->320x180");
        assert!(close(r.ratio, 0.4) && r.target_text() == "<= 0.5" && r.meets() == Some(true));
        let r = row(&rows, "jpeg decode 320x240 (framewire, pure Rust)");
        assert!(close(r.ratio, 1.2) && r.meets() == Some(true), "target 1.3");
        // Throughput rows: higher is better, so the ratio is ours over theirs in MB/s.
        let r = row(&rows, "loopback raw 1280x720 end to end");
        assert!(close(r.ratio, 0.9) && r.target_text() == ">= 0.8" && r.meets() == Some(true));
        let r = row(&rows, "serve pipeline jpeg 640x480->320, threaded");
        assert!(close(r.ratio, 1.7) && r.meets() == Some(true), "target 1.6");
        let r = row(
            &rows,
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV",
        );
        assert!(close(r.ratio, 3400.0 / 4000.0) && r.meets() == Some(false));
        let r = row(
            &rows,
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV resize + encode",
        );
        assert!(close(r.ratio, 3400.0 / (1e3 / 0.4)) && r.meets().is_none());
        // What was not measured has no row, and what is missing is said.
        assert!(!rows.iter().any(|r| r.case.starts_with("resize bilinear")));
        assert!(notes.iter().any(|n| n.contains("viewers-fed: no results")));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("renderer fps not measured"))
        );
    }

    #[test]
    fn without_opencv_the_ratio_and_meets_are_empty_and_the_baseline_says_so() {
        let crit = crit(&[("resize/area/640x480-320x240", 0.1e6, None)]);
        let rows = build_rows(
            &crit,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &[],
            &mut Vec::new(),
        );
        let r = row(&rows, "resize area 640x480->320x240");
        assert_eq!(r.baseline, "OpenCV INTER_AREA: not measured");
        let j = r.to_json();
        assert_eq!((&j["ratio"], &j["meets"]), (&Value::Null, &Value::Null));
        assert_eq!(j["target"], "<= 1");
    }

    #[test]
    fn summary_rows_carry_the_fields_the_issue_names_and_markdown_flags_misses() {
        let r = Row::new("framing reader x", 1.09, "us")
            .against("memcpy", Some(1.0))
            .target(Cmp::AtMost, 1.05);
        let j = r.to_json();
        let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "case", "value", "unit", "baseline", "ratio", "target", "meets",
        ] {
            assert!(keys.contains(&key), "{key} missing from {j}");
        }
        assert_eq!(j["meets"], false);
        assert_eq!(j["baseline"], "memcpy: 1.00 us");
        let md = markdown(&[r], &["a note".into()], true, 1.0, 2.0);
        assert!(md.starts_with("framewire bench --quick: 1 rows"), "{md}");
        assert!(
            md.contains(
                "| framing reader x | 1.09 | us | memcpy: 1.00 us | 1.09 | <= 1.05 | **no** |"
            ),
            "{md}"
        );
        assert!(md.contains("- a note"), "{md}");
    }

    #[test]
    fn criterion_results_are_read_from_this_runs_files_only() {
        let dir = std::env::temp_dir().join(format!("framewire-xtask-crit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |id: &str, median: f64, bytes: Option<u64>| {
            let new = dir.join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            let throughput = bytes.map_or(Value::Null, |b| json!({ "Bytes": b }));
            let bench = json!({ "full_id": id, "throughput": throughput });
            let est = json!({ "median": { "point_estimate": median } });
            std::fs::write(new.join("benchmark.json"), bench.to_string()).unwrap();
            std::fs::write(new.join("estimates.json"), est.to_string()).unwrap();
        };
        write("framing/old", 5.0, None);
        // File times have coarse steps on some file systems: start the run well after.
        let since = SystemTime::now() + std::time::Duration::from_secs(3600);
        let got = criterion_results(&dir, since);
        assert!(
            got.is_empty(),
            "files older than the run are not this run's"
        );
        write("framing/reader/jpeg-320x240", 123.5, Some(14_032));
        let got = criterion_results(&dir, SystemTime::UNIX_EPOCH);
        let m = got["framing/reader/jpeg-320x240"];
        assert_eq!((m.ns, m.bytes), (123.5, Some(14_032)));
        assert_eq!(got.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
