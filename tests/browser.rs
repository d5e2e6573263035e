//! The page at `/` in real Chromium and Firefox showing MJPEG (tests/common/browser.rs says
//! how): by itself in a build without H.264 (the server closes the page's WebSocket with
//! 1003, and the page says why), and when `?mjpeg` asks for it. Chromium also logs in to a
//! server with a token through the login form (the token typed by xdotool) and then draws the
//! stream with the cookie it got, over HTTP and over HTTPS (`serve --tls`, a `Secure` cookie).
//! tests/websocket.rs has the same page through WebCodecs.

// Tests report skips and figures on stderr.
#![allow(clippy::print_stderr)]

mod common;
use common::browser::{Launch, Login, Page, chromium, chromium_trusting_any_certificate, firefox};

const ARGS: &[&str] = &["--codec", "jpeg", "--width", "320", "--adapt", "off"];

/// The page's mode when nothing asks for MJPEG: WebCodecs where the build has H.264.
const BY_ITSELF: &str = if cfg!(feature = "h264") {
    "webcodecs"
} else {
    "mjpeg"
};

fn page_in(browser: &str, package: &str, launch: Launch, query: &str, mode: &str) {
    common::browser::page_in_with(
        browser,
        package,
        launch,
        Page {
            args: ARGS,
            query,
            mode,
            login: None,
            cut: false,
        },
    );
}

#[test]
fn chromium_draws_the_live_stream_and_measures_its_own_fps_and_latency() {
    page_in("chromium", "chromium", chromium, "", BY_ITSELF);
}

#[test]
fn firefox_draws_the_live_stream_and_measures_its_own_fps_and_latency() {
    page_in("firefox-esr", "firefox-esr", firefox, "", BY_ITSELF);
}

#[test]
fn chromium_shows_mjpeg_when_the_address_asks_for_it() {
    page_in("chromium", "chromium", chromium, "?mjpeg", "mjpeg");
}

/// Chromium (`launch`) logs in through the form, over HTTPS or HTTP, and watches.
fn logs_in(launch: Launch, https: bool) {
    common::browser::page_in_with(
        "chromium",
        "chromium",
        launch,
        Page {
            args: ARGS,
            query: "",
            mode: BY_ITSELF,
            login: Some(Login {
                token: "correct horse battery staple",
                https,
            }),
            cut: false,
        },
    );
}

#[test]
fn chromium_logs_in_to_a_token_protected_server_through_the_form_and_draws_the_stream() {
    logs_in(chromium, false);
}

#[test]
fn chromium_logs_in_over_https_and_draws_the_stream() {
    logs_in(chromium_trusting_any_certificate, true);
}
