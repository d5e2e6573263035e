//! `framewire chat` end to end over loopback: the real binary on both sides of a call, each
//! sending the test pattern and checking the frame numbers of what it receives.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Output;
use std::sync::mpsc;
use std::thread;

use common::{Serve, WAIT, finish_view, spawn_call_in, stderr, wait_timeout};
use serde_json::Value;

/// Waits for a listening side to exit; returns whether it succeeded, its stdout's stats
/// object (if it printed one) and its stderr.
fn finish_listener(mut side: Serve) -> (bool, Option<Value>, String) {
    let status = wait_timeout(&mut side.child, "the listening side to exit");
    let mut stats = None;
    while let Ok(line) = side.lines.recv_timeout(WAIT) {
        if line.starts_with('{') {
            stats = Some(serde_json::from_str(&line).unwrap());
        }
    }
    let mut errors = String::new();
    while let Ok(line) = side.errors.recv_timeout(WAIT) {
        errors.push_str(&line);
        errors.push('\n');
    }
    (status.success(), stats, errors)
}

/// Waits until the listening side says a call is on.
fn in_a_call(side: &Serve) {
    loop {
        let line = side.error_line("the `in a call` line");
        if line.starts_with("in a call with peer") {
            return;
        }
    }
}

/// Lines of an error (the rest of stderr says what the side sends).
fn error_lines(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("framewire:"))
        .count()
}

fn call_stats(out: &Output) -> Value {
    common::stats(out)
}

#[test]
fn a_call_carries_a_stream_each_way_and_ends_for_both_when_one_hangs_up() {
    let args = [
        "--codec",
        "jpeg",
        "--stats",
        "json",
        "--verify-test-pattern",
    ];
    let listener = Serve::chat_in(None, "127.0.0.1:0", &args);
    let caller = spawn_call_in(
        None,
        &listener.addr,
        &[&args[..], &["--frames", "60"]].concat(),
    );
    let out = finish_view(caller);
    let called = call_stats(&out);
    assert_eq!(called["received"]["frames"], 60, "{called}");
    assert_eq!(called["received"]["pattern_errors"], 0, "{called}");
    assert_eq!(called["received"]["codec"], "jpeg");
    assert!(called["sent"]["frames"].as_u64().unwrap() > 0, "{called}");
    assert!(called["sent"]["bytes"].as_u64().unwrap() > 0, "{called}");

    // The caller hung up after 60 frames: the listener hears it and exits 0.
    let (ok, stats, errors) = finish_listener(listener);
    assert!(ok, "the listener failed: {errors}");
    assert!(errors.contains("hung up"), "{errors}");
    let listened = stats.expect("the listener's stats");
    let received = listened["received"]["frames"].as_u64().unwrap();
    assert!(received > 0, "{listened}");
    assert_eq!(listened["received"]["pattern_errors"], 0, "{listened}");
    // What one side sent is what the other received, give or take the frames in flight at
    // the hang-up.
    let sent_by_caller = called["sent"]["frames"].as_u64().unwrap();
    assert!(sent_by_caller >= received, "{called} vs {listened}");
    assert!(
        listened["sent"]["frames"].as_u64().unwrap() >= 60,
        "{listened}"
    );
}

#[test]
fn a_second_caller_is_told_the_line_is_busy() {
    let listener = Serve::chat_in(None, "127.0.0.1:0", &[]);
    // Killed when the test ends, however it ends: a caller left alone would dial forever.
    let _first =
        common::xscreen::Reaped(spawn_call_in(None, &listener.addr, &["--frames", "100000"]));
    // The first call is on once the listener says so.
    in_a_call(&listener);
    let second = finish_view(spawn_call_in(None, &listener.addr, &[]));
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert_eq!(error_lines(&err), 1, "{err}");
    assert!(
        err.contains("refused the call: busy: already in a call"),
        "{err}"
    );
}

