//! TLS end to end with the real binaries: `serve --tls` and `view --tls` trusting on first use
//! (a known-hosts file in a config folder made for the test), a changed certificate and a wrong
//! pin refused, a CA's certificate with `--tls-ca`, plaintext/TLS mix-ups on both ends, bad
//! certificate files, the token inside TLS (and what a refused peer was sent), chat over TLS
//! both ways, and one case across the netbed namespaces.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Place, Serve, WAIT, finish_view, framewire_at, stats, stderr};
use framewire_netbed::{Link, Side};

const TOKEN: &str = "correct horse battery staple";

/// A viewer hello asking for nothing in particular.
const HELLO: [u8; 16] = [
    b'F', b'W', b'V', b'H', 2, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0,
];

/// A config folder of the test's own (`XDG_CONFIG_HOME`), and files beside it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn framewire_at(&self, place: Place<'_>) -> Command {
        let mut cmd = framewire_at(place);
        cmd.env("XDG_CONFIG_HOME", self.config())
            .env_remove("FRAMEWIRE_TOKEN");
        cmd
    }

    fn framewire(&self) -> Command {
        self.framewire_at(None)
    }

    fn known_hosts(&self) -> String {
        std::fs::read_to_string(self.config().join("framewire/known_hosts")).unwrap_or_default()
    }

    /// `serve --listen LISTEN --tls ARGS`; returns it and its fingerprint line's fingerprint.
    fn serve_tls(&self, listen: &str, args: &[&str]) -> (Serve, String) {
        let serve = Serve::spawn_with(
            self.framewire(),
            &[
                &["serve", "--listen", listen, "--codec", "jpeg", "--tls"],
                args,
            ]
            .concat(),
        );
        let fingerprint = fingerprint_of(&serve);
        (serve, fingerprint)
    }

    fn view(&self, addr: &str, args: &[&str]) -> Output {
        let child = self
            .framewire()
            .args(["view", "--headless", "--connect", addr])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn framewire view");
        finish_view(child)
    }

    /// A certificate for `localhost` signed by a new CA: (CA PEM, certificate PEM, key PEM).
    fn ca_signed(&self, name: &str) -> (PathBuf, PathBuf, PathBuf) {
        common::ca_signed(self.dir.path(), name)
    }
}

fn fingerprint_of(serve: &Serve) -> String {
    let line = serve.line_starting("tls fingerprint ");
    let fp = line.strip_prefix("tls fingerprint ").unwrap().to_string();
    assert!(
        fp.starts_with("sha256:") && fp.len() == 7 + 64,
        "fingerprint line {line:?}"
    );
    fp
}

