//! framewire over UDP: frames cut into datagrams with parity, rebuilt on the other side, and a
//! session of hellos, cookies and reports. The layout is drawn in the crate doc.
//!
//! - [`datagram`]: the datagrams, to and from bytes; a frame into its datagrams.
//! - [`reassembly`]: frames back from datagrams, bounded, newest first.
//! - [`server`]: [`UdpServer`], the publisher.
//! - [`client`]: [`UdpConnector`] and [`UdpSubscription`], the viewer.
//! - [`seal`] and [`control`]: `--tls`, datagrams sealed under keys a TLS control
//!   connection exported.
//! - [`chat`]: [`UdpChatListener`] and [`UdpChatDialer`], the two sides of a call: each a
//!   server for the stream it sends and a subscription to the peer's (see that module).

pub mod control;
pub mod datagram;
pub mod reassembly;
pub mod seal;
pub mod server;

pub use server::{Admit, UdpConfig, UdpServer};
pub mod client;

pub use client::{UdpClientConfig, UdpConnector, UdpLosses, UdpSubscription};
pub mod chat;

pub use chat::{UdpCallConfig, UdpChatDialer, UdpChatListener};
