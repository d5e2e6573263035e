//! framewire's own protocol on the shared [`Fanout`]: the viewer's hello, the stream handshake,
//! and a frame header before every payload (the layout is drawn in the crate doc).

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use framewire_core::Packet;

use crate::fanout::{
    Fanout, Protocol, ServerConfig, ServerEvent, is_timeout, read_full, write_message,
};
use crate::wire::{FrameHeader, HELLO_LEN, Handshake, Hello, MAX_ERROR_TEXT, MessageKind};

/// The framewire protocol for one stream, described by its handshake.
#[derive(Debug, Clone)]
pub struct FramewireProtocol {
    handshake: Handshake,
}

impl FramewireProtocol {
    /// Serves the stream `handshake` describes.
    pub fn new(handshake: Handshake) -> FramewireProtocol {
        FramewireProtocol { handshake }
    }
}

impl Protocol for FramewireProtocol {
    fn name(&self) -> &'static str {
        "framewire"
    }

    fn handshake(&self, stream: &mut TcpStream, timeout: Duration) -> Result<(), String> {
        read_hello(stream, timeout)?;
        stream
            .write_all(&self.handshake.to_bytes())
            .map_err(|e| format!("writing the stream handshake: {e}"))
    }

    fn write_packet(&self, stream: &mut TcpStream, packet: &Packet) -> io::Result<()> {
        let header = FrameHeader::frame(packet.seq, packet.capture_us, packet.payload.len() as u32);
        write_message(stream, &header.to_bytes(), &packet.payload)
    }

    fn write_end(&self, stream: &mut TcpStream, error: Option<&str>) -> io::Result<()> {
        let (kind, reason) = match error {
            None => (MessageKind::End, &b""[..]),
            Some(e) => (MessageKind::Error, e.as_bytes()),
        };
        let reason = &reason[..reason.len().min(MAX_ERROR_TEXT as usize)];
        let header = FrameHeader {
            kind,
            seq: 0,
            capture_us: 0,
            payload_len: reason.len() as u32,
        };
        write_message(stream, &header.to_bytes(), reason)
    }
}

/// A framewire server: the [`Fanout`] speaking [`FramewireProtocol`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `addr` and starts accepting viewers for a stream described by `handshake`.
    /// `on_event` is called (from server threads) for every viewer that joins, leaves or is rejected.
    pub fn bind(
        addr: impl ToSocketAddrs,
        handshake: Handshake,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        Fanout::bind(addr, FramewireProtocol::new(handshake), config, on_event)
    }
}

/// Reads the viewer's hello. Errors are one line naming what was wrong.
fn read_hello(stream: &mut TcpStream, timeout: Duration) -> Result<Hello, String> {
    let mut hello = [0u8; HELLO_LEN];
    match read_full(stream, &mut hello, Instant::now() + timeout) {
        Ok(HELLO_LEN) => {}
        Ok(n) => {
            return Err(format!(
                "closed after {n} of {HELLO_LEN} bytes of the viewer hello"
            ));
        }
        Err(e) if is_timeout(&e) => {
            return Err(format!(
                "sent no viewer hello within {:.1}s",
                timeout.as_secs_f64()
            ));
        }
        Err(e) => return Err(format!("reading the viewer hello: {e}")),
    }
    Hello::parse(&hello).map_err(|e| format!("not a framewire viewer: {e}"))
}
