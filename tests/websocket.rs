//! `serve --http`'s WebSocket at `/ws` (built with H.264), with a real WebSocket client
//! (tungstenite) against the real binary: the access units arrive whole, in order, each with
//! its header, and decode to the test pattern; the opening is checked like every other route
//! (token, `Origin`, version); and hostile clients (unmasked, oversized, fragmented and
//! malformed frames, data messages, bad UTF-8, a ping flood) each get their close code and one
//! log line while a well-behaved client beside them misses no frame. A ping gets its pong, a
//! close its echo.

#![cfg(feature = "h264")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Decoded, Frame, PixelFormat, StreamInfo};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Message, client::IntoClientRequest};

mod common;
use common::WAIT;
use common::http::{serve_http, serve_http_token};

const SIZE: (u32, u32) = (320, 240);

/// The request a browser sends for `/ws` at `addr`, with `extra` headers.
fn opening(addr: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Opens `/ws` at `addr` by hand (so that what follows may be anything); returns the
/// connection after the `101` and its status line, or the whole answer when it is not 101.
fn upgrade(addr: &str, extra: &str) -> Result<TcpStream, String> {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(opening(addr, extra).as_bytes()).unwrap();
    // The head, a byte at a time, so that nothing after it is taken.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        match tcp.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.starts_with("HTTP/1.1 101 ") {
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "RFC 6455's example key answered wrongly: {head}"
        );
        Ok(tcp)
    } else {
        let mut rest = String::new();
        let _ = tcp.read_to_string(&mut rest);
        Err(head + &rest)
    }
}

/// A WebSocket client on a connection [`upgrade`] opened.
fn client(tcp: TcpStream) -> WebSocket<TcpStream> {
    WebSocket::from_raw_socket(tcp, Role::Client, None)
}

/// One access unit as it arrived.
struct Au {
    keyframe: bool,
    rung: u8,
    seq: u64,
    capture_us: u64,
    bytes: Vec<u8>,
}

fn parse_au(message: &[u8]) -> Au {
    assert!(
        message.len() > 20,
        "a binary message of {} bytes",
        message.len()
    );
    assert_eq!(message[0], 1, "kind 1, an access unit");
    assert_eq!(message[3], 0, "the reserved byte");
    let u64_at = |at: usize| u64::from_le_bytes(message[at..at + 8].try_into().unwrap());
    Au {
        keyframe: message[1] & 1 == 1,
        rung: message[2],
        seq: u64_at(4),
        capture_us: u64_at(12),
        bytes: message[20..].to_vec(),
    }
}

/// The next message that is not a ping or pong.
fn next(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => return m,
            Err(e) => panic!("reading the WebSocket: {e}"),
        }
    }
}

#[test]
fn a_websocket_client_gets_each_access_unit_whole_in_order_with_its_header() {
    let (serve, addr) = serve_http(&["--codec", "h264", "--width", "320", "--adapt", "off"]);
    let mut ws = client(upgrade(&addr, "").expect("the upgrade"));
    let Message::Text(first) = next(&mut ws) else {
        panic!("the first message names the rendition");
    };
    let rendition: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(rendition["codec"], "h264", "{rendition}");
    assert_eq!(
        (rendition["width"].as_u64(), rendition["height"].as_u64()),
        (Some(u64::from(SIZE.0)), Some(u64::from(SIZE.1)))
    );
    assert_eq!(rendition["rung"], 0, "{rendition}");
    let mut decoder = framewire_codec::decoder(&StreamInfo {
        codec: CodecKind::H264,
        width: SIZE.0,
        height: SIZE.1,
        format: PixelFormat::Rgb8,
    });
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut last: Option<(u64, u64)> = None;
    for i in 0..90 {
        let Message::Binary(message) = next(&mut ws) else {
            panic!("message {i} is not binary");
        };
        let au = parse_au(&message);
        assert!(i > 0 || au.keyframe, "the first access unit is a keyframe");
        assert_eq!(au.rung, 0);
        let now_us = framewire_core::now_micros();
        assert!(
            au.capture_us <= now_us && now_us - au.capture_us < 5_000_000,
            "a capture time {} us before arrival",
            now_us.saturating_sub(au.capture_us)
        );
        assert_eq!(
            decoder.decode(&au.bytes, &mut frame).expect("decodes"),
            Decoded::Picture
        );
        let number = framewire_pattern::read_frame_number(&frame).expect("a pattern number");
        if let Some((seq, n)) = last {
            assert_eq!(au.seq, seq + 1, "frame numbers follow each other");
            assert_eq!(number, n + 1, "pictures follow each other");
        }
        last = Some((au.seq, number));
    }
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .unwrap();
    // Its close is echoed, and it leaves without an error.
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no close echo: {e}"),
        }
    }
    let left = serve.line_containing(" left after ");
    assert!(!left.contains("websocket:"), "{left}");
}

