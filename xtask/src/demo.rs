//! `cargo xtask demo`: a server on the test pattern and a viewer on loopback, in one command.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{cargo, run_cmd, target_dir};

pub fn run_demo(args: &[String]) -> anyhow::Result<()> {
    let mut serve_flags = vec![
        "--codec".to_string(),
        "jpeg".into(),
        "--width".into(),
        "640".into(),
        "--size".into(),
        "1280x720".into(),
    ];
    let mut frames = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = || -> anyhow::Result<String> {
            Ok(it
                .clone()
                .next()
                .with_context(|| format!("{flag} needs a value"))?
                .clone())
        };
        match flag.as_str() {
            "--codec" | "--size" | "--width" | "--fps" | "--quality" => {
                let v = value()?;
                if let Some(i) = serve_flags.iter().position(|f| f == flag) {
                    serve_flags[i + 1] = v;
                } else {
                    serve_flags.extend([flag.clone(), v]);
                }
                it.next();
            }
            "--frames" => {
                frames = Some(value()?);
                it.next();
            }
            other => bail!("unknown demo option {other:?} (see cargo xtask --help)"),
        }
    }

    let mut build = cargo();
    build.args(["build", "--release", "--bin", "framewire"]);
    // H.264 is a feature (OpenH264 is built from source): the demo builds it when asked for.
    let codec = serve_flags.iter().position(|f| f == "--codec");
    if codec.is_some_and(|i| serve_flags[i + 1] == "h264") {
        if !crate::on_path("c++") {
            bail!(
                "--codec h264 builds OpenH264 from source, which needs a C++ compiler: apt-get install g++"
            );
        }
        build.args(["--features", "h264"]);
    }
    run_cmd(build)?;
    let exe = target_dir().join("release/framewire");
    let out_dir = target_dir().join("framewire-demo");
    std::fs::create_dir_all(&out_dir)?;
    let snapshot = out_dir.join("last.png");

    // Ctrl-C reaches the whole process group: the server and viewer stop themselves; the demo
    // only has to not die first, so that it can wait for them and report.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;

    // Both windows when there is a display to open them on; the headless demo otherwise.
    let windows = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    if windows {
        serve_flags.push("--preview".into());
    } else {
        println!("demo: no display (DISPLAY is not set): running headless, showing live stats");
    }
    let mut server = Command::new(&exe)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(&serve_flags)
        .stdout(Stdio::piped())
        // Piped, so the server keeps its own live line to itself: the viewer's is the one shown.
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("starting framewire serve")?;
    let addr = match listening_addr(&mut server) {
        Ok(a) => a,
        Err(e) => {
            let _ = server.kill();
            return Err(e);
        }
    };
    println!("demo: server listening on {addr}; press Enter or Ctrl-C to stop");
    if windows {
        println!(
            "demo: TRANSMITTING (serve --preview) and RECEIVING (view) windows; Enter, Esc or q in one closes it"
        );
    }

    let mut view = Command::new(&exe);
    view.arg("view")
        .args(["--connect", &addr, "--stats", "json"])
        .arg("--snapshot")
        .arg(&snapshot);
    if !windows {
        view.arg("--headless");
    }
    if let Some(n) = &frames {
        view.args(["--frames", n]);
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|d| d.is_empty()) {
        // Without a login session (ssh as root, a container), Mesa's Wayland probe prints
        // "error: XDG_RUNTIME_DIR is invalid or not set" twice as the viewer starts its GPU
        // adapter, harmless but alarming in a demo: give the viewer a private one (0700).
        let runtime = out_dir.join("xdg-runtime");
        std::fs::create_dir_all(&runtime)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
        }
        view.env("XDG_RUNTIME_DIR", &runtime);
    }
    let status = view.status().context("starting framewire view");
    stop(&mut server);
    let status = status?;
    if !status.success() && !interrupted.load(Ordering::SeqCst) {
        bail!("framewire view failed ({status})");
    }
    println!("demo: stopped; last frame in {}", snapshot.display());
    Ok(())
}

/// Reads the server's stdout until its `listening on ADDR` line, then keeps echoing it.
fn listening_addr(server: &mut Child) -> anyhow::Result<String> {
    let stdout = server.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .context("the server exited before saying where it listens")??;
    let addr = first
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from the server: {first:?}"))?
        .to_string();
    println!("server: {first}");
    std::thread::spawn(move || relay(lines, std::io::stdout()));
    if let Some(stderr) = server.stderr.take() {
        std::thread::spawn(move || relay(BufReader::new(stderr).lines(), std::io::stderr()));
    }
    Ok(addr)
}

/// Echoes the server's lines as `server: ...`, first clearing the viewer's live line on a
/// terminal (the viewer redraws it).
fn relay<R: BufRead>(lines: std::io::Lines<R>, mut out: impl Write + IsTerminal) {
    let clear = if out.is_terminal() { "\r\x1b[2K" } else { "" };
    for line in lines.map_while(Result::ok) {
        // One write per line (stderr is unbuffered), so the viewer's lines never land inside it.
        let _ = out.write_all(format!("{clear}server: {line}\n").as_bytes());
    }
}

/// Asks the server to stop as Ctrl-C would, and waits a little before killing it.
fn stop(server: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("demo: the server did not stop within 5 s; killing it");
    let _ = server.kill();
    let _ = server.wait();
}

pub use run_demo as run;
