//! HTTP on the shared [`Fanout`], so that any browser, player or dashboard watches the stream:
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page: the live picture and live figures, no external assets (`page.html`) |
//! | `GET /stream`, `GET /?action=stream` | MJPEG, `multipart/x-mixed-replace` |
//! | `GET /snapshot`, `GET /?action=snapshot` | the newest frame, one JPEG |
//! | `GET /stats` | JSON: the stream, every viewer of every protocol (see [`stats`]) |
//! | `GET /metrics` | the Prometheus text format (see [`stats`]) |
//!
//! MJPEG is written as µStreamer and mjpg-streamer write it: the boundary once before the
//! first part and right after each JPEG (never as the next part's prefix, which makes Firefox
//! show each frame one late), and each part with `Content-Type`, `Content-Length`,
//! `X-Timestamp` (capture time, seconds since the epoch) and `X-Rendition`. Chromium draws a
//! part only once the next part's headers have arrived (crbug 527446), so an `<img>` (a request
//! that says `Sec-Fetch-Dest: image`) or `?advance_headers=1` gets the next part's headers
//! right after the boundary, as µStreamer's `advance_headers` does: those parts cannot carry a
//! `Content-Length` (the next JPEG is not made yet) nor a timestamp. `?advance_headers=0` turns
//! that off.
//!
//! HTTP viewers get JPEG: the stream's own rungs when it is JPEG (they follow their links
//! along the ladder like framewire viewers, and a camera's JPEG passes through as it is),
//! else a JPEG rendition at the top rung's size, made by the send path only while some
//! viewer is on it and shared by every viewer on it.
//!
//! Hostile requests get the least: the request line and headers must arrive whole within the
//! handshake deadline (else 408) and within [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers
//! (else 431); a method other than GET gets 405, an unknown path 404, anything httparse
//! cannot read 400. Every answer closes the connection. A connection that sends nothing at all
//! (browsers open spare ones) is closed at the deadline without an answer or a log line.

pub mod stats;

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Ladder, Packet, Placement, Request};

use crate::board::Board;
use crate::conn::Conn;
use crate::fanout::{
    Fanout, Opening, Protocol, ServerConfig, ServerEvent, is_timeout, write_parts,
};
use crate::token::Token;

/// The multipart boundary of `/stream`.
pub const BOUNDARY: &str = "framewireframe";

/// The most bytes a request line and its headers may take; more is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most headers a request may have; more is answered 431.
pub const MAX_HEADERS: usize = 32;

/// The page at `/`.
const PAGE: &str = include_str!("page.html");

/// Styles of `/stream` ([`Opening::Stream`]): each part's headers before its JPEG, or the
/// next part's headers right after the boundary (for Chromium's `<img>`).
const PLAIN: u8 = 0;
const EARLY: u8 = 1;

/// HTTP for one stream: the protocol behind `serve --http`.
#[derive(Debug)]
pub struct HttpProtocol {
    ladder: Arc<Ladder>,
    board: Arc<Board>,
    /// What every HTTP viewer asks the ladder for: its own rungs when they are JPEG, else JPEG.
    request: Request,
    /// The shared token every request must carry (`Authorization: Bearer`), if any.
    token: Option<Token>,
}

impl HttpProtocol {
    /// Serves the renditions of `ladder` as JPEG, and `board`'s figures.
    pub fn new(ladder: Arc<Ladder>, board: Arc<Board>) -> HttpProtocol {
        let request = if ladder.placement(0).rendition.stream.codec == CodecKind::Jpeg {
            Request::default()
        } else {
            Request {
                codec: Some(CodecKind::Jpeg),
                ..Request::default()
            }
        };
        HttpProtocol {
            ladder,
            board,
            request,
            token: None,
        }
    }

    /// Binds `addr` and serves HTTP viewers of `ladder`, reporting into `board` (which also
    /// reports any other fan-out it watches). `on_event` as for [`Fanout::bind`].
    pub fn bind(
        addr: impl ToSocketAddrs,
        ladder: Arc<Ladder>,
        board: Arc<Board>,
        config: ServerConfig,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        let mut protocol = HttpProtocol::new(Arc::clone(&ladder), Arc::clone(&board));
        protocol.token = config.token.clone();
        let fanout = Fanout::bind(addr, protocol, ladder, config, on_event)?;
        board.watch(&fanout);
        Ok(fanout)
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Stream { early: bool },
    Snapshot,
    Stats,
    Metrics,
}

/// A request that is answered with an error: its status line and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: &'static str,
    reason: String,
}

