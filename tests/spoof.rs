//! Spoofed source addresses against `serve --transport udp`, with a raw socket (as root) that
//! writes its own IP and UDP headers on loopback: the attacks of a host that cannot see the
//! stream. Under every ordering of a victim's join, reports, end and silence, the bytes that
//! reach the victim while the attacker sends are at most the bytes it sent (amplification at
//! most x1, printed); and a watching `view` loses no frame to forged ends, rejoins, reports,
//! starts and fragments in either direction. Needs root for the raw socket; skips with the
//! reason otherwise, fails under `FRAMEWIRE_REQUIRE_ALL=1`.
#![allow(clippy::print_stderr)] // each ordering prints the amplification it measured, and a skip why

mod common;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use framewire_wire::datagram::{self, Datagram, HelloMsg, ReportMsg};
use framewire_wire::session::{Proof, SessionKey};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sendto, socket,
};

use common::{Serve, finish_view, spawn_view, stats};

/// A raw socket that sends UDP datagrams from any source address.
struct Spoofer {
    fd: OwnedFd,
    /// UDP payload bytes sent.
    sent: AtomicU64,
}

impl Spoofer {
    /// `None` (having said why) without the right to open a raw socket.
    fn open() -> Option<Spoofer> {
        match socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::Raw,
        ) {
            Ok(fd) => Some(Spoofer {
                fd,
                sent: AtomicU64::new(0),
            }),
            Err(e) => {
                let why = format!("a raw socket needs root: {e}");
                if std::env::var("FRAMEWIRE_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0") {
                    panic!("{why} (FRAMEWIRE_REQUIRE_ALL is set)");
                }
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    /// Sends `payload` from `from` to `to`. IPPROTO_RAW: the header is ours; the kernel fills
    /// in the IP checksum, length and id; a UDP checksum of 0 is none (IPv4).
    fn send(&self, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
        let udp_len = 8 + payload.len();
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p.extend_from_slice(&from.ip().octets());
        p.extend_from_slice(&to.ip().octets());
        p.extend_from_slice(&from.port().to_be_bytes());
        p.extend_from_slice(&to.port().to_be_bytes());
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        sendto(
            self.fd.as_raw_fd(),
            &p,
            &SockaddrIn::from(to),
            MsgFlags::empty(),
        )
        .expect("a spoofed datagram");
        self.sent.fetch_add(payload.len() as u64, Ordering::Relaxed);
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("an IPv4 address"),
    }
}

fn serve_udp() -> (Serve, SocketAddrV4) {
    let serve = Serve::start(&[
        "--transport",
        "udp",
        "--codec",
        "jpeg",
        "--size",
        "320x240",
        "--fps",
        "30",
        "--idle-timeout",
        "1s",
    ]);
    let addr = serve.addr.trim_start_matches("udp://").parse().unwrap();
    (serve, v4(addr))
}

fn report(session: &Proof, last_sent: u32, receipt: Proof) -> Vec<u8> {
    let mut b = Vec::new();
    ReportMsg {
        session: *session,
        last_sent,
        receipt,
        ..ReportMsg::default()
    }
    .write(&mut b);
    b
}

/// A viewer played by hand on a real socket: every datagram it gets is counted, and the newest
/// frame's tag kept for its receipts.
struct Victim {
    socket: Arc<UdpSocket>,
    addr: SocketAddrV4,
    server: SocketAddrV4,
    /// Its join (the hello with the cookie), as an attacker on the path would record it.
    join: Vec<u8>,
    key: Option<SessionKey>,
    got: Arc<AtomicU64>,
    newest: Arc<Mutex<(u32, Proof)>>,
    /// The session id of a probe report whose rejoin ends the counting.
    probe: Arc<Mutex<Option<Proof>>>,
    counting: Option<thread::JoinHandle<()>>,
}

impl Victim {
    fn bind(server: SocketAddrV4) -> Victim {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(server).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Victim {
            addr: v4(socket.local_addr().unwrap()),
            socket: Arc::new(socket),
            server,
            join: Vec::new(),
            key: None,
            got: Arc::default(),
            newest: Arc::default(),
            probe: Arc::default(),
            counting: None,
        }
    }

    /// Joins as the protocol says, up to the start; the counting starts after it.
    fn join(&mut self) {
        let mut hello = HelloMsg::default();
        let mut b = Vec::new();
        let mut buf = vec![0u8; 65_536];
        hello.write(&mut b);
        self.socket.send(&b).unwrap();
        let n = self.socket.recv(&mut buf).expect("a cookie");
        let Ok(Datagram::Cookie(c)) = datagram::parse(&buf[..n], 0) else {
            panic!("not a cookie: {:?}", &buf[..n]);
        };
        hello.cookie = c.cookie;
        hello.write(&mut self.join);
        self.socket.send(&self.join).unwrap();
        let n = self.socket.recv(&mut buf).expect("a start");
        let Ok(Datagram::Start(s)) = datagram::parse(&buf[..n], 0) else {
            panic!("not a start: {:?}", &buf[..n]);
        };
        self.key = Some(SessionKey::from_start(s.key, &s.check, &hello.cookie).expect("checked"));
        self.count();
    }

    fn id(&self) -> Proof {
        self.key.as_ref().expect("joined").id()
    }

    /// Counts every datagram from here on, until the probe's rejoin.
    fn count(&mut self) {
        let (socket, got, newest, probe) = (
            Arc::clone(&self.socket),
            Arc::clone(&self.got),
            Arc::clone(&self.newest),
            Arc::clone(&self.probe),
        );
        self.counting = Some(thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                let n = socket
                    .recv(&mut buf)
                    .expect("the probe's rejoin within 5 s");
                got.fetch_add(n as u64, Ordering::SeqCst);
                match datagram::parse(&buf[..n], 1 << 24) {
                    Ok(Datagram::Fragment(f)) => {
                        let mut newest = newest.lock().unwrap();
                        if f.sent > newest.0 {
                            *newest = (f.sent, f.tag);
                        }
                    }
                    Ok(Datagram::Rejoin(who)) if Some(who) == *probe.lock().unwrap() => {
                        got.fetch_sub(n as u64, Ordering::SeqCst);
                        return;
                    }
                    _ => {}
                }
            }
        }));
    }

    /// Reports the newest frame seen, with its receipt, as a real viewer does.
    fn report(&self) {
        let (sent, tag) = *self.newest.lock().unwrap();
        self.socket.send(&report(&self.id(), sent, tag)).unwrap();
    }

    fn frames_seen(&self) -> u32 {
        self.newest.lock().unwrap().0
    }

    /// Once the server has handled everything sent before (it answers a report of an unknown
    /// session with a rejoin, in order), stops counting: the bytes got, the probe's excluded.
    fn finish(mut self) -> u64 {
        let id = [0x5a; 8];
        *self.probe.lock().unwrap() = Some(id);
        if self.counting.is_none() {
            self.count();
        }
        self.socket.send(&report(&id, 0, [0; 8])).unwrap();
        self.counting.take().unwrap().join().unwrap();
        self.got.load(Ordering::SeqCst)
    }
}

