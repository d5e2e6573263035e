//! The source as the send path sees it: a [`Feed`] hands over pixels, or a finished packet (a
//! camera's own JPEG, passed through), or says nothing is new yet; and a [`Scaler`] resizes.

use crate::{CaptureError, CodecKind, Frame, Packet, SourceInfo};

/// What [`Feed::pull`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// Pixels, in the frame.
    Frame,
    /// A finished payload (a camera's JPEG passed through), in the packet.
    Packet,
    /// Nothing new yet (a slow or lost camera); ask again.
    Nothing,
    /// The source ended.
    Ended,
}

/// What happened to a source that runs on its own, for the user to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceEvent {
    /// The source failed and is being reopened; the reason.
    Lost(String),
    /// The source was reopened and delivers frames again.
    Back,
}

/// A source as the send path pulls it.
pub trait Feed: Send {
    /// What the source delivers.
    fn info(&self) -> SourceInfo;

    /// The next frame, or a finished packet when passing through; waits at most a fraction of
    /// a second, so the caller sees Ctrl-C and subscribers in time.
    fn pull(&mut self, frame: &mut Frame, packet: &mut Packet) -> Result<Pulled, CaptureError>;

    /// The codec of the packets this feed passes through as they are, if it does.
    fn passthrough(&self) -> Option<CodecKind> {
        None
    }

    /// What happened since the last call, oldest first.
    fn events(&mut self) -> Vec<SourceEvent> {
        Vec::new()
    }

    /// Whether the source is gone for now (subscribers get the last packet again as a keepalive).
    fn is_lost(&self) -> bool {
        false
    }

    /// Frames the source delivered that a busy pipeline never took (newest frame wins).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Resizes frames into a caller-owned frame, reusing its own buffers.
pub trait Scaler: Send {
    /// Resizes `src` into `dst` at exactly `width` x `height`.
    fn scale(
        &mut self,
        src: &Frame,
        dst: &mut Frame,
        width: u32,
        height: u32,
    ) -> Result<(), CaptureError>;
}
