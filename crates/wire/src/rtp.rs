//! H.264 over RTP (RFC 6184, packetization mode 1) inside RTSP's interleaved TCP framing (RFC
//! 2326 10.12), as an RTSP RECORD publisher sends it: each NAL unit of an access unit in one
//! RTP packet when it fits, else in fragmentation units (FU-A); the marker bit on the access
//! unit's last packet; the 90 kHz timestamp from capture time. Bytes only: framewire-net writes
//! them to the socket.

/// The dynamic payload type the SDP maps to H.264.
pub const PAYLOAD_TYPE: u8 = 96;
/// The RTP clock of video, Hz.
pub const CLOCK_RATE: u32 = 90_000;
/// The largest RTP payload written: a datagram's worth, which every server's relay to UDP
/// players takes (the interleaved framing itself allows 64 KiB).
pub const MAX_PAYLOAD: usize = 1400;

/// The FU-A NAL unit type (RFC 6184 5.8).
const FU_A: u8 = 28;
const RTP_HEADER: usize = 12;

/// One RTP stream's state: its source id and next sequence number.
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    /// The interleaved channel its RTP packets go on (RTCP is the next one).
    pub channel: u8,
    /// The synchronisation source id.
    pub ssrc: u32,
    /// The next packet's sequence number.
    pub seq: u16,
}

impl H264Packetizer {
    /// A stream on interleaved `channel` with source id `ssrc`, its first sequence number `seq`
    /// (random for a new session, RFC 3550 5.1).
    pub fn new(channel: u8, ssrc: u32, seq: u16) -> H264Packetizer {
        H264Packetizer { channel, ssrc, seq }
    }

