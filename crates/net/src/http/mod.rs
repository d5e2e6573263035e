//! HTTP on the shared [`Fanout`], so that any browser, player or dashboard watches the stream:
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page: the live picture and live figures, no external assets (`page.html`) |
//! | `GET /stream`, `GET /?action=stream` | MJPEG, `multipart/x-mixed-replace` |
//! | `GET /snapshot`, `GET /?action=snapshot` | the newest frame, one JPEG |
//! | `GET /ws` (a WebSocket) | H.264, one access unit per message, for the page's WebCodecs (see [`ws`]) |
//! | `GET /stats` | JSON: the stream, every viewer of every protocol (see [`stats`]) |
//! | `GET /metrics` | the Prometheus text format (see [`stats`]) |
//! | `GET /login`, `POST /login` | with a token: the login form, and logging in (see below) |
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
//! viewer is on it and shared by every viewer on it. A WebSocket viewer gets H.264 the same
//! way: the stream's own rungs when it is H.264, else an H.264 rendition at the top size.
//!
//! Hostile requests get the least: the request line and headers must arrive whole within the
//! handshake deadline (else 408) and within [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers
//! (else 431); a method other than GET gets 405, an unknown path 404, anything httparse
//! cannot read 400. Every answer closes the connection. A connection that sends nothing at all
//! (browsers open spare ones) is closed at the deadline without an answer or a log line.
//!
//! With a shared token, every request must carry it: as `Authorization: Bearer TOKEN` (for
//! scripts), or as the cookie a browser gets by logging in, since a page and an `<img>` cannot
//! send that header. `/` without either answers the login form, every other path 401. The
//! form posts the token to `/login` (form-urlencoded, at most [`MAX_FORM`] bytes, within the
//! same deadline as the head: else 413, 411, 400 or 408); a right token gets the cookie
//! ([`COOKIE`], made by [`Token::cookie`]: HMAC of a nonce, never the token itself; `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, and `Secure` over TLS) and a 303 to `/`; a wrong one gets the
//! form again with a line saying so, and counts against the address like a wrong Bearer token
//! or a wrong framewire proof ([`Failures`]): an address that keeps failing is answered 429.
//!
//! With the server's TLS identity in its [`ServerConfig`], it serves HTTPS: the fan-out does the
//! TLS handshake, and a plaintext request at the port is answered 400, "use https://".

mod mjpeg;
pub mod stats;
pub mod ws;

use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire_core::{CodecKind, Ladder, Request};

use crate::board::Board;
use crate::conn::{Conn, is_timeout};
use crate::fanout::{Fanout, Opening, Protocol, Refused, ServerConfig, ServerEvent, read_full};
use crate::tls::PlaintextAnswer;
use framewire_wire::token::Token;
use mjpeg::{Mjpeg, Snapshot, response_head};

/// The multipart boundary of `/stream`.
pub const BOUNDARY: &str = "framewireframe";

/// The most bytes a request line and its headers may take; more is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most headers a request may have; more is answered 431.
pub const MAX_HEADERS: usize = 32;

/// The page at `/`.
const PAGE: &str = include_str!("page.html");

/// The most bytes of a login form's body; more is answered 413.
pub const MAX_FORM: usize = 1024;

/// The name of the cookie a browser gets by logging in.
pub const COOKIE: &str = "framewire_session";

/// What a request without the token gets, instead of the path it asked for.
pub const NEEDS_TOKEN: &str = "this stream needs the token: log in at /login, or send the \
     header Authorization: Bearer TOKEN";

/// What a login with another token gets, and the log.
pub const WRONG_TOKEN: &str = "wrong token";

/// The login form; `{message}` is a line above it (or nothing).
const LOGIN: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>framewire: log in</title><link rel=\"icon\" href=\"data:,\">
<meta name=\"viewport\" content=\"width=device-width\"></head>
<body style=\"font-family: sans-serif; margin: 2em\">
<p>{message}</p>
<form method=\"post\" action=\"/login\">
<label>Token <input type=\"password\" name=\"token\" autofocus autocomplete=\"current-password\"></label>
<button type=\"submit\">Watch</button>
</form>
</body></html>
";

