//! framewire's test pattern: [`TestPattern`], a deterministic moving picture (the source behind
//! `--source test`), and [`read_frame_number`], which reads back the frame number the pattern
//! draws into every frame.
//!
//! Not a plugin: it depends on framewire-core alone, so any crate may use it, in its tests and
//! benches or, like capture for `--source test`, as a source.
//!
//! A frame looks like this:
//!
//! ```text
//!  row 0 +------+------+------+-- ... --+------+
//!        | b0   | b1   | b2   |         | b31  |  top half: bit i of the frame number, white = 1
//!        +------+------+------+-- ... --+------+
//!        | !b0  | !b1  | !b2  |         | !b31 |  bottom half: the same bit, inverted
//!   band +------+------+------+-- ... --+------+  band = max(8, height / 8) rows
//!        |                                     |
//!        |   textured background, scrolling    |
//!        |   left, with a disc and a box       |
//!        |   bouncing over it                  |
//!        |                                     |
//!        +-------------------------------------+
//! ```
//!
//! The code's 32 cells span the full width and the band is a fixed share of the height, so the
//! code scales with the frame: it survives resizing (keeping the aspect ratio) down to 160 pixels
//! wide and JPEG compression. Every bit is drawn twice with opposite polarity, so the reader needs
//! no threshold: it compares the two halves, and refuses to answer when they do not clearly
//! differ. Capture's resizer tests and codec's round trips check that it survives them.
//!
//! The background is computed once, at construction (smooth gradients, tiles and seeded noise),
//! so rendering a frame is row copies plus a few filled spans.

use std::f32::consts::TAU;
use std::fmt;
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, Frame, FrameSource, MAX_SIDE, PixelFormat, SourceInfo, now_micros,
};

/// Bits in the frame-number code: the low 32 bits of the frame number.
const CODE_BITS: u32 = 32;
/// Smallest height of the code band, in rows.
const MIN_BAND: u32 = 8;
/// How much brighter (luma, of 255) one half of a code cell must be than the other.
const MIN_CONTRAST: u32 = 80;
/// Columns and rows of background tiles.
const TILES: (u32, u32) = (16, 9);
/// How far apart the frame numbers of two variants start: variant n's first frame is
/// `VARIANT_STRIDE * (n - 1)`.
pub const VARIANT_STRIDE: u64 = 1_000_000;
/// Colour of the bouncing disc.
const DISC_RGB: [u8; 3] = [236, 118, 38];
/// Colour of the bouncing box.
const BOX_RGB: [u8; 3] = [40, 176, 228];

/// Deterministic synthetic source (`--source test`): a moving picture with the frame number
/// drawn into it as a code that [`read_frame_number`] reads back.
///
/// Frame `n` is always the same picture, whatever was rendered before. The content is
/// realistic rather than flat (gradients, edges, noise, motion), so compression and resizing
/// measured on it are representative.
pub struct TestPattern {
    width: u32,
    height: u32,
    format: PixelFormat,
    fps: f64,
    /// The unscrolled background, packed rows in `format`.
    background: Vec<u8>,
    /// The two rows of the code band (top half, then bottom half), rebuilt for every frame.
    code_rows: Vec<u8>,
    /// The frame [`FrameSource::next_frame`] renders next, counted from `first`.
    next_n: u64,
    /// The variant: 1 is the pattern itself; see [`TestPattern::variant`].
    variant: u32,
    pacer: Pacer,
}

impl TestPattern {
    /// A `width` x `height` [`PixelFormat::Rgb8`] pattern that [`FrameSource::next_frame`] paces
    /// to `fps` frames per second; 0 means unpaced (a frame as soon as it is asked for).
    ///
    /// Errors ([`CaptureError::Config`]) for a side of 0 or above 16384, or an fps that is
    /// negative, infinite or NaN.
    pub fn new(width: u32, height: u32, fps: f64) -> Result<TestPattern, CaptureError> {
        for (name, side) in [("width", width), ("height", height)] {
            if side == 0 || side > MAX_SIDE {
                return Err(CaptureError::Config(format!(
                    "test pattern {name} {side} is out of range, expected 1 to {MAX_SIDE}"
                )));
            }
        }
        if !fps.is_finite() || fps < 0.0 {
            return Err(CaptureError::Config(format!(
                "test pattern fps {fps} is invalid, expected 0 (unpaced) or a positive number"
            )));
        }
        tracing::debug!(width, height, fps, "test pattern created");
        let format = PixelFormat::Rgb8;
        Ok(TestPattern {
            width,
            height,
            format,
            fps,
            background: background(width, height, format),
            code_rows: Vec::new(),
            next_n: 0,
            variant: 1,
            pacer: Pacer::new(fps),
        })
    }

