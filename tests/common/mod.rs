//! What the end-to-end tests share: the real `framewire` binary run here or inside a testbed's
//! namespace, a running `serve` whose output lines arrive as they are printed, and `view` runs
//! with a deadline and their `--stats json`.
#![allow(dead_code)] // each test binary uses its own part

pub mod browser;
pub mod http;
pub mod xscreen;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use framewire_netbed::{Side, Testbed};
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);

/// Where a process runs: here, or inside one side of a testbed.
pub type Place<'a> = Option<(&'a Testbed, Side)>;

/// The `framewire` binary, to run at `place`.
pub fn framewire_at(place: Place<'_>) -> Command {
    let bin = env!("CARGO_BIN_EXE_framewire");
    let mut cmd = match place {
        Some((bed, side)) => bed.command_in(side, bin),
        None => Command::new(bin),
    };
    cmd.env_remove("RUST_LOG");
    cmd
}

/// The `framewire` binary, to run here.
pub fn framewire() -> Command {
    framewire_at(None)
}

/// A running `framewire serve`; killed when dropped. Its stdout lines arrive on `lines`.
pub struct Serve {
    pub child: Child,
    pub addr: String,
    pub lines: mpsc::Receiver<String>,
    pub errors: mpsc::Receiver<String>,
}

impl Serve {
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_at("127.0.0.1:0", args)
    }

    pub fn start_at(listen: &str, args: &[&str]) -> Serve {
        Serve::start_in(None, listen, args)
    }

    /// Starts `framewire serve --listen LISTEN ARGS` at `place`.
    pub fn start_in(place: Place<'_>, listen: &str, args: &[&str]) -> Serve {
        Serve::command_in(place, &[&["serve", "--listen", listen], args].concat())
    }

    /// Starts `framewire chat --listen LISTEN --headless ARGS` at `place`: a side waiting for a
    /// call, which prints `listening on ADDR` first as serve does.
    pub fn chat_in(place: Place<'_>, listen: &str, args: &[&str]) -> Serve {
        let head = ["chat", "--listen", listen, "--headless"];
        Serve::command_in(place, &[&head[..], args].concat())
    }

    /// Starts `framewire ARGS` at `place`, a command whose first stdout line is `listening on ADDR`.
    pub fn command_in(place: Place<'_>, args: &[&str]) -> Serve {
        Serve::spawn_with(framewire_at(place), args)
    }

    /// Starts `cmd` (the binary, with its environment) with `args`, a command whose first
    /// stdout line is `listening on ADDR`.
    pub fn spawn_with(mut cmd: Command, args: &[&str]) -> Serve {
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn framewire serve");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, errors) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut serve = Serve {
            child,
            addr: String::new(),
            lines,
            errors,
        };
        let first = serve.line("the `listening on ADDR` line");
        serve.addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line was {first:?}"))
            .to_string();
        serve
    }

    /// The next stdout line, or a panic saying what was awaited.
    pub fn line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("serve printed no line within {WAIT:?}; waited for {what}"))
    }

    /// Skips stdout lines until one starts with `prefix`.
    pub fn line_starting(&self, prefix: &str) -> String {
        loop {
            let line = self.line(prefix);
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// Skips stdout lines until one contains `part`.
    pub fn line_containing(&self, part: &str) -> String {
        loop {
            let line = self.line(part);
            if line.contains(part) {
                return line;
            }
        }
    }

    /// Sends Ctrl-C (SIGINT) and waits for the exit; its stdout lines can still be read.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        wait_timeout(&mut self.child, "serve to stop after Ctrl-C")
    }

    /// Sends Ctrl-C (SIGINT) and returns the exit status and stderr.
    pub fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let status = self.stop();
        let mut stderr = String::new();
        while let Ok(line) = self.errors.recv_timeout(WAIT) {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        (status, stderr)
    }

    /// The next stderr line, or a panic saying what was awaited.
    pub fn error_line(&self, what: &str) -> String {
        self.errors
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("serve printed no error within {WAIT:?}; waited for {what}"))
    }

    /// (open files, resident kilobytes) of the server process.
    pub fn resources(&self) -> (usize, u64) {
        let pid = self.child.id();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        (fds, rss)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `framewire view` here.
pub fn spawn_view(args: &[&str]) -> Child {
    spawn_view_in(None, args)
}

/// Starts `framewire view` at `place`.
pub fn spawn_view_in(place: Place<'_>, args: &[&str]) -> Child {
    framewire_at(place)
        .arg("view")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn framewire view")
}

/// Starts `framewire chat --connect ADDR --headless ARGS` at `place`.
pub fn spawn_call_in(place: Place<'_>, addr: &str, args: &[&str]) -> Child {
    framewire_at(place)
        .args(["chat", "--connect", addr, "--headless"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn framewire chat")
}

/// Waits for a view with a deadline; its output is read concurrently so pipes never fill.
pub fn finish_view(child: Child) -> Output {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("view did not exit within {WAIT:?}"))
        .unwrap()
}

/// Runs `framewire view` to completion with a deadline.
pub fn view(args: &[&str]) -> Output {
    finish_view(spawn_view(args))
}

pub fn stats(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "view failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("stats {stdout:?}: {e}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether ffmpeg and ffprobe run here; if not, prints why (or fails when they are required).
#[allow(clippy::print_stderr)] // the reason for a skip
pub fn have_ffmpeg() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs("ffmpeg") && runs("ffprobe") {
        return true;
    }
    let why = "ffmpeg and ffprobe are needed (Debian: apt-get install ffmpeg)";
    if std::env::var("FRAMEWIRE_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("{why} (FRAMEWIRE_REQUIRE_ALL is set)");
    }
    eprintln!("skipped: {why}");
    false
}

/// A certificate for `localhost` signed by a new CA, written in `dir` as `NAME-ca.pem`,
/// `NAME-cert.pem` and `NAME-key.pem`: their paths, in that order.
pub fn ca_signed(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("framewire test CA {name}"));
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let at = |f: &str| dir.join(format!("{name}-{f}"));
    std::fs::write(at("ca.pem"), ca.pem()).unwrap();
    std::fs::write(at("cert.pem"), cert.pem()).unwrap();
    std::fs::write(at("key.pem"), key.serialize_pem()).unwrap();
    (at("ca.pem"), at("cert.pem"), at("key.pem"))
}

/// The test pattern at 320x240, `frames` frames of framewire's raw stream written by `view
/// --output` as `dir/pattern.y4m` (frame numbers from 0 or so, as the server started).
pub fn pattern_y4m(dir: &std::path::Path, frames: u32) -> std::path::PathBuf {
    let y4m = dir.join("pattern.y4m");
    let serve = Serve::start(&["--codec", "raw", "--size", "320x240", "--adapt", "off"]);
    let out = view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        &frames.to_string(),
        "--output",
        y4m.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    y4m
}

/// `y4m` encoded by ffmpeg's libx264 in `profile` (veryfast, zerolatency, a keyframe every
/// `keyint` frames) as an Annex-B file at `out`.
pub fn x264(y4m: &std::path::Path, profile: &str, keyint: u32, out: &std::path::Path) {
    let done = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(y4m)
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            profile,
            "-preset",
            "veryfast",
        ])
        .args(["-tune", "zerolatency", "-g", &keyint.to_string()])
        .args(["-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}
