//! framewire's shared vocabulary: the frame type, pixel formats, codec kinds, the plugin traits and their errors.
//!
//! Every plugin crate (capture, codec, net, display) depends on this crate and on no other
//! plugin crate, so any source, codec, transport and sink can be assembled by the binary,
//! the benches or the tests. The traits are object safe: a command-line flag picks the
//! implementation and the pipeline holds a `Box<dyn ...>`.
//!
//! Buffers are owned by the caller: a source fills a [`Frame`] it is handed, an encoder
//! appends to a `Vec<u8>` it is handed, a decoder fills a [`Frame`] it is handed. A pipeline
//! that reuses its buffers allocates nothing per frame once it has reached its steady state.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod contain;
mod error;
mod feed;
mod ladder;
mod latest;
mod transport;

pub use contain::{Panicked, contain_panic, panic_is_contained};
pub use error::{BoxError, CaptureError, CodecError, FrameError, SinkError};
pub use feed::{Feed, Pulled, Scaler, SourceEvent};
pub use ladder::{
    Ladder, LadderError, MAX_RENDITIONS, MakeRendition, Placement, Rendition, Request,
    SIZE_PROBE_EVERY,
};
pub use latest::{Latest, Waited};
pub use transport::{
    CallSide, Closer, Connector, Packet, PeerReport, Publisher, Received, Subscription,
    TransportError,
};

/// How the bytes of one pixel are laid out. Samples are 8-bit, in the order the name gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// Red, green, blue: 3 bytes per pixel.
    Rgb8,
    /// Red, green, blue, alpha: 4 bytes per pixel.
    Rgba8,
    /// Blue, green, red: 3 bytes per pixel, as OpenCV's arrays hold them. Carried as it is by
    /// the lossless codecs, so a BGR program's frames cross without a channel swap; the
    /// encoders and sinks that need an order read it as this.
    Bgr8,
}

impl PixelFormat {
    /// Every pixel format, in wire-id order.
    pub const ALL: [PixelFormat; 3] = [PixelFormat::Rgb8, PixelFormat::Rgba8, PixelFormat::Bgr8];

    /// Bytes one pixel takes.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 => 4,
        }
    }

    /// Where red, green and blue are within a pixel's bytes.
    pub const fn rgb_offsets(self) -> [usize; 3] {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Rgba8 => [0, 1, 2],
            PixelFormat::Bgr8 => [2, 1, 0],
        }
    }

    /// The id this format has on the wire.
    pub const fn wire_id(self) -> u8 {
        match self {
            PixelFormat::Rgb8 => 1,
            PixelFormat::Rgba8 => 2,
            PixelFormat::Bgr8 => 3,
        }
    }

    /// The format a wire id names, if any.
    pub fn from_wire_id(id: u8) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.wire_id() == id)
    }

    /// Lowercase name, as used in flags and stats.
    pub const fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Bgr8 => "bgr8",
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which codec turns frames into payload bytes. Lives here because the wire names it and the
/// transport must not depend on the codec crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// Packed pixel rows, nothing else.
    Raw,
    /// A frame record in bincode's (legacy, fixint little-endian) format, as the Python tutorial pickles frames.
    Bincode,
    /// Baseline JPEG.
    Jpeg,
    /// H.264, constrained baseline: one access unit (Annex-B) per packet, most of them deltas
    /// that need the packets before them back to a keyframe.
    H264,
}

