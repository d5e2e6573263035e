//! The wgpu renderer: uploads a frame to a texture and draws it, letterboxed, into any texture view.
//!
//! The renderer knows nothing of windows: a window's surface texture and an offscreen texture
//! are both just a [`wgpu::TextureView`] of some size. RGBA frames are written straight into the
//! frame texture; RGB and BGR frames (3 bytes per pixel, which no GPU texture format holds) are
//! written to a storage buffer and expanded to RGBA by a compute shader, so the CPU never touches each
//! pixel and nothing is allocated per frame. The frame texture and buffer are re-created only
//! when the frame's size or format changes.

use framewire_core::{Frame, PixelFormat};

use crate::gpu::DisplayError;

/// Where a frame of `frame_w` x `frame_h` lands in a `target_w` x `target_h` target, keeping
/// its aspect ratio and centring it: `(x, y, width, height)` in whole pixels. The rest of the
/// target is black bars (above and below, or left and right).
pub fn letterbox(frame_w: u32, frame_h: u32, target_w: u32, target_h: u32) -> (u32, u32, u32, u32) {
    if frame_w == 0 || frame_h == 0 || target_w == 0 || target_h == 0 {
        return (0, 0, 0, 0);
    }
    let (fw, fh, tw, th) = (
        u64::from(frame_w),
        u64::from(frame_h),
        u64::from(target_w),
        u64::from(target_h),
    );
    // Compare tw/th with fw/fh without floating point.
    let (w, h) = if tw * fh <= th * fw {
        // Target is narrower than the frame: full width, bars above and below.
        (tw, ((tw * fh + fw / 2) / fw).clamp(1, th))
    } else {
        (((th * fw + fh / 2) / fh).clamp(1, tw), th)
    };
    (
        ((tw - w) / 2) as u32,
        ((th - h) / 2) as u32,
        w as u32,
        h as u32,
    )
}

/// The frame texture and what writes to it, for one frame size and format.
#[derive(Debug)]
struct FrameTexture {
    width: u32,
    height: u32,
    format: PixelFormat,
    texture: wgpu::Texture,
    draw_bind_group: wgpu::BindGroup,
    /// For RGB frames: the packed-bytes buffer and the bind group of the expand pass.
    expand: Option<(wgpu::Buffer, wgpu::BindGroup)>,
}

/// Draws frames into texture views. See the module documentation.
#[derive(Debug)]
pub struct Renderer {
    draw_pipeline: wgpu::RenderPipeline,
    draw_layout: wgpu::BindGroupLayout,
    expand_pipeline: wgpu::ComputePipeline,
    /// The same for BGR frames: the shader reads each pixel's bytes the other way round.
    expand_bgr_pipeline: wgpu::ComputePipeline,
    expand_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    target_format: wgpu::TextureFormat,
    max_dimension: u32,
    max_buffer: u64,
    frame: Option<FrameTexture>,
    /// An RGB frame waits here to be expanded by the next [`Renderer::render`].
    expand_pending: bool,
    /// Rows repacked for upload when a frame's rows are padded or its size is not a multiple of 4.
    scratch: Vec<u8>,
    textures_created: u64,
}

const FRAME_TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