fn refuse(status: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

impl Protocol for HttpProtocol {
    fn name(&self) -> &'static str {
        "http"
    }

    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, String> {
        let route = match read_head(stream, timeout) {
            Ok(head) => match &self.token {
                Some(token) if !head.bearer.as_deref().is_some_and(|b| token.matches(b)) => {
                    Err(refuse(
                        "401 Unauthorized",
                        "this stream needs the token: send the header Authorization: Bearer TOKEN",
                    ))
                }
                _ => route(&head),
            },
            // Browsers open spare connections and close them unused: no answer, no log line.
            Err(Unread::Idle) => return Ok(Opening::Answered),
            Err(Unread::Closed(n)) => return Err(format!("closed after {n} bytes of a request")),
            Err(Unread::Io(e)) => return Err(format!("reading the request: {e}")),
            Err(Unread::Refused(r)) => Err(r),
        };
        let route = match route {
            Ok(route) => route,
            Err(r) => {
                let _ = respond(
                    stream,
                    r.status,
                    "text/plain; charset=utf-8",
                    "",
                    r.reason.as_bytes(),
                );
                linger_close(stream);
                return Err(format!("answered {}: {}", r.status, r.reason));
            }
        };
        let body = match route {
            Route::Stream { early } => {
                let style = if early { EARLY } else { PLAIN };
                return Ok(Opening::Stream {
                    request: self.request,
                    style,
                });
            }
            Route::Snapshot => return Ok(Opening::One(self.request)),
            Route::Page => ("text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
            Route::Stats => (
                "application/json",
                stats::json(&self.board, &self.ladder).into_bytes(),
            ),
            Route::Metrics => (
                "text/plain; version=0.0.4; charset=utf-8",
                stats::prometheus(&self.board).into_bytes(),
            ),
        };
        let (content_type, body) = body;
        respond(stream, "200 OK", content_type, "", &body)
            .map_err(|e| format!("writing the answer: {e}"))?;
        let _ = stream.shutdown(Shutdown::Write);
        Ok(Opening::Answered)
    }

    fn write_start(&self, stream: &mut Conn, _placement: &Placement, style: u8) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 200 OK\r\n\
             Content-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
             Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
             Pragma: no-cache\r\n\
             Connection: close\r\n\
             \r\n\
             --{BOUNDARY}\r\n"
        );
        if style == EARLY {
            head.push_str(EARLY_HEADERS);
        }
        stream.write_all(head.as_bytes())
    }

    /// Nothing: each JPEG names its size, and each part's `X-Rendition` its rendition.
    fn write_switch(&self, _: &mut Conn, _: &Placement) -> io::Result<()> {
        Ok(())
    }

    /// Allocates nothing: the part's head is written into a buffer on the stack.
    fn write_packet(&self, stream: &mut Conn, packet: &Packet, style: u8) -> io::Result<()> {
        if style == EARLY {
            let parts = &mut [IoSlice::new(&packet.payload), IoSlice::new(TRAILER_EARLY)];
            return write_parts(stream, parts);
        }
        let rendition = self.ladder.placement(packet.rendition).rendition;
        // About 130 bytes: the longest rendition label is a few dozen.
        const HEAD_MAX: usize = 256;
        let mut buf = [0u8; HEAD_MAX];
        let mut head = &mut buf[..];
        write!(
            head,
            "Content-Type: image/jpeg\r\n\
             Content-Length: {}\r\n\
             X-Timestamp: {}.{:06}\r\n\
             X-Rendition: {rendition}\r\n\
             \r\n",
            packet.payload.len(),
            packet.capture_us / 1_000_000,
            packet.capture_us % 1_000_000,
        )?;
        let len = HEAD_MAX - head.len();
        write_parts(
            stream,
            &mut [
                IoSlice::new(&buf[..len]),
                IoSlice::new(&packet.payload),
                IoSlice::new(TRAILER),
            ],
        )
    }

    /// Nothing when the stream ends (the connection closes after the last boundary); a
    /// refusal (the server is full) is a 503 with the reason.
    fn write_end(&self, stream: &mut Conn, error: Option<&str>) -> io::Result<()> {
        match error {
            None => Ok(()),
            Some(reason) => respond(
                stream,
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "",
                reason.as_bytes(),
            ),
        }
    }

    /// The snapshot: one JPEG, with its capture time.
    fn write_one(
        &self,
        stream: &mut Conn,
        placement: &Placement,
        packet: &Packet,
    ) -> io::Result<()> {
        let extra = format!(
            "X-Timestamp: {}\r\nX-Rendition: {}\r\n",
            timestamp(packet.capture_us),
            placement.rendition
        );
        respond(stream, "200 OK", "image/jpeg", &extra, &packet.payload)
    }
}

