//! framewire's frame sources (the synthetic test pattern, cameras, files) and the resizer that
//! scales frames before they are encoded.
//!
//! - [`Resizer`] and [`fit_size`]: aspect-keeping resize (`--width 320`), reusing its buffers.
//! - [`SourceSpec`] and [`open_source`]: what `--source` accepts and the source it opens. The
//!   test pattern behind `--source test` is [`framewire_pattern::TestPattern`].
//! - [`open_feed`]: a source as the send path pulls it (a core `Feed`): cameras on their own
//!   thread, reopened when lost, their MJPEG passed through when asked.
//! - [`pushed`]: frames a program hands over itself (a binding's `send(frame)`), newest wins.
//! - [`LatestFrame`]: runs any source on its own thread and hands over only the newest frame,
//!   counting the ones it overwrote, so a slow consumer never builds a backlog.
//! - Cameras: [`negotiate`] picks a [`CameraMode`]; [`convert`] turns YUYV, NV12 and MJPEG bytes
//!   into RGB or passes MJPEG through. These compile and are tested without a camera; only the
//!   `camera` feature's thin `camera` module touches nokhwa.
//! - [`file`]: files as sources: Y4M, MJPEG (passed through as it is where it can be), a still
//!   PNG or JPEG, framewire recordings (always passed through).

#[cfg(feature = "camera")]
mod camera;
pub mod convert;
mod feed;
pub mod file;
mod latest;
pub mod negotiate;
pub mod pushed;
mod resize;
pub mod rtsp;
mod spec;

pub use feed::open_feed;
pub use latest::{LatestFrame, Reopen, Taken};
pub use negotiate::{CameraDescription, CameraMode, FourCc, negotiate};

pub use file::SourceOptions;
pub use resize::{ResizeFilter, Resizer, fit_size};
pub use spec::{
    NO_CAMERA_SUPPORT, SourceSpec, list_cameras, open_source, open_source_with, reopener,
};
