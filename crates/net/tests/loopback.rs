//! Server and client over real sockets on 127.0.0.1:0: frames in order, and every kind of bad
//! peer ending only its own connection with a one-line reason.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use framewire_core::Packet;
use framewire_core::{CodecKind, PixelFormat, StreamInfo};
use framewire_net::{
    Client, ClientConfig, Fanout, FrameHeader, Handshake, Incoming, Received, Server, ServerConfig,
    ServerEvent,
};

const WAIT: Duration = Duration::from_secs(10);

fn handshake() -> Handshake {
    Handshake {
        stream: StreamInfo {
            codec: CodecKind::Raw,
            width: 16,
            height: 8,
            format: PixelFormat::Rgb8,
        },
        fps: 30.0,
    }
}

fn start(config: ServerConfig) -> (Arc<Fanout>, Receiver<ServerEvent>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", handshake(), config, move |e| {
        let _ = tx.send(e);
    })
    .expect("bind 127.0.0.1:0");
    (Arc::new(server), rx)
}

fn next_event(rx: &Receiver<ServerEvent>, what: &str) -> ServerEvent {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no server event within {WAIT:?} while waiting for {what}"))
}

/// The payload of frame `seq`: 384 bytes derived from the number, so corruption shows.
fn payload(seq: u64) -> Vec<u8> {
    (0..384u64).map(|i| (i * 31 + seq * 7) as u8).collect()
}

/// Publishes frames 0.. until `stop` says so, waiting for a viewer first.
fn publisher(server: Arc<Fanout>, count: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        assert!(server.wait_for_viewer(WAIT) > 0, "no viewer joined");
        for seq in 0..count {
            let frame = Arc::new(Packet {
                keyframe: true,
                seq,
                capture_us: 1_000_000 + seq,
                payload: payload(seq),
            });
            server.publish(&frame);
            // Pace a little so the viewer is not always behind; order is checked, not timing.
            thread::sleep(Duration::from_millis(2));
            if server.viewer_count() == 0 {
                return;
            }
        }
    })
}

fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr, ClientConfig::default()).expect("connect to the test server")
}

