//! `cargo xtask bench [--quick]`: runs the criterion benches, the OpenCV baseline, the serve
//! pipeline through the real binary, the viewers-fed measure and the real binary's serve -> view
//! across narrow netbed links (bench-harness's `narrow-link`), and writes one summary table
//! (`target/framewire-bench/summary.json` and `summary.md`) where every row carries its ratio
//! against a baseline measured in the same run. Every row comes from one table, `rows::table()`,
//! made from parameter tables (sizes, codecs, links); a row
//! whose bench gave no result fails the command, naming the row and the bench id, unless the table
//! lets this machine lack it (OpenCV, libjpeg-turbo's build tools, a GPU adapter). Where network
//! namespaces cannot be made (not root), the narrow-link rows stay, without a value, their note
//! "not measured: needs root".
//!
//! `spec.rs` says what a row is made of, `rows.rs` lists them, `runs.rs` runs what measures them,
//! `measure.rs` builds the rows from a run, `summary.rs` writes them out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{cargo, on_path, root, run_cmd, target_dir};

mod measure;
mod rows;
mod runs;
mod spec;
mod summary;
#[cfg(test)]
mod tests;

use measure::*;
use rows::*;
use runs::*;
use spec::*;
use summary::*;

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
    // H.264 (OpenH264 from source) where a C++ compiler is here: framewire and h264-vs-x264.
    let h264 = on_path("c++");
    let harness = || {
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "--bins",
            "-p",
            "framewire-bench-harness",
        ]);
        if h264 {
            build.args(["--features", "h264"]);
        }
        build
    };
    run_cmd(harness())?;
    let mut build = cargo();
    build.args(["build", "--release", "--bins", "-p", "framewire"]);
    let features: Vec<&str> = [(turbo, "turbojpeg"), (h264, "h264")]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    run_cmd(build)?;
    // One cargo invocation for all of them, here and below: the same feature set, so the
    // benches are built once. No features: `cargo bench` also rebuilds the harness's binaries,
    // which keep the default encoder. The libjpeg-turbo encoder's rows come from a second
    // invocation of the codecs bench alone, with the feature.
    let bench_cmd = || {
        let mut cmd = cargo();
        cmd.args(["bench", "--no-fail-fast"]);
        for (p, b, _) in BENCHES {
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
        cmd.args(["--", TURBO_FILTER])
            .args(criterion_args)
            .arg("--noplot");
        if let Err(e) = run_cmd(cmd) {
            notes.push(format!(
                "the libjpeg-turbo encode bench failed (its rows are missing): {e:#}"
            ));
        }
    }
    let crit = criterion_results(&target_dir().join("criterion"), started);
    // `cargo bench` rebuilt the harness's binaries without the feature h264 (viewers-fed's
    // WebSocket clients need its encoder): built again with it, before they run.
    if h264 {
        run_cmd(harness())?;
    }

    let opencv = opencv_baseline(&out_dir, quick, &mut notes);
    let pipeline = pipeline_runs(quick, turbo, &mut notes);
    let viewers = viewers_fed(quick, &mut notes);
    let link = narrow_link(quick, h264, &mut notes);
    let browser = browser_latency(quick, &mut notes);
    let media_server = media_server_run(h264, quick, &mut notes);
    let browser_link = browser_link_run(h264, quick, &mut notes);
    let python = python_run(quick, &mut notes);
    let h264 = h264_vs_x264(h264, quick, &mut notes);
    let measured = Measurements {
        crit,
        opencv,
        pipeline,
        viewers,
        turbo,
        link,
        browser,
        h264,
        media_server,
        browser_link,
        python,
    };

    let rows = match build_rows(table(), &measured, &mut notes) {
        Ok(rows) => rows,
        Err(e) => {
            // What the run noted often says why a figure is missing (a bench that failed).
            for n in &notes {
                eprintln!("xtask bench: note: {n}");
            }
            return Err(e);
        }
    };
    let run_secs = t1.elapsed().as_secs_f64();
    let md = markdown(&rows, &notes, quick, build_secs, run_secs);
    print!("{md}");
    let json_rows: Vec<Value> = rows.iter().map(Row::to_json).collect();
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&json_rows)? + "\n",
    )?;
    std::fs::write(out_dir.join("summary.md"), &md)?;
    // A full run's figures are the ones the docs show; a quick run's are too noisy to keep.
    if !quick {
        let docs = root().join("docs/performance.md");
        let text = std::fs::read_to_string(&docs)
            .with_context(|| format!("reading {}", docs.display()))?;
        let figures = format!("{}\n\n{md}", run_description());
        std::fs::write(&docs, with_figures(&text, &figures)?)
            .with_context(|| format!("writing {}", docs.display()))?;
        eprintln!("xtask bench: wrote the table into {}", docs.display());
    }
    eprintln!(
        "xtask bench: wrote {} and summary.md ({} rows; build {build_secs:.0}s, measuring {run_secs:.0}s)",
        out_dir.join("summary.json").display(),
        rows.len()
    );
    Ok(())
}
