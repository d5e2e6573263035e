//! The winit window: shows the newest frame a producer thread hands it, with live fps and latency.
//!
//! winit's event loop must own the main thread, so [`run`] takes the rest of the pipeline (the
//! network receive and decode of `framewire view`, the capture and encode of `framewire serve
//! --preview`) as a closure and runs it on a thread of its own, handing it a [`WindowSink`].
//! Frames cross over through core's one-slot [`Latest`]: a frame that arrives before the window
//! drew the previous one replaces it (the newest frame wins, never a queue), and the frame buffers travel
//! back and forth instead of being allocated.
//!
//! A second sink, [`WindowSink::inset`], draws its frames small in the bottom right corner over
//! the main picture, picture in picture (`framewire chat`: the peer fills the window, the local
//! camera is the inset). The title shows the main picture's fps and latency, and whatever the
//! producer adds with [`WindowSink::status`].
//!
//! Enter, Esc or q (or the window's close button) closes the window: [`run`] returns
//! [`WindowExit::Closed`], the sink answers [`Flow::Stop`] from then on, and the close hook the
//! producer registered (e.g. shutting down its socket) runs so that a blocked producer wakes up.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use framewire_core::{Flow, Frame, FrameSink, Latest, SinkError, now_micros};
use winit::application::ApplicationHandler;
use winit::dpi::LogicalSize;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Window, WindowId};

use crate::gpu::{DisplayError, Gpu, backend_names, instance_descriptor};
use crate::renderer::{Renderer, inset_area};

/// What the window looks like when it opens.
#[derive(Debug, Clone)]
pub struct WindowOptions {
    /// The title; live fps and latency are appended to it.
    pub title: String,
    /// Initial inner size in logical pixels (scaled by the monitor's HiDPI factor).
    pub size: (u32, u32),
    /// Ask once, when the first frame arrives, for an inner size equal to the frame's (in logical
    /// pixels); the user's resizes are followed afterwards.
    pub fit_first_frame: bool,
}

/// Why the window's event loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowExit {
    /// The user closed the window (Enter, Esc, q or the close button).
    Closed,
    /// The producer returned (and dropped its [`WindowSink`]).
    ProducerDone,
}

/// What [`run`] hands back.
#[derive(Debug)]
pub struct WindowRun<T> {
    /// Why the window closed.
    pub exit: WindowExit,
    /// The producer thread: finished after [`WindowExit::ProducerDone`]; after
    /// [`WindowExit::Closed`] it ends once it sees [`Flow::Stop`] or its close hook fired.
    pub producer: JoinHandle<T>,
    /// Frames the window drew.
    pub frames_shown: u64,
}

/// Whether a window can be opened here: an X display must be named by `DISPLAY`.
///
/// This build draws through X11 (Wayland desktops run it through XWayland, which sets `DISPLAY`).
pub fn display_available() -> Result<(), DisplayError> {
    match std::env::var_os("DISPLAY") {
        Some(d) if !d.is_empty() => Ok(()),
        _ if std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty()) => {
            Err(DisplayError::NoDisplay(
                "DISPLAY is not set; this build draws through X11, start XWayland".into(),
            ))
        }
        _ => Err(DisplayError::NoDisplay("DISPLAY is not set".into())),
    }
}

#[derive(Debug, Clone, Copy)]
enum Wake {
    Frame,
    ProducerDone,
}

type CloseHook = Box<dyn FnOnce() + Send>;

/// Between the producer and the window: the newest frame (the window gives each drawn buffer
/// back for the producer to fill next; closed when the window closes), and the wake-up state.
#[derive(Default)]
struct Mailbox {
    frames: Latest<Frame>,
    /// The inset's newest frame.
    inset: Latest<Frame>,
    signals: Mutex<Signals>,
}

#[derive(Default)]
struct Signals {
    wake_pending: bool,
    on_close: Vec<CloseHook>,
    /// What the producer adds to the title.
    status: Option<String>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Signals> {
        // A panic while holding this lock leaves consistent signals: keep going.
        self.signals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }

    fn close(&self) {
        let hooks = {
            let mut signals = self.lock();
            self.frames.close();
            self.inset.close();
            std::mem::take(&mut signals.on_close)
        };
        for hook in hooks {
            hook();
        }
    }
}

/// The producer's end of the window: a [`FrameSink`] that hands frames to the window.
pub struct WindowSink {
    mailbox: Arc<Mailbox>,
    proxy: EventLoopProxy<Wake>,
    spare: Option<Frame>,
    /// Whether this sink feeds the inset (else the main picture, and the producer's end:
    /// dropping it ends the window).
    inset: bool,
}

