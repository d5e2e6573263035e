//! The receiving classes: `Viewer`, which connects to a server, and `Hub`, which senders push
//! to. Frames are received and decoded on framewire's threads; a frame in the array's order
//! becomes the returned array's memory as it is, any other is converted into memory the array
//! then owns; a frame not taken before the next one arrived is
//! replaced (newest wins) and counted in `dropped`. `recv` waits with the GIL released, waking
//! every 50 ms for Ctrl-C.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use framewire_core::{Flow, Frame, Latest, Request, Waited};
use framewire_kit::Receiving;
use framewire_kit::hub::Senders;
use framewire_kit::watch::{self, FrameInfo as Info};
use framewire_net::ServerConfig;
use framewire_session::{Outcome, ReceiveConfig, StopSignal, chain};
use pyo3::exceptions::{PyStopIteration, PyTimeoutError};
use pyo3::prelude::*;

use crate::options;
use crate::pixels::{Color, take_frame, to_array};
use crate::send::secs;
use crate::{FrameInfo, SIGNAL_CHECK, error, value_error};

/// A decoded frame, converted, waiting to be taken.
pub(crate) struct Item {
    bytes: Vec<u8>,
    shape: [usize; 3],
    info: Info,
}

impl Item {
    /// The frame's pixels become the array's when they are in its order, packed: no copy.
    pub(crate) fn new(frame: &mut Frame, info: &Info, color: Color) -> Item {
        let (bytes, shape) = take_frame(frame, color);
        Item {
            bytes,
            shape,
            info: *info,
        }
    }

    /// The array and its info, for Python.
    pub(crate) fn into_py(self, py: Python<'_>, name: Option<&str>) -> (Py<PyAny>, FrameInfo) {
        let info = FrameInfo::new(&self.info, name);
        (to_array(py, self.bytes, self.shape), info)
    }
}