fn failed_with(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("framewire:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    lines[0].to_string()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn first_use_records_the_fingerprint_and_a_changed_certificate_or_a_wrong_pin_is_refused() {
    let home = Home::new();
    let (serve, fp) = home.serve_tls("127.0.0.1:0", &[]);
    let addr = serve.addr.clone();
    // The self-signed certificate is kept, its key readable by its owner alone.
    let kept = home.config().join("framewire");
    assert!(kept.join("tls-cert.pem").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(kept.join("tls-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = home.view(&addr, &["--tls", "--frames", "3", "--stats", "json"]);
    assert_eq!(stats(&out)["frames"], 3);
    assert_eq!(home.known_hosts(), format!("{addr} {fp}\n"));
    let out = home.view(&addr, &["--tls", "--frames", "3", "--stats", "json"]);
    assert_eq!(stats(&out)["frames"], 3);
    assert_eq!(home.known_hosts().lines().count(), 1);

    // A restart keeps the certificate, so first use still holds.
    drop(serve);
    let (serve, again) = home.serve_tls(&addr, &[]);
    assert_eq!(again, fp);
    let out = home.view(&addr, &["--tls", "--frames", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(serve);

    // Another certificate on the same address is refused, saying what changed and how to accept.
    let (_, cert, key) = home.ca_signed("other");
    let (serve, other) =
        home.serve_tls(&addr, &["--tls-cert", path(&cert), "--tls-key", path(&key)]);
    assert_ne!(other, fp);
    let line = failed_with(&home.view(&addr, &["--tls", "--frames", "2"]));
    let file = home.config().join("framewire/known_hosts");
    assert_eq!(
        line,
        format!(
            "framewire: error: {addr} shows a different TLS certificate: {other}, where {} line 1 \
             records {fp}; if the server's certificate changed on purpose, delete that line (or \
             view with --tls-pin {other})",
            file.display()
        )
    );
    // The pin it names works; a wrong pin is refused; neither touches the file.
    let out = home.view(&addr, &["--tls", "--tls-pin", &other, "--frames", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = failed_with(&home.view(&addr, &["--tls", "--tls-pin", &fp, "--frames", "2"]));
    assert_eq!(
        line,
        format!("framewire: error: {addr} shows the TLS certificate {other}, not the pinned {fp}")
    );
    assert_eq!(home.known_hosts(), format!("{addr} {fp}\n"));
    drop(serve);
}

#[test]
fn a_certificate_signed_by_the_ca_given_with_tls_ca_is_trusted_and_another_is_not() {
    let home = Home::new();
    let (ca, cert, key) = home.ca_signed("ca");
    let (serve, _) = home.serve_tls(
        "127.0.0.1:0",
        &["--tls-cert", path(&cert), "--tls-key", path(&key)],
    );
    let port = serve.addr.rsplit_once(':').unwrap().1;
    let named = format!("localhost:{port}");
    let out = home.view(
        &named,
        &[
            "--tls",
            "--tls-ca",
            path(&ca),
            "--frames",
            "3",
            "--stats",
            "json",
        ],
    );
    assert_eq!(stats(&out)["frames"], 3);
    assert_eq!(home.known_hosts(), "", "a CA's trust records nothing");

    let (other_ca, _, _) = home.ca_signed("stranger");
    let line = failed_with(&home.view(
        &named,
        &["--tls", "--tls-ca", path(&other_ca), "--frames", "3"],
    ));
    assert!(
        line.contains(&format!(
            "{named}: TLS handshake failed: invalid peer certificate"
        )) && line.contains("checked against --tls-ca"),
        "{line}"
    );
    // The name must be the certificate's: 127.0.0.1 is not in it.
    let line = failed_with(&home.view(
        &serve.addr,
        &["--tls", "--tls-ca", path(&ca), "--frames", "3"],
    ));
    assert!(line.contains("invalid peer certificate"), "{line}");
}

#[test]
fn a_plaintext_viewer_at_a_tls_port_and_a_tls_viewer_at_a_plaintext_port_each_get_one_line() {
    let home = Home::new();
    let started = Instant::now();
    let (tls, _) = home.serve_tls("127.0.0.1:0", &[]);
    let line = failed_with(&home.view(&tls.addr, &["--frames", "2"]));
    assert_eq!(
        line,
        format!(
            "framewire: error: server {} refused the viewer: it expects TLS: add --tls",
            tls.addr
        )
    );
    let logged = tls.error_line("the plaintext viewer");
    assert!(
        logged.starts_with("framewire: connection from 127.0.0.1:")
            && logged
                .ends_with("rejected: plaintext framewire at this TLS port: told to add --tls"),
        "{logged}"
    );
    // What a plaintext peer is sent: the refusal, and not one frame byte.
    let mut s = TcpStream::connect(&tls.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&HELLO).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, refusal("it expects TLS: add --tls"));

    let plain = Serve::spawn_with(
        home.framewire(),
        &["serve", "--listen", "127.0.0.1:0", "--codec", "jpeg"],
    );
    let line = failed_with(&home.view(&plain.addr, &["--tls", "--frames", "2"]));
    assert_eq!(
        line,
        format!(
            "framewire: error: {} answered plaintext framewire: drop --tls",
            plain.addr
        )
    );
    let logged = plain.error_line("the TLS viewer");
    assert!(
        logged.ends_with("rejected: a TLS client at this plaintext port: told to drop --tls"),
        "{logged}"
    );
    assert_eq!(
        home.known_hosts(),
        "",
        "nothing recorded for a plaintext server"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the mix-ups took {:?}",
        started.elapsed()
    );
}

/// The error message a server ends a connection with: header and reason.
fn refusal(reason: &str) -> Vec<u8> {
    let mut m = b"FWFR\x02".to_vec();
    m.extend_from_slice(&[0; 19]);
    m.extend_from_slice(&(reason.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(reason.as_bytes());
    m
}

#[test]
fn missing_and_unreadable_certificate_files_give_one_line_naming_them() {
    let home = Home::new();
    let serve = |args: &[&str]| {
        let out = home
            .framewire()
            .args(["serve", "--listen", "127.0.0.1:0", "--tls"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        failed_with(&out)
    };
    let garbage = home.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let (_, cert, key) = home.ca_signed("files");
    let dir = home.dir.path();
    let cases = [
        (
            vec![
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                path(&key),
            ],
            "framewire: error: --tls-cert/--tls-key: /nonexistent/cert.pem: No such file or directory (os error 2)",
        ),
        (
            vec![
                "--tls-cert",
                path(&cert),
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            "framewire: error: --tls-cert/--tls-key: /nonexistent/key.pem: No such file or directory (os error 2)",
        ),
        (
            vec!["--tls-cert", path(&garbage), "--tls-key", path(&key)],
            &*format!(
                "framewire: error: --tls-cert/--tls-key: {}: no certificate in it (expected PEM)",
                garbage.display()
            ),
        ),
        (
            vec!["--tls-cert", path(&cert), "--tls-key", path(&garbage)],
            &*format!(
                "framewire: error: --tls-cert/--tls-key: {}: no private key in it (expected PEM)",
                garbage.display()
            ),
        ),
        (
            vec!["--tls-cert", path(dir), "--tls-key", path(&key)],
            &*format!(
                "framewire: error: --tls-cert/--tls-key: {}: Is a directory (os error 21)",
                dir.display()
            ),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(serve(&args), expected, "{args:?}");
    }
    // A key that is not the certificate's.
    let (_, _, other_key) = home.ca_signed("mismatch");
    let line = serve(&["--tls-cert", path(&cert), "--tls-key", path(&other_key)]);
    assert!(
        line.starts_with(
            "framewire: error: --tls-cert/--tls-key: the certificate and key do not go together"
        ),
        "{line}"
    );
}

#[test]
fn the_token_is_asked_inside_tls_and_a_refused_peer_gets_no_frame_byte() {
    let home = Home::new();
    let mut cmd = home.framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let serve = Serve::spawn_with(
        cmd,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--codec",
            "jpeg",
            "--tls",
        ],
    );
    let fp = fingerprint_of(&serve);
    let view = |token: &str| {
        let child = home
            .framewire()
            .env("FRAMEWIRE_TOKEN", token)
            .args(["view", "--headless", "--connect", &serve.addr, "--tls"])
            .args(["--tls-pin", &fp, "--frames", "3", "--stats", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish_view(child)
    };
    assert_eq!(stats(&view(TOKEN))["frames"], 3);
    let line = failed_with(&view("a wrong guess at the token"));
    assert_eq!(
        line,
        format!(
            "framewire: error: server {} refused the viewer: wrong token",
            serve.addr
        )
    );

    // Inside TLS, a wrong proof gets the challenge, then the refusal, and nothing else.
    let tls = framewire_net::TlsClient {
        trust: framewire_net::Trust::Pin(fp.clone()),
        host: serve.addr.clone(),
    };
    let tcp = TcpStream::connect(&serve.addr).unwrap();
    let mut conn = tls.connect(tcp, Instant::now() + WAIT).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(&HELLO).unwrap();
    let mut challenge = [0u8; 64];
    conn.read_exact(&mut challenge).unwrap();
    assert_eq!(&challenge[..5], b"FWFR\x05", "a challenge message");
    let token = framewire_wire::token::Token::new(b"not the token").unwrap();
    let mut proof = b"FWFR\x06".to_vec();
    proof.extend_from_slice(&[0; 19]);
    proof.extend_from_slice(&32u32.to_le_bytes());
    proof.extend_from_slice(&[0; 4]);
    proof.extend_from_slice(&token.prove(challenge[32..].try_into().unwrap()));
    conn.write_all(&proof).unwrap();
    let mut after = Vec::new();
    conn.read_to_end(&mut after).unwrap();
    assert_eq!(after, refusal("wrong token"));
}

/// A call with `args` on both sides (the caller with the pattern `test:2`), the caller pinning
/// the listener's certificate and ending after 40 frames: (the caller's stats, the listener's).
fn call(home: &Home, args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    call_for(home, args, 40)
}

/// [`call`] for `frames` frames; over TLS when `args` say `--tls`.
fn call_for(home: &Home, args: &[&str], frames: u32) -> (serde_json::Value, serde_json::Value) {
    let mut listener = Serve::spawn_with(
        home.framewire(),
        &[&["chat", "--listen", "127.0.0.1:0", "--headless"][..], args].concat(),
    );
    let pin = if args.contains(&"--tls") {
        vec!["--tls-pin".to_string(), fingerprint_of(&listener)]
    } else {
        Vec::new()
    };
    let addr = listener.addr.trim_start_matches("udp://").to_string();
    let caller = home
        .framewire()
        .args([
            "chat",
            "--connect",
            &addr,
            "--headless",
            "--source",
            "test:2",
        ])
        .args(args)
        .args(pin)
        .args(["--frames", &frames.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let called = stats(&finish_view(caller));
    let status = common::wait_timeout(&mut listener.child, "the listening side to exit");
    assert!(status.success());
    let mut listened = None;
    while let Ok(line) = listener.lines.recv_timeout(WAIT) {
        if line.starts_with('{') {
            listened = Some(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    }
    (called, listened.expect("the listener's stats"))
}

/// One call, over every transport: {tcp, udp} x {plain, tls}. Each side gets the other's
/// pattern whole, and hears how the other side shows its own stream (the peer's report).
#[test]
fn every_transport_carries_a_call_and_the_peers_reports_each_way() {
    for transport in ["tcp", "udp"] {
        for tls in [false, true] {
            let home = Home::new();
            let mut args = vec![
                "--transport",
                transport,
                "--codec",
                "jpeg",
                "--stats",
                "json",
                "--verify-test-pattern",
            ];
            if tls {
                args.push("--tls");
            }
            let case = format!("{transport}, tls {tls}");
            // Long enough for a report (one a second) to cross each way.
            let (called, listened) = call_for(&home, &args, 90);
            assert_eq!(called["received"]["frames"], 90, "{case}: {called}");
            each_got_the_other(&called, &listened);
            for (side, stats) in [("caller", &called), ("listener", &listened)] {
                let fps = &stats["sent"]["at_peer"]["fps"];
                assert!(
                    fps.as_f64().is_some_and(|fps| fps > 0.0),
                    "{case}: the {side} heard no report from its peer: {stats}"
                );
            }
        }
    }
}

/// Both sides of a call got the other's pattern, whole.
fn each_got_the_other(called: &serde_json::Value, listened: &serde_json::Value) {
    assert_eq!(called["received"]["pattern_errors"], 0, "{called}");
    assert!(called["sent"]["frames"].as_u64().unwrap() > 0, "{called}");
    assert!(
        called["received"]["first_seq"].as_u64().unwrap() < 1_000_000,
        "the listener's pattern: {called}"
    );
    assert!(
        listened["received"]["frames"].as_u64().unwrap() > 0,
        "{listened}"
    );
    assert_eq!(listened["received"]["pattern_errors"], 0, "{listened}");
    assert!(
        listened["received"]["first_seq"].as_u64().unwrap() >= 1_000_000,
        "the caller's pattern: {listened}"
    );
}

#[test]
fn a_call_over_tls_carries_a_stream_each_way() {
    let home = Home::new();
    let args = [
        "--codec",
        "jpeg",
        "--stats",
        "json",
        "--verify-test-pattern",
        "--tls",
    ];
    let (called, listened) = call(&home, &args);
    assert_eq!(called["received"]["frames"], 40, "{called}");
    each_got_the_other(&called, &listened);

    // A plaintext caller at the TLS listener is told to add --tls.
    let listener = Serve::spawn_with(
        home.framewire(),
        &[
            &["chat", "--listen", "127.0.0.1:0", "--headless"][..],
            &args,
        ]
        .concat(),
    );
    let out = finish_view(
        home.framewire()
            .args(["chat", "--connect", &listener.addr, "--headless"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let line = failed_with(&out);
    assert!(
        line.ends_with("refused the call: it expects TLS: add --tls"),
        "{line}"
    );
}

#[test]
fn tls_across_real_namespaces_trusts_on_first_use() {
    let Some(bed) = Link::builder().rate_kbit(20_000).build_or_skip() else {
        return;
    };
    let home = Home::new();
    let listen = format!("{}:0", bed.a().addr());
    let serve = Serve::spawn_with(
        home.framewire_at(Some((&bed, Side::A))),
        &["serve", "--listen", &listen, "--codec", "jpeg", "--tls"],
    );
    let fp = fingerprint_of(&serve);
    let child = home
        .framewire_at(Some((&bed, Side::B)))
        .args(["view", "--headless", "--connect", &serve.addr, "--tls"])
        .args(["--frames", "30", "--stats", "json", "--verify-test-pattern"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let s = stats(&finish_view(child));
    assert_eq!(s["frames"], 30);
    assert_eq!(s["pattern_errors"], 0);
    assert_eq!(home.known_hosts(), format!("{} {fp}\n", serve.addr));
}

#[test]
fn a_peer_that_stalls_before_or_inside_the_tls_handshake_is_closed_at_the_deadline() {
    let home = Home::new();
    let (serve, _) = home.serve_tls("127.0.0.1:0", &["--handshake-timeout", "1s"]);
    for first in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let started = Instant::now();
        let mut s = TcpStream::connect(&serve.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(first).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "sent {got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let logged = serve.error_line("the stalled peer");
        assert!(
            logged.ends_with("rejected: sent no TLS handshake in time"),
            "{logged}"
        );
    }
}

/// `curl -sS -i` over HTTPS to `serve`'s `--http` port as `https://localhost:PORT{path}`,
/// trusting the kept certificate as its CA; returns the head and the body.
fn curl_https(home: &Home, port: &str, path: &str, args: &[&str]) -> (String, Vec<u8>) {
    let ca = home.config().join("framewire/tls-cert.pem");
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30", "--cacert", path_str(&ca)])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(args)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {path}: {}", stderr(&out));
    let at = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8_lossy(&out.stdout[..at]).into_owned();
    (head, out.stdout[at + 4..].to_vec())
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn serve_http_with_tls_is_https_with_the_same_certificate_and_plaintext_gets_400() {
    if !common::http::have("curl", "--version", "curl") {
        return;
    }
    let home = Home::new();
    let mut cmd = home.framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let serve = Serve::spawn_with(
        cmd,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--codec",
            "jpeg",
            "--tls",
        ],
    );
    fingerprint_of(&serve);
    let line = serve.line_starting("http on ");
    let addr = line
        .strip_prefix("http on https://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("http line {line:?}"))
        .to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();

    // The HTTPS port presents the kept certificate, the one whose fingerprint serve printed
    // (curl trusts that file as its CA and nothing else).
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (head, jpeg) = curl_https(&home, &port, "/snapshot", &["-H", &bearer]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");

    // Logging in over HTTPS gives a Secure cookie.
    let form = format!("token={TOKEN}");
    let (head, _) = curl_https(&home, &port, "/login", &["--data-urlencode", &form]);
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("Set-Cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Secure"),
        "{cookie}"
    );

    // Plain HTTP at the HTTPS port: a 400 saying so, and one log line.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("this port speaks HTTPS: use https://"),
        "{answer}"
    );
    let logged = serve.error_line("the plaintext request's line");
    assert!(
        logged.ends_with("rejected: plaintext HTTP at this TLS port: answered 400, use https://"),
        "{logged}"
    );
}

/// Datagrams a relay saw: (from the server, bytes), in arrival order.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(bool, Vec<u8>)>>>;

/// Every datagram between a viewer and a server, relayed (each of the viewer's sent twice: a
/// replay): a UDP socket and, on the same port number, a TCP listener that pipes the control
/// connection through.
struct Relay {
    addr: String,
    seen: Seen,
}

impl Relay {
    fn to(server: &str) -> Relay {
        use std::net::{TcpListener, UdpSocket};
        let server: std::net::SocketAddr = server.parse().unwrap();
        let (udp, tcp) = (0..32)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
                let tcp = TcpListener::bind(udp.local_addr().unwrap()).ok()?;
                Some((udp, tcp))
            })
            .expect("a UDP port whose TCP twin is free");
        let addr = udp.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(viewer) = conn else { return };
                let Ok(upstream) = TcpStream::connect(server) else {
                    return;
                };
                let (mut a, mut b) = (viewer.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(std::net::Shutdown::Write);
                });
                let (mut a, mut b) = (upstream, viewer);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        let seen = Seen::default();
        let record = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut viewer = None;
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let from_server = from == server;
                let to = if from_server { viewer } else { Some(server) };
                if !from_server {
                    viewer = Some(from);
                }
                record
                    .lock()
                    .unwrap()
                    .push((from_server, buf[..n].to_vec()));
                if let Some(to) = to {
                    let _ = udp.send_to(&buf[..n], to);
                    if !from_server {
                        let _ = udp.send_to(&buf[..n], to);
                    }
                }
            }
        });
        Relay { addr, seen }
    }

    fn take(&self) -> Vec<(bool, Vec<u8>)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

#[test]
fn udp_with_tls_seals_every_datagram_and_mixups_and_wrong_tokens_get_one_line() {
    let home = Home::new();
    let mut cmd = home.framewire();
    cmd.env("FRAMEWIRE_TOKEN", TOKEN);
    let serve = Serve::spawn_with(
        cmd,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--codec",
            "jpeg",
            "--tls",
            "--transport",
            "udp",
        ],
    );
    let fp = fingerprint_of(&serve);
    let addr = serve.addr.strip_prefix("udp://").unwrap().to_string();
    let relay = Relay::to(&addr);
    let mut serve = serve;
    let view = |at: &str, token: &str, args: &[&str]| {
        let child = home
            .framewire()
            .env("FRAMEWIRE_TOKEN", token)
            .args(["view", "--headless", "--transport", "udp", "--connect", at])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish_view(child)
    };
    let tls = ["--tls", "--tls-pin", &fp];
    let watched = stats(&view(
        &relay.addr,
        TOKEN,
        &[
            &tls[..],
            &["--frames", "10", "--stats", "json", "--verify-test-pattern"],
        ]
        .concat(),
    ));
    assert_eq!(watched["frames"], 10, "{watched}");
    assert_eq!(watched["pattern_errors"], 0, "{watched}");
    let seen = relay.take();
    let down: usize = seen.iter().filter(|(s, _)| *s).map(|(_, d)| d.len()).sum();
    assert!(
        down as u64 >= watched["bytes"].as_u64().unwrap(),
        "the frames came through the relay: {down} bytes, {watched}"
    );
    for (from_server, d) in &seen {
        assert_eq!(&d[..4], b"FWUS", "sealed (from the server: {from_server})");
        assert!(
            !d.windows(4).any(|w| w == b"FWUD"),
            "no plaintext datagram inside"
        );
    }

    // A wrong token is refused inside the seal, and the server sent that peer nothing larger
    // than a cookie.
    let relay = Relay::to(&addr);
    let line = failed_with(&view(&relay.addr, "a wrong guess at the token", &tls));
    assert_eq!(
        line,
        format!(
            "framewire: error: server {} refused the viewer: wrong token",
            relay.addr
        )
    );
    let seen = relay.take();
    assert!(seen.iter().any(|(s, _)| *s), "the server answered");
    for (from_server, d) in &seen {
        if *from_server {
            assert!(
                d.len() <= 64 + 40,
                "a {}-byte datagram to a refused peer",
                d.len()
            );
        }
    }

    // Mix-ups: no --tls at the sealed server; --tls at a plain UDP server; TCP at the control
    // port; a wrong pin.
    let line = failed_with(&view(&addr, TOKEN, &[]));
    assert_eq!(
        line,
        format!(
            "framewire: error: server {addr} refused the viewer: its datagrams are sealed: add --tls"
        )
    );
    let plain = Serve::spawn_with(
        home.framewire(),
        &["serve", "--listen", "127.0.0.1:0", "--transport", "udp"],
    );
    let plain_addr = plain.addr.strip_prefix("udp://").unwrap();
    let line = failed_with(&view(plain_addr, TOKEN, &tls));
    assert!(
        line.ends_with("is it started with --transport udp --tls?"),
        "{line}"
    );
    let line = failed_with(&home.view(&addr, &tls));
    assert!(
        line.ends_with("this port is a udp stream's TLS control port: add --transport udp"),
        "{line}"
    );
    let other = format!("sha256:{}", "0".repeat(64));
    let line = failed_with(&view(&addr, TOKEN, &["--tls", "--tls-pin", &other]));
    assert!(line.contains(&other), "{line}");

    // The relay's replays were dropped (and the viewer got every frame regardless).
    assert!(serve.stop().success());
    let drops = serve.line_starting("udp datagrams dropped: ");
    let replays: u64 = drops
        .strip_suffix(" not sealed or not opening")
        .and_then(|d| d.rsplit(", ").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no replays dropped: {drops}"));
    // At least the two hellos, a report and the end of the first viewer, each twice.
    assert!(replays >= 4, "{drops}");
}

#[test]
fn a_call_over_udp_with_tls_carries_a_stream_each_way_sealed() {
    let home = Home::new();
    let args = [
        "--codec",
        "jpeg",
        "--stats",
        "json",
        "--verify-test-pattern",
        "--tls",
        "--transport",
        "udp",
    ];
    let (called, listened) = call(&home, &args);
    assert_eq!(called["received"]["frames"], 40, "{called}");
    each_got_the_other(&called, &listened);
}
