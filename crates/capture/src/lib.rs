//! framewire's frame sources (the synthetic test pattern, later cameras) and the resizer that
//! scales frames before they are encoded.
//!
//! - [`TestPattern`]: a deterministic moving picture with the frame number drawn into it as a
//!   code that [`read_frame_number`] reads back, also after resizing and JPEG compression, so
//!   end-to-end tests can tell which frame arrived.
//! - [`Resizer`] and [`fit_size`]: aspect-keeping resize (`--width 320`), reusing its buffers.
//! - [`SourceSpec`] and [`open_source`]: what `--source` accepts and the source it opens.

mod pattern;
mod resize;
mod spec;

pub use pattern::{TestPattern, read_frame_number};
pub use resize::{ResizeFilter, Resizer, fit_size};
pub use spec::{SourceSpec, open_source};

/// Largest width or height any frame here may have.
pub(crate) const MAX_SIDE: u32 = 16384;
