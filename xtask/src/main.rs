//! `cargo xtask`: the project's own tasks (demo, test, bench), in Rust so they run wherever cargo does.
//! Depends on no workspace crate: it shells out to cargo and to the built binary.

// A task runner talks to the user.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod bench;
mod demo;
mod python;
mod test;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  demo [--codec raw|bincode|jpeg] [--size WxH] [--width W] [--fps N] [--frames N]
        build framewire (release), start a server on the test pattern and a viewer on
        loopback; shows live stats and writes the last frame to target/framewire-demo/last.png.
        Stop with Enter or Ctrl-C (or let --frames end it).
  test [--build-only]
        rustfmt check, clippy -D warnings, and every test of the workspace (clippy lints
        while the tests build), then the Python package built into a venv under
        target/python and its pytest suite; --build-only stops once the tests are built.
  bench [--quick]
        criterion benches (framing, resize, codecs, loopback, renderer), OpenCV on the same
        pixels (a Python venv under target/), the serve pipeline, viewers fed, and serve ->
        view across narrow links (network namespaces: as root, else those rows say 'not
        measured: needs root'); prints one table with ratios against baselines measured in
        the same run and writes target/framewire-bench/summary.json and summary.md.
        --quick: short measurements.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run_bench(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return if args.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Where cargo puts what it builds: `$CARGO_TARGET_DIR` (relative to the workspace root, where
/// xtask runs cargo) or `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// `cargo` as this cargo was invoked (respects $CARGO), run from the workspace root.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Whether a file called `name` is in one of `PATH`'s directories.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Runs `cmd`, echoing it first; an error names the command that failed.
fn run_cmd(mut cmd: Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {shown}: {e}"))?;
    if !status.success() {
        anyhow::bail!("{shown} failed ({status})");
    }
    Ok(())
}
