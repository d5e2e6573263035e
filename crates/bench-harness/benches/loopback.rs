//! Loopback end to end over real sockets: `Server::publish` → TCP → `Client::recv` →
//! `decode_vec` (what `view` runs; a raw frame's payload is read straight into the frame), per
//! codec and size, beside a plain `write_all`/`read_exact` loop moving the same number of bytes
//! per message over loopback TCP (`loopback/tcp/...`, the baseline `cargo xtask bench` divides by).
//!
//! Frames are encoded once before measuring (the encoders have their own benches); what is
//! measured is transport, framing and decode. The publisher keeps two frames in flight (one in
//! the viewer's slot, one on the socket) so the pipe never runs dry and never drops.
//! Throughput is bytes on the wire per message; frames/s is 1 / time per iteration.
//!
//! Run with `cargo bench -p framewire-bench-harness --bench loopback`.

#![allow(missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_bench_harness::pattern_frame;
use framewire_codec::{EncodeOptions, decoder, encoder};
use framewire_core::{CodecKind, Frame, Ladder, Rendition, Request, StreamInfo};
use framewire_core::{Packet, Received};
use framewire_net::{Client, ClientConfig, Server, ServerConfig, TlsClient, TlsServer, Trust};
use framewire_wire::HEADER_LEN;

const CASES: [(CodecKind, (u32, u32)); 5] = [
    (CodecKind::Raw, (640, 480)),
    (CodecKind::Raw, (1280, 720)),
    (CodecKind::Bincode, (1280, 720)),
    (CodecKind::Jpeg, (640, 480)),
    (CodecKind::Jpeg, (1280, 720)),
];

/// framewire end to end over loopback, plain or (`tls`) over TLS; returns the bytes per frame.
fn framewire(c: &mut Criterion, kind: CodecKind, (w, h): (u32, u32), tls: bool) -> usize {
    let frame = pattern_frame(w, h, 7);
    let mut enc = encoder(kind, &EncodeOptions::default()).expect("encoder");
    let mut payload = Vec::new();
    enc.encode(&frame, &mut payload).expect("encoding");
    let info = StreamInfo {
        codec: kind,
        width: w,
        height: h,
        format: enc.output_format(frame.format),
    };
    let ladder = Arc::new(Ladder::single(Rendition {
        stream: info,
        quality: 0,
        bitrate_kbit: 0,
    }));
    let identity = tls.then(|| TlsServer::self_signed().expect("a self-signed certificate"));
    let server_config = ServerConfig {
        tls: identity.clone(),
        ..ServerConfig::default()
    };
    let server = Arc::new(
        Server::bind("127.0.0.1:0", ladder, 0.0, server_config, |_| {}).expect("binding loopback"),
    );
    let client_config = ClientConfig {
        tls: identity.map(|id| TlsClient {
            trust: Trust::Pin(id.fingerprint().to_string()),
            host: server.local_addr().to_string(),
        }),
        ..ClientConfig::default()
    };
    let mut client = Client::connect(server.local_addr(), Request::default(), client_config)
        .expect("connecting");
    assert_eq!(server.wait_for_viewer(Duration::from_secs(5)), 1);

    // Credits: the publisher sends one frame per credit; the viewer returns one per frame.
    let (credit_tx, credit_rx) = mpsc::sync_channel::<()>(4);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let server = Arc::clone(&server);
        let stop = Arc::clone(&stop);
        let payload = payload.clone();
        thread::spawn(move || {
            let mut pool: Vec<Arc<Packet>> = (0..4)
                .map(|_| {
                    Arc::new(Packet {
                        keyframe: true,
                        payload: payload.clone(),
                        ..Packet::default()
                    })
                })
                .collect();
            let mut seq = 0u64;
            while credit_rx.recv().is_ok() && !stop.load(Ordering::SeqCst) {
                let i = pool
                    .iter()
                    .position(|f| Arc::strong_count(f) == 1)
                    .expect("at most two frames in flight");
                let f = Arc::get_mut(&mut pool[i]).expect("not shared");
                f.seq = seq;
                seq += 1;
                server.publish(&pool[i..=i]);
            }
        })
    };
    credit_tx.send(()).expect("publisher running");
    credit_tx.send(()).expect("publisher running");

    let mut dec = decoder(&info);
    let mut out = Frame::empty(info.format);
    let mut received = Packet::default();
    let bytes = payload.len() + HEADER_LEN;
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Bytes(bytes as u64));
    let name = if tls { "framewire-tls" } else { "framewire" };
    group.bench_function(format!("{name}/{kind}/{w}x{h}"), |b| {
        b.iter(|| {
            match client.recv(&mut received).expect("receiving") {
                Received::Packet { .. } => {
                    dec.decode_vec(&mut received.payload, &mut out)
                        .expect("decoding");
                }
                other => panic!("expected a packet on a one-rung ladder, got {other:?}"),
            }
            credit_tx.send(()).expect("publisher running");
        })
    });
    group.finish();
    stop.store(true, Ordering::SeqCst);
    drop(credit_tx);
    publisher.join().expect("publisher thread");
    server.shutdown();
    bytes
}

/// The floor: one thread writes `bytes`-byte messages as fast as the socket takes them, the
/// measured thread reads them whole. No framing, no decode.
fn plain_tcp(c: &mut Criterion, bytes: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding loopback");
    let addr = listener.local_addr().expect("local address");
    let writer = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accepting");
        s.set_nodelay(true).expect("nodelay");
        let msg: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
        while s.write_all(&msg).is_ok() {}
    });
    let mut s = TcpStream::connect(addr).expect("connecting");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = vec![0u8; bytes];
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(format!("tcp/{bytes}"), |b| {
        b.iter(|| s.read_exact(&mut buf).expect("reading"))
    });
    group.finish();
    drop(s);
    writer.join().expect("writer thread");
}

fn loopback(c: &mut Criterion) {
    for (kind, size) in CASES {
        let bytes = framewire(c, kind, size, false);
        plain_tcp(c, bytes);
        // TLS's cost where it is largest: raw video, nothing else to do per byte.
        if (kind, size) == (CodecKind::Raw, (1280, 720)) {
            framewire(c, kind, size, true);
        }
    }
}

criterion_group!(benches, loopback);
criterion_main!(benches);
