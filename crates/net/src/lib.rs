//! framewire's transports: the protocols of framewire-wire (which draws the wire format and
//! holds every state machine) over TCP, TLS and UDP sockets, with a thread per subscriber.
//! Never links wgpu, winit or nokhwa.
//!
//! # Pieces
//!
//! - [`Fanout`]: accepts viewers, one thread each, newest frame wins, each viewer on its rung
//!   of the quality ladder (moved by `adapt`, which judges its link); [`Server`] binds it
//!   with framewire's [`Protocol`].
//! - [`Client`]: the viewer's connection.
//! - [`ChatListener`], [`ChatDialer`]: the two sides of a call, each a fan-out for its
//!   stream and a connector for the other's.
//! - [`http`]: HTTP on the same fan-out, for browsers, players and dashboards (MJPEG, a
//!   snapshot, a page, `/stats`, `/metrics`); [`Board`] holds the figures every fan-out reports.
//! - [`udp`]: the same stream over datagrams.
//! - [`hub`]: a hub that many senders push to ([`hub::HubListener`]), and the sender's end
//!   ([`hub::HubPusher`]).
//! - [`publish`]: the stream pushed to a media server over RTMP or RTSP ([`publish::Push`]).

mod adapt;
pub mod board;
pub mod call;
pub mod chat;
pub mod client;
pub mod conn;
pub mod fanout;
pub mod framewire;
pub mod http;
pub mod hub;
pub mod publish;
mod roster;
mod slots;
pub mod tls;
// SIOCOUTQ and TCP_INFO through libc: no safe wrapper exists (see the module's doc).
#[allow(unsafe_code)]
mod tcp_queue;
pub mod udp;

pub use board::{Board, ProtocolFigures, ViewerFigures};
pub use chat::{CallConfig, ChatDialer, ChatListener};
pub use client::{Client, ClientConfig, NetError, TcpConnector};
pub use conn::Conn;
pub use fanout::{Fanout, Opening, Protocol, Refused, SHUTDOWN_GRACE, ServerConfig, ServerEvent};
pub use framewire::{FramewireProtocol, Server};
pub use http::HttpProtocol;
pub use tls::{TlsClient, TlsServer, Trust};
