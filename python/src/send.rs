//! The sending classes: `Server`, which viewers connect to, and `Sender`, which pushes to a
//! hub. Both hand each frame to framewire's send path through a newest-wins slot: `send`
//! converts the array into the slot's frame (the GIL released) and returns at once; encoding
//! and sending run on framewire's threads, and a frame replaced before it was sent (nobody
//! watching, a slow link) is counted in `dropped`. The stream's size is the first frame's
//! (or `size=`); the send path starts then.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use framewire_capture::pushed::{PushError, Pusher, pushed};
use framewire_core::{PixelFormat, Publisher};
use framewire_kit::{Prepared, TransportOptions};
use framewire_net::hub::PushEvent;
use framewire_net::{Board, CallConfig, ClientConfig, ServerConfig};
use framewire_session::{SendError, SendReport, chain};
use pyo3::prelude::*;

use crate::options::{self, Sending};
use crate::pixels::{Color, Incoming, fill_pixels};
use crate::receive::wait_in_slices;
use crate::{error, value_error};

/// A send path running on its own thread, fed through a newest-wins slot.
pub(crate) struct Outgoing {
    pusher: Pusher,
    size: (u32, u32),
    seq: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<SendReport, SendError>>>,
    publishers: Vec<Arc<dyn Publisher>>,
}

impl Outgoing {
    /// Plans the stream of frames of `size` in `format` as `sending` says, and starts it to
    /// the publishers `publish` makes for it.
    pub(crate) fn start(
        sending: &Sending,
        size: (u32, u32),
        format: PixelFormat,
        publish: impl FnOnce(&Prepared) -> PyResult<Vec<Arc<dyn Publisher>>>,
    ) -> PyResult<Outgoing> {
        let fps = sending.fps.unwrap_or(0.0);
        let (pusher, feed) = pushed("numpy frames", size, format, fps);
        let prepared = sending
            .options(size)
            .prepare_feed(Box::new(feed))
            .map_err(|e| value_error(chain(&e)))?;
        let publishers = publish(&prepared)?;
        let mut sender = prepared
            .sender(publishers.clone(), None, None)
            .map_err(|e| error(chain(&e)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let until = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("framewire-send".into())
            .spawn(move || sender.run(&until, &mut |_| {}))
            .map_err(|e| error(format!("cannot start the sending thread: {e}")))?;
        Ok(Outgoing {
            pusher,
            size,
            seq: 0,
            stop,
            thread: Some(thread),
            publishers,
        })
    }

    /// Hands `frame` in (converted with the GIL released when it is contiguous); with `wait`,
    /// then waits while someone watches until the frame before is on its way (encoded, and
    /// taken by every viewer's connection), so that none is converted only to be dropped,
    /// and the next is converted while the one before still goes out.
    pub(crate) fn send(
        &mut self,
        py: Python<'_>,
        frame: &Incoming<'_>,
        wait: bool,
    ) -> PyResult<()> {
        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(self.ended());
        }
        let (seq, size, color) = (self.seq, frame.size, frame.color());
        let pusher = &self.pusher;
        let filled = match frame.bytes() {
            Some(bytes) => {
                py.detach(|| pusher.fill(size, seq, |dst| fill_pixels(bytes, color, dst)))
            }
            None => pusher.fill(size, seq, |dst| frame.fill(dst)),
        };
        let filled = match filled {
            Ok(filled) => filled,
            Err(e @ PushError::Size { .. }) => {
                return Err(value_error(format!(
                    "frame: {e} (its size is the first frame's, or size=)"
                )));
            }
            Err(PushError::Closed) => return Err(error("the stream is closed")),
        };
        let publishers = &self.publishers;
        while wait && publishers.iter().any(|p| p.subscribers() > 0) {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                // The send path ended meanwhile: nothing will take the frame before.
                return Err(self.ended());
            }
            let on_its_way = py.detach(|| {
                let deadline = Instant::now() + crate::SIGNAL_CHECK;
                pusher.wait_sent(crate::SIGNAL_CHECK)
                    && publishers.iter().all(|p| p.wait_taken(deadline))
            });
            if on_its_way {
                break;
            }
            py.check_signals()?;
        }
        pusher
            .put(filled)
            .map_err(|_| error("the stream is closed"))?;
        self.seq += 1;
        Ok(())
    }

