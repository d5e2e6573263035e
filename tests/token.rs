//! The shared token end to end: `serve`, `view` and `chat` over loopback with
//! `FRAMEWIRE_TOKEN` and `--token-file`, and raw sockets that answer the challenge wrongly,
//! not at all, or with a proof recorded from another connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::{Serve, WAIT, finish_view, framewire, spawn_call_in, stats, stderr};

const TOKEN: &str = "correct horse battery staple";

/// A viewer hello asking for nothing in particular.
const HELLO: [u8; 16] = [
    b'F', b'W', b'V', b'H', 2, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0,
];

/// `framewire serve` with the token in its environment.
fn serve_with_token() -> Serve {
    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    Serve::spawn_with(
        cmd,
        &["serve", "--listen", "127.0.0.1:0", "--codec", "jpeg"],
    )
}

fn view_with(token: Option<&str>, addr: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = framewire();
    match token {
        Some(t) => cmd.env("FRAMEWIRE_TOKEN", t),
        None => cmd.env_remove("FRAMEWIRE_TOKEN"),
    };
    let child = cmd
        .args(["view", "--headless", "--connect", addr])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn framewire view");
    finish_view(child)
}

/// Says hello on a raw socket and reads the server's challenge message (header and bytes).
fn challenged(addr: &str) -> (TcpStream, [u8; 64]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&HELLO).unwrap();
    let mut challenge = [0u8; 64];
    s.read_exact(&mut challenge).unwrap();
    assert_eq!(&challenge[..5], b"FWFR\x05", "a challenge message");
    (s, challenge)
}