/// Everything an attacker that cannot see the stream sends as `victim`, once: hellos without
/// and with a guessed cookie, reports without the id, with the id (as if it saw the viewer's
/// reports) but guessed receipts, ends, and the victim's recorded join (`join`, when given).
fn spoof_round(spoofer: &Spoofer, victim: &Victim, id: Option<Proof>, round: u32) {
    let (from, to) = (victim.addr, victim.server);
    let mut b = Vec::new();
    HelloMsg::default().write(&mut b);
    spoofer.send(from, to, &b);
    HelloMsg {
        cookie: [round as u8; 16],
        ..HelloMsg::default()
    }
    .write(&mut b);
    spoofer.send(from, to, &b);
    spoofer.send(from, to, &report(&[round as u8; 8], round, [1; 8]));
    let guessed = [(round % 251) as u8; 8];
    if let Some(id) = id {
        spoofer.send(from, to, &report(&id, round, guessed));
        spoofer.send(from, to, &report(&id, victim.frames_seen(), guessed));
    }
    datagram::write_end(&guessed, None, &mut b);
    spoofer.send(from, to, &b);
    if !victim.join.is_empty() {
        spoofer.send(from, to, &victim.join);
    }
}

/// What the victim gets in `rounds` of spoofing: (victim bytes, spoofed bytes). A replayed
/// join makes a viewer that waits for a report of its session; once the server has let it go
/// (`serve` says so), the probe counts everything.
fn spoof_for(
    spoofer: &Spoofer,
    victim: Victim,
    id: Option<Proof>,
    rounds: u32,
    serve: Option<&Serve>,
) -> (u64, u64) {
    let before = (
        victim.got.load(Ordering::SeqCst),
        spoofer.sent.load(Ordering::SeqCst),
    );
    for round in 0..rounds {
        spoof_round(spoofer, &victim, id, round);
        // Pacing, so that the server's socket buffer holds every round.
        thread::sleep(Duration::from_millis(2));
    }
    if let Some(serve) = serve {
        let left = serve.line_containing("left after");
        assert!(left.contains("no report for 1s"), "{left}");
    }
    let got = victim.finish() - before.0;
    (got, spoofer.sent.load(Ordering::SeqCst) - before.1)
}

fn at_most_once(ordering: &str, (got, sent): (u64, u64)) {
    eprintln!(
        "amplification, {ordering}: the victim got {got} bytes for {sent} spoofed: x{:.3}",
        got as f64 / sent as f64
    );
    assert!(
        got <= sent,
        "{ordering}: {got} bytes reached the victim for {sent} spoofed"
    );
}

#[test]
fn a_spoofer_gets_at_most_what_it_sent_to_an_address_that_never_joined() {
    let Some(spoofer) = Spoofer::open() else {
        return;
    };
    let (_serve, server) = serve_udp();
    let mut victim = Victim::bind(server);
    victim.count();
    at_most_once("never joined", spoof_for(&spoofer, victim, None, 300, None));
}

