//! framewire's send and receive paths, built from framewire-core's traits alone: any source,
//! scaler, codec, transport and sink the binary assembles.
//!
//! - [`send`]: a [`Feed`](framewire_core::Feed) → resize → the encode stage ([`stage`]) → every
//!   [`Publisher`](framewire_core::Publisher) in a list. Passed-through packets join the same
//!   queue as encoded ones, so every packet leaves by one path.
//! - [`receive`]: a [`Connector`](framewire_core::Connector)'s subscription → decode → [`Stats`]
//!   → a [`FrameSink`](framewire_core::FrameSink), reconnecting with backoff when a connection
//!   is lost and the transport says a retry may help.
//!
//! Nothing here prints: what happens is handed to the caller as events.

pub mod receive;
pub mod send;
pub mod stage;
pub mod stats;

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
    //! A lane made of test doubles: an encoder that copies packed pixels (and refuses a frame
    //! whose pixels are short) and a nearest-pixel scaler.

    use framewire_core::{
        CaptureError, CodecError, CodecKind, Encoded, Frame, FrameEncoder, PixelFormat, Scaler,
    };

    use crate::SendError;

    struct Copy;

    impl FrameEncoder for Copy {
        fn kind(&self) -> CodecKind {
            CodecKind::Raw
        }

        fn output_format(&self, input: PixelFormat) -> PixelFormat {
            input
        }

        fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
            frame.validate().map_err(|reason| CodecError::Unsupported {
                codec: CodecKind::Raw,
                reason,
            })?;
            dst.clear();
            dst.extend_from_slice(&frame.pixels[..frame.stride * frame.height as usize]);
            Ok(Encoded::Keyframe)
        }
    }

    struct Nearest;

    impl Scaler for Nearest {
        fn scale(
            &mut self,
            src: &Frame,
            dst: &mut Frame,
            width: u32,
            height: u32,
        ) -> Result<(), CaptureError> {
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

    /// One lane's encoder and scaler.
    pub fn make() -> Result<crate::stage::LaneParts, SendError> {
        Ok((Box::new(Copy), Box::new(Nearest)))
    }
}