    /// The same pattern in another pixel format: [`PixelFormat::Rgb8`] (the default),
    /// [`PixelFormat::Rgba8`] with alpha 255, or [`PixelFormat::Bgr8`]. Other formats are not
    /// supported: the pattern stays as it was and a warning is logged.
    pub fn with_format(mut self, format: PixelFormat) -> TestPattern {
        if format == self.format {
            return self;
        }
        if !matches!(
            format,
            PixelFormat::Rgb8 | PixelFormat::Rgba8 | PixelFormat::Bgr8
        ) {
            tracing::warn!(
                %format,
                kept = %self.format,
                "test pattern cannot draw this pixel format, keeping its own"
            );
            return self;
        }
        self.format = format;
        self.background = background(self.width, self.height, format);
        self.rotate_colours();
        self
    }

    /// Variant `n` (`--source test:N`), told apart from the others at a glance and by number:
    /// its colours are rotated (red → green → blue, n - 1 times) and its frame numbers start
    /// at [`VARIANT_STRIDE`] x (n - 1). Variant 1 is the pattern itself. `n` of 0 counts as 1.
    pub fn variant(mut self, n: u32) -> TestPattern {
        self.variant = n.max(1);
        self.background = background(self.width, self.height, self.format);
        self.rotate_colours();
        self
    }

    /// The number [`FrameSource::next_frame`] gives its first frame.
    pub fn first_number(&self) -> u64 {
        u64::from(self.variant - 1) * VARIANT_STRIDE
    }

    /// Rotates the background's colour channels for the variant.
    fn rotate_colours(&mut self) {
        let turns = ((self.variant - 1) % 3) as usize;
        if turns == 0 {
            return;
        }
        let [r, g, b] = self.format.rgb_offsets();
        for px in self
            .background
            .chunks_exact_mut(self.format.bytes_per_pixel())
        {
            let mut rgb = [px[r], px[g], px[b]];
            rgb.rotate_right(turns);
            [px[r], px[g], px[b]] = rgb;
        }
    }

    /// A shape's colour in this variant.
    fn colour(&self, mut rgb: [u8; 3]) -> [u8; 3] {
        rgb.rotate_right(((self.variant - 1) % 3) as usize);
        rgb
    }

