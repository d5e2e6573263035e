//! Dequantisation and the inverse DCT: a float AAN transform on 4 lanes at a
//! time, skipping the high frequencies that are all zero, then the level
//! shift and the rounding to bytes.
//!
//! Everything here is `#[inline(always)]`, so that it is compiled into both
//! the AVX2 and the baseline build of the MCU loop.

#[inline(always)]
fn vadd<const N: usize>(a: [f32; N], b: [f32; N]) -> [f32; N] {
    let mut r = [0.0; N];
    for i in 0..N {
        r[i] = a[i] + b[i];
    }
    r
}

#[inline(always)]
fn vsub<const N: usize>(a: [f32; N], b: [f32; N]) -> [f32; N] {
    let mut r = [0.0; N];
    for i in 0..N {
        r[i] = a[i] - b[i];
    }
    r
}

#[inline(always)]
fn vmul<const N: usize>(a: [f32; N], c: f32) -> [f32; N] {
    let mut r = [0.0; N];
    for i in 0..N {
        r[i] = a[i] * c;
    }
    r
}

const SQRT2: f32 = std::f32::consts::SQRT_2;
/// 2 * cos(pi / 8)
const C2: f32 = 1.847_759;
/// 2 * (cos(pi / 8) - cos(3 pi / 8))
const C2_MINUS_C6: f32 = 1.082_392_2;
/// 2 * (cos(pi / 8) + cos(3 pi / 8))
const C2_PLUS_C6: f32 = 2.613_126;

/// One-dimensional AAN IDCT on N lanes at once: `v[k]` holds frequency `k`
/// of N independent transforms (inputs already prescaled by `AAN_SCALE`).
#[inline(always)]
fn idct_1d<const N: usize>(v: &[[f32; N]; 8]) -> [[f32; N]; 8] {
    // Even part.
    let tmp10 = vadd(v[0], v[4]);
    let tmp11 = vsub(v[0], v[4]);
    let tmp13 = vadd(v[2], v[6]);
    let tmp12 = vsub(vmul(vsub(v[2], v[6]), SQRT2), tmp13);
    let e0 = vadd(tmp10, tmp13);
    let e3 = vsub(tmp10, tmp13);
    let e1 = vadd(tmp11, tmp12);
    let e2 = vsub(tmp11, tmp12);
    // Odd part.
    let z13 = vadd(v[5], v[3]);
    let z10 = vsub(v[5], v[3]);
    let z11 = vadd(v[1], v[7]);
    let z12 = vsub(v[1], v[7]);
    let o7 = vadd(z11, z13);
    let t11 = vmul(vsub(z11, z13), SQRT2);
    let z5 = vmul(vadd(z10, z12), C2);
    let t10 = vsub(z5, vmul(z12, C2_MINUS_C6));
    let t12 = vsub(z5, vmul(z10, C2_PLUS_C6));
    let o6 = vsub(t12, o7);
    let o5 = vsub(t11, o6);
    let o4 = vsub(t10, o5);
    [
        vadd(e0, o7),
        vadd(e1, o6),
        vadd(e2, o5),
        vadd(e3, o4),
        vsub(e3, o4),
        vsub(e2, o5),
        vsub(e1, o6),
        vsub(e0, o7),
    ]
}

/// [`idct_1d`] for inputs whose frequencies 4..8 are all zero.
#[inline(always)]
fn idct_1d_lo<const N: usize>(v: &[[f32; N]; 4]) -> [[f32; N]; 8] {
    // Even part (v4 = v6 = 0).
    let tmp12 = vsub(vmul(v[2], SQRT2), v[2]);
    let e0 = vadd(v[0], v[2]);
    let e3 = vsub(v[0], v[2]);
    let e1 = vadd(v[0], tmp12);
    let e2 = vsub(v[0], tmp12);
    // Odd part (v5 = v7 = 0): z13 = v3, z10 = -v3, z11 = z12 = v1.
    let o7 = vadd(v[1], v[3]);
    let d = vsub(v[1], v[3]);
    let t11 = vmul(d, SQRT2);
    let z5 = vmul(d, C2);
    let t10 = vsub(z5, vmul(v[1], C2_MINUS_C6));
    let t12 = vadd(z5, vmul(v[3], C2_PLUS_C6));
    let o6 = vsub(t12, o7);
    let o5 = vsub(t11, o6);
    let o4 = vsub(t10, o5);
    [
        vadd(e0, o7),
        vadd(e1, o6),
        vadd(e2, o5),
        vadd(e3, o4),
        vsub(e3, o4),
        vsub(e2, o5),
        vsub(e1, o6),
        vsub(e0, o7),
    ]
}

/// Adds the level shift, rounds and clamps the 64 samples of a block to
/// bytes and writes them as 8 rows at `dst[0..]`, `dst[stride..]`, ... Uses
/// the 1.5 * 2^23 trick (the float add rounds to an integer in the low
/// mantissa bits) so the conversion vectorises.
#[inline(always)]
fn store_rows(p: &[[f32; 8]; 8], dst: &mut [u8], stride: usize) {
    const MAGIC: f32 = 12_582_912.0;
    let mut px = [0u8; 64];
    for (o, &val) in px.iter_mut().zip(p.as_flattened()) {
        let clamped = (val + 128.0).clamp(0.0, 255.0);
        *o = (clamped + MAGIC).to_bits() as u8;
    }
    for (src, row) in px.chunks_exact(8).zip(dst.chunks_mut(stride)) {
        if let Some(r) = row.get_mut(..8) {
            r.copy_from_slice(src);
        }
    }
}

