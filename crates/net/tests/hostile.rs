//! Many viewers and hostile peers against one server on 127.0.0.1:0: a stalled viewer, a
//! slowloris, a flood of idle connections and thousands of connect/close cycles cost the good
//! viewers nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Ladder, Packet, PixelFormat, Received, Rendition, Request};
use framewire_net::{Client, ClientConfig, Fanout, Server, ServerConfig, ServerEvent};
use framewire_wire::{HANDSHAKE_LEN, Hello};

const WAIT: Duration = Duration::from_secs(30);

fn start(config: ServerConfig) -> (Arc<Fanout>, Receiver<ServerEvent>) {
    let (tx, rx) = mpsc::channel();
    let ladder = Ladder::single(Rendition::new(
        CodecKind::Jpeg,
        640,
        480,
        PixelFormat::Rgb8,
        80,
    ));
    let server = Server::bind("127.0.0.1:0", Arc::new(ladder), 30.0, config, move |e| {
        let _ = tx.send(e);
    })
    .expect("bind 127.0.0.1:0");
    (Arc::new(server), rx)
}

fn event(rx: &Receiver<ServerEvent>, what: &str) -> ServerEvent {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no server event within {WAIT:?} while waiting for {what}"))
}

/// Publishes `count` frames of `len` bytes at `fps`, on a schedule that does not drift.
fn publish_paced(server: &Fanout, count: u64, len: usize, fps: f64) {
    let start = Instant::now();
    for seq in 0..count {
        let due = start + Duration::from_secs_f64(seq as f64 / fps);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        server.publish(&[Arc::new(Packet {
            keyframe: true,
            seq,
            capture_us: 0,
            rendition: 0,
            payload: vec![seq as u8; len],
        })]);
    }
}

/// A viewer thread that counts frames until the stream ends.
fn counting_viewer(addr: SocketAddr) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut client =
            Client::connect(addr, Request::default(), ClientConfig::default()).expect("connect");
        let mut frames = 0;
        let mut packet = Packet::default();
        loop {
            match client.recv(&mut packet) {
                Ok(Received::Packet { .. }) => frames += 1,
                Ok(Received::End { reason: None }) => return frames,
                other => panic!("viewer got {other:?}"),
            }
        }
    })
}