/// HTTP for one stream: the protocol behind `serve --http`.
#[derive(Debug)]
pub struct HttpProtocol {
    ladder: Arc<Ladder>,
    board: Arc<Board>,
    /// What every HTTP viewer asks the ladder for: its own rungs when they are JPEG, else JPEG.
    request: Request,
    /// What a WebSocket viewer asks for: the ladder's rungs when they are H.264, else H.264
    /// at the top rung's size.
    ws_request: Request,
    /// The shared token every request must carry (`Authorization: Bearer` or the login
    /// cookie), if any.
    token: Option<Token>,
    /// Whether the connections are TLS (HTTPS): the cookie is then `Secure`.
    tls: bool,
    /// Whether a request's `Host` is checked: on loopback, or without a token. It must then
    /// name the server by an address, `localhost` or one of `names`, never by another DNS
    /// name (which a rebinding attacker controls).
    check_host: bool,
    /// The names besides addresses and `localhost` a checked `Host` may give (`--http-host`).
    names: Vec<String>,
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
        let ws_request = if ladder.placement(0).rendition.stream.codec == CodecKind::H264 {
            Request::default()
        } else {
            Request {
                codec: Some(CodecKind::H264),
                ..Request::default()
            }
        };
        HttpProtocol {
            ladder,
            board,
            request,
            ws_request,
            token: None,
            tls: false,
            check_host: false,
            names: Vec::new(),
        }
    }

    /// Binds `addr` and serves HTTP viewers of `ladder`, reporting into `board` (which also
    /// reports any other fan-out it watches). On loopback or without a token, a request's
    /// `Host` must be an address, `localhost` or one of `names` (DNS rebinding). `on_event` as
    /// for [`Fanout::bind`].
    pub fn bind(
        addr: impl ToSocketAddrs,
        ladder: Arc<Ladder>,
        board: Arc<Board>,
        config: ServerConfig,
        names: Vec<String>,
        on_event: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> io::Result<Fanout> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let mut protocol = HttpProtocol::new(Arc::clone(&ladder), Arc::clone(&board));
        protocol.token = config.token.clone();
        protocol.tls = config.tls.is_some();
        let loopback = addrs.iter().all(|a| a.ip().is_loopback());
        protocol.check_host = loopback || config.token.is_none();
        protocol.names = names;
        let fanout = Fanout::bind(&addrs[..], protocol, ladder, config, on_event)?;
        board.watch(&fanout);
        Ok(fanout)
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Stream {
        early: bool,
    },
    Snapshot,
    /// `GET /ws`: the stream over a WebSocket.
    WebSocket,
    Stats,
    Metrics,
    /// `GET /login`: the form.
    LoginForm,
    /// `POST /login`: the form's answer.
    Login,
    /// `GET /login` with the token: sent on to `/`.
    LoggedIn,
}

/// A request that is answered with an error: its status line and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: &'static str,
    reason: String,
    /// Answered with the login form and the reason above it, rather than the reason as text.
    form: bool,
    /// The methods the path takes, for a 405's `Allow`.
    allow: &'static str,
    /// Headers the answer carries besides (a 426's `Upgrade`).
    extra: &'static str,
}

fn refuse(status: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        form: false,
        allow: "GET",
        extra: "",
    }
}

impl Refusal {
    /// The headers the refusal's status needs besides the body's.
    fn headers(&self) -> String {
        if self.status.starts_with("405") {
            format!("Allow: {}\r\n{}", self.allow, self.extra)
        } else {
            self.extra.to_string()
        }
    }

    /// The same refusal, answered with the login form.
    fn with_form(self) -> Refusal {
        Refusal { form: true, ..self }
    }

    fn content_type(&self) -> &'static str {
        if self.form {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        }
    }

    fn body(&self) -> String {
        if self.form {
            login_form(&escape_html(&self.reason))
        } else {
            self.reason.clone()
        }
    }
}

/// `route` for a request that carries the token: the login form has nothing to ask it.
fn logged_in(route: Route) -> Route {
    if route == Route::LoginForm {
        Route::LoggedIn
    } else {
        route
    }
}

/// The login form with `message_html` above it.
fn login_form(message_html: &str) -> String {
    LOGIN.replace("{message}", message_html)
}

/// `text` safe inside an HTML element.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds since the epoch now.
fn now_s() -> u64 {
    framewire_core::now_micros() / 1_000_000
}

