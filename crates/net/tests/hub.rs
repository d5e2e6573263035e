//! A hub and its senders over real sockets on 127.0.0.1:0: named streams from several senders,
//! a sender that dials again after the hub restarts, a name already pushing replaced, the
//! token both ways, and the peers a hub refuses (a viewer, a caller, a bad name, one too many).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Ladder, Packet, PixelFormat, Received, Rendition, Subscription};
use framewire_net::hub::{HubConfig, HubListener, HubPusher, PushEvent, Pushed};
use framewire_net::{CallConfig, Client, ClientConfig, NetError, ServerConfig};
use framewire_wire::token::Token;

const WAIT: Duration = Duration::from_secs(10);

fn ladder() -> Arc<Ladder> {
    Arc::new(Ladder::single(Rendition::new(
        CodecKind::Raw,
        4,
        2,
        PixelFormat::Rgb8,
        0,
    )))
}

fn hub_at(addr: &str, token: Option<Token>, max: usize) -> HubListener {
    let config = HubConfig {
        client: ClientConfig::default(),
        server: ServerConfig {
            max_viewers: max,
            token,
            ..ServerConfig::default()
        },
    };
    HubListener::bind(addr, config, |_| {}).expect("bind the hub")
}

fn hub(token: Option<Token>) -> HubListener {
    hub_at("127.0.0.1:0", token, 8)
}

/// A sender named `name` pushing to `hub`, and its events.
fn pusher(hub: SocketAddr, name: &str, token: Option<Token>) -> (HubPusher, Receiver<PushEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let mut config = CallConfig::default();
    config.client.token = token.clone();
    config.server.token = token;
    let pusher = HubPusher::start(hub, name, (ladder(), 30.0), config, move |e| {
        let _ = tx.lock().unwrap().send(e);
    })
    .expect("start the pusher");
    (pusher, rx)
}

fn packet(seq: u64, byte: u8) -> Arc<Packet> {
    Arc::new(Packet {
        keyframe: true,
        seq,
        capture_us: 1_000_000 + seq,
        rendition: 0,
        payload: vec![byte; 24],
    })
}

fn connected(rx: &Receiver<PushEvent>) -> bool {
    let deadline = Instant::now() + WAIT;
    while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match e {
            PushEvent::Connected { again, .. } => return again,
            PushEvent::Lost { .. } => continue,
            PushEvent::Refused(why) => panic!("refused: {why}"),
        }
    }
    panic!("the pusher did not connect within {WAIT:?}")
}

