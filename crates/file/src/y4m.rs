//! YUV4MPEG2 (`.y4m`), the uncompressed format ffmpeg and GStreamer read and write: a header
//! line `YUV4MPEG2 W1280 H720 F30:1 Ip A1:1 C420jpeg`, then per frame a line `FRAME` and the
//! Y, U and V planes. [`Reader`] takes 4:2:0 (any siting), 4:2:2 and 4:4:4 at 8 bits;
//! [`Writer`] writes 4:4:4 (BT.601, limited range) from RGB frames, losing nothing to chroma
//! subsampling. Header lines are bounded, frame sizes are checked against
//! [`MAX_SIDE`](framewire_core::MAX_SIDE), and a frame is read only as far as the file holds it.

use std::io::{Read, Write};

use framewire_core::{Frame, MAX_SIDE};

use crate::{FileError, read_up_to};

/// The longest header or `FRAME` line read, in bytes.
pub const MAX_LINE: usize = 4096;

/// How the chroma planes are subsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// Half width, half height.
    C420,
    /// Half width, full height.
    C422,
    /// Full size.
    C444,
}

impl Chroma {
    /// The chroma planes' size for a `width` x `height` picture.
    pub fn plane_size(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Chroma::C420 => (width.div_ceil(2), height.div_ceil(2)),
            Chroma::C422 => (width.div_ceil(2), height),
            Chroma::C444 => (width, height),
        }
    }
}

/// What a Y4M header says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second, when the header gives a rate.
    pub fps: Option<f64>,
    /// Chroma subsampling.
    pub chroma: Chroma,
}

impl Header {
    /// Bytes of one frame's planes.
    pub fn frame_bytes(&self) -> u64 {
        let (cw, ch) = self.chroma.plane_size(self.width, self.height);
        u64::from(self.width) * u64::from(self.height) + 2 * u64::from(cw) * u64::from(ch)
    }

    /// Parses a header line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Header, HeaderError> {
        let line = std::str::from_utf8(line).map_err(|_| HeaderError::NotAscii)?;
        let mut tokens = line.split(' ');
        if tokens.next() != Some("YUV4MPEG2") {
            return Err(HeaderError::Magic);
        }
        let (mut width, mut height, mut fps, mut chroma) = (None, None, None, Chroma::C420);
        for token in tokens.filter(|t| !t.is_empty()) {
            let (key, value) = token.split_at(1);
            match key {
                "W" => width = Some(side(value, "width")?),
                "H" => height = Some(side(value, "height")?),
                "F" => fps = rate(value)?,
                "C" => {
                    chroma = match value {
                        "420" | "420jpeg" | "420paldv" | "420mpeg2" => Chroma::C420,
                        "422" => Chroma::C422,
                        "444" => Chroma::C444,
                        other => return Err(HeaderError::Colour(other.to_string())),
                    }
                }
                // Interlacing, aspect ratio and extensions do not change the bytes.
                _ => {}
            }
        }
        let width = width.ok_or(HeaderError::No("width (W)"))?;
        let height = height.ok_or(HeaderError::No("height (H)"))?;
        Ok(Header {
            width,
            height,
            fps,
            chroma,
        })
    }
}

/// What is wrong with a Y4M header line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Bytes that are not text.
    #[error("header is not ASCII")]
    NotAscii,
    /// Another format.
    #[error("not a Y4M file (wrong magic, expected YUV4MPEG2)")]
    Magic,
    /// A colour space framewire does not read.
    #[error("colour space C{0} is not read; framewire reads 8-bit 420, 422 and 444")]
    Colour(String),
    /// A field every header has.
    #[error("header has no {0}")]
    No(&'static str),
    /// A width or height out of range.
    #[error("{what} {value:?} is not 1 to {MAX_SIDE}")]
    Side {
        /// `width` or `height`.
        what: &'static str,
        /// As written.
        value: String,
    },
    /// A frame rate that is not `N:D`, or above 1000 fps.
    #[error("frame rate F{value} is not N:D of at most 1000 fps")]
    Rate {
        /// As written.
        value: String,
    },
}

