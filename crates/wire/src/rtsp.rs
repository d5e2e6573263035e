//! The RTSP 1.0 messages (RFC 2326) a RECORD publisher exchanges: requests written as bytes,
//! and what comes back read from a buffer: a response (status, headers, body) or an
//! interleaved binary frame (`$`, channel, length: the server's RTCP) to skip. Every length is
//! bounded, so a server that answers garbage or an endless header gets an error naming it, never
//! unbounded memory.

/// The longest response head (status line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// The longest response body read.
pub const MAX_BODY: usize = 64 * 1024;

/// A request: the method, the URL, its sequence number, further headers and a body (with its
/// content type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `ANNOUNCE`, `SETUP`, `RECORD`, `TEARDOWN`, ...
    pub method: &'a str,
    /// The URL the request is for (no credentials in it).
    pub url: &'a str,
    /// `CSeq`.
    pub cseq: u32,
    /// Further headers, each `(name, value)`.
    pub headers: Vec<(&'a str, String)>,
    /// The body and its `Content-Type`, when there is one.
    pub body: Option<(&'a str, &'a str)>,
}

impl Request<'_> {
    /// The request as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "{} {} RTSP/1.0\r\nCSeq: {}\r\n",
            self.method, self.url, self.cseq
        );
        s.push_str("User-Agent: framewire\r\n");
        for (name, value) in &self.headers {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some((kind, body)) = self.body {
            s.push_str(&format!(
                "Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            s.push_str("\r\n");
        }
        s.into_bytes()
    }
}

/// A response's status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (200: OK).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The session id of the `Session` header, without its parameters (`;timeout=60`).
    pub fn session(&self) -> Option<&str> {
        let value = self.header("Session")?;
        Some(value.split(';').next().unwrap_or(value).trim())
    }
}

/// What the start of a buffer from the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Not a whole message yet: read more.
    Partial,
    /// A response, taking this many bytes.
    Response(Response, usize),
    /// An interleaved binary frame on `channel`, taking this many bytes.
    Interleaved {
        /// Its channel.
        channel: u8,
        /// Bytes it takes, its 4-byte framing included.
        len: usize,
    },
}

/// Why bytes from the server are not RTSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtspError {
    /// The head grew past [`MAX_HEAD`] without ending.
    #[error("a response head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    /// The body is longer than [`MAX_BODY`].
    #[error("a response body of {0} bytes (at most {MAX_BODY})")]
    BodyTooLong(usize),
    /// Not a status line.
    #[error("not an RTSP response: {0:?}")]
    NotRtsp(String),
    /// A header line without a colon, or a Content-Length that is no number.
    #[error("a malformed header: {0:?}")]
    BadHeader(String),
}

/// The first 40 characters of `bytes`, for an error line.
fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

/// Reads what the start of `buf` holds.
pub fn parse(buf: &[u8]) -> Result<Incoming, RtspError> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(Incoming::Partial);
        }
        let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        return Ok(if buf.len() < len {
            Incoming::Partial
        } else {
            Incoming::Interleaved {
                channel: buf[1],
                len,
            }
        });
    }
    // The status line is checked as soon as it could be, so garbage is refused at once.
    let prefix = &buf[..buf.len().min(5)];
    if !b"RTSP/".starts_with(prefix) {
        return Err(RtspError::NotRtsp(preview(buf)));
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(RtspError::HeadTooLong)
        } else {
            Ok(Incoming::Partial)
        };
    };
    if end > MAX_HEAD {
        return Err(RtspError::HeadTooLong);
    }
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, status) = (parts.next(), parts.next());
    let status = match (version, status.and_then(|s| s.parse::<u16>().ok())) {
        (Some(v), Some(s)) if v.starts_with("RTSP/1.") => s,
        _ => return Err(RtspError::NotRtsp(preview(buf))),
    };
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(RtspError::BadHeader(line.chars().take(40).collect()));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let body_len = match response.header("Content-Length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| RtspError::BadHeader(format!("Content-Length: {v}")))?,
    };
    if body_len > MAX_BODY {
        return Err(RtspError::BodyTooLong(body_len));
    }
    let total = end + 4 + body_len;
    if buf.len() < total {
        return Ok(Incoming::Partial);
    }
    response.body = buf[end + 4..total].to_vec();
    Ok(Incoming::Response(response, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_has_its_sequence_number_headers_and_body_with_its_length() {
        let r = Request {
            method: "ANNOUNCE",
            url: "rtsp://127.0.0.1:8554/cam",
            cseq: 2,
            headers: vec![("Session", "abc".to_string())],
            body: Some(("application/sdp", "v=0\r\n")),
        };
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "ANNOUNCE rtsp://127.0.0.1:8554/cam RTSP/1.0\r\nCSeq: 2\r\nUser-Agent: framewire\r\n\
             Session: abc\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        );
    }

    #[test]
    fn a_response_is_read_whole_from_every_prefix_and_not_before() {
        let bytes = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 12345678;timeout=60\r\n\
                      Content-Length: 4\r\n\r\nbodyMORE";
        let whole = bytes.len() - 4;
        for cut in 0..whole {
            assert_eq!(parse(&bytes[..cut]), Ok(Incoming::Partial), "{cut}");
        }
        let Ok(Incoming::Response(r, used)) = parse(bytes) else {
            panic!("{:?}", parse(bytes));
        };
        assert_eq!((r.status, r.reason.as_str(), used), (200, "OK", whole));
        assert_eq!(r.header("cseq"), Some("3"));
        assert_eq!(r.session(), Some("12345678"));
        assert_eq!(r.body, b"body");
    }

    #[test]
    fn an_interleaved_frame_is_skipped_by_its_length() {
        let bytes = [b'$', 1, 0, 3, 9, 9, 9, b'R'];
        for cut in 0..7 {
            assert_eq!(parse(&bytes[..cut]), Ok(Incoming::Partial), "{cut}");
        }
        assert_eq!(
            parse(&bytes),
            Ok(Incoming::Interleaved { channel: 1, len: 7 })
        );
    }

    #[test]
    fn garbage_an_endless_head_and_a_huge_body_are_refused() {
        assert!(matches!(parse(b"HTTP/1.1 200"), Err(RtspError::NotRtsp(_))));
        assert!(matches!(parse(b"\x00\x01"), Err(RtspError::NotRtsp(_))));
        assert!(matches!(
            parse(b"RTSP/1.0 abc x\r\n\r\n"),
            Err(RtspError::NotRtsp(_))
        ));
        let mut endless = b"RTSP/1.0 200 OK\r\n".to_vec();
        endless.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&endless), Err(RtspError::HeadTooLong));
        assert_eq!(
            parse(b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n"),
            Err(RtspError::BodyTooLong(99_999_999))
        );
        assert!(matches!(
            parse(b"RTSP/1.0 200 OK\r\nno colon\r\n\r\n"),
            Err(RtspError::BadHeader(_))
        ));
    }

    #[test]
    fn no_input_panics() {
        let mut seed = 1u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 33) as usize % 64;
            let mut buf = b"RTSP/1.0 2".to_vec();
            for i in 0..len {
                buf.push(b"0 \r\n:$Content-Length9"[((seed >> (i % 48)) as usize) % 21]);
            }
            let _ = parse(&buf);
            let _ = parse(&buf[10..]);
        }
    }
}
