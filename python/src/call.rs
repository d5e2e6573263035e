//! `framewire.call(...)`: a two-way call, as `framewire chat` makes one. One side listens
//! (`listen=`), the other calls (`connect=`); each sends its frames with `send` and gets the
//! other's from `recv` (or by iterating). The call starts at the first frame sent, whose size
//! is this side's stream's (or at once, given `size=`).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use framewire_core::{CallSide, Flow, Latest, Publisher, Waited};
use framewire_kit::{Place, TransportOptions};
use framewire_net::{CallConfig, ClientConfig, ServerConfig, TlsClient, TlsServer};
use framewire_session::{ReceiveConfig, StopSignal, chain};
use framewire_wire::token::Token;
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;

use crate::options::{self, Sending};
use crate::pixels::{Color, Incoming};
use crate::receive::{Item, wait_in_slices};
use crate::send::{Outgoing, secs};
use crate::{FrameInfo, error, value_error};

/// A side of a two-way call: `send(frame)` sends this side's frames, `recv()` gives the
/// other side's, each newest-wins. Made by `framewire.call`.
#[pyclass(module = "framewire")]
pub struct Call {
    sending: Sending,
    place: (bool, std::net::SocketAddr),
    net: TransportOptions,
    token: Option<Token>,
    tls: (Option<TlsServer>, Option<TlsClient>),
    idle: std::time::Duration,
    color: Color,
    out: Option<Outgoing>,
    side: Option<Arc<dyn CallSide>>,
    slot: Arc<Latest<Item>>,
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    ended: Arc<Mutex<Option<Option<String>>>>,
    address: Option<String>,
}

/// Makes a side of a two-way call: `listen="ADDR"` waits for the other side to call (one call
/// after another), `connect="HOST:PORT"` calls it (and calls again when the connection is
/// lost). The other arguments are a `Server`'s for what this side sends, a `Viewer`'s for what
/// it receives; `tls=` is a `Server`'s on the listening side and a `Viewer`'s on the calling
/// side.
#[pyfunction]
#[pyo3(signature = (
    connect = None, *, listen = None, codec = "jpeg", quality = 80, width = None, fps = None,
    bitrate = None, transport = "tcp", token = None, tls = None, size = None, color = "bgr",
    idle_timeout = 15.0
))]
#[allow(clippy::too_many_arguments)]
pub fn call(
    py: Python<'_>,
    connect: Option<&str>,
    listen: Option<&str>,
    codec: &str,
    quality: u8,
    width: Option<u32>,
    fps: Option<f64>,
    bitrate: Option<u32>,
    transport: &str,
    token: Option<&Bound<'_, PyAny>>,
    tls: Option<&Bound<'_, PyAny>>,
    size: Option<(u32, u32)>,
    color: &str,
    idle_timeout: f64,
) -> PyResult<Call> {
    let (place, tls) = match (connect, listen) {
        (Some(c), None) => {
            let host = options::connect("connect", c)?;
            ((false, host.addr), (None, options::tls_client(tls, &host)?))
        }
        (None, Some(l)) => (
            (true, options::listen("listen", l)?),
            (options::tls_server(tls)?, None),
        ),
        _ => {
            return Err(value_error(
                "call: give connect=\"HOST:PORT\" to call, or listen=\"ADDR\" to wait for a call",
            ));
        }
    };
    let mut call = Call {
        sending: Sending::new(codec, quality, width, fps, bitrate, false)?,
        place,
        net: TransportOptions {
            transport: options::transport(transport)?,
            ..TransportOptions::default()
        },
        token: options::token(token)?,
        tls,
        idle: secs(idle_timeout),
        color: color.parse()?,
        out: None,
        side: None,
        slot: Arc::new(Latest::new()),
        signal: Arc::new(StopSignal::default()),
        thread: None,
        ended: Arc::default(),
        address: None,
    };
    if let Some(size) = size {
        call.start(py, size)?;
    }
    Ok(call)
}