impl CodecKind {
    /// Every codec kind, in wire-id order. Tests loop over this.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Raw,
        CodecKind::Bincode,
        CodecKind::Jpeg,
        CodecKind::H264,
    ];

    /// The id this codec has on the wire.
    pub const fn wire_id(self) -> u8 {
        match self {
            CodecKind::Raw => 1,
            CodecKind::Bincode => 2,
            CodecKind::Jpeg => 3,
            CodecKind::H264 => 4,
        }
    }

    /// The codec a wire id names, if any.
    pub fn from_wire_id(id: u8) -> Option<CodecKind> {
        CodecKind::ALL.into_iter().find(|c| c.wire_id() == id)
    }

    /// Lowercase name, as used in `--codec` and in stats.
    pub const fn name(self) -> &'static str {
        match self {
            CodecKind::Raw => "raw",
            CodecKind::Bincode => "bincode",
            CodecKind::Jpeg => "jpeg",
            CodecKind::H264 => "h264",
        }
    }

    /// Whether decoding gives back exactly the pixels that were encoded.
    pub const fn is_lossless(self) -> bool {
        !matches!(self, CodecKind::Jpeg | CodecKind::H264)
    }

    /// Whether every packet decodes on its own (no packet refers to another), so any packet may
    /// be dropped. False of H.264, whose deltas need the packets before them.
    pub const fn is_intra_only(self) -> bool {
        !matches!(self, CodecKind::H264)
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodecKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CodecKind::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = CodecKind::ALL.iter().map(|c| c.name()).collect();
                format!("unknown codec {s:?}, expected one of: {}", names.join(", "))
            })
    }
}

/// Microseconds since the Unix epoch, the clock frames are stamped with at capture.
///
/// A wall clock, so that a viewer on another machine can compute capture-to-display latency
/// when both clocks are synchronised (NTP); on one machine it is exact.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}

/// Largest width or height of a frame that framewire's sources, resizer and converters produce.
pub const MAX_SIDE: u32 = 16384;

/// One picture with what is known about it.
///
/// `pixels` holds `height` rows of `stride` bytes each; the first `width * bytes_per_pixel`
/// bytes of a row are pixels, the rest (if any) padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
    /// Layout of one pixel.
    pub format: PixelFormat,
    /// Position of this frame in its stream, from 0; gaps mean frames were dropped.
    pub seq: u64,
    /// When the source captured it, in microseconds since the Unix epoch (see [`now_micros`]).
    pub capture_us: u64,
    /// The pixel rows.
    pub pixels: Vec<u8>,
}

impl Frame {
    /// A black frame with packed rows.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Frame {
        let mut frame = Frame::empty(format);
        frame.reset(width, height, format);
        frame
    }

    /// A 0x0 frame that owns no pixel memory yet; sources and decoders size it on first use.
    pub fn empty(format: PixelFormat) -> Frame {
        Frame {
            width: 0,
            height: 0,
            stride: 0,
            format,
            seq: 0,
            capture_us: 0,
            pixels: Vec::new(),
        }
    }

    /// Re-shape to `width` x `height` packed rows, keeping the allocation when it is large enough.
    /// Pixel values are unspecified afterwards (zero where the buffer grew).
    pub fn reset(&mut self, width: u32, height: u32, format: PixelFormat) {
        self.width = width;
        self.height = height;
        self.format = format;
        self.stride = width as usize * format.bytes_per_pixel();
        self.pixels.resize(self.stride * height as usize, 0);
    }

    /// Bytes of pixels in one row, without padding.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.format.bytes_per_pixel()
    }

    /// Whether rows follow each other with no padding.
    pub fn is_packed(&self) -> bool {
        self.stride == self.row_bytes()
    }

    /// Appends row `y` with red first: a bgr8 row swapped pixel by pixel, any other as it is.
    pub fn extend_rgb_row(&self, y: u32, dst: &mut Vec<u8>) {
        let row = self.row(y);
        if self.format == PixelFormat::Bgr8 {
            dst.extend(row.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
        } else {
            dst.extend_from_slice(row);
        }
    }

    /// Row `y`, without padding.
    ///
    /// # Panics
    /// If `y >= height` (a programming error, not an input error).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.pixels[start..start + self.row_bytes()]
    }

    /// Checks that the fields agree with each other and with the pixel buffer.
    pub fn validate(&self) -> Result<(), FrameError> {
        if self.stride < self.row_bytes() {
            return Err(FrameError::Stride {
                stride: self.stride,
                row: self.row_bytes(),
            });
        }
        let need = self.stride * self.height as usize;
        if self.pixels.len() < need {
            return Err(FrameError::Pixels {
                width: self.width,
                height: self.height,
                format: self.format,
                need,
                has: self.pixels.len(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .field("format", &self.format)
            .field("seq", &self.seq)
            .field("capture_us", &self.capture_us)
            .field("pixels", &format_args!("[{} bytes]", self.pixels.len()))
            .finish()
    }
}

/// What a stream carries: a viewer learns it from the handshake, and again when the sender
/// moves it to another rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// The codec of every payload.
    pub codec: CodecKind,
    /// Width of decoded frames in pixels.
    pub width: u32,
    /// Height of decoded frames in pixels.
    pub height: u32,
    /// Pixel format of decoded frames.
    pub format: PixelFormat,
}

impl StreamInfo {
    /// Bytes of one decoded frame with packed rows.
    pub fn frame_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * self.format.bytes_per_pixel() as u64
    }
}

/// What a source produces.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// A short human name: `test pattern`, `camera 0 (HD Webcam)`.
    pub name: String,
    /// Width of produced frames.
    pub width: u32,
    /// Height of produced frames.
    pub height: u32,
    /// Pixel format of produced frames.
    pub format: PixelFormat,
    /// Frames per second the source paces itself to; 0 means as fast as it is asked.
    pub fps: f64,
}

