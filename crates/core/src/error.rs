//! The errors at the plugin seams: capture, codec and sink. Backend errors are boxed as `source`
//! so that no dependency's type leaks into the traits.

use crate::{CodecKind, PixelFormat};

/// Any backend error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What is wrong with a frame's fields or its pixel buffer ([`Frame::validate`]).
///
/// [`Frame::validate`]: crate::Frame::validate
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Rows overlap.
    #[error("stride {stride} is shorter than a row of {row} bytes")]
    Stride {
        /// Bytes from one row to the next.
        stride: usize,
        /// Bytes of one row's pixels.
        row: usize,
    },
    /// The buffer is shorter than the rows.
    #[error("{width}x{height} {format} frame needs {need} bytes, has {has}")]
    Pixels {
        /// The frame's width.
        width: u32,
        /// Its height.
        height: u32,
        /// Its pixel format.
        format: PixelFormat,
        /// Bytes its rows take.
        need: usize,
        /// Bytes its buffer has.
        has: usize,
    },
}

/// A source could not produce a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The source named by the user does not exist or cannot be opened.
    #[error("cannot open {source_name}: {reason}")]
    Open {
        /// The source, as the user named it.
        source_name: String,
        /// Why, with a way out where there is one.
        reason: String,
    },
    /// The device went away or failed while streaming.
    #[error("{source_name} failed: {reason}")]
    Device {
        /// The source, as the user named it.
        source_name: String,
        /// What happened.
        reason: String,
    },
    /// The source was configured with values it cannot serve.
    #[error("invalid source settings: {0}")]
    Config(String),
    /// A backend error.
    #[error("{context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// A frame could not be encoded or a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame handed to an encoder is not one it can encode.
    #[error("{codec} cannot encode this frame: {reason}")]
    Unsupported {
        /// The codec.
        codec: CodecKind,
        /// Why.
        reason: String,
    },
    /// The payload is not a valid payload for this codec and stream.
    #[error("bad {codec} payload of {len} bytes: {reason}")]
    BadPayload {
        /// The codec.
        codec: CodecKind,
        /// Length of the offending payload.
        len: usize,
        /// What was wrong.
        reason: String,
    },
    /// The payload decodes to a different size or format than the stream announced.
    #[error(
        "{codec} payload is {got_w}x{got_h} {got_format}, stream announced {want_w}x{want_h} {want_format}"
    )]
    Mismatch {
        /// The codec.
        codec: CodecKind,
        /// Width found in the payload.
        got_w: u32,
        /// Height found in the payload.
        got_h: u32,
        /// Format found in the payload.
        got_format: PixelFormat,
        /// Width the stream announced.
        want_w: u32,
        /// Height the stream announced.
        want_h: u32,
        /// Format the stream announced.
        want_format: PixelFormat,
    },
    /// A backend (an encoder or decoder library) failed.
    #[error("{codec}: {context}")]
    Backend {
        /// The codec.
        codec: CodecKind,
        /// What was being done.
        context: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// A sink could not take a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing to a file failed.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A backend (an image writer, a window system) failed.
    #[error("{context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}