/// The next part's headers as Chromium's `<img>` needs them early: no length, no timestamp.
const EARLY_HEADERS: &str = "Content-Type: image/jpeg\r\n\r\n";

/// What follows each JPEG: the boundary (and, early, the next part's headers). Spelled out so
/// that a part is written without formatting anything; a test checks them against `BOUNDARY`.
const TRAILER: &[u8] = b"\r\n--framewireframe\r\n";
const TRAILER_EARLY: &[u8] = b"\r\n--framewireframe\r\nContent-Type: image/jpeg\r\n\r\n";

/// `1764770000.123456`: microseconds since the epoch as seconds.
fn timestamp(capture_us: u64) -> String {
    format!("{}.{:06}", capture_us / 1_000_000, capture_us % 1_000_000)
}

/// Writes a whole answer with a body, and closes the connection after it.
fn respond(
    stream: &mut Conn,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> io::Result<()> {
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else if status.starts_with("401") {
        "WWW-Authenticate: Bearer\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\
         {allow}{extra_headers}\r\n",
        body.len()
    );
    write_parts(
        stream,
        &mut [IoSlice::new(head.as_bytes()), IoSlice::new(body)],
    )
}

/// After an error answer: stop writing, and read (and drop) what the client still sends for a
/// moment, so that closing does not reset the connection before the client read the answer.
/// Bounded in time and bytes.
fn linger_close(stream: &mut Conn) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(250);
    let mut sink = [0u8; 4096];
    let mut read = 0;
    while read < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}

/// The parts of a request that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
    /// `Sec-Fetch-Dest`: `image` for an `<img>`.
    fetch_dest: Option<String>,
    /// The token of an `Authorization: Bearer TOKEN` header.
    bearer: Option<Vec<u8>>,
}

/// Why no request was read.
#[derive(Debug)]
enum Unread {
    /// Not a byte arrived before the client closed or the deadline passed (a browser's spare
    /// connection, opened in case it is needed).
    Idle,
    /// The client closed after this many bytes.
    Closed(usize),
    Io(io::Error),
    /// Answered with an error (431, 400, 408).
    Refused(Refusal),
}

/// Reads a request line and headers, all within `timeout`, at most [`MAX_HEAD`] bytes.
fn read_head(stream: &mut Conn, timeout: Duration) -> Result<Head, Unread> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        match parse_head(&buf[..len]) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) if len == MAX_HEAD => {
                return Err(Unread::Refused(refuse(
                    "431 Request Header Fields Too Large",
                    format!("the request line and headers exceed {MAX_HEAD} bytes"),
                )));
            }
            Ok(None) => {}
            Err(r) => return Err(Unread::Refused(r)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = || {
            Unread::Refused(refuse(
                "408 Request Timeout",
                format!("sent no whole request within {:.1}s", timeout.as_secs_f64()),
            ))
        };
        if left.is_zero() {
            return Err(if len == 0 { Unread::Idle } else { timed_out() });
        }
        stream.set_read_timeout(Some(left)).map_err(Unread::Io)?;
        match stream.read(&mut buf[len..]) {
            Ok(0) if len == 0 => return Err(Unread::Idle),
            Ok(0) => return Err(Unread::Closed(len)),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) && len == 0 => return Err(Unread::Idle),
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            Err(e) => return Err(Unread::Io(e)),
        }
    }
}

/// Parses what has arrived of a request: `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                "431 Request Header Fields Too Large",
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        Err(e) => {
            return Err(refuse(
                "400 Bad Request",
                format!("not an HTTP request: {e}"),
            ));
        }
    }
    let fetch_dest = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-fetch-dest"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    let bearer = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .and_then(|h| {
            let v = h.value;
            (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| v[7..].to_vec())
        });
    Ok(Some(Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        fetch_dest,
        bearer,
    }))
}

/// What a request asks for, or the error it gets.
fn route(head: &Head) -> Result<Route, Refusal> {
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let stream = || {
        let early = match param("advance_headers") {
            Some("1" | "true") => true,
            Some(_) => false,
            None => head.fetch_dest.as_deref() == Some("image"),
        };
        Route::Stream { early }
    };
    let route = match (path, param("action")) {
        ("/", Some("stream")) => stream(),
        ("/", Some("snapshot")) => Route::Snapshot,
        ("/" | "/index.html", _) => Route::Page,
        ("/stream", _) => stream(),
        ("/snapshot", _) => Route::Snapshot,
        ("/stats", _) => Route::Stats,
        ("/metrics", _) => Route::Metrics,
        _ => {
            return Err(refuse(
                "404 Not Found",
                format!("no such path: {}", preview(path)),
            ));
        }
    };
    if head.method != "GET" {
        return Err(refuse(
            "405 Method Not Allowed",
            format!("{} is not served; only GET", preview(&head.method)),
        ));
    }
    Ok(route)
}