impl std::fmt::Debug for WindowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowSink")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl WindowSink {
    /// A sink whose frames are drawn as the inset: a third of the window's size, in the bottom
    /// right corner, over the main picture. Dropping it does not end the window.
    pub fn inset(&self) -> WindowSink {
        WindowSink {
            mailbox: Arc::clone(&self.mailbox),
            proxy: self.proxy.clone(),
            spare: None,
            inset: true,
        }
    }

    /// A handle that adds a text to the title, after the window's own figures (a call's
    /// other direction); the title changes about once a second.
    pub fn status(&self) -> TitleStatus {
        TitleStatus {
            mailbox: Arc::clone(&self.mailbox),
        }
    }

    /// Whether the user closed the window.
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }

    /// Runs `hook` when the user closes the window (at once if it is already closed): the way to
    /// wake a producer blocked somewhere else, e.g. by shutting down its socket.
    pub fn on_close(&self, hook: impl FnOnce() + Send + 'static) {
        let mut signals = self.mailbox.lock();
        if self.mailbox.is_closed() {
            drop(signals);
            hook();
        } else {
            signals.on_close.push(Box::new(hook));
        }
    }
}

/// Adds a text to a window's title: see [`WindowSink::status`].
#[derive(Clone)]
pub struct TitleStatus {
    mailbox: Arc<Mailbox>,
}

impl std::fmt::Debug for TitleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TitleStatus").finish_non_exhaustive()
    }
}

impl TitleStatus {
    /// Shows `text` in the title from its next change on.
    pub fn set(&self, text: String) {
        self.mailbox.lock().status = Some(text);
    }
}

/// Copies `src` into `dst`, keeping `dst`'s allocation.
fn copy_frame(dst: &mut Frame, src: &Frame) {
    dst.width = src.width;
    dst.height = src.height;
    dst.stride = src.stride;
    dst.format = src.format;
    dst.seq = src.seq;
    dst.capture_us = src.capture_us;
    dst.pixels.clear();
    dst.pixels.extend_from_slice(&src.pixels);
}

impl FrameSink for WindowSink {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        if self.mailbox.is_closed() {
            return Ok(Flow::Stop);
        }
        let mut buf = self
            .spare
            .take()
            .unwrap_or_else(|| Frame::empty(frame.format));
        copy_frame(&mut buf, frame);
        // A frame the window has not drawn yet is replaced; its buffer (or one the window gave
        // back) is filled next time.
        let slot = if self.inset {
            &self.mailbox.inset
        } else {
            &self.mailbox.frames
        };
        self.spare = slot.put(buf);
        let wake = !std::mem::replace(&mut self.mailbox.lock().wake_pending, true);
        if wake && self.proxy.send_event(Wake::Frame).is_err() {
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }
}

impl Drop for WindowSink {
    fn drop(&mut self) {
        if !self.inset {
            let _ = self.proxy.send_event(Wake::ProducerDone);
        }
    }
}

/// Runs `producer` beside a window titled `title` (640x480 at first, then fitted to the first
/// frame) until it returns or the window is closed, and waits for it. Returns whether the user
/// closed the window, and what the producer returned.
pub fn run_beside<T, P>(title: String, producer: P) -> Result<(bool, T), DisplayError>
where
    T: Send + 'static,
    P: FnOnce(WindowSink) -> T + Send + 'static,
{
    let options = WindowOptions {
        title,
        size: (640, 480),
        fit_first_frame: true,
    };
    let run = run(options, producer)?;
    let closed = run.exit == WindowExit::Closed;
    let out = run.producer.join().map_err(|_| DisplayError::Panicked)?;
    Ok((closed, out))
}

/// Opens a window and runs `producer` on its own thread with a [`WindowSink`] feeding it, until
/// the user closes the window or the producer returns. Must be called on the main thread.
///
/// The producer starts only once the window and its GPU device are ready, so a missing display
/// or adapter is reported before anything else happens.
pub fn run<T, P>(options: WindowOptions, producer: P) -> Result<WindowRun<T>, DisplayError>
where
    T: Send + 'static,
    P: FnOnce(WindowSink) -> T + Send + 'static,
{
    display_available()?;
    let event_loop =
        EventLoop::<Wake>::with_user_event()
            .build()
            .map_err(|e| DisplayError::Window {
                context: "cannot connect to the display".into(),
                source: Box::new(e),
            })?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let mut app = App {
        options,
        proxy: event_loop.create_proxy(),
        mailbox: Arc::new(Mailbox::default()),
        producer: Some(Box::new(producer)),
        handle: None,
        state: None,
        exit: None,
        error: None,
        stats: TitleStats::new(),
        frames_shown: 0,
    };
    event_loop
        .run_app(&mut app)
        .map_err(|e| DisplayError::Window {
            context: "the window's event loop failed".into(),
            source: Box::new(e),
        })?;
    // The window is gone: a producer still running must not wait for it.
    app.mailbox.close();
    if let Some(e) = app.error {
        return Err(e);
    }
    let Some(producer) = app.handle else {
        return Err(DisplayError::Gpu(
            "the window closed before it was ready".into(),
        ));
    };
    Ok(WindowRun {
        exit: app.exit.unwrap_or(WindowExit::Closed),
        producer,
        frames_shown: app.frames_shown,
    })
}