/// Everything the server sends until it closes.
fn rest(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The proof of `token` for a challenge message, as a proof message.
fn proof(token: &str, challenge: &[u8; 64]) -> Vec<u8> {
    let token = framewire_wire::token::Token::new(token.as_bytes()).unwrap();
    let mut message = b"FWFR\x06".to_vec();
    message.extend_from_slice(&[0; 19]);
    message.extend_from_slice(&32u32.to_le_bytes());
    message.extend_from_slice(&[0; 4]);
    message.extend_from_slice(&token.prove(challenge[32..].try_into().unwrap()));
    message
}

#[test]
fn the_right_token_opens_the_stream_and_a_wrong_or_missing_one_gets_a_line_on_both_ends() {
    let server = serve_with_token();
    let out = view_with(
        Some(TOKEN),
        &server.addr,
        &["--frames", "5", "--stats", "json"],
    );
    assert_eq!(stats(&out)["frames"], 5);

    let out = view_with(
        Some("a wrong guess at the token"),
        &server.addr,
        &["--frames", "5"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "framewire: error: server {} refused the viewer: wrong token",
            server.addr
        )
    );
    let logged = server.error_line("the failed attempt");
    assert!(
        logged.starts_with("framewire: connection from 127.0.0.1:")
            && logged.ends_with("rejected: wrong token"),
        "{logged}"
    );

    let out = view_with(None, &server.addr, &["--frames", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("asks for a token: give the same one as the server"),
        "{}",
        stderr(&out)
    );

    // --token-file works as the environment does; a missing file is named.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let file = file.to_str().unwrap();
    let out = view_with(None, &server.addr, &["--frames", "3", "--token-file", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = view_with(None, &server.addr, &["--token-file", "/nonexistent/token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--token-file: cannot read /nonexistent/token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_peer_without_the_token_gets_no_frame_byte_and_a_recorded_proof_is_worthless() {
    let server = serve_with_token();
    // A wrong proof: the server sends the challenge, then its refusal, and nothing else.
    let (mut s, challenge) = challenged(&server.addr);
    s.write_all(&proof("not the token", &challenge)).unwrap();
    let after = rest(s);
    let mut refusal = b"FWFR\x02".to_vec();
    refusal.extend_from_slice(&[0; 19]);
    refusal.extend_from_slice(&11u32.to_le_bytes());
    refusal.extend_from_slice(&[0; 4]);
    refusal.extend_from_slice(b"wrong token");
    assert_eq!(after, refusal);

    // A proof recorded from a connection that had the token, replayed on another.
    let (mut s, challenge) = challenged(&server.addr);
    let recorded = proof(TOKEN, &challenge);
    s.write_all(&recorded).unwrap();
    let mut handshake = [0u8; 4];
    s.read_exact(&mut handshake).unwrap();
    assert_eq!(&handshake, b"FWST", "the right proof opens the stream");
    drop(s);
    let (mut s, _) = challenged(&server.addr);
    s.write_all(&recorded).unwrap();
    assert_eq!(rest(s), refusal, "a replayed proof is refused");

    // No proof at all: the server sends nothing past its challenge.
    let (s, _) = challenged(&server.addr);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(rest(s), b"", "nothing after the challenge");
}

#[test]
fn failing_attempts_are_refused_at_once_for_a_while_and_a_watching_viewer_keeps_its_frames() {
    let server = serve_with_token();
    let mut watching = framewire();
    watching.env("FRAMEWIRE_TOKEN", TOKEN);
    let watching = watching
        .args(["view", "--headless", "--connect", &server.addr])
        .args(["--frames", "90", "--stats", "json", "--verify-test-pattern"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It is watching before the attempts start.
    server.line_starting("viewer 127.0.0.1:");
    let mut refused_at_once = 0;
    for _ in 0..50 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&HELLO).unwrap();
        let mut first = [0u8; 5];
        s.read_exact(&mut first).unwrap();
        if first == *b"FWFR\x02" {
            // Refused without a challenge: this address failed too often.
            refused_at_once += 1;
            continue;
        }
        let mut challenge = [0u8; 64];
        challenge[..5].copy_from_slice(&first);
        s.read_exact(&mut challenge[5..]).unwrap();
        s.write_all(&proof("guess", &challenge)).unwrap();
        rest(s);
    }
    assert!(
        refused_at_once > 40,
        "{refused_at_once} of 50 refused at once"
    );
    let s = stats(&finish_view(watching));
    assert_eq!(s["frames"], 90);
    assert_eq!(s["pattern_errors"], 0);
    assert_eq!(s["reconnects"], 0);
}

#[test]
fn a_call_needs_the_token_and_serving_a_network_without_one_or_over_plain_http_warns() {
    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let listener = Serve::spawn_with(
        cmd,
        &["chat", "--listen", "127.0.0.1:0", "--headless", "--wait"],
    );
    let mut caller = framewire();
    caller
        .env("FRAMEWIRE_TOKEN", TOKEN)
        .args(["chat", "--headless", "--connect", &listener.addr])
        .args(["--frames", "10", "--stats", "json"]);
    let out = finish_view(
        caller
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(stats(&out)["received"]["frames"], 10);
    let out = finish_view(spawn_call_in(None, &listener.addr, &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("asks for a token"),
        "{}",
        stderr(&out)
    );

    let mut open = framewire();
    open.env_remove("FRAMEWIRE_TOKEN");
    let server = Serve::spawn_with(open, &["serve", "--listen", "0.0.0.0:0"]);
    let warning = server.error_line("the warning");
    assert!(
        warning.starts_with(
            "framewire: warning: --listen 0.0.0.0:0 without a token: anyone who can reach it can watch"
        ),
        "{warning}"
    );

    // Plain HTTP beyond loopback carries the token in clear: said at start.
    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let args = ["serve", "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0"];
    let server = Serve::spawn_with(cmd, &args);
    let warning = server.error_line("the clear-token warning");
    assert!(
        warning.starts_with("framewire: warning: --http 0.0.0.0:0 with a token and without --tls")
            && warning.ends_with("add --tls"),
        "{warning}"
    );
}

/// The status line `serve --http` answers `GET path` with, sending `auth` as the
/// Authorization header when given.
fn http_status(addr: &str, path: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn http_asks_for_the_same_token_as_a_bearer() {
    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let server = Serve::spawn_with(
        cmd,
        &["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
    );
    let http = server.line_starting("http on http://");
    let addr = http
        .trim_start_matches("http on http://")
        .trim_end_matches('/')
        .to_string();
    assert_eq!(
        http_status(&addr, "/stats", None),
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        http_status(&addr, "/stats", Some("Bearer guess")),
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        http_status(&addr, "/stats", Some(&format!("Bearer {TOKEN}"))),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        http_status(&addr, "/snapshot", Some(&format!("Bearer {TOKEN}"))),
        "HTTP/1.1 200 OK"
    );

    // A request that proved the token sees where the viewers are.
    let viewer = common::xscreen::Reaped(
        framewire()
            .env("FRAMEWIRE_TOKEN", TOKEN)
            .args(["view", "--headless", "--connect", &server.addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.line_starting("viewer ");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET /stats HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let stats: serde_json::Value = serde_json::from_str(body).expect("/stats");
    let peer = stats["viewers"][0]["peer"].as_str().unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "{stats}");
    drop(viewer);
}

/// `framewire chat --connect ADDR` with `token` in its environment (none: no token).
fn call_with(token: Option<&str>, addr: &str) -> std::process::Output {
    let mut cmd = framewire();
    match token {
        Some(t) => cmd.env("FRAMEWIRE_TOKEN", t),
        None => cmd.env_remove("FRAMEWIRE_TOKEN"),
    };
    let child = cmd
        .args(["chat", "--headless", "--connect", addr, "--frames", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn framewire chat");
    finish_view(child)
}

/// `framewire chat --listen` with `token` in its environment (none: no token).
fn listen_with(token: Option<&str>) -> Serve {
    let mut cmd = framewire();
    match token {
        Some(t) => cmd.env("FRAMEWIRE_TOKEN", t),
        None => cmd.env_remove("FRAMEWIRE_TOKEN"),
    };
    Serve::spawn_with(
        cmd,
        &["chat", "--listen", "127.0.0.1:0", "--headless", "--wait"],
    )
}

#[test]
fn a_caller_with_the_token_refuses_a_listener_with_another_token_or_none_on_both_ends() {
    // Another token: the listener cannot check the caller's proof, and says so.
    let listener = listen_with(Some("another token, as long as one"));
    let out = call_with(Some(TOKEN), &listener.addr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out),
        format!(
            "framewire: error: peer {} refused the call: wrong token",
            listener.addr
        )
    );
    let logged = log_line(&listener, "the failed call");
    assert!(
        logged.starts_with("framewire: call from 127.0.0.1:")
            && logged.ends_with("refused: wrong token"),
        "{logged}"
    );

    // No token: it proves none, and the caller hangs up before its stream and says why.
    let listener = listen_with(None);
    let out = call_with(Some(TOKEN), &listener.addr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out),
        format!(
            "framewire: error: refused listener {}: {}",
            listener.addr,
            framewire_net::chat::LISTENER_PROVED_NONE
        )
    );
    let logged = log_line(&listener, "the caller's refusal");
    assert!(
        logged.contains(framewire_net::chat::LISTENER_PROVED_NONE),
        "{logged}"
    );
}

/// Plays a call listener on a raw socket for one real caller that has the token: answers its
/// hello as `script` says, then returns everything the caller sent, to its close, and the
/// caller's output.
fn impostor(
    script: impl FnOnce(&mut TcpStream, framewire_wire::message::Hello),
) -> (Vec<u8>, std::process::Output) {
    use framewire_wire::message::{HELLO_LEN, Hello};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let caller = {
        let mut cmd = framewire();
        cmd.env("FRAMEWIRE_TOKEN", TOKEN)
            .args(["chat", "--headless", "--connect", &addr, "--frames", "10"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut hello = [0u8; HELLO_LEN];
    s.read_exact(&mut hello).unwrap();
    let hello = Hello::parse(&hello).expect("the caller's hello");
    assert!(hello.call.is_some(), "a caller's hello");
    script(&mut s, hello);
    let sent = rest(s);
    (sent, finish_view(caller))
}

/// The next line `serve` or `chat` logged on stderr past the ones that say what it streams.
fn log_line(server: &Serve, what: &str) -> String {
    loop {
        let line = server.error_line(what);
        if line.starts_with("framewire: ") {
            return line;
        }
    }
}

/// The one error line a run printed (its other lines say what it streams).
fn error_line(out: &std::process::Output) -> String {
    let errors: Vec<_> = stderr(out)
        .lines()
        .filter(|l| l.contains("error"))
        .map(str::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", stderr(out));
    errors[0].clone()
}

/// An Error message with `reason`, as framewire writes it.
fn error_message(reason: &str) -> Vec<u8> {
    let mut message = b"FWFR\x02".to_vec();
    message.extend_from_slice(&[0; 19]);
    message.extend_from_slice(&(reason.len() as u32).to_le_bytes());
    message.extend_from_slice(&[0; 4]);
    message.extend_from_slice(reason.as_bytes());
    message
}

#[test]
fn an_impostor_listener_without_the_token_gets_no_frame_byte_from_a_caller_that_has_it() {
    use framewire_net::chat::{LISTENER_PROVED_NONE, LISTENER_WRONG_TOKEN};
    use framewire_wire::message::{Hello, MessageKind, token_message};
    use framewire_wire::token::Token;
    let answer = |hello: Hello| {
        Hello {
            request: Default::default(),
            call: hello.call,
            push: false,
        }
        .to_bytes()
    };

    // It answers the hello at once, as a listener without a token does.
    let (sent, out) = impostor(|s, hello| s.write_all(&answer(hello)).unwrap());
    assert_eq!(
        sent,
        error_message(LISTENER_PROVED_NONE),
        "only the refusal"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).ends_with(LISTENER_PROVED_NONE));

    // It challenges, takes any proof, and answers the caller's challenge with another token's
    // proof: the caller sent its proof and challenge, then only its refusal.
    let (sent, out) = impostor(|s, hello| {
        s.write_all(&token_message(MessageKind::Challenge, &[7; 32]))
            .unwrap();
        let mut proof_and_challenge = [0u8; 128];
        s.read_exact(&mut proof_and_challenge).unwrap();
        assert_eq!(
            &proof_and_challenge[64..69],
            b"FWFR\x05",
            "the caller's challenge"
        );
        let challenge: [u8; 32] = proof_and_challenge[96..].try_into().unwrap();
        let guess = Token::new(b"guess").unwrap().prove_listener(&challenge);
        s.write_all(&token_message(MessageKind::Proof, &guess))
            .unwrap();
        s.write_all(&answer(hello)).unwrap();
    });
    assert_eq!(
        sent,
        error_message(LISTENER_WRONG_TOKEN),
        "only the refusal"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).ends_with(LISTENER_WRONG_TOKEN));

    // A reflection: it answers the caller's challenge with the caller's own kind of proof
    // (the one the caller made for it), which is not a listener's.
    let (sent, out) = impostor(|s, hello| {
        s.write_all(&token_message(MessageKind::Challenge, &[7; 32]))
            .unwrap();
        let mut proof_and_challenge = [0u8; 128];
        s.read_exact(&mut proof_and_challenge).unwrap();
        let challenge: [u8; 32] = proof_and_challenge[96..].try_into().unwrap();
        let viewer_kind = Token::new(TOKEN.as_bytes()).unwrap().prove(&challenge);
        s.write_all(&token_message(MessageKind::Proof, &viewer_kind))
            .unwrap();
        s.write_all(&answer(hello)).unwrap();
    });
    assert_eq!(sent, error_message(LISTENER_WRONG_TOKEN));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn wrong_tokens_at_one_protocol_slow_the_address_down_at_the_others() {
    let mut cmd = framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let server = Serve::spawn_with(
        cmd,
        &["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
    );
    let http = server.line_starting("http on http://");
    let http = http
        .trim_start_matches("http on http://")
        .trim_end_matches('/')
        .to_string();
    // Three wrong Bearer tokens over HTTP; the fourth request is refused at once (for a second).
    let statuses: Vec<String> = (0..4)
        .map(|_| http_status(&http, "/stats", Some("Bearer guess")))
        .collect();
    assert_eq!(statuses[..3], ["HTTP/1.1 401 Unauthorized"; 3]);
    assert_eq!(
        statuses[3], "HTTP/1.1 429 Too Many Requests",
        "{statuses:?}"
    );
    // Within that second, the framewire port refuses the same address before its challenge.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&HELLO).unwrap();
    let answer = rest(s);
    assert_eq!(&answer[..5], b"FWFR\x02", "refused without a challenge");
    let reason = String::from_utf8_lossy(&answer[32..]);
    assert!(
        reason.starts_with("too many wrong tokens from 127.0.0.1"),
        "{reason}"
    );
}

#[test]
fn a_token_shorter_than_16_bytes_is_refused_with_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let out = framewire()
        .env_remove("FRAMEWIRE_TOKEN")
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("the token is 6 bytes; it needs at least 16")
            && said.contains("head -c 32 /dev/urandom | base64 > token"),
        "{said}"
    );
    let out = view_with(Some("short"), "127.0.0.1:9", &["--frames", "1"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("FRAMEWIRE_TOKEN: the token is 5 bytes; it needs at least 16"),
        "{said}"
    );
}

#[test]
fn wrong_proofs_sent_in_parallel_are_judged_one_after_another_and_only_three_count() {
    let server = serve_with_token();
    // 24 connections, each challenged before any of them answers: every one passed the early
    // check. Then all answer wrongly at once.
    let challenged: Vec<_> = (0..24).map(|_| challenged(&server.addr)).collect();
    let answers: Vec<_> = challenged
        .into_iter()
        .map(|(mut s, challenge)| {
            std::thread::spawn(move || {
                s.write_all(&proof("a wrong guess at the token", &challenge))
                    .unwrap();
                String::from_utf8_lossy(&rest(s)).into_owned()
            })
        })
        .collect();
    let answers: Vec<String> = answers.into_iter().map(|t| t.join().unwrap()).collect();
    let judged = answers
        .iter()
        .filter(|a| a.ends_with("\0wrong token"))
        .count();
    let waited = answers
        .iter()
        .filter(|a| a.contains("too many wrong tokens"))
        .count();
    assert_eq!((judged, waited), (3, 21), "{answers:?}");
}
