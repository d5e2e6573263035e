//! Finding a GPU adapter and opening a device, with errors that say what to install.

use std::time::Duration;

/// Everything that can go wrong in the display crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisplayError {
    /// No adapter: no GPU driver, not even a software one.
    #[error(
        "no GPU adapter found (tried {backends}); install a Vulkan or OpenGL driver: \
         on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` (software Vulkan, lavapipe) \
         or `libgl1-mesa-dri libegl1` (OpenGL)"
    )]
    NoAdapter {
        /// The backends that were asked, e.g. `Vulkan, GL`.
        backends: String,
    },
    /// The adapter refused to open a device.
    #[error("cannot open the GPU device on {adapter}")]
    Device {
        /// The adapter's name and backend.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// There is no display server to open a window on.
    #[error("no display ({0})")]
    NoDisplay(String),
    /// The window system failed.
    #[error("{context}")]
    Window {
        /// What was being done.
        context: String,
        /// The window system's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A frame that cannot be drawn (zero size, too large, inconsistent buffer).
    #[error("cannot draw frame {seq}: {reason}")]
    Frame {
        /// The frame's sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The GPU did not finish or reported an error.
    #[error("GPU: {0}")]
    Gpu(String),
    /// The thread that fed a window panicked.
    #[error("the thread beside the window panicked")]
    Panicked,
}

/// Whether tests and benches must find a GPU adapter (and a display) instead of skipping:
/// true when `FRAMEWIRE_REQUIRE_GPU=1` or `FRAMEWIRE_REQUIRE_ALL=1` is set (CI sets it).
///
/// The one place this rule lives; every hardware-dependent test asks it.
pub fn hardware_required() -> bool {
    ["FRAMEWIRE_REQUIRE_GPU", "FRAMEWIRE_REQUIRE_ALL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "0"))
}

/// How long a GPU wait (a read-back, a submission) may take before it is an error.
pub(crate) const GPU_TIMEOUT: Duration = Duration::from_secs(10);

/// The backends framewire is built with, honouring `WGPU_BACKEND` when it is set.
pub(crate) fn instance_descriptor() -> wgpu::InstanceDescriptor {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends &= wgpu::Backends::VULKAN | wgpu::Backends::GL;
    if desc.backends.is_empty() {
        desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::GL;
    }
    desc
}

pub(crate) fn backend_names(backends: wgpu::Backends) -> String {
    let mut names = Vec::new();
    if backends.contains(wgpu::Backends::VULKAN) {
        names.push("Vulkan");
    }
    if backends.contains(wgpu::Backends::GL) {
        names.push("GL");
    }
    names.join(", ")
}

/// An adapter with its device and queue.
#[derive(Debug)]
pub struct Gpu {
    /// The adapter the device was opened on.
    pub adapter: wgpu::Adapter,
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
}

impl Gpu {
    /// Opens the first adapter that can draw to `surface` (or any adapter, for `None`).
    pub fn open(
        instance: &wgpu::Instance,
        backends: wgpu::Backends,
        surface: Option<&wgpu::Surface<'_>>,
    ) -> Result<Gpu, DisplayError> {
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: surface,
            apply_limit_buckets: false,
        }))
        .map_err(|_| DisplayError::NoAdapter {
            backends: backend_names(backends),
        })?;
        let info = adapter.get_info();
        let name = format!("{} ({:?})", info.name, info.backend);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("framewire"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        }))
        .map_err(|source| DisplayError::Device {
            adapter: name.clone(),
            source,
        })?;
        tracing::debug!(adapter = %name, "opened GPU device");
        Ok(Gpu {
            adapter,
            device,
            queue,
        })
    }

    /// Opens an adapter for offscreen rendering.
    pub fn headless() -> Result<Gpu, DisplayError> {
        let desc = instance_descriptor();
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        Gpu::open(&instance, backends, None)
    }

    /// The adapter's name and backend, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        let info = self.adapter.get_info();
        format!("{} ({:?})", info.name, info.backend)
    }
}
