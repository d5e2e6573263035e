//! The thin layer over nokhwa (feature `camera`, V4L2): lists cameras and their modes and reads
//! one as a [`FrameSource`]. What is worth testing (the mode choice, the conversions, MJPEG
//! passthrough) lives in `negotiate` and `convert`, which build and run without a camera.

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, PixelFormat, SourceInfo,
    now_micros,
};
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use nokhwa::{Camera, NokhwaError};

use crate::convert::{self, mjpeg_passthrough};
use crate::negotiate::{CameraDescription, CameraMode, FourCc, negotiate};

/// The layouts framewire reads, in nokhwa's words.
const READABLE: [FrameFormat; 3] = [FrameFormat::MJPEG, FrameFormat::YUYV, FrameFormat::NV12];

fn fourcc(format: FrameFormat) -> Option<FourCc> {
    match format {
        FrameFormat::MJPEG => Some(FourCc::Mjpeg),
        FrameFormat::YUYV => Some(FourCc::Yuyv),
        FrameFormat::NV12 => Some(FourCc::Nv12),
        _ => None,
    }
}

fn frame_format(fourcc: FourCc) -> FrameFormat {
    match fourcc {
        FourCc::Mjpeg => FrameFormat::MJPEG,
        FourCc::Yuyv => FrameFormat::YUYV,
        FourCc::Nv12 => FrameFormat::NV12,
    }
}

/// `camera:0 (/dev/video0)`: how errors name a camera.
pub(crate) fn device_name(index: u32) -> String {
    format!("camera:{index} (/dev/video{index})")
}

/// Turns a nokhwa error into one line that says what to do.
fn open_error(index: u32, e: &NokhwaError) -> CaptureError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let reason = if lower.contains("busy") {
        format!(
            "the camera is busy (another program is using it): {text}; close that program, or use --source test"
        )
    } else if lower.contains("no such file") || lower.contains("no such device") {
        "no such camera; `framewire devices` lists the cameras there are, or use --source test"
            .to_string()
    } else if lower.contains("permission denied") {
        format!("{text}; add yourself to the `video` group, or use --source test")
    } else {
        format!(
            "{text}; `framewire devices` lists the cameras and their formats, or use --source test"
        )
    };
    CaptureError::Open {
        source_name: device_name(index),
        reason,
    }
}

fn modes_of(camera: &mut Camera) -> Result<Vec<CameraMode>, NokhwaError> {
    let mut modes: Vec<CameraMode> = camera
        .compatible_camera_formats()?
        .into_iter()
        .filter_map(|f| {
            Some(CameraMode::new(
                fourcc(f.format())?,
                f.width(),
                f.height(),
                f.frame_rate(),
            ))
        })
        .collect();
    modes.sort_by_key(|m| (m.fourcc.name(), m.width, m.height, std::cmp::Reverse(m.fps)));
    modes.dedup();
    Ok(modes)
}

fn open_any(index: u32) -> Result<Camera, NokhwaError> {
    Camera::with_backend(
        CameraIndex::Index(index),
        RequestedFormat::with_formats(RequestedFormatType::None, &READABLE),
        ApiBackend::Video4Linux,
    )
}

/// Every camera V4L2 knows, with the modes framewire can read. Empty when there is none.
pub fn list_cameras() -> Result<Vec<CameraDescription>, CaptureError> {
    let infos = nokhwa::query(ApiBackend::Video4Linux).map_err(|e| CaptureError::Backend {
        context: "cannot list the cameras".to_string(),
        source: Box::new(e),
    })?;
    let mut cameras = Vec::new();
    for info in infos {
        let Ok(index) = info.index().as_index() else {
            continue;
        };
        let modes = open_any(index)
            .and_then(|mut camera| modes_of(&mut camera))
            .map_err(|e| open_error(index, &e).to_string());
        cameras.push(CameraDescription {
            index,
            path: format!("/dev/video{index}"),
            name: info.human_name(),
            modes,
        });
    }
    Ok(cameras)
}

/// A camera read through nokhwa, converted to RGB or handed over as MJPEG.
pub struct CameraSource {
    camera: Camera,
    index: u32,
    mode: CameraMode,
    name: String,
    next_seq: u64,
    scratch: Vec<u8>,
}