    /// Why the send path is over, from its thread.
    fn ended(&mut self) -> PyErr {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => error(chain(&e)),
            Some(Err(_)) => error("the sending thread panicked"),
            _ => error("the stream is closed"),
        }
    }

    /// Frames handed in that were replaced before they were sent, and packets a viewer missed.
    pub(crate) fn dropped(&self) -> u64 {
        self.pusher.dropped()
            + self
                .publishers
                .iter()
                .map(|p| p.dropped_total())
                .sum::<u64>()
    }

    /// Frames handed in.
    pub(crate) fn frames(&self) -> u64 {
        self.seq
    }

    /// The stream's size.
    pub(crate) fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Ends the stream: every viewer gets the goodbye, and the send path's thread is joined.
    pub(crate) fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.pusher.close();
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take();
        let publishers = std::mem::take(&mut self.publishers);
        let joined = py.detach(move || {
            let joined = thread.map(JoinHandle::join);
            for p in &publishers {
                p.shutdown();
            }
            joined
        });
        match joined {
            Some(Ok(Err(e))) => Err(error(chain(&e))),
            Some(Err(_)) => Err(error("the sending thread panicked")),
            _ => Ok(()),
        }
    }
}

/// A framewire server: viewers connect to it (`framewire view --connect ADDR`, a `Viewer`, a
/// browser with `http=`) and each gets the newest frame its link can take.
///
/// `send(frame)` returns at once: the frame is encoded and sent on framewire's threads, and a
/// frame replaced before it was sent is counted in `dropped`. The server starts listening at
/// the first frame, whose size is the stream's (or at once, given `size=(width, height)`).
#[pyclass(module = "framewire")]
pub struct Server {
    sending: Sending,
    listen: SocketAddr,
    transport: TransportOptions,
    config: ServerConfig,
    http: Option<SocketAddr>,
    color: Color,
    out: Option<Outgoing>,
    address: Option<String>,
    http_address: Option<String>,
    closed: bool,
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (
        listen = "127.0.0.1:9999", *, codec = "jpeg", quality = 80, width = None, fps = None,
        bitrate = None, adapt = false, transport = "tcp", token = None, tls = None, http = None,
        size = None, color = "bgr", max_viewers = 64
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        listen: &str,
        codec: &str,
        quality: u8,
        width: Option<u32>,
        fps: Option<f64>,
        bitrate: Option<u32>,
        adapt: bool,
        transport: &str,
        token: Option<&Bound<'_, PyAny>>,
        tls: Option<&Bound<'_, PyAny>>,
        http: Option<&str>,
        size: Option<(u32, u32)>,
        color: &str,
        max_viewers: usize,
    ) -> PyResult<Server> {
        let mut server = Server {
            sending: Sending::new(codec, quality, width, fps, bitrate, adapt)?,
            listen: options::listen("listen", listen)?,
            transport: TransportOptions {
                transport: options::transport(transport)?,
                ..TransportOptions::default()
            },
            config: ServerConfig {
                max_viewers: max_viewers.max(1),
                token: options::token(token)?,
                tls: options::tls_server(tls)?,
                ..ServerConfig::default()
            },
            http: http
                .map(framewire_kit::value::addr_or_port)
                .transpose()
                .map_err(|e| value_error(format!("http: {e}")))?,
            color: color.parse()?,
            out: None,
            address: None,
            http_address: None,
            closed: false,
        };
        if let Some(size) = size {
            server.start(py, size)?;
        }
        Ok(server)
    }

    /// Sends `frame`: a numpy array of uint8, H×W×3 in BGR (as OpenCV gives), or as `color=`
    /// says. Returns at once, and the newest frame wins; with `wait=True`, it hands the frame
    /// in only once the frame before is on its way (while a viewer watches), so that a program
    /// that makes frames faster than they can be sent drops none and spends nothing on frames
    /// that would be dropped.
    #[pyo3(signature = (frame, wait = false))]
    fn send(&mut self, py: Python<'_>, frame: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        if self.closed {
            return Err(error("send: the server is closed"));
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

    /// Where it listens (`udp://` before a datagram address); `None` before the first frame.
    #[getter]
    fn address(&self) -> Option<String> {
        self.address.clone()
    }

    /// Where its HTTP is (`http=`), as a URL; `None` without it, or before the first frame.
    #[getter]
    fn http_address(&self) -> Option<String> {
        self.http_address.clone()
    }

    /// `sha256:HEX` of its TLS certificate, with `tls=`.
    #[getter]
    fn tls_fingerprint(&self) -> Option<String> {
        self.config
            .tls
            .as_ref()
            .map(|t| t.fingerprint().to_string())
    }

    /// Viewers watching now.
    #[getter]
    fn viewers(&self) -> usize {
        self.out.as_ref().map_or(0, |o| {
            o.publishers.iter().map(|p| p.subscribers()).sum::<usize>()
        })
    }

    /// Frames handed in that were never sent (replaced by a newer one), and packets some
    /// viewer missed.
    #[getter]
    fn dropped(&self) -> u64 {
        self.out.as_ref().map_or(0, Outgoing::dropped)
    }

    /// Frames handed in.
    #[getter]
    fn frames(&self) -> u64 {
        self.out.as_ref().map_or(0, Outgoing::frames)
    }

    /// Waits up to `timeout` seconds (none: no limit) for a viewer; returns the viewers
    /// watching. Raises `framewire.Error` before the server listens.
    #[pyo3(signature = (timeout = None))]
    fn wait_for_viewer(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        let Some(out) = &self.out else {
            return Err(error(
                "wait_for_viewer: the server listens from the first frame (or size=)",
            ));
        };
        let publishers = &out.publishers;
        let viewers = wait_in_slices(py, timeout, |until| {
            let slice = until.saturating_duration_since(std::time::Instant::now());
            let n = publishers
                .iter()
                .map(|p| p.wait_for_subscriber(slice))
                .max()
                .unwrap_or(0);
            (n > 0).then_some(n)
        })?;
        Ok(viewers.unwrap_or(0))
    }

    /// Ends the stream: each viewer gets the goodbye. Idempotent.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.closed = true;
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
        match (&self.address, &self.out) {
            (Some(at), Some(out)) => {
                let (w, h) = out.size();
                format!(
                    "Server(listening on {at}, {} {w}x{h}, {} viewers)",
                    self.sending.codec,
                    self.viewers()
                )
            }
            _ if self.closed => "Server(closed)".into(),
            _ => format!("Server({}, listening from the first frame)", self.listen),
        }
    }
}