    /// Renders frame number `n` into `dst`: resets `dst` to the pattern's size and format and
    /// sets `dst.seq = n`. It neither paces nor touches `dst.capture_us`. The same `n` always
    /// gives the same bytes.
    pub fn render(&mut self, n: u64, dst: &mut Frame) {
        let (w, h) = (self.width as usize, self.height as usize);
        let bpp = self.format.bytes_per_pixel();
        let row_bytes = w * bpp;
        dst.reset(self.width, self.height, self.format);
        dst.seq = n;
        let band = band_height(self.height) as usize;

        // Background, scrolled left by `shift` pixels: each row is two slice copies.
        let speed = (w / 320).max(1) as u64;
        let shift = ((n % w as u64) * speed % w as u64) as usize;
        let split = shift * bpp;
        for (dst_row, src_row) in dst
            .pixels
            .chunks_exact_mut(row_bytes)
            .zip(self.background.chunks_exact(row_bytes))
            .skip(band)
        {
            let (head, tail) = src_row.split_at(split);
            dst_row[..tail.len()].copy_from_slice(tail);
            dst_row[tail.len()..].copy_from_slice(head);
        }

        // The code band: one template row per half, copied down.
        self.code_rows.resize(2 * row_bytes, 0);
        let (top, bottom) = self.code_rows.split_at_mut(row_bytes);
        let code = n as u32; // the low 32 bits, by design
        for i in 0..CODE_BITS {
            let x0 = cell_start(i, self.width) * bpp;
            let x1 = cell_start(i + 1, self.width) * bpp;
            let on = (code >> i) & 1 == 1;
            let (t, b) = if on { (255, 0) } else { (0, 255) };
            fill(&mut top[x0..x1], self.format, [t; 3]);
            fill(&mut bottom[x0..x1], self.format, [b; 3]);
        }
        for (y, row) in dst
            .pixels
            .chunks_exact_mut(row_bytes)
            .take(band)
            .enumerate()
        {
            let template = if y < band / 2 { &*top } else { &*bottom };
            row.copy_from_slice(template);
        }

        // Moving shapes, kept below the band.
        let area_h = h - band;
        if area_h == 0 {
            return;
        }
        let (disc, box_rgb) = (self.colour(DISC_RGB), self.colour(BOX_RGB));
        let rows = &mut dst.pixels[band * row_bytes..];
        let radius = (h / 8).clamp(1, area_h.div_ceil(2)) as i64;
        let cx = bounce(n.wrapping_mul((w / 150).max(1) as u64), w - 1) as i64;
        let cy = bounce(n.wrapping_mul((area_h / 120).max(1) as u64), area_h - 1) as i64;
        for dy in -radius..=radius {
            let y = cy + dy;
            if !(0..area_h as i64).contains(&y) {
                continue;
            }
            let half = (radius * radius - dy * dy).isqrt();
            let x0 = (cx - half).max(0) as usize;
            let x1 = ((cx + half + 1) as usize).min(w);
            let row = &mut rows[y as usize * row_bytes..][..row_bytes];
            fill(&mut row[x0 * bpp..x1 * bpp], self.format, disc);
        }
        let (box_w, box_h) = ((w / 10).max(1), (area_h / 6).max(1));
        let bx = bounce(
            n.wrapping_mul((w / 400).max(1) as u64)
                .wrapping_add(w as u64 / 3),
            w - box_w,
        );
        let by = bounce(n.wrapping_mul((area_h / 200).max(1) as u64), area_h - box_h);
        for row in rows.chunks_exact_mut(row_bytes).skip(by).take(box_h) {
            fill(&mut row[bx * bpp..(bx + box_w) * bpp], self.format, box_rgb);
        }
    }
}

impl fmt::Debug for TestPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPattern")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("fps", &self.fps)
            .field("next_n", &self.next_n)
            .finish_non_exhaustive()
    }
}

impl FrameSource for TestPattern {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "test pattern".to_string(),
            width: self.width,
            height: self.height,
            format: self.format,
            fps: self.fps,
        }
    }

    /// Waits until frame `n` is due (never when unpaced), renders it and stamps it with the time
    /// rendering finished. Never ends.
    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        let n = self.next_n;
        let wait = self.pacer.wait(n, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.render(self.first_number() + n, dst);
        dst.capture_us = now_micros();
        self.next_n += 1;
        Ok(true)
    }
}

/// Drift-free pacing: frame `n` is due at `anchor + (n - anchor_n) / fps`. A source more than
/// one frame behind re-anchors at the frame it is on instead of bursting to catch up. File
/// sources pace themselves with it too.
#[derive(Debug, Clone)]
pub struct Pacer {
    fps: f64,
    /// When frame `.1` was due.
    anchor: Option<(Instant, u64)>,
}

impl Pacer {
    /// Paces to `fps` frames per second; 0 never waits.
    pub fn new(fps: f64) -> Pacer {
        Pacer { fps, anchor: None }
    }

    /// How long to wait at `now` before frame `n` is due: zero when unpaced, due or late.
    pub fn wait(&mut self, n: u64, now: Instant) -> Duration {
        if self.fps == 0.0 {
            return Duration::ZERO;
        }
        let (anchor, anchor_n) = *self.anchor.get_or_insert((now, n));
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
        let due = secs(n.saturating_sub(anchor_n) as f64 / self.fps);
        let elapsed = now.saturating_duration_since(anchor);
        if let Some(wait) = due.checked_sub(elapsed).filter(|w| !w.is_zero()) {
            return wait;
        }
        let late = elapsed - due;
        if late > secs(1.0 / self.fps) {
            tracing::debug!(
                frame = n,
                late_ms = late.as_millis(),
                "source fell behind its pace, re-anchoring"
            );
            self.anchor = Some((now, n));
        }
        Duration::ZERO
    }
}

