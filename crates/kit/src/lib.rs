//! framewire's plugins put together from plain options, for any program that streams: the
//! binary turns its flags into these options, and a binding can fill them in directly.
//!
//! - [`send`]: a sender planned from a source, a codec and a quality ladder: the source opened
//!   (capture), each rendition's encoder made (codec), the session's
//!   [`Sender`](framewire_session::Sender) for any list of publishers.
//! - [`call`]: a side of a call's send path on a thread of its own, and what it sent.
//! - [`files`]: a recording of what is sent, and what a viewer keeps of what arrives.
//! - [`hub`]: a hub's receiving side: each pushing sender's stream decoded on a thread of its
//!   own.
//! - [`watch`]: frames as a program receives them, each with its number, time, codec, size and
//!   rung.
//! - [`lines`]: the one-line words for what servers, senders, viewers and calls do.
//! - [`sink`]: a sink that passes frames on and keeps the last.
//! - [`tls`]: the identity a server presents, and how a client trusts one.
//! - [`transport`]: each transport's framewire server, connector and call side (net); the only
//!   place in this crate that names a transport.
//!
//! Nothing here prints: what the caller may tell the user comes back as notes and errors, which
//! name each option by its command-line flag.

pub mod call;
pub mod files;
pub mod hub;
pub mod lines;
pub mod send;
pub mod sink;
pub mod tls;
pub mod transport;
pub mod value;
pub mod watch;

pub use send::{PrepareError, Prepared, Rung, SendOptions};
pub use transport::{
    Extra, Place, Receiving, Served, Transport, TransportError, TransportOptions, call_side,
    connector, server,
};