#[test]
fn a_viewer_at_a_call_and_a_caller_at_a_stream_are_told_which_command_to_use() {
    let listener = Serve::chat_in(None, "127.0.0.1:0", &[]);
    let out = common::view(&["--connect", &listener.addr, "--headless", "--no-reconnect"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("this is a two-way call (framewire chat --listen): call it with framewire chat --connect"),
        "{}",
        stderr(&out)
    );

    let server = Serve::start(&[]);
    let out = finish_view(spawn_call_in(None, &server.addr, &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused the call: this is a one-way stream (framewire serve): watch it with framewire view"),
        "{err}"
    );
    assert_eq!(error_lines(&err), 1, "{err}");
}

#[test]
fn with_wait_the_listener_takes_the_next_call() {
    let listener = Serve::chat_in(None, "127.0.0.1:0", &["--wait", "--stats", "json"]);
    for _ in 0..2 {
        let out = finish_view(spawn_call_in(
            None,
            &listener.addr,
            &["--frames", "10", "--stats", "json"],
        ));
        assert_eq!(call_stats(&out)["received"]["frames"], 10);
        assert_eq!(
            listener.line_starting("waiting"),
            "waiting for the next call"
        );
    }
}

#[test]
fn a_caller_whose_connection_is_lost_dials_again() {
    let first = Serve::chat_in(None, "127.0.0.1:0", &[]);
    let addr = first.addr.clone();
    let mut caller = spawn_call_in(
        None,
        &addr,
        &[
            "--frames",
            "150",
            "--stats",
            "json",
            "--verify-test-pattern",
        ],
    );
    let (tx, errors) = mpsc::channel();
    let stderr = caller.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let mut next_line = |what: &str| {
        let line = errors
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the caller did not say {what:?}; it said:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        line
    };
    // Both sides are in the call once the caller says so.
    while !next_line("in a call").starts_with("in a call with peer") {}
    // The listener dies without a goodbye; a new one takes its address.
    drop(first);
    let second = Serve::chat_in(None, &addr, &[]);
    while !next_line("back in the call").starts_with("back in the call") {}
    let out = finish_view(caller);
    let called = call_stats(&out);
    assert_eq!(called["received"]["frames"], 150, "{called}");
    assert_eq!(called["received"]["pattern_errors"], 0, "{called}");
    assert_eq!(called["received"]["reconnects"], 1, "{called}");
    let (ok, _, errors) = finish_listener(second);
    assert!(ok, "{errors}");
}

/// The one rule for a lost caller, over either transport: it has the idle timeout to call
/// back, then the line is free for the next caller.
#[test]
fn a_lost_caller_that_does_not_call_back_frees_the_line_after_the_idle_timeout() {
    for transport in ["tcp", "udp"] {
        let with = ["--transport", transport];
        let listener = Serve::chat_in(
            None,
            "127.0.0.1:0",
            &[&with[..], &["--idle-timeout", "1s"]].concat(),
        );
        let addr = listener.addr.trim_start_matches("udp://").to_string();
        let first = spawn_call_in(None, &addr, &[&with[..], &["--frames", "100000"]].concat());
        in_a_call(&listener);
        // The caller dies without a goodbye and never calls back.
        drop(common::xscreen::Reaped(first));
        loop {
            let line = listener.error_line("the line freed");
            if line.contains("did not call back within 1.0s: the line is free for the next call") {
                assert!(
                    line.starts_with("still waiting: the caller at 127.0.0.1 "),
                    "{transport}: {line}"
                );
                break;
            }
        }
        let next = finish_view(spawn_call_in(
            None,
            &addr,
            &[&with[..], &["--frames", "10", "--stats", "json"]].concat(),
        ));
        assert_eq!(
            call_stats(&next)["received"]["frames"],
            10,
            "{transport}: {}",
            stderr(&next)
        );
    }
}

/// A "listener" that answers the caller's hello with `answer`, then keeps the connection open.
fn fake_listener(answer: Vec<u8>) -> (String, thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut hello = [0u8; 16];
        std::io::Read::read_exact(&mut conn, &mut hello).unwrap();
        let _ = std::io::Write::write_all(&mut conn, &answer);
        // Hold the connection until the caller closes it.
        let _ = std::io::Read::read_to_end(&mut conn, &mut Vec::new());
    });
    (addr, handle)
}

