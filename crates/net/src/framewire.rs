//! framewire's own protocol on the shared [`Fanout`]: the viewer's hello (what it asks for),
//! the stream handshake (where it starts), a frame header before every payload and a switch
//! message before the first frame of another rendition (the layout is drawn in the crate doc).

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{Ladder, Packet, Placement};

use crate::fanout::{
    Fanout, Opening, Protocol, ServerConfig, ServerEvent, is_timeout, read_full, write_message,
};
use crate::wire::{
    FrameHeader, HELLO_HEAD_LEN, HELLO_LEN, Handshake, Hello, MAX_ERROR_TEXT, MessageKind, Switch,
    WireErrorKind,
};

/// The framewire protocol for one stream, whatever rendition each viewer is in.
#[derive(Debug, Clone)]
pub struct FramewireProtocol {
    fps: f64,
}

impl FramewireProtocol {
    /// Serves a stream paced to `fps` frames per second (0 = unpaced), which each viewer's
    /// handshake announces.
    pub fn new(fps: f64) -> FramewireProtocol {
        FramewireProtocol { fps }
    }
}

impl Protocol for FramewireProtocol {
    fn name(&self) -> &'static str {
        "framewire"
    }

    /// Reads the viewer's hello: its first 8 bytes (magic and version), then, for this
    /// version, the request. A viewer of another version is answered with this version's
    /// handshake (so that it names both) and refused; a request this build cannot read (an
    /// unknown codec, a width out of range) is refused with the reason.
    fn read_request(&self, stream: &mut TcpStream, timeout: Duration) -> Result<Opening, String> {
        let deadline = Instant::now() + timeout;
        let mut hello = [0u8; HELLO_LEN];
        read_hello_part(stream, &mut hello, 0..HELLO_HEAD_LEN, deadline, timeout)?;
        let head = hello[..HELLO_HEAD_LEN].try_into().expect("8 bytes");
        match Hello::parse_head(head) {
            Ok(()) => {}
            Err(e @ WireErrorKind::UnsupportedVersion { .. }) => {
                // The peer speaks framewire: tell it which version this end speaks.
                let _ = stream.write_all(&Handshake::version_answer());
                return Err(e.to_string());
            }
            Err(e) => return Err(format!("not a framewire viewer: {e}")),
        }
        read_hello_part(
            stream,
            &mut hello,
            HELLO_HEAD_LEN..HELLO_LEN,
            deadline,
            timeout,
        )?;
        match Hello::parse(&hello) {
            Ok(hello) => Ok(Opening::Stream {
                request: hello.request,
                style: 0,
            }),
            Err(e) => {
                let reason = e.to_string();
                let _ = self.write_end(stream, Some(&reason));
                Err(reason)
            }
        }
    }

    fn write_start(&self, stream: &mut TcpStream, placement: &Placement, _: u8) -> io::Result<()> {
        let handshake = Handshake {
            placement: *placement,
            fps: self.fps,
        };
        stream.write_all(&handshake.to_bytes())
    }

    fn write_switch(&self, stream: &mut TcpStream, placement: &Placement) -> io::Result<()> {
        let switch = Switch {
            placement: *placement,
        };
        write_message(stream, &Switch::header().to_bytes(), &switch.to_bytes())
    }

    fn write_packet(&self, stream: &mut TcpStream, packet: &Packet, _: u8) -> io::Result<()> {
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
    /// Binds `addr` and starts accepting viewers of the renditions `ladder` offers, paced to
    /// `fps`. `on_event` is called (from server threads) for every viewer that joins, leaves
    /// or is rejected.
    pub fn bind(
        addr: impl ToSocketAddrs,
        ladder: Arc<Ladder>,
        fps: f64,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        Fanout::bind(addr, FramewireProtocol::new(fps), ladder, config, on_event)
    }
}

/// Reads bytes `range` of the viewer's hello before `deadline`. Errors are one line naming
/// what was wrong.
fn read_hello_part(
    stream: &mut TcpStream,
    hello: &mut [u8; HELLO_LEN],
    range: std::ops::Range<usize>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    let (from, to) = (range.start, range.end);
    match read_full(stream, &mut hello[range], deadline) {
        Ok(n) if n == to - from => Ok(()),
        Ok(n) => Err(format!(
            "closed after {} of {HELLO_LEN} bytes of the viewer hello",
            from + n
        )),
        Err(e) if is_timeout(&e) => Err(format!(
            "sent no viewer hello within {:.1}s",
            timeout.as_secs_f64()
        )),
        Err(e) => Err(format!("reading the viewer hello: {e}")),
    }
}
