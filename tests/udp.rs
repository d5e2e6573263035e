//! framewire over UDP end to end: `serve --transport udp` and `view --transport udp` over
//! loopback (frames, stats, limits, the token, a server restart), and raw UDP sockets that
//! play a forged source (no cookie, no stream) and a hostile peer (random, truncated, forged
//! and flooding datagrams from many ports) while a real viewer watches.

mod common;

use std::net::UdpSocket;
use std::process::Stdio;
use std::time::Duration;

use common::{Serve, finish_view, framewire, spawn_view, stats, stderr, view};

const TOKEN: &str = "correct horse battery staple";

fn serve_udp(args: &[&str]) -> (Serve, String) {
    let serve = Serve::start(&[&["--transport", "udp", "--codec", "jpeg"], args].concat());
    let addr = serve
        .addr
        .strip_prefix("udp://")
        .unwrap_or_else(|| panic!("serve printed {:?}", serve.addr))
        .to_string();
    (serve, addr)
}

fn view_udp(addr: &str, args: &[&str]) -> std::process::Output {
    view(
        &[
            &[
                "view",
                "--transport",
                "udp",
                "--headless",
                "--connect",
                addr,
            ][..],
            args,
        ]
        .concat()[1..],
    )
}

/// A hello without a cookie, as the crate doc draws it (64 bytes).
fn hello(cookie: &[u8]) -> Vec<u8> {
    let mut b = b"FWUD\x02\x01\0\0".to_vec();
    b.extend_from_slice(&[0, 0xFF, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(cookie);
    b.resize(64, 0);
    b
}

#[test]
fn a_viewer_gets_every_frame_whole_with_losses_in_its_stats() {
    let (_server, addr) = serve_udp(&["--size", "640x480", "--fps", "30"]);
    let out = view_udp(
        &addr,
        &["--frames", "30", "--stats", "json", "--verify-test-pattern"],
    );
    let s = stats(&out);
    assert_eq!(s["frames"], 30);
    assert_eq!(s["codec"], "jpeg");
    assert_eq!(
        (s["width"].clone(), s["height"].clone()),
        (640.into(), 480.into())
    );
    assert_eq!(s["pattern_errors"], 0);
    assert_eq!(s["lost"], 0, "loopback loses nothing: {s}");
    assert_eq!(s["fragments_lost"], 0);
    // A viewer may also ask for a codec and size, as over TCP.
    let out = view_udp(
        &addr,
        &[
            "--frames", "5", "--stats", "json", "--codec", "raw", "--width", "160",
        ],
    );
    let s = stats(&out);
    assert_eq!(
        (s["codec"].clone(), s["width"].clone()),
        ("raw".into(), 160.into())
    );
}

#[test]
fn a_hello_without_its_cookie_gets_one_reply_no_larger_and_no_stream() {
    let (server, addr) = serve_udp(&["--fps", "30"]);
    // A real viewer keeps frames flowing, so that a stream would be there to amplify.
    let watcher = spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &addr,
        "--frames",
        "60",
    ]);
    server.line_starting("viewer ");
    let forged = UdpSocket::bind("127.0.0.1:0").unwrap();
    forged.connect(&addr).unwrap();
    forged
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let first = hello(&[]);
    forged.send(&first).unwrap();
    let mut buf = [0u8; 65_536];
    let n = forged.recv(&mut buf).expect("a cookie answers a hello");
    assert!(
        n <= first.len(),
        "{n} bytes answered a {}-byte hello",
        first.len()
    );
    assert_eq!(&buf[..6], b"FWUD\x02\x02", "a cookie");
    let cookie = buf[8..24].to_vec();
    // Nothing more until the cookie comes back: the receive times out.
    assert!(
        forged.recv(&mut buf).is_err(),
        "something came before the cookie was echoed"
    );
    // A report from an address that never joined gets only a rejoin, smaller than the report.
    let report = |session: &[u8]| {
        let mut r = b"FWUD\x02\x05\0\0".to_vec();
        r.extend_from_slice(session);
        r.resize(56, 0);
        r
    };
    forged.send(&report(&[9; 8])).unwrap();
    let n = forged.recv(&mut buf).unwrap();
    assert_eq!(
        (n, &buf[..6], &buf[8..16]),
        (16, &b"FWUD\x02\x07"[..], &[9; 8][..]),
        "a rejoin of 16 bytes, for the report's session"
    );
    assert!(forged.recv(&mut buf).is_err(), "nothing after the rejoin");
    // A wrong cookie is no better.
    forged.send(&hello(&[7; 16])).unwrap();
    let n = forged.recv(&mut buf).unwrap();
    assert!(
        n <= 64 && buf[5] == 2,
        "a wrong cookie gets a fresh cookie only"
    );
    // The cookie echoed: the start, no larger than the hello, and nothing more: a join
    // replayed from elsewhere gets no frame.
    forged.send(&hello(&cookie)).unwrap();
    let n = forged.recv(&mut buf).unwrap();
    assert_eq!((n, buf[5]), (56, 3), "a start");
    let key: [u8; 16] = buf[32..48].try_into().unwrap();
    let session = framewire_wire::session::SessionKey::new(key);
    assert!(
        forged.recv(&mut buf).is_err(),
        "a frame came before a report of the session"
    );
    // A report without the session's id starts nothing either; one with it starts the stream.
    forged.send(&report(&[0; 8])).unwrap();
    assert!(forged.recv(&mut buf).is_err(), "a forged report started it");
    forged.send(&report(&session.id())).unwrap();
    let n = forged.recv(&mut buf).unwrap();
    assert_eq!(buf[5], 4, "then fragments");
    assert!(n <= 48 + 1200);
    let sent = u32::from_le_bytes(buf[24..28].try_into().unwrap());
    assert!(
        session.is_tag(sent, &buf[40..48].try_into().unwrap()),
        "tagged"
    );
    assert!(finish_view(watcher).status.success());
}

