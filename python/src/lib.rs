//! framewire for Python (`import framewire`): numpy frames sent and received through
//! framewire's kit, as the `framewire` binary assembles it.
//!
//! - [`send`]: `Server` (viewers connect to it) and `Sender` (it pushes to a hub): frames
//!   handed in by `send(frame)`, newest wins, encoded and sent on framewire's threads.
//! - [`receive`]: `Viewer` (it connects to a server) and `Hub` (senders push to it): frames
//!   decoded on framewire's threads, converted once into the array `recv` returns.
//! - [`call`]: `call(...)`, a two-way call: a side that sends and receives.
//! - [`pixels`]: BGR, RGB and grey arrays to and from framewire's RGB frames, in one pass.
//!
//! The GIL is released while a call waits, and while frames are converted, encoded, sent,
//! received and decoded (those run on threads of their own); a wait wakes every 50 ms to let
//! Python see Ctrl-C. Errors are `framewire.Error` with framewire's one-line messages.

use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

mod call;
mod options;
mod pixels;
mod receive;
mod send;

create_exception!(
    framewire,
    Error,
    PyException,
    "What framewire could not do, in one line: a refused token, an address that does not \
     resolve, a peer that broke the protocol."
);

/// How often a blocking call wakes to let Python handle a signal (Ctrl-C).
pub(crate) const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A framewire error as a Python exception.
pub(crate) fn error(message: impl std::fmt::Display) -> PyErr {
    Error::new_err(message.to_string())
}

/// A bad argument as a Python `ValueError`.
pub(crate) fn value_error(message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(message.to_string())
}

/// What arrives with a frame: where it is in its stream, when it was captured, how long it took
/// to get here, and what carried it.
#[pyclass(module = "framewire", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// The frame's number in the sender's stream, from 0; a gap is frames this side did not
    /// get (newest wins).
    seq: u64,
    /// When the sender captured it, in seconds since the Unix epoch (as `time.time()`).
    capture_time: f64,
    /// Seconds from capture to decoded here (the two clocks' difference on two machines).
    latency: f64,
    /// The codec it travelled in: `raw`, `bincode`, `jpeg` or `h264`.
    codec: String,
    /// Its width in pixels.
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// Its rung on the sender's quality ladder, 0 the best; `None` for a rendition asked for.
    rung: Option<u8>,
    /// The sender's name, for a frame a hub received; `None` otherwise.
    name: Option<String>,
}

#[pymethods]
impl FrameInfo {
    fn __repr__(&self) -> String {
        let name = self
            .name
            .as_ref()
            .map(|n| format!("name={n:?}, "))
            .unwrap_or_default();
        format!(
            "FrameInfo({name}seq={}, codec={:?}, size={}x{}, rung={}, latency={:.1} ms)",
            self.seq,
            self.codec,
            self.width,
            self.height,
            self.rung.map_or("None".into(), |r| r.to_string()),
            self.latency * 1e3
        )
    }
}

impl FrameInfo {
    /// The info of a frame as the kit's receive path gives it, from sender `name` if a hub's.
    pub(crate) fn new(info: &framewire_kit::watch::FrameInfo, name: Option<&str>) -> FrameInfo {
        FrameInfo {
            seq: info.seq,
            capture_time: info.capture_us as f64 / 1e6,
            latency: info.latency_us as f64 / 1e6,
            codec: info.codec.name().to_string(),
            width: info.width,
            height: info.height,
            rung: info.rung,
            name: name.map(str::to_string),
        }
    }
}

/// framewire's native module; `framewire/__init__.py` re-exports it.
#[pymodule]
fn _framewire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add_class::<FrameInfo>()?;
    m.add_class::<send::Server>()?;
    m.add_class::<send::Sender>()?;
    m.add_class::<receive::Viewer>()?;
    m.add_class::<receive::Hub>()?;
    m.add_class::<call::Call>()?;
    m.add_function(wrap_pyfunction!(call::call, m)?)?;
    m.add_function(wrap_pyfunction!(pixels::encode_jpeg, m)?)?;
    m.add_function(wrap_pyfunction!(pixels::decode_jpeg, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
