//! End to end through the real `framewire` binary: `serve` and `view` processes talking over
//! real sockets on 127.0.0.1, for every codec, and what a user sees when something is wrong.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::thread;
use std::time::Instant;

use framewire_core::CodecKind;
use serde_json::Value;

mod common;
use common::{Serve, WAIT, finish_view, framewire, spawn_view, stats, stderr, view, wait_timeout};

/// Views 40 frames of a `--width 320` test-pattern server with `--verify-test-pattern` and
/// checks what every such stream must give: 40 frames of `codec` at 320x240, in order, each
/// decoded to the picture its header named (nothing mixed up or corrupted). Returns the stats.
fn view_40_verified(serve: &Serve, codec: &str) -> Value {
    let out = view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "40",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]);
    let s = stats(&out);
    assert_eq!(s["frames"], 40, "{codec}: {s}");
    assert_eq!(s["codec"], codec);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(s["out_of_order"], 0, "{codec}: {s}");
    assert_eq!(s["pattern_errors"], 0, "{codec}: {s}");
    s
}

#[test]
#[allow(clippy::print_stderr)] // the reason for a skip
fn every_codec_streams_complete_frames_in_order() {
    for kind in CodecKind::ALL {
        if let Err(e) = framewire_codec::encoder(kind, &Default::default()) {
            // h264 without its feature: the features' pass (cargo xtask test) runs it.
            eprintln!("skipped {kind}: {e}");
            continue;
        }
        // Adaptation off: an unpaced stream on a busy machine would otherwise move down a rung.
        let serve = Serve::start(&[
            "--codec",
            kind.name(),
            "--fps",
            "0",
            "--width",
            "320",
            "--adapt",
            "off",
        ]);
        let s = view_40_verified(&serve, kind.name());
        let (first, last) = (
            s["first_seq"].as_u64().unwrap(),
            s["last_seq"].as_u64().unwrap(),
        );
        assert_eq!(
            last - first + 1,
            40 + s["dropped"].as_u64().unwrap(),
            "{kind}: {s}"
        );
        for key in ["fps", "bytes"] {
            assert!(s[key].as_f64().unwrap() > 0.0, "{kind}: {key} in {s}");
        }
        let lat = &s["latency_ms"];
        assert!(
            lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap(),
            "{s}"
        );
        assert!(lat["p99"].as_f64().unwrap() > 0.0, "{s}");
        assert!(serve.line_starting("viewer ").contains("connected"));
    }
}

#[test]
fn raw_hd_frames_read_straight_into_the_frame_arrive_whole() {
    // 2.7 MB payloads: the viewer reads each from the socket into the buffer that becomes the
    // frame (`Client::recv`, `decode_vec`) instead of through the reader's buffer. Pinned to
    // the top rung: an unpaced stream outruns a viewer on a busy machine, whose link would
    // move it down the ladder, to smaller frames.
    let serve = Serve::start(&["--codec", "raw", "--fps", "0", "--size", "1280x720"]);
    let s = stats(&view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--rung",
        "0",
        "--frames",
        "30",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]));
    assert_eq!(s["frames"], 30, "{s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(s["pattern_errors"], 0, "{s}");
    assert_eq!(s["out_of_order"], 0, "{s}");
    assert_eq!(s["bytes"], 30 * (1280 * 720 * 3 + 32), "{s}");
}