impl HttpProtocol {
    /// Lets a request with the token (as Bearer, or a login cookie) through to `route`. Without
    /// either, `/` gets the login form and every other path 401. A wrong Bearer token counts
    /// against the address, and an address that failed too often gets 429.
    fn admit(
        &self,
        stream: &Conn,
        head: &Head,
        route: Route,
        token: &Token,
    ) -> Result<Route, Refusal> {
        if let Some(bearer) = &head.bearer {
            let ip = stream
                .peer_addr()
                .map_err(|e| refuse("500 Internal Server Error", format!("socket setup: {e}")))?
                .ip();
            // Judged with the address's failures held (see `Failures::judge`).
            return match token
                .failures()
                .judge(ip, Instant::now(), || token.matches(bearer))
            {
                Ok(true) => Ok(logged_in(route)),
                Ok(false) => Err(refuse("401 Unauthorized", WRONG_TOKEN)),
                Err(wait) => Err(too_many(ip, wait)),
            };
        }
        let now = now_s();
        if head
            .cookies
            .iter()
            .any(|c| token.cookie_valid(c.as_bytes(), now))
        {
            return Ok(logged_in(route));
        }
        match route {
            Route::Page | Route::LoginForm => Ok(Route::LoginForm),
            _ => Err(refuse("401 Unauthorized", NEEDS_TOKEN)),
        }
    }

    /// `POST /login`: reads the form (bounded in bytes and by `deadline`), checks its token in
    /// constant time, and answers a 303 to `/` with the cookie, or the form again with why not.
    fn login(
        &self,
        stream: &mut Conn,
        head: &Head,
        rest: Vec<u8>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Opening, String> {
        let answered = |stream: &mut Conn, r: Refusal| {
            let _ = respond(
                stream,
                r.status,
                r.content_type(),
                &r.headers(),
                r.body().as_bytes(),
            );
            linger_close(stream);
            Err(format!("answered {}: {}", r.status, r.reason))
        };
        let Some(token) = &self.token else {
            // Nothing to log into.
            respond(
                stream,
                "303 See Other",
                "text/plain",
                "Location: /\r\n",
                b"",
            )
            .map_err(|e| format!("writing the answer: {e}"))?;
            let _ = stream.shutdown(Shutdown::Write);
            return Ok(Opening::Answered);
        };
        let ip = stream
            .peer_addr()
            .map_err(|e| format!("socket setup failed: {e}"))?
            .ip();
        if let Err(wait) = token.failures().check(ip, Instant::now()) {
            let r = too_many(ip, wait).with_form();
            let _ = respond(
                stream,
                r.status,
                r.content_type(),
                &r.headers(),
                r.body().as_bytes(),
            );
            linger_close(stream);
            return Err(r.reason);
        }
        let body = match read_body(stream, head, rest, deadline, timeout) {
            Ok(body) => body,
            Err(Unread::Refused(r)) => return answered(stream, r),
            Err(Unread::Idle | Unread::Closed(_)) => {
                return Err("closed before the whole login form arrived".into());
            }
            Err(Unread::Io(e)) => return Err(format!("reading the login form: {e}")),
        };
        let presented = match form_field(&body, "token") {
            Ok(t) => t,
            Err(why) => return answered(stream, refuse("400 Bad Request", why)),
        };
        let judged = token
            .failures()
            .judge(ip, Instant::now(), || token.matches(&presented));
        if judged != Ok(true) {
            let r = match judged {
                Err(wait) => too_many(ip, wait),
                _ => refuse("401 Unauthorized", WRONG_TOKEN),
            }
            .with_form();
            let _ = respond(
                stream,
                r.status,
                r.content_type(),
                &r.headers(),
                r.body().as_bytes(),
            );
            linger_close(stream);
            return Err(format!("{} (login form)", r.reason));
        }
        let cookie = token.cookie(now_s()).map_err(|e| e.to_string())?;
        let headers = format!("Location: /\r\n{}", set_cookie(&cookie, self.tls));
        respond(stream, "303 See Other", "text/plain", &headers, b"")
            .map_err(|e| format!("writing the answer: {e}"))?;
        let _ = stream.shutdown(Shutdown::Write);
        Ok(Opening::Answered)
    }
}

/// The header that gives a browser `cookie`: only over HTTP (`HttpOnly`, out of scripts'
/// reach), only to this site's own requests (`SameSite=Strict`), and over TLS only over TLS.
fn set_cookie(cookie: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "Set-Cookie: {COOKIE}={cookie}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{secure}\r\n",
        framewire_wire::token::COOKIE_LIFETIME.as_secs()
    )
}