impl Server {
    /// Binds and starts the send path for frames of `size`.
    fn start(&mut self, py: Python<'_>, size: (u32, u32)) -> PyResult<()> {
        let (listen, net, config, http) =
            (self.listen, self.transport, self.config.clone(), self.http);
        let color = self.color;
        let mut address = None;
        let mut http_address = None;
        let out = py.detach(|| {
            Outgoing::start(&self.sending, size, color.format(), |prepared| {
                let board = Arc::new(Board::new(&prepared.source_name, prepared.fps));
                let ladder = (Arc::clone(&prepared.ladder), prepared.fps);
                let served = framewire_kit::server(
                    listen,
                    &net,
                    None,
                    ladder,
                    config.clone(),
                    &board,
                    |_| {},
                )
                .map_err(|e| error(chain(&e)))?;
                address = Some(served.at.clone());
                let mut publishers = vec![served.publisher];
                if let Some(addr) = http {
                    let ladder = Arc::clone(&prepared.ladder);
                    let scheme = if config.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    let http = framewire_kit::transport::http(
                        addr,
                        ladder,
                        &board,
                        config.clone(),
                        Vec::new(),
                        |_| {},
                    )
                    .map_err(|e| error(format!("http: {}", chain(&e))))?;
                    http_address = Some(format!("{scheme}://{}/", http.at));
                    publishers.push(http.publisher);
                }
                Ok(publishers)
            })
        })?;
        self.out = Some(out);
        self.address = address;
        self.http_address = http_address;
        Ok(())
    }
}

/// Seconds as a duration, none below zero.
pub(crate) fn secs(t: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(t.max(0.0))
}

/// What a `Sender` knows of its hub.
#[derive(Default)]
struct HubState {
    refused: Option<String>,
    last_error: Option<String>,
}

/// A sender that pushes its frames to a hub (`framewire.Hub`, `framewire hub --listen`) as
/// `name`, dialing again with backoff whenever the hub goes away (a restart); frames sent
/// meanwhile are counted in `dropped`, and `send` never waits for the hub.
#[pyclass(module = "framewire")]
pub struct Sender {
    sending: Sending,
    hub: framewire_kit::value::HostPort,
    name: String,
    token: Option<framewire_wire::token::Token>,
    tls: Option<framewire_net::TlsClient>,
    color: Color,
    out: Option<Outgoing>,
    state: Arc<Mutex<HubState>>,
    pusher: Option<Arc<framewire_net::hub::HubPusher>>,
    closed: bool,
}