type Producer<T> = Box<dyn FnOnce(WindowSink) -> T + Send>;

struct WindowState {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    gpu: Gpu,
    renderer: Renderer,
    /// The inset's renderer, made when its first frame arrives.
    inset: Option<Renderer>,
}

struct App<T> {
    options: WindowOptions,
    proxy: EventLoopProxy<Wake>,
    mailbox: Arc<Mailbox>,
    producer: Option<Producer<T>>,
    handle: Option<JoinHandle<T>>,
    state: Option<WindowState>,
    exit: Option<WindowExit>,
    error: Option<DisplayError>,
    stats: TitleStats,
    frames_shown: u64,
}

impl<T: Send + 'static> App<T> {
    fn create(&self, event_loop: &ActiveEventLoop) -> Result<WindowState, DisplayError> {
        let (w, h) = self.options.size;
        let attributes = Window::default_attributes()
            .with_title(self.options.title.clone())
            .with_inner_size(LogicalSize::new(w.max(1), h.max(1)));
        let window =
            Arc::new(
                event_loop
                    .create_window(attributes)
                    .map_err(|e| DisplayError::Window {
                        context: "cannot open a window".into(),
                        source: Box::new(e),
                    })?,
            );
        let mut desc = instance_descriptor();
        desc.display = Some(Box::new(event_loop.owned_display_handle()));
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let surface =
            instance
                .create_surface(Arc::clone(&window))
                .map_err(|e| DisplayError::Window {
                    context: "cannot draw into the window".into(),
                    source: Box::new(e),
                })?;
        let gpu = Gpu::open(&instance, backends, Some(&surface))?;
        let size = window.inner_size();
        let mut config = surface
            .get_default_config(&gpu.adapter, size.width.max(1), size.height.max(1))
            .ok_or_else(|| DisplayError::NoAdapter {
                backends: format!("{} able to draw into this window", backend_names(backends)),
            })?;
        let caps = surface.get_capabilities(&gpu.adapter);
        // A non-sRGB format passes frame bytes through unchanged; Mailbox never blocks on a
        // vertical blank, so the newest frame is always the one shown.
        if let Some(f) = caps.formats.iter().find(|f| !f.is_srgb()) {
            config.format = *f;
        }
        if caps.present_modes.contains(&wgpu::PresentMode::Mailbox) {
            config.present_mode = wgpu::PresentMode::Mailbox;
        } else {
            config.present_mode = wgpu::PresentMode::Fifo;
        }
        surface.configure(&gpu.device, &config);
        let renderer = Renderer::new(&gpu.device, config.format);
        tracing::debug!(adapter = %gpu.adapter_name(), format = ?config.format, "window ready");
        Ok(WindowState {
            window,
            surface,
            config,
            gpu,
            renderer,
            inset: None,
        })
    }

    fn close(&mut self, event_loop: &ActiveEventLoop, why: WindowExit) {
        if self.exit.is_none() {
            self.exit = Some(why);
        }
        self.mailbox.close();
        event_loop.exit();
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, error: DisplayError) {
        self.error.get_or_insert(error);
        self.close(event_loop, WindowExit::Closed);
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        let Some(state) = &mut self.state else {
            return;
        };
        self.mailbox.lock().wake_pending = false;
        let newest = self.mailbox.frames.take();
        if let Some(frame) = newest {
            let uploaded = state
                .renderer
                .upload(&state.gpu.device, &state.gpu.queue, &frame);
            let (capture_us, frame_w, frame_h) = (frame.capture_us, frame.width, frame.height);
            self.mailbox.frames.give_back(frame);
            if let Err(e) = uploaded {
                self.fail(event_loop, e);
                return;
            }
            self.frames_shown += 1;
            if self.frames_shown == 1
                && self.options.fit_first_frame
                && (frame_w, frame_h) != self.options.size
            {
                let _ = state
                    .window
                    .request_inner_size(LogicalSize::new(frame_w, frame_h));
            }
            if let Some(suffix) = self.stats.record(capture_us) {
                let status = match &self.mailbox.lock().status {
                    Some(text) => format!("; {text}"),
                    None => String::new(),
                };
                state
                    .window
                    .set_title(&format!("{} - {suffix}{status}", self.options.title));
            }
        }
        if let Some(frame) = self.mailbox.inset.take() {
            let inset = state
                .inset
                .get_or_insert_with(|| Renderer::new(&state.gpu.device, state.config.format));
            let uploaded = inset.upload(&state.gpu.device, &state.gpu.queue, &frame);
            self.mailbox.inset.give_back(frame);
            if let Err(e) = uploaded {
                self.fail(event_loop, e);
                return;
            }
        }
        let texture = match state.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                state.surface.configure(&state.gpu.device, &state.config);
                state.window.request_redraw();
                return;
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => return,
            other => {
                self.fail(
                    event_loop,
                    DisplayError::Gpu(format!("cannot get the window's next image: {other:?}")),
                );
                return;
            }
        };
        let view = texture
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let mut encoder =
            state
                .gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("framewire window"),
                });
        let (width, height) = (state.config.width, state.config.height);
        state.renderer.render(&mut encoder, &view, width, height);
        if let Some(inset) = &mut state.inset {
            inset.render_in(&mut encoder, &view, inset_area(width, height), false);
        }
        state.gpu.queue.submit([encoder.finish()]);
        state.window.pre_present_notify();
        state.gpu.queue.present(texture);
    }
}

