//! The testbed over real namespaces and real sockets: the configured rate, round-trip time and
//! loss are what a TCP or UDP endpoint sees, and everything a testbed made is gone after it drops.
//!
//! Each test skips with a printed reason where namespaces cannot be made (not root), unless
//! `FRAMEWIRE_REQUIRE_ALL=1` makes that a failure.

// Tests report skips and measured figures on stderr.
#![allow(clippy::print_stderr)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use framewire_netbed::{Link, Side, Testbed, available_or_skip};

/// The longest any single wait may take before the test fails naming what it waited for.
const WAIT: Duration = Duration::from_secs(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Runs one socket call again when a signal interrupted it (EINTR), as `read_exact` does.
fn retry_interrupted<T>(mut call: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// A TCP connection from A to B: (A's end, B's end, how long connecting took).
fn tcp_pair(bed: &Testbed) -> (TcpStream, TcpStream, Duration) {
    let b = bed.b().addr();
    let listener = bed
        .run_in(Side::B, || TcpListener::bind((b, 0)))
        .unwrap()
        .expect("listen on B");
    let to = SocketAddr::from((b, listener.local_addr().unwrap().port()));
    let start = Instant::now();
    let client = bed
        .run_in(Side::A, || TcpStream::connect_timeout(&to, WAIT))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect from A to {to} within {WAIT:?}: {e}"));
    let connected = start.elapsed();
    // The handshake is done, so the connection is already in the accept queue.
    let (server, _) = retry_interrupted(|| listener.accept()).expect("accept A's connection on B");
    for end in [&client, &server] {
        end.set_read_timeout(Some(WAIT)).unwrap();
        end.set_write_timeout(Some(WAIT)).unwrap();
    }
    (client, server, connected)
}

/// Sends `total` bytes from A to B over TCP and returns B's goodput in kbit/s, measured after the
/// first `warmup` bytes (slow start) until the last byte.
fn bulk_goodput_kbit(bed: &Testbed, total: usize, warmup: usize) -> f64 {
    let (mut a, mut b, _) = tcp_pair(bed);
    let sender = std::thread::spawn(move || {
        a.write_all(&vec![0x5a; total])
            .expect("write the bulk transfer from A");
        a.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut buf = vec![0; 64 * 1024];
    let (mut received, mut warm) = (0, None);
    while received < total {
        let n = retry_interrupted(|| b.read(&mut buf))
            .unwrap_or_else(|e| panic!("read the bulk transfer on B after {received} bytes: {e}"));
        assert!(n > 0, "A closed after {received} of {total} bytes");
        received += n;
        if warm.is_none() && received >= warmup {
            warm = Some((Instant::now(), received));
        }
    }
    let (since, at) = warm.unwrap();
    let elapsed = since.elapsed();
    sender.join().expect("the sending thread");
    (total - at) as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0
}

#[test]
fn tcp_bulk_transfer_reaches_the_configured_rate() {
    const KBIT: u32 = 8_000;
    for rtt in [Duration::ZERO, ms(40)] {
        let Some(bed) = Link::builder()
            .rate_kbit_toward(Side::B, KBIT)
            .rtt(rtt)
            .build_or_skip()
        else {
            return;
        };
        // About 2 s at 1 MB/s, timed after the first 256 KiB.
        let kbit = bulk_goodput_kbit(&bed, 2_000_000, 256 * 1024);
        let ratio = kbit / f64::from(KBIT);
        eprintln!(
            "{}: TCP goodput {kbit:.0} kbit/s, {ratio:.2} of the rate",
            bed.link()
        );
        // Headers (Ethernet, IP, TCP: 66 of every 1514 bytes) come out of the rate too.
        assert!(
            (0.6..=1.1).contains(&ratio),
            "goodput {kbit:.0} kbit/s through a {KBIT} kbit/s link ({})",
            bed.link()
        );
    }
}

#[test]
fn a_rate_changed_on_a_live_testbed_takes_effect() {
    let Some(mut bed) = Link::builder()
        .rate_kbit_toward(Side::B, 2_000)
        .build_or_skip()
    else {
        return;
    };
    let narrow = bulk_goodput_kbit(&bed, 500_000, 64 * 1024);
    bed.set_rate_toward(Side::B, Some(8_000))
        .expect("widen the link to 8000 kbit/s");
    assert_eq!(bed.link().toward(Side::B).rate_kbit, Some(8_000));
    let wide = bulk_goodput_kbit(&bed, 2_000_000, 256 * 1024);
    bed.set_rate_toward(Side::B, None).expect("lift the limit");
    let unlimited = bulk_goodput_kbit(&bed, 4_000_000, 256 * 1024);
    eprintln!("goodput {narrow:.0}, then {wide:.0}, then {unlimited:.0} kbit/s");
    assert!(
        (1_200.0..=2_200.0).contains(&narrow),
        "2000 kbit/s link: {narrow:.0}"
    );
    assert!(
        (4_800.0..=8_800.0).contains(&wide),
        "widened to 8000 kbit/s: {wide:.0}"
    );
    assert!(unlimited > 12_000.0, "no limit: {unlimited:.0}");
}

#[test]
fn tcp_connect_and_echo_each_take_at_least_the_rtt() {
    for rtt in [ms(40), ms(100)] {
        let Some(bed) = Link::builder().rtt(rtt).build_or_skip() else {
            return;
        };
        let (mut a, mut b, connected) = tcp_pair(&bed);
        let start = Instant::now();
        a.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        b.read_exact(&mut got).expect("read A's ping on B");
        b.write_all(&got).unwrap();
        a.read_exact(&mut got).expect("read B's echo on A");
        let echoed = start.elapsed();
        assert_eq!(&got, b"ping");
        eprintln!("rtt {rtt:?}: connect took {connected:?}, echo {echoed:?}");
        for (what, took) in [("connect", connected), ("echo", echoed)] {
            assert!(
                took >= rtt,
                "{what} took {took:?}, less than the rtt {rtt:?}"
            );
            assert!(
                took < rtt + ms(500),
                "{what} took {took:?}, far more than the rtt {rtt:?}"
            );
        }
    }
}

/// Datagram kinds of [`send_rounds`]: data, or the end of a round.
const DATA: u8 = 0;
const END: u8 = 1;

/// Sends `rounds` rounds of `per_round` datagrams from `from` to `to`, each round followed by 10
/// end markers, and returns how many data datagrams `to` received. The link never reorders, so
/// when a round's first end marker arrives, every datagram of the round that survived is there;
/// rounds keep `to`'s receive buffer far from full.
fn send_rounds(from: &UdpSocket, to: &UdpSocket, rounds: u8, per_round: u16) -> usize {
    to.set_read_timeout(Some(WAIT)).unwrap();
    let dest = to.local_addr().unwrap();
    let mut received = 0;
    let mut buf = [0; 64];
    for round in 0..rounds {
        for seq in 0..per_round {
            let mut datagram = [0; 64];
            datagram[..4].copy_from_slice(&[DATA, round, (seq >> 8) as u8, seq as u8]);
            from.send_to(&datagram, dest).expect("send a datagram");
        }
        for _ in 0..10 {
            from.send_to(&[END, round], dest)
                .expect("send an end marker");
        }
        loop {
            let n = retry_interrupted(|| to.recv(&mut buf)).unwrap_or_else(|e| {
                panic!("wait for the end marker of round {round} (10 sent): {e}")
            });
            match (buf[0], buf[1]) {
                (DATA, r) if r == round => received += 1,
                (END, r) if r == round => break,
                // A late end marker of an earlier round.
                (END, _) => {}
                other => panic!("unexpected datagram {other:?} in round {round}"),
            }
            assert!(n > 1);
        }
    }
    received
}

/// A UDP socket on each side, bound to its address.
fn udp_pair(bed: &Testbed) -> (UdpSocket, UdpSocket) {
    let bind = |side: Side| {
        let addr = bed.endpoint(side).addr();
        bed.run_in(side, || UdpSocket::bind((addr, 0)))
            .unwrap()
            .unwrap_or_else(|e| panic!("bind a UDP socket on {side}: {e}"))
    };
    (bind(Side::A), bind(Side::B))
}

#[test]
fn udp_loses_about_the_configured_share_in_that_direction_only() {
    let Some(bed) = Link::builder()
        .loss_percent_toward(Side::B, 30)
        .build_or_skip()
    else {
        return;
    };
    let (a, b) = udp_pair(&bed);

    let sent = 10 * 100;
    let to_b = send_rounds(&a, &b, 10, 100);
    let lost = 1.0 - to_b as f64 / f64::from(sent);
    eprintln!(
        "30% loss toward B: {to_b} of {sent} datagrams arrived ({:.1}% lost)",
        lost * 100.0
    );
    assert!(
        (0.10..=0.50).contains(&lost),
        "{to_b} of {sent} datagrams arrived through 30% loss"
    );

    let to_a = send_rounds(&b, &a, 3, 100);
    assert_eq!(to_a, 300, "datagrams toward A (no loss configured)");
}

#[test]
fn the_delay_queue_drops_beyond_its_limit() {
    let Some(bed) = Link::builder()
        .delay_toward(Side::B, ms(100))
        .queue_limit_packets(10)
        .build_or_skip()
    else {
        return;
    };
    let (a, b) = udp_pair(&bed);
    b.set_read_timeout(Some(WAIT)).unwrap();
    let dest = b.local_addr().unwrap();
    // 100 datagrams arrive at the forwarder well within the 100 ms the first is held.
    for seq in 0..100u8 {
        a.send_to(&[DATA, seq], dest).unwrap();
    }
    let mut buf = [0; 8];
    retry_interrupted(|| b.recv(&mut buf)).expect("the first delayed datagram on B");
    let mut seqs = vec![buf[1]];
    // The queue has drained (its packets were due together); the end markers find room.
    for _ in 0..10 {
        a.send_to(&[END, 0], dest).unwrap();
    }
    loop {
        retry_interrupted(|| b.recv(&mut buf)).expect("the end marker on B");
        if buf[0] == END {
            break;
        }
        seqs.push(buf[1]);
    }
    eprintln!(
        "queue limit 10: {} of 100 datagrams passed: {seqs:?}",
        seqs.len()
    );
    assert!(
        (1..=10).contains(&seqs.len()),
        "{} datagrams passed a 10-packet queue",
        seqs.len()
    );
    assert!(seqs.is_sorted(), "reordered: {seqs:?}");
}

#[test]
fn namespaces_are_gone_after_the_testbed_drops_also_after_a_panic() {
    if available_or_skip().is_none() {
        return;
    }
    let bed = Link::builder().rtt(ms(10)).rate_kbit(1000).loss_percent(1);
    let bed = bed.build().expect("build a testbed");
    let names: Vec<String> = bed.netns_names().map(String::from).to_vec();
    assert!(names.iter().all(|n| netns_exists(n)), "{names:?}");
    drop(bed);
    let left: Vec<_> = names.iter().filter(|n| netns_exists(n)).collect();
    assert!(left.is_empty(), "left after drop: {left:?}");

    let names = Mutex::new(Vec::new());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let bed = Link::builder()
            .rtt(ms(10))
            .build()
            .expect("build a testbed");
        *names.lock().unwrap() = bed.netns_names().map(String::from).to_vec();
        panic!("a test fails while its testbed is up");
    }));
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 3);
    let left: Vec<_> = names.iter().filter(|n| netns_exists(n)).collect();
    assert!(left.is_empty(), "left after a panic: {left:?}");
}