/// Reads back the frame number [`TestPattern`] drew into `frame`: its low 32 bits (the code
/// holds no more).
///
/// Works on the frame as rendered and after it was resized keeping the aspect ratio, down to
/// 160 pixels wide, and JPEG-compressed at quality 50 or better. Returns `None` when the code
/// cannot be read with confidence: a frame without one, or too damaged (every cell's two halves
/// must differ clearly, and every bright half must be brighter than every dark one), so a wrong
/// number is very unlikely. Frames narrower than 32 or lower than 8 pixels give `None`.
pub fn read_frame_number(frame: &Frame) -> Option<u64> {
    if !matches!(
        frame.format,
        PixelFormat::Rgb8 | PixelFormat::Rgba8 | PixelFormat::Bgr8
    ) || frame.validate().is_err()
        || frame.width < CODE_BITS
        || frame.height < MIN_BAND
    {
        return None;
    }
    let band = f64::from(band_height(frame.height));
    let top_rows = sample_range(band * 0.25, band / 8.0, frame.height);
    let bottom_rows = sample_range(band * 0.75, band / 8.0, frame.height);
    let cell = f64::from(frame.width) / f64::from(CODE_BITS);
    let (mut code, mut min_bright, mut max_dark) = (0u32, u32::MAX, 0u32);
    for i in 0..CODE_BITS {
        let cols = sample_range((f64::from(i) + 0.5) * cell, cell / 4.0, frame.width);
        let top = mean_luma(frame, top_rows.clone(), cols.clone());
        let bottom = mean_luma(frame, bottom_rows.clone(), cols);
        if top.abs_diff(bottom) <= MIN_CONTRAST {
            return None;
        }
        if top > bottom {
            code |= 1 << i;
        }
        min_bright = min_bright.min(top.max(bottom));
        max_dark = max_dark.max(top.min(bottom));
    }
    (min_bright > max_dark).then_some(u64::from(code))
}

/// Rows of the code band: about an eighth of the height, at least 8 (and at most the height).
fn band_height(height: u32) -> u32 {
    (height / 8).max(MIN_BAND).min(height)
}

/// First column of code cell `i` (cell 32 is the width).
fn cell_start(i: u32, width: u32) -> usize {
    (u64::from(i) * u64::from(width) / u64::from(CODE_BITS)) as usize
}

/// The pixels whose centres lie within `half` of `centre`, at least the one under `centre`,
/// clamped to `0..limit`.
fn sample_range(centre: f64, half: f64, limit: u32) -> std::ops::Range<u32> {
    let last = f64::from(limit - 1);
    let start = (centre - half - 0.5).ceil().clamp(0.0, last) as u32;
    let end = (centre + half - 0.5).floor().clamp(0.0, last) as u32;
    if start <= end {
        start..end + 1
    } else {
        let mid = centre.floor().clamp(0.0, last) as u32;
        mid..mid + 1
    }
}

/// Mean luma (BT.601 weights, 0 to 255) of the pixels in `rows` x `cols`.
fn mean_luma(frame: &Frame, rows: std::ops::Range<u32>, cols: std::ops::Range<u32>) -> u32 {
    let bpp = frame.format.bytes_per_pixel();
    let [r, g, b] = frame.format.rgb_offsets();
    let (mut sum, mut count) = (0u64, 0u64);
    for y in rows {
        let row = frame.row(y);
        let span = &row[cols.start as usize * bpp..cols.end as usize * bpp];
        for px in span.chunks_exact(bpp) {
            sum += 77 * u64::from(px[r]) + 150 * u64::from(px[g]) + 29 * u64::from(px[b]);
            count += 1;
        }
    }
    (sum / (count * 256)) as u32
}

/// Triangle wave: `t` bouncing between 0 and `range`.
fn bounce(t: u64, range: usize) -> usize {
    if range == 0 {
        return 0;
    }
    let period = 2 * range as u64;
    let p = (t % period) as usize;
    if p <= range { p } else { 2 * range - p }
}

/// Fills `span` (whole pixels of `format`) with the colour `rgb`, alpha 255.
fn fill(span: &mut [u8], format: PixelFormat, rgb: [u8; 3]) {
    let bpp = format.bytes_per_pixel();
    let mut px = [255; 4];
    for (c, at) in format.rgb_offsets().into_iter().enumerate() {
        px[at] = rgb[c];
    }
    for dst in span.chunks_exact_mut(bpp) {
        dst.copy_from_slice(&px[..bpp]);
    }
}