#[test]
fn hostile_datagrams_are_counted_drops_and_the_viewer_keeps_its_frames() {
    let (mut server, addr) = serve_udp(&["--fps", "30"]);
    let watcher = spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &addr,
        "--frames",
        "90",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]);
    server.line_starting("viewer ");
    let mut x = 0x9e37_79b9_u32;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    let mut sent = 0;
    for port in 0..64 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(&addr).unwrap();
        let mut fragment = b"FWUD\x02\x04\0\0".to_vec();
        fragment.extend_from_slice(&random(40));
        fragment.extend_from_slice(&random(100));
        let cases = [
            random(port * 20 % 1500),
            hello(&[])[..(port % 64)].to_vec(),
            b"FWUD\x09\x01\0\0".to_vec(),
            b"FWUD\x02\x63\0\0".to_vec(),
            fragment,
            {
                // A report from an address that never joined.
                let mut r = b"FWUD\x02\x05\0\0".to_vec();
                r.resize(56, 0xFF);
                r
            },
        ];
        for c in &cases {
            let _ = s.send(c);
            sent += 1;
        }
        // The server takes datagrams in order: once a hello sent after them is answered,
        // every one of them was handled (and none was lost in a full socket buffer).
        s.set_read_timeout(Some(common::WAIT)).unwrap();
        s.send(&hello(&[])).unwrap();
        let mut buf = [0u8; 2048];
        loop {
            let n = s
                .recv(&mut buf)
                .expect("the cookie answering the last hello");
            if n == 64 && buf[5] == 2 {
                break;
            }
        }
    }
    let out = finish_view(watcher);
    let s = stats(&out);
    assert_eq!(s["frames"], 90);
    assert_eq!(s["pattern_errors"], 0);
    assert!(server.stop().success());
    let drops = server.line_starting("udp datagrams dropped: ");
    // Every case but the report is malformed; each report gets a rejoin and a count.
    assert_eq!(
        drops,
        format!(
            "udp datagrams dropped: {} malformed, 0 with a stale cookie, 64 from no viewer",
            sent - 64
        )
    );
}

