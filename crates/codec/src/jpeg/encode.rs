//! framewire's own baseline JPEG encoder ([`super::JpegBackend::Rust`]): 4:2:0 chroma and the
//! standard tables at libjpeg's quality scaling, as OpenCV's `imencode` writes, and nothing
//! allocated per frame: the rows it works on are kept between frames and the JPEG is written
//! straight into the caller's buffer.
//!
//! Each 16-row band of the frame is converted to Y, Cb and Cr (chroma as the mean of each 2x2
//! block, computed from the mean colour since the conversion is linear; the four pixels are
//! summed in integers, two channels to a word), then every 8x8 block goes through the AAN
//! floating-point forward DCT (the algorithm of libjpeg's `jfdctflt`, its scale folded into the
//! quantisation divisors), is quantised, and is Huffman-coded with a 64-bit bit buffer that
//! writes four bytes at a time where none of them is 0xFF.
//!
//! Everything but the Huffman coder's walk over the non-zero coefficients is written as
//! fixed-size array loops that the compiler turns into SIMD: the DCT on whole rows of the block
//! (`[f32; 8]` lanes), the transpose between its passes as three rounds of two-row shuffles,
//! the quantisation, and each coefficient's size category and extra bits (the size read from
//! the float exponent, not a bit scan per value).

use super::tables::{
    AAN_SCALE, CHROMA_AC, CHROMA_DC, HuffmanSpec, LUMA_AC, LUMA_DC, ZIGZAG, ZIGZAG_T, quant_table,
};

/// 1.5 * 2^23, and its bits: see the quantisation in [`encode_block`].
const ROUNDING: f32 = 12_582_912.0;
const ROUNDING_BITS: i32 = 0x4B40_0000;

/// The largest quantised AC magnitude baseline JPEG can code (size category 10).
const AC_MAX: i32 = 1023;
/// The largest quantised DC magnitude kept, so that a DC difference fits size category 11.
const DC_MAX: i32 = 1023;

/// A Huffman table as the encoder uses it: each symbol's code and code length.
struct CodeTable {
    code: [u16; 256],
    len: [u8; 256],
}

impl CodeTable {
    /// Assigns the canonical codes (ITU T.81 Annex C) of `spec`.
    fn new(spec: &HuffmanSpec) -> CodeTable {
        let mut table = CodeTable {
            code: [0; 256],
            len: [0; 256],
        };
        let mut code = 0u16;
        let mut symbols = spec.symbols.iter();
        for (bits, &count) in (1u8..).zip(&spec.counts) {
            for symbol in symbols.by_ref().take(usize::from(count)) {
                table.code[usize::from(*symbol)] = code;
                table.len[usize::from(*symbol)] = bits;
                code += 1;
            }
            code <<= 1;
        }
        table
    }
}

/// One component's coding state: quantisation divisors and Huffman tables.
struct Component {
    /// `1 / (q · AAN[u] · AAN[v] · 8)` in the layout the DCT leaves its output (transposed).
    divisors: [f32; 64],
    dc: CodeTable,
    ac: CodeTable,
}

impl Component {
    fn new(quant: &[u8; 64], dc: &HuffmanSpec, ac: &HuffmanSpec) -> Component {
        let mut divisors = [0.0; 64];
        for (i, d) in divisors.iter_mut().enumerate() {
            // Output index i = v * 8 + u holds frequency (u, v) = natural index u * 8 + v.
            let (v, u) = (i / 8, i % 8);
            *d = 1.0 / (f32::from(quant[u * 8 + v]) * AAN_SCALE[u] * AAN_SCALE[v] * 8.0);
        }
        Component {
            divisors,
            dc: CodeTable::new(dc),
            ac: CodeTable::new(ac),
        }
    }
}

/// Writes baseline JPEG (JFIF, 4:2:0, standard Huffman tables) at one quality.
pub(crate) struct BaselineEncoder {
    quality: u8,
    luma_quant: [u8; 64],
    chroma_quant: [u8; 64],
    luma: Component,
    chroma: Component,
    /// One 16-row band of Y, level-shifted (-128), `width` rounded up to 16 wide.
    y: Vec<f32>,
    /// The band's Cb and Cr, 8 rows of half that width, level-shifted.
    cb: Vec<f32>,
    cr: Vec<f32>,
}

impl std::fmt::Debug for BaselineEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaselineEncoder")
            .field("quality", &self.quality)
            .finish_non_exhaustive()
    }
}

impl BaselineEncoder {
    /// An encoder at `quality` (1..=100, clamped).
    pub(crate) fn new(quality: u8) -> BaselineEncoder {
        let luma_quant = quant_table(quality, false);
        let chroma_quant = quant_table(quality, true);
        BaselineEncoder {
            quality,
            luma: Component::new(&luma_quant, &LUMA_DC, &LUMA_AC),
            chroma: Component::new(&chroma_quant, &CHROMA_DC, &CHROMA_AC),
            luma_quant,
            chroma_quant,
            y: Vec::new(),
            cb: Vec::new(),
            cr: Vec::new(),
        }
    }