/// The unscrolled background: colour waves that repeat exactly across the width (so scrolling
/// shows no seam), a vertical gradient, tiles of random tint with dark edges, and fine noise.
fn background(width: u32, height: u32, format: PixelFormat) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let bpp = format.bytes_per_pixel();
    let mut rng = XorShift64::new(0x5EED_F4A3_E000_0001);
    let columns: Vec<[f32; 3]> = (0..w)
        .map(|x| {
            let t = x as f32 / w as f32 * TAU;
            [
                70.0 * t.sin(),
                60.0 * (2.0 * t + 1.3).sin(),
                55.0 * (3.0 * t + 2.6).cos(),
            ]
        })
        .collect();
    let rows: Vec<[f32; 3]> = (0..h)
        .map(|y| {
            let s = y as f32 / h as f32;
            [
                -35.0 + 70.0 * s,
                30.0 * (1.5 * TAU * s).sin(),
                35.0 - 70.0 * s,
            ]
        })
        .collect();
    let tile_of = |i: usize, len: usize, tiles: u32| (i * tiles as usize / len) as u32;
    let tints: Vec<[f32; 3]> = (0..TILES.0 * TILES.1)
        .map(|_| {
            let r = rng.next_u64().to_le_bytes();
            [r[0], r[1], r[2]].map(|b| (f32::from(b) - 128.0) * 0.3)
        })
        .collect();
    // Tile edges (darkened): where the tile index changes, wrapping around horizontally.
    let col_edge: Vec<bool> = (0..w)
        .map(|x| tile_of(x, w, TILES.0) != tile_of((x + w - 1) % w, w, TILES.0))
        .collect();

    let offsets = format.rgb_offsets();
    let mut out = vec![0u8; w * h * bpp];
    for (y, row) in out.chunks_exact_mut(w * bpp).enumerate() {
        let ty = tile_of(y, h, TILES.1);
        let row_edge = y > 0 && ty != tile_of(y - 1, h, TILES.1);
        for (x, px) in row.chunks_exact_mut(bpp).enumerate() {
            let tint = tints[(ty * TILES.0 + tile_of(x, w, TILES.0)) as usize];
            let noise = rng.next_u64().to_le_bytes();
            let edge = row_edge || col_edge[x];
            for c in 0..3 {
                let n = f32::from(noise[c] & 31) - 15.5;
                let mut v = 128.0 + columns[x][c] + rows[y][c] + tint[c] + n;
                if edge {
                    v *= 0.35;
                }
                px[offsets[c]] = v.clamp(0.0, 255.0) as u8;
            }
            if bpp == 4 {
                px[3] = 255;
            }
        }
    }
    out
}

