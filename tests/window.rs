//! The real windows under Xvfb: `framewire view`, `framewire serve --preview` and `framewire
//! chat` draw the stream, and the pixels on the X screen carry the test pattern's frame numbers
//! (a chat window two: the peer's and, in the inset, its own).
//!
//! The test starts its own Xvfb (`-displayfd` tells it a free display number), runs the real
//! binaries over loopback, and reads the screen with `xwd` (package x11-apps). Without Xvfb, xwd
//! or a GPU adapter it skips with the reason, unless `FRAMEWIRE_REQUIRE_GPU=1` or
//! `FRAMEWIRE_REQUIRE_ALL=1` makes that a failure.

// Tests report skips on stderr.
#![allow(clippy::print_stderr)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use framewire_core::Frame;
use framewire_display::{HeadlessRenderer, hardware_required};

mod common;
use common::xscreen::{Reaped, crop, first_line, screenshot, start_xvfb};

const EXE: &str = env!("CARGO_BIN_EXE_framewire");

/// Skips (returns false, printing why) or fails when something the test needs is missing.
fn have(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    if hardware_required() {
        panic!("{what} (FRAMEWIRE_REQUIRE_GPU or FRAMEWIRE_REQUIRE_ALL is set)");
    }
    eprintln!("skipped: {what}");
    false
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Waits (up to `timeout`) until the window at the screen's top-left corner (no window manager
/// runs, so windows open there) shows two different frame numbers, i.e. a live stream.
/// Returns them; on timeout, saves the screen and fails naming it.
fn wait_for_live_pattern(
    display: &str,
    name: &str,
    (w, h): (u32, u32),
    timeout: Duration,
) -> (u64, u64) {
    let deadline = Instant::now() + timeout;
    let mut first = None;
    let mut screen = None;
    while Instant::now() < deadline {
        let shot = screenshot(display);
        let n = framewire_pattern::read_frame_number(&crop(&shot, 0, 0, w, h));
        screen = Some(shot);
        match (first, n) {
            (None, Some(n)) => first = Some(n),
            (Some(a), Some(b)) if b != a => {
                save(name, screen.as_ref().unwrap());
                return (a, b);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let path = screen.map(|s| save(name, &s));
    panic!(
        "waited {timeout:?} for the {name} window to show two different test-pattern frame numbers \
         (first seen: {first:?}); the screen is in {path:?}"
    );
}

fn save(name: &str, screen: &Frame) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-screen.png"));
    framewire_display::write_png(&path, screen).expect("write the screenshot");
    eprintln!("screen saved to {}", path.display());
    path
}

fn serve(display: &str, extra: &[&str]) -> (Reaped, String) {
    let mut server = Command::new(EXE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--size",
            "640x480",
            "--codec",
            "raw",
        ])
        .args(extra)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start framewire serve");
    let line = first_line(
        &mut server,
        "the server's `listening on` line",
        Duration::from_secs(30),
    );
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_string();
    (Reaped(server), addr)
}

/// Sends SIGINT (as Ctrl-C would) and waits up to `timeout` for a clean exit.
fn interrupt(child: &mut Reaped, what: &str, timeout: Duration) {
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    wait_clean_exit(child, &format!("{what} to exit after Ctrl-C"), timeout);
}

/// Waits up to `timeout` for `child` to exit 0.
fn wait_clean_exit(child: &mut Reaped, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "{what}: exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn with_stderr_tail(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Xvfb, `tool` (checked by running it with `arg`, installed by Debian's `package`) and a GPU
/// adapter: true when all are there; otherwise skips, or fails where they are required.
fn prerequisites(tool: &str, arg: &str, package: &str) -> bool {
    if !have(
        "Xvfb is not installed (apt-get install xvfb xauth)",
        runs("Xvfb", "-help"),
    ) || !have(
        &format!("{tool} is not installed (apt-get install {package})"),
        runs(tool, arg),
    ) {
        return false;
    }
    match HeadlessRenderer::new() {
        Ok(_) => true,
        Err(e) => have(&format!("{e}"), false),
    }
}

/// `framewire view` with its window on `display`; its stderr is kept for failure messages.
fn view_window(display: &str, addr: &str) -> Reaped {
    Reaped(
        Command::new(EXE)
            .args(["view", "--connect", addr])
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start framewire view"),
    )
}

#[test]
fn viewer_window_and_sender_preview_show_the_stream_on_an_x_screen() {
    if !prerequisites("xwd", "-help", "x11-apps") {
        return;
    }
    let (_xvfb, display) = start_xvfb();
    let timeout = Duration::from_secs(30);

    // The viewer's window: a raw 640x480 stream opens a 640x480 window at the top-left corner.
    let (mut server, addr) = serve(&display, &[]);
    let mut view = view_window(&display, &addr);
    let (a, b) = wait_for_live_pattern(&display, "view", (640, 480), timeout);
    eprintln!("viewer window showed frames {a} and {b}");
    interrupt(&mut view, "framewire view", timeout);
    let stderr = with_stderr_tail(&mut view.0);
    assert!(stderr.contains("connected to"), "{stderr}");
    interrupt(&mut server, "framewire serve", timeout);

    // The sender's preview: it shows what is sent while a (headless) viewer is connected.
    let (mut server, addr) = serve(&display, &["--preview"]);
    let _viewer = Reaped(
        Command::new(EXE)
            .args(["view", "--headless", "--connect", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start framewire view --headless"),
    );
    let (a, b) = wait_for_live_pattern(&display, "preview", (640, 480), timeout);
    eprintln!("preview window showed frames {a} and {b}");
    interrupt(&mut server, "framewire serve --preview", timeout);
}

/// The id of the window whose title starts with `title`, once it exists (within `timeout`);
/// `None` if `owner`, the process that should open it, exits first.
fn find_window(
    display: &str,
    title: &str,
    owner: &mut Reaped,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("xdotool")
            .args(["search", "--name", &format!("^{title}")])
            .env("DISPLAY", display)
            .output()
            .expect("run xdotool");
        if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().next() {
            return Some(id.to_string());
        }
        if owner.0.try_wait().expect("wait").is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} for a window titled {title:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Focuses the window and types `key` into it as a real keyboard would (XTEST).
fn press(display: &str, window: &str, key: &str) {
    let status = Command::new("xdotool")
        .args(["windowfocus", "--sync", window, "key", key])
        .env("DISPLAY", display)
        .status()
        .expect("run xdotool");
    assert!(status.success(), "xdotool key {key} failed");
}

#[test]
fn enter_esc_and_q_close_the_windows() {
    if !prerequisites("xdotool", "version", "xdotool") {
        return;
    }
    let (_xvfb, display) = start_xvfb();
    let timeout = Duration::from_secs(30);

    // Each key closes the viewer's window, and `view` ends with exit 0.
    let (mut server, addr) = serve(&display, &[]);
    for key in ["Return", "Escape", "q"] {
        let mut view = view_window(&display, &addr);
        let Some(window) = find_window(&display, "framewire: receiving from", &mut view, timeout)
        else {
            panic!(
                "no viewer window appeared; view said: {}",
                with_stderr_tail(&mut view.0)
            );
        };
        press(&display, &window, key);
        wait_clean_exit(&mut view, &format!("view to exit after {key}"), timeout);
    }
    interrupt(&mut server, "framewire serve", timeout);

    // q in the sender's preview stops the server, as in the tutorial.
    let (mut server, _addr) = serve(&display, &["--preview"]);
    let window = find_window(&display, "framewire: transmitting", &mut server, timeout)
        .expect("the preview window appears");
    press(&display, &window, "q");
    wait_clean_exit(&mut server, "serve --preview to stop after q", timeout);
}

/// The two numbers a chat window shows: the peer's, in the main picture (its top band), and
/// this side's own, in the inset; `None` where no code reads.
fn chat_numbers(screen: &Frame) -> (Option<u64>, Option<u64>) {
    let (x, y, w, h) = framewire_display::inset_area(640, 480);
    (
        framewire_pattern::read_frame_number(&crop(screen, 0, 0, 640, 480)),
        framewire_pattern::read_frame_number(&crop(screen, x, y, w, h)),
    )
}

#[test]
fn a_chat_window_shows_the_peer_with_its_own_picture_inset_and_q_hangs_up_both() {
    if !prerequisites("xdotool", "version", "xdotool") {
        return;
    }
    let (_xvfb, display) = start_xvfb();
    let timeout = Duration::from_secs(30);
    let stream = ["--size", "640x480", "--codec", "raw"];

    // The listener opens the window and sends test (frames 0, 1, ...); the headless caller
    // sends test:2 (frames 1000000, 1000001, ...).
    let mut listener = Command::new(EXE)
        .args(["chat", "--listen", "127.0.0.1:0"])
        .args(stream)
        .env("DISPLAY", &display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start framewire chat --listen");
    let line = first_line(&mut listener, "the `listening on` line", timeout);
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_string();
    let mut listener = Reaped(listener);
    let mut caller = Reaped(
        Command::new(EXE)
            .args([
                "chat",
                "--headless",
                "--source",
                "test:2",
                "--connect",
                &addr,
            ])
            .args(stream)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start framewire chat --connect"),
    );

    // Both numbers change: the peer's stream and this side's own are live.
    let deadline = Instant::now() + timeout;
    let mut first: Option<(u64, u64)> = None;
    let (seen, screen) = loop {
        let shot = screenshot(&display);
        if let (Some(peer), Some(own)) = chat_numbers(&shot) {
            assert!(
                peer >= 1_000_000,
                "the main picture shows test:2, the peer's: {peer}"
            );
            assert!(own < 1_000_000, "the inset shows test, this side's: {own}");
            match first {
                None => first = Some((peer, own)),
                Some((p, o)) if p != peer && o != own => break (((p, o), (peer, own)), shot),
                Some(_) => {}
            }
        }
        if Instant::now() > deadline {
            let path = save("chat", &shot);
            panic!(
                "waited {timeout:?} for both pictures to move (first {first:?}); screen in {path:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    save("chat", &screen);
    eprintln!(
        "chat window: peer {} then {}, own {} then {}",
        seen.0.0, seen.1.0, seen.0.1, seen.1.1
    );

    // The title carries both directions once the peer has reported.
    let window =
        find_window(&display, "framewire chat", &mut listener, timeout).expect("the chat window");
    let deadline = Instant::now() + timeout;
    let title = loop {
        let out = Command::new("xdotool")
            .args(["getwindowname", &window])
            .env("DISPLAY", &display)
            .output()
            .expect("run xdotool");
        let title = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if title.contains("sending") {
            break title;
        }
        assert!(
            Instant::now() < deadline,
            "the title never showed the sending side: {title:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        title.contains(" fps, latency ") && title.contains(" at the peer"),
        "{title}"
    );

    // q hangs up: the listener exits 0, and the caller hears it and exits 0 too.
    press(&display, &window, "q");
    wait_clean_exit(&mut listener, "chat --listen to exit after q", timeout);
    wait_clean_exit(
        &mut caller,
        "the caller to exit when the peer hangs up",
        timeout,
    );
    let said = with_stderr_tail(&mut caller.0);
    assert!(said.contains("hung up"), "{said}");
}
