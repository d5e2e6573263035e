//! framewire's send and receive paths, built from framewire-core's traits alone: any source,
//! scaler, codec, transport and sink the binary assembles.
//!
//! - [`send`]: a [`Feed`](framewire_core::Feed) → the encode stage ([`stage`]: each frame
//!   resized and encoded once per rendition of the [`Ladder`](framewire_core::Ladder) some
//!   subscriber is on) → every [`Publisher`](framewire_core::Publisher) in a list, a frame's
//!   packets together. Passed-through packets join the same queue as encoded ones, so every
//!   packet leaves by one path.
//! - [`receive`]: a [`Connector`](framewire_core::Connector)'s subscription → decode → [`Stats`]
//!   → a [`FrameSink`](framewire_core::FrameSink), reconnecting with backoff when a connection
//!   is lost and the transport says a retry may help.
//!
//! - [`call`]: a two-way call's receiving side on any
//!   [`CallSide`](framewire_core::CallSide), the peer's reports going out on its sending half.
//!
//! - [`ladder`]: the quality ladder a sender offers when it is not given one.
//!
//! Nothing here prints: what happens is handed to the caller as events.

pub mod call;
pub mod ladder;
pub mod receive;
pub mod send;
pub mod stage;
pub mod stats;

pub use call::{REPORT_EVERY, calls};
pub use receive::{Outcome, ReceiveConfig, ReceiveError, ReceiveEvent, StopSignal, receive};
pub use send::{SendConfig, SendError, SendEvent, SendReport, Sender};
pub use stats::{Latency, Report, Stats};

/// An error and its sources on one line, `a: b: c`, as the binary prints errors.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        line.push_str(": ");
        line.push_str(&s.to_string());
        next = s.source();
    }
    line
}

#[cfg(test)]
mod test_lanes {
    //! Test doubles for the encode stage: an encoder that writes the size and quality of the
    //! rendition it was made for and the frame's first byte (and refuses a frame of another
    //! size, or whose pixels are short), makers that count what they make, and a
    //! nearest-pixel scaler.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use framewire_core::{
        CaptureError, CodecError, CodecKind, Encoded, Frame, FrameEncoder, PixelFormat, Rendition,
        Scaler, StreamInfo,
    };

    use crate::SendError;
    use crate::stage::MakeEncoder;

    /// A raw rendition of `width` x `height` at `quality` (a label like `4x2@50`).
    pub fn rendition(width: u32, height: u32, quality: u8) -> Rendition {
        Rendition::new(CodecKind::Raw, width, height, PixelFormat::Rgb8, quality)
    }

    /// What a [`Probe`] payload says: the width, height and quality it was encoded at, and the
    /// frame's first byte.
    pub fn read(payload: &[u8]) -> (u32, u32, u8, u8) {
        let width = u32::from_le_bytes(payload[0..4].try_into().unwrap());
        let height = u32::from_le_bytes(payload[4..8].try_into().unwrap());
        (width, height, payload[8], payload[9])
    }

    struct Probe {
        made_for: Rendition,
    }

    impl FrameEncoder for Probe {
        fn kind(&self) -> CodecKind {
            CodecKind::Raw
        }

        fn output_format(&self, input: PixelFormat) -> PixelFormat {
            input
        }

        fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
            let refuse = |reason| CodecError::Unsupported {
                codec: CodecKind::Raw,
                reason,
            };
            frame.validate().map_err(|e| refuse(e.to_string()))?;
            let StreamInfo { width, height, .. } = self.made_for.stream;
            if (frame.width, frame.height) != (width, height) {
                return Err(refuse(format!(
                    "made for {width}x{height}, given {}x{}",
                    frame.width, frame.height
                )));
            }
            dst.clear();
            dst.extend_from_slice(&width.to_le_bytes());
            dst.extend_from_slice(&height.to_le_bytes());
            dst.push(self.made_for.quality);
            dst.push(frame.pixels[0]);
            Ok(Encoded::Keyframe)
        }
    }

    /// Makes [`Probe`] encoders, counting them in `made`; refuses bincode renditions.
    pub fn counting_encoders(made: Arc<AtomicUsize>) -> Arc<MakeEncoder> {
        Arc::new(move |r: &Rendition| {
            if r.stream.codec == CodecKind::Bincode {
                return Err(SendError::Stage("no bincode encoder here".to_string()));
            }
            made.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Probe { made_for: *r }) as Box<dyn FrameEncoder>)
        })
    }

    /// Makes [`Probe`] encoders; refuses bincode renditions.
    pub fn encoders() -> Arc<MakeEncoder> {
        counting_encoders(Arc::new(AtomicUsize::new(0)))
    }

    struct Nearest {
        scaled: Arc<AtomicUsize>,
    }

    impl Scaler for Nearest {
        fn scale(
            &mut self,
            src: &Frame,
            dst: &mut Frame,
            width: u32,
            height: u32,
        ) -> Result<(), CaptureError> {
            self.scaled.fetch_add(1, Ordering::SeqCst);
            dst.reset(width, height, src.format);
            let bpp = src.format.bytes_per_pixel();
            for y in 0..height {
                for x in 0..width {
                    let sx = (x * src.width / width) as usize;
                    let sy = (y * src.height / height) as usize;
                    let from = sy * src.stride + sx * bpp;
                    let to = y as usize * dst.stride + x as usize * bpp;
                    dst.pixels[to..to + bpp].copy_from_slice(&src.pixels[from..from + bpp]);
                }
            }
            Ok(())
        }
    }

    /// A nearest-pixel scaler that counts the frames it resizes in `scaled`.
    pub fn counting_scaler(scaled: Arc<AtomicUsize>) -> impl Fn() -> Box<dyn Scaler> + Send + Sync {
        move || {
            Box::new(Nearest {
                scaled: Arc::clone(&scaled),
            }) as Box<dyn Scaler>
        }
    }

    /// A nearest-pixel scaler.
    pub fn scaler() -> Box<dyn Scaler> {
        Box::new(Nearest {
            scaled: Arc::new(AtomicUsize::new(0)),
        })
    }
}