#[test]
fn limits_and_the_token_refuse_with_the_same_lines_as_tcp() {
    let (_server, addr) = serve_udp(&["--max-viewers", "1", "--fps", "30"]);
    let first = spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &addr,
        "--frames",
        "60",
    ]);
    _server.line_starting("viewer ");
    let out = view_udp(&addr, &["--frames", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the viewer: server full: 1 of 1 viewers connected"),
        "{}",
        stderr(&out)
    );
    assert!(finish_view(first).status.success());

    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let server = Serve::spawn_with(
        cmd,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--transport",
            "udp",
            "--codec",
            "jpeg",
        ],
    );
    let addr = server.addr.trim_start_matches("udp://").to_string();
    let run = |token: Option<&str>| {
        let mut cmd = framewire();
        match token {
            Some(t) => cmd.env("FRAMEWIRE_TOKEN", t),
            None => cmd.env_remove("FRAMEWIRE_TOKEN"),
        };
        let child = cmd
            .args([
                "view",
                "--transport",
                "udp",
                "--headless",
                "--connect",
                &addr,
            ])
            .args(["--frames", "5", "--stats", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish_view(child)
    };
    assert_eq!(stats(&run(Some(TOKEN)))["frames"], 5);
    let out = run(Some("a wrong guess at the token"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!("framewire: error: server {addr} refused the viewer: wrong token")
    );
    let out = run(None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("asks for a token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_viewer_rejoins_a_restarted_server_and_a_silent_one_is_forgotten() {
    let (server, addr) = serve_udp(&["--fps", "30"]);
    let viewer = spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &addr,
        "--frames",
        "60",
        "--stats",
        "json",
    ]);
    server.line_starting("viewer ");
    // A crash, not a goodbye: the viewer is not told.
    let (mut server, addr) = (server, addr);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let again = Serve::start_at(
        &addr,
        &[
            "--transport",
            "udp",
            "--codec",
            "jpeg",
            "--fps",
            "30",
            "--idle-timeout",
            "1s",
        ],
    );
    again.line_starting("viewer ");
    let out = finish_view(viewer);
    let s = stats(&out);
    assert_eq!(s["frames"], 60);
    assert!(s["reconnects"].as_u64().unwrap() >= 1, "{s}");

    // A viewer killed without a goodbye stops reporting, and the server lets it go.
    let mut silent = spawn_view(&["--transport", "udp", "--headless", "--connect", &addr]);
    again.line_containing("connected");
    silent.kill().unwrap();
    silent.wait().unwrap();
    let left = again.line_containing("left after");
    // After serve's --idle-timeout, not a constant.
    assert!(left.contains("no report for 1s"), "{left}");
}

#[test]
fn serve_http_stats_lists_the_udp_viewers() {
    let (serve, http) = common::http::serve_http(&["--transport", "udp", "--codec", "jpeg"]);
    let addr = serve.addr.trim_start_matches("udp://").to_string();
    let _viewer = common::xscreen::Reaped(spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &addr,
    ]));
    // Printed once the viewer has joined.
    serve.line_starting("viewer ");
    let s: serde_json::Value =
        serde_json::from_slice(&common::http::get(&http, "/stats").body()).expect("/stats");
    let udp = s["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["protocol"] == "udp")
        .unwrap_or_else(|| panic!("no udp protocol in {s}"));
    assert_eq!(udp["addr"], addr.as_str(), "{s}");
    assert_eq!(udp["viewers"], 1, "{s}");
    let viewers = s["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 1, "{s}");
    assert_eq!(viewers[0]["protocol"], "udp", "{s}");
    // A server without a token does not say where its viewers are.
    assert!(viewers[0]["peer"].is_null(), "{s}");
    assert!(viewers[0]["frames"].is_u64(), "{s}");
}
