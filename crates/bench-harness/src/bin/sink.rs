//! A viewer that only receives: `sink ADDR FRAMES [sha256:PIN]`, for measuring a server's send
//! pipeline (over TLS, trusting the pinned certificate, when a pin is given).
//!
//! Connects to a framewire server, reads `FRAMES` frames without decoding them (so the
//! measurement is the server's capture, resize, encode and send, not this process's decode),
//! and prints one JSON object: `{"fps": .., "frames": .., "bytes": .., "seconds": ..}`.
//! The clock starts at the tenth frame, so connecting and the server's warm-up are not
//! counted. Exits 1 with the reason when the stream ends early or breaks.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use framewire_core::Request;
use framewire_core::{Packet, Received};
use framewire_net::{Client, ClientConfig};

/// Frames received before the clock starts.
const WARM_UP: u64 = 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, frames, pin) = match args.as_slice() {
        [addr, frames] => (addr, frames, None),
        [addr, frames, pin] => (addr, frames, Some(pin.clone())),
        _ => {
            eprintln!("usage: sink ADDR FRAMES [sha256:PIN] (e.g. sink 127.0.0.1:5555 600)");
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sink: ADDR {addr:?} is not HOST:PORT: {e}");
            return ExitCode::from(2);
        }
    };
    let frames: u64 = match frames.parse() {
        Ok(n) if n > WARM_UP => n,
        _ => {
            eprintln!("sink: FRAMES {frames:?} must be a number above {WARM_UP}");
            return ExitCode::from(2);
        }
    };
    let tls = pin.map(|pin| framewire_net::TlsClient {
        trust: framewire_net::Trust::Pin(pin),
        host: addr.to_string(),
    });
    match run(addr, frames, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sink: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: SocketAddr, frames: u64, tls: Option<framewire_net::TlsClient>) -> Result<(), String> {
    let config = ClientConfig {
        tls,
        ..ClientConfig::default()
    };
    let mut client =
        Client::connect(addr, Request::default(), config).map_err(|e| format!("{addr}: {e}"))?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut start = Instant::now();
    let mut packet = Packet::default();
    while received < frames {
        match client.recv(&mut packet) {
            Ok(Received::Packet { .. }) => {
                let payload = &packet.payload;
                received += 1;
                if received == WARM_UP {
                    start = Instant::now();
                } else if received > WARM_UP {
                    bytes += payload.len() as u64;
                }
            }
            Ok(other) => return Err(format!("stream ended after {received} frames: {other:?}")),
            Err(e) => return Err(format!("after {received} frames: {e}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let timed = frames - WARM_UP;
    println!(
        "{{\"fps\": {:.2}, \"frames\": {timed}, \"bytes\": {bytes}, \"seconds\": {seconds:.4}}}",
        timed as f64 / seconds
    );
    Ok(())
}