impl CameraSource {
    /// Opens camera `index` in the mode closest to `width` x `height` at `fps` and starts it.
    pub fn open(
        index: u32,
        width: u32,
        height: u32,
        fps: f64,
    ) -> Result<CameraSource, CaptureError> {
        let mut probe = open_any(index).map_err(|e| open_error(index, &e))?;
        let offered = modes_of(&mut probe).map_err(|e| open_error(index, &e))?;
        drop(probe);
        let Some(mode) = negotiate(&offered, width, height, fps) else {
            return Err(CaptureError::Open {
                source_name: device_name(index),
                reason: "the camera offers no format framewire reads (MJPG, YUYV or NV12); \
                         `framewire devices` lists its formats, or use --source test"
                    .to_string(),
            });
        };
        let format =
            CameraFormat::new_from(mode.width, mode.height, frame_format(mode.fourcc), mode.fps);
        let wanted = [frame_format(mode.fourcc)];
        let mut camera = Camera::with_backend(
            CameraIndex::Index(index),
            RequestedFormat::with_formats(RequestedFormatType::Exact(format), &wanted),
            ApiBackend::Video4Linux,
        )
        .map_err(|e| open_error(index, &e))?;
        camera.open_stream().map_err(|e| open_error(index, &e))?;
        let human = camera.info().human_name();
        tracing::info!(camera = index, %mode, "camera opened");
        Ok(CameraSource {
            camera,
            index,
            mode,
            name: format!("{} '{human}' {mode}", device_name(index)),
            next_seq: 0,
            scratch: Vec::new(),
        })
    }

    fn read(&mut self) -> Result<std::borrow::Cow<'_, [u8]>, CaptureError> {
        let index = self.index;
        self.camera.frame_raw().map_err(|e| CaptureError::Device {
            source_name: device_name(index),
            reason: format!(
                "{e}; it may have been unplugged: `framewire devices` lists the cameras, or use --source test"
            ),
        })
    }

    fn bad_frame(&self, e: convert::ConvertError) -> CaptureError {
        CaptureError::Device {
            source_name: device_name(self.index),
            reason: format!("unreadable {} frame: {e}", self.mode.fourcc),
        }
    }
}

impl FrameSource for CameraSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            width: self.mode.width,
            height: self.mode.height,
            format: PixelFormat::Rgb8,
            fps: f64::from(self.mode.fps),
        }
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        let (fourcc, w, h) = (self.mode.fourcc, self.mode.width, self.mode.height);
        let mut scratch = std::mem::take(&mut self.scratch);
        let converted = {
            let bytes = self.read()?;
            let at = now_micros();
            convert::to_rgb(fourcc, &bytes, w, h, dst, &mut scratch).map(|()| at)
        };
        self.scratch = scratch;
        let at = converted.map_err(|e| self.bad_frame(e))?;
        dst.capture_us = at;
        dst.seq = self.next_seq;
        self.next_seq += 1;
        Ok(true)
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        (self.mode.fourcc == FourCc::Mjpeg).then_some(CodecKind::Jpeg)
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        if self.mode.fourcc != FourCc::Mjpeg {
            return Err(CaptureError::Config(format!(
                "{} delivers {}, not JPEG",
                device_name(self.index),
                self.mode.fourcc
            )));
        }
        let (w, h) = (self.mode.width, self.mode.height);
        let mut data = std::mem::take(&mut dst.data);
        let got = {
            let bytes = self.read()?;
            let at = now_micros();
            mjpeg_passthrough(&bytes, &mut data).map(|info| (info, at))
        };
        dst.data = data;
        let (info, at) = got.map_err(|e| self.bad_frame(e))?;
        if (info.width, info.height) != (w, h) {
            return Err(self.bad_frame(convert::ConvertError::BadJpeg {
                at: 0,
                len: dst.data.len(),
                reason: "the JPEG's size is not the size the camera was set to",
            }));
        }
        dst.codec = CodecKind::Jpeg;
        dst.width = w;
        dst.height = h;
        dst.capture_us = at;
        dst.seq = self.next_seq;
        self.next_seq += 1;
        Ok(true)
    }
}
