//! How a protocol on a stream writes one subscriber's stream, as bytes: its start, a note
//! before the first packet of another rendition, each packet around its payload, a report of
//! the other direction (a call) and its goodbye or refusal. A [`Framer`] touches no socket, so
//! what it writes is tested byte for byte; framewire-net's stream outlet moves the bytes.
//! [`FramewireFramer`] is framewire's own; HTTP's MJPEG parts are framewire-net's `http`.

use framewire_core::{Packet, PeerReport, Placement};

use crate::message::{FrameHeader, Handshake, MAX_ERROR_TEXT, MessageKind, Report, Switch};

/// One subscriber's stream as bytes. Every method appends to the buffers it is given (which the
/// caller empties between messages), so a stream is written with no allocation once they grew.
pub trait Framer: Send {
    /// The stream's start: it begins in `at`.
    fn start(&mut self, at: &Placement, out: &mut Vec<u8>);

    /// The packets that follow are `to`'s. A protocol whose packets say it themselves writes
    /// nothing.
    fn switch(&mut self, to: &Placement, out: &mut Vec<u8>) {
        let _ = (to, out);
    }

    /// The bytes before `packet`'s payload into `head`, and after it into `tail`; the payload
    /// itself is written from the packet, never copied.
    fn packet(&mut self, packet: &Packet, head: &mut Vec<u8>, tail: &mut Vec<u8>);

    /// How this side shows the stream the subscriber sends it (a two-way call), before the next
    /// packet. A protocol without a way to say it writes nothing.
    fn report(&mut self, report: &PeerReport, out: &mut Vec<u8>) {
        let _ = (report, out);
    }

    /// The goodbye: the stream ended (`None`), or the subscriber is refused (`Some(reason)`,
    /// which may come instead of the start).
    fn end(&mut self, error: Option<&str>, out: &mut Vec<u8>);

    /// What answers a subscriber that said goodbye itself (a WebSocket's close is echoed). By
    /// default nothing.
    fn left(&mut self, out: &mut Vec<u8>) {
        let _ = out;
    }
}

/// framewire's stream: the handshake, a frame header before each payload, switch and report
/// messages, and an End or Error message (the layout is drawn in the crate doc).
#[derive(Debug, Clone, Copy)]
pub struct FramewireFramer {
    /// Frames per second the handshake announces (0: unpaced).
    pub fps: f64,
}

impl Framer for FramewireFramer {
    fn start(&mut self, at: &Placement, out: &mut Vec<u8>) {
        let handshake = Handshake {
            placement: *at,
            fps: self.fps,
        };
        out.extend_from_slice(&handshake.to_bytes());
    }

    fn switch(&mut self, to: &Placement, out: &mut Vec<u8>) {
        out.extend_from_slice(&Switch::header().to_bytes());
        out.extend_from_slice(&Switch { placement: *to }.to_bytes());
    }

    fn packet(&mut self, packet: &Packet, head: &mut Vec<u8>, _: &mut Vec<u8>) {
        let header = FrameHeader {
            delta: !packet.keyframe,
            ..FrameHeader::frame(packet.seq, packet.capture_us, packet.payload.len() as u32)
        };
        head.extend_from_slice(&header.to_bytes());
    }

    fn report(&mut self, report: &PeerReport, out: &mut Vec<u8>) {
        out.extend_from_slice(&Report::header().to_bytes());
        out.extend_from_slice(&Report(*report).to_bytes());
    }

    fn end(&mut self, error: Option<&str>, out: &mut Vec<u8>) {
        end_message(error, out);
    }
}