    /// Appends the JPEG of a `width` x `height` image to `dst`. Row `r` starts at byte
    /// `r * stride` of `pixels` and holds `width` pixels of `BPP` bytes, R, G, B first (B, G, R
    /// if `BGR`; a fourth byte is ignored). The caller checks the sizes: `width` and `height` in
    /// 1..=65535 and `pixels` holding every row.
    pub(crate) fn encode<const BPP: usize, const BGR: bool>(
        &mut self,
        pixels: &[u8],
        stride: usize,
        width: u16,
        height: u16,
        dst: &mut Vec<u8>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, checked just above; that is all the function requires.
            unsafe {
                self.encode_avx2::<BPP, BGR>(pixels, stride, width, height, dst)
            };
            return;
        }
        self.encode_generic::<BPP, BGR>(pixels, stride, width, height, dst);
    }

    /// [`BaselineEncoder::encode`] compiled for AVX2: the same code (the same float operations,
    /// so the same bytes out), with 8-lane vectors and byte shuffles for the RGB loads.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn encode_avx2<const BPP: usize, const BGR: bool>(
        &mut self,
        pixels: &[u8],
        stride: usize,
        width: u16,
        height: u16,
        dst: &mut Vec<u8>,
    ) {
        self.encode_generic::<BPP, BGR>(pixels, stride, width, height, dst);
    }

    /// The encoder itself, inlined into [`BaselineEncoder::encode`]'s variants.
    #[inline(always)]
    pub(crate) fn encode_generic<const BPP: usize, const BGR: bool>(
        &mut self,
        pixels: &[u8],
        stride: usize,
        width: u16,
        height: u16,
        dst: &mut Vec<u8>,
    ) {
        let (w, h) = (usize::from(width), usize::from(height));
        self.write_headers(width, height, dst);
        let padded = w.div_ceil(16) * 16;
        self.y.resize(16 * padded, 0.0);
        self.cb.resize(8 * padded / 2, 0.0);
        self.cr.resize(8 * padded / 2, 0.0);
        // A JPEG is rarely over a bit per pixel at video qualities; reserving that up front keeps
        // the entropy coder's pushes from reallocating in the common case.
        dst.reserve(w * h / 8 + 1024);
        let mut bits = BitWriter::new(dst);
        let mut dc = [0i32; 3];
        for band in 0..h.div_ceil(16) {
            self.fill_band::<BPP, BGR>(pixels, stride, w, h, band * 16, padded);
            for mcu in 0..padded / 16 {
                let x = mcu * 16;
                for (row, col) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
                    let block = load_block(&self.y[row * padded..], padded, x + col);
                    encode_block(block, &self.luma, &mut dc[0], &mut bits);
                }
                let block = load_block(&self.cb, padded / 2, x / 2);
                encode_block(block, &self.chroma, &mut dc[1], &mut bits);
                let block = load_block(&self.cr, padded / 2, x / 2);
                encode_block(block, &self.chroma, &mut dc[2], &mut bits);
            }
        }
        bits.finish();
        dst.extend_from_slice(&[0xFF, 0xD9]);
    }

    /// Converts rows `top..top + 16` (the last row repeated below the image) into the Y, Cb
    /// and Cr bands, repeating the last column out to `padded`.
    #[inline(always)]
    fn fill_band<const BPP: usize, const BGR: bool>(
        &mut self,
        pixels: &[u8],
        stride: usize,
        w: usize,
        h: usize,
        top: usize,
        padded: usize,
    ) {
        let row_bytes = w * BPP;
        let half = padded / 2;
        for pair in 0..8 {
            let r0 = (top + 2 * pair).min(h - 1);
            let r1 = (top + 2 * pair + 1).min(h - 1);
            let src0 = &pixels[r0 * stride..][..row_bytes];
            let src1 = &pixels[r1 * stride..][..row_bytes];
            let (y0, y1) = self.y[2 * pair * padded..][..2 * padded].split_at_mut(padded);
            let cb = &mut self.cb[pair * half..][..half];
            let cr = &mut self.cr[pair * half..][..half];
            convert_rows::<BPP, BGR>((src0, src1), (y0, y1), (cb, cr), w);
        }
    }

    /// SOI, JFIF APP0, DQT, SOF0, DHT and SOS: everything before the entropy-coded data.
    fn write_headers(&self, width: u16, height: u16, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&[0xFF, 0xD8]);
        // APP0 "JFIF\0" version 1.1, no units, 1:1 density, no thumbnail.
        dst.extend_from_slice(&[
            0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ]);
        // DQT: both 8-bit tables, in zigzag order.
        dst.extend_from_slice(&[0xFF, 0xDB, 0, 2 + 2 * 65]);
        for (id, quant) in [(0u8, &self.luma_quant), (1, &self.chroma_quant)] {
            dst.push(id);
            dst.extend(ZIGZAG.iter().map(|&n| quant[n]));
        }
        // SOF0: 8-bit, three components; Y is 2x2 (4:2:0), Cb and Cr 1x1 with table 1.
        let [h1, h0] = height.to_be_bytes();
        let [w1, w0] = width.to_be_bytes();
        dst.extend_from_slice(&[
            0xFF, 0xC0, 0, 17, 8, h1, h0, w1, w0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        ]);
        // DHT: the four standard tables.
        let specs = [
            (0x00u8, &LUMA_DC),
            (0x10, &LUMA_AC),
            (0x01, &CHROMA_DC),
            (0x11, &CHROMA_AC),
        ];
        let len: usize = 2 + specs
            .iter()
            .map(|(_, s)| 17 + s.symbols.len())
            .sum::<usize>();
        dst.extend_from_slice(&[0xFF, 0xC4]);
        dst.extend_from_slice(&(len as u16).to_be_bytes());
        for (class_id, spec) in specs {
            dst.push(class_id);
            dst.extend_from_slice(&spec.counts);
            dst.extend_from_slice(spec.symbols);
        }
        // SOS: the three components interleaved, full spectral range.
        dst.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    }
}