#[test]
fn two_viewers_one_after_the_other_both_get_frames_and_snapshot_is_written() {
    let serve = Serve::start(&["--codec", "jpeg", "--fps", "0", "--size", "320x240"]);
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("last.png");
    let mut seqs = Vec::new();
    for i in 0..2 {
        let mut args = vec!["--connect", &serve.addr, "--headless", "--frames", "10"];
        args.extend(["--stats", "json", "--verify-test-pattern"]);
        let png_arg = png.to_str().unwrap();
        if i == 1 {
            args.extend(["--snapshot", png_arg]);
        }
        let s = stats(&view(&args));
        assert_eq!(s["frames"], 10);
        assert_eq!(s["pattern_errors"], 0);
        seqs.push((
            s["first_seq"].as_u64().unwrap(),
            s["last_seq"].as_u64().unwrap(),
        ));
        assert!(serve.line_starting("viewer ").contains("connected"));
        assert!(serve.line_starting("viewer ").contains("left after"));
    }
    // The second viewer joined a stream that had moved on.
    assert!(seqs[1].0 > seqs[0].1, "{seqs:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let serve = Serve::start(&["--codec", "raw"]);
    let (status, stderr) = serve.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn server_serves_the_requested_number_of_frames_then_exits() {
    let mut serve = Serve::start(&["--codec", "bincode", "--fps", "0", "--frames", "25"]);
    let out = view(&["--connect", &serve.addr, "--headless", "--stats", "json"]);
    let s = stats(&out);
    assert_eq!(s["last_seq"], 24, "{s}");
    assert!(
        stderr(&out).contains("ended the stream"),
        "{}",
        stderr(&out)
    );
    assert!(wait_timeout(&mut serve.child, "serve --frames to exit").success());
}

#[test]
fn garbage_client_gets_a_one_line_rejection_and_serving_goes_on() {
    let serve = Serve::start(&["--codec", "raw", "--fps", "0"]);
    let mut http = TcpStream::connect(&serve.addr).unwrap();
    let me = http.local_addr().unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    http.set_read_timeout(Some(WAIT)).unwrap();
    let _ = http.read_to_end(&mut rest);
    assert!(rest.is_empty());
    let s = stats(&view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "5",
        "--stats",
        "json",
    ]));
    assert_eq!(s["frames"], 5);
    let (status, stderr) = serve.interrupt();
    assert!(status.success());
    assert_eq!(
        stderr.trim(),
        format!(
            "framewire: connection from {me} rejected: not a framewire viewer: expected viewer \
             hello magic \"FWVH\", got 47 45 54 20 2f 20 48 54 (\"GET / HT\")"
        )
    );
}

#[test]
fn peers_of_the_old_wire_version_get_one_line_naming_both_versions() {
    // A version-1 viewer (its 8-byte hello) at this server: serve says so; the viewer is answered
    // with a version-2 handshake, which a version-1 viewer reports naming both versions.
    let serve = Serve::start(&["--codec", "jpeg"]);
    let mut old = TcpStream::connect(&serve.addr).unwrap();
    let me = old.local_addr().unwrap();
    old.write_all(b"FWVH\x01\x00\x00\x00").unwrap();
    old.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    let _ = old.read_to_end(&mut answer);
    assert_eq!(&answer[..6], b"FWST\x02\x00", "{answer:?}");
    let line = serve.error_line("the old viewer's rejection");
    assert_eq!(
        line,
        format!(
            "framewire: connection from {me} rejected: viewer speaks wire version 1, this server \
             speaks version 2: the viewer needs a newer framewire"
        )
    );

    // This viewer at a version-1 server, which closes the connection on the version-2 hello.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 8];
        let _ = s.read_exact(&mut hello);
    });
    let out = view(&["--connect", &addr, "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("wire version (1) than this viewer (2)"),
        "{err}"
    );
}

/// A fake server that sends `bytes` to the first connection after reading its hello.
fn fake_server(bytes: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; framewire_wire::message::HELLO_LEN];
        let _ = s.read_exact(&mut hello);
        let _ = s.write_all(&bytes);
    });
    addr
}

