//! HTTP's streams as bytes: `/stream`'s MJPEG parts ([`Mjpeg`]) and `/snapshot`'s one JPEG
//! ([`Snapshot`]), each a [`Framer`] that touches no socket, so what they write is tested byte
//! for byte below; and the head of every whole answer ([`response_head`]).

use std::io::Write;

use framewire_core::{Packet, Placement};
use framewire_wire::framer::Framer;

use super::BOUNDARY;

/// `/stream`: a `multipart/x-mixed-replace` answer, then each JPEG as a part (see the module
/// doc of [`super`] for why the boundary follows each JPEG, and for `early`).
#[derive(Debug)]
pub(super) struct Mjpeg {
    /// The next part's headers right after the boundary, for Chromium's `<img>`; those parts
    /// carry no length and no timestamp.
    pub(super) early: bool,
    /// The rendition the packets are in now.
    pub(super) at: Option<Placement>,
}

impl Framer for Mjpeg {
    fn start(&mut self, at: &Placement, out: &mut Vec<u8>) {
        self.at = Some(*at);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\n\
                 Content-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
                 Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
                 Pragma: no-cache\r\n\
                 Connection: close\r\n\
                 \r\n\
                 --{BOUNDARY}\r\n"
            )
            .as_bytes(),
        );
        if self.early {
            out.extend_from_slice(EARLY_HEADERS.as_bytes());
        }
    }

    /// Nothing: each JPEG names its size, and each part's `X-Rendition` its rendition.
    fn switch(&mut self, to: &Placement, _: &mut Vec<u8>) {
        self.at = Some(*to);
    }

    /// Allocates nothing once the buffers grew: the part's head is formatted into `head`.
    fn packet(&mut self, packet: &Packet, head: &mut Vec<u8>, tail: &mut Vec<u8>) {
        if self.early {
            tail.extend_from_slice(TRAILER_EARLY);
            return;
        }
        // Writing into a Vec cannot fail.
        let _ = write!(
            head,
            "Content-Type: image/jpeg\r\n\
             Content-Length: {}\r\n\
             X-Timestamp: {}\r\n\
             X-Rendition: ",
            packet.payload.len(),
            Stamp(packet.capture_us),
        );
        if let Some(at) = self.at {
            let _ = write!(head, "{}", at.rendition);
        }
        head.extend_from_slice(b"\r\n\r\n");
        tail.extend_from_slice(TRAILER);
    }

    /// Nothing when the stream ends (the connection closes after the last boundary); a
    /// refusal (the server is full) is a 503 with the reason.
    fn end(&mut self, error: Option<&str>, out: &mut Vec<u8>) {
        refusal(error, out);
    }
}

/// `/snapshot`: one JPEG, with its capture time, as a whole answer.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The rendition the packet is in.
    pub(super) at: Option<Placement>,
}

impl Framer for Snapshot {
    /// Nothing: the answer's head goes with the JPEG.
    fn start(&mut self, at: &Placement, _: &mut Vec<u8>) {
        self.at = Some(*at);
    }

    fn switch(&mut self, to: &Placement, _: &mut Vec<u8>) {
        self.at = Some(*to);
    }

    fn packet(&mut self, packet: &Packet, head: &mut Vec<u8>, _: &mut Vec<u8>) {
        let rendition = self
            .at
            .map(|at| at.rendition.to_string())
            .unwrap_or_default();
        let extra = format!(
            "X-Timestamp: {}\r\nX-Rendition: {rendition}\r\n",
            Stamp(packet.capture_us),
        );
        head.extend_from_slice(
            response_head("200 OK", "image/jpeg", packet.payload.len(), &extra).as_bytes(),
        );
    }

    fn end(&mut self, error: Option<&str>, out: &mut Vec<u8>) {
        refusal(error, out);
    }
}