/// A frame as the compressed bytes a device delivered (a camera's MJPEG), to pass on without
/// decoding: when the stream's codec is the same and no resize is wanted, these bytes are the
/// payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedFrame {
    /// The codec the bytes are in.
    pub codec: CodecKind,
    /// Width in pixels, as the compressed data says.
    pub width: u32,
    /// Height in pixels, as the compressed data says.
    pub height: u32,
    /// Position of this frame in its stream, as [`Frame::seq`].
    pub seq: u64,
    /// When the source captured it, as [`Frame::capture_us`].
    pub capture_us: u64,
    /// The compressed bytes: one complete payload of `codec`.
    pub data: Vec<u8>,
    /// Whether it decodes on its own (every frame of an intra-only codec does).
    pub keyframe: bool,
}

impl CompressedFrame {
    /// An empty frame of `codec` that owns no memory yet.
    pub fn empty(codec: CodecKind) -> CompressedFrame {
        CompressedFrame {
            codec,
            width: 0,
            height: 0,
            seq: 0,
            capture_us: 0,
            data: Vec::new(),
            keyframe: true,
        }
    }
}

/// Whether a pipeline stage wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop: the window was closed, the wanted number of frames was reached.
    Stop,
}

/// Produces frames: a test pattern, a camera, a file.
pub trait FrameSource: Send {
    /// What this source produces.
    fn info(&self) -> SourceInfo;

    /// Fills `dst` with the next frame (pixels, size, `seq`, `capture_us`), blocking until one is
    /// due. Returns `Ok(false)` when a finite source has ended.
    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError>;

    /// The codec this source can hand frames over in without decoding them, if any: a camera
    /// that delivers MJPEG says [`CodecKind::Jpeg`]. Most sources have none.
    fn compressed_codec(&self) -> Option<CodecKind> {
        None
    }

    /// Whether the source has only compressed frames ([`FrameSource::next_compressed`]): a
    /// recording, replayed as it was sent, never decoded. Such a source is served as it is.
    fn compressed_only(&self) -> bool {
        false
    }

    /// Fills `dst` with the next frame as the compressed bytes the device delivered, without
    /// decoding them; the same blocking and end rules as [`FrameSource::next_frame`]. Only
    /// sources whose [`FrameSource::compressed_codec`] is `Some` support it; the others return
    /// a [`CaptureError::Config`].
    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        let _ = dst;
        Err(CaptureError::Config(format!(
            "{} has no compressed frames",
            self.info().name
        )))
    }
}

/// Turns a frame into payload bytes. Sans-IO: it writes into a buffer the caller owns.
pub trait FrameEncoder: Send {
    /// The codec this encoder writes.
    fn kind(&self) -> CodecKind;

    /// The pixel format a decoder will produce from frames of `input` format.
    fn output_format(&self, input: PixelFormat) -> PixelFormat;

