//! Server and client over real sockets on 127.0.0.1:0: frames in order, requests and
//! switches between renditions, refusals, peers of the other wire version, and every kind of
//! bad peer ending only its own connection with a one-line reason.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use framewire_core::{
    CodecKind, Ladder, MakeRendition, Packet, PixelFormat, Placement, Publisher, Received,
    Rendition, Request,
};
use framewire_net::{
    Client, ClientConfig, Fanout, FramewireProtocol, NetError, Protocol, Server, ServerConfig,
    ServerEvent,
};
use framewire_wire::{FrameHeader, Handshake, Hello, Switch};

const WAIT: Duration = Duration::from_secs(10);

/// The rendition of the test stream: raw 16x8.
fn rendition() -> Rendition {
    Rendition::new(CodecKind::Raw, 16, 8, PixelFormat::Rgb8, 0)
}

/// What the test server announces: the one rung of a one-rung ladder.
fn handshake() -> Handshake {
    Handshake {
        placement: Placement {
            id: 0,
            rendition: rendition(),
            rung: Some(0),
            rungs: 1,
        },
        fps: 30.0,
    }
}

fn start(config: ServerConfig) -> (Arc<Fanout>, Receiver<ServerEvent>) {
    start_ladder(Ladder::single(rendition()), config)
}

fn start_ladder(ladder: Ladder, config: ServerConfig) -> (Arc<Fanout>, Receiver<ServerEvent>) {
    let (tx, rx) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", Arc::new(ladder), 30.0, config, move |e| {
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

/// Publishes `count` frames, waiting for a viewer first; stops early once no viewer has been
/// connected for half a second (a test's next viewer may be on its way) or the server stops.
fn publisher(server: Arc<Fanout>, count: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        assert!(server.wait_for_viewer(WAIT) > 0, "no viewer joined");
        for seq in 0..count {
            let frame = Arc::new(Packet {
                keyframe: true,
                seq,
                capture_us: 1_000_000 + seq,
                rendition: 0,
                payload: payload(seq),
            });
            server.publish(&[frame]);
            // Pace a little so the viewer is not always behind; order is checked, not timing.
            thread::sleep(Duration::from_millis(2));
            if server.viewer_count() == 0 && server.wait_for_viewer(Duration::from_millis(500)) == 0
            {
                return;
            }
        }
    })
}

fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr, Request::default(), ClientConfig::default())
        .expect("connect to the test server")
}