/// Converts two rows of `w` pixels: Y − 128 of each pixel into `y0` and `y1`, Cb and Cr of
/// each 2x2 block into `cb` and `cr` (an odd last column pairs with itself). The last value of
/// each is repeated to the end of its slice.
#[inline(always)]
fn convert_rows<const BPP: usize, const BGR: bool>(
    (src0, src1): (&[u8], &[u8]),
    (y0, y1): (&mut [f32], &mut [f32]),
    (cb, cr): (&mut [f32], &mut [f32]),
    w: usize,
) {
    // Sixteen pixels of both rows at a time: each pixel is loaded once, the arithmetic runs on
    // whole lanes.
    let done = w / 16 * 16;
    let rows = src0.chunks_exact(16 * BPP).zip(src1.chunks_exact(16 * BPP));
    let luma = y0[..done]
        .chunks_exact_mut(16)
        .zip(y1[..done].chunks_exact_mut(16));
    let chroma = cb[..done / 2]
        .chunks_exact_mut(8)
        .zip(cr[..done / 2].chunks_exact_mut(8));
    for ((a, b), ((ya, yb), (cb, cr))) in rows.zip(luma.zip(chroma)) {
        let (wa, wb) = (words::<BPP, 16>(a), words::<BPP, 16>(b));
        let [ra, ga, ba] = in_order::<BGR, 16>(channels(&wa));
        let [rb, gb, bb] = in_order::<BGR, 16>(channels(&wb));
        for i in 0..16 {
            ya[i] = y_of(ra[i], ga[i], ba[i]);
            yb[i] = y_of(rb[i], gb[i], bb[i]);
        }
        // Chroma of each 2x2 block, from the sums of its four pixels in integers: R and B in
        // the two 16-bit halves of one word, G in the low half of another (at most 4 * 255,
        // so nothing carries between halves). The sums are exact, as they were in floats.
        const LOW_BYTES: u32 = 0x00FF_00FF;
        let mut red_blue = [0u32; 16];
        let mut green = [0u32; 16];
        for i in 0..16 {
            red_blue[i] = (wa[i] & LOW_BYTES) + (wb[i] & LOW_BYTES);
            green[i] = ((wa[i] >> 8) & LOW_BYTES) + ((wb[i] >> 8) & LOW_BYTES);
        }
        let mut sums = [[0u32; 8]; 2];
        for i in 0..8 {
            sums[0][i] = red_blue[2 * i] + red_blue[2 * i + 1];
            sums[1][i] = green[2 * i] + green[2 * i + 1];
        }
        let [rb, g] = &sums;
        let mut rgb = [[0.0f32; 8]; 3];
        for i in 0..8 {
            rgb[0][i] = (rb[i] & 0xFFFF) as f32;
            rgb[1][i] = (g[i] & 0xFFFF) as f32;
            rgb[2][i] = (rb[i] >> 16) as f32;
        }
        let rgb = in_order::<BGR, 8>(rgb);
        // Cb and Cr in loops of their own: one loop writing both compiles to scalar code.
        let [r, g, b] = &rgb;
        for i in 0..8 {
            cb[i] = 0.25 * cbcr(r[i], g[i], b[i]).0;
        }
        for i in 0..8 {
            cr[i] = 0.25 * cbcr(r[i], g[i], b[i]).1;
        }
    }
    // The last up to 15 pixels one at a time.
    let px = |row: &[u8], x: usize| {
        let p = &row[x * BPP..][..3];
        let [r, g, b] =
            in_order::<BGR, 1>([[f32::from(p[0])], [f32::from(p[1])], [f32::from(p[2])]]);
        (r[0], g[0], b[0])
    };
    for x in done..w {
        let (r, g, b) = px(src0, x);
        y0[x] = y_of(r, g, b);
        let (r, g, b) = px(src1, x);
        y1[x] = y_of(r, g, b);
    }
    for c in done / 2..w.div_ceil(2) {
        let (l, r) = (2 * c, (2 * c + 1).min(w - 1));
        let (a0, a1, b0, b1) = (px(src0, l), px(src0, r), px(src1, l), px(src1, r));
        (cb[c], cr[c]) = cbcr(
            0.25 * (a0.0 + a1.0 + b0.0 + b1.0),
            0.25 * (a0.1 + a1.1 + b0.1 + b1.1),
            0.25 * (a0.2 + a1.2 + b0.2 + b1.2),
        );
    }
    for (plane, filled) in [(y0, w), (y1, w), (cb, w.div_ceil(2)), (cr, w.div_ceil(2))] {
        let last = plane[filled - 1];
        plane[filled..].fill(last);
    }
}