    /// Replaces the contents of `dst` with the payload for `frame`, and says whether it is a
    /// keyframe (decodes on its own).
    fn encode(&mut self, frame: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError>;

    /// Encodes `frame` as [`encode`](Self::encode) does, for a caller that needs its pixels no
    /// more: an encoder whose payload is the pixels themselves may take the frame's buffer in
    /// exchange for `dst`'s, leaving the frame its size and format with stale pixels. By
    /// default it encodes.
    fn encode_last(&mut self, frame: &mut Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        self.encode(frame, dst)
    }

    /// Asks for the next packet to be a keyframe (a subscriber joined or lost one). Encoders
    /// whose every packet is a keyframe have nothing to do.
    fn request_keyframe(&mut self) {}
}

/// What [`FrameEncoder::encode`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// A packet that decodes on its own.
    Keyframe,
    /// A packet that needs the ones before it.
    Delta,
}

impl Encoded {
    /// Whether this is [`Encoded::Keyframe`].
    pub const fn is_keyframe(self) -> bool {
        matches!(self, Encoded::Keyframe)
    }
}

/// What [`FrameDecoder::decode`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A picture, in the frame.
    Picture,
    /// The packet was taken in but gives no picture yet (an inter-frame decoder waiting for a
    /// keyframe, or buffering); not an error, `dst` is as it was.
    NotYet,
}

/// Turns payload bytes back into a frame.
pub trait FrameDecoder: Send {
    /// The codec this decoder reads.
    fn kind(&self) -> CodecKind;

    /// Fills `dst` (pixels, size, format) from `payload`. The caller sets `seq` and `capture_us`
    /// from the frame header. A payload that does not match the stream's size or format is an error.
    fn decode(&mut self, payload: &[u8], dst: &mut Frame) -> Result<Decoded, CodecError>;

    /// [`decode`](Self::decode) for a payload the caller owns and is done with. A codec whose
    /// payload is the frame itself (raw) swaps `payload` with `dst`'s pixels instead of copying
    /// them, leaving `payload` holding the old pixel buffer for the caller to reuse; any other
    /// codec decodes from it and leaves it as it is. On an error, `dst` and `payload` are as
    /// they were.
    fn decode_vec(
        &mut self,
        payload: &mut Vec<u8>,
        dst: &mut Frame,
    ) -> Result<Decoded, CodecError> {
        self.decode(payload, dst)
    }
}

/// Consumes frames: a window, a PNG snapshot, a test collector.
pub trait FrameSink: Send {
    /// Shows or stores `frame`. [`Flow::Stop`] means the sink is done (a closed window).
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError>;

    /// What the receive path calls with each decoded frame: as [`show`](Self::show), but the
    /// sink may take the frame's pixels (`std::mem::take(&mut frame.pixels)`) instead of
    /// copying them; the decoder fills a buffer of its own for the next frame.
    fn show_mut(&mut self, frame: &mut Frame) -> Result<Flow, SinkError> {
        self.show(frame)
    }

    /// Called once when the stream ends, so a sink can write what it kept.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_round_trip_and_are_distinct() {
        for c in CodecKind::ALL {
            assert_eq!(CodecKind::from_wire_id(c.wire_id()), Some(c));
            assert_eq!(c.name().parse::<CodecKind>().unwrap(), c);
        }
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_wire_id(f.wire_id()), Some(f));
        }
        assert_eq!(CodecKind::from_wire_id(0), None);
        assert_eq!(PixelFormat::from_wire_id(0), None);
    }

    #[test]
    fn unknown_codec_name_lists_the_known_ones() {
        let err = "h265".parse::<CodecKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown codec \"h265\", expected one of: raw, bincode, jpeg, h264"
        );
    }

    #[test]
    fn reset_keeps_allocation_and_packs_rows() {
        let mut f = Frame::new(64, 48, PixelFormat::Rgba8);
        let cap = f.pixels.capacity();
        f.reset(32, 24, PixelFormat::Rgb8);
        assert_eq!(f.stride, 96);
        assert_eq!(f.pixels.len(), 96 * 24);
        assert_eq!(f.pixels.capacity(), cap);
        assert!(f.is_packed());
        assert!(f.validate().is_ok());
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let mut f = Frame::new(4, 4, PixelFormat::Rgb8);
        f.pixels.truncate(10);
        assert_eq!(
            f.validate().unwrap_err().to_string(),
            "4x4 rgb8 frame needs 48 bytes, has 10"
        );
        f.stride = 2;
        assert_eq!(
            f.validate().unwrap_err().to_string(),
            "stride 2 is shorter than a row of 12 bytes"
        );
    }
}
