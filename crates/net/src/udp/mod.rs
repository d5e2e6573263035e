//! framewire over UDP: frames cut into datagrams with parity, rebuilt on the other side, and a
//! session of hellos, cookies and reports, over sockets and threads. The layout, its parsing,
//! reassembly, sealing and pacing are framewire-wire's; this module moves their bytes.
//!
//! - [`server`]: [`UdpServer`], the publisher.
//! - [`client`]: [`UdpConnector`] and [`UdpSubscription`], the viewer.
//! - [`control`]: `--tls`, the TLS control connection whose exported keys seal the
//!   datagrams (framewire-wire's `seal`).
//! - [`chat`]: [`UdpChatListener`] and [`UdpChatDialer`], the two sides of a call: each a
//!   server for the stream it sends and a subscription to the peer's (see that module).

pub mod control;
pub mod server;

pub use server::{Admit, UdpConfig, UdpServer};
pub mod client;

pub use client::{UdpClientConfig, UdpConnector, UdpLosses, UdpSubscription};
pub mod chat;

pub use chat::{UdpCallConfig, UdpChatDialer, UdpChatListener};
