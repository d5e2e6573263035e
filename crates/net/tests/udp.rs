//! The UDP transport with real sockets on 127.0.0.1, without the binary: a viewer that falls
//! behind gets the newest complete frame, not a backlog, each frame whole; a viewer that says
//! goodbye is let go at once.

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