#[test]
fn frames_arrive_complete_and_in_order() {
    let (server, rx) = start(ServerConfig::default());
    let publish = publisher(Arc::clone(&server), 10_000);
    let mut client = connect(server.local_addr());
    assert_eq!(client.placement(), handshake().placement);
    assert_eq!(client.fps(), 30.0);
    assert!(matches!(
        next_event(&rx, "join"),
        ServerEvent::Joined { viewers: 1, .. }
    ));
    let mut last = None;
    let mut p = Packet::default();
    for _ in 0..200 {
        match client.recv(&mut p).expect("a frame") {
            Received::Packet { .. } => {
                assert!(last.is_none_or(|l| p.seq > l), "{:?} after {last:?}", p.seq);
                assert_eq!(p.capture_us, 1_000_000 + p.seq);
                assert_eq!(p.payload, payload(p.seq), "payload of frame {}", p.seq);
                last = Some(p.seq);
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
fn large_frames_arrive_whole_read_straight_into_the_packet() {
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
                    rendition: 0,
                    payload: frame_payload(seq),
                });
                server.publish(&[frame]);
                seq += 1;
            }
        })
    };
    let mut client = connect(server.local_addr());
    // Small first: the buffer is handed out with other bytes in it, which must not show.
    let mut p = Packet {
        payload: vec![0xEE; 10],
        ..Packet::default()
    };
    let mut last = None;
    for _ in 0..20 {
        match client.recv(&mut p).expect("a frame") {
            Received::Packet { .. } => {
                assert!(last.is_none_or(|l| p.seq > l), "{:?} after {last:?}", p.seq);
                assert_eq!(p.capture_us, 1_000_000 + p.seq);
                assert!(
                    p.payload == frame_payload(p.seq),
                    "payload of frame {}",
                    p.seq
                );
                assert_eq!(client.last_seq(), Some(p.seq));
                last = Some(p.seq);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    drop(client);
    publish.join().unwrap();
    server.shutdown();
}

#[test]
fn a_producer_that_waits_until_packets_are_taken_loses_none_to_a_slow_viewer() {
    let (server, rx) = start(ServerConfig::default());
    let mut client = Client::connect(
        server.local_addr(),
        Request::default(),
        ClientConfig {
            max_payload: 1 << 21,
            ..ClientConfig::default()
        },
    )
    .expect("connect to the test server");
    next_event(&rx, "join");
    // Frames larger than the sockets' buffers: a packet is taken only once the viewer read
    // most of the one before.
    let big = |seq: u64| vec![seq as u8; 1 << 20];
    let count = 20;
    let producer = thread::spawn({
        let server = Arc::clone(&server);
        move || {
            for seq in 0..count {
                let deadline = std::time::Instant::now() + WAIT;
                assert!(server.wait_taken(deadline), "frame {seq} never taken");
                server.publish(&[Arc::new(Packet {
                    keyframe: true,
                    seq,
                    capture_us: 0,
                    rendition: 0,
                    payload: big(seq),
                })]);
            }
        }
    });
    // A viewer slower than the producer: without the wait, most frames would be replaced.
    let mut p = Packet::default();
    for seq in 0..count {
        thread::sleep(Duration::from_millis(5));
        let got = client.recv(&mut p).unwrap();
        assert!(matches!(got, Received::Packet { .. }), "{got:?}");
        assert_eq!(p.seq, seq);
        assert!(p.payload == big(seq), "frame {seq}'s payload");
    }
    producer.join().unwrap();
    assert_eq!(server.dropped_total(), 0);
}

#[test]
fn shutdown_tells_the_viewer_the_stream_ended() {
    let (server, rx) = start(ServerConfig::default());
    let mut client = connect(server.local_addr());
    next_event(&rx, "join");
    server.shutdown();
    assert_eq!(
        client.recv(&mut Packet::default()).unwrap(),
        Received::End { reason: None }
    );
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
                matches!(
                    client.recv(&mut Packet::default()),
                    Ok(Received::Packet { .. })
                ),
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
    assert!(matches!(
        client.recv(&mut Packet::default()),
        Ok(Received::Packet { .. })
    ));
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
    // A connection that closes half-way through its hello is named too, in either half.
    for (sent, got) in [(5, 5), (12, 12)] {
        let mut short = TcpStream::connect(server.local_addr()).unwrap();
        short
            .write_all(&Hello::default().to_bytes()[..sent])
            .unwrap();
        short.shutdown(std::net::Shutdown::Write).unwrap();
        match next_event(&rx, "the short hello") {
            ServerEvent::Rejected { error, .. } => {
                assert_eq!(
                    error,
                    format!("closed after {got} of 16 bytes of the viewer hello")
                )
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

#[test]
fn a_version_1_viewer_is_answered_with_version_2_and_both_ends_name_both() {
    let (server, rx) = start(ServerConfig::default());
    for (version, needs) in [(1u8, "the viewer"), (7, "this server")] {
        let mut old = TcpStream::connect(server.local_addr()).unwrap();
        // A version 1 hello is these 8 bytes and nothing more.
        old.write_all(&[b'F', b'W', b'V', b'H', version, 0, 0, 0])
            .unwrap();
        match next_event(&rx, "the rejection") {
            ServerEvent::Rejected { error, .. } => assert_eq!(
                error,
                format!(
                    "viewer speaks wire version {version}, this server speaks version 2: \
                     {needs} needs a newer framewire"
                )
            ),
            other => panic!("expected a rejection, got {other:?}"),
        }
        // What it reads: a handshake of version 2 (a version 1 viewer stops there and names
        // both), then the end of the connection.
        old.set_read_timeout(Some(WAIT)).unwrap();
        let mut answer = Vec::new();
        old.read_to_end(&mut answer).unwrap();
        assert_eq!(answer.len(), 24);
        assert_eq!(&answer[..6], b"FWST\x02\x00");
    }
}

/// A version 1 server: reads the 8 bytes of a version 1 hello, finds another version, closes.
fn version_1_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 8];
        s.read_exact(&mut hello).unwrap();
        assert_eq!(&hello[..6], b"FWVH\x02\x00", "a version 2 hello");
    });
    addr
}

#[test]
fn a_version_2_viewer_of_a_version_1_server_names_both_versions() {
    let addr = version_1_server();
    let err = Client::connect(addr, Request::default(), ClientConfig::default())
        .err()
        .expect("a version 1 server serves no version 2 viewer");
    assert!(
        matches!(err, NetError::ClosedBeforeHandshake { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string().replace(&addr.to_string(), "SERVER"),
        "server SERVER closed the connection before its stream handshake: it speaks an older \
         wire version (1) than this viewer (2), or it refused the viewer"
    );
}

#[test]
fn what_a_viewer_asks_for_in_its_hello_reaches_the_server_as_its_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asks = [
        Request::default(),
        Request {
            rung: Some(1),
            ..Request::default()
        },
        Request {
            rung: None,
            codec: Some(CodecKind::Jpeg),
            width: Some(320),
        },
    ];
    for request in asks {
        let mut viewer = TcpStream::connect(addr).unwrap();
        // Sent in two pieces, the second late: the server reads the first 8 bytes on their own.
        let hello = Hello {
            request,
            call: None,
            push: false,
        }
        .to_bytes();
        viewer.write_all(&hello[..8]).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let mut conn = framewire_net::Conn::plain(conn);
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            viewer.write_all(&hello[8..]).unwrap();
            viewer
        });
        let got = FramewireProtocol::new(30.0).read_request(&mut conn, WAIT);
        match got {
            Ok(framewire_net::fanout::Opening::Stream { request: asked, .. }) => {
                assert_eq!(asked, request)
            }
            other => panic!("a viewer's request, not {other:?}"),
        }
        writer.join().unwrap();
    }
}

/// A ladder of two rungs of raw video, 16x8 and 8x4, that makes any asked-for width.
fn two_rungs() -> Ladder {
    let size = |width, height| Rendition::new(CodecKind::Raw, width, height, PixelFormat::Rgb8, 0);
    let make: Box<MakeRendition> = Box::new(move |_, w, h| Ok(size(w, h)));
    Ladder::new(vec![size(16, 8), size(8, 4)], false, Some(make)).unwrap()
}

#[test]
fn a_pinned_rung_or_an_asked_width_is_where_the_stream_starts() {
    let (server, rx) = start_ladder(two_rungs(), ServerConfig::default());
    let pinned = Request {
        rung: Some(1),
        ..Request::default()
    };
    let client = Client::connect(server.local_addr(), pinned, ClientConfig::default()).unwrap();
    let p = client.placement();
    assert_eq!((p.id, p.rung, p.rungs), (1, Some(1), 2));
    assert_eq!((client.stream().width, client.stream().height), (8, 4));
    next_event(&rx, "join");

    let asked = Request {
        width: Some(4),
        ..Request::default()
    };
    let client = Client::connect(server.local_addr(), asked, ClientConfig::default()).unwrap();
    let p = client.placement();
    assert_eq!((p.id, p.rung, p.rungs), (2, None, 2), "off the ladder");
    assert_eq!((client.stream().width, client.stream().height), (4, 2));
}

#[test]
fn a_refusal_before_the_handshake_reaches_the_viewer_with_its_reason() {
    let (server, rx) = start_ladder(two_rungs(), ServerConfig::default());
    let request = Request {
        rung: Some(5),
        ..Request::default()
    };
    let err = Client::connect(server.local_addr(), request, ClientConfig::default())
        .err()
        .expect("refused");
    let reason = "asked for rung 5, but the ladder has rungs 0 to 1";
    assert!(matches!(&err, NetError::Refused { reason: Some(r), .. } if r == reason));
    assert_eq!(
        err.to_string()
            .replace(&server.local_addr().to_string(), "SERVER"),
        format!("server SERVER refused the viewer: {reason}")
    );
    match next_event(&rx, "the refusal") {
        ServerEvent::Rejected { error, .. } => assert_eq!(error, reason),
        other => panic!("expected a rejection, got {other:?}"),
    }

    // A request this build cannot read is refused with the reason too.
    let mut hello = Hello::default().to_bytes();
    hello[12..16].copy_from_slice(&99_999u32.to_le_bytes());
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&hello).unwrap();
    let mut answer = Vec::new();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.read_to_end(&mut answer).unwrap();
    let text = "viewer hello asks for width 99999, outside 1..=16384";
    assert_eq!(&answer[..4], b"FWFR");
    assert_eq!(answer[4], 2, "an error");
    assert_eq!(&answer[32..], text.as_bytes());
    match next_event(&rx, "the refusal") {
        ServerEvent::Rejected { error, .. } => assert_eq!(error, text),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Frame `seq` of rung `rung` of [`two_rungs`]: one raw frame of its size.
fn rung_packet(seq: u64, rung: usize) -> Arc<Packet> {
    let (w, h) = (16 >> rung, 8 >> rung);
    Arc::new(Packet {
        keyframe: true,
        seq,
        capture_us: seq,
        rendition: rung,
        payload: vec![seq as u8; w * h * 3],
    })
}

#[test]
fn a_switch_mid_stream_is_received_and_the_frames_after_it_are_the_new_size() {
    use framewire_core::{Received as Got, Subscription};
    let (server, rx) = start_ladder(two_rungs(), ServerConfig::default());
    let mut client: Box<dyn Subscription> = Box::new(connect(server.local_addr()));
    let ServerEvent::Joined { peer, .. } = next_event(&rx, "join") else {
        panic!("expected a join");
    };
    let mut packet = Packet::default();
    // Each frame is published in both renditions, once the last one arrived; the viewer gets
    // its own.
    let publish = |seq: u64| server.publish(&[rung_packet(seq, 0), rung_packet(seq, 1)]);
    publish(0);
    assert!(matches!(client.recv(&mut packet), Ok(Got::Packet { .. })));
    assert_eq!((packet.rendition, packet.payload.len()), (0, 16 * 8 * 3));

    assert!(server.move_viewer(peer, 1));
    publish(1);
    let switched = match client.recv(&mut packet) {
        Ok(Got::Switched(p)) => p,
        other => panic!("expected a switch, got {other:?}"),
    };
    assert_eq!(
        (switched.id, switched.rung, switched.rungs),
        (1, Some(1), 2)
    );
    assert_eq!(client.placement(), switched);
    assert_eq!((client.stream().width, client.stream().height), (8, 4));
    for seq in 1..4 {
        match client.recv(&mut packet) {
            Ok(Got::Packet { bytes }) => assert_eq!(bytes, 32 + 8 * 4 * 3),
            other => panic!("expected a packet, got {other:?}"),
        }
        assert_eq!(packet.seq, seq);
        assert_eq!((packet.rendition, packet.payload.len()), (1, 8 * 4 * 3));
        publish(seq + 1);
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
    dying.write_all(&Hello::default().to_bytes()).unwrap();
    let mut part = [0u8; 24 + 40];
    dying.read_exact(&mut part).unwrap();
    next_event(&rx, "second join");
    drop(dying);
    match next_event(&rx, "the dying viewer to leave") {
        ServerEvent::Left { viewers: 1, .. } => {}
        other => panic!("expected the dying viewer to leave, got {other:?}"),
    }
    for _ in 0..20 {
        assert!(matches!(
            good.recv(&mut Packet::default()),
            Ok(Received::Packet { .. })
        ));
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
    // Refused before the stream starts, with the reason.
    let second = Client::connect(
        server.local_addr(),
        Request::default(),
        ClientConfig::default(),
    );
    let reason = "server full: 1 of 1 viewers connected";
    assert!(
        matches!(&second, Err(NetError::Refused { reason: Some(r), .. }) if r == reason),
        "{:?}",
        second.err()
    );
    match next_event(&rx, "the rejection") {
        ServerEvent::Rejected { error, .. } => assert_eq!(error, reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// A fake server that accepts one viewer, reads its hello and sends `bytes`, then closes.
fn bad_server(bytes: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 16];
        s.read_exact(&mut hello).unwrap();
        let _ = s.write_all(&bytes);
    });
    addr
}

/// Connects to a fake server sending `bytes` and reads until an error; returns its message.
fn viewer_error(bytes: Vec<u8>, max_payload: u32) -> String {
    let addr = bad_server(bytes);
    let config = ClientConfig {
        max_payload,
        ..ClientConfig::default()
    };
    let err = match Client::connect(addr, Request::default(), config) {
        Err(e) => e,
        Ok(mut c) => {
            let mut packet = Packet::default();
            loop {
                match c.recv(&mut packet) {
                    Ok(Received::Packet { .. }) => continue,
                    Ok(other) => panic!("expected an error, got {other:?}"),
                    Err(e) => break e,
                }
            }
        }
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
         got 52 46 42 20 02 00 01 01 10 00 00 00 08 00 00 00 (\"RFB ............\")"
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

    // Large enough to be read straight into the caller's packet.
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

#[test]
fn a_switch_reaches_the_viewer_before_a_large_frame_read_straight_in() {
    // Off the ladder, raw 512x256: large enough to be read straight into the packet.
    let big = Placement {
        id: 1,
        rendition: Rendition::new(CodecKind::Raw, 512, 256, PixelFormat::Rgb8, 0),
        rung: None,
        rungs: 1,
    };
    let len = 512 * 256 * 3;
    let mut bytes = frames(1, 384);
    bytes.extend_from_slice(&Switch::header().to_bytes());
    bytes.extend_from_slice(&Switch { placement: big }.to_bytes());
    bytes.extend_from_slice(&FrameHeader::frame(1, 0, len).to_bytes());
    bytes.extend((0..len).map(|i| i as u8));
    let end = FrameHeader {
        payload_len: 0,
        kind: framewire_wire::MessageKind::End,
        ..FrameHeader::frame(2, 0, 0)
    };
    bytes.extend_from_slice(&end.to_bytes());

    let mut client = Client::connect(
        bad_server(bytes),
        Request::default(),
        ClientConfig::default(),
    )
    .unwrap();
    let mut p = Packet::default();
    assert_eq!(
        client.recv(&mut p).unwrap(),
        Received::Packet { bytes: 32 + 384 }
    );
    assert_eq!(p.seq, 0);
    assert_eq!(client.recv(&mut p).unwrap(), Received::Switched(big));
    assert_eq!(client.placement(), big);
    assert!(matches!(client.recv(&mut p), Ok(Received::Packet { .. })));
    assert_eq!((p.seq, p.payload.len(), p.rendition), (1, len as usize, 1));
    assert!(p.payload.iter().enumerate().all(|(i, &b)| b == i as u8));
    assert_eq!(client.recv(&mut p).unwrap(), Received::End { reason: None });
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
    insta::assert_snapshot!("hello", hex(&Hello::default().to_bytes()));
    let asking = Hello {
        request: Request {
            rung: Some(2),
            codec: Some(CodecKind::Jpeg),
            width: Some(320),
        },
        call: None,
        push: false,
    };
    insta::assert_snapshot!("hello_rung_2_jpeg_width_320", hex(&asking.to_bytes()));
    let calling = Hello {
        request: Request::default(),
        call: Some(0x1234),
        push: false,
    };
    insta::assert_snapshot!("hello_call_0x1234", hex(&calling.to_bytes()));
    let pushing = Hello {
        call: Some(0x1234),
        push: true,
        ..Hello::default()
    };
    insta::assert_snapshot!("hello_push_0x1234", hex(&pushing.to_bytes()));
    insta::assert_snapshot!(
        "name_cam_1",
        hex(&framewire_wire::message::name_message("cam-1"))
    );
    let placement = Placement {
        id: 1,
        rendition: Rendition::new(CodecKind::Jpeg, 640, 480, PixelFormat::Rgb8, 80),
        rung: Some(1),
        rungs: 3,
    };
    let hs = Handshake {
        placement,
        fps: 29.97,
    };
    insta::assert_snapshot!(
        "handshake_jpeg_640x480_rgb8_29.97fps_rung_1_of_3_q80",
        hex(&hs.to_bytes())
    );
    let header = FrameHeader::frame(0x0102_0304_0506_0708, 1_700_000_000_123_456, 45_678);
    insta::assert_snapshot!("frame_header", hex(&header.to_bytes()));
    let off_ladder = Placement {
        rung: None,
        ..placement
    };
    let switch = Switch {
        placement: off_ladder,
    };
    insta::assert_snapshot!(
        "switch_jpeg_640x480_rgb8_off_the_ladder_of_3_q80",
        hex(&[&Switch::header().to_bytes()[..], &switch.to_bytes()].concat())
    );
}

#[test]
fn the_last_frame_published_before_shutdown_still_arrives() {
    let (server, rx) = start(ServerConfig::default());
    let mut client = connect(server.local_addr());
    next_event(&rx, "join");
    for seq in 0..3 {
        server.publish(&[Arc::new(Packet {
            keyframe: true,
            seq,
            capture_us: 0,
            rendition: 0,
            payload: payload(seq),
        })]);
    }
    server.shutdown();
    let mut last = None;
    let mut p = Packet::default();
    loop {
        match client.recv(&mut p).unwrap() {
            Received::Packet { .. } => last = Some(p.seq),
            Received::End { reason: None } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, Some(2));
}
