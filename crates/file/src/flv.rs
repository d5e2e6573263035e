//! H.264 in FLV's video tags (Adobe's FLV specification 10.1, annex E.4.3), the bodies an RTMP
//! video message carries: the AVC sequence header (an `AVCDecoderConfigurationRecord`, ISO
//! 14496-15 5.2.4.1, made from the stream's SPS and PPS) before the first picture and again
//! whenever they change, then each access unit with its NAL units length-prefixed (AVCC) instead
//! of after Annex-B start codes. The SPS, PPS and delimiters stay out of the pictures' tags: the
//! sequence header carries the parameter sets.

use crate::h264::{NAL_AUD, NAL_PPS, NAL_SPS, nal_units};

/// FLV's codec id for AVC (H.264), in the low nibble of a video tag's first byte.
const CODEC_AVC: u8 = 7;
/// The frame types, in its high nibble.
const KEY_FRAME: u8 = 1;
const INTER_FRAME: u8 = 2;
/// `AVCPacketType`: the sequence header, or NAL units.
const SEQUENCE_HEADER: u8 = 0;
const NALU: u8 = 1;

/// The first SPS and PPS of an access unit (a keyframe of framewire's encoder carries both).
pub fn parameter_sets(access_unit: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut sps = None;
    let mut pps = None;
    for unit in nal_units(access_unit) {
        match unit[0] & 0x1f {
            NAL_SPS if sps.is_none() => sps = Some(unit),
            NAL_PPS if pps.is_none() => pps = Some(unit),
            _ => {}
        }
    }
    sps.zip(pps)
}

/// Appends the video tag body of the AVC sequence header for `sps` and `pps` (each a NAL unit,
/// header byte first) to `out`. `None` when a unit is too short (an SPS holds the profile and
/// level in its bytes 1 to 3) or too long for the record's 16-bit lengths.
pub fn sequence_header(sps: &[u8], pps: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if sps.len() < 4 || pps.is_empty() {
        return None;
    }
    let sps_len = u16::try_from(sps.len()).ok()?;
    let pps_len = u16::try_from(pps.len()).ok()?;
    out.extend_from_slice(&[KEY_FRAME << 4 | CODEC_AVC, SEQUENCE_HEADER, 0, 0, 0]);
    // configurationVersion 1; profile, compatibility and level as the SPS says; NAL lengths in
    // 4 bytes (lengthSizeMinusOne 3, the reserved bits set); one SPS; one PPS.
    out.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | 1]);
    out.extend_from_slice(&sps_len.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&pps_len.to_be_bytes());
    out.extend_from_slice(pps);
    Some(())
}

/// Appends the video tag body of one access unit (Annex-B) to `out`: its NAL units, each after
/// its length in 4 bytes, with no composition offset (no B-frames). Returns the NAL bytes
/// written (0: nothing but parameter sets and delimiters, which the caller leaves unsent).
pub fn video_tag(access_unit: &[u8], keyframe: bool, out: &mut Vec<u8>) -> usize {
    let kind = if keyframe { KEY_FRAME } else { INTER_FRAME };
    out.extend_from_slice(&[kind << 4 | CODEC_AVC, NALU, 0, 0, 0]);
    let start = out.len();
    for unit in nal_units(access_unit) {
        if matches!(unit[0] & 0x1f, NAL_SPS | NAL_PPS | NAL_AUD) {
            continue;
        }
        // A NAL unit is never near 4 GiB: an access unit is one packet, far below that.
        let len = u32::try_from(unit.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(unit);
    }
    out.len() - start
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 6] = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02];
    const PPS: [u8; 3] = [0x68, 0xce, 0x38];

    fn keyframe() -> Vec<u8> {
        let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(&SPS);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&PPS);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]);
        au
    }

    #[test]
    fn the_parameter_sets_are_found_in_a_keyframe_and_missing_from_a_delta() {
        assert_eq!(parameter_sets(&keyframe()), Some((&SPS[..], &PPS[..])));
        assert_eq!(parameter_sets(&[0, 0, 0, 1, 0x41, 0x9a]), None);
    }

    #[test]
    fn the_sequence_header_is_the_avc_configuration_record_of_the_sps_and_pps() {
        let mut out = Vec::new();
        sequence_header(&SPS, &PPS, &mut out).unwrap();
        let mut want = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 6];
        want.extend_from_slice(&SPS);
        want.extend_from_slice(&[1, 0, 3]);
        want.extend_from_slice(&PPS);
        assert_eq!(out, want);
        assert_eq!(sequence_header(&SPS[..3], &PPS, &mut out), None);
        assert_eq!(sequence_header(&SPS, &[], &mut out), None);
    }

    #[test]
    fn a_picture_is_its_slices_length_prefixed_without_parameter_sets_or_delimiters() {
        let mut out = Vec::new();
        assert_eq!(video_tag(&keyframe(), true, &mut out), 8);
        assert_eq!(out, [0x17, 1, 0, 0, 0, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]);
        out.clear();
        let delta = [0, 0, 1, 0x41, 0x9a, 0, 0, 0, 1, 0x41, 0x9b, 0x07];
        assert_eq!(video_tag(&delta, false, &mut out), 13);
        assert_eq!(
            out,
            [
                0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a, 0, 0, 0, 3, 0x41, 0x9b, 0x07
            ]
        );
        out.clear();
        assert_eq!(video_tag(&[0, 0, 1, 0x09, 0xf0], false, &mut out), 0);
    }
}