/// The answer to an address that failed too often.
fn too_many(ip: std::net::IpAddr, wait: Duration) -> Refusal {
    refuse(
        "429 Too Many Requests",
        format!(
            "too many wrong tokens from {ip}: try again in {} s",
            wait.as_secs_f64().ceil()
        ),
    )
}

/// Reads a request's body: `Content-Length` bytes (at most [`MAX_FORM`]), of which `rest`
/// came with the head, all before `deadline`.
fn read_body(
    stream: &mut Conn,
    head: &Head,
    mut body: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<u8>, Unread> {
    if head.chunked {
        return Err(Unread::Refused(refuse(
            "411 Length Required",
            "a login form is read with a Content-Length, not chunked",
        )));
    }
    let Some(len) = head.content_length else {
        return Err(Unread::Refused(refuse(
            "411 Length Required",
            "a login form needs a Content-Length",
        )));
    };
    if len > MAX_FORM as u64 || body.len() > MAX_FORM {
        return Err(Unread::Refused(refuse(
            "413 Content Too Large",
            format!("a login form of {len} bytes; at most {MAX_FORM}"),
        )));
    }
    let len = len as usize;
    if body.len() > len {
        return Err(Unread::Refused(refuse(
            "400 Bad Request",
            format!("{} bytes after a body of {len}", body.len() - len),
        )));
    }
    let have = body.len();
    body.resize(len, 0);
    match read_full(stream, &mut body[have..], deadline) {
        Ok(n) if have + n == len => Ok(body),
        Ok(n) => Err(Unread::Closed(have + n)),
        Err(e) if is_timeout(&e) => Err(Unread::Refused(refuse(
            "408 Request Timeout",
            format!(
                "sent {have} of the {len} bytes of its login form within {:.1}s",
                timeout.as_secs_f64()
            ),
        ))),
        Err(e) => Err(Unread::Io(e)),
    }
}

/// The value of field `name` in a form-urlencoded body, decoded (`+` is a space, `%XX` a
/// byte), or why there is none.
fn form_field(body: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let field = body
        .split(|&b| b == b'&')
        .find_map(|kv| kv.strip_prefix(name.as_bytes())?.strip_prefix(b"="))
        .ok_or_else(|| format!("the login form has no {name} field"))?;
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
                match (hex(bytes.next()), hex(bytes.next())) {
                    (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
                    _ => return Err(format!("the {name} field has a bad %-escape")),
                }
            }
            b => b,
        });
    }
    Ok(out)
}

