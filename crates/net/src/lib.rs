//! framewire's wire format and TCP transport. Never links wgpu, winit or nokhwa.
//!
//! # Wire format, version 1
//!
//! All integers are little-endian. A connection goes:
//!
//! ```text
//! viewer -> server   hello            8 bytes, once
//! server -> viewer   stream handshake 24 bytes, once
//! server -> viewer   frame header     32 bytes  } repeated; the last message is an
//!                    payload          N bytes   } End (or Error) header
//! ```
//!
//! Viewer hello (the server rejects a connection whose first 8 bytes are not this):
//!
//! ```text
//! offset size field
//! 0      4    magic "FWVH"
//! 4      2    wire version (1)
//! 6      2    reserved, ignored
//! ```
//!
//! Stream handshake (the viewer learns everything about the stream from it):
//!
//! ```text
//! offset size field
//! 0      4    magic "FWST"
//! 4      2    wire version (1)
//! 6      1    codec id: 1 raw, 2 bincode, 3 jpeg
//! 7      1    pixel format of decoded frames: 1 rgb8, 2 rgba8
//! 8      4    width in pixels, 1..=16384
//! 12     4    height in pixels, 1..=16384
//! 16     4    frames per second x 1000 (0 = unpaced), informational
//! 20     4    reserved, zero
//! ```
//!
//! Frame header, before every payload:
//!
//! ```text
//! offset size field
//! 0      4    magic "FWFR"
//! 4      1    kind: 0 frame, 1 end of stream (no payload), 2 error (payload: UTF-8 reason, <= 1024 bytes)
//! 5      3    reserved, zero
//! 8      8    sequence number (gaps = frames this viewer did not get)
//! 16     8    capture time, microseconds since the Unix epoch
//! 24     4    payload length in bytes, checked against the reader's maximum before anything is allocated
//! 28     4    reserved, zero
//! ```
//!
//! The payload is the codec's (see the codec crate): packed pixel rows for raw, a bincode
//! record for bincode, a JPEG file for jpeg.
//!
//! # Pieces
//!
//! - [`wire`]: the three fixed messages, to and from bytes.
//! - [`FrameReader`]: sans-IO, bytes split anywhere in, events out.
//! - [`Server`]: accepts viewers, one thread each, newest frame wins.
//! - [`Client`]: the viewer's connection.

mod adapt;
pub mod client;
pub mod fanout;
pub mod framewire;
pub mod reader;
// SIOCOUTQ and TCP_INFO through libc: no safe wrapper exists (see the module's doc).
#[allow(unsafe_code)]
mod tcp_queue;
pub mod wire;

pub use client::{Client, ClientConfig, Incoming, NetError, Received, TcpConnector};
pub use fanout::{Fanout, Protocol, SHUTDOWN_GRACE, ServerConfig, ServerEvent};
pub use framewire::{FramewireProtocol, Server};
pub use reader::{Event, FrameReader};
pub use wire::{
    DEFAULT_MAX_PAYLOAD, FrameHeader, HANDSHAKE_LEN, HEADER_LEN, HELLO_LEN, Handshake, Hello,
    MessageKind, WireError, WireErrorKind,
};
