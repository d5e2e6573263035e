//! The page at `/` in real Chromium and Firefox (Debian's `chromium` and `firefox-esr`), in a
//! window under a private Xvfb, for tests/browser.rs (MJPEG) and tests/websocket.rs
//! (WebCodecs): screenshots read the test pattern's frame numbers off the pixels, and the
//! page's own figures (fps, capture-to-display latency, viewers, mode), which it mirrors into
//! its title, are checked. Chromium's `--headless --screenshot` would grab at page load,
//! before the script drew anything, hence a real window. A test skips with the reason where
//! the browser, Xvfb, xwd or xdotool is missing, and fails instead under
//! `FRAMEWIRE_REQUIRE_ALL=1`.

// Tests report skips and figures on stderr.
#![allow(clippy::print_stderr)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use framewire_core::Frame;

use super::WAIT;
use super::http::{have, serve_http, serve_http_token, serve_http_with};
use super::xscreen::{Reaped, crop, screenshot, start_xvfb};

pub const SIZE: (u32, u32) = (320, 240);

/// The page's figures, as its title carries them: `framewire fps=29.8 latency_ms=12.0 viewers=1 frames=57`.
#[derive(Debug, Default)]
pub struct Figures {
    pub fps: f64,
    pub latency_ms: Option<f64>,
    pub viewers: Option<u64>,
    pub frames: u64,
    /// How the page shows the stream: `webcodecs` or `mjpeg`.
    pub mode: String,
}

pub fn parse_title(title: &str) -> Option<Figures> {
    let mut figures = Figures::default();
    let mut words = title.split_whitespace();
    if words.next()? != "framewire" {
        return None;
    }
    // Firefox adds " — Mozilla Firefox" to the title: words without `=` are not figures.
    for (key, value) in words.filter_map(|w| w.split_once('=')) {
        match key {
            "fps" => figures.fps = value.parse().ok()?,
            "latency_ms" => figures.latency_ms = value.parse().ok(),
            "viewers" => figures.viewers = value.parse().ok(),
            "frames" => figures.frames = value.parse().ok()?,
            "mode" => figures.mode = value.to_string(),
            _ => {}
        }
    }
    Some(figures)
}

/// The page's title now, if its window is up.
pub fn title(display: &str) -> Option<String> {
    let out = Command::new("xdotool")
        .args(["search", "--name", "^framewire", "getwindowname"])
        .env("DISPLAY", display)
        .stderr(Stdio::null())
        .output()
        .expect("run xdotool");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(str::to_string)
}