#[test]
fn frames_arrive_complete_and_in_order() {
    let (server, rx) = start(ServerConfig::default());
    let publish = publisher(Arc::clone(&server), 10_000);
    let mut client = connect(server.local_addr());
    assert_eq!(*client.handshake(), handshake());
    assert!(matches!(
        next_event(&rx, "join"),
        ServerEvent::Joined { viewers: 1, .. }
    ));
    let mut last = None;
    for _ in 0..200 {
        match client.recv().expect("a frame") {
            Received::Frame(h, p) => {
                assert!(last.is_none_or(|l| h.seq > l), "{:?} after {last:?}", h.seq);
                assert_eq!(h.capture_us, 1_000_000 + h.seq);
                assert_eq!(p, payload(h.seq), "payload of frame {}", h.seq);
                last = Some(h.seq);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    drop(client);
    match next_event(&rx, "the viewer to leave") {
        ServerEvent::Left {
            frames,
            error: None,
            ..
        } => assert!(frames >= 200),
        other => panic!("expected a clean leave, got {other:?}"),
    }
    publish.join().unwrap();
}

#[test]
fn large_frames_arrive_whole_through_recv_into() {
    let (server, _rx) = start(ServerConfig::default());
    let frame_payload = |seq: u64| -> Vec<u8> {
        (0..1_000_003u64)
            .map(|i| (i * 131 + seq * 7 + i / 4099) as u8)
            .collect()
    };
    let publish = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            assert!(server.wait_for_viewer(WAIT) > 0, "no viewer joined");
            let mut seq = 0;
            while server.viewer_count() > 0 {
                let frame = Arc::new(Packet {
                    keyframe: true,
                    seq,
                    capture_us: 1_000_000 + seq,
                    payload: frame_payload(seq),
                });
                server.publish(&frame);
                seq += 1;
            }
        })
    };
    let mut client = connect(server.local_addr());
    // Small first: the buffer is handed out with other bytes in it, which must not show.
    let mut buf = vec![0xEE; 10];
    let mut last = None;
    for _ in 0..20 {
        match client.recv_into(&mut buf).expect("a frame") {
            Incoming::Frame(h) => {
                assert!(last.is_none_or(|l| h.seq > l), "{:?} after {last:?}", h.seq);
                assert_eq!(h.capture_us, 1_000_000 + h.seq);
                assert!(buf == frame_payload(h.seq), "payload of frame {}", h.seq);
                assert_eq!(client.last_seq(), Some(h.seq));
                last = Some(h.seq);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    drop(client);
    publish.join().unwrap();
    server.shutdown();
}

#[test]
fn shutdown_tells_the_viewer_the_stream_ended() {
    let (server, rx) = start(ServerConfig::default());
    let mut client = connect(server.local_addr());
    next_event(&rx, "join");
    server.shutdown();
    assert_eq!(client.recv().unwrap(), Received::End { reason: None });
}

#[test]
fn two_viewers_one_after_the_other_both_get_frames() {
    let (server, rx) = start(ServerConfig::default());
    let publish = publisher(Arc::clone(&server), 1_000_000);
    for round in 0..2 {
        let mut client = connect(server.local_addr());
        next_event(&rx, "join");
        for _ in 0..20 {
            assert!(
                matches!(client.recv(), Ok(Received::Frame(..))),
                "viewer {round}"
            );
        }
        drop(client);
        next_event(&rx, "leave");
    }
    server.shutdown();
    publish.join().unwrap();
}

#[test]
fn garbage_from_a_non_viewer_is_rejected_and_serving_goes_on() {
    let (server, rx) = start(ServerConfig::default());
    let mut http = TcpStream::connect(server.local_addr()).unwrap();
    let me = http.local_addr().unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    match next_event(&rx, "the rejection") {
        ServerEvent::Rejected { peer, error } => {
            assert_eq!(peer, me);
            assert_eq!(
                error,
                "not a framewire viewer: expected viewer hello magic \"FWVH\", got \
                 47 45 54 20 2f 20 48 54 (\"GET / HT\")"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The server closed that connection without sending it anything.
    http.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let _ = http.read_to_end(&mut rest);
    assert!(rest.is_empty(), "sent {rest:?} to a non-viewer");

    let publish = publisher(Arc::clone(&server), 1_000_000);
    let mut client = connect(server.local_addr());
    assert!(matches!(client.recv(), Ok(Received::Frame(..))));
    drop(client);
    server.shutdown();
    publish.join().unwrap();
}

#[test]
fn silent_connection_is_dropped_after_the_handshake_timeout() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    let mut silent = TcpStream::connect(server.local_addr()).unwrap();
    silent.write_all(b"FWV").unwrap();
    match next_event(&rx, "the timeout") {
        ServerEvent::Rejected { error, .. } => {
            assert_eq!(error, "sent no viewer hello within 0.2s")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // A connection that closes half-way through its hello is named too.
    let mut short = TcpStream::connect(server.local_addr()).unwrap();
    short.write_all(b"FWVH\x01").unwrap();
    short.shutdown(std::net::Shutdown::Write).unwrap();
    match next_event(&rx, "the short hello") {
        ServerEvent::Rejected { error, .. } => {
            assert_eq!(error, "closed after 5 of 8 bytes of the viewer hello")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn viewer_of_another_version_is_rejected() {
    let (server, rx) = start(ServerConfig::default());
    let mut old = TcpStream::connect(server.local_addr()).unwrap();
    old.write_all(b"FWVH\x07\x00\x00\x00").unwrap();
    match next_event(&rx, "the rejection") {
        ServerEvent::Rejected { error, .. } => assert_eq!(
            error,
            "not a framewire viewer: unsupported wire version 7, this build speaks version 1"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn viewer_dying_mid_frame_costs_the_others_nothing() {
    let (server, rx) = start(ServerConfig::default());
    let publish = publisher(Arc::clone(&server), 1_000_000);
    let mut good = connect(server.local_addr());
    next_event(&rx, "first join");

    // A raw viewer that reads the handshake and part of a frame, then vanishes.
    let mut dying = TcpStream::connect(server.local_addr()).unwrap();
    dying
        .write_all(&framewire_net::Hello::CURRENT.to_bytes())
        .unwrap();
    let mut part = [0u8; 24 + 40];
    dying.read_exact(&mut part).unwrap();
    next_event(&rx, "second join");
    drop(dying);
    match next_event(&rx, "the dying viewer to leave") {
        ServerEvent::Left { viewers: 1, .. } => {}
        other => panic!("expected the dying viewer to leave, got {other:?}"),
    }
    for _ in 0..20 {
        assert!(matches!(good.recv(), Ok(Received::Frame(..))));
    }
    drop(good);
    server.shutdown();
    publish.join().unwrap();
}

#[test]
fn server_full_is_said_to_the_viewer() {
    let config = ServerConfig {
        max_viewers: 1,
        ..ServerConfig::default()
    };
    let (server, rx) = start(config);
    let _first = connect(server.local_addr());
    next_event(&rx, "first join");
    let mut second = connect(server.local_addr());
    assert_eq!(
        second.recv().unwrap(),
        Received::End {
            reason: Some("server full: 1 of 1 viewers connected".into())
        }
    );
    assert!(matches!(
        next_event(&rx, "the rejection"),
        ServerEvent::Rejected { .. }
    ));
}

/// A fake server that accepts one viewer, reads its hello and sends `bytes`, then closes.
fn bad_server(bytes: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 8];
        s.read_exact(&mut hello).unwrap();
        let _ = s.write_all(&bytes);
    });
    addr
}

/// Connects to a fake server sending `bytes` and reads until an error with both
/// [`Client::recv`] and [`Client::recv_into`]; returns the message, which must be the same.
fn viewer_error(bytes: Vec<u8>, max_payload: u32) -> String {
    let msg = viewer_error_with(bytes.clone(), max_payload, false);
    assert_eq!(
        viewer_error_with(bytes, max_payload, true),
        msg,
        "recv_into against recv"
    );
    msg
}

fn viewer_error_with(bytes: Vec<u8>, max_payload: u32, into: bool) -> String {
    let addr = bad_server(bytes);
    let config = ClientConfig {
        max_payload,
        ..ClientConfig::default()
    };
    let err = match Client::connect(addr, config) {
        Err(e) => e,
        Ok(mut c) if into => {
            let mut payload = Vec::new();
            loop {
                match c.recv_into(&mut payload) {
                    Ok(Incoming::Frame(..)) => continue,
                    Ok(other) => panic!("expected an error, got {other:?}"),
                    Err(e) => break e,
                }
            }
        }
        Ok(mut c) => loop {
            match c.recv() {
                Ok(Received::Frame(..)) => continue,
                Ok(other) => panic!("expected an error, got {other:?}"),
                Err(e) => break e,
            }
        },
    };
    // One line, naming the server.
    let msg = format!("{:#}", anyhow_like(&err));
    assert!(!msg.contains('\n'), "{msg}");
    msg.replace(&addr.to_string(), "SERVER")
}

/// The error and its sources joined by ": ", as the binary prints them.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn frames(n: u64, len: u32) -> Vec<u8> {
    let mut out = handshake().to_bytes().to_vec();
    for seq in 0..n {
        out.extend_from_slice(&FrameHeader::frame(seq, 0, len).to_bytes());
        out.extend(std::iter::repeat_n(1u8, len as usize));
    }
    out
}

#[test]
fn viewer_facing_a_bad_server_gets_one_line_naming_it() {
    let mut wrong_magic = handshake().to_bytes().to_vec();
    wrong_magic[..4].copy_from_slice(b"RFB ");
    assert_eq!(
        viewer_error(wrong_magic, 1 << 20),
        "server SERVER: at byte 0 (before any frame): expected stream handshake magic \"FWST\", \
         got 52 46 42 20 01 00 01 01 10 00 00 00 08 00 00 00 (\"RFB ............\")"
    );

    let mut unknown_codec = handshake().to_bytes().to_vec();
    unknown_codec[6] = 42;
    assert_eq!(
        viewer_error(unknown_codec, 1 << 20),
        "server SERVER: at byte 0 (before any frame): unknown codec id 42 in stream handshake"
    );

    let mut huge = frames(2, 10);
    huge.extend_from_slice(&FrameHeader::frame(2, 0, u32::MAX).to_bytes());
    assert_eq!(
        viewer_error(huge, 1 << 20),
        "server SERVER: at byte 108 (after frame 1): frame payload length 4294967295 exceeds max 1048576"
    );

    let mut truncated = frames(3, 100);
    truncated.truncate(truncated.len() - 30);
    assert_eq!(
        viewer_error(truncated, 1 << 20),
        "server SERVER: at byte 320 (after frame 1): stream ended inside a frame payload: got 70 of 100 bytes"
    );

    // Large enough for recv_into to read it straight into the caller's buffer.
    let mut large = frames(2, 1 << 20);
    large.truncate(large.len() - 1000);
    assert_eq!(
        viewer_error(large, 2 << 20),
        "server SERVER: at byte 1048664 (after frame 0): stream ended inside a frame payload: got 1047576 of 1048576 bytes"
    );

    assert_eq!(
        viewer_error(frames(2, 5), 1 << 20),
        "server SERVER closed the connection at byte 98 (after frame 1) without ending the stream"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(8)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn wire_bytes_are_pinned() {
    insta::assert_snapshot!("hello", hex(&framewire_net::Hello::CURRENT.to_bytes()));
    let hs = Handshake {
        stream: StreamInfo {
            codec: CodecKind::Jpeg,
            width: 640,
            height: 480,
            format: PixelFormat::Rgb8,
        },
        fps: 29.97,
    };
    insta::assert_snapshot!("handshake_jpeg_640x480_rgb8_29.97fps", hex(&hs.to_bytes()));
    let header = FrameHeader::frame(0x0102_0304_0506_0708, 1_700_000_000_123_456, 45_678);
    insta::assert_snapshot!("frame_header", hex(&header.to_bytes()));
}

#[test]
fn the_last_frame_published_before_shutdown_still_arrives() {
    let (server, rx) = start(ServerConfig::default());
    let mut client = connect(server.local_addr());
    next_event(&rx, "join");
    for seq in 0..3 {
        server.publish(&Arc::new(Packet {
            keyframe: true,
            seq,
            capture_us: 0,
            payload: payload(seq),
        }));
    }
    server.shutdown();
    let mut last = None;
    loop {
        match client.recv().unwrap() {
            Received::Frame(h, _) => last = Some(h.seq),
            Received::End { reason: None } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, Some(2));
}
