//! The headless renderer: draws a frame into an offscreen texture and reads the pixels back.
//!
//! Used by the golden-image tests, the renderer benchmark and `framewire view --snapshot`.
//! The offscreen texture and the read-back buffer are kept and re-created only when the output
//! size changes; read-back rows are padded to wgpu's 256-byte alignment and unpadded here.

use std::sync::mpsc;

use framewire_core::{Frame, PixelFormat};

use crate::gpu::{DisplayError, GPU_TIMEOUT, Gpu};
use crate::renderer::Renderer;

/// The offscreen format: RGBA bytes, as [`Frame`]'s `Rgba8` and PNG expect.
const OFFSCREEN_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

#[derive(Debug)]
struct Target {
    width: u32,
    height: u32,
    padded_row: u32,
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    readback: wgpu::Buffer,
}

/// A [`Renderer`] with its own GPU device and an offscreen target. See the module documentation.
#[derive(Debug)]
pub struct HeadlessRenderer {
    gpu: Gpu,
    renderer: Renderer,
    target: Option<Target>,
}

impl HeadlessRenderer {
    /// Opens a GPU adapter (any backend framewire is built with) for offscreen rendering.
    pub fn new() -> Result<HeadlessRenderer, DisplayError> {
        let gpu = Gpu::headless()?;
        let renderer = Renderer::new(&gpu.device, OFFSCREEN_FORMAT);
        Ok(HeadlessRenderer {
            gpu,
            renderer,
            target: None,
        })
    }

    /// The adapter's name and backend, for messages and bench reports.
    pub fn adapter_name(&self) -> String {
        self.gpu.adapter_name()
    }

    /// The renderer inside, e.g. to ask how many textures it created.
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// Draws `frame` letterboxed into a `width` x `height` image and reads it back into `out`
    /// (re-shaped to an RGBA frame of that size, keeping its allocation; `seq` and `capture_us`
    /// are copied from `frame`).
    pub fn render(
        &mut self,
        frame: &Frame,
        width: u32,
        height: u32,
        out: &mut Frame,
    ) -> Result<(), DisplayError> {
        if width == 0 || height == 0 {
            return Err(DisplayError::Frame {
                seq: frame.seq,
                reason: format!("output size {width}x{height} has no pixels"),
            });
        }
        let (device, queue) = (&self.gpu.device, &self.gpu.queue);
        self.renderer.upload(device, queue, frame)?;
        let max = device.limits().max_texture_dimension_2d;
        if width > max || height > max {
            return Err(DisplayError::Frame {
                seq: frame.seq,
                reason: format!(
                    "output size {width}x{height} exceeds the GPU's largest texture, {max}x{max}"
                ),
            });
        }
        if self
            .target
            .as_ref()
            .is_none_or(|t| (t.width, t.height) != (width, height))
        {
            self.target = Some(create_target(device, width, height));
        }
        let Some(target) = &self.target else {
            return Err(DisplayError::Gpu("no offscreen target".into()));
        };

        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("framewire headless"),
        });
        self.renderer
            .render(&mut encoder, &target.view, width, height);
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &target.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &target.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(target.padded_row),
                    rows_per_image: Some(height),
                },
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
        let submission = queue.submit([encoder.finish()]);

        let slice = target.readback.slice(..);
        let (tx, rx) = mpsc::sync_channel(1);
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = tx.send(result);
        });
        device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: Some(GPU_TIMEOUT),
            })
            .map_err(|e| {
                DisplayError::Gpu(format!(
                    "waiting for the frame to be drawn and read back: {e}"
                ))
            })?;
        rx.recv_timeout(GPU_TIMEOUT)
            .map_err(|_| DisplayError::Gpu("the read-back buffer was never mapped".into()))?
            .map_err(|e| DisplayError::Gpu(format!("mapping the read-back buffer: {e}")))?;

        out.reset(width, height, PixelFormat::Rgba8);
        out.seq = frame.seq;
        out.capture_us = frame.capture_us;
        {
            let mapped = slice
                .get_mapped_range()
                .map_err(|e| DisplayError::Gpu(format!("reading the read-back buffer: {e}")))?;
            let row = width as usize * 4;
            for (dst, src) in out
                .pixels
                .chunks_exact_mut(row)
                .zip(mapped.chunks(target.padded_row as usize))
            {
                dst.copy_from_slice(&src[..row]);
            }
        }
        target.readback.unmap();
        Ok(())
    }
}

fn create_target(device: &wgpu::Device, width: u32, height: u32) -> Target {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("framewire offscreen"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: OFFSCREEN_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let padded_row = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("framewire read-back"),
        size: u64::from(padded_row) * u64::from(height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    Target {
        width,
        height,
        padded_row,
        texture,
        view,
        readback,
    }
}