impl Protocol for HttpProtocol {
    fn name(&self) -> &'static str {
        "http"
    }

    fn busy(&self, why: &str) -> Vec<u8> {
        let body = format!("busy: {why}; try again shortly\n");
        format!(
            "HTTP/1.1 503 Service Unavailable\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\n\
             Retry-After: 1\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn plaintext_at_tls_port(&self) -> PlaintextAnswer {
        let body = "this port speaks HTTPS: use https://";
        PlaintextAnswer {
            bytes: format!(
                "HTTP/1.1 400 Bad Request\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
            told: "answered 400, use https://",
        }
    }

    fn read_request(&self, stream: &mut Conn, timeout: Duration) -> Result<Opening, Refused> {
        let deadline = Instant::now() + timeout;
        // A WebSocket's bytes may follow its request at once.
        let mut upgrade = None;
        let route = match read_head(stream, deadline, timeout) {
            Ok((head, _))
                if self.check_host && !names_server(head.host.as_deref(), &self.names) =>
            {
                Err(misdirected(head.host.as_deref().unwrap_or_default()))
            }
            Ok((head, rest)) => match (route(&head), &self.token) {
                (Ok(Route::Login), _) => {
                    return Ok(self.login(stream, &head, rest, deadline, timeout)?);
                }
                (Ok(route), Some(token)) => self.admit(stream, &head, route, token),
                (route, _) => route,
            }
            .and_then(|route| {
                if route == Route::WebSocket {
                    upgrade = Some((ws::accept_key(&head)?, rest));
                }
                Ok(route)
            }),
            // Browsers open spare connections and close them unused: no answer, no log line.
            Err(Unread::Idle) => return Ok(Opening::Answered),
            Err(Unread::Closed(n)) => {
                return Err(format!("closed after {n} bytes of a request").into());
            }
            Err(Unread::Io(e)) => return Err(format!("reading the request: {e}").into()),
            Err(Unread::Refused(r)) => Err(r),
        };
        let route = match route {
            Ok(route) => route,
            Err(r) => {
                let _ = respond(
                    stream,
                    r.status,
                    r.content_type(),
                    &r.headers(),
                    r.body().as_bytes(),
                );
                linger_close(stream);
                return Err(format!("answered {}: {}", r.status, r.reason).into());
            }
        };
        let body = match route {
            Route::Stream { early } => {
                return Ok(Opening::Stream {
                    request: self.request,
                    framer: Box::new(Mjpeg { early, at: None }),
                    reader: None,
                });
            }
            Route::WebSocket => {
                let Some((accept, rest)) = upgrade else {
                    return Err("a WebSocket without its key".to_string().into());
                };
                let conn = stream
                    .try_clone()
                    .map_err(|e| format!("socket setup failed: {e}"))?;
                let (framer, reader) = ws::subscriber(accept, conn, rest);
                return Ok(Opening::Stream {
                    request: self.ws_request,
                    framer,
                    reader: Some(reader),
                });
            }
            Route::Snapshot => {
                return Ok(Opening::One {
                    request: self.request,
                    framer: Box::new(Snapshot { at: None }),
                });
            }
            Route::Page => ("text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
            Route::LoggedIn => {
                respond(
                    stream,
                    "303 See Other",
                    "text/plain",
                    "Location: /\r\n",
                    b"",
                )
                .map_err(|e| format!("writing the answer: {e}"))?;
                let _ = stream.shutdown(Shutdown::Write);
                return Ok(Opening::Answered);
            }
            Route::LoginForm | Route::Login => (
                "text/html; charset=utf-8",
                login_form(if self.token.is_some() {
                    "This stream needs the token."
                } else {
                    "This stream needs no token: <a href=\"/\">watch it</a>."
                })
                .into_bytes(),
            ),
            Route::Stats => (
                "application/json",
                // With a token every request here proved it; without one, nobody did.
                stats::json(&self.board, &self.ladder, self.token.is_some()).into_bytes(),
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
}

/// Writes a whole answer with a body, and closes the connection after it.
fn respond(
    stream: &mut Conn,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = response_head(status, content_type, body.len(), extra_headers);
    stream.write_parts(&mut [IoSlice::new(head.as_bytes()), IoSlice::new(body)])
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
    /// The values of every [`COOKIE`] in `Cookie` headers.
    cookies: Vec<String>,
    /// `Host`, if given.
    host: Option<String>,
    /// `Content-Length`, if given.
    content_length: Option<u64>,
    /// Whether a `Transfer-Encoding` was given (a body of chunks).
    chunked: bool,
    /// Whether it asks for a WebSocket: `Upgrade: websocket` and `Connection: upgrade`.
    upgrade_websocket: bool,
    /// `Sec-WebSocket-Key` and `Sec-WebSocket-Version`, if given.
    ws_key: Option<String>,
    ws_version: Option<String>,
    /// `Origin`, if given (a browser's WebSocket always gives it).
    origin: Option<String>,
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

/// Reads a request line and headers before `deadline` (`timeout` after the connection came,
/// for messages), at most [`MAX_HEAD`] bytes. Returns them and the bytes that came after them.
fn read_head(
    stream: &mut Conn,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Head, Vec<u8>), Unread> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        match parse_head(&buf[..len]) {
            Ok(Some((head, at))) => return Ok((head, buf[at..len].to_vec())),
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

/// Parses what has arrived of a request: `None` while it is incomplete, else the request and
/// where its head ends.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let at = match request.parse(bytes) {
        Ok(httparse::Status::Complete(at)) => at,
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
    };
    let named = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let cookies = named("cookie")
        .flat_map(|h| h.value.split(|&b| b == b';'))
        .filter_map(|c| {
            let c = c
                .trim_ascii()
                .strip_prefix(COOKIE.as_bytes())?
                .strip_prefix(b"=")?;
            Some(String::from_utf8_lossy(c).into_owned())
        })
        .collect();
    let content_length = match named("content-length").next() {
        None => None,
        Some(h) => Some(
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    refuse(
                        "400 Bad Request",
                        format!(
                            "Content-Length {:?} is not a number",
                            preview(&String::from_utf8_lossy(h.value))
                        ),
                    )
                })?,
        ),
    };
    let chunked = named("transfer-encoding").next().is_some();
    let text = |name: &'static str| {
        named(name)
            .next()
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let has_token = |name: &'static str, token: &str| {
        named(name).any(|h| {
            h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let upgrade_websocket = has_token("upgrade", "websocket") && has_token("connection", "upgrade");
    let host = named("host")
        .next()
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
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
    Ok(Some((
        Head {
            method: request.method.unwrap_or_default().to_string(),
            target: request.path.unwrap_or_default().to_string(),
            fetch_dest,
            bearer,
            cookies,
            host,
            content_length,
            chunked,
            upgrade_websocket,
            ws_key: text("sec-websocket-key"),
            ws_version: text("sec-websocket-version"),
            origin: text("origin"),
        },
        at,
    )))
}

/// Whether a request's `Host` names the server as its own users do: an IP address,
/// `localhost` or one of `names` (`--http-host`), with any port. Another DNS name (a rebinding
/// attacker's, resolving to this server's address for a page of its own) does not; no `Host`
/// at all (HTTP/1.0) does.
fn names_server(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// What a server answers a request that named it by a DNS name it was not given.
fn misdirected(host: &str) -> Refusal {
    refuse(
        "421 Misdirected Request",
        format!(
            "this server answers only requests for its address, localhost or a name given with \
             serve --http-host, not Host {:?} (a page of another site reaching it through DNS \
             rebinding?); open http://localhost:PORT/, or add --http-host {:?}",
            preview(host),
            preview(host.rsplit_once(':').map_or(host, |(name, _)| name)),
        ),
    )
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
        ("/ws", _) => Route::WebSocket,
        ("/stats", _) => Route::Stats,
        ("/metrics", _) => Route::Metrics,
        ("/login", _) if head.method == "POST" => Route::Login,
        ("/login", _) => Route::LoginForm,
        _ => {
            return Err(refuse(
                "404 Not Found",
                format!("no such path: {}", preview(path)),
            ));
        }
    };
    if route == Route::LoginForm && head.method != "GET" {
        return Err(Refusal {
            allow: "GET, POST",
            ..refuse(
                "405 Method Not Allowed",
                format!(
                    "{} is not served at /login; only GET and POST",
                    preview(&head.method)
                ),
            )
        });
    }
    if head.method != "GET" && route != Route::Login && route != Route::LoginForm {
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
        parse_head(bytes.as_bytes()).map(|h| h.map(|(head, _)| head))
    }

    fn routed(target: &str) -> Result<Route, String> {
        let head = Head {
            method: "GET".into(),
            target: target.into(),
            fetch_dest: None,
            bearer: None,
            cookies: Vec::new(),
            host: None,
            content_length: None,
            chunked: false,
            upgrade_websocket: false,
            ws_key: None,
            ws_version: None,
            origin: None,
        };
        route(&head).map_err(|r| r.status.to_string())
    }

    #[test]
    fn a_server_is_named_by_an_address_localhost_or_a_name_it_was_given_never_another() {
        for ok in [
            None,
            Some("127.0.0.1:8080"),
            Some("127.0.0.1"),
            Some("localhost:8080"),
            Some("LOCALHOST"),
            Some("[::1]:8080"),
            Some("10.0.0.7:8080"),
        ] {
            assert!(names_server(ok, &[]), "{ok:?}");
        }
        for rebound in [
            Some("attacker.example:8080"),
            Some("attacker.example"),
            Some("localhost.attacker.example"),
            Some(""),
        ] {
            assert!(!names_server(rebound, &[]), "{rebound:?}");
        }
        let given = ["camera.local".to_string()];
        assert!(names_server(Some("Camera.Local:8080"), &given));
        assert!(!names_server(Some("camera.local.attacker.example"), &given));
        assert_eq!(
            misdirected("evil.example").status,
            "421 Misdirected Request"
        );
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
    fn a_405_names_the_methods_its_path_takes() {
        let with = |method: &str, target: &str| Head {
            method: method.into(),
            target: target.into(),
            fetch_dest: None,
            bearer: None,
            cookies: Vec::new(),
            host: None,
            content_length: None,
            chunked: false,
            upgrade_websocket: false,
            ws_key: None,
            ws_version: None,
            origin: None,
        };
        let login = route(&with("PUT", "/login")).unwrap_err();
        assert_eq!(login.headers(), "Allow: GET, POST\r\n");
        let stream = route(&with("POST", "/stream")).unwrap_err();
        assert_eq!(stream.headers(), "Allow: GET\r\n");
        assert_eq!(route(&with("GET", "/nope")).unwrap_err().headers(), "");
    }

    #[test]
    fn an_img_gets_early_headers_unless_it_says_no() {
        let img = |target: &str| {
            route(&Head {
                method: "GET".into(),
                target: target.into(),
                fetch_dest: Some("image".into()),
                bearer: None,
                cookies: Vec::new(),
                host: None,
                content_length: None,
                chunked: false,
                upgrade_websocket: false,
                ws_key: None,
                ws_version: None,
                origin: None,
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
            head(&request).unwrap().unwrap().bearer
        };
        assert_eq!(head("Bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(head("bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(head("Basic czNjcmV0"), None);
        assert_eq!(head("Bearer "), None);
    }

    #[test]
    fn login_cookies_and_body_lengths_are_read_from_the_headers() {
        let got = head(
            "POST /login HTTP/1.1\r\nCookie: a=1; framewire_session=abc;b=2\r\n\
             Cookie: framewire_session=def\r\nContent-Length: 12\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.cookies, ["abc", "def"]);
        assert_eq!(got.content_length, Some(12));
        assert!(!got.chunked);
        assert_eq!(route(&got), Ok(Route::Login));
        let err = head("POST /login HTTP/1.1\r\nContent-Length: -1\r\n\r\n").unwrap_err();
        assert_eq!(err.status, "400 Bad Request");
        let got = head("POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(got.unwrap().unwrap().chunked);
        assert_eq!(routed("/login"), Ok(Route::LoginForm));
        let put = Head {
            method: "PUT".into(),
            ..head("GET /login HTTP/1.1\r\n\r\n").unwrap().unwrap()
        };
        assert_eq!(route(&put).unwrap_err().status, "405 Method Not Allowed");
    }

    #[test]
    fn a_form_field_is_decoded_or_refused() {
        let field = |body: &str| form_field(body.as_bytes(), "token");
        assert_eq!(field("token=s3cret"), Ok(b"s3cret".to_vec()));
        assert_eq!(field("x=1&token=a+b%2B%26c&y=2"), Ok(b"a b+&c".to_vec()));
        assert_eq!(field("token="), Ok(Vec::new()));
        assert_eq!(field("token=%ff%00"), Ok(vec![0xff, 0]));
        assert!(field("tokens=1").is_err());
        assert!(field("").is_err());
        assert!(field("token=%4").is_err());
        assert!(field("token=%zz").is_err());
    }

    #[test]
    fn the_cookie_is_secure_over_tls() {
        let plain = set_cookie("ab", false);
        assert_eq!(
            plain,
            "Set-Cookie: framewire_session=ab; Max-Age=2592000; Path=/; HttpOnly; \
             SameSite=Strict\r\n"
        );
        assert_eq!(
            set_cookie("ab", true),
            plain.replace("\r\n", "; Secure\r\n")
        );
    }

    #[test]
    fn the_login_form_shows_its_message_escaped() {
        let r = refuse("401 Unauthorized", "<b>&").with_form();
        assert!(r.body().contains("<p>&lt;b&gt;&amp;</p>"), "{}", r.body());
        assert!(r.body().contains("type=\"password\" name=\"token\""));
        assert_eq!(r.content_type(), "text/html; charset=utf-8");
    }

    #[test]
    fn other_methods_get_405() {
        let post = Head {
            method: "POST".into(),
            target: "/stream".into(),
            fetch_dest: None,
            bearer: None,
            cookies: Vec::new(),
            host: None,
            content_length: None,
            chunked: false,
            upgrade_websocket: false,
            ws_key: None,
            ws_version: None,
            origin: None,
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
            if let Ok(Some((head, _))) = parse_head(&bytes) {
                let _ = route(&head);
            }
        }

        #[test]
        fn any_form_is_decoded_or_refused(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = form_field(&body, "token");
        }

        #[test]
        fn any_target_routes_or_is_refused(target in "\\PC{0,80}", image in proptest::bool::ANY) {
            let head = Head {
                method: "GET".into(),
                target,
                fetch_dest: image.then(|| "image".into()),
                bearer: None,
                cookies: Vec::new(),
                host: None,
                content_length: None,
                chunked: false,
                upgrade_websocket: false,
                ws_key: None,
                ws_version: None,
                origin: None,
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
}