impl Renderer {
    /// A renderer drawing into views of `target_format` (a surface's format, or an offscreen one).
    ///
    /// Frame bytes are sRGB-encoded values: into a non-sRGB target they are copied as they are;
    /// into an sRGB target they are sampled through an sRGB view so they come out unchanged too.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Renderer {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("framewire shaders"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shaders.wgsl").into()),
        });
        let draw_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("framewire draw"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let expand_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("framewire expand"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::WriteOnly,
                        format: FRAME_TEXTURE_FORMAT,
                        view_dimension: wgpu::TextureViewDimension::D2,
                    },
                    count: None,
                },
            ],
        });
        let draw_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("framewire draw"),
            bind_group_layouts: &[Some(&draw_layout)],
            immediate_size: 0,
        });
        let draw_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("framewire draw"),
            layout: Some(&draw_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let expand_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("framewire expand"),
                bind_group_layouts: &[Some(&expand_layout)],
                immediate_size: 0,
            });
        let expand = |entry_point: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&expand_pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let (expand_pipeline, expand_bgr_pipeline) = (expand("expand_rgb"), expand("expand_bgr"));
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("framewire frame"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let limits = device.limits();
        Renderer {
            draw_pipeline,
            draw_layout,
            expand_pipeline,
            expand_bgr_pipeline,
            expand_layout,
            sampler,
            target_format,
            max_dimension: limits.max_texture_dimension_2d,
            max_buffer: limits
                .max_buffer_size
                .min(limits.max_storage_buffer_binding_size),
            frame: None,
            expand_pending: false,
            scratch: Vec::new(),
            textures_created: 0,
        }
    }

    /// The format of the views this renderer draws into.
    pub fn target_format(&self) -> wgpu::TextureFormat {
        self.target_format
    }

    /// Size of the frame last uploaded, if any.
    pub fn frame_size(&self) -> Option<(u32, u32)> {
        self.frame.as_ref().map(|f| (f.width, f.height))
    }

    /// How many times a frame texture was created: once per change of frame size or format.
    pub fn textures_created(&self) -> u64 {
        self.textures_created
    }

    /// Writes `frame` to the GPU; the next [`Renderer::render`] draws it.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: &Frame,
    ) -> Result<(), DisplayError> {
        let bad = |reason: String| DisplayError::Frame {
            seq: frame.seq,
            reason,
        };
        frame.validate().map_err(|e| bad(e.to_string()))?;
        if frame.width == 0 || frame.height == 0 {
            return Err(bad(format!(
                "{}x{} has no pixels, expected at least 1x1",
                frame.width, frame.height
            )));
        }
        if frame.width > self.max_dimension || frame.height > self.max_dimension {
            return Err(bad(format!(
                "{}x{} exceeds the GPU's largest texture, {max}x{max}",
                frame.width,
                frame.height,
                max = self.max_dimension
            )));
        }
        let format = frame.format;
        if !matches!(
            format,
            PixelFormat::Rgb8 | PixelFormat::Rgba8 | PixelFormat::Bgr8
        ) {
            return Err(bad(format!("pixel format {format} is not drawable")));
        }
        let packed_len = frame.row_bytes() * frame.height as usize;
        let buffer_len = (packed_len as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        if format.bytes_per_pixel() == 3 && buffer_len > self.max_buffer {
            return Err(bad(format!(
                "{}x{} {format} needs a {buffer_len}-byte GPU buffer, the GPU allows {}",
                frame.width, frame.height, self.max_buffer
            )));
        }
        let reuse = self
            .frame
            .as_ref()
            .is_some_and(|f| (f.width, f.height, f.format) == (frame.width, frame.height, format));
        if !reuse {
            self.frame = Some(self.create_frame_texture(device, frame, buffer_len));
        }
        let Some(target) = &self.frame else {
            return Err(bad("no frame texture".into()));
        };
        let size = wgpu::Extent3d {
            width: frame.width,
            height: frame.height,
            depth_or_array_layers: 1,
        };
        match &target.expand {
            None => {
                // RGBA: straight into the texture; padded rows are fine when whole pixels.
                let (bytes, stride) = if frame.stride.is_multiple_of(4) {
                    (&frame.pixels[..], frame.stride)
                } else {
                    repack(frame, &mut self.scratch, packed_len);
                    (&self.scratch[..], frame.row_bytes())
                };
                queue.write_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: &target.texture,
                        mip_level: 0,
                        origin: wgpu::Origin3d::ZERO,
                        aspect: wgpu::TextureAspect::All,
                    },
                    bytes,
                    wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(stride as u32),
                        rows_per_image: Some(frame.height),
                    },
                    size,
                );
            }
            Some((buffer, _)) => {
                // RGB or BGR: packed bytes into the storage buffer; the compute pass expands them.
                if frame.is_packed() && packed_len as u64 == buffer_len {
                    queue.write_buffer(buffer, 0, &frame.pixels[..packed_len]);
                } else {
                    repack(frame, &mut self.scratch, buffer_len as usize);
                    queue.write_buffer(buffer, 0, &self.scratch);
                }
                self.expand_pending = true;
            }
        }
        Ok(())
    }

    fn create_frame_texture(
        &mut self,
        device: &wgpu::Device,
        frame: &Frame,
        buffer_len: u64,
    ) -> FrameTexture {
        self.textures_created += 1;
        tracing::debug!(
            width = frame.width,
            height = frame.height,
            format = %frame.format,
            "creating the frame texture"
        );
        let rgb = frame.format.bytes_per_pixel() == 3;
        let srgb_view = self.target_format.is_srgb();
        let view_formats: &[wgpu::TextureFormat] = if srgb_view {
            &[wgpu::TextureFormat::Rgba8UnormSrgb]
        } else {
            &[]
        };
        let mut usage = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST;
        if rgb {
            usage |= wgpu::TextureUsages::STORAGE_BINDING;
        }
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("framewire frame"),
            size: wgpu::Extent3d {
                width: frame.width,
                height: frame.height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FRAME_TEXTURE_FORMAT,
            usage,
            view_formats,
        });
        let sample_view = texture.create_view(&wgpu::TextureViewDescriptor {
            format: Some(if srgb_view {
                wgpu::TextureFormat::Rgba8UnormSrgb
            } else {
                FRAME_TEXTURE_FORMAT
            }),
            ..Default::default()
        });
        let draw_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("framewire draw"),
            layout: &self.draw_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&sample_view),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
            ],
        });
        let expand = rgb.then(|| {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("framewire rgb bytes"),
                size: buffer_len,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let storage_view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("framewire expand"),
                layout: &self.expand_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&storage_view),
                    },
                ],
            });
            (buffer, bind_group)
        });
        FrameTexture {
            width: frame.width,
            height: frame.height,
            format: frame.format,
            texture,
            draw_bind_group,
            expand,
        }
    }

    /// Records, into `encoder`, drawing the last uploaded frame into `target` (a view of
    /// `target_w` x `target_h` pixels in this renderer's target format), letterboxed with black
    /// bars. Before any frame was uploaded, it clears the target to black.
    pub fn render(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        target_w: u32,
        target_h: u32,
    ) {
        self.render_in(encoder, target, (0, 0, target_w, target_h), true);
    }

    /// Records drawing the last uploaded frame letterboxed into the rectangle `area` (`x, y,
    /// width, height` in pixels) of `target`: after clearing the whole target to black when
    /// `clear`, else over what it holds (a picture-in-picture inset, drawn after the main
    /// picture, with its own black bars inside `area`). Draws nothing before a frame was uploaded.
    pub fn render_in(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        area: (u32, u32, u32, u32),
        clear: bool,
    ) {
        if let Some(frame) = &self.frame
            && self.expand_pending
            && let Some((_, bind_group)) = &frame.expand
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("framewire expand"),
                timestamp_writes: None,
            });
            pass.set_pipeline(if frame.format == PixelFormat::Bgr8 {
                &self.expand_bgr_pipeline
            } else {
                &self.expand_pipeline
            });
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(frame.width.div_ceil(8), frame.height.div_ceil(8), 1);
        }
        self.expand_pending = false;

        let load = if clear {
            wgpu::LoadOp::Clear(wgpu::Color::BLACK)
        } else {
            wgpu::LoadOp::Load
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("framewire draw"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: target,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load,
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        let Some(frame) = &self.frame else {
            return;
        };
        let (ax, ay, aw, ah) = area;
        let (x, y, w, h) = letterbox(frame.width, frame.height, aw, ah);
        if w == 0 || h == 0 {
            return;
        }
        pass.set_viewport(
            (ax + x) as f32,
            (ay + y) as f32,
            w as f32,
            h as f32,
            0.0,
            1.0,
        );
        pass.set_pipeline(&self.draw_pipeline);
        pass.set_bind_group(0, &frame.draw_bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

/// Where a picture-in-picture inset goes in a `target_w` x `target_h` target: a third of its
/// width and height, in the bottom right corner, one sixty-fourth of the width in from the edges.
pub fn inset_area(target_w: u32, target_h: u32) -> (u32, u32, u32, u32) {
    let (w, h) = ((target_w / 3).max(1), (target_h / 3).max(1));
    let margin = target_w / 64;
    (
        target_w.saturating_sub(w + margin),
        target_h.saturating_sub(h + margin),
        w,
        h,
    )
}

/// Copies `frame`'s rows, without padding, into `dst`, zero-filled to `len` bytes.
fn repack(frame: &Frame, dst: &mut Vec<u8>, len: usize) {
    dst.clear();
    for y in 0..frame.height {
        dst.extend_from_slice(frame.row(y));
    }
    dst.resize(len, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_keeps_aspect_and_centres() {
        let check = |frame: (u32, u32), target: (u32, u32), want: (u32, u32, u32, u32)| {
            assert_eq!(
                letterbox(frame.0, frame.1, target.0, target.1),
                want,
                "{frame:?} in {target:?}"
            );
        };
        check((640, 480), (640, 480), (0, 0, 640, 480));
        check((640, 480), (1280, 960), (0, 0, 1280, 960));
        // Wider target: bars left and right.
        check((640, 480), (1000, 480), (180, 0, 640, 480));
        // Taller target: bars above and below.
        check((640, 480), (640, 800), (0, 160, 640, 480));
        check((1920, 1080), (640, 480), (0, 60, 640, 360));
        check((16, 9), (1, 1), (0, 0, 1, 1));
        check((1, 1000), (100, 10), (49, 0, 1, 10));
        check((0, 10), (100, 100), (0, 0, 0, 0));
        check((10, 10), (0, 100), (0, 0, 0, 0));
        check((16384, 1), (16384, 16384), (0, 8191, 16384, 1));
    }

    #[test]
    fn inset_sits_in_the_bottom_right_corner() {
        assert_eq!(inset_area(640, 480), (417, 310, 213, 160));
        assert_eq!(inset_area(3, 3), (2, 2, 1, 1));
        assert_eq!(inset_area(0, 0), (0, 0, 1, 1));
    }
}