/// A 64x48 JPEG stream's handshake, then one frame `seq` with `payload`.
fn jpeg_stream(seq: u64, payload: &[u8]) -> Vec<u8> {
    let stream = framewire_core::StreamInfo {
        codec: CodecKind::Jpeg,
        width: 64,
        height: 48,
        format: framewire_core::PixelFormat::Rgb8,
    };
    let mut bytes = framewire_wire::Handshake {
        placement: framewire_core::Placement {
            id: 0,
            rendition: framewire_core::Rendition::new(
                stream.codec,
                stream.width,
                stream.height,
                stream.format,
                80,
            ),
            rung: Some(0),
            rungs: 1,
        },
        fps: 30.0,
    }
    .to_bytes()
    .to_vec();
    bytes.extend_from_slice(
        &framewire_wire::FrameHeader::frame(seq, 0, payload.len() as u32).to_bytes(),
    );
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn viewer_facing_a_bad_server_exits_non_zero_with_one_line() {
    let http = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    let out = view(&["--connect", &http, "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "framewire: error: server {http}: at byte 0 (before any frame): expected stream \
             handshake magic \"FWST\", got 48 54 54 50 2f 31 2e 31 20 34 30 30 20 42 61 64 \
             (\"HTTP/1.1 400 Bad\")\n"
        )
    );

    // A valid handshake, then a frame whose JPEG payload is garbage.
    let addr = fake_server(jpeg_stream(7, &[0xAB; 16]));
    let out = view(&["--connect", &addr, "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "framewire: error: server {addr}: frame 7 at byte 72: "
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A JPEG that makes zune-jpeg 0.5.15 panic: contained, and still only one line.
    let jpeg = std::fs::read("crates/codec/tests/data/zune-jpeg-0.5.15-panic.jpg").unwrap();
    let addr = fake_server(jpeg_stream(3, &jpeg));
    let out = view(&["--connect", &addr, "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("internal error"), "{err}");
    let errors: Vec<_> = err
        .lines()
        .filter(|l| l.starts_with("framewire:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!(
            "framewire: error: server {addr}: frame 3 at byte {}: jpeg: decoding: zune-jpeg panicked",
            24 + 32 + jpeg.len()
        )),
        "{err}"
    );

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = view(&["--connect", &format!("127.0.0.1:{port}"), "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "framewire: error: cannot connect to 127.0.0.1:{port}: "
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
#[allow(clippy::print_stderr)] // the reason for a skip
fn more_threads_than_cores_is_noted_and_still_streams() {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 64 {
        eprintln!("skipped: {cores} cores, and --threads goes up to 64 only");
        return;
    }
    let threads = (cores + 1).to_string();
    let serve = Serve::start(&["--fps", "0", "--threads", &threads, "--size", "64x48"]);
    let note = serve.error_line("the note about --threads");
    assert!(
        note.contains(&format!(
            "--threads {threads} is more than the {cores} cores"
        )),
        "{note}"
    );
    let out = view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "20",
        "--stats",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stats(&out)["frames"], 20);
}

#[test]
fn typos_get_a_clear_error() {
    fn check(args: &[&str], want: &str) {
        let out = framewire().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    check(
        &["serve", "--codec", "h265"],
        "unknown codec \"h265\", expected one of: raw, bincode, jpeg, h264",
    );
    check(
        &["chat", "--headless"],
        "the following required arguments were not provided:\n  <--listen <ADDR>|--connect <HOST:PORT>>",
    );
    check(
        &["chat", "--connect", "127.0.0.1:9", "--wait"],
        "the argument '--connect <HOST:PORT>' cannot be used with '--wait'",
    );
    check(
        &["chat", "--listen", "127.0.0.1:0", "--source", "test:0"],
        "expected test, test:N (N from 1), camera, camera:N, file:PATH or rtsp://[USER:PASS@]HOST[:PORT]/PATH",
    );
    check(
        &["serve", "--source", "cam"],
        "unknown source \"cam\", expected test, test:N (N from 1), camera, camera:N, file:PATH or rtsp://[USER:PASS@]HOST[:PORT]/PATH",
    );
    check(
        &["serve", "--size", "640"],
        "expected WIDTHxHEIGHT like 640x480",
    );
    check(&["serve", "--quality", "0"], "0 is not in 1..=100");
    check(&["view", "--connect", "nowhere"], "expected HOST:PORT");
    check(&["view", "--stats", "xml"], "[possible values: json]");
    check(&["sreve"], "unrecognized subcommand 'sreve'");
    check(
        &["serve", "--adapt", "no"],
        "expected on or off, got \"no\"",
    );
    check(
        &["serve", "--ladder", "640x480@80,320x240@0"],
        "rung \"320x240@0\": expected a quality in 1..=100 after @",
    );
    check(
        &["serve", "--ladder", "640x480@80,x"],
        "rung \"x\": expected WIDTHxHEIGHT",
    );
    check(
        &["view", "--rung", "1", "--width", "320"],
        "'--rung <N>' cannot be used with '--width <WIDTH>'",
    );
    // UDP's settings do nothing over TCP: said, not ignored.
    check(
        &["serve", "--mtu", "1000"],
        "the argument '--mtu <BYTES>' needs '--transport udp'",
    );
    check(
        &["serve", "--transport", "tcp", "--fec", "4"],
        "the argument '--fec <N>' needs '--transport udp'",
    );
    check(
        &["serve", "--idle-timeout", "2s"],
        "the argument '--idle-timeout <DURATION>' needs '--transport udp'",
    );
    check(
        &["chat", "--listen", "127.0.0.1:0", "--mtu", "1000"],
        "the argument '--mtu <BYTES>' needs '--transport udp'",
    );
}

/// Views `frames` frames with `ask` and returns the stats.
fn view_asking(serve: &Serve, ask: &[&str]) -> Value {
    let args = [
        &["--connect", &serve.addr, "--headless", "--frames", "5"][..],
        ask,
        &["--stats", "json"],
    ];
    stats(&view(&args.concat()))
}

#[test]
fn a_viewer_pins_a_rung_or_asks_for_a_codec_and_width() {
    let serve = Serve::start(&["--codec", "jpeg"]);
    let ladder = serve.line_starting("quality ladder: ");
    assert_eq!(
        ladder,
        "quality ladder: 640x480@80, 640x480@50, 320x240@50 (each viewer follows its link)"
    );
    let pinned = view_asking(&serve, &["--rung", "2"]);
    assert_eq!(
        (
            pinned["rung"].as_str(),
            pinned["width"].as_u64(),
            pinned["rung_changes"].as_u64()
        ),
        (Some("320x240@50"), Some(320), Some(0))
    );
    let joined = serve.line_containing(" connected ");
    assert!(
        joined.ends_with("on rung 2 of 3 (320x240@50), staying there"),
        "{joined}"
    );
    let asked = view_asking(&serve, &["--codec", "raw", "--width", "160"]);
    assert_eq!(
        (
            asked["codec"].as_str(),
            asked["rung"].as_str(),
            asked["height"].as_u64()
        ),
        (Some("raw"), Some("160x120@raw"), Some(120))
    );
    let joined = serve.line_containing(" connected ");
    assert!(
        joined.ends_with("on 160x120@raw (asked for, off the ladder)"),
        "{joined}"
    );

    let out = view(&["--connect", &serve.addr, "--headless", "--rung", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "framewire: error: server {} refused the viewer: asked for rung 7, but the ladder has \
             rungs 0 to 2",
            serve.addr
        )
    );

    // A ladder of one's own.
    let own = Serve::start(&["--codec", "jpeg", "--ladder", "320x240@70,160x120@30"]);
    let ladder = own.line_starting("quality ladder: ");
    assert!(
        ladder.starts_with("quality ladder: 320x240@70, 160x120@30 ("),
        "{ladder}"
    );
    let s = view_asking(&own, &["--rung", "1"]);
    assert_eq!(
        (s["rung"].as_str(), s["width"].as_u64()),
        (Some("160x120@30"), Some(160))
    );

    // With adaptation off, the top rung is the only one, and a viewer stays on it.
    let one = Serve::start(&["--codec", "jpeg", "--adapt", "off", "--width", "320"]);
    let ladder = one.line_starting("quality ladder: ");
    assert!(
        ladder.starts_with("quality ladder: 320x240@80 ("),
        "{ladder}"
    );
    let s = view_asking(&one, &[]);
    assert_eq!(
        (s["rung"].as_str(), s["rung_changes"].as_u64()),
        (Some("320x240@80"), Some(0))
    );
}

#[test]
fn jpeg_encoder_flag_names_its_values_and_what_the_build_has() {
    let out = framewire()
        .args(["serve", "--jpeg-encoder", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid value 'bogus' for '--jpeg-encoder <ENCODER>'")
            && err.contains("unknown JPEG encoder \"bogus\", expected one of: rust, turbojpeg"),
        "{err}"
    );
    let help = framewire().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    if cfg!(feature = "turbojpeg") {
        assert!(
            help.contains("this build has rust, turbojpeg [default: turbojpeg]"),
            "{help}"
        );
    } else {
        assert!(
            help.contains("this build has rust (turbojpeg needs a build with --features turbojpeg) [default: rust]"),
            "{help}"
        );
        // A known encoder this build lacks: one line saying how to get it, before anything opens.
        let out = framewire()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--jpeg-encoder",
                "turbojpeg",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            "framewire: error: --jpeg-encoder turbojpeg: this build has no turbojpeg JPEG encoder \
             (libjpeg-turbo); rebuild with `--features turbojpeg` (building it needs cmake and \
             nasm: apt-get install cmake nasm)\n"
        );
        assert!(
            out.stdout.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[cfg(feature = "turbojpeg")]
#[test]
fn turbojpeg_encoded_stream_decodes_to_the_right_frames() {
    let serve = Serve::start(&[
        "--codec",
        "jpeg",
        "--jpeg-encoder",
        "turbojpeg",
        "--fps",
        "0",
        "--width",
        "320",
        "--adapt",
        "off",
    ]);
    let streaming = serve.line("the `streaming ...` line");
    assert!(
        streaming.contains("-> jpeg (turbojpeg encoder) 320x240"),
        "{streaming}"
    );
    // Every frame decoded (by zune-jpeg) to the picture its header named.
    view_40_verified(&serve, "jpeg");
    assert!(serve.line_starting("viewer ").contains("connected"));
}

#[test]
fn help_is_pinned() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["view", "--help"],
        &["hub", "--help"],
    ] {
        let out = framewire().args(args).output().unwrap();
        assert!(out.status.success());
        let mut name = format!("help_{}", args[..args.len() - 1].join("_"))
            .trim_end_matches('_')
            .to_string();
        // serve's help names the JPEG encoders the build has, and its default.
        if cfg!(feature = "turbojpeg") && args[0] == "serve" {
            name.push_str("_turbojpeg");
        }
        insta::assert_snapshot!(name, String::from_utf8(out.stdout).unwrap());
    }
}

#[test]
fn a_viewer_rejoins_a_server_killed_and_restarted_on_the_same_address() {
    let serve = Serve::start(&["--codec", "jpeg", "--size", "320x240"]);
    let addr = serve.addr.clone();
    let child = spawn_view(&[
        "--connect",
        &addr,
        "--headless",
        "--frames",
        "60",
        "--stats",
        "json",
    ]);
    assert!(serve.line_starting("viewer ").contains("connected"));
    drop(serve); // SIGKILL: no goodbye, the connection just breaks
    let serve = Serve::start_at(&addr, &["--codec", "jpeg", "--size", "320x240"]);
    assert!(
        serve.line_starting("viewer ").contains("connected"),
        "rejoined"
    );
    let out = finish_view(child);
    let s = stats(&out);
    assert_eq!(s["frames"], 60, "{s}");
    assert!(s["reconnects"].as_u64().unwrap() >= 1, "{s}");
    let err = stderr(&out);
    assert!(err.contains("; reconnecting"), "{err}");
    assert!(err.contains("reconnected to"), "{err}");
}

#[test]
fn no_reconnect_exits_with_the_reason_when_the_server_dies() {
    let serve = Serve::start(&["--codec", "raw", "--size", "320x240"]);
    let child = spawn_view(&["--connect", &serve.addr, "--headless", "--no-reconnect"]);
    assert!(serve.line_starting("viewer ").contains("connected"));
    let addr = serve.addr.clone();
    drop(serve);
    let out = finish_view(child);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("framewire: error: server {addr}")),
        "{err}"
    );
}

#[test]
fn garbage_connections_leave_the_server_as_it_was() {
    let serve = Serve::start(&[
        "--codec",
        "jpeg",
        "--fps",
        "30",
        "--size",
        "320x240",
        "--handshake-timeout",
        "1s",
    ]);
    // A good viewer runs throughout and must see every frame.
    let good = spawn_view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "90",
        "--stats",
        "json",
    ]);
    assert!(serve.line_starting("viewer ").contains("connected"));
    let (fds_before, rss_before) = serve.resources();
    let n = 1000;
    for i in 0..n {
        let mut s = TcpStream::connect(&serve.addr).unwrap();
        let _ = match i % 3 {
            0 => s.write_all(&[0xA5; 32]),
            1 => s.write_all(b"FWVH\x09\x00\x00\x00"),
            _ => Ok(()),
        };
    }
    for i in 0..n {
        let line = serve.error_line(&format!("rejection {i}"));
        assert!(line.contains("rejected"), "{line}");
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (fds, rss) = serve.resources();
        if fds <= fds_before + 2 && rss <= rss_before + 8 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "open files {fds_before} -> {fds}, resident {rss_before} kB -> {rss} kB"
        );
        thread::yield_now();
    }
    let s = stats(&finish_view(good));
    assert_eq!(s["frames"], 90);
    assert_eq!(s["dropped"], 0, "{s}");
}

#[test]
fn serve_piped_into_a_reader_that_goes_away_ends_quietly() {
    // `framewire serve | head -1`: the reader leaves after the first line.
    let mut serve = framewire()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    // A viewer makes serve print again, into the closed pipe.
    let _ = view(&[
        "--connect",
        &addr,
        "--headless",
        "--frames",
        "3",
        "--no-reconnect",
    ]);
    let status = wait_timeout(&mut serve, "serve to end after its reader left");
    let mut err = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(!err.contains("internal error"), "{err}");
}

#[test]
fn a_hostile_servers_reason_is_printed_without_its_terminal_escapes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 16];
        s.read_exact(&mut hello).unwrap();
        // A refusal whose reason clears the screen and forges a line of its own.
        let reason = b"\x1b[2J\x1b[Hbusy\nframewire: error: run rm -rf ~";
        let mut refusal = b"FWFR\x02".to_vec();
        refusal.extend_from_slice(&[0; 19]);
        refusal.extend_from_slice(&(reason.len() as u32).to_le_bytes());
        refusal.extend_from_slice(&[0; 4]);
        refusal.extend_from_slice(reason);
        s.write_all(&refusal).unwrap();
    });
    let out = common::view(&["--headless", "--no-reconnect", "--connect", &addr]);
    server.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains("\\u{1b}[2J"), "{err:?}");
}

/// `--publish` carries H.264: a build without it says how to get it, naming the flag.
#[cfg(not(feature = "h264"))]
#[test]
fn publishing_without_h264_in_the_build_says_how_to_build_it() {
    let out = framewire()
        .args(["serve", "--listen", "127.0.0.1:0", "--publish"])
        .arg("rtmp://127.0.0.1:1/live/key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--publish rtmp://127.0.0.1:1/live/****: ") && err.contains("--features h264"),
        "{err}"
    );
}

/// A source URL that does not parse is named without its password.
#[test]
fn a_bad_rtsp_source_is_refused_without_its_password() {
    let out = framewire()
        .args(["serve", "--source", "rtsp://cam:hunter2@host:99999/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rtsp://****@host:99999/x: invalid port number"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
