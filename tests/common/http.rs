//! An HTTP client for the tests of `serve --http`, written over a plain socket so that each test
//! sees the exact bytes (an HTTP library would hide the framing under test): a request, the
//! answer's status and headers, and MJPEG parts read strictly (the boundary right after each
//! JPEG); and the rule for tests that need an outside program (curl, ffmpeg, chromium).
#![allow(clippy::print_stderr)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};

use super::{Serve, WAIT};

/// The multipart boundary `serve --http` writes.
pub const BOUNDARY: &str = "framewireframe";

/// Starts `framewire serve --http 127.0.0.1:0 ARGS`; returns it and the HTTP address it printed.
pub fn serve_http(args: &[&str]) -> (Serve, String) {
    serve_http_with(super::framewire(), args)
}

/// Starts `framewire serve --http 127.0.0.1:0 ARGS` with the token `FRAMEWIRE_TOKEN`.
pub fn serve_http_token(token: &str, args: &[&str]) -> (Serve, String) {
    let mut cmd = super::framewire();
    cmd.env("FRAMEWIRE_TOKEN", token);
    serve_http_with(cmd, args)
}

/// Starts `cmd serve --listen 127.0.0.1:0 --http 127.0.0.1:0 ARGS`; returns it and the HTTP
/// address (of `http://` or, with `--tls`, `https://`).
pub fn serve_http_with(cmd: std::process::Command, args: &[&str]) -> (Serve, String) {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let serve = Serve::spawn_with(cmd, &all);
    let line = serve.line_starting("http on ");
    let addr = line
        .strip_prefix("http on http://")
        .or_else(|| line.strip_prefix("http on https://"))
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("http line was {line:?}"))
        .to_string();
    (serve, addr)
}

/// An answer being read: its status, its headers, and the rest of the connection (a socket, or
/// the output of a client such as curl).
pub struct Reply<R = TcpStream> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub reader: BufReader<R>,
}

/// Sends `request` as it is (a whole request, or a hostile one) and reads the answer's head.
pub fn send(addr: &str, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the http address");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).expect("send the request");
    read_reply(stream)
}

/// `GET target` and the answer's head.
pub fn get(addr: &str, target: &str) -> Reply {
    send(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

/// Reads the status line and headers of an answer on `stream`.
pub fn read_reply(stream: TcpStream) -> Reply {
    let mut reader = BufReader::new(stream);
    let status_line = line(&mut reader);
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers = headers(&mut reader);
    Reply {
        status,
        headers,
        reader,
    }
}

/// One line without its CRLF (which must be there).
fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line.strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("line {line:?} does not end in CRLF"))
        .to_string()
}

fn headers(reader: &mut impl BufRead) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    loop {
        let l = line(reader);
        if l.is_empty() {
            return headers;
        }
        let (name, value) = l.split_once(':').unwrap_or_else(|| panic!("header {l:?}"));
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl<R: Read> Reply<R> {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The body, `Content-Length` bytes of it (which must be given), and the connection's end.
    pub fn body(mut self) -> Vec<u8> {
        let len: usize = self
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length");
        let mut body = Vec::new();
        self.reader.read_to_end(&mut body).expect("read the body");
        assert_eq!(
            body.len(),
            len,
            "the body is Content-Length long, then closes"
        );
        body
    }

    /// Starts reading `/stream`: checks the multipart head and the first boundary.
    pub fn mjpeg(self) -> Mjpeg<R> {
        assert_eq!(self.status, 200);
        assert_eq!(
            self.header("content-type"),
            Some(format!("multipart/x-mixed-replace;boundary={BOUNDARY}").as_str())
        );
        self.mjpeg_body()
    }

    /// Starts reading a multipart body at its first boundary (the head was read elsewhere).
    pub fn mjpeg_body(mut self) -> Mjpeg<R> {
        assert_eq!(line(&mut self.reader), format!("--{BOUNDARY}"));
        Mjpeg {
            reader: self.reader,
        }
    }
}

/// An MJPEG stream being read.
pub struct Mjpeg<R = TcpStream> {
    pub reader: BufReader<R>,
}

/// One part of an MJPEG stream.
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub jpeg: Vec<u8>,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The capture time, seconds since the epoch.
    pub fn timestamp(&self) -> f64 {
        self.header("x-timestamp")
            .and_then(|t| t.parse().ok())
            .expect("an X-Timestamp")
    }

    /// The picture, decoded at `width` x `height`.
    pub fn decode(&self, (width, height): (u32, u32)) -> Frame {
        let info = StreamInfo {
            codec: CodecKind::Jpeg,
            width,
            height,
            format: PixelFormat::Rgb8,
        };
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        framewire_codec::decoder(&info)
            .decode(&self.jpeg, &mut frame)
            .expect("each part is a JPEG of the stream's size");
        frame
    }

    /// The test pattern's frame number drawn in it.
    pub fn frame_number(&self, size: (u32, u32)) -> u64 {
        framewire_pattern::read_frame_number(&self.decode(size)).expect("a test-pattern frame")
    }
}

impl<R: Read> Mjpeg<R> {
    /// Reads parts until the stream ends, adding one to `count` for each, cheaply: no JPEG is
    /// kept or checked (for many clients on one machine), only each part's length is read.
    pub fn count_parts(mut self, count: &AtomicU64) {
        let mut line = String::new();
        let mut len = None;
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if let Some((name, value)) = l.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                len = value.trim().parse::<u64>().ok();
            } else if l.is_empty()
                && let Some(n) = len.take()
            {
                // The JPEG, then CRLF and the boundary line.
                let skipped = io::copy(&mut (&mut self.reader).take(n), &mut io::sink());
                if skipped.ok() != Some(n) {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The next part: its headers, `Content-Length` bytes of JPEG, and the boundary right after.
    pub fn part(&mut self) -> Part {
        let headers = headers(&mut self.reader);
        let len: usize = find(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .expect("each part has a Content-Length");
        assert_eq!(find(&headers, "content-type"), Some("image/jpeg"));
        let mut jpeg = vec![0; len];
        self.reader.read_exact(&mut jpeg).expect("read a part");
        assert_eq!(&jpeg[..2], [0xFF, 0xD8], "a part starts a JPEG");
        assert_eq!(&jpeg[len - 2..], [0xFF, 0xD9], "a part ends its JPEG");
        assert_eq!(line(&mut self.reader), "", "CRLF right after the JPEG");
        assert_eq!(line(&mut self.reader), format!("--{BOUNDARY}"));
        Part { headers, jpeg }
    }
}

/// Whether tests must find every outside program instead of skipping: `FRAMEWIRE_REQUIRE_ALL`.
pub fn all_required() -> bool {
    std::env::var("FRAMEWIRE_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether `program` runs (`program arg` starts; some programs' help exits non-zero); when it
/// does not, prints why the test skips, or fails under `FRAMEWIRE_REQUIRE_ALL=1`.
pub fn have(program: &str, arg: &str, package: &str) -> bool {
    let runs = Command::new(program).arg(arg).output().is_ok();
    if runs {
        return true;
    }
    let why = format!("{program} is not installed (apt-get install {package})");
    if all_required() {
        panic!("{why} and FRAMEWIRE_REQUIRE_ALL is set");
    }
    eprintln!("skipped: {why}");
    false
}