/// The three channels of pixels read in byte order as R, G and B: swapped to that order if
/// the bytes were B, G, R.
#[inline(always)]
fn in_order<const BGR: bool, const N: usize>(channels: [[f32; N]; 3]) -> [[f32; N]; 3] {
    let [first, g, last] = channels;
    if BGR {
        [last, g, first]
    } else {
        [first, g, last]
    }
}

/// Y of a colour, level-shifted.
#[inline(always)]
fn y_of(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b - 128.0
}

/// The first `N` pixels of `px` (`BPP` bytes each) as little-endian words, R in the low
/// byte: one load per pixel, not three byte loads, so that the unpacking after is plain lane
/// arithmetic. The fourth byte is not the pixel's (the next pixel's R for RGB, 0 for the last).
#[inline(always)]
fn words<const BPP: usize, const N: usize>(px: &[u8]) -> [u32; N] {
    let px = &px[..N * BPP];
    let mut words = [0u32; N];
    for (i, word) in words.iter_mut().enumerate() {
        let p = &px[i * BPP..];
        *word = match p {
            [r, g, b, x, ..] if BPP == 4 || i + 1 < N => u32::from_le_bytes([*r, *g, *b, *x]),
            [r, g, b, ..] => u32::from_le_bytes([*r, *g, *b, 0]),
            _ => 0,
        };
    }
    words
}

/// R, G and B of each of `words` (see [`words`]), as floats.
#[inline(always)]
fn channels<const N: usize>(words: &[u32; N]) -> [[f32; N]; 3] {
    let mut rgb = [[0.0; N]; 3];
    for (c, plane) in rgb.iter_mut().enumerate() {
        for (v, w) in plane.iter_mut().zip(words) {
            *v = ((w >> (8 * c)) & 0xFF) as i32 as f32;
        }
    }
    rgb
}

/// Cb and Cr of a colour, level-shifted (so without the +128).
#[inline(always)]
fn cbcr(r: f32, g: f32, b: f32) -> (f32, f32) {
    (
        -0.168_736 * r - 0.331_264 * g + 0.5 * b,
        0.5 * r - 0.418_688 * g - 0.081_312 * b,
    )
}

/// The 8x8 block at column `x` of the 8 rows of `plane` (rows `stride` apart).
#[inline(always)]
fn load_block(plane: &[f32], stride: usize, x: usize) -> [[f32; 8]; 8] {
    let mut block = [[0.0; 8]; 8];
    for (r, row) in block.iter_mut().enumerate() {
        row.copy_from_slice(&plane[r * stride + x..][..8]);
    }
    block
}

/// The AAN forward DCT along the first index, for all 8 lanes of the second at once.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `l` is the SIMD lane: every line reads the same lane.
fn fdct_columns(d: &mut [[f32; 8]; 8]) {
    for l in 0..8 {
        let tmp0 = d[0][l] + d[7][l];
        let tmp7 = d[0][l] - d[7][l];
        let tmp1 = d[1][l] + d[6][l];
        let tmp6 = d[1][l] - d[6][l];
        let tmp2 = d[2][l] + d[5][l];
        let tmp5 = d[2][l] - d[5][l];
        let tmp3 = d[3][l] + d[4][l];
        let tmp4 = d[3][l] - d[4][l];

        // Even part.
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        d[0][l] = tmp10 + tmp11;
        d[4][l] = tmp10 - tmp11;
        let z1 = (tmp12 + tmp13) * std::f32::consts::FRAC_1_SQRT_2;
        d[2][l] = tmp13 + z1;
        d[6][l] = tmp13 - z1;

        // Odd part.
        let tmp10 = tmp4 + tmp5;
        let tmp11 = tmp5 + tmp6;
        let tmp12 = tmp6 + tmp7;
        let z5 = (tmp10 - tmp12) * 0.382_683_43;
        let z2 = 0.541_196_1 * tmp10 + z5;
        let z4 = 1.306_563 * tmp12 + z5;
        let z3 = tmp11 * std::f32::consts::FRAC_1_SQRT_2;
        let z11 = tmp7 + z3;
        let z13 = tmp7 - z3;
        d[5][l] = z13 + z2;
        d[3][l] = z13 - z2;
        d[1][l] = z11 + z4;
        d[7][l] = z11 - z4;
    }
}