/// framewire's goodbye (`None`: End) or refusal (`Some(reason)`: Error, the reason cut to
/// [`MAX_ERROR_TEXT`] bytes).
pub fn end_message(error: Option<&str>, out: &mut Vec<u8>) {
    let (kind, reason) = match error {
        None => (MessageKind::End, &b""[..]),
        Some(e) => (MessageKind::Error, e.as_bytes()),
    };
    let reason = &reason[..reason.len().min(MAX_ERROR_TEXT as usize)];
    let header = FrameHeader {
        kind,
        seq: 0,
        capture_us: 0,
        payload_len: reason.len() as u32,
        delta: false,
    };
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::{CodecKind, PixelFormat, Rendition};

    fn placement(rung: u8) -> Placement {
        Placement {
            id: rung.into(),
            rung: Some(rung),
            rungs: 2,
            rendition: Rendition::new(CodecKind::Jpeg, 320, 240, PixelFormat::Rgb8, 80),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every message of a stream, byte for byte, field by field as the crate doc draws them:
    /// a change to the wire format cannot pass unnoticed.
    #[test]
    fn a_framewire_stream_is_written_byte_for_byte_as_the_crate_doc_draws_it() {
        let mut framer = FramewireFramer { fps: 30.0 };
        let mut out = Vec::new();
        framer.start(&placement(0), &mut out);
        // "FWST", version 2, jpeg, rgb8, 320, 240, 30 000 mfps, rung 0, 2 rungs, quality 80.
        let handshake = "46575354 0200 03 01 40010000 f0000000 30750000 00 02 50 00";
        assert_eq!(hex(&out), handshake.replace(' ', ""));
        out.clear();
        framer.switch(&placement(1), &mut out);
        // A switch header (kind 3, 16 bytes of payload), then jpeg, rgb8, rung 1, quality 80,
        // 320, 240, 2 rungs.
        let switch = "46574652 03 000000 0000000000000000 0000000000000000 10000000 00000000 \
                      03 01 01 50 40010000 f0000000 02 000000";
        assert_eq!(hex(&out), switch.replace([' ', '\\', '\n'], ""));
        let packet = Packet {
            seq: 7,
            capture_us: 1_000_000,
            keyframe: true,
            payload: vec![1, 2, 3],
            ..Packet::default()
        };
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        framer.packet(&packet, &mut head, &mut tail);
        // A frame (kind 0), seq 7, captured at 1 000 000 us, 3 bytes of payload.
        let frame = "46574652 00 000000 0700000000000000 40420f0000000000 03000000 00000000";
        assert_eq!(hex(&head), frame.replace(' ', ""));
        assert!(tail.is_empty(), "nothing after the payload");
        // A delta of an inter-frame codec: flags bit 0.
        head.clear();
        let delta = Packet {
            keyframe: false,
            ..packet.clone()
        };
        framer.packet(&delta, &mut head, &mut tail);
        let frame = "46574652 00 010000 0700000000000000 40420f0000000000 03000000 00000000";
        assert_eq!(hex(&head), frame.replace(' ', ""));
        out.clear();
        framer.report(
            &PeerReport {
                fps: 29.5,
                latency: Some(std::time::Duration::from_millis(40)),
            },
            &mut out,
        );
        // A report (kind 4, 16 bytes): 29 500 mfps, 40 000 us, reserved.
        let report = "46574652 04 000000 0000000000000000 0000000000000000 10000000 00000000 \
                      3c730000 409c0000 0000000000000000";
        assert_eq!(hex(&out), report.replace([' ', '\\', '\n'], ""));
        out.clear();
        framer.end(None, &mut out);
        let end = "46574652 01 000000 0000000000000000 0000000000000000 00000000 00000000";
        assert_eq!(hex(&out), end.replace(' ', ""));
        out.clear();
        framer.end(Some("full"), &mut out);
        // An error (kind 2) and its reason.
        let error = "46574652 02 000000 0000000000000000 0000000000000000 04000000 00000000 \
                     66756c6c";
        assert_eq!(hex(&out), error.replace([' ', '\\', '\n'], ""));
    }

    #[test]
    fn a_refusal_is_cut_to_the_longest_reason_the_wire_carries() {
        let mut out = Vec::new();
        end_message(Some(&"x".repeat(5000)), &mut out);
        assert_eq!(out.len(), 32 + MAX_ERROR_TEXT as usize);
    }
}