/// Nothing for the end of a stream; a 503 with the reason for a refusal.
fn refusal(error: Option<&str>, out: &mut Vec<u8>) {
    if let Some(reason) = error {
        let head = response_head(
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            reason.len(),
            "",
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(reason.as_bytes());
    }
}

/// The head of a whole answer with a body of `len` bytes; the connection closes after it.
pub(super) fn response_head(status: &str, content_type: &str, len: usize, extra: &str) -> String {
    let authenticate = if status.starts_with("401") {
        "WWW-Authenticate: Bearer\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {len}\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\
         {authenticate}{extra}\r\n"
    )
}

/// The next part's headers as Chromium's `<img>` needs them early: no length, no timestamp.
const EARLY_HEADERS: &str = "Content-Type: image/jpeg\r\n\r\n";

/// What follows each JPEG: the boundary (and, early, the next part's headers). Spelled out so
/// that a part is written without formatting anything; a test checks them against `BOUNDARY`.
const TRAILER: &[u8] = b"\r\n--framewireframe\r\n";
const TRAILER_EARLY: &[u8] = b"\r\n--framewireframe\r\nContent-Type: image/jpeg\r\n\r\n";

/// A capture time as `1764770000.123456`: microseconds since the epoch as seconds.
struct Stamp(u64);

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::{CodecKind, PixelFormat, Rendition};

    fn placement(width: u32) -> Placement {
        Placement {
            id: 0,
            rung: Some(0),
            rungs: 1,
            rendition: Rendition::new(CodecKind::Jpeg, width, width * 3 / 4, PixelFormat::Rgb8, 80),
        }
    }

    fn jpeg() -> Packet {
        Packet {
            seq: 1,
            capture_us: 1_764_770_000_000_042,
            payload: b"JPEG".to_vec(),
            ..Packet::default()
        }
    }

    /// A stream's bytes: start, one part, a switch, a part of the new rendition.
    fn stream(framer: &mut dyn Framer) -> String {
        let (mut out, mut tail) = (Vec::new(), Vec::new());
        framer.start(&placement(640), &mut out);
        let jpeg = jpeg();
        framer.packet(&jpeg, &mut out, &mut tail);
        out.extend_from_slice(&jpeg.payload);
        out.append(&mut tail);
        framer.switch(&placement(320), &mut out);
        framer.packet(&jpeg, &mut out, &mut tail);
        out.extend_from_slice(&jpeg.payload);
        out.append(&mut tail);
        framer.end(None, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_mjpeg_stream_is_each_part_with_its_headers_and_the_boundary_after_each_jpeg() {
        let rendition = |w| placement(w).rendition.to_string();
        let want = format!(
            "HTTP/1.1 200 OK\r\n\
             Content-Type: multipart/x-mixed-replace;boundary=framewireframe\r\n\
             Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
             Pragma: no-cache\r\n\
             Connection: close\r\n\
             \r\n\
             --framewireframe\r\n\
             Content-Type: image/jpeg\r\n\
             Content-Length: 4\r\n\
             X-Timestamp: 1764770000.000042\r\n\
             X-Rendition: {}\r\n\
             \r\n\
             JPEG\r\n\
             --framewireframe\r\n\
             Content-Type: image/jpeg\r\n\
             Content-Length: 4\r\n\
             X-Timestamp: 1764770000.000042\r\n\
             X-Rendition: {}\r\n\
             \r\n\
             JPEG\r\n\
             --framewireframe\r\n",
            rendition(640),
            rendition(320),
        );
        let mut framer = Mjpeg {
            early: false,
            at: None,
        };
        assert_eq!(stream(&mut framer), want);
    }

    #[test]
    fn early_parts_carry_the_next_parts_headers_after_the_boundary() {
        let want = "HTTP/1.1 200 OK\r\n\
             Content-Type: multipart/x-mixed-replace;boundary=framewireframe\r\n\
             Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
             Pragma: no-cache\r\n\
             Connection: close\r\n\
             \r\n\
             --framewireframe\r\n\
             Content-Type: image/jpeg\r\n\r\n\
             JPEG\r\n\
             --framewireframe\r\n\
             Content-Type: image/jpeg\r\n\r\n\
             JPEG\r\n\
             --framewireframe\r\n\
             Content-Type: image/jpeg\r\n\r\n";
        let mut framer = Mjpeg {
            early: true,
            at: None,
        };
        assert_eq!(stream(&mut framer), want);
    }

    #[test]
    fn a_snapshot_is_one_whole_answer_and_a_refusal_a_503_with_its_reason() {
        let mut framer = Snapshot { at: None };
        let (mut out, mut tail) = (Vec::new(), Vec::new());
        framer.start(&placement(640), &mut out);
        assert!(out.is_empty(), "the head goes with the JPEG");
        framer.packet(&jpeg(), &mut out, &mut tail);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "HTTP/1.1 200 OK\r\n\
                 Content-Type: image/jpeg\r\n\
                 Content-Length: 4\r\n\
                 Cache-Control: no-store\r\n\
                 Connection: close\r\n\
                 X-Timestamp: 1764770000.000042\r\n\
                 X-Rendition: {}\r\n\r\n",
                placement(640).rendition
            )
        );
        assert!(tail.is_empty());
        let mut refused = Vec::new();
        framer.end(Some("server full"), &mut refused);
        assert_eq!(
            String::from_utf8(refused).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 11\r\n\
             Cache-Control: no-store\r\n\
             Connection: close\r\n\r\n\
             server full"
        );
    }

    #[test]
    fn trailers_are_the_boundary_and_the_early_headers() {
        assert_eq!(TRAILER, format!("\r\n--{BOUNDARY}\r\n").as_bytes());
        let early = format!("\r\n--{BOUNDARY}\r\n{EARLY_HEADERS}");
        assert_eq!(TRAILER_EARLY, early.as_bytes());
    }

    #[test]
    fn timestamps_are_seconds_with_microseconds() {
        assert_eq!(
            Stamp(1_764_770_000_000_042).to_string(),
            "1764770000.000042"
        );
    }
}