    /// Appends the interleaved RTP packets of one access unit, given as its NAL units (header
    /// byte first, no start codes), at `timestamp` (90 kHz) to `out`; returns the packets written.
    pub fn access_unit<'a>(
        &mut self,
        units: impl IntoIterator<Item = &'a [u8]>,
        timestamp: u32,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut units = units.into_iter().filter(|u| !u.is_empty()).peekable();
        let mut packets = 0;
        while let Some(unit) = units.next() {
            let last_unit = units.peek().is_none();
            if unit.len() <= MAX_PAYLOAD {
                self.packet(&[unit], last_unit, timestamp, out);
                packets += 1;
                continue;
            }
            let (header, body) = (unit[0], &unit[1..]);
            let indicator = (header & 0xe0) | FU_A;
            let mut chunks = body.chunks(MAX_PAYLOAD - 2).peekable();
            let mut first = true;
            while let Some(chunk) = chunks.next() {
                let end = chunks.peek().is_none();
                let fu = (u8::from(first) << 7) | (u8::from(end) << 6) | (header & 0x1f);
                self.packet(&[&[indicator, fu], chunk], end && last_unit, timestamp, out);
                packets += 1;
                first = false;
            }
        }
        packets
    }

    /// One interleaved RTP packet of `parts`.
    fn packet(&mut self, parts: &[&[u8]], marker: bool, timestamp: u32, out: &mut Vec<u8>) {
        let len = RTP_HEADER + parts.iter().map(|p| p.len()).sum::<usize>();
        // At most MAX_PAYLOAD and a header: well within the framing's 16 bits.
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        out.extend_from_slice(&[b'$', self.channel]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0x80, (u8::from(marker) << 7) | PAYLOAD_TYPE]);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for part in parts {
            out.extend_from_slice(part);
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

/// The 90 kHz RTP timestamp of a capture time (microseconds), counted from `base` (the first
/// packet's timestamp, random per session) at capture time `start_us`.
pub fn timestamp(base: u32, start_us: u64, capture_us: u64) -> u32 {
    let ticks = capture_us.saturating_sub(start_us) * u64::from(CLOCK_RATE) / 1_000_000;
    // RTP timestamps wrap (RFC 3550 5.1): the low 32 bits are the timestamp.
    base.wrapping_add(ticks as u32)
}

/// The SDP an ANNOUNCE carries for one H.264 stream (RFC 6184 8.2.1). The parameter sets travel
/// in band, before each keyframe, so none are named here.
pub fn sdp(origin: &str, control: &str) -> String {
    format!(
        "v=0\r\n\
         o=- 0 0 IN IP4 {origin}\r\n\
         s=framewire\r\n\
         c=IN IP4 0.0.0.0\r\n\
         t=0 0\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK_RATE}\r\n\
         a=fmtp:{PAYLOAD_TYPE} packetization-mode=1\r\n\
         a=control:{control}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RTP packets of `out`: (channel, marker, seq, timestamp, payload).
    fn packets(out: &[u8]) -> Vec<(u8, bool, u16, u32, Vec<u8>)> {
        let mut rest = out;
        let mut found = Vec::new();
        while !rest.is_empty() {
            assert_eq!(rest[0], b'$');
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let rtp = &rest[4..4 + len];
            assert_eq!(rtp[0], 0x80);
            assert_eq!(rtp[1] & 0x7f, PAYLOAD_TYPE);
            assert_eq!(&rtp[8..12], &0x1234_5678u32.to_be_bytes());
            found.push((
                rest[1],
                rtp[1] & 0x80 != 0,
                u16::from_be_bytes([rtp[2], rtp[3]]),
                u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
                rtp[12..].to_vec(),
            ));
            rest = &rest[4 + len..];
        }
        found
    }

    #[test]
    fn small_units_go_one_a_packet_with_the_marker_on_the_last() {
        let mut p = H264Packetizer::new(0, 0x1234_5678, 65535);
        let mut out = Vec::new();
        let units: [&[u8]; 3] = [&[0x67, 1, 2], &[0x68, 3], &[0x65, 4, 5, 6]];
        assert_eq!(p.access_unit(units, 9000, &mut out), 3);
        let found = packets(&out);
        assert_eq!(
            found,
            [
                (0, false, 65535, 9000, vec![0x67, 1, 2]),
                (0, false, 0, 9000, vec![0x68, 3]),
                (0, true, 1, 9000, vec![0x65, 4, 5, 6]),
            ]
        );
    }

    #[test]
    fn a_large_unit_goes_in_fragments_that_join_back_into_it() {
        let mut p = H264Packetizer::new(2, 0x1234_5678, 7);
        let unit: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000u32).map(|i| i as u8))
            .collect();
        let mut out = Vec::new();
        assert_eq!(p.access_unit([&unit[..]], 1, &mut out), 3);
        let found = packets(&out);
        let mut joined = vec![(found[0].4[0] & 0xe0) | (found[0].4[1] & 0x1f)];
        for (i, (channel, marker, seq, _, payload)) in found.iter().enumerate() {
            assert_eq!(*channel, 2);
            assert_eq!(*seq, 7 + i as u16);
            assert_eq!(*marker, i == 2);
            assert!(payload.len() <= MAX_PAYLOAD);
            assert_eq!(payload[0], 0x60 | FU_A);
            assert_eq!(payload[1] & 0x80 != 0, i == 0, "start bit");
            assert_eq!(payload[1] & 0x40 != 0, i == 2, "end bit");
            joined.extend_from_slice(&payload[2..]);
        }
        assert_eq!(joined, unit);
    }

    #[test]
    fn timestamps_run_at_90_khz_from_the_base_and_wrap() {
        assert_eq!(timestamp(100, 1_000_000, 1_000_000), 100);
        assert_eq!(timestamp(100, 1_000_000, 2_000_000), 90_100);
        assert_eq!(timestamp(u32::MAX, 0, 1_000_000), 89_999);
        assert_eq!(timestamp(5, 2_000_000, 1_000_000), 5);
    }

    #[test]
    fn the_sdp_maps_payload_type_96_to_h264_in_packetization_mode_1() {
        let sdp = sdp("127.0.0.1", "streamid=0");
        assert!(sdp.contains("m=video 0 RTP/AVP 96\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"), "{sdp}");
        assert!(sdp.contains("a=fmtp:96 packetization-mode=1\r\n"), "{sdp}");
        assert!(sdp.ends_with("a=control:streamid=0\r\n"), "{sdp}");
    }
}
