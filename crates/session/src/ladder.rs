//! The quality ladder a sender offers when it is not given one.

use framewire_core::CodecKind;

/// A rung as given: a size, and what sets its bytes when that is not the stream's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// JPEG's quality (`640x480@80`); `None`: the stream's.
    pub quality: Option<u8>,
    /// H.264's bitrate in kbit/s (`640x480@1500k`); `None`: the top rung's, scaled by pixels.
    pub bitrate_kbit: Option<u32>,
}

impl Rung {
    /// `width` x `height` at the stream's own quality or bitrate.
    pub const fn size(width: u32, height: u32) -> Rung {
        Rung {
            width,
            height,
            quality: None,
            bitrate_kbit: None,
        }
    }

    /// This rung at JPEG quality `quality`.
    #[must_use]
    pub const fn at_quality(mut self, quality: u8) -> Rung {
        self.quality = Some(quality);
        self
    }

    /// This rung at `kbit` kbit/s.
    #[must_use]
    pub const fn at_kbit(mut self, kbit: u32) -> Rung {
        self.bitrate_kbit = Some(kbit);
        self
    }
}

/// The default ladder, best first, for a stream of `width` x `height` in `codec` at `quality`
/// (JPEG) or `kbit` kbit/s (H.264) at the top:
/// - JPEG: the size and quality asked, a lower quality (5/8 of it), and half the size at that
///   lower quality;
/// - H.264: the size at the bitrate asked, at 5/8 and 3/8 of it, and half the size at 3/16 of
///   it (rate control holds each rung near its bitrate, so the steps are the bytes' steps);
/// - codecs with neither: the size, half and a quarter of it.
///
/// One rung, the size asked, when viewers do not move along the ladder (`adapts` false).
pub fn default_rungs(
    codec: CodecKind,
    (w, h): (u32, u32),
    (quality, kbit): (u8, u32),
    adapts: bool,
) -> Vec<Rung> {
    let half = |n: u32| (n / 2).max(1);
    if !adapts {
        return vec![Rung::size(w, h)];
    }
    match codec {
        CodecKind::Jpeg => {
            let lower = (u32::from(quality) * 5 / 8).max(1) as u8;
            vec![
                Rung::size(w, h),
                Rung::size(w, h).at_quality(lower),
                Rung::size(half(w), half(h)).at_quality(lower),
            ]
        }
        CodecKind::H264 => {
            let part = |eighths: u32| (u64::from(kbit) * u64::from(eighths) / 8).max(1) as u32;
            vec![
                Rung::size(w, h).at_kbit(kbit),
                Rung::size(w, h).at_kbit(part(5)),
                Rung::size(w, h).at_kbit(part(3)),
                Rung::size(half(w), half(h)).at_kbit((part(3) / 2).max(1)),
            ]
        }
        _ => vec![
            Rung::size(w, h),
            Rung::size(half(w), half(h)),
            Rung::size(half(half(w)), half(half(h))),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_steps_down_in_quality_then_in_size_h264_in_bitrate_then_size_others_in_size() {
        let s = Rung::size;
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (640, 480), (80, 0), true),
            vec![
                s(640, 480),
                s(640, 480).at_quality(50),
                s(320, 240).at_quality(50)
            ]
        );
        assert_eq!(
            default_rungs(CodecKind::H264, (640, 480), (80, 2000), true),
            vec![
                s(640, 480).at_kbit(2000),
                s(640, 480).at_kbit(1250),
                s(640, 480).at_kbit(750),
                s(320, 240).at_kbit(375)
            ]
        );
        assert_eq!(
            default_rungs(CodecKind::Raw, (640, 480), (80, 0), true),
            vec![s(640, 480), s(320, 240), s(160, 120)]
        );
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (1, 1), (1, 0), true),
            vec![s(1, 1), s(1, 1).at_quality(1), s(1, 1).at_quality(1)],
            "never below one pixel or quality 1"
        );
        assert_eq!(
            default_rungs(CodecKind::H264, (2, 2), (80, 1), true)[3],
            s(1, 1).at_kbit(1),
            "never below 1 kbit/s"
        );
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (640, 480), (80, 0), false),
            vec![s(640, 480)]
        );
    }
}