#[test]
fn namespaces_of_a_dead_process_are_removed_by_the_next_build() {
    if available_or_skip().is_none() {
        return;
    }
    let mut child = Command::new("true").spawn().expect("run `true`");
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("fwnb-{dead}-0badcafe-0-a");
    // Same pid as this live process, another token: not stale.
    let alive = format!("fwnb-{}-0badcafe-0-a", std::process::id());
    for name in [&stale, &alive] {
        let status = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("run ip netns add");
        assert!(status.success(), "ip netns add {name}");
    }
    let bed = Link::builder().build().expect("build a testbed");
    let (stale_left, alive_left) = (netns_exists(&stale), netns_exists(&alive));
    drop(bed);
    for name in [&alive, &stale] {
        // The stale one is normally gone already.
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
    }
    assert!(!stale_left, "{stale} (pid {dead} is gone) was not removed");
    assert!(alive_left, "{alive} (this process) was removed");
}

#[test]
fn two_testbeds_at_once_do_not_collide() {
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| Link::builder().rtt(ms(20)).build_or_skip());
        let second = s.spawn(|| Link::builder().rate_kbit(2000).build_or_skip());
        (first.join().unwrap(), second.join().unwrap())
    });
    let (Some(first), Some(second)) = (first, second) else {
        return;
    };
    let mut all: Vec<_> = first
        .netns_names()
        .into_iter()
        .chain(second.netns_names())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "{all:?}");

    // The same addresses, two worlds: B of the first listens; A of the second finds no one.
    let b = first.b().addr();
    let listener = first
        .run_in(Side::B, || TcpListener::bind((b, 0)))
        .unwrap()
        .unwrap();
    let to = SocketAddr::from((b, listener.local_addr().unwrap().port()));
    let err = second
        .run_in(Side::A, || TcpStream::connect_timeout(&to, WAIT))
        .unwrap()
        .expect_err("the second testbed reaches the first one's listener");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    first
        .run_in(Side::A, || TcpStream::connect_timeout(&to, WAIT))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect within the first testbed to {to}: {e}"));
}

#[test]
fn commands_run_inside_a_side() {
    let Some(bed) = Link::builder().build_or_skip() else {
        return;
    };
    for side in [Side::A, Side::B] {
        let out = bed
            .command_in(side, "ip")
            .args(["-brief", "-4", "address", "show"])
            .output()
            .expect("run ip inside the namespace");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let own = bed.endpoint(side).addr().to_string();
        let other = bed.endpoint(side.other()).addr().to_string();
        assert!(text.contains(&own), "{side} has no {own}: {text}");
        assert!(!text.contains(&other), "{side} has {other}: {text}");
    }
}
