//! The H.264 Annex-B byte stream, as far as framewire reads it without decoding: the NAL units
//! of an access unit, and what a sequence parameter set (SPS) says of the profile and the
//! picture's size. The file source (`--source file:x.h264`) and the codec's decoder share it:
//! both take constrained baseline only, and the decoder refuses an SPS of another size than its
//! stream before the decoder library allocates for it.

/// NAL unit types framewire looks at.
pub const NAL_SLICE: u8 = 1;
/// An IDR slice: the access unit decodes on its own (with the SPS and PPS before it).
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// A sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// A picture parameter set.
pub const NAL_PPS: u8 = 8;
/// An access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The largest picture side an SPS may give (framewire's own limit for every codec).
pub const MAX_SIDE: u32 = 16384;

/// The NAL units of an Annex-B access unit: each unit's bytes (header byte first) after its
/// start code (00 00 01, or 00 00 00 01).
pub fn nal_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        let at = rest.windows(3).position(|w| w == [0, 0, 1])?;
        rest = &rest[at + 3..];
        let end = rest
            .windows(3)
            .position(|w| w == [0, 0, 1] || w == [0, 0, 0])
            .unwrap_or(rest.len());
        let unit = &rest[..end];
        rest = &rest[end..];
        Some(unit)
    })
    .filter(|unit| !unit.is_empty())
}

/// What an SPS says: the profile (with its constraint flags) and the picture's size, cropping
/// applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`: 66 is baseline.
    pub profile: u8,
    /// The constraint flags byte (constrained baseline sets 0x40).
    pub constraints: u8,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why an SPS is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// Another profile than baseline.
    #[error(
        "an H.264 stream in the {} profile ({profile}, constraints {constraints:#04x}): \
         framewire takes constrained baseline only (no B-frames); encode with -profile:v baseline",
        profile_name(*.profile)
    )]
    Profile {
        /// `profile_idc`.
        profile: u8,
        /// The constraint flags byte.
        constraints: u8,
    },
    /// Too short to read, or a size of 0 or beyond [`MAX_SIDE`].
    #[error("a truncated or malformed SPS (or a picture side beyond {MAX_SIDE})")]
    Malformed,
}

/// The profile's name, for the line that refuses it.
pub fn profile_name(idc: u8) -> &'static str {
    match idc {
        66 => "baseline",
        77 => "main",
        88 => "extended",
        100 => "high",
        110 => "high 10",
        122 => "high 4:2:2",
        244 => "high 4:4:4",
        _ => "another",
    }
}

/// Reads an SPS NAL unit (its header byte included). Baseline streams that use no FMO or ASO
/// decode as constrained baseline does, so profile 66 is taken with any constraint flags.
pub fn sps(unit: &[u8]) -> Result<Sps, SpsError> {
    let &[_, profile, constraints, _level, ..] = unit else {
        return Err(SpsError::Malformed);
    };
    if profile != 66 {
        return Err(SpsError::Profile {
            profile,
            constraints,
        });
    }
    let mut b = Bits::new(&unit[4..]);
    let mut read = || -> Option<Sps> {
        b.ue()?; // seq_parameter_set_id
        b.ue()?; // log2_max_frame_num_minus4
        match b.ue()? {
            0 => {
                b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                b.bit()?; // delta_pic_order_always_zero_flag
                b.ue()?; // offset_for_non_ref_pic (se, read as ue: only its length matters)
                b.ue()?; // offset_for_top_to_bottom_field
                for _ in 0..b.ue()?.min(255) {
                    b.ue()?;
                }
            }
            _ => {}
        }
        b.ue()?; // max_num_ref_frames
        b.bit()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = b.ue()?.checked_add(1)?;
        let height_units = b.ue()?.checked_add(1)?;
        let frame_mbs_only = b.bit()?;
        if frame_mbs_only == 0 {
            b.bit()?; // mb_adaptive_frame_field_flag
        }
        b.bit()?; // direct_8x8_inference_flag
        let (mut left, mut right, mut top, mut bottom) = (0u32, 0u32, 0u32, 0u32);
        if b.bit()? == 1 {
            (left, right, top, bottom) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
        }
        let height_mbs = height_units.checked_mul(2 - frame_mbs_only)?;
        // 4:2:0 (baseline): crop units of 2 pixels, 2 x (2 - frame_mbs_only) rows.
        let crop_x = left.checked_add(right)?.checked_mul(2)?;
        let crop_y = top
            .checked_add(bottom)?
            .checked_mul(2 * (2 - frame_mbs_only))?;
        let width = width_mbs.checked_mul(16)?.checked_sub(crop_x)?;
        let height = height_mbs.checked_mul(16)?.checked_sub(crop_y)?;
        let side = 1..=MAX_SIDE;
        (side.contains(&width) && side.contains(&height)).then_some(Sps {
            profile,
            constraints,
            width,
            height,
        })
    };
    read().ok_or(SpsError::Malformed)
}