fn side(value: &str, what: &'static str) -> Result<u32, HeaderError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
        _ => Err(HeaderError::Side {
            what,
            value: value.to_string(),
        }),
    }
}

fn rate(value: &str) -> Result<Option<f64>, HeaderError> {
    let bad = || HeaderError::Rate {
        value: value.to_string(),
    };
    let (n, d) = value.split_once(':').ok_or_else(bad)?;
    let (n, d) = (
        n.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    if n == 0 || d == 0 {
        return Ok(None); // unknown rate
    }
    let fps = f64::from(n) / f64::from(d);
    if fps > 1000.0 {
        return Err(bad());
    }
    Ok(Some(fps))
}

/// Reads a Y4M stream frame by frame, into a buffer the caller reuses.
pub struct Reader<R> {
    r: R,
    header: Header,
    at: u64,
    frames: u64,
    line: Vec<u8>,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(mut r: R) -> Result<Reader<R>, FileError> {
        let mut line = Vec::new();
        let Some(len) = read_line(&mut r, &mut line, 0)? else {
            return Err(FileError::bad(0, "empty file; expected a Y4M header"));
        };
        let header = Header::parse(&line).map_err(|what| FileError::bad(0, what.to_string()))?;
        Ok(Reader {
            r,
            header,
            at: len,
            frames: 0,
            line,
        })
    }

    /// What the header says.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Reads the next frame's planes (Y, then U, then V) into `planes`; `Ok(false)` at the end.
    pub fn next_frame(&mut self, planes: &mut Vec<u8>) -> Result<bool, FileError> {
        let start = self.at;
        let line = read_line(&mut self.r, &mut self.line, start);
        let len = match line {
            Ok(None) => return Ok(false),
            Ok(Some(len)) => Some(len),
            Err(FileError::Bad { .. }) => None,
            Err(e) => return Err(e),
        };
        if !(len.is_some()
            && self.line.starts_with(b"FRAME")
            && matches!(self.line.get(5), None | Some(b' ')))
        {
            let found = self.line[..self.line.len().min(16)].escape_ascii();
            return Err(FileError::bad(
                start,
                format!(
                    "expected FRAME (frame {} of {}x{}), found \"{found}\": does the header give the right size?",
                    self.frames, self.header.width, self.header.height
                ),
            ));
        }
        let want = self.header.frame_bytes();
        let data_at = start + len.unwrap_or_default();
        let got = read_up_to(&mut self.r, want, planes, data_at)?;
        if (got as u64) < want {
            return Err(FileError::bad(
                data_at + got as u64,
                format!(
                    "the file ends inside frame {}: it needs {want} bytes, {got} are there",
                    self.frames
                ),
            ));
        }
        self.at = data_at + want;
        self.frames += 1;
        Ok(true)
    }

    /// The offset of the next frame.
    pub fn position(&self) -> u64 {
        self.at
    }
}

/// Reads one line into `line` (without its newline); `None` at the end of the file, an error
/// for a line cut short or longer than [`MAX_LINE`]. Returns the bytes taken, newline included.
fn read_line(r: &mut impl Read, line: &mut Vec<u8>, at: u64) -> Result<Option<u64>, FileError> {
    line.clear();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => {
                return Err(FileError::bad(
                    at + line.len() as u64,
                    "the file ends inside a header line",
                ));
            }
            Ok(_) if byte[0] == b'\n' => return Ok(Some(line.len() as u64 + 1)),
            Ok(_) if line.len() == MAX_LINE => {
                return Err(FileError::bad(
                    at,
                    format!("a header line longer than {MAX_LINE} bytes"),
                ));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(FileError::Io {
                    at: at + line.len() as u64,
                    source,
                });
            }
        }
    }
}

/// Writes RGB frames as 4:4:4 Y4M.
pub struct Writer<W: Write> {
    w: W,
    width: u32,
    height: u32,
    planes: Vec<u8>,
    at: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the header for `width` x `height` frames at `fps` (0: 30, the rate is unknown).
    pub fn new(mut w: W, width: u32, height: u32, fps: f64) -> Result<Writer<W>, FileError> {
        let rate = if fps > 0.0 {
            format!("{}:1000", (fps * 1000.0).round() as u64)
        } else {
            "30:1".to_string()
        };
        let header = format!("YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C444\n");
        w.write_all(header.as_bytes())
            .map_err(|source| FileError::Io { at: 0, source })?;
        Ok(Writer {
            w,
            width,
            height,
            planes: Vec::new(),
            at: header.len() as u64,
        })
    }