/// Dequantises and inverse-transforms a transposed coefficient block, writing
/// 8 rows of 8 pixels at `dst[0..]`, `dst[stride..]`, ... `last` is the
/// highest zigzag index that may be non-zero.
///
/// Both passes work on 4 lanes at a time (one SSE register per frequency),
/// and skip the work for high frequencies that are all zero.
#[inline(always)]
pub(super) fn idct_block(
    blk: &[i32; 64],
    qt: &[f32; 64],
    last: usize,
    dst: &mut [u8],
    stride: usize,
) {
    if last == 0 {
        let v = (blk[0] as f32 * qt[0] + 128.5).clamp(0.0, 255.0) as u8;
        for row in dst.chunks_mut(stride).take(8) {
            if let Some(r) = row.get_mut(..8) {
                r.fill(v);
            }
        }
        return;
    }
    // c[u][v]: horizontal frequency u, vertical frequency v.
    let mut c = [[0.0f32; 8]; 8];
    for ((x, &k), &q) in c.as_flattened_mut().iter_mut().zip(blk).zip(qt) {
        *x = k as f32 * q;
    }
    // Are horizontal frequencies 4..8 / vertical frequencies 4..8 all zero?
    let u_hi = blk[32..].iter().fold(0, |a, &x| a | x) != 0;
    let mut v_acc = 0;
    for row in blk.chunks_exact(8) {
        v_acc |= row[4] | row[5] | row[6] | row[7];
    }
    let v_hi = v_acc != 0;

    // Pass 1 along u, lanes = v (in halves of 4). t[v][x].
    let mut t = [[0.0f32; 8]; 8];
    let halves = if v_hi { 2 } else { 1 };
    for half in 0..halves {
        let mut inp = [[0.0f32; 4]; 8];
        for (i, row) in inp.iter_mut().enumerate() {
            row.copy_from_slice(&c[i][half * 4..half * 4 + 4]);
        }
        let w = if u_hi {
            idct_1d(&inp)
        } else {
            idct_1d_lo(&[inp[0], inp[1], inp[2], inp[3]])
        };
        for (x, wx) in w.iter().enumerate() {
            for (j, &val) in wx.iter().enumerate() {
                t[half * 4 + j][x] = val;
            }
        }
    }
    // Pass 2 along v, lanes = x (in halves of 4). p[y][x].
    let mut p = [[0.0f32; 8]; 8];
    for half in 0..2 {
        let mut inp = [[0.0f32; 4]; 8];
        for (i, row) in inp.iter_mut().enumerate() {
            row.copy_from_slice(&t[i][half * 4..half * 4 + 4]);
        }
        let o = if v_hi {
            idct_1d(&inp)
        } else {
            idct_1d_lo(&[inp[0], inp[1], inp[2], inp[3]])
        };
        for (prow, orow) in p.iter_mut().zip(&o) {
            prow[half * 4..half * 4 + 4].copy_from_slice(orow);
        }
    }
    store_rows(&p, dst, stride);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::tables::AAN_SCALE;

    /// Direct evaluation of the IDCT definition (ITU T.81 A.3.3).
    fn naive_idct(coef: &[f64; 64]) -> [f64; 64] {
        let mut out = [0.0; 64];
        for y in 0..8 {
            for x in 0..8 {
                let mut s = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        let cu = if u == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
                        let cv = if v == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
                        s += cu
                            * cv
                            * coef[v * 8 + u]
                            * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos()
                            * (((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI) / 16.0).cos();
                    }
                }
                out[y * 8 + x] = s / 4.0 + 128.0;
            }
        }
        out
    }

    #[test]
    fn idct_matches_definition() {
        let mut seed = 12345u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as i32
        };
        let mut qt = [[0.0f32; 64]; 1];
        for n in 0..64 {
            let (row, col) = (n / 8, n % 8);
            qt[0][col * 8 + row] = AAN_SCALE[row] * AAN_SCALE[col] / 8.0;
        }
        for trial in 0..500 {
            let mut natural = [0.0f64; 64];
            let mut blk = [0i32; 64];
            // Full blocks, blocks limited to low horizontal and/or vertical
            // frequencies, and DC-only blocks.
            let (umax, vmax, last) = match trial % 5 {
                0 => (8, 8, 63),
                1 => (4, 4, 63),
                2 => (8, 4, 63),
                3 => (4, 8, 63),
                _ => (1, 1, 0),
            };
            for n in 0..64 {
                let range = if n == 0 { 1024 } else { 300 >> (trial % 4) };
                let inside = n % 8 < umax && n / 8 < vmax;
                let v = if inside && (n == 0 || rnd() % 3 == 0) {
                    rnd() % range - range / 2
                } else {
                    0
                };
                natural[n] = f64::from(v);
                blk[(n % 8) * 8 + n / 8] = v;
            }
            let want = naive_idct(&natural);
            let mut got = [0u8; 64];
            idct_block(&blk, &qt[0], last, &mut got, 8);
            for i in 0..64 {
                let w = want[i].round().clamp(0.0, 255.0);
                assert!(
                    (f64::from(got[i]) - w).abs() <= 1.0,
                    "trial {trial} pixel {i}: got {} want {}",
                    got[i],
                    want[i]
                );
            }
        }
    }
}