/// How long `recv` waits: until `deadline`, if any, in slices that let Python see Ctrl-C.
pub(crate) fn wait_in_slices<T>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut wait: impl FnMut(Instant) -> Option<T> + Send,
) -> PyResult<Option<T>>
where
    T: Send,
{
    let deadline = timeout.map(|t| Instant::now() + secs(t));
    loop {
        let slice = Instant::now() + SIGNAL_CHECK;
        let until = deadline.map_or(slice, |d| d.min(slice));
        if let Some(got) = py.detach(|| wait(until)) {
            return Ok(Some(got));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// A viewer of a framewire server (`framewire serve`, a `Server`), reconnecting with backoff
/// when the connection is lost. Iterate over it for `(frame, info)`, or call `recv`.
#[pyclass(module = "framewire")]
pub struct Viewer {
    slot: Arc<Latest<Item>>,
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    /// How the receive path ended: `Some(None)` as asked (the sender said goodbye),
    /// `Some(Some(why))` on an error.
    ended: Arc<Mutex<Option<Option<String>>>>,
    connect: String,
    received: Arc<AtomicU64>,
}

#[pymethods]
impl Viewer {
    #[new]
    #[pyo3(signature = (
        connect = "127.0.0.1:9999", *, codec = None, width = None, rung = None,
        transport = "tcp", token = None, tls = None, color = "bgr", idle_timeout = 15.0,
        reconnect = true, max_payload = 64 << 20
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        connect: &str,
        codec: Option<&str>,
        width: Option<u32>,
        rung: Option<u8>,
        transport: &str,
        token: Option<&Bound<'_, PyAny>>,
        tls: Option<&Bound<'_, PyAny>>,
        color: &str,
        idle_timeout: f64,
        reconnect: bool,
        max_payload: u32,
    ) -> PyResult<Viewer> {
        let server = options::connect("connect", connect)?;
        if rung.is_some() && (codec.is_some() || width.is_some()) {
            return Err(value_error(
                "rung: a rung is the sender's own; leave out codec and width with it",
            ));
        }
        let request = Request {
            rung,
            codec: codec.map(options::codec).transpose()?,
            width,
        };
        let how = Receiving {
            transport: options::transport(transport)?,
            max_payload,
            idle_timeout: secs(idle_timeout),
            token: options::token(token)?,
            tls: options::tls_client(tls, &server)?,
        };
        let color: Color = color.parse()?;
        let (connector, _extra) = framewire_kit::connector(server.addr, request, how);
        let slot = Arc::new(Latest::new());
        let signal = Arc::new(StopSignal::default());
        let ended = Arc::new(Mutex::new(None));
        let received = Arc::new(AtomicU64::new(0));
        let (into, stop, end, count) = (
            Arc::clone(&slot),
            Arc::clone(&signal),
            Arc::clone(&ended),
            Arc::clone(&received),
        );
        let thread = std::thread::Builder::new()
            .name("framewire-view".into())
            .spawn(move || {
                let config = ReceiveConfig {
                    no_reconnect: !reconnect,
                    ..ReceiveConfig::default()
                };
                let outcome = watch::watch(
                    &*connector,
                    &stop,
                    &config,
                    &mut |frame, info| {
                        count.fetch_add(1, Ordering::Relaxed);
                        into.put(Item::new(frame, info, color));
                        Flow::Continue
                    },
                    &mut |_| {},
                );
                let why = outcome.result.err().map(|e| chain(&e));
                *end.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
                into.close();
            })
            .map_err(|e| error(format!("cannot start the receiving thread: {e}")))?;
        Ok(Viewer {
            slot,
            signal,
            thread: Some(thread),
            ended,
            connect: server.name,
            received,
        })
    }

    /// The next frame and its info, waiting up to `timeout` seconds (none: until one comes).
    /// Raises `TimeoutError` when none came in time, and `framewire.Error` when the stream
    /// failed or the sender ended it (which ends a `for` loop without an error).
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(Py<PyAny>, FrameInfo)> {
        match self.next_item(py, timeout)? {
            Some(item) => Ok(item.into_py(py, None)),
            None => Err(match self.why_ended() {
                Some(Some(why)) => error(why),
                Some(None) => error(format!("{} ended the stream", self.connect)),
                None => PyTimeoutError::new_err(format!(
                    "no frame from {} within {:.1} s",
                    self.connect,
                    timeout.unwrap_or(0.0)
                )),
            }),
        }
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, FrameInfo)> {
        match self.next_item(py, None)? {
            Some(item) => Ok(item.into_py(py, None)),
            None => match self.why_ended() {
                Some(Some(why)) => Err(error(why)),
                _ => Err(PyStopIteration::new_err(())),
            },
        }
    }

    /// Frames received and decoded.
    #[getter]
    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Frames received that were replaced by a newer one before `recv` took them.
    #[getter]
    fn dropped(&self) -> u64 {
        self.slot.dropped()
    }

    /// Stops receiving and closes the connection. Idempotent.
    fn close(&mut self, py: Python<'_>) {
        self.signal.stop();
        if let Some(thread) = self.thread.take() {
            py.detach(|| {
                let _ = thread.join();
            });
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
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "Viewer({}, {} frames received)",
            self.connect,
            self.received()
        )
    }
}

impl Viewer {
    /// The next item, or `None` when `timeout` passed or the stream ended.
    fn next_item(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Item>> {
        let slot = &self.slot;
        let got = wait_in_slices(py, timeout, |until| match slot.wait(Some(until)) {
            Waited::Value(item) => Some(Some(item)),
            Waited::Timeout => None,
            Waited::Closed => Some(None),
        })?;
        Ok(got.flatten())
    }

    fn why_ended(&self) -> Option<Option<String>> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.signal.stop();
    }
}

/// What a hub keeps for Python: each sender's newest frame, the senders in the order their
/// frames came, and what each dropped.
#[derive(Default)]
struct Board {
    waiting: HashMap<String, Item>,
    order: VecDeque<String>,
    dropped: HashMap<String, u64>,
    live: BTreeSet<String>,
    closed: bool,
}

struct Slots {
    board: Mutex<Board>,
    ready: Condvar,
    color: Color,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Senders for Slots {
    fn joined(&self, name: &str, _peer: &str) {
        self.lock().live.insert(name.to_string());
    }

    fn frame(&self, name: &str, frame: &mut Frame, info: &Info) -> Flow {
        let item = Item::new(frame, info, self.color);
        let mut board = self.lock();
        if board.waiting.insert(name.to_string(), item).is_some() {
            *board.dropped.entry(name.to_string()).or_default() += 1;
        } else {
            board.order.push_back(name.to_string());
        }
        drop(board);
        self.ready.notify_one();
        Flow::Continue
    }

    fn left(&self, name: &str, _outcome: &Outcome) {
        self.lock().live.remove(name);
    }
}

/// A hub that many senders push to (`framewire.Sender`, `framewire serve --push`), each by
/// its name. Iterate over it for `(name, frame, info)`, or call `recv`. Each sender's newest
/// frame wins: a sender is never slowed by a slow program, and one sender's frames never
/// wait behind another's.
#[pyclass(module = "framewire")]
pub struct Hub {
    hub: Option<framewire_kit::hub::Hub>,
    slots: Arc<Slots>,
    address: String,
    fingerprint: Option<String>,
}

#[pymethods]
impl Hub {
    #[new]
    #[pyo3(signature = (
        listen = "127.0.0.1:9990", *, token = None, tls = None, color = "bgr",
        max_senders = 64, idle_timeout = 15.0, max_payload = 64 << 20
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        listen: &str,
        token: Option<&Bound<'_, PyAny>>,
        tls: Option<&Bound<'_, PyAny>>,
        color: &str,
        max_senders: usize,
        idle_timeout: f64,
        max_payload: u32,
    ) -> PyResult<Hub> {
        let listen = options::listen("listen", listen)?;
        let config = ServerConfig {
            token: options::token(token)?,
            tls: options::tls_server(tls)?,
            ..ServerConfig::default()
        };
        let slots = Arc::new(Slots {
            board: Mutex::default(),
            ready: Condvar::new(),
            color: color.parse()?,
        });
        let senders = Arc::clone(&slots) as Arc<dyn Senders>;
        let limits = (secs(idle_timeout), max_payload);
        let hub = py.detach(|| {
            let listening =
                framewire_kit::transport::hub(listen, max_senders.max(1), limits, config, |_| {})
                    .map_err(|e| chain(&e))?;
            framewire_kit::hub::Hub::start(listening, senders).map_err(|e| e.to_string())
        });
        let hub = hub.map_err(error)?;
        Ok(Hub {
            address: hub.at().to_string(),
            fingerprint: hub.fingerprint().map(str::to_string),
            hub: Some(hub),
            slots,
        })
    }

    /// The next frame from any sender, as `(name, frame, info)`: senders take turns, each
    /// with its newest frame. Waits up to `timeout` seconds (none: until one comes); raises
    /// `TimeoutError` when none came.
    #[pyo3(signature = (timeout = None))]
    fn recv(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<(String, Py<PyAny>, FrameInfo)> {
        match self.next_item(py, timeout)? {
            Some((name, item)) => {
                let (frame, info) = item.into_py(py, Some(&name));
                Ok((name, frame, info))
            }
            None if self.hub.is_none() => Err(error("recv: the hub is closed")),
            None => Err(PyTimeoutError::new_err(format!(
                "no frame from any sender within {:.1} s",
                timeout.unwrap_or(0.0)
            ))),
        }
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<(String, Py<PyAny>, FrameInfo)> {
        match self.next_item(py, None)? {
            Some((name, item)) => {
                let (frame, info) = item.into_py(py, Some(&name));
                Ok((name, frame, info))
            }
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// Where it listens.
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    /// `sha256:HEX` of its TLS certificate, with `tls=`.
    #[getter]
    fn tls_fingerprint(&self) -> Option<String> {
        self.fingerprint.clone()
    }

    /// The names of the senders pushing now, sorted.
    #[getter]
    fn senders(&self) -> Vec<String> {
        self.slots.lock().live.iter().cloned().collect()
    }

    /// Each sender's frames that a newer one replaced before `recv` took them, by name.
    #[getter]
    fn dropped(&self) -> HashMap<String, u64> {
        self.slots.lock().dropped.clone()
    }

    /// Stops taking senders and closes every sender's connection (they dial again, and find
    /// the next hub on this address). Idempotent.
    fn close(&mut self, py: Python<'_>) {
        if let Some(mut hub) = self.hub.take() {
            py.detach(|| hub.stop());
        }
        self.slots.lock().closed = true;
        self.slots.ready.notify_all();
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
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        if self.hub.is_none() {
            return "Hub(closed)".into();
        }
        format!(
            "Hub(listening on {}, senders {:?})",
            self.address,
            self.senders()
        )
    }
}

impl Hub {
    /// The next sender's frame, or `None` when `timeout` passed or the hub closed.
    fn next_item(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<(String, Item)>> {
        let slots = &self.slots;
        let got = wait_in_slices(py, timeout, |until| {
            let mut board = slots.lock();
            loop {
                if let Some(name) = board.order.pop_front() {
                    let item = board.waiting.remove(&name).expect("a waiting sender");
                    return Some(Some((name, item)));
                }
                if board.closed {
                    return Some(None);
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                board = slots
                    .ready
                    .wait_timeout(board, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        })?;
        Ok(got.flatten())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut hub) = self.hub.take() {
            hub.stop();
        }
    }
}