/// A victim that joined and watched; then `leave` (an end) or silence. The spoofer, which even
/// knows the session id, cannot keep the stream flowing, and after the server let the viewer
/// go, replaying the victim's join gets a start and no frame.
fn after_a_join(leave: bool) {
    let Some(spoofer) = Spoofer::open() else {
        return;
    };
    let (serve, server) = serve_udp();
    let mut victim = Victim::bind(server);
    victim.join();
    let id = victim.id();
    serve.line_containing("connected");
    // Watch with receipts until frames flow.
    while victim.frames_seen() < 15 {
        victim.report();
        thread::sleep(Duration::from_millis(100));
    }
    if leave {
        let mut b = Vec::new();
        datagram::write_end(&id, None, &mut b);
        victim.socket.send(&b).unwrap();
    }
    // Spoof until the server lets the viewer go: it must, whatever the spoofer says.
    let stop = Arc::new(AtomicBool::new(false));
    let left = thread::scope(|s| {
        s.spawn(|| {
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                spoof_round(&spoofer, &victim, Some(id), round);
                round += 1;
                thread::sleep(Duration::from_millis(5));
            }
        });
        let left = serve.line_containing("left after");
        stop.store(true, Ordering::SeqCst);
        left
    });
    if leave {
        assert!(!left.contains("no report"), "{left}");
    } else {
        assert!(left.contains("no report for 1s"), "{left}");
    }
    let ordering = if leave {
        "joined, watched, left"
    } else {
        "joined, watched, went silent"
    };
    // Fewer rounds than the idle timeout lasts: one replayed join's viewer at a time.
    let measured = spoof_for(&spoofer, victim, Some(id), 150, Some(&serve));
    at_most_once(ordering, measured);
}

#[test]
fn a_spoofer_cannot_keep_a_silent_viewers_stream_and_gets_at_most_what_it_sent() {
    after_a_join(false);
}

#[test]
fn a_spoofer_cannot_revive_a_viewer_that_left_and_gets_at_most_what_it_sent() {
    after_a_join(true);
}

#[test]
fn forged_datagrams_both_ways_cost_a_watching_viewer_nothing() {
    let Some(spoofer) = Spoofer::open() else {
        return;
    };
    let (mut serve, server) = serve_udp();
    let watcher = spawn_view(&[
        "--transport",
        "udp",
        "--headless",
        "--connect",
        &server.to_string(),
        "--frames",
        "120",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]);
    // `viewer 127.0.0.1:PORT connected (1 viewer) on ...`
    let line = serve.line_containing("connected");
    let viewer: SocketAddrV4 = line
        .split_whitespace()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no viewer address in {line:?}"));
    let done = AtomicBool::new(false);
    let out = thread::scope(|s| {
        s.spawn(|| {
            let mut b = Vec::new();
            let mut round = 0u32;
            while !done.load(Ordering::SeqCst) {
                let guess = [(round % 251) as u8; 8];
                // To the viewer, as the server: ends, a rejoin, a peer report, a start, and
                // fragments whose frame number is the largest there is or the next one.
                for who in [[0; 8], guess] {
                    datagram::write_end(&who, Some("forged"), &mut b);
                    spoofer.send(server, viewer, &b);
                }
                datagram::write_rejoin(&guess, &mut b);
                spoofer.send(server, viewer, &b);
                let fake = framewire_core::PeerReport {
                    fps: 1.0,
                    latency: None,
                };
                datagram::write_peer_report(&guess, &fake, &mut b);
                spoofer.send(server, viewer, &b);
                for sent in [u32::MAX, round + 1, round + 2] {
                    let f = datagram::Fragment {
                        seq: u64::from(sent),
                        capture_us: 1,
                        sent,
                        frame_len: 100,
                        offset: 0,
                        index: 0,
                        count: 1,
                        fec: 0,
                        delta: false,
                        tag: guess,
                        data: &[7; 100],
                    };
                    datagram::write_fragment(&f, &mut b);
                    spoofer.send(server, viewer, &b);
                }
                // To the server, as the viewer: an end and a report without its id.
                datagram::write_end(&guess, None, &mut b);
                spoofer.send(viewer, server, &b);
                spoofer.send(viewer, server, &report(&guess, round, guess));
                round += 1;
                thread::sleep(Duration::from_millis(5));
            }
        });
        let out = finish_view(watcher);
        done.store(true, Ordering::SeqCst);
        out
    });
    let s = stats(&out);
    assert_eq!(s["frames"], 120, "{s}");
    assert_eq!(s["pattern_errors"], 0, "{s}");
    assert_eq!(s["reconnects"], 0, "{s}");
    assert!(s["datagrams_forged"].as_u64().unwrap() > 0, "{s}");
    assert!(serve.stop().success());
    let drops = serve.line_starting("udp datagrams dropped: ");
    assert!(drops.contains("without their session's id"), "{drops}");
}