/// At most 64 characters of something a client sent, for a message.
fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &str) -> Result<Option<Head>, Refusal> {
        parse_head(bytes.as_bytes())
    }

    fn routed(target: &str) -> Result<Route, String> {
        let head = Head {
            method: "GET".into(),
            target: target.into(),
            fetch_dest: None,
            bearer: None,
        };
        route(&head).map_err(|r| r.status.to_string())
    }

    #[test]
    fn routes_and_mjpg_streamer_aliases() {
        let plain = Ok(Route::Stream { early: false });
        assert_eq!(routed("/"), Ok(Route::Page));
        assert_eq!(routed("/stream"), plain);
        assert_eq!(routed("/?action=stream"), plain);
        assert_eq!(routed("/?action=snapshot"), Ok(Route::Snapshot));
        assert_eq!(routed("/snapshot"), Ok(Route::Snapshot));
        assert_eq!(routed("/stats"), Ok(Route::Stats));
        assert_eq!(routed("/metrics"), Ok(Route::Metrics));
        assert_eq!(
            routed("/stream?advance_headers=1"),
            Ok(Route::Stream { early: true })
        );
        assert_eq!(routed("/nope"), Err("404 Not Found".into()));
        assert_eq!(routed("/stream/"), Err("404 Not Found".into()));
    }

    #[test]
    fn an_img_gets_early_headers_unless_it_says_no() {
        let img = |target: &str| {
            route(&Head {
                method: "GET".into(),
                target: target.into(),
                fetch_dest: Some("image".into()),
                bearer: None,
            })
        };
        assert_eq!(img("/stream"), Ok(Route::Stream { early: true }));
        assert_eq!(
            img("/stream?advance_headers=0"),
            Ok(Route::Stream { early: false })
        );
    }

    #[test]
    fn a_bearer_token_is_read_from_the_authorization_header() {
        let head = |auth: &str| {
            let request = format!("GET /stream HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n");
            parse_head(request.as_bytes()).unwrap().unwrap().bearer
        };
        assert_eq!(head("Bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(head("bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(head("Basic czNjcmV0"), None);
        assert_eq!(head("Bearer "), None);
    }

    #[test]
    fn other_methods_get_405() {
        let post = Head {
            method: "POST".into(),
            target: "/stream".into(),
            fetch_dest: None,
            bearer: None,
        };
        assert_eq!(route(&post).unwrap_err().status, "405 Method Not Allowed");
    }

    #[test]
    fn requests_are_read_whole_or_refused() {
        assert_eq!(head("GET /stream HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let got = head("GET /stream HTTP/1.1\r\nSec-Fetch-Dest: image\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(got.target, "/stream");
        assert_eq!(got.fetch_dest.as_deref(), Some("image"));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let err = head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err();
        assert_eq!(err.status, "431 Request Header Fields Too Large");
        let err = head("\x16\x03\x01 hello\r\n\r\n").unwrap_err();
        assert_eq!(err.status, "400 Bad Request");
    }

    proptest::proptest! {
        /// Any bytes, and any prefix of a valid request, give a request, "more please" or a
        /// refusal; never a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Ok(Some(head)) = parse_head(&bytes) {
                let _ = route(&head);
            }
        }

        #[test]
        fn any_target_routes_or_is_refused(target in "\\PC{0,80}", image in proptest::bool::ANY) {
            let head = Head {
                method: "GET".into(),
                target,
                fetch_dest: image.then(|| "image".into()),
                bearer: None,
            };
            let _ = route(&head);
        }
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete_until_it_is_whole() {
        let request =
            b"GET /stream?advance_headers=1 HTTP/1.1\r\nHost: x\r\nSec-Fetch-Dest: image\r\n\r\n";
        for n in 0..request.len() {
            assert_eq!(parse_head(&request[..n]), Ok(None), "{n} bytes");
        }
        assert!(parse_head(request).unwrap().is_some());
    }

    #[test]
    fn trailers_are_the_boundary_and_the_early_headers() {
        assert_eq!(TRAILER, format!("\r\n--{BOUNDARY}\r\n").as_bytes());
        let early = format!("\r\n--{BOUNDARY}\r\n{EARLY_HEADERS}");
        assert_eq!(TRAILER_EARLY, early.as_bytes());
    }

    #[test]
    fn timestamps_are_seconds_with_microseconds() {
        assert_eq!(timestamp(1_764_770_000_000_042), "1764770000.000042");
    }
}