/// Waits until the page says it drew more than `frames` frames; returns its figures then.
pub fn figures_past(display: &str, frames: u64) -> Figures {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(f) = title(display).as_deref().and_then(parse_title)
            && f.frames > frames
        {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for the page to draw more than {frames} frames; its title: {:?}",
            title(display)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test pattern's frame number on the screen, with where the picture's top is (it sits at
/// the page's top-left corner, under whatever bar Chromium shows above the page).
pub fn frame_on_screen(screen: &Frame) -> Option<(u64, u32)> {
    (0..200).find_map(|y| {
        let n = framewire_pattern::read_frame_number(&crop(screen, 0, y, SIZE.0, SIZE.1))?;
        Some((n, y))
    })
}

pub fn save(browser: &str, screen: &Frame) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{browser}-screen.png"));
    framewire_display::write_png(&path, screen).expect("write the screenshot");
    path
}

/// The browsers the page is tested in: the program, its Debian package, and its arguments to
/// show `url` in a window at the screen's top-left corner with profile folder `profile`.
pub type Launch = fn(url: &str, profile: &str) -> Vec<String>;

pub fn chromium(url: &str, profile: &str) -> Vec<String> {
    [
        // Root cannot use the sandbox; --test-type leaves out the bar that says so.
        "--no-sandbox",
        "--test-type",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--window-position=0,0",
        "--window-size=800,600",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={profile}"), format!("--app={url}")])
    .collect()
}

pub fn firefox(url: &str, profile: &str) -> Vec<String> {
    ["--new-instance", "--profile", profile, "--kiosk", url]
        .map(String::from)
        .to_vec()
}

/// Chromium that takes the self-signed certificate of `serve --tls` (made for the test).
pub fn chromium_trusting_any_certificate(url: &str, profile: &str) -> Vec<String> {
    let mut args = chromium(url, profile);
    args.insert(0, "--ignore-certificate-errors".to_string());
    args
}

/// A server with a token, logged into through its form; over HTTPS (`serve --tls`, whose
/// cookie is then `Secure`) or HTTP.
pub struct Login<'a> {
    pub token: &'a str,
    pub https: bool,
}

/// Waits until the window's title is the login form's; false if `within` passes first.
pub fn login_form_up(display: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while title(display).as_deref() != Some("framewire: log in") {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Whether the window's title stays the login form's for all of `span`.
pub fn login_form_up_for(display: &str, span: Duration) -> bool {
    let end = Instant::now() + span;
    while Instant::now() < end {
        if title(display).as_deref() != Some("framewire: log in") {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Types `token` into the login form, once its window is up, and sends it.
///
/// The title is set while the page is parsed, before Chromium applies `autofocus`, so keys
/// sent at once can reach the page before the field has the focus and be lost (seen on a
/// busy CI machine). The form then stays: it is typed again, over whatever the field holds
/// (ctrl+a), at most three times, each after a few seconds in which the title did not change.
pub fn log_in(display: &str, token: &str) {
    assert!(
        login_form_up(display, WAIT),
        "waited {WAIT:?} for the login form; the title: {:?}",
        title(display)
    );
    for _ in 0..3 {
        // The window gets the keyboard; the password field has the focus (autofocus).
        let typed = Command::new("xdotool")
            .args([
                "search",
                "--name",
                "^framewire: log in",
                "windowfocus",
                "--sync",
            ])
            .args(["key", "ctrl+a", "type", "--delay", "20", token])
            .env("DISPLAY", display)
            .status()
            .expect("run xdotool");
        // The window is gone when the page left the form meanwhile.
        if !typed.success() && title(display).as_deref() != Some("framewire: log in") {
            return;
        }
        assert!(typed.success(), "xdotool type: {typed}");
        let sent = Command::new("xdotool")
            .args(["key", "Return"])
            .env("DISPLAY", display)
            .status()
            .expect("run xdotool");
        assert!(sent.success(), "xdotool key: {sent}");
        // Logged in, the title leaves the form's for good; still the form, the keys were lost.
        if !login_form_up_for(display, Duration::from_secs(5)) {
            return;
        }
    }
    panic!("typed the token three times and the login form stayed");
}

/// What a page test serves and expects.
pub struct Page<'a> {
    /// `serve`'s arguments besides `--listen` and `--http`.
    pub args: &'a [&'a str],
    /// What follows `/` in the page's address (`?mjpeg`).
    pub query: &'a str,
    /// The mode the page must show the stream in: `webcodecs` or `mjpeg`.
    pub mode: &'a str,
    /// Log in first with this token (the server then has it).
    pub login: Option<Login<'a>>,
    /// Load the page through a relay whose connections are cut once it shows the stream; it
    /// must show it again.
    pub cut: bool,
}

/// Loads the page in `browser` under a private Xvfb as `page` says, and checks it: two
/// screenshots a second apart show frame numbers about 30 apart, and the page's figures are
/// sane and in the mode expected.
pub fn page_in_with(browser: &str, package: &str, launch: Launch, page: Page<'_>) {
    let tools = [
        (browser, "--version", package),
        ("Xvfb", "-help", "xvfb"),
        ("xwd", "-help", "x11-apps"),
        ("xdotool", "version", "xdotool"),
    ];
    if !tools
        .iter()
        .all(|(tool, arg, package)| have(tool, arg, package))
    {
        return;
    }
    // The certificate serve --tls makes is kept in a config folder of the test's own.
    let config = tempfile::tempdir().unwrap();
    let (serve, addr) = match &page.login {
        Some(Login { token, https: true }) => {
            let mut cmd = super::framewire();
            cmd.env("FRAMEWIRE_TOKEN", token)
                .env("XDG_CONFIG_HOME", config.path());
            serve_http_with(cmd, &[page.args, &["--tls"]].concat())
        }
        Some(Login { token, .. }) => serve_http_token(token, page.args),
        None => serve_http(page.args),
    };
    let relay = page.cut.then(|| Relay::to(&addr));
    let at = relay.as_ref().map_or(addr.clone(), |r| r.addr.clone());
    let (_xvfb, display) = start_xvfb();
    let profile = tempfile::tempdir().unwrap();
    let scheme = if page.login.as_ref().is_some_and(|l| l.https) {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{at}/{}", page.query);
    let _browser = Reaped(
        Command::new(browser)
            .args(launch(&url, &profile.path().display().to_string()))
            .env("DISPLAY", &display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {browser}: {e}")),
    );
    if let Some(login) = &page.login {
        log_in(&display, login.token);
    }
    shows_the_stream(browser, &display, page.mode);
    if let Some(relay) = relay {
        let before = figures_past(&display, 0).frames;
        relay.cut();
        let left = serve.line_containing(" left after ");
        eprintln!("{browser}: cut: {left}");
        // Back: a new subscriber, which starts at a keyframe, and the page draws on.
        serve.line_containing(" connected ");
        figures_past(&display, before + 60);
        shows_the_stream(browser, &display, page.mode);
    }
}

/// Checks that the page shows the stream now, in `mode`.
fn shows_the_stream(browser: &str, display: &str, mode: &str) {
    // Two whole seconds of figures: the page's windows are a second each.
    let start = figures_past(display, 0).frames;
    figures_past(display, start + 60);

    let first = screenshot(display);
    let taken = Instant::now();
    let Some((a, top)) = frame_on_screen(&first) else {
        panic!(
            "{browser}: no test-pattern frame on the screen: {}",
            save(browser, &first).display()
        );
    };
    // The check: two screenshots a second apart.
    std::thread::sleep(Duration::from_secs(1).saturating_sub(taken.elapsed()));
    let second = screenshot(display);
    let Some(b) = framewire_pattern::read_frame_number(&crop(&second, 0, top, SIZE.0, SIZE.1))
    else {
        panic!(
            "{browser}: the picture moved or broke: {}",
            save(browser, &second).display()
        );
    };
    assert!(
        b > a + 15,
        "{browser}: frames {a} then {b} a second apart at 30 fps: {}",
        save(browser, &second).display()
    );

    let f = figures_past(display, 0);
    eprintln!("{browser}'s page: {f:?}");
    assert_eq!(f.mode, mode, "{browser}: {f:?}");
    assert!((20.0..40.0).contains(&f.fps), "{browser}: {f:?}");
    let latency = f.latency_ms.expect("a latency figure");
    assert!((0.0..500.0).contains(&latency), "{browser}: {f:?}");
    assert_eq!(
        f.viewers,
        Some(1),
        "{browser}: the page is the one viewer: {f:?}"
    );
}

/// A TCP relay on 127.0.0.1:0 to `upstream`, whose connections [`Relay::cut`] shuts down at
/// once: a network that drops every connection, as a browser sees it.
pub struct Relay {
    pub addr: String,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn to(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(Mutex::new(Vec::new()));
        let (upstream, kept) = (upstream.to_string(), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let mut open = kept.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
                open.extend([client, server]);
            }
        });
        Relay { addr, open }
    }

    /// Shuts every connection it relays down, both ways.
    pub fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}
