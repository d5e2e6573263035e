//! The UDP transport with real sockets on 127.0.0.1, without the binary: a viewer that falls
//! behind gets the newest complete frame, not a backlog, each frame whole; a viewer that says
//! goodbye is let go at once; a sealed datagram counts only under its own session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{
    CodecKind, Ladder, Packet, PixelFormat, Publisher, Received, Rendition, Request, Subscription,
};
use framewire_net::udp::{UdpClientConfig, UdpConfig, UdpLosses, UdpServer, UdpSubscription};

fn server() -> UdpServer {
    let ladder = Arc::new(Ladder::single(Rendition::new(
        CodecKind::Raw,
        64,
        64,
        PixelFormat::Rgb8,
        0,
    )));
    UdpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ladder,
        30.0,
        UdpConfig::default(),
        |_| {},
    )
    .unwrap()
}

fn join(server: &UdpServer) -> (UdpSubscription, Arc<UdpLosses>) {
    let losses = Arc::new(UdpLosses::default());
    let config = UdpClientConfig {
        max_payload: 1 << 20,
        idle_timeout: Duration::from_secs(10),
        ..UdpClientConfig::default()
    };
    let sub = UdpSubscription::join(
        server.local_addr(),
        Request::default(),
        config,
        Arc::clone(&losses),
    )
    .unwrap();
    (sub, losses)
}

/// A frame of `len` bytes whose bytes all say `seq`.
fn frame(seq: u64, len: usize) -> Arc<Packet> {
    Arc::new(Packet {
        seq,
        capture_us: 1,
        keyframe: true,
        rendition: 0,
        payload: vec![seq as u8; len],
    })
}

#[test]
fn a_viewer_that_fell_behind_gets_the_newest_complete_frame() {
    let server = server();
    let (mut sub, _) = join(&server);
    assert_eq!(server.subscribers(), 1);
    // Each frame is 10 datagrams (and 2 of parity); each is published once the one before
    // has left, so all queue in the viewer's socket while it does not read.
    for seq in 0..10 {
        server.publish(&[frame(seq, 12_000)]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.frames_out() <= seq {
            assert!(
                Instant::now() < deadline,
                "frame {seq} was not sent within 10 s"
            );
            std::thread::yield_now();
        }
    }
    let mut packet = Packet::default();
    let got = sub.recv(&mut packet).unwrap();
    assert!(matches!(got, Received::Packet { .. }), "{got:?}");
    assert_eq!(packet.payload.len(), 12_000);
    assert!(packet.payload.iter().all(|&b| b == packet.seq as u8));
    assert_eq!(
        packet.seq, 9,
        "the newest frame, not the first of a backlog"
    );
    assert_eq!(server.dropped_total(), 0, "every frame left the server");
    // The viewer leaves with a goodbye: the server lets it go at once.
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.subscribers() > 0 {
        assert!(
            Instant::now() < deadline,
            "the viewer's goodbye was not taken"
        );
        std::thread::yield_now();
    }
    server.shutdown();
}

/// A sealed server's viewer and a peer with a session of its own at the same address (what a
/// spoofer that opened its own control connection sends): the server answers each under its
/// own session, and takes nothing from the second as the first's, not even an end with the
/// first's session id.
#[test]
fn a_sealed_datagram_counts_only_under_its_own_session() {
    use framewire_net::udp::control::Entry;
    use framewire_wire::datagram::{self, Datagram, HelloMsg, ReportMsg};
    use framewire_wire::seal::{Session, StreamKeys};
    use framewire_wire::session::SessionKey;

    let ladder = Arc::new(Ladder::single(Rendition::new(
        CodecKind::Raw,
        16,
        16,
        PixelFormat::Rgb8,
        0,
    )));
    let config = UdpConfig {
        sealed: true,
        ..UdpConfig::default()
    };
    let server =
        UdpServer::bind("127.0.0.1:0".parse().unwrap(), ladder, 30.0, config, |_| {}).unwrap();
    let sessions = server.sessions().unwrap();
    let keys = [
        StreamKeys::from_bytes(&[1; 72]),
        StreamKeys::from_bytes(&[2; 72]),
    ];
    let _registered: Vec<_> = keys
        .iter()
        .map(|k| {
            sessions.insert(Entry {
                session: Arc::new(Session::server(k)),
                caller: None,
            })
        })
        .collect();
    let (viewer, other) = (Session::viewer(&keys[0]), Session::viewer(&keys[1]));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.local_addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    let mut sealed = Vec::new();
    // Sends `bytes` sealed under `s`; the next datagram back, opened under `s`.
    let mut ask = |s: &Session, bytes: &[u8], answer: bool| -> Vec<u8> {
        s.seal(bytes, &mut sealed);
        socket.send(&sealed).unwrap();
        if !answer {
            return Vec::new();
        }
        let n = socket.recv(&mut buf).expect("an answer");
        let range = s
            .open(&mut buf[..n], Instant::now())
            .expect("sealed under it");
        buf[range].to_vec()
    };
    let mut b = Vec::new();
    let mut hello = HelloMsg::default();
    hello.write(&mut b);
    let Ok(Datagram::Cookie(c)) = datagram::parse(&ask(&viewer, &b, true), 0) else {
        panic!("no cookie");
    };
    hello.cookie = c.cookie;
    hello.write(&mut b);
    let Ok(Datagram::Start(start)) = datagram::parse(&ask(&viewer, &b, true), 0) else {
        panic!("no start");
    };
    let key = SessionKey::from_start(start.key, &start.check, &hello.cookie).unwrap();
    let report = |b: &mut Vec<u8>| {
        ReportMsg {
            session: key.id(),
            ..ReportMsg::default()
        }
        .write(b)
    };
    report(&mut b);
    ask(&viewer, &b, false);
    assert_eq!(server.subscribers(), 1);
    // The other session, from the same address: an end and a report with the viewer's id.
    datagram::write_end(&key.id(), None, &mut b);
    ask(&other, &b, false);
    report(&mut b);
    ask(&other, &b, false);
    // Its hello is answered under its own session: everything before it was handled.
    HelloMsg::default().write(&mut b);
    let answer = ask(&other, &b, true);
    assert!(matches!(
        datagram::parse(&answer, 0),
        Ok(Datagram::Cookie(_))
    ));
    assert_eq!(
        server.subscribers(),
        1,
        "the other session ended the viewer"
    );
    assert_eq!(
        server
            .drops()
            .forged
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    // The viewer still gets its frames.
    server.publish(&[frame(1, 100)]);
    let n = socket.recv(&mut buf).expect("a fragment");
    let range = viewer
        .open(&mut buf[..n], Instant::now())
        .expect("the viewer's");
    let Ok(Datagram::Fragment(f)) = datagram::parse(&buf[range], 1 << 20) else {
        panic!("not a fragment");
    };
    assert!(key.is_tag(f.sent, &f.tag));
    server.shutdown();
}