#[pymethods]
impl Call {
    /// Sends `frame` (uint8, H×W×3 BGR, or as `color=` says) to the other side. Returns at
    /// once; the newest frame wins (`wait=True`: hands it in only once the frame before is on
    /// its way, while in a call).
    #[pyo3(signature = (frame, wait = false))]
    fn send(&mut self, py: Python<'_>, frame: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        if self.signal.is_stopped() {
            return Err(error("send: the call is over (hung up)"));
        }
        let incoming = Incoming::check(frame, self.color)?;
        if self.out.is_none() {
            self.start(py, incoming.size)?;
        }
        self.out
            .as_mut()
            .expect("started")
            .send(py, &incoming, wait)
    }

    /// The other side's next frame and its info, waiting up to `timeout` seconds (none: until
    /// one comes). Raises `TimeoutError` when none came, `framewire.Error` when the call
    /// failed or was hung up.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(Py<PyAny>, FrameInfo)> {
        if self.side.is_none() {
            return Err(error(
                "recv: the call starts with the first frame sent (or size=); send one first",
            ));
        }
        let slot = &self.slot;
        let got = wait_in_slices(py, timeout, |until| match slot.wait(Some(until)) {
            Waited::Value(item) => Some(Some(item)),
            Waited::Timeout => None,
            Waited::Closed => Some(None),
        })?;
        match got {
            Some(Some(item)) => Ok(item.into_py(py, None)),
            Some(None) => {
                let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
                Err(match ended.clone().flatten() {
                    Some(why) => error(why),
                    None => error("the call is over: the other side hung up"),
                })
            }
            None => Err(PyTimeoutError::new_err(format!(
                "no frame from the other side within {:.1} s",
                timeout.unwrap_or(0.0)
            ))),
        }
    }

    /// Where a listening side listens; `None` on a calling side or before the first frame.
    #[getter]
    fn address(&self) -> Option<String> {
        self.address.clone()
    }

    /// Frames of the other side's replaced by a newer one before `recv` took them.
    #[getter]
    fn dropped(&self) -> u64 {
        self.slot.dropped()
    }

    /// Hangs up: the other side hears the goodbye. Idempotent.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.signal.stop();
        if let Some(side) = self.side.take() {
            py.detach(|| side.hang_up());
        }
        if let Some(thread) = self.thread.take() {
            py.detach(|| {
                let _ = thread.join();
            });
        }
        match self.out.take() {
            Some(mut out) => out.close(py),
            None => Ok(()),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let (listening, addr) = self.place;
        match listening {
            true => format!(
                "Call(listening on {})",
                self.address.as_deref().unwrap_or("-")
            ),
            false => format!("Call(calling {addr})"),
        }
    }
}

impl Call {
    /// Opens the side and starts both halves for frames of `size`.
    fn start(&mut self, py: Python<'_>, size: (u32, u32)) -> PyResult<()> {
        let (listening, addr) = self.place;
        let config = CallConfig {
            client: ClientConfig {
                read_timeout: self.idle,
                token: self.token.clone(),
                tls: self.tls.1.clone(),
                ..ClientConfig::default()
            },
            server: ServerConfig {
                token: self.token.clone(),
                tls: self.tls.0.clone(),
                ..ServerConfig::default()
            },
        };
        let place = if listening {
            Place::Listen(addr)
        } else {
            Place::Call(addr)
        };
        let (net, format) = (self.net, self.color.format());
        let mut side: Option<Arc<dyn CallSide>> = None;
        let out = py.detach(|| {
            Outgoing::start(&self.sending, size, format, |prepared| {
                let ladder = (Arc::clone(&prepared.ladder), prepared.fps);
                let (made, _extra) = framewire_kit::call_side(place, &net, ladder, config, |_| {})
                    .map_err(|e| error(chain(&e)))?;
                let made: Arc<dyn CallSide> = Arc::from(made);
                let sending: Arc<dyn Publisher> = made.sending();
                side = Some(made);
                Ok(vec![sending])
            })
        })?;
        let side = side.expect("made with the send path");
        self.address = side.listening().map(|(at, _)| at);
        let (receiving, slot, signal, ended, color) = (
            Arc::clone(&side),
            Arc::clone(&self.slot),
            Arc::clone(&self.signal),
            Arc::clone(&self.ended),
            self.color,
        );
        let thread = std::thread::Builder::new()
            .name("framewire-call".into())
            .spawn(move || {
                let outcome = framewire_kit::watch::watch_calls(
                    &*receiving,
                    listening,
                    &signal,
                    &ReceiveConfig::default(),
                    &mut |frame, info| {
                        slot.put(Item::new(frame, info, color));
                        Flow::Continue
                    },
                    &mut |_| {},
                );
                let why = outcome.result.err().map(|e| chain(&e));
                *ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
                slot.close();
            })
            .map_err(|e| error(format!("cannot start the receiving thread: {e}")))?;
        self.out = Some(out);
        self.side = Some(side);
        self.thread = Some(thread);
        Ok(())
    }
}