#[test]
fn the_opening_is_checked_like_every_route() {
    let (_serve, addr) = serve_http_token(
        "correct-horse-battery",
        &["--codec", "h264", "--width", "320"],
    );
    let refused = upgrade(&addr, "").unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    let refused = upgrade(&addr, "Authorization: Bearer wrong\r\n").unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    let mut ws = client(upgrade(&addr, "Authorization: Bearer correct-horse-battery\r\n").unwrap());
    assert!(matches!(next(&mut ws), Message::Text(_)));
    assert!(matches!(next(&mut ws), Message::Binary(_)));
    // A page of another site cannot open it with the visitor's credentials.
    let other = upgrade(
        &addr,
        "Authorization: Bearer correct-horse-battery\r\nOrigin: http://evil.example\r\n",
    )
    .unwrap_err();
    assert!(other.starts_with("HTTP/1.1 403 "), "{other}");
    assert!(other.contains("evil.example"), "{other}");
    let same = upgrade(
        &addr,
        &format!("Authorization: Bearer correct-horse-battery\r\nOrigin: http://{addr}\r\n"),
    );
    assert!(same.is_ok(), "{:?}", same.err());
    // Another version, and a plain GET, are told what to do.
    let mut tcp = TcpStream::connect(&addr).unwrap();
    let request = opening(&addr, "Authorization: Bearer correct-horse-battery\r\n")
        .replace("Version: 13", "Version: 8");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
    let mut tcp = TcpStream::connect(&addr).unwrap();
    write!(
        tcp,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer correct-horse-battery\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("/stream is the same picture"), "{answer}");
}

/// A client frame: `first` (FIN, RSV and opcode), masked unless `mask` is `None`.
fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n < 65536 => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

const MASK: Option<[u8; 4]> = Some([0x12, 0x34, 0x56, 0x78]);

/// Reads what the server sends after `sent` until its close frame: the close's code and
/// reason, and whether a pong came first.
fn close_after(tcp: &mut TcpStream) -> (u16, String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut pong = false;
    let deadline = Instant::now() + WAIT;
    loop {
        // Whole server frames from the start of `got`.
        let mut at = 0;
        while got.len() >= at + 2 {
            let len = match got[at + 1] & 0x7f {
                126 if got.len() >= at + 4 => (
                    4,
                    usize::from(u16::from_be_bytes([got[at + 2], got[at + 3]])),
                ),
                127 if got.len() >= at + 10 => (
                    10,
                    u64::from_be_bytes(got[at + 2..at + 10].try_into().unwrap()) as usize,
                ),
                126 | 127 => break,
                n => (2, usize::from(n)),
            };
            if got.len() < at + len.0 + len.1 {
                break;
            }
            let payload = &got[at + len.0..at + len.0 + len.1];
            match got[at] & 0x0f {
                0x8 => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return (
                        code,
                        String::from_utf8_lossy(&payload[2..]).into_owned(),
                        pong,
                    );
                }
                0xa => pong = true,
                _ => {}
            }
            at += len.0 + len.1;
        }
        got.drain(..at);
        assert!(Instant::now() < deadline, "no close frame within {WAIT:?}");
        match tcp.read(&mut buf) {
            Ok(0) => panic!("closed without a close frame"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading: {e}"),
        }
    }
}