#[test]
fn fifty_viewers_at_30_fps_get_95_percent_while_another_is_stalled() {
    const VIEWERS: usize = 50;
    const FRAMES: u64 = 120;
    let config = ServerConfig {
        write_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    let addr = server.local_addr();

    // The stalled viewer: says hello, then never reads, so its socket fills up.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&Hello::default().to_bytes()).unwrap();
    let stalled_addr = stalled.local_addr().unwrap();
    event(&rx, "the stalled viewer to join");

    let viewers: Vec<_> = (0..VIEWERS).map(|_| counting_viewer(addr)).collect();
    for i in 0..VIEWERS {
        event(&rx, &format!("viewer {i} to join"));
    }
    // 100 KB frames: 12 MB in all, more than a loopback socket buffers for the stalled one.
    publish_paced(&server, FRAMES, 100_000, 30.0);
    server.shutdown();

    for (i, v) in viewers.into_iter().enumerate() {
        let got = v.join().unwrap();
        assert!(
            got as f64 >= 0.95 * FRAMES as f64,
            "viewer {i} got {got} of {FRAMES} frames"
        );
    }
    let mut stalled_left = None;
    while let Ok(e) = rx.try_recv() {
        if let ServerEvent::Left {
            peer,
            dropped,
            error,
            ..
        } = e
            && peer == stalled_addr
        {
            stalled_left = Some((dropped, error));
        }
    }
    let (dropped, error) = stalled_left.expect("the stalled viewer was let go");
    assert!(dropped > 0, "the stalled viewer should have missed frames");
    assert_eq!(
        error.as_deref(),
        Some("stalled: a write blocked for more than 1.0s")
    );
    drop(stalled);
}

#[test]
fn slowloris_hello_is_cut_off_at_the_handshake_deadline() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    let started = Instant::now();
    // One byte every 100 ms: each read succeeds, but the hello as a whole is too slow.
    let sender = thread::spawn(move || {
        for b in Hello::default().to_bytes() {
            if slow.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    match event(&rx, "the slowloris to be cut off") {
        ServerEvent::Rejected { error, .. } => {
            assert_eq!(error, "sent no viewer hello within 0.3s")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(790),
        "{:?}",
        started.elapsed()
    );
    sender.join().unwrap();
}

#[test]
fn a_flood_of_idle_connections_is_capped_and_viewers_still_get_in() {
    let config = ServerConfig {
        max_pending: 4,
        handshake_timeout: Duration::from_secs(20),
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    let idle: Vec<_> = (0..4)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    let mut extra = TcpStream::connect(server.local_addr()).unwrap();
    match event(&rx, "the fifth idle connection to be refused") {
        ServerEvent::Rejected { error, .. } => assert_eq!(
            error,
            "closed at once: 4 connections are already in their handshake"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    extra.set_read_timeout(Some(WAIT)).unwrap();
    // Told why in a framewire error message, then closed.
    let mut told = Vec::new();
    extra.read_to_end(&mut told).unwrap();
    let said = String::from_utf8_lossy(&told);
    assert!(
        said.ends_with("busy: 4 connections are already in their handshake"),
        "{said:?}"
    );
    // Once the idle ones go, a real viewer is served.
    drop(idle);
    let deadline = Instant::now() + WAIT;
    let client = loop {
        match Client::connect(
            server.local_addr(),
            Request::default(),
            ClientConfig::default(),
        ) {
            Ok(c) => break c,
            Err(e) => assert!(Instant::now() < deadline, "never got in: {e}"),
        }
    };
    assert_eq!(client.stream().width, 640);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn thousands_of_connect_close_cycles_leave_no_trace() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (server, rx) = start(ServerConfig::default());
    let addr = server.local_addr();
    let good = counting_viewer(addr);
    event(&rx, "the good viewer to join");
    let before = open_fds();
    // Frames keep flowing all along: that is also how the server notices a viewer has gone.
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (server, done) = (Arc::clone(&server), Arc::clone(&done));
        thread::spawn(move || {
            let start = Instant::now();
            let mut seq = 0;
            while !done.load(Ordering::SeqCst) {
                let due = start + Duration::from_secs_f64(seq as f64 / 30.0);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                server.publish(&[Arc::new(Packet {
                    keyframe: true,
                    seq,
                    capture_us: 0,
                    rendition: 0,
                    payload: vec![1; 10_000],
                })]);
                seq += 1;
            }
            seq
        })
    };
    for i in 0..2000 {
        let mut s = TcpStream::connect(addr).unwrap();
        match i % 4 {
            0 => {}
            1 => s.write_all(b"FW").unwrap(),
            2 => s.write_all(&[0xFF; 64]).unwrap(),
            _ => {
                s.write_all(&Hello::default().to_bytes()).unwrap();
                let mut hs = [0u8; HANDSHAKE_LEN];
                let _ = s.read_exact(&mut hs);
            }
        }
    }
    // Every cycle ends in an event (rejected, or joined then left): wait for all of them.
    let mut seen = 0;
    while seen < 2000 {
        match event(&rx, "the cycles to be accounted for") {
            ServerEvent::Rejected { .. } | ServerEvent::Left { .. } => seen += 1,
            ServerEvent::Joined { .. } | ServerEvent::Moved { .. } => {}
        }
    }
    assert_eq!(server.viewer_count(), 1);
    let deadline = Instant::now() + WAIT;
    while open_fds() > before + 2 {
        assert!(
            Instant::now() < deadline,
            "open files went from {before} to {} and stayed",
            open_fds()
        );
        thread::yield_now();
    }
    done.store(true, Ordering::SeqCst);
    let published = publisher.join().unwrap();
    server.shutdown();
    let got = good.join().unwrap();
    assert!(
        got as f64 >= 0.95 * published as f64,
        "the good viewer got {got} of {published} frames"
    );
}

#[test]
fn shutdown_cuts_off_a_viewer_whose_socket_is_stuck() {
    let config = ServerConfig {
        write_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    // A viewer that says hello, reads the handshake, then half-closes and never reads again
    // (what a viewer whose window closed mid-stream looks like from the server).
    let mut stuck = TcpStream::connect(server.local_addr()).unwrap();
    stuck.write_all(&Hello::default().to_bytes()).unwrap();
    stuck.read_exact(&mut [0u8; HANDSHAKE_LEN]).unwrap();
    event(&rx, "the viewer to join");
    stuck.shutdown(std::net::Shutdown::Write).unwrap();
    // Fill its socket until the server's writer is blocked (frames start being replaced).
    let deadline = Instant::now() + WAIT;
    let mut seq = 0;
    while server.dropped_total() < 3 {
        assert!(
            Instant::now() < deadline,
            "the viewer's socket never filled up"
        );
        server.publish(&[Arc::new(Packet {
            keyframe: true,
            seq,
            capture_us: 0,
            rendition: 0,
            payload: vec![0; 1 << 20],
        })]);
        seq += 1;
        thread::yield_now();
    }
    let started = Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "shutdown waited {:?} for a stuck viewer (write timeout 60 s)",
        started.elapsed()
    );
    drop(stuck);
}
