//! An H.264 elementary stream (`.h264`/`.264`: Annex-B, start codes before each NAL unit, as
//! `ffmpeg -f h264` writes it) as a source: its access units passed through as they are, never
//! decoded here (the capture crate has no codec), so it is served as a recording is: its codec,
//! its size, one rendition. Only constrained baseline (profile 66: no B-frames, so each access
//! unit is one frame in display order) is taken; another profile is refused at open with one
//! line. The first access unit must be a keyframe. A viewer that joins mid-file starts at the
//! file's next keyframe. The file is read in chunks; one NAL unit may be at most [`MAX_NAL`].

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, PixelFormat, SourceInfo,
    now_micros,
};
use framewire_file::h264::{NAL_AUD, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SLICE, NAL_SPS, Sps, sps};
use framewire_pattern::Pacer;

use super::{DEFAULT_FPS, SourceOptions, label, open, open_error, read_error};

/// The largest NAL unit read from a file.
pub const MAX_NAL: usize = 16 << 20;

/// Cuts NAL units out of a byte stream, keeping only the unit being cut in memory.
struct Units {
    r: BufReader<File>,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Units {
    fn new(r: BufReader<File>) -> Units {
        Units {
            r,
            buf: Vec::new(),
            base: 0,
            eof: false,
        }
    }

    /// The next NAL unit (after its start code) and the file offset it starts at; `None` at
    /// the end of the file.
    fn next(&mut self) -> Result<Option<(Vec<u8>, u64)>, String> {
        loop {
            let first = start_code(&self.buf, 0);
            if let Some((_, body)) = first
                && let Some((end, _)) = start_code(&self.buf, body)
            {
                return Ok(Some(self.take(body, end)));
            }
            if self.eof {
                return match first {
                    Some((_, body)) if body < self.buf.len() => {
                        let end = self.buf.len();
                        Ok(Some(self.take(body, end)))
                    }
                    Some(_) => Ok(None),
                    None if self.buf.iter().all(|&b| b == 0) => Ok(None),
                    None => Err(format!(
                        "byte {}: no start code (00 00 01) before it",
                        self.base
                    )),
                };
            }
            if self.buf.len() > MAX_NAL {
                return Err(format!(
                    "byte {}: no NAL unit ends within {MAX_NAL} bytes",
                    self.base
                ));
            }
            self.fill()?;
        }
    }

    /// `buf[body..end]` as a unit (trailing zeros of the next start code left out); drops the
    /// bytes before `end`.
    fn take(&mut self, body: usize, end: usize) -> (Vec<u8>, u64) {
        let mut unit_end = end;
        while unit_end > body && self.buf[unit_end - 1] == 0 {
            unit_end -= 1;
        }
        let unit = self.buf[body..unit_end].to_vec();
        let at = self.base + body as u64;
        self.buf.drain(..end);
        self.base += end as u64;
        (unit, at)
    }

    fn fill(&mut self) -> Result<(), String> {
        self.eof = super::fill(&mut self.r, &mut self.buf, self.base)?;
        Ok(())
    }
}

/// The first start code (00 00 01) at or after `from`: where its zeros begin (a 4-byte one's
/// leading zero included) and where the unit after it begins.
fn start_code(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let at = from + b.get(from..)?.windows(3).position(|w| w == [0, 0, 1])?;
    let zeros = if at > from && b[at - 1] == 0 {
        at - 1
    } else {
        at
    };
    Some((zeros, at + 3))
}

/// An Annex-B H.264 file's access units, paced at `--fps` (30 by default).
pub struct H264Source {
    path: PathBuf,
    units: Units,
    /// A unit read that starts the next access unit, and where it starts.
    next_unit: Option<(Vec<u8>, u64)>,
    /// The first access unit, cut at open, not yet handed out.
    pending: Option<(Vec<u8>, bool)>,
    sps: Sps,
    fps: f64,
    looping: bool,
    pacer: Pacer,
    seq: u64,
}

impl H264Source {
    /// Opens `path` and cuts its first access unit, which must hold the SPS (whose size is the
    /// stream's) and a keyframe.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<H264Source, CaptureError> {
        let fps = options.fps.unwrap_or(DEFAULT_FPS);
        let mut source = H264Source {
            path: path.to_path_buf(),
            units: Units::new(open(path)?),
            next_unit: None,
            pending: None,
            sps: Sps {
                profile: 0,
                constraints: 0,
                width: 0,
                height: 0,
            },
            fps,
            looping: options.looping,
            pacer: Pacer::new(fps),
            seq: 0,
        };
        let mut au = Vec::new();
        let keyframe = match source.cut(&mut au) {
            Ok(Some(keyframe)) => keyframe,
            Ok(None) => return Err(open_error(path, "byte 0: no H.264 access unit".into())),
            Err(e) => return Err(open_error(path, e)),
        };
        if source.sps.profile == 0 {
            return Err(open_error(
                path,
                "byte 0: no SPS before the first picture".into(),
            ));
        }
        if !keyframe {
            return Err(open_error(
                path,
                "byte 0: the first picture is not a keyframe (IDR)".into(),
            ));
        }
        source.pending = Some((au, keyframe));
        Ok(source)
    }

