//! Camera format negotiation: from the modes a camera offers, pick the one closest to the
//! size and frame rate the user asked for, preferring MJPEG. Pure: tested on format lists.

use std::fmt;

/// How a camera lays out the bytes of a frame; only the layouts framewire can turn into RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FourCc {
    /// A JPEG picture per frame (Motion JPEG).
    Mjpeg,
    /// Packed 4:2:2: `Y0 U Y1 V` for each pair of pixels.
    Yuyv,
    /// 4:2:0: a plane of Y, then a half-height plane of interleaved `U V`.
    Nv12,
}

impl FourCc {
    /// Every layout, in the order negotiation prefers them when all else is equal.
    pub const ALL: [FourCc; 3] = [FourCc::Mjpeg, FourCc::Yuyv, FourCc::Nv12];

    /// The V4L2 name: `MJPG`, `YUYV`, `NV12`.
    pub const fn name(self) -> &'static str {
        match self {
            FourCc::Mjpeg => "MJPG",
            FourCc::Yuyv => "YUYV",
            FourCc::Nv12 => "NV12",
        }
    }

    /// Bytes one `width` x `height` frame takes, or `None` for compressed frames (any size).
    pub fn frame_bytes(self, width: u32, height: u32) -> Option<usize> {
        let pixels = width as usize * height as usize;
        match self {
            FourCc::Mjpeg => None,
            FourCc::Yuyv => Some(pixels * 2),
            FourCc::Nv12 => Some(pixels + pixels / 2),
        }
    }

    fn preference(self) -> usize {
        FourCc::ALL
            .iter()
            .position(|f| *f == self)
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One way a camera can stream: a layout, a size and a frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraMode {
    /// Byte layout of the frames.
    pub fourcc: FourCc,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl CameraMode {
    /// A mode; for tables of modes in tests and camera listings.
    pub const fn new(fourcc: FourCc, width: u32, height: u32, fps: u32) -> CameraMode {
        CameraMode {
            fourcc,
            width,
            height,
            fps,
        }
    }
}

impl fmt::Display for CameraMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} at {} fps",
            self.fourcc, self.width, self.height, self.fps
        )
    }
}

/// A camera as `framewire devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraDescription {
    /// The index `--source camera:N` takes.
    pub index: u32,
    /// The device node, `/dev/videoN`.
    pub path: String,
    /// The name the driver gives.
    pub name: String,
    /// The modes it offers in layouts framewire reads, or why they could not be read (busy).
    pub modes: Result<Vec<CameraMode>, String>,
}

