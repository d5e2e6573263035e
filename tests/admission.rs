//! Fair admission: one client that opens connections and stalls them in their handshake may take
//! every free handshake slot, but a viewer from another address then takes the slot of that
//! client's oldest stalled connection, and gets in at once, over plain TCP and TLS. The client
//! is 127.0.0.2, the viewer 127.0.0.1. The same holds for the control port of a UDP stream
//! with TLS.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};

mod common;
use common::{Serve, finish_view, spawn_view, stats};

/// A TCP connection to `to` from `source` (another loopback address).
fn connect_from(source: Ipv4Addr, to: SocketAddrV4) -> TcpStream {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )
    .unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).unwrap();
    TcpStream::from(fd)
}

/// Over `udp`, the stalled connections are to the control port of a UDP stream with TLS.
fn stalled_clients_do_not_lock_out_another_address(tls: bool, udp: bool) {
    let config = tempfile::tempdir().unwrap();
    let mut cmd = common::framewire();
    cmd.env("XDG_CONFIG_HOME", config.path());
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--codec", "jpeg"];
    // Long enough that the stalled connections hold their slots for the whole test.
    args.extend(["--handshake-timeout", "60s"]);
    if tls {
        args.push("--tls");
    }
    if udp {
        args.extend(["--transport", "udp"]);
    }
    let serve = Serve::spawn_with(cmd, &args);
    let served = serve.addr.trim_start_matches("udp://").to_string();
    let SocketAddr::V4(addr) = served.parse().unwrap() else {
        panic!("{}", serve.addr)
    };
    // 70 stalled connections from one address: more than every slot there is.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let _held: Vec<TcpStream> = (0..70).map(|_| connect_from(attacker, addr)).collect();
    let refused = serve.error_line("a connection closed for want of a slot");
    let (share, closed) = if udp {
        ("68 of them from this address", "control connection closed")
    } else {
        ("64 of them by this address", "closed in its handshake")
    };
    assert!(
        refused.contains("127.0.0.2") && refused.contains(share),
        "{refused}"
    );
    let mut view = vec!["--headless", "--frames", "10", "--stats", "json"];
    view.extend(["--connect", &served, "--no-reconnect"]);
    if udp {
        view.extend(["--transport", "udp"]);
    }
    let pin = if tls {
        serve.line_starting("tls fingerprint ")
    } else {
        String::new()
    };
    if tls {
        view.extend([
            "--tls",
            "--tls-pin",
            pin.trim_start_matches("tls fingerprint "),
        ]);
    }
    let s = stats(&finish_view(spawn_view(&view)));
    assert_eq!(s["frames"], 10, "{s}");
    // The stalled connection that gave up its slot is told of in the log.
    loop {
        let line = serve.error_line("the log line of the connection closed to make room");
        if line.contains(closed) {
            assert!(
                line.contains("127.0.0.2") && line.contains("127.0.0.1"),
                "{line}"
            );
            break;
        }
    }
}

#[test]
fn stalled_connections_from_one_address_leave_another_its_slots() {
    stalled_clients_do_not_lock_out_another_address(false, false);
}

#[test]
fn stalled_connections_from_one_address_leave_another_its_slots_over_tls() {
    stalled_clients_do_not_lock_out_another_address(true, false);
}

#[test]
fn stalled_control_connections_from_one_address_leave_another_its_udp_stream() {
    stalled_clients_do_not_lock_out_another_address(true, true);
}

/// Every handshake slot held by another address, one each: a viewer gets no slot, and its
/// protocol tells it so (framewire: an error the viewer prints; HTTP: 503 with Retry-After).
#[test]
fn a_connection_that_gets_no_slot_is_told_the_server_is_busy() {
    let (serve, http) = common::http::serve_http(&["--handshake-timeout", "60s"]);
    let (SocketAddr::V4(addr), SocketAddr::V4(http)) =
        (serve.addr.parse().unwrap(), http.parse().unwrap())
    else {
        panic!("{} {http}", serve.addr)
    };
    let held = |to: SocketAddrV4| -> Vec<TcpStream> {
        (1..=64)
            .map(|i| connect_from(Ipv4Addr::new(127, 0, 1, i), to))
            .collect()
    };
    let _framewire = held(addr);
    let _http = held(http);
    let out = common::view(&["--headless", "--connect", &serve.addr, "--no-reconnect"]);
    assert_eq!(out.status.code(), Some(1));
    let said = common::stderr(&out);
    assert!(
        said.contains("refused the viewer: busy: 64 connections are already in their handshake"),
        "{said}"
    );
    let mut get = TcpStream::connect(http).unwrap();
    std::io::Write::write_all(&mut get, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut get, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
}