    /// Cuts the next access unit into `au` (start codes before each unit): whether it holds
    /// an IDR picture; `None` at the end of the file.
    fn cut(&mut self, au: &mut Vec<u8>) -> Result<Option<bool>, String> {
        au.clear();
        let (mut picture, mut idr) = (false, false);
        loop {
            let next = match self.next_unit.take() {
                Some(unit) => Some(unit),
                None => self.units.next()?,
            };
            let Some((unit, at)) = next else {
                return Ok(picture.then_some(idr));
            };
            let Some(&header) = unit.first() else {
                continue;
            };
            let kind = header & 0x1F;
            let is_slice = matches!(kind, NAL_SLICE | NAL_IDR);
            // first_mb_in_slice = 0 (ue '1') starts a new picture.
            let first_slice = is_slice && unit.get(1).is_some_and(|b| b & 0x80 != 0);
            let starts_next = matches!(kind, NAL_AUD | NAL_SPS | NAL_PPS | NAL_SEI) || first_slice;
            if picture && starts_next {
                self.next_unit = Some((unit, at));
                return Ok(Some(idr));
            }
            if kind == NAL_SPS {
                let sps = sps(&unit).map_err(|e| format!("byte {at}: {e}"))?;
                if self.sps.profile != 0
                    && (sps.width, sps.height) != (self.sps.width, self.sps.height)
                {
                    return Err(format!(
                        "byte {at}: a {}x{} SPS in a stream of {}x{} (an H.264 file must have one size)",
                        sps.width, sps.height, self.sps.width, self.sps.height
                    ));
                }
                self.sps = sps;
            }
            picture |= is_slice;
            idr |= kind == NAL_IDR;
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(&unit);
        }
    }

    /// Cuts the next access unit into `au`, starting again at the end when looping; paces;
    /// `None` at the end.
    fn advance(&mut self, au: &mut Vec<u8>) -> Result<Option<bool>, CaptureError> {
        let keyframe = match self.pending.take() {
            Some((first, keyframe)) => {
                *au = first;
                keyframe
            }
            None => {
                let mut cut = self.cut(au).map_err(|e| read_error(&self.path, e))?;
                if cut.is_none() && self.looping {
                    self.units = Units::new(open(&self.path)?);
                    self.next_unit = None;
                    cut = self.cut(au).map_err(|e| read_error(&self.path, e))?;
                }
                match cut {
                    Some(keyframe) => keyframe,
                    None => return Ok(None),
                }
            }
        };
        let wait = self.pacer.wait(self.seq, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Ok(Some(keyframe))
    }
}

impl FrameSource for H264Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: label(&self.path),
            width: self.sps.width,
            height: self.sps.height,
            format: PixelFormat::Rgb8,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, _dst: &mut Frame) -> Result<bool, CaptureError> {
        Err(CaptureError::Config(format!(
            "{} is served as it is (H.264, no decode here); it has no frames to resize",
            self.path.display()
        )))
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        Some(CodecKind::H264)
    }

    fn compressed_only(&self) -> bool {
        true
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        let Some(keyframe) = self.advance(&mut dst.data)? else {
            return Ok(false);
        };
        dst.codec = CodecKind::H264;
        dst.width = self.sps.width;
        dst.height = self.sps.height;
        dst.keyframe = keyframe;
        dst.seq = self.seq;
        dst.capture_us = now_micros();
        self.seq += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_after_a_start_code_give_units_or_an_error_never_a_panic() {
        let dir = std::env::temp_dir().join(format!("fw-h264-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut x = 0x2545_f491_u32;
        for case in 0..200 {
            let mut bytes = vec![0, 0, 0, 1, 0x67, 66, 0xC0, 30];
            bytes.extend((0..case * 7).map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Plenty of zeros, so that start codes and empty units come up.
                if x.is_multiple_of(3) { 0 } else { x as u8 % 4 }
            }));
            let path = dir.join("x.h264");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(mut source) = H264Source::open(
                &path,
                &SourceOptions {
                    fps: Some(0.0),
                    looping: false,
                },
            ) {
                let mut frame = CompressedFrame::empty(CodecKind::H264);
                while let Ok(true) = source.next_compressed(&mut frame) {}
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn start_codes_of_three_and_four_bytes_are_found() {
        assert_eq!(start_code(&[0, 0, 0, 1, 0x67], 0), Some((0, 4)));
        assert_eq!(start_code(&[9, 0, 0, 1, 0x67], 0), Some((1, 4)));
        assert_eq!(start_code(&[0, 0, 2], 0), None);
    }
}