/// Picks the mode of `offered` closest to `width` x `height` at `fps` (0 = as fast as possible):
///
/// 1. the size closest to the asked one (sum of the width and height differences; on a tie,
///    the larger size, which resizes down cleanly);
/// 2. at that size, the frame rate closest to the asked one (0: the highest; on a tie, the
///    higher rate);
/// 3. on the same rate, MJPEG before YUYV before NV12: a USB 2 camera can send 1080p at
///    30 fps only compressed, and MJPEG frames can go on the wire as they are.
///
/// `None` when `offered` is empty.
pub fn negotiate(offered: &[CameraMode], width: u32, height: u32, fps: f64) -> Option<CameraMode> {
    let size_distance =
        |m: &CameraMode| u64::from(m.width.abs_diff(width)) + u64::from(m.height.abs_diff(height));
    let area = |m: &CameraMode| u64::from(m.width) * u64::from(m.height);
    let best_size = offered
        .iter()
        .min_by(|a, b| {
            size_distance(a)
                .cmp(&size_distance(b))
                .then(area(b).cmp(&area(a)))
        })
        .map(|m| (m.width, m.height))?;
    let fps_distance = |m: &CameraMode| {
        if fps > 0.0 {
            (f64::from(m.fps) - fps).abs()
        } else {
            -f64::from(m.fps)
        }
    };
    offered
        .iter()
        .filter(|m| (m.width, m.height) == best_size)
        .min_by(|a, b| {
            fps_distance(a)
                .total_cmp(&fps_distance(b))
                .then(b.fps.cmp(&a.fps))
                .then(a.fourcc.preference().cmp(&b.fourcc.preference()))
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::FourCc::{Mjpeg, Nv12, Yuyv};
    use super::*;

    /// A typical USB 2 webcam: YUYV is slow at large sizes, MJPEG is 30 fps everywhere.
    const WEBCAM: &[CameraMode] = &[
        CameraMode::new(Yuyv, 640, 480, 30),
        CameraMode::new(Yuyv, 640, 480, 15),
        CameraMode::new(Yuyv, 1280, 720, 10),
        CameraMode::new(Yuyv, 1920, 1080, 5),
        CameraMode::new(Mjpeg, 640, 480, 30),
        CameraMode::new(Mjpeg, 1280, 720, 30),
        CameraMode::new(Mjpeg, 1920, 1080, 30),
        CameraMode::new(Mjpeg, 1920, 1080, 15),
        CameraMode::new(Yuyv, 320, 240, 30),
    ];

    fn check(offered: &[CameraMode], asked: (u32, u32, f64), want: Option<CameraMode>) {
        assert_eq!(
            negotiate(offered, asked.0, asked.1, asked.2),
            want,
            "asked {asked:?}"
        );
    }

    #[test]
    fn picks_the_closest_size_then_rate_preferring_mjpeg() {
        check(
            WEBCAM,
            (640, 480, 30.0),
            Some(CameraMode::new(Mjpeg, 640, 480, 30)),
        );
        check(
            WEBCAM,
            (1920, 1080, 30.0),
            Some(CameraMode::new(Mjpeg, 1920, 1080, 30)),
        );
        check(
            WEBCAM,
            (1920, 1080, 15.0),
            Some(CameraMode::new(Mjpeg, 1920, 1080, 15)),
        );
        check(
            WEBCAM,
            (1920, 1080, 5.0),
            Some(CameraMode::new(Yuyv, 1920, 1080, 5)),
        );
        check(
            WEBCAM,
            (320, 240, 30.0),
            Some(CameraMode::new(Yuyv, 320, 240, 30)),
        );
        check(
            WEBCAM,
            (640, 480, 14.0),
            Some(CameraMode::new(Yuyv, 640, 480, 15)),
        );
        // Not offered: the nearest size, then the nearest rate.
        check(
            WEBCAM,
            (1280, 800, 25.0),
            Some(CameraMode::new(Mjpeg, 1280, 720, 30)),
        );
        check(
            WEBCAM,
            (300, 200, 60.0),
            Some(CameraMode::new(Yuyv, 320, 240, 30)),
        );
        check(
            WEBCAM,
            (4000, 3000, 30.0),
            Some(CameraMode::new(Mjpeg, 1920, 1080, 30)),
        );
        // Unpaced: the highest rate at the size.
        check(
            WEBCAM,
            (1920, 1080, 0.0),
            Some(CameraMode::new(Mjpeg, 1920, 1080, 30)),
        );
    }

    #[test]
    fn ties_go_to_the_larger_size_and_the_higher_rate() {
        let modes = [
            CameraMode::new(Nv12, 600, 400, 20),
            CameraMode::new(Nv12, 800, 600, 20),
            CameraMode::new(Nv12, 800, 600, 40),
        ];
        check(&modes, (700, 500, 30.0), Some(modes[2]));
    }

    #[test]
    fn without_mjpeg_prefers_yuyv_over_nv12_at_the_same_rate() {
        let modes = [
            CameraMode::new(Nv12, 640, 480, 30),
            CameraMode::new(Yuyv, 640, 480, 30),
        ];
        check(&modes, (640, 480, 30.0), Some(modes[1]));
        check(&modes[..1], (640, 480, 30.0), Some(modes[0]));
    }

    #[test]
    fn nothing_offered_is_none() {
        check(&[], (640, 480, 30.0), None);
    }

    #[test]
    fn modes_display_like_v4l2_tools() {
        assert_eq!(
            CameraMode::new(Mjpeg, 1280, 720, 30).to_string(),
            "MJPG 1280x720 at 30 fps"
        );
        assert_eq!(Yuyv.frame_bytes(4, 2), Some(16));
        assert_eq!(Nv12.frame_bytes(4, 2), Some(12));
        assert_eq!(Mjpeg.frame_bytes(4, 2), None);
    }
}