#[test]
fn bad_bytes_from_the_other_side_end_the_call_with_one_line_naming_them() {
    // Garbage instead of the listener's hello.
    let (addr, fake) = fake_listener(b"GET / HTTP/1.1\r\n\r\n".to_vec());
    let out = finish_view(spawn_call_in(None, &addr, &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(error_lines(&err), 1, "{err}");
    assert!(
        err.contains(&format!(
            "server {addr}: at byte 0 (before any frame): expected listener hello magic"
        )),
        "{err}"
    );
    fake.join().unwrap();

    // A good hello (the caller's own call number comes back), then a frame header that lies.
    let (addr, fake) = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut hello = [0u8; 16];
            std::io::Read::read_exact(&mut conn, &mut hello).unwrap();
            let mut answer = hello.to_vec();
            // A handshake for raw 4x2 rgb8, then a frame header of kind 9.
            answer.extend_from_slice(b"FWST\x02\x00\x01\x01");
            answer.extend_from_slice(&4u32.to_le_bytes());
            answer.extend_from_slice(&2u32.to_le_bytes());
            answer.extend_from_slice(&30_000u32.to_le_bytes());
            answer.extend_from_slice(&[0, 1, 0, 0]);
            answer.extend_from_slice(b"FWFR\x09");
            answer.extend_from_slice(&[0; 27]);
            let _ = std::io::Write::write_all(&mut conn, &answer);
            let _ = std::io::Read::read_to_end(&mut conn, &mut Vec::new());
        });
        (addr, handle)
    };
    let out = finish_view(spawn_call_in(None, &addr, &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(error_lines(&err), 1, "{err}");
    assert!(
        err.contains(&format!("server {addr}: at byte 40 (before any frame)"))
            && err.contains("unknown message kind 9"),
        "{err}"
    );
    fake.join().unwrap();
}

/// `chat --transport udp`: what each side adds to the TCP call's flags.
const UDP: [&str; 2] = ["--transport", "udp"];

/// A UDP listener's address, from its `listening on udp://ADDR` line.
fn udp_addr(listener: &Serve) -> String {
    listener
        .addr
        .strip_prefix("udp://")
        .unwrap_or_else(|| panic!("not a udp address: {}", listener.addr))
        .to_string()
}

#[test]
fn a_udp_call_carries_a_stream_each_way_and_ends_for_both_when_one_hangs_up() {
    let args = [
        &UDP[..],
        &[
            "--codec",
            "jpeg",
            "--stats",
            "json",
            "--verify-test-pattern",
        ],
    ]
    .concat();
    let listener = Serve::chat_in(None, "127.0.0.1:0", &args);
    let addr = udp_addr(&listener);
    let caller = spawn_call_in(None, &addr, &[&args[..], &["--frames", "60"]].concat());
    let out = finish_view(caller);
    let called = call_stats(&out);
    assert_eq!(called["received"]["frames"], 60, "{called}");
    assert_eq!(called["received"]["pattern_errors"], 0, "{called}");
    assert_eq!(called["received"]["codec"], "jpeg");
    assert!(called["received"]["lost"].is_u64(), "{called}");
    assert!(called["received"]["fragments_lost"].is_u64(), "{called}");
    assert!(called["sent"]["frames"].as_u64().unwrap() > 0, "{called}");
    assert!(called["sent"]["bytes"].as_u64().unwrap() > 0, "{called}");
    assert!(
        stderr(&out).contains(&format!("in a call with peer udp://{addr}")),
        "{}",
        stderr(&out)
    );

    // The caller hung up after 60 frames: the listener hears it and exits 0.
    let (ok, stats, errors) = finish_listener(listener);
    assert!(ok, "the listener failed: {errors}");
    assert!(errors.contains("hung up"), "{errors}");
    let listened = stats.expect("the listener's stats");
    assert!(
        listened["received"]["frames"].as_u64().unwrap() > 0,
        "{listened}"
    );
    assert_eq!(listened["received"]["pattern_errors"], 0, "{listened}");
    assert!(listened["received"]["lost"].is_u64(), "{listened}");
    assert!(
        listened["sent"]["frames"].as_u64().unwrap() >= 60,
        "{listened}"
    );
}

#[test]
fn a_second_udp_caller_is_told_the_line_is_busy() {
    let listener = Serve::chat_in(None, "127.0.0.1:0", &UDP);
    let addr = udp_addr(&listener);
    let _first = common::xscreen::Reaped(spawn_call_in(
        None,
        &addr,
        &[&UDP[..], &["--frames", "100000"]].concat(),
    ));
    in_a_call(&listener);
    let second = finish_view(spawn_call_in(None, &addr, &UDP));
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert_eq!(error_lines(&err), 1, "{err}");
    assert!(
        err.contains(&format!(
            "peer {addr} refused the call: busy: already in a call"
        )),
        "{err}"
    );
}

#[test]
fn over_udp_a_viewer_at_a_call_and_a_caller_at_a_stream_are_told_which_command_to_use() {
    let listener = Serve::chat_in(None, "127.0.0.1:0", &UDP);
    let addr = udp_addr(&listener);
    let out = common::view(&[
        "--transport",
        "udp",
        "--connect",
        &addr,
        "--headless",
        "--no-reconnect",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("this is a two-way call (framewire chat --listen): call it with framewire chat --connect"),
        "{}",
        stderr(&out)
    );

    let server = Serve::start(&UDP);
    let addr = server.addr.trim_start_matches("udp://");
    let out = finish_view(spawn_call_in(None, addr, &UDP));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused the call: this is a one-way stream (framewire serve): watch it with framewire view"),
        "{err}"
    );
    assert_eq!(error_lines(&err), 1, "{err}");
}

#[test]
fn over_udp_with_wait_the_listener_takes_the_next_call() {
    let listener = Serve::chat_in(
        None,
        "127.0.0.1:0",
        &[&UDP[..], &["--wait", "--stats", "json"]].concat(),
    );
    let addr = udp_addr(&listener);
    for _ in 0..2 {
        let out = finish_view(spawn_call_in(
            None,
            &addr,
            &[&UDP[..], &["--frames", "10", "--stats", "json"]].concat(),
        ));
        assert_eq!(call_stats(&out)["received"]["frames"], 10);
        assert_eq!(
            listener.line_starting("waiting"),
            "waiting for the next call"
        );
    }
}