impl<T: Send + 'static> ApplicationHandler<Wake> for App<T> {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.state.is_some() {
            return;
        }
        match self.create(event_loop) {
            Ok(state) => {
                state.window.request_redraw();
                self.state = Some(state);
                if let Some(producer) = self.producer.take() {
                    let sink = WindowSink {
                        mailbox: Arc::clone(&self.mailbox),
                        proxy: self.proxy.clone(),
                        spare: None,
                        inset: false,
                    };
                    let spawned = std::thread::Builder::new()
                        .name("framewire-producer".into())
                        .spawn(move || producer(sink));
                    match spawned {
                        Ok(handle) => self.handle = Some(handle),
                        Err(e) => self.fail(
                            event_loop,
                            DisplayError::Gpu(format!("cannot start the producer thread: {e}")),
                        ),
                    }
                }
            }
            Err(e) => self.fail(event_loop, e),
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: Wake) {
        match event {
            Wake::Frame => {
                if let Some(state) = &self.state {
                    state.window.request_redraw();
                }
            }
            Wake::ProducerDone => self.close(event_loop, WindowExit::ProducerDone),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => self.close(event_loop, WindowExit::Closed),
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                let quit = match &event.logical_key {
                    Key::Named(NamedKey::Enter | NamedKey::Escape) => true,
                    Key::Character(c) => c.eq_ignore_ascii_case("q"),
                    _ => false,
                };
                if quit {
                    self.close(event_loop, WindowExit::Closed);
                }
            }
            WindowEvent::Resized(size) => {
                if let Some(state) = &mut self.state
                    && size.width > 0
                    && size.height > 0
                {
                    state.config.width = size.width;
                    state.config.height = size.height;
                    state.surface.configure(&state.gpu.device, &state.config);
                    state.window.request_redraw();
                }
            }
            WindowEvent::RedrawRequested => self.redraw(event_loop),
            _ => {}
        }
    }
}

/// Frames per second and capture-to-screen latency over the last second, for the title.
struct TitleStats {
    since: Instant,
    frames: u32,
    latency_sum_us: u64,
}

impl TitleStats {
    fn new() -> TitleStats {
        TitleStats {
            since: Instant::now(),
            frames: 0,
            latency_sum_us: 0,
        }
    }

    /// Counts a frame; about once a second, returns the text to show.
    fn record(&mut self, capture_us: u64) -> Option<String> {
        self.frames += 1;
        self.latency_sum_us += now_micros().saturating_sub(capture_us);
        let elapsed = self.since.elapsed();
        if elapsed < Duration::from_secs(1) {
            return None;
        }
        let text = format!(
            "{:.1} fps, latency {:.1} ms",
            f64::from(self.frames) / elapsed.as_secs_f64(),
            self.latency_sum_us as f64 / f64::from(self.frames) / 1000.0
        );
        *self = TitleStats::new();
        Some(text)
    }
}