/// Publishes a packet (its payload all `byte`) until the stream gives one, returning it.
fn first_frame(pusher: &HubPusher, stream: &mut dyn Subscription, byte: u8) -> Packet {
    use framewire_core::Publisher;
    let mut got = Packet::default();
    let publisher = std::thread::scope(|s| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let until = Arc::clone(&stop);
        s.spawn(move || {
            let mut seq = 0;
            while !until.load(std::sync::atomic::Ordering::SeqCst) {
                pusher.publish(&[packet(seq, byte)]);
                seq += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let r = loop {
            match stream.recv(&mut got) {
                Ok(Received::Packet { .. }) => break Ok(()),
                Ok(Received::Switched(_) | Received::Report(_)) => continue,
                Ok(other) => break Err(format!("{other:?}")),
                Err(e) => break Err(e.to_string()),
            }
        };
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    });
    publisher.expect("a frame from the sender");
    got
}

fn next(hub: &HubListener) -> Pushed {
    hub.next(WAIT).expect("a sender's stream")
}

#[test]
fn three_senders_arrive_by_name_and_each_stream_is_its_own() {
    let hub = hub(None);
    let senders: Vec<_> = ["cam-1", "cam-2", "cam-3"]
        .iter()
        .map(|n| pusher(hub.local_addr(), n, None))
        .collect();
    let mut names = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let pushed = next(&hub);
        names.push(pushed.name.clone());
        streams.push(pushed);
    }
    names.sort();
    assert_eq!(names, ["cam-1", "cam-2", "cam-3"]);
    assert_eq!(hub.senders(), 3);
    for pushed in &mut streams {
        let i = pushed.name.as_bytes()[4] - b'0';
        let (pusher, _) = &senders[usize::from(i - 1)];
        let got = first_frame(pusher, &mut *pushed.stream, i);
        assert_eq!(got.payload, vec![i; 24], "{}'s frame", pushed.name);
        assert!(pushed.stream.peer().contains(&pushed.name));
    }
}

#[test]
fn a_sender_dials_again_after_the_hub_restarts() {
    let first = hub(None);
    let addr = first.local_addr();
    let (pusher, events) = pusher(addr, "door", None);
    assert!(!connected(&events));
    let mut stream = next(&first);
    first_frame(&pusher, &mut *stream.stream, 1);
    drop(stream);
    drop(first);
    // The hub comes back on the same port; the sender finds it by itself.
    let second = hub_at(&addr.to_string(), None, 8);
    assert!(
        connected(&events),
        "the second connection is a reconnection"
    );
    let mut stream = next(&second);
    assert_eq!(stream.name, "door");
    assert_eq!(
        first_frame(&pusher, &mut *stream.stream, 2).payload,
        vec![2; 24]
    );
}

#[test]
fn a_name_already_pushing_is_replaced_by_its_new_connection() {
    let hub = hub(None);
    let (_old, old_events) = pusher(hub.local_addr(), "gate", None);
    connected(&old_events);
    let mut old = next(&hub);
    let (new, new_events) = pusher(hub.local_addr(), "gate", None);
    connected(&new_events);
    let mut stream = next(&hub);
    assert_eq!(hub.senders(), 1);
    first_frame(&new, &mut *stream.stream, 9);
    let mut p = Packet::default();
    let ended = loop {
        match old.stream.recv(&mut p) {
            Ok(Received::Packet { .. } | Received::Switched(_) | Received::Report(_)) => continue,
            other => break other,
        }
    };
    assert!(ended.is_err(), "the replaced connection is cut: {ended:?}");
}

#[test]
fn the_token_is_proved_both_ways_and_a_wrong_one_is_refused_for_good() {
    let token = Token::new(b"s3cret").unwrap();
    let hub = hub(Some(token.clone()));
    let (right, events) = pusher(hub.local_addr(), "ok", Some(token));
    connected(&events);
    let mut stream = next(&hub);
    first_frame(&right, &mut *stream.stream, 3);

    let (wrong, events) = pusher(hub.local_addr(), "bad", Some(Token::new(b"other").unwrap()));
    match events.recv_timeout(WAIT).expect("an event") {
        PushEvent::Refused(why) => assert!(why.contains("wrong token"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(wrong.refused().unwrap().contains("wrong token"));

    let (none, events) = pusher(hub.local_addr(), "none", None);
    match events.recv_timeout(WAIT).expect("an event") {
        PushEvent::Refused(why) => assert!(why.contains("token"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(none);
    assert_eq!(hub.senders(), 1);
}

#[test]
fn a_hub_refuses_a_viewer_a_bad_name_and_one_sender_too_many() {
    let hub = hub_at("127.0.0.1:0", None, 1);
    let viewer = Client::connect(
        hub.local_addr(),
        Default::default(),
        ClientConfig::default(),
    );
    match viewer {
        Err(NetError::Refused {
            reason: Some(r), ..
        }) => assert!(r.contains("this is a hub"), "{r}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a viewer was served by a hub"),
    }
    let e = HubPusher::start(
        hub.local_addr(),
        "a b",
        (ladder(), 30.0),
        CallConfig::default(),
        |_| {},
    )
    .err()
    .expect("a name with a space is refused");
    assert!(e.contains("letters, digits"), "{e}");

    // A name the sender did not check: the hub refuses it in one line.
    let mut raw = TcpStream::connect(hub.local_addr()).unwrap();
    let hello = framewire_wire::Hello {
        call: Some(7),
        push: true,
        ..Default::default()
    };
    let mut opening = hello.to_bytes().to_vec();
    opening.extend_from_slice(&framewire_wire::message::name_message("a\nb"));
    raw.write_all(&opening).unwrap();
    let mut answer = Vec::new();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    let _ = raw.read_to_end(&mut answer);
    assert!(String::from_utf8_lossy(&answer).contains("letters, digits"));

    let (_one, events) = pusher(hub.local_addr(), "one", None);
    connected(&events);
    let _stream = next(&hub);
    let (_two, events) = pusher(hub.local_addr(), "two", None);
    match events.recv_timeout(WAIT).expect("an event") {
        PushEvent::Lost { reason, .. } => {
            assert!(reason.contains("busy: the hub has 1"), "{reason}")
        }
        other => panic!("expected the full hub's answer, got {other:?}"),
    }
}