#[test]
fn hostile_clients_each_get_a_close_code_and_one_line_and_the_others_miss_nothing() {
    let (serve, addr) = serve_http(&["--codec", "h264", "--width", "320", "--adapt", "off"]);
    // The well-behaved one, counting every frame while the others misbehave.
    let watcher = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut ws = client(upgrade(&addr, "").unwrap());
            let mut last = None;
            let until = Instant::now() + Duration::from_secs(6);
            let mut frames = 0;
            while Instant::now() < until {
                if let Message::Binary(m) = next(&mut ws) {
                    let au = parse_au(&m);
                    if let Some(seq) = last {
                        assert_eq!(au.seq, seq + 1, "a frame went missing");
                    }
                    last = Some(au.seq);
                    frames += 1;
                }
            }
            frames
        })
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("unmasked", frame(0x82, b"hi", None), 1002, "unmasked"),
        (
            "oversized",
            // A header that announces 1 MiB: refused before the payload is read.
            frame(0x82, &[], MASK)
                .into_iter()
                .take(1)
                .chain([0x80 | 127])
                .chain((1u64 << 20).to_be_bytes())
                .chain(MASK.unwrap())
                .collect(),
            1009,
            "1048576 bytes",
        ),
        (
            "a fragmented ping",
            frame(0x09, b"x", MASK),
            1002,
            "fragmented",
        ),
        ("a reserved opcode", frame(0x83, b"x", MASK), 1002, "opcode"),
        ("reserved bits", frame(0xc2, b"x", MASK), 1002, "reserved"),
        (
            "a data message",
            frame(0x82, b"hello", MASK),
            1003,
            "data message",
        ),
        (
            "text not UTF-8",
            frame(0x81, &[0xff, 0xfe], MASK),
            1007,
            "UTF-8",
        ),
        (
            "a ping flood",
            (0..700)
                .flat_map(|_| frame(0x89, &[7; 100], MASK))
                .collect(),
            1008,
            "KiB within",
        ),
    ];
    let mut attackers = Vec::new();
    for (what, bytes, code, says) in cases {
        let mut tcp = upgrade(&addr, "").unwrap();
        let me = tcp.local_addr().unwrap().to_string();
        tcp.write_all(&bytes).unwrap();
        let (got, reason, _) = close_after(&mut tcp);
        assert_eq!(got, code, "{what}: {reason}");
        // Its lines: that it connected, then the one that says why it left.
        let mut mine = Vec::new();
        let line = loop {
            let line = serve.line(&format!("{me} left"));
            if line.contains(&me) {
                mine.push(line.clone());
            }
            if line.contains(&format!("{me} left")) {
                break line;
            }
        };
        assert!(
            mine.len() == 2 && mine[0].contains(" connected "),
            "{what}: {mine:?}"
        );
        attackers.push(me);
        assert!(
            line.contains("websocket: ")
                && line.to_lowercase().contains(&says.to_lowercase())
                && line.contains(&format!("(closed {code})")),
            "{what}: {line}"
        );
    }
    // A ping gets its pong, and the stream goes on.
    let mut tcp = upgrade(&addr, "").unwrap();
    tcp.write_all(&frame(0x89, b"are you there", MASK)).unwrap();
    tcp.write_all(&frame(0x88, &1000u16.to_be_bytes(), MASK))
        .unwrap();
    let (code, _, pong) = close_after(&mut tcp);
    assert!(pong, "a pong before the close's echo");
    assert_eq!(code, 1000, "its close echoed");
    let frames = watcher.join().expect("the watcher saw every frame");
    assert!(frames > 100, "the watcher got {frames} frames in 6 s");
    // No other line said any of them was an error but the one each.
    let errors: Vec<String> = serve.errors.try_iter().collect();
    assert!(
        errors
            .iter()
            .all(|l| !l.contains("panick") && attackers.iter().all(|a| !l.contains(a.as_str()))),
        "{errors:?}"
    );
}

#[test]
fn a_jpeg_ladder_gives_websocket_clients_h264_at_the_top_size() {
    let (_serve, addr) = serve_http(&["--codec", "jpeg", "--width", "320"]);
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let tcp = TcpStream::connect(&addr).unwrap();
    let (mut ws, _) = tungstenite::client::client(request, tcp).expect("the handshake");
    let Message::Text(first) = next(&mut ws) else {
        panic!("the rendition first");
    };
    let rendition: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(rendition["codec"], "h264", "{rendition}");
    assert_eq!(rendition["width"], 320, "{rendition}");
    assert_eq!(rendition["rung"], serde_json::Value::Null, "{rendition}");
    let Message::Binary(m) = next(&mut ws) else {
        panic!("an access unit");
    };
    let au = parse_au(&m);
    assert!(au.keyframe);
    assert_eq!(au.rung, 255, "off the ladder");
}

mod pages {
    //! The page through WebCodecs in real browsers (tests/common/browser.rs says how).

    use super::common::browser::{
        Launch, Login, Page, chromium, chromium_trusting_any_certificate, firefox, page_in_with,
    };

    const ARGS: &[&str] = &["--codec", "h264", "--width", "320", "--adapt", "off"];

    fn page(browser: &str, launch: Launch, login: Option<Login<'_>>, cut: bool) {
        page_in_with(
            browser,
            browser,
            launch,
            Page {
                args: ARGS,
                query: "",
                mode: "webcodecs",
                login,
                cut,
            },
        );
    }

    #[test]
    fn chromium_decodes_the_stream_with_webcodecs() {
        page("chromium", chromium, None, false);
    }

    #[test]
    fn firefox_decodes_the_stream_with_webcodecs() {
        page("firefox-esr", firefox, None, false);
    }

    #[test]
    fn chromium_reconnects_when_its_websocket_is_cut_and_resumes_at_a_keyframe() {
        page("chromium", chromium, None, true);
    }

    #[test]
    fn chromium_logs_in_and_watches_over_wss() {
        page(
            "chromium",
            chromium_trusting_any_certificate,
            Some(Login {
                token: "correct horse battery staple",
                https: true,
            }),
            false,
        );
    }
}
