//! Shrinks where every output pixel is the rounded mean of a 2x2 block of source pixels:
//! area at exactly half size, and bilinear (OpenCV's `INTER_LINEAR`) at even integer factors,
//! where each output pixel's centre falls between four source pixels. Row-wise byte loops
//! that the compiler vectorises (SSE2 is enough), and no allocation once warm.
//! [`super::Resizer`] takes this path when [`Axis::new`] accepts both axes.

use framewire_core::Frame;

use super::ResizeFilter;

/// One axis of a 2x2 shrink: output sample `i` is the mean of source samples
/// `i * factor + offset` and the one after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Axis {
    factor: usize,
    offset: usize,
}

impl Axis {
    /// The axis for shrinking `src` samples to `dst` with `filter`, if each output sample is
    /// the mean of two source samples: area at exactly 2x, bilinear at any even factor.
    /// Bilinear samples output `i` at source `(i + 0.5) * factor - 0.5`, halfway between
    /// samples `i * factor + factor / 2 - 1` and the next one when `factor` is even.
    pub(super) fn new(src: u32, dst: u32, filter: ResizeFilter) -> Option<Axis> {
        if dst == 0 || !src.is_multiple_of(dst) {
            return None;
        }
        let factor = (src / dst) as usize;
        match filter {
            ResizeFilter::Area if factor == 2 => Some(Axis { factor, offset: 0 }),
            ResizeFilter::Bilinear if factor.is_multiple_of(2) => Some(Axis {
                factor,
                offset: factor / 2 - 1,
            }),
            _ => None,
        }
    }
}

/// Shrinks `src` (rgb8 or rgba8, rows possibly padded) into `dst`, already reset to
/// `src.width / x.factor` x `src.height / y.factor` with packed rows. `means` is scratch kept
/// between calls.
pub(super) fn shrink(src: &Frame, dst: &mut Frame, x: Axis, y: Axis, means: &mut Vec<u8>) {
    match src.format.bytes_per_pixel() {
        3 => shrink_pixels::<3>(src, dst, x, y, means),
        _ => shrink_pixels::<4>(src, dst, x, y, means),
    }
}

/// [`shrink`] for `N` bytes per pixel.
fn shrink_pixels<const N: usize>(
    src: &Frame,
    dst: &mut Frame,
    x: Axis,
    y: Axis,
    means: &mut Vec<u8>,
) {
    // Room for `chunks_exact` below to yield one chunk per output pixel from `x.offset` on.
    means.resize(src.row_bytes() + x.offset * N, 0);
    let out_row_bytes = dst.row_bytes();
    for (oy, out) in dst.pixels.chunks_exact_mut(out_row_bytes).enumerate() {
        let first = (oy * y.factor + y.offset) as u32;
        let (top, bottom) = (src.row(first), src.row(first + 1));
        // The mean of the 2x2 block starting at every pixel, byte by byte: contiguous, so it
        // vectorises, though only one block in `x.factor` is kept.
        for ((((m, &a), &b), &c), &d) in means
            .iter_mut()
            .zip(top)
            .zip(&top[N..])
            .zip(bottom)
            .zip(&bottom[N..])
        {
            *m = mean4(a, b, c, d);
        }
        // Keep the block of each output pixel.
        for (o, block) in out
            .chunks_exact_mut(N)
            .zip(means[x.offset * N..].chunks_exact(x.factor * N))
        {
            o.copy_from_slice(&block[..N]);
        }
    }
}

/// `(a + b + c + d + 2) / 4`, the rounded mean (halves up), in byte arithmetic so that the
/// compiler can use byte lanes (SSE2 `pavgb`): twice as many per vector as in `u16`.
///
/// With `x = avg(a, b)` and `y = avg(c, d)` rounded up, `a + b = 2x - (a ^ b) & 1` and the
/// like for `c + d`, so the sum + 2 is `2(x + y) + 2 - e` with `e` the number of odd pair sums.
/// `avg(x, y) = (2(x + y) + 2) / 4` is the answer unless subtracting `e` crosses a multiple of
/// 4: when `2(x + y) + 2` is one (`x + y` odd) and `e > 0`; then it is one less (and at least
/// 1, as `x != y`).
#[inline(always)]
fn mean4(a: u8, b: u8, c: u8, d: u8) -> u8 {
    let (x, y) = (avg(a, b), avg(c, d));
    let borrow = (x ^ y) & ((a ^ b) | (c ^ d)) & 1;
    avg(x, y) - borrow
}

/// `(a + b + 1) / 2`.
#[inline(always)]
fn avg(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean4_is_the_rounded_mean() {
        // Every (a, b) against (c, d) pairs covering the edges and a spread of the rest.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut cds: Vec<(u8, u8)> = (0..512)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed as u8, (seed >> 8) as u8)
            })
            .collect();
        cds.extend([
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (254, 255),
            (255, 255),
            (0, 255),
        ]);
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for &(c, d) in &cds {
                    let want = (u32::from(a) + u32::from(b) + u32::from(c) + u32::from(d) + 2) / 4;
                    assert_eq!(u32::from(mean4(a, b, c, d)), want, "{a} {b} {c} {d}");
                }
            }
        }
    }

    #[test]
    fn axes_are_taken_where_an_output_sample_is_the_mean_of_two() {
        let axis = |factor, offset| Some(Axis { factor, offset });
        assert_eq!(Axis::new(640, 320, ResizeFilter::Area), axis(2, 0));
        assert_eq!(Axis::new(640, 320, ResizeFilter::Bilinear), axis(2, 0));
        assert_eq!(Axis::new(720, 180, ResizeFilter::Bilinear), axis(4, 1));
        assert_eq!(Axis::new(1920, 320, ResizeFilter::Bilinear), axis(6, 2));
        assert_eq!(Axis::new(2, 1, ResizeFilter::Area), axis(2, 0));
        for (src, dst, filter) in [
            (1280, 320, ResizeFilter::Area),    // 4x: a 4x4 mean
            (960, 320, ResizeFilter::Bilinear), // odd factor: on one sample
            (640, 640, ResizeFilter::Area),
            (641, 320, ResizeFilter::Area),
            (641, 320, ResizeFilter::Bilinear),
            (320, 640, ResizeFilter::Bilinear),
        ] {
            assert_eq!(
                Axis::new(src, dst, filter),
                None,
                "{src} -> {dst} {filter:?}"
            );
        }
    }
}
