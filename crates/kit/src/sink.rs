//! A sink a program puts around its own: [`KeepLast`] passes frames on to another sink, or to
//! none, and keeps a copy of the last one when asked (a snapshot at the end).

use framewire_core::{Flow, Frame, FrameSink, PixelFormat, SinkError};

/// Passes frames on to an optional sink, keeping a copy of the last one when asked.
pub struct KeepLast {
    keep: bool,
    /// The last frame, when kept (empty before the first).
    pub last: Frame,
    inner: Option<Box<dyn FrameSink>>,
}

impl KeepLast {
    /// Frames go on to `inner` (or nowhere); with `keep`, the last stays in [`KeepLast::last`].
    pub fn new(keep: bool, inner: Option<Box<dyn FrameSink>>) -> KeepLast {
        KeepLast {
            keep,
            last: Frame::empty(PixelFormat::Rgb8),
            inner,
        }
    }
}

impl FrameSink for KeepLast {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        if self.keep {
            self.last.clone_from(frame);
        }
        match &mut self.inner {
            Some(sink) => sink.show(frame),
            None => Ok(Flow::Continue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_frame_only_when_asked() {
        let mut frame = Frame::new(1, 1, PixelFormat::Rgb8);
        frame.pixels.copy_from_slice(&[1, 2, 3]);
        let mut kept = KeepLast::new(true, None);
        assert_eq!(kept.show(&frame).unwrap(), Flow::Continue);
        frame.pixels.copy_from_slice(&[4, 5, 6]);
        kept.show(&frame).unwrap();
        assert_eq!(kept.last.pixels, [4, 5, 6]);
        let mut not = KeepLast::new(false, None);
        not.show(&frame).unwrap();
        assert!(not.last.pixels.is_empty());
    }
}