#[pymethods]
impl Sender {
    #[new]
    #[pyo3(signature = (
        connect = "127.0.0.1:9990", name = None, *, codec = "jpeg", quality = 80, width = None,
        fps = None, bitrate = None, token = None, tls = None, size = None, color = "bgr"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        connect: &str,
        name: Option<String>,
        codec: &str,
        quality: u8,
        width: Option<u32>,
        fps: Option<f64>,
        bitrate: Option<u32>,
        token: Option<&Bound<'_, PyAny>>,
        tls: Option<&Bound<'_, PyAny>>,
        size: Option<(u32, u32)>,
        color: &str,
    ) -> PyResult<Sender> {
        let hub = options::connect("connect", connect)?;
        let name = name.unwrap_or_else(framewire_kit::value::host_name);
        framewire_wire::message::check_name(name.as_bytes())
            .map_err(|e| value_error(format!("name: {e}")))?;
        let mut sender = Sender {
            sending: Sending::new(codec, quality, width, fps, bitrate, false)?,
            tls: options::tls_client(tls, &hub)?,
            hub,
            name,
            token: options::token(token)?,
            color: color.parse()?,
            out: None,
            state: Arc::default(),
            pusher: None,
            closed: false,
        };
        if let Some(size) = size {
            sender.start(py, size)?;
        }
        Ok(sender)
    }

    /// Sends `frame` (uint8, H×W×3 BGR, or as `color=` says) to the hub. Returns at once;
    /// the newest frame wins (`wait=True`: hands it in only once the frame before is on its
    /// way, while the hub takes the stream). Raises `framewire.Error` once the hub refused this
    /// sender for good (a wrong token, a name it does not take).
    #[pyo3(signature = (frame, wait = false))]
    fn send(&mut self, py: Python<'_>, frame: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        if self.closed {
            return Err(error("send: the sender is closed"));
        }
        if let Some(refused) = &self.lock().refused {
            return Err(error(refused));
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

    /// The name it goes by at the hub.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether the hub takes its stream now.
    #[getter]
    fn connected(&self) -> bool {
        self.pusher.as_ref().is_some_and(|p| p.subscribers() > 0)
    }

    /// Why the last connection to the hub failed or ended, if one did.
    #[getter]
    fn last_error(&self) -> Option<String> {
        let state = self.lock();
        state.refused.clone().or_else(|| state.last_error.clone())
    }

    /// Frames handed in that never reached the hub (replaced by a newer one: the hub away or
    /// slower than the frames).
    #[getter]
    fn dropped(&self) -> u64 {
        self.out.as_ref().map_or(0, Outgoing::dropped)
    }

    /// Frames handed in.
    #[getter]
    fn frames(&self) -> u64 {
        self.out.as_ref().map_or(0, Outgoing::frames)
    }

    /// Waits up to `timeout` seconds (none: no limit) until the hub takes the stream; returns
    /// whether it does. Raises `framewire.Error` if the hub refused this sender for good.
    #[pyo3(signature = (timeout = None))]
    fn wait_connected(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let Some(pusher) = &self.pusher else {
            return Err(error(
                "wait_connected: the sender dials from the first frame (or size=)",
            ));
        };
        let state = &self.state;
        let answer = wait_in_slices(py, timeout, |until| {
            let slice = until.saturating_duration_since(std::time::Instant::now());
            if pusher.wait_for_subscriber(slice) > 0 {
                return Some(Ok(()));
            }
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.refused.clone().map(Err)
        })?;
        match answer {
            Some(Ok(())) => Ok(true),
            Some(Err(refused)) => Err(error(refused)),
            None => Ok(false),
        }
    }

    /// Ends the stream: the hub hears the goodbye. Idempotent.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.closed = true;
        self.pusher = None;
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
        let how = if self.closed {
            "closed"
        } else if self.connected() {
            "connected"
        } else {
            "not connected"
        };
        format!("Sender({:?} to {}, {how})", self.name, self.hub)
    }
}

impl Sender {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts pushing frames of `size`.
    fn start(&mut self, py: Python<'_>, size: (u32, u32)) -> PyResult<()> {
        let call = CallConfig {
            client: ClientConfig {
                token: self.token.clone(),
                tls: self.tls.clone(),
                ..ClientConfig::default()
            },
            server: ServerConfig::default(),
        };
        let (hub, name, state) = (self.hub.addr, self.name.clone(), Arc::clone(&self.state));
        let (said, color) = (name.clone(), self.color);
        let mut made = None;
        let out = py.detach(|| {
            Outgoing::start(&self.sending, size, color.format(), |prepared| {
                let ladder = (Arc::clone(&prepared.ladder), prepared.fps);
                let pusher =
                    framewire_kit::transport::push(hub, &name, ladder, call, move |event| {
                        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                        match event {
                            PushEvent::Connected { .. } => {}
                            PushEvent::Lost { reason, .. } => state.last_error = Some(reason),
                            PushEvent::Refused(reason) => {
                                state.refused = Some(format!("the hub refused {said:?}: {reason}"))
                            }
                        }
                    })
                    .map_err(value_error)?;
                made = Some(Arc::clone(&pusher));
                Ok(vec![pusher as Arc<dyn Publisher>])
            })
        })?;
        self.out = Some(out);
        self.pusher = made;
        Ok(())
    }
}
