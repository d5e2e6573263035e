//! framewire over UDP: frames cut into datagrams with parity, rebuilt on the other side, and a
//! session of hellos, cookies and reports. The layout is drawn in the crate doc.
//!
//! - [`datagram`]: the datagrams, to and from bytes; a frame into its datagrams.
//! - [`reassembly`]: frames back from datagrams, bounded, newest first.
//! - [`server`]: [`UdpServer`], the publisher.
//! - [`client`]: [`UdpConnector`] and [`UdpSubscription`], the viewer.

pub mod datagram;
pub mod reassembly;
pub mod server;

pub use server::{UdpConfig, UdpServer};
pub mod client;

pub use client::{UdpClientConfig, UdpConnector, UdpLosses, UdpSubscription};
