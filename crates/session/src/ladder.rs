//! The quality ladder a sender offers when it is not given one.

use framewire_core::CodecKind;

/// A rung: width, height, and the quality when it is not the stream's own.
pub type Rung = (u32, u32, Option<u8>);

/// The default ladder, best first, for a stream of `width` x `height` in `codec` at `quality`:
/// the size and quality asked, a lower quality (5/8 of it), and half the size at that lower
/// quality; for codecs without a quality, the size, half and a quarter of it. One rung, the
/// size asked, when viewers do not move along the ladder (`adapts` false).
pub fn default_rungs(codec: CodecKind, (w, h): (u32, u32), quality: u8, adapts: bool) -> Vec<Rung> {
    let half = |n: u32| (n / 2).max(1);
    if !adapts {
        return vec![(w, h, None)];
    }
    if codec == CodecKind::Jpeg {
        let lower = (u32::from(quality) * 5 / 8).max(1) as u8;
        return vec![
            (w, h, None),
            (w, h, Some(lower)),
            (half(w), half(h), Some(lower)),
        ];
    }
    vec![
        (w, h, None),
        (half(w), half(h), None),
        (half(half(w)), half(half(h)), None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_steps_down_in_quality_then_in_size_and_other_codecs_in_size() {
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (640, 480), 80, true),
            vec![(640, 480, None), (640, 480, Some(50)), (320, 240, Some(50))]
        );
        assert_eq!(
            default_rungs(CodecKind::Raw, (640, 480), 80, true),
            vec![(640, 480, None), (320, 240, None), (160, 120, None)]
        );
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (1, 1), 1, true),
            vec![(1, 1, None), (1, 1, Some(1)), (1, 1, Some(1))],
            "never below one pixel or quality 1"
        );
        assert_eq!(
            default_rungs(CodecKind::Jpeg, (640, 480), 80, false),
            vec![(640, 480, None)]
        );
    }
}
