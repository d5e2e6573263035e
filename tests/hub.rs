//! `framewire hub` and `serve --push` with the real binaries over loopback: three senders
//! pushing to one hub, each with its own figures; a hub killed and started again on its port,
//! which its sender finds by itself; the token both ways; and the refusals a user sees.

mod common;

use common::{Serve, WAIT, framewire};
use serde_json::Value;

/// `framewire hub --listen 127.0.0.1:0 ARGS`, whose first line is `listening on ADDR`.
fn hub(args: &[&str]) -> Serve {
    Serve::command_in(None, &[&["hub", "--listen", "127.0.0.1:0"], args].concat())
}

/// `framewire serve` on a free port pushing to `hub` as `name`, with `args`.
fn sender(hub: &str, name: &str, args: &[&str]) -> Serve {
    let head = [
        "--codec", "jpeg", "--size", "160x120", "--push", hub, "--name", name,
    ];
    Serve::start(&[&head[..], args].concat())
}

#[test]
fn three_senders_push_to_one_hub_and_each_has_its_figures() {
    let mut hub = hub(&["--frames", "90", "--stats", "json"]);
    let senders: Vec<_> = ["door", "garden", "garage"]
        .iter()
        .enumerate()
        .map(|(i, name)| sender(&hub.addr, name, &["--source", &format!("test:{}", i + 1)]))
        .collect();
    for s in &senders {
        s.line_starting("pushing to the hub ");
    }
    let status = common::wait_timeout(&mut hub.child, "the hub to take 90 frames");
    assert!(status.success());
    let mut joined = Vec::new();
    let mut stats = None;
    while let Ok(line) = hub.lines.recv_timeout(WAIT) {
        if let Some((name, _)) = line.split_once(" joined: ") {
            joined.push(name.to_string());
        }
        if line.starts_with('{') {
            stats = Some(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    joined.sort();
    assert_eq!(joined, ["door", "garage", "garden"]);
    let stats = stats.expect("--stats json");
    assert!(stats["frames"].as_u64().unwrap() >= 90);
    for (i, name) in ["door", "garden", "garage"].iter().enumerate() {
        let sender = &stats["senders"][name];
        assert_eq!(sender["codec"], "jpeg", "{name}: {stats}");
        assert_eq!(
            (sender["width"].as_u64(), sender["height"].as_u64()),
            (Some(160), Some(120))
        );
        // Each stream is its own sender's: test:N numbers its frames from (N-1) x 1000000.
        let first = sender["first_seq"].as_u64().unwrap();
        assert_eq!(first / 1_000_000, i as u64, "{name}'s frames: {sender}");
    }
}

#[test]
fn a_sender_finds_its_hub_again_after_the_hub_restarts_on_its_port() {
    let first = hub(&[]);
    let addr = first.addr.clone();
    let pushing = sender(&addr, "door", &[]);
    pushing.line_starting("pushing to the hub ");
    first.line_starting("door joined: ");
    drop(first); // killed: no goodbye
    let lost = pushing.error_line("the sender's note of the lost hub");
    assert!(
        lost.contains("--push as door: ") && lost.contains("dialing again"),
        "{lost}"
    );
    let second = Serve::command_in(None, &["hub", "--listen", &addr]);
    let again = pushing.line_starting("pushing to the hub ");
    assert!(again.ends_with("as door again"), "{again}");
    second.line_starting("door joined: ");
}

#[test]
fn the_token_is_proved_both_ways_and_a_wrong_one_stops_the_push_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, token).unwrap();
        path.to_string_lossy().into_owned()
    };
    let right = write("right", "the-right-token-of-32-bytes-long!");
    let wrong = write("wrong", "a-wrong-token-but-long-enough-too");
    let hub = hub(&["--token-file", &right]);
    let good = sender(&hub.addr, "good", &["--token-file", &right]);
    good.line_starting("pushing to the hub ");
    hub.line_starting("good joined: ");
    let bad = sender(&hub.addr, "bad", &["--token-file", &wrong]);
    let refused = bad.error_line("the refusal");
    assert!(
        refused.starts_with("framewire: error: --push as bad: ")
            && refused.contains("wrong token")
            && refused.ends_with("no longer pushing"),
        "{refused}"
    );
    let none = sender(&hub.addr, "none", &[]);
    let refused = none.error_line("the refusal");
    assert!(refused.contains("token"), "{refused}");
}

#[test]
fn a_viewer_of_a_hub_and_a_push_to_a_server_are_told_what_they_reached() {
    let hub = hub(&[]);
    let out = framewire()
        .args([
            "view",
            "--connect",
            &hub.addr,
            "--headless",
            "--no-reconnect",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("this is a hub"), "{err}");

    let server = Serve::start(&["--codec", "jpeg"]);
    let pusher = sender(&server.addr, "lost", &[]);
    let refused = pusher.error_line("the server's refusal");
    assert!(refused.contains("not a hub"), "{refused}");

    let out = framewire()
        .args(["serve", "--push", &hub.addr, "--name", "two words"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--name \"two words\": ") && err.contains("letters, digits"),
        "{err}"
    );
}

#[test]
fn a_push_over_tls_trusts_the_hub_on_first_use_and_refuses_it_changed() {
    let home = tempfile::tempdir().unwrap();
    let with_home = |config: &str| {
        let mut cmd = framewire();
        cmd.env("XDG_CONFIG_HOME", home.path().join(config))
            .env_remove("FRAMEWIRE_TOKEN");
        cmd
    };
    let hub = Serve::spawn_with(
        with_home("hub"),
        &["hub", "--listen", "127.0.0.1:0", "--tls"],
    );
    let fingerprint = hub.line_starting("tls fingerprint sha256:");
    let addr = hub.addr.clone();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--codec",
        "jpeg",
        "--size",
        "160x120",
    ];
    let push = ["--push", &addr, "--name", "secure", "--push-tls"];
    let sender = Serve::spawn_with(with_home("sender"), &[&args[..], &push[..]].concat());
    sender.line_starting("pushing to the hub ");
    hub.line_starting("secure joined: ");
    let known = std::fs::read_to_string(home.path().join("sender/framewire/known_hosts")).unwrap();
    assert!(
        known.contains(fingerprint.trim_start_matches("tls fingerprint ")),
        "{known}"
    );
    drop(sender);
    // A plain push to the TLS port is not a sender the hub takes.
    let plain = Serve::spawn_with(
        with_home("sender"),
        &[&args[..], &["--push", &addr, "--name", "plain"][..]].concat(),
    );
    let said = plain.error_line("the plain push's failure");
    assert!(said.contains("--push as plain: "), "{said}");
    drop(plain);
    // Another hub on that address (another certificate): the sender refuses it.
    drop(hub);
    let other = Serve::spawn_with(with_home("other"), &["hub", "--listen", &addr, "--tls"]);
    other.line_starting("tls fingerprint ");
    let sender = Serve::spawn_with(with_home("sender"), &[&args[..], &push[..]].concat());
    let refused = sender.error_line("the changed certificate's refusal");
    assert!(refused.contains("--push as secure: "), "{refused}");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}