/// Transposes the block in three rounds of two-row shuffles (the unpack, shuffle and
/// 128-bit permute steps of an AVX 8x8 transpose), which the compiler emits as vector
/// shuffles, where an element-wise transpose compiles to 64 scalar moves.
#[inline(always)]
fn transpose(d: &mut [[f32; 8]; 8]) {
    // Round 1: interleave rows 2i and 2i + 1, within each 4-lane half.
    const LOW: [u8; 8] = [0, 8, 1, 9, 4, 12, 5, 13];
    const HIGH: [u8; 8] = [2, 10, 3, 11, 6, 14, 7, 15];
    let mut t = [[0.0f32; 8]; 8];
    for i in 0..4 {
        t[2 * i] = shuffle(&d[2 * i], &d[2 * i + 1], LOW);
        t[2 * i + 1] = shuffle(&d[2 * i], &d[2 * i + 1], HIGH);
    }
    // Round 2: pairs of pairs; u[k] (k < 4) holds column k of rows 0-3 in its low half and
    // column k + 4 in its high half; u[k + 4] the same for rows 4-7.
    const EVEN: [u8; 8] = [0, 1, 8, 9, 4, 5, 12, 13];
    const ODD: [u8; 8] = [2, 3, 10, 11, 6, 7, 14, 15];
    let mut u = [[0.0f32; 8]; 8];
    for half in 0..2 {
        let (a, b) = (4 * half, 4 * half + 2);
        u[4 * half] = shuffle(&t[a], &t[b], EVEN);
        u[4 * half + 1] = shuffle(&t[a], &t[b], ODD);
        u[4 * half + 2] = shuffle(&t[a + 1], &t[b + 1], EVEN);
        u[4 * half + 3] = shuffle(&t[a + 1], &t[b + 1], ODD);
    }
    // Round 3: join the halves.
    const FIRST: [u8; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
    const SECOND: [u8; 8] = [4, 5, 6, 7, 12, 13, 14, 15];
    for k in 0..4 {
        d[k] = shuffle(&u[k], &u[k + 4], FIRST);
        d[k + 4] = shuffle(&u[k], &u[k + 4], SECOND);
    }
}

/// Lane `i` of the result is lane `pick[i]` of `a` followed by `b` (a constant after inlining,
/// so this is one vector shuffle).
#[inline(always)]
fn shuffle(a: &[f32; 8], b: &[f32; 8], pick: [u8; 8]) -> [f32; 8] {
    std::array::from_fn(|i| {
        let p = usize::from(pick[i]);
        if p < 8 { a[p] } else { b[p & 7] }
    })
}

/// Transforms, quantises and Huffman-codes one block.
#[inline(always)]
fn encode_block(
    mut block: [[f32; 8]; 8],
    component: &Component,
    prev_dc: &mut i32,
    bits: &mut BitWriter<'_>,
) {
    fdct_columns(&mut block);
    transpose(&mut block);
    fdct_columns(&mut block);
    // Round to nearest: adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits
    // (exact for |x| < 2^22; quantised coefficients stay far below). Bit operations only, so
    // the loop runs on SIMD lanes, which a float-to-int cast does not.
    let mut quantised = [0i32; 64];
    for (q, (&d, &div)) in quantised
        .iter_mut()
        .zip(block.as_flattened().iter().zip(&component.divisors))
    {
        *q = ((d * div + ROUNDING).to_bits() as i32 - ROUNDING_BITS).clamp(-AC_MAX, AC_MAX);
    }
    let mut zz = [0i32; 64];
    for (z, &k) in zz.iter_mut().zip(&ZIGZAG_T) {
        *z = quantised[k];
    }

    bits.code_block(&zz, component, prev_dc);
}

/// A value's size category and its extra bits (ITU T.81 F.1.2.1: negative values as v - 1).
#[inline(always)]
fn magnitude(v: i32) -> (u32, u32) {
    let size = v.unsigned_abs().checked_ilog2().map_or(0, |l| l + 1);
    (size, extra_bits(v, size))
}

/// [`magnitude`] of each of `zz` (values within ±1023), on SIMD lanes: the size category is
/// read from the exponent of the value as a float (exact for these values; 0 has exponent 0),
/// so no value takes a bit scan of its own.
#[inline(always)]
fn sizes_and_extra_bits(zz: &[i32; 64]) -> ([u32; 64], [u32; 64]) {
    let mut sizes = [0u32; 64];
    let mut extras = [0u32; 64];
    for ((size, extra), &v) in sizes.iter_mut().zip(&mut extras).zip(zz) {
        let exponent = ((v.wrapping_abs() as f32).to_bits() >> 23) as i32;
        *size = (exponent - 126).max(0) as u32;
        *extra = extra_bits(v, *size);
    }
    (sizes, extras)
}

/// The low `size` bits of `v`, or of `v - 1` when `v` is negative.
#[inline(always)]
fn extra_bits(v: i32, size: u32) -> u32 {
    (v + (v >> 31)) as u32 & ((1u32 << size) - 1)
}

/// Bit `k` set where `zz[k]` is not 0.
#[inline(always)]
fn nonzero_mask(zz: &[i32; 64]) -> u64 {
    let mut flags = [0u8; 64];
    for (f, &z) in flags.iter_mut().zip(zz) {
        *f = u8::from(z != 0);
    }
    let mut mask = 0u64;
    for (i, chunk) in flags.chunks_exact(8).enumerate() {
        let bytes = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Eight 0-or-1 bytes to eight bits: the product's top byte is b0 | b1 << 1 | ...
        // (every partial product lands on its own bit, so nothing carries into it).
        mask |= (bytes.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
    }
    mask
}

/// Bytes [`BitWriter`] gathers before it appends them to the output `Vec`.
const STAGING: usize = 4096;
/// The most bytes one block can take: 64 codes of at most 27 bits, every byte stuffed.
const BLOCK_MAX: usize = 64 * 27 / 8 * 2 + 16;

/// Entropy-coded bits, with a 0 after every 0xFF byte, gathered in a fixed buffer and appended
/// to a `Vec` a few KiB at a time.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    staging: [u8; STAGING],
    pending: Pending,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter {
            out,
            staging: [0; STAGING],
            pending: Pending::default(),
        }
    }

    /// Huffman-codes one quantised block in zigzag order, its DC as the difference from
    /// `prev_dc`.
    #[inline(always)]
    fn code_block(&mut self, zz: &[i32; 64], component: &Component, prev_dc: &mut i32) {
        self.make_room();
        // The bit buffer in a local (registers) for the block, not behind `self`.
        let mut pending = self.pending;
        let staging = &mut self.staging;
        let mut put = |bits: u32, n: u32| put_bits(&mut pending, staging, bits, n);

        let dc = zz[0].clamp(-DC_MAX, DC_MAX);
        let diff = dc - *prev_dc;
        *prev_dc = dc;
        let (size, extra) = magnitude(diff);
        let table = &component.dc;
        put(
            (u32::from(table.code[size as usize]) << size) | extra,
            u32::from(table.len[size as usize]) + size,
        );

        let table = &component.ac;
        let (sizes, extras) = sizes_and_extra_bits(zz);
        let mut nonzero = nonzero_mask(zz) & !1;
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            let mut run = k - last - 1;
            while run >= 16 {
                put(u32::from(table.code[0xF0]), u32::from(table.len[0xF0]));
                run -= 16;
            }
            let (size, extra) = (sizes[k as usize & 63], extras[k as usize & 63]);
            let symbol = ((run << 4) | size) as usize & 0xFF;
            put(
                (u32::from(table.code[symbol]) << size) | extra,
                u32::from(table.len[symbol]) + size,
            );
            last = k;
        }
        if last != 63 {
            put(u32::from(table.code[0x00]), u32::from(table.len[0x00]));
        }
        self.pending = pending;
    }

    /// Flushes the staging buffer unless a block's worth of bytes ([`BLOCK_MAX`]) is free.
    #[inline(always)]
    fn make_room(&mut self) {
        if self.pending.len > STAGING - BLOCK_MAX {
            self.out
                .extend_from_slice(&self.staging[..self.pending.len]);
            self.pending.len = 0;
        }
    }

    /// Appends the low `len` bits of `bits` (`len` at most 32; `bits` has no higher bits set).
    fn put(&mut self, bits: u32, len: u32) {
        self.make_room();
        put_bits(&mut self.pending, &mut self.staging, bits, len);
    }

    /// Pads the last byte with 1 bits and writes what is pending.
    fn finish(mut self) {
        let pad = (8 - self.pending.count % 8) % 8;
        self.put((1 << pad) - 1, pad);
        self.make_room();
        // At most 3 whole bytes are left.
        let Pending { acc, count, .. } = self.pending;
        for shift in (0..count).step_by(8).rev() {
            put_byte(&mut self.pending, &mut self.staging, (acc >> shift) as u8);
        }
        self.out
            .extend_from_slice(&self.staging[..self.pending.len]);
    }
}