/// The bits of an SPS's payload, emulation prevention bytes (00 00 03) removed.
struct Bits {
    bytes: Vec<u8>,
    at: usize,
}

impl Bits {
    fn new(rbsp: &[u8]) -> Bits {
        let mut bytes = Vec::with_capacity(rbsp.len());
        let mut zeros = 0;
        for &b in rbsp {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            bytes.push(b);
        }
        Bits { bytes, at: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.bytes.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v << 1 | self.bit()?))
    }

    /// An unsigned Exp-Golomb number.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        ((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?))
            .try_into()
            .ok()
    }
}

/// An SPS in bits, for tests here and in the crates that read H.264: constrained baseline,
/// level 3.0, POC type 2, one reference frame, frame_mbs_only, no cropping, of
/// `width_mbs` x `height_mbs` macroblocks (each at least 1).
#[doc(hidden)]
pub fn test_sps(width_mbs: u32, height_mbs: u32) -> Vec<u8> {
    fn ue(bits: &mut String, v: u32) {
        let n = u64::from(v) + 1;
        bits.push_str(&"0".repeat(63 - n.leading_zeros() as usize));
        bits.push_str(&format!("{n:b}"));
    }
    let mut bits = String::new();
    ue(&mut bits, 0); // seq_parameter_set_id
    ue(&mut bits, 0); // log2_max_frame_num_minus4
    ue(&mut bits, 2); // pic_order_cnt_type
    ue(&mut bits, 1); // max_num_ref_frames
    bits.push('0'); // gaps_in_frame_num_value_allowed_flag
    ue(&mut bits, width_mbs - 1);
    ue(&mut bits, height_mbs - 1);
    bits.push_str("110"); // frame_mbs_only, direct_8x8, no cropping
    bits.push_str("01"); // no VUI, the stop bit
    let mut unit = vec![0x67, 66, 0xC0, 30];
    for chunk in bits.as_bytes().chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |b, (i, c)| b | ((c - b'0') << (7 - i)));
        unit.push(byte);
    }
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sps_gives_its_size_and_other_profiles_are_refused() {
        let mut b = test_sps(40, 30);
        assert_eq!(
            sps(&b),
            Ok(Sps {
                profile: 66,
                constraints: 0xC0,
                width: 640,
                height: 480
            })
        );
        b[1] = 100;
        let e = sps(&b).unwrap_err().to_string();
        assert!(
            e.contains("high profile (100") && e.contains("baseline"),
            "{e}"
        );
        assert_eq!(sps(&[0x67, 66]), Err(SpsError::Malformed));
    }

    #[test]
    fn absurd_sizes_and_any_bytes_are_refused_never_a_panic() {
        assert_eq!(sps(&test_sps(1024, 1024)).unwrap().width, 16384);
        assert_eq!(sps(&test_sps(1025, 1)), Err(SpsError::Malformed));
        assert_eq!(sps(&test_sps(1, 1 << 20)), Err(SpsError::Malformed));
        // Every ue() at its longest (31 zeros, then all ones), and arbitrary bytes.
        let mut long = vec![0x67, 66, 0xC0, 30];
        long.extend([0, 0, 0, 1].repeat(3));
        long.extend([0xFF; 32]);
        let _ = sps(&long);
        let mut x = 0x9E37_79B9_u32;
        for len in 0..300 {
            let mut unit = vec![0x67, 66, 0xC0, 30];
            unit.extend((0..len).map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }));
            if let Ok(s) = sps(&unit) {
                assert!((1..=MAX_SIDE).contains(&s.width) && (1..=MAX_SIDE).contains(&s.height));
            }
        }
    }

    #[test]
    fn nal_units_are_cut_at_three_and_four_byte_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let units: Vec<&[u8]> = nal_units(&au).collect();
        assert_eq!(units, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }
}