    /// The size frames must have.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Writes one frame, which must have the header's size.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), FileError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(FileError::bad(
                self.at,
                format!(
                    "a {}x{} frame in a {}x{} Y4M file (a Y4M file holds one size)",
                    frame.width, frame.height, self.width, self.height
                ),
            ));
        }
        rgb_to_yuv444(frame, &mut self.planes);
        let at = self.at;
        self.w
            .write_all(b"FRAME\n")
            .and_then(|()| self.w.write_all(&self.planes))
            .map_err(|source| FileError::Io { at, source })?;
        self.at += 6 + self.planes.len() as u64;
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> Result<(), FileError> {
        self.w.flush().map_err(|source| FileError::Io {
            at: self.at,
            source,
        })
    }
}

/// RGB(A) or BGR to planar 4:4:4 BT.601 limited range, as ffmpeg reads Y4M by default.
fn rgb_to_yuv444(frame: &Frame, planes: &mut Vec<u8>) {
    let n = frame.width as usize * frame.height as usize;
    planes.resize(3 * n, 0);
    let (y, uv) = planes.split_at_mut(n);
    let (u, v) = uv.split_at_mut(n);
    let bpp = frame.format.bytes_per_pixel();
    let [ri, gi, bi] = frame.format.rgb_offsets();
    let mut i = 0;
    for row in 0..frame.height {
        for px in frame.row(row).chunks_exact(bpp) {
            let (r, g, b) = (i32::from(px[ri]), i32::from(px[gi]), i32::from(px[bi]));
            y[i] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
            u[i] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
            v[i] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_core::PixelFormat;

    fn file(header: &str, frames: usize, frame_bytes: usize) -> Vec<u8> {
        let mut bytes = format!("{header}\n").into_bytes();
        for i in 0..frames {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend(std::iter::repeat_n(i as u8, frame_bytes));
        }
        bytes
    }

    fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Vec<u8>>), FileError> {
        let mut r = Reader::new(bytes)?;
        let mut frames = Vec::new();
        let mut planes = Vec::new();
        while r.next_frame(&mut planes)? {
            frames.push(planes.clone());
        }
        Ok((r.header(), frames))
    }

    #[test]
    fn reads_each_chroma_layout() {
        for (c, chroma, bytes) in [
            ("C420jpeg", Chroma::C420, 4 * 2 + 2 * 2),
            ("C420mpeg2", Chroma::C420, 12),
            ("C422", Chroma::C422, 8 + 2 * 2 * 2),
            ("C444", Chroma::C444, 24),
        ] {
            let (header, frames) = read_all(&file(
                &format!("YUV4MPEG2 W4 H2 F25:1 Ip A1:1 {c}"),
                3,
                bytes,
            ))
            .unwrap();
            assert_eq!(
                header,
                Header {
                    width: 4,
                    height: 2,
                    fps: Some(25.0),
                    chroma
                }
            );
            assert_eq!(frames.len(), 3, "{c}");
            assert_eq!(frames[2], vec![2u8; bytes], "{c}");
        }
        // No colour space means 4:2:0; odd sides round the chroma planes up.
        let (header, _) = read_all(&file("YUV4MPEG2 W3 H3 F30000:1001", 1, 9 + 2 * 4)).unwrap();
        assert_eq!(header.frame_bytes(), 17);
        assert!((header.fps.unwrap() - 29.97).abs() < 0.01);
    }

    #[test]
    fn hostile_files_say_what_and_where() {
        let check = |bytes: &[u8], want: &str| {
            let err = read_all(bytes).map(|_| ()).unwrap_err();
            assert_eq!(err.to_string(), want);
        };
        check(b"", "byte 0: empty file; expected a Y4M header");
        check(
            b"RIFF....WAVE\n",
            "byte 0: not a Y4M file (wrong magic, expected YUV4MPEG2)",
        );
        check(
            b"YUV4MPEG2 W4 H2",
            "byte 15: the file ends inside a header line",
        );
        check(
            b"YUV4MPEG2 W0 H2\n",
            "byte 0: width \"0\" is not 1 to 16384",
        );
        check(
            b"YUV4MPEG2 W99999 H2\n",
            "byte 0: width \"99999\" is not 1 to 16384",
        );
        check(b"YUV4MPEG2 W4\n", "byte 0: header has no height (H)");
        check(
            b"YUV4MPEG2 W4 H2 Cmono\n",
            "byte 0: colour space Cmono is not read; framewire reads 8-bit 420, 422 and 444",
        );
        check(
            &[b'Y'; 5000],
            "byte 0: a header line longer than 4096 bytes",
        );
        // The header says 4x2 4:4:4 (24 bytes a frame) but the frames hold 12: the second
        // frame's line is found in the middle of the first frame's bytes.
        let lying = file("YUV4MPEG2 W4 H2 C444", 3, 12);
        check(
            &lying,
            "byte 51: expected FRAME (frame 1 of 4x2), found \"\\x01\\x01\\x01\\x01\\x01\\x01FRAME\": does the header give the right size?",
        );
        // A header that claims the largest size, over a few bytes: read as far as they go.
        let huge = file("YUV4MPEG2 W16384 H16384 C444", 1, 10);
        check(
            &huge,
            "byte 45: the file ends inside frame 0: it needs 805306368 bytes, 10 are there",
        );
    }

    #[test]
    fn every_prefix_of_a_file_is_whole_frames_or_an_error() {
        let bytes = file("YUV4MPEG2 W4 H2 F30:1 C420jpeg", 3, 12);
        for cut in 0..bytes.len() {
            match read_all(&bytes[..cut]) {
                Ok((_, frames)) => assert!(frames.len() < 3),
                Err(e) => assert!(e.at() <= cut as u64, "cut {cut}: {e}"),
            }
        }
    }

    #[test]
    fn writes_444_that_reads_back() {
        let mut frame = Frame::new(4, 2, PixelFormat::Rgb8);
        for (i, p) in frame.pixels.chunks_exact_mut(3).enumerate() {
            p.copy_from_slice(&[(i * 30) as u8, 255 - (i * 20) as u8, 128]);
        }
        let mut w = Writer::new(Vec::new(), 4, 2, 30.0).unwrap();
        w.write_frame(&frame).unwrap();
        w.write_frame(&frame).unwrap();
        let err = w
            .write_frame(&Frame::new(2, 2, PixelFormat::Rgb8))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "byte 101: a 2x2 frame in a 4x2 Y4M file (a Y4M file holds one size)"
        );
        let (header, frames) = read_all(&w.w).unwrap();
        assert_eq!(
            (header.width, header.chroma, frames.len()),
            (4, Chroma::C444, 2)
        );
        // White, black and grey land where BT.601 limited range puts them.
        let mut grey = Frame::new(3, 1, PixelFormat::Rgb8);
        grey.pixels = vec![255, 255, 255, 0, 0, 0, 128, 128, 128];
        let mut planes = Vec::new();
        rgb_to_yuv444(&grey, &mut planes);
        assert_eq!(planes, vec![235, 16, 126, 128, 128, 128, 128, 128, 128]);
        // Red, green and blue: a BGR frame of them gives the planes the RGB frame does.
        let mut rgb = Frame::new(3, 1, PixelFormat::Rgb8);
        rgb.pixels = vec![255, 0, 0, 0, 255, 0, 0, 0, 255];
        let mut bgr = Frame::new(3, 1, PixelFormat::Bgr8);
        bgr.pixels = vec![0, 0, 255, 0, 255, 0, 255, 0, 0];
        let (mut from_rgb, mut from_bgr) = (Vec::new(), Vec::new());
        rgb_to_yuv444(&rgb, &mut from_rgb);
        rgb_to_yuv444(&bgr, &mut from_bgr);
        assert_eq!(from_bgr, from_rgb);
        assert_ne!(from_rgb[..3], from_rgb[3..6], "distinct colours");
    }
}