/// A [`BitWriter`]'s bit buffer and staging length: copied into a local for each block, so that
/// they live in registers there.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// Pending bits in the low `count` bits.
    acc: u64,
    count: u32,
    /// Bytes used in the staging buffer.
    len: usize,
}

/// Appends the low `n` bits of `bits` (`n` at most 32; `bits` has no higher bits set), writing
/// each whole 32-bit word to `staging`. The caller left [`BLOCK_MAX`] bytes free.
#[inline(always)]
fn put_bits(p: &mut Pending, staging: &mut [u8; STAGING], bits: u32, n: u32) {
    p.acc = (p.acc << n) | u64::from(bits);
    p.count += n;
    if p.count >= 32 {
        p.count -= 32;
        let word = (p.acc >> p.count) as u32;
        // A zero byte in !word is a 0xFF byte in word.
        let inverted = !word;
        let has_ff = inverted.wrapping_sub(0x0101_0101) & !inverted & 0x8080_8080 != 0;
        if !has_ff && let Some(dst) = staging.get_mut(p.len..p.len + 4) {
            dst.copy_from_slice(&word.to_be_bytes());
            p.len += 4;
        } else {
            for b in word.to_be_bytes() {
                put_byte(p, staging, b);
            }
        }
    }
}

/// Writes one byte to `staging`, and a 0 after it if it is 0xFF.
#[inline(always)]
fn put_byte(p: &mut Pending, staging: &mut [u8; STAGING], b: u8) {
    // The caller left `BLOCK_MAX` bytes free, so neither `get_mut` misses.
    if let Some(dst) = staging.get_mut(p.len) {
        *dst = b;
        p.len += 1;
    }
    if b == 0xFF
        && let Some(dst) = staging.get_mut(p.len)
    {
        *dst = 0;
        p.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    /// Colour gradients, a sharp edge in brightness and some grey noise, `bpp` bytes a pixel
    /// (a 4th byte is 0x55). Colour changes slowly, as 4:2:0 assumes; brightness need not.
    fn image(w: usize, h: usize, bpp: usize) -> Vec<u8> {
        let mut px = vec![0x55; w * h * bpp];
        let mut seed = 0x1234_5678u32;
        for y in 0..h {
            for x in 0..w {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let grey = (seed >> 28) as usize + if x > w / 2 { 90 } else { 0 };
                let p = &mut px[(y * w + x) * bpp..];
                p[0] = (40 + 2 * x % 100 + grey) as u8;
                p[1] = (40 + 2 * y % 100 + grey) as u8;
                p[2] = (90 + grey) as u8;
            }
        }
        px
    }

    /// An independent decoder's rgb8 pixels.
    fn zune_decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
        let options = DecoderOptions::default()
            .set_strict_mode(true)
            .jpeg_set_out_colorspace(ColorSpace::RGB);
        let mut dec = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        let pixels = dec.decode().expect("zune-jpeg decodes it");
        let info = dec.info().expect("header read");
        (usize::from(info.width), usize::from(info.height), pixels)
    }

    #[test]
    fn odd_sizes_decode_close_to_the_original() {
        for (w, h) in [
            (1, 1),
            (2, 1),
            (7, 5),
            (17, 9),
            (16, 16),
            (33, 31),
            (100, 3),
        ] {
            for bpp in [3, 4] {
                let px = image(w, h, bpp);
                let mut jpeg = Vec::new();
                let mut enc = BaselineEncoder::new(95);
                let (w16, h16) = (w as u16, h as u16);
                if bpp == 3 {
                    enc.encode::<3, false>(&px, w * 3, w16, h16, &mut jpeg);
                } else {
                    enc.encode::<4, false>(&px, w * 4, w16, h16, &mut jpeg);
                }
                let (dw, dh, out) = zune_decode(&jpeg);
                assert_eq!((dw, dh), (w, h));
                let mut total = 0u64;
                for (i, rgb) in out.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        total += u64::from(rgb[c].abs_diff(px[i * bpp + c]));
                    }
                }
                let mean = total as f64 / (w * h * 3) as f64;
                assert!(mean < 3.0, "{w}x{h} bpp {bpp}: mean abs error {mean:.2}");
            }
        }
    }

    #[test]
    fn every_code_path_writes_the_same_bytes() {
        // The AVX2 build of the encoder (where the CPU has it) and the baseline build run the
        // same float operations in the same order, so they must agree to the byte.
        let (w, h) = (67, 45);
        let px = image(w, h, 3);
        let (mut dispatched, mut generic) = (Vec::new(), Vec::new());
        let mut enc = BaselineEncoder::new(80);
        enc.encode::<3, false>(&px, w * 3, w as u16, h as u16, &mut dispatched);
        enc.encode_generic::<3, false>(&px, w * 3, w as u16, h as u16, &mut generic);
        assert_eq!(dispatched, generic);
    }

    #[test]
    fn bgr_pixels_encode_to_the_same_bytes_as_the_rgb_ones() {
        // 67 wide: the sixteen-pixel loop and the pixel-at-a-time tail both read BGR.
        let (w, h) = (67, 45);
        let rgb = image(w, h, 3);
        let bgr: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        let (mut from_rgb, mut from_bgr, mut generic) = (Vec::new(), Vec::new(), Vec::new());
        let mut enc = BaselineEncoder::new(80);
        enc.encode::<3, false>(&rgb, w * 3, w as u16, h as u16, &mut from_rgb);
        enc.encode::<3, true>(&bgr, w * 3, w as u16, h as u16, &mut from_bgr);
        enc.encode_generic::<3, true>(&bgr, w * 3, w as u16, h as u16, &mut generic);
        assert_eq!(from_bgr, from_rgb);
        assert_eq!(generic, from_rgb);
    }

    #[test]
    fn reencoding_reuses_every_buffer() {
        let (w, h) = (64, 48);
        let px = image(w, h, 3);
        let mut enc = BaselineEncoder::new(80);
        let mut jpeg = Vec::new();
        enc.encode::<3, false>(&px, w * 3, w as u16, h as u16, &mut jpeg);
        let first = jpeg.clone();
        let bands = (enc.y.as_ptr(), enc.cb.as_ptr(), enc.cr.as_ptr());
        jpeg.clear();
        let out = jpeg.as_ptr();
        enc.encode::<3, false>(&px, w * 3, w as u16, h as u16, &mut jpeg);
        assert_eq!(jpeg, first);
        assert_eq!((enc.y.as_ptr(), enc.cb.as_ptr(), enc.cr.as_ptr()), bands);
        assert_eq!(jpeg.as_ptr(), out);
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let mut block = [[0.0f32; 8]; 8];
        for (r, row) in block.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (r * 8 + c) as f32;
            }
        }
        let original = block;
        transpose(&mut block);
        for r in 0..8 {
            for c in 0..8 {
                assert_eq!(block[r][c], original[c][r], "row {r} column {c}");
            }
        }
    }

    #[test]
    fn magnitude_follows_t81_f_1_2_1() {
        assert_eq!(magnitude(0), (0, 0));
        assert_eq!(magnitude(1), (1, 1));
        assert_eq!(magnitude(-1), (1, 0));
        assert_eq!(magnitude(5), (3, 0b101));
        assert_eq!(magnitude(-5), (3, 0b010));
        assert_eq!(magnitude(1023), (10, 1023));
        assert_eq!(magnitude(-2047), (11, 0));
    }

    #[test]
    fn lane_sizes_and_extra_bits_match_magnitude() {
        for first in (-AC_MAX..=AC_MAX).step_by(64) {
            let zz: [i32; 64] = std::array::from_fn(|i| (first + i as i32).min(AC_MAX));
            let (sizes, extras) = sizes_and_extra_bits(&zz);
            for (i, &v) in zz.iter().enumerate() {
                assert_eq!((sizes[i], extras[i]), magnitude(v), "value {v}");
            }
        }
    }

    #[test]
    fn bit_writer_stuffs_0xff_and_pads_with_ones() {
        let mut out = Vec::new();
        let mut bits = BitWriter::new(&mut out);
        bits.put(0xFF, 8);
        bits.put(0b101, 3);
        bits.put(0x12_34_56, 24);
        bits.put(0xFF_FF, 16);
        bits.finish();
        // 0xFF | 101 then 0x123456 then 0xFFFF, padded with ones: bytes
        // FF, A2, 46, 8A, DF, FF, FF (the last 5 bits pad).
        assert_eq!(
            out,
            [0xFF, 0x00, 0xA2, 0x46, 0x8A, 0xDF, 0xFF, 0x00, 0xFF, 0x00]
        );
    }

    #[test]
    fn canonical_codes_of_the_luma_dc_table() {
        let t = CodeTable::new(&LUMA_DC);
        // Table K.3: category 0 is 00, 1..=5 are 010..110, 6 is 1110, 11 is 111111110.
        assert_eq!((t.code[0], t.len[0]), (0b00, 2));
        assert_eq!((t.code[1], t.len[1]), (0b010, 3));
        assert_eq!((t.code[5], t.len[5]), (0b110, 3));
        assert_eq!((t.code[6], t.len[6]), (0b1110, 4));
        assert_eq!((t.code[11], t.len[11]), (0b1_1111_1110, 9));
    }
}