/// A tiny xorshift generator: deterministic noise without a dependency.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (0 is replaced, as xorshift would stay at 0).
    fn new(seed: u64) -> XorShift64 {
        XorShift64(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBERS: [u64; 9] = [
        0,
        1,
        255,
        256,
        65535,
        1 << 31,
        u32::MAX as u64,
        12345,
        0xA5A5_5A5A,
    ];

    fn rendered(w: u32, h: u32, format: PixelFormat, n: u64) -> Frame {
        let mut p = TestPattern::new(w, h, 0.0).unwrap().with_format(format);
        let mut f = Frame::empty(PixelFormat::Rgb8);
        p.render(n, &mut f);
        f
    }

    #[test]
    fn render_is_deterministic_and_sets_size_format_and_seq() {
        let mut a = TestPattern::new(320, 240, 0.0).unwrap();
        let mut b = TestPattern::new(320, 240, 0.0).unwrap();
        let (mut fa, mut fb) = (
            Frame::empty(PixelFormat::Rgb8),
            Frame::empty(PixelFormat::Rgb8),
        );
        a.render(5, &mut fa);
        a.render(6, &mut fa);
        a.render(41, &mut fa);
        b.render(41, &mut fb);
        assert_eq!(fa, fb);
        assert_eq!(
            (fa.width, fa.height, fa.format, fa.seq),
            (320, 240, PixelFormat::Rgb8, 41)
        );
        assert!(fa.is_packed());
    }

    #[test]
    fn consecutive_frames_differ_below_the_code_too() {
        let row_bytes = 320 * 3;
        let band = band_height(240) as usize * row_bytes;
        for n in [0, 1, 99, 1000] {
            let a = rendered(320, 240, PixelFormat::Rgb8, n);
            let b = rendered(320, 240, PixelFormat::Rgb8, n + 1);
            assert_ne!(
                a.pixels[band..],
                b.pixels[band..],
                "frames {n} and {}",
                n + 1
            );
        }
    }

    #[test]
    fn content_is_not_flat() {
        let f = rendered(640, 480, PixelFormat::Rgb8, 7);
        let mut seen = [false; 256];
        f.pixels.iter().for_each(|&b| seen[b as usize] = true);
        let distinct = seen.iter().filter(|&&s| s).count();
        assert!(distinct > 200, "only {distinct} distinct byte values");
        let mean = f.pixels.iter().map(|&b| u64::from(b)).sum::<u64>() / f.pixels.len() as u64;
        assert!((60..200).contains(&mean), "mean byte value {mean}");
    }

    #[test]
    fn rgba_is_rgb_with_opaque_alpha() {
        let rgb = rendered(160, 120, PixelFormat::Rgb8, 3);
        let rgba = rendered(160, 120, PixelFormat::Rgba8, 3);
        assert_eq!(rgba.format, PixelFormat::Rgba8);
        for (a, b) in rgb.pixels.chunks_exact(3).zip(rgba.pixels.chunks_exact(4)) {
            assert_eq!((a, b[3]), (&b[..3], 255));
        }
    }

    #[test]
    fn bgr_is_rgb_in_the_other_order() {
        for variant in [1, 2] {
            let draw = |format| {
                let mut f = Frame::empty(format);
                TestPattern::new(160, 120, 0.0)
                    .unwrap()
                    .with_format(format)
                    .variant(variant)
                    .render(5, &mut f);
                f
            };
            let (rgb, bgr) = (draw(PixelFormat::Rgb8), draw(PixelFormat::Bgr8));
            assert_eq!(bgr.format, PixelFormat::Bgr8);
            for (a, b) in rgb.pixels.chunks_exact(3).zip(bgr.pixels.chunks_exact(3)) {
                assert_eq!([a[2], a[1], a[0]], b, "variant {variant}");
            }
        }
    }

    #[test]
    fn frame_number_round_trips_at_every_size_and_format() {
        for (w, h) in [(160, 120), (640, 480), (1920, 1080), (333, 77), (32, 8)] {
            for format in PixelFormat::ALL {
                let mut p = TestPattern::new(w, h, 0.0).unwrap().with_format(format);
                let mut f = Frame::empty(format);
                for n in NUMBERS {
                    p.render(n, &mut f);
                    assert_eq!(read_frame_number(&f), Some(n), "{w}x{h} {format} frame {n}");
                }
            }
        }
    }

    #[test]
    fn frame_number_keeps_only_the_low_32_bits() {
        let f = rendered(160, 120, PixelFormat::Rgb8, (7 << 32) | 42);
        assert_eq!(read_frame_number(&f), Some(42));
        assert_eq!(f.seq, (7 << 32) | 42);
    }

    #[test]
    fn no_number_without_a_code() {
        let mut grey = Frame::new(640, 480, PixelFormat::Rgb8);
        grey.pixels.fill(128);
        assert_eq!(read_frame_number(&grey), None);

        let mut rng = XorShift64::new(1);
        for format in PixelFormat::ALL {
            let mut noise = Frame::new(640, 480, format);
            for _ in 0..50 {
                noise
                    .pixels
                    .iter_mut()
                    .for_each(|b| *b = rng.next_u64() as u8);
                assert_eq!(read_frame_number(&noise), None);
            }
        }

        // Too small, or inconsistent with itself.
        assert_eq!(
            read_frame_number(&Frame::new(31, 120, PixelFormat::Rgb8)),
            None
        );
        assert_eq!(read_frame_number(&Frame::empty(PixelFormat::Rgb8)), None);
        let mut short = rendered(160, 120, PixelFormat::Rgb8, 9);
        short.pixels.truncate(100);
        assert_eq!(read_frame_number(&short), None);
    }

    #[test]
    fn a_damaged_code_is_refused() {
        let mut f = rendered(320, 240, PixelFormat::Rgb8, 0xF0F0);
        // Grey out one cell (cell 3) over the whole band.
        for y in 0..band_height(240) {
            let start = y as usize * f.stride;
            f.pixels[start + 30 * 3..start + 40 * 3].fill(128);
        }
        assert_eq!(read_frame_number(&f), None);
    }

    #[test]
    fn config_errors() {
        let err = |w, h, fps| match TestPattern::new(w, h, fps) {
            Err(CaptureError::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            err(0, 0, 30.0),
            "test pattern width 0 is out of range, expected 1 to 16384"
        );
        assert_eq!(
            err(640, 16385, 30.0),
            "test pattern height 16385 is out of range, expected 1 to 16384"
        );
        assert_eq!(
            err(640, 480, -1.0),
            "test pattern fps -1 is invalid, expected 0 (unpaced) or a positive number"
        );
        err(640, 480, f64::NAN);
        err(640, 480, f64::INFINITY);
        assert!(TestPattern::new(1, 1, 0.0).is_ok());
    }

    #[test]
    fn tiny_frames_render() {
        for (w, h) in [(1, 1), (3, 2), (1, 9), (9, 1), (40, 9)] {
            for format in PixelFormat::ALL {
                let f = rendered(w, h, format, 17);
                assert_eq!((f.width, f.height), (w, h));
                assert!(f.validate().is_ok());
            }
        }
    }

    #[test]
    fn next_frame_counts_and_stamps_frames() {
        let mut p = TestPattern::new(64, 48, 0.0)
            .unwrap()
            .with_format(PixelFormat::Rgba8);
        let info = p.info();
        assert_eq!(info.name, "test pattern");
        assert_eq!(
            (info.width, info.height, info.format, info.fps),
            (64, 48, PixelFormat::Rgba8, 0.0)
        );
        let mut f = Frame::empty(PixelFormat::Rgb8);
        let before = now_micros();
        for n in 0..5 {
            assert!(p.next_frame(&mut f).unwrap());
            assert_eq!(f.seq, n);
            assert_eq!(read_frame_number(&f), Some(n));
            assert!(f.capture_us >= before);
        }
    }

    #[test]
    fn a_variant_has_other_colours_and_its_own_numbers() {
        let mut one = TestPattern::new(320, 240, 0.0).unwrap();
        let mut two = TestPattern::new(320, 240, 0.0).unwrap().variant(2);
        let (mut a, mut b) = (
            Frame::empty(PixelFormat::Rgb8),
            Frame::empty(PixelFormat::Rgb8),
        );
        assert!(one.next_frame(&mut a).unwrap());
        assert!(two.next_frame(&mut b).unwrap());
        assert_eq!((a.seq, read_frame_number(&a)), (0, Some(0)));
        assert_eq!(
            (b.seq, read_frame_number(&b)),
            (VARIANT_STRIDE, Some(VARIANT_STRIDE))
        );
        // Below the code band, every pixel is variant 1's of the same number with its channels
        // rotated once.
        one.render(VARIANT_STRIDE, &mut a);
        let band = band_height(240) as usize * 320 * 3;
        let rotated: Vec<u8> = a.pixels[band..]
            .chunks_exact(3)
            .flat_map(|px| [px[2], px[0], px[1]])
            .collect();
        assert_eq!(&b.pixels[band..], &rotated[..]);
        assert_eq!(
            TestPattern::new(8, 8, 0.0)
                .unwrap()
                .variant(0)
                .first_number(),
            0
        );
    }

    #[test]
    fn pacer_without_fps_never_waits() {
        let mut pacer = Pacer::new(0.0);
        let t = Instant::now();
        for n in 0..1000 {
            assert_eq!(pacer.wait(n, t), Duration::ZERO);
        }
    }

    #[test]
    fn pacer_schedules_without_drift_and_re_anchors_when_behind() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // 8 fps: a period of 125 ms, exact in binary, so durations compare exactly.
        let mut pacer = Pacer::new(8.0);
        assert_eq!(pacer.wait(0, t0), Duration::ZERO);
        assert_eq!(pacer.wait(1, t0 + ms(30)), ms(95));
        // Late by less than a period: no wait, and the schedule stays anchored at frame 0.
        assert_eq!(pacer.wait(2, t0 + ms(300)), Duration::ZERO);
        assert_eq!(pacer.wait(3, t0 + ms(310)), ms(65));
        // Late by more than a period: re-anchor at frame 4 instead of bursting.
        assert_eq!(pacer.wait(4, t0 + ms(1000)), Duration::ZERO);
        assert_eq!(pacer.wait(5, t0 + ms(1000)), ms(125));
        // Huge frame numbers saturate instead of panicking.
        assert!(pacer.wait(u64::MAX, t0) > ms(1000));
    }
}
