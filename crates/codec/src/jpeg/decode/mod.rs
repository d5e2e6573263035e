//! Baseline JPEG decoder that keeps its buffers between images.
//!
//! Decodes sequential Huffman-coded 8-bit JPEGs (SOF0 and SOF1) with one
//! interleaved scan: grayscale (1 component) or YCbCr / Adobe RGB
//! (3 components) with sampling factors of 1 or 2 (4:4:4, 4:2:2, 4:2:0,
//! 4:4:0), restart markers, and the ITU T.81 Annex K Huffman tables when an
//! image carries no DHT segment (webcam MJPEG). Output is packed RGB8.
//!
//! Refused as [`DecodeError::Unsupported`] (so the caller can fall back to a
//! more complete decoder): progressive, lossless, hierarchical and
//! arithmetic-coded frames, 12-bit precision, 2 or 4 (CMYK) components,
//! sampling factors above 2, several scans, and a height given by a DNL
//! marker. Malformed or truncated input is [`DecodeError::Invalid`]; the
//! decoder never panics on any input bytes and checks the frame size
//! against the caller's [`Limits`] before sizing any buffer.
//!
//! [`BaselineDecoder`] keeps its Huffman lookup tables, quantisation tables,
//! component planes and row buffers between calls: decoding another image
//! with the same size, component count and sampling factors performs no heap
//! allocation (only errors allocate their message).

use std::fmt;

use super::tables::{AAN_SCALE, CHROMA_AC, CHROMA_DC, LUMA_AC, LUMA_DC, ZIGZAG, ZIGZAG_T};

/// Largest size the caller accepts, checked before anything is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
}

/// Why an image could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// A valid JPEG this decoder does not handle (progressive, arithmetic,
    /// 12-bit, CMYK, unusual sampling, several scans ...): the caller may try
    /// another decoder.
    Unsupported(String),
    /// Not a decodable JPEG: names what is wrong and the byte offset where it
    /// was found.
    Invalid {
        /// Byte offset in the input where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The header's size is above the limits.
    TooLarge {
        /// Width given by the frame header.
        width: u32,
        /// Height given by the frame header.
        height: u32,
        /// The limits that were exceeded.
        limits: Limits,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported(reason) => write!(f, "unsupported JPEG: {reason}"),
            DecodeError::Invalid { offset, reason } => write!(f, "at byte {offset}: {reason}"),
            DecodeError::TooLarge {
                width,
                height,
                limits,
            } => write!(
                f,
                "image {width}x{height} exceeds the limit of {}x{}",
                limits.max_width, limits.max_height
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

fn invalid(offset: usize, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        offset,
        reason: reason.into(),
    }
}

fn unsupported(reason: impl Into<String>) -> DecodeError {
    DecodeError::Unsupported(reason.into())
}

/// Frame size and component count of a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of colour components (1 or 3).
    pub components: u8,
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/// Bits resolved by one Huffman table lookup.
const LOOKUP_BITS: u32 = 9;
const LOOKUP_SIZE: usize = 1 << LOOKUP_BITS;

// ---------------------------------------------------------------------------
// Huffman tables
// ---------------------------------------------------------------------------

/// A decoded Huffman table: a `LOOKUP_BITS` lookahead table, a combined
/// "symbol + value" table for short AC coefficients, and the canonical
/// `maxcode` / offset arrays (ITU T.81 F.2.2.3) for longer codes.
struct HuffTable {
    defined: bool,
    /// `(code length << 8) | symbol`, 0 when the prefix is no code this short.
    lookup: [u16; LOOKUP_SIZE],
    /// For AC tables: `(value << 8) | (run << 4) | (code length + value bits)`
    /// when code and value bits both fit in the lookahead; 0 otherwise.
    fast_ac: [i32; LOOKUP_SIZE],
    /// Largest code of each length (index 1..=16), -1 when none.
    maxcode: [i32; 17],
    /// Added to a code of each length to get its index into `values`.
    delta: [i32; 17],
    values: [u8; 256],
}

impl Default for HuffTable {
    fn default() -> Self {
        HuffTable {
            defined: false,
            lookup: [0; LOOKUP_SIZE],
            fast_ac: [0; LOOKUP_SIZE],
            maxcode: [-1; 17],
            delta: [0; 17],
            values: [0; 256],
        }
    }
}

impl fmt::Debug for HuffTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuffTable")
            .field("defined", &self.defined)
            .finish_non_exhaustive()
    }
}

/// Sign-extends a `bits`-bit magnitude category value (ITU T.81 F.2.2.1).
#[inline(always)]
fn extend(v: u32, bits: u32) -> i32 {
    // bits is 1..=16, v < 2^bits.
    let v = v as i32;
    if v < (1 << (bits - 1)) {
        v - (1 << bits) + 1
    } else {
        v
    }
}

impl HuffTable {
    /// Builds the table from the 16 code counts and the symbol values.
    /// Returns a static reason on a malformed table.
    fn build(&mut self, counts: &[u8; 16], values: &[u8], is_dc: bool) -> Result<(), &'static str> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 || total != values.len() {
            return Err("huffman table has more than 256 codes");
        }
        if is_dc && values.iter().any(|&v| v > 15) {
            return Err("DC huffman table has a symbol above 15");
        }
        self.defined = false;
        self.lookup = [0; LOOKUP_SIZE];
        self.fast_ac = [0; LOOKUP_SIZE];
        self.maxcode = [-1; 17];
        self.delta = [0; 17];
        self.values = [0; 256];
        self.values[..total].copy_from_slice(values);

        let mut code: u32 = 0;
        let mut k: usize = 0;
        for len in 1..=16u32 {
            let count = usize::from(counts[(len - 1) as usize]);
            if count > 0 {
                self.delta[len as usize] = k as i32 - code as i32;
                for _ in 0..count {
                    if code >= (1u32 << len) {
                        return Err("huffman code lengths overflow their code space");
                    }
                    if len <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - len;
                        let first = (code << shift) as usize;
                        let entry = ((len as u16) << 8) | u16::from(self.values[k]);
                        for e in &mut self.lookup[first..first + (1usize << shift)] {
                            *e = entry;
                        }
                    }
                    code += 1;
                    k += 1;
                }
                self.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }

        if !is_dc {
            for (idx, fast) in self.fast_ac.iter_mut().enumerate() {
                let entry = self.lookup[idx];
                if entry == 0 {
                    continue;
                }
                let len = u32::from(entry >> 8);
                let sym = entry & 0xff;
                let run = i32::from(sym >> 4);
                let size = u32::from(sym & 15);
                if size == 0 || len + size > LOOKUP_BITS {
                    continue;
                }
                let raw = ((idx as u32) >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
                let value = extend(raw, size);
                *fast = (value << 8) | (run << 4) | (len + size) as i32;
            }
        }
        self.defined = true;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Bit reader
// ---------------------------------------------------------------------------

/// Reads entropy-coded bits, removing byte stuffing. Stops at any marker (or
/// the end of input) and then supplies zero bits, counting them so that
/// consuming them is detected as truncation.
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Bit buffer, MSB aligned; bits below the valid ones are zero.
    buf: u64,
    nbits: u32,
    /// Zero bits appended after a marker / end of input.
    phantom: u32,
    at_marker: bool,
}

/// Number of leading bytes (in stream order) of the big-endian word `w`
/// before the first 0xFF byte; 8 when there is none.
#[inline(always)]
fn bytes_before_ff(w: u64) -> u32 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = !w;
    // Per byte: high bit set iff the byte of `x` is non-zero (no carries
    // cross bytes), so `mask` has exactly the high bits of 0xFF bytes of w.
    let t = (x & LOW7) + LOW7;
    let mask = !(t | x | LOW7);
    mask.leading_zeros() / 8
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            buf: 0,
            nbits: 0,
            phantom: 0,
            at_marker: false,
        }
    }

    /// Makes sure at least 32 bits are buffered.
    #[inline(always)]
    fn ensure(&mut self) {
        if self.nbits < 32 {
            self.refill();
        }
    }

    /// Fills the buffer to at least 57 bits.
    #[inline(always)]
    fn refill(&mut self) {
        if !self.at_marker
            && let Some(chunk) = self.data.get(self.pos..).and_then(|s| s.first_chunk::<8>())
        {
            let w = u64::from_be_bytes(*chunk);
            // Whole bytes that fit (4..=8 since nbits < 32 here), up to the
            // first 0xFF.
            let fit = (64 - self.nbits) >> 3;
            let n = fit.min(bytes_before_ff(w));
            if n > 0 {
                let top = w >> (64 - 8 * n);
                self.buf |= top << (64 - self.nbits - 8 * n);
                self.nbits += 8 * n;
                self.pos += n as usize;
                if n == fit {
                    return;
                }
            }
        }
        self.refill_slow();
    }

    /// Byte-by-byte refill handling 0xFF00 stuffing and markers.
    #[inline(never)]
    fn refill_slow(&mut self) {
        while self.nbits <= 56 {
            if self.at_marker {
                let add = (64 - self.nbits) & !7;
                self.phantom = self.phantom.saturating_add(add);
                self.nbits += add;
                return;
            }
            let byte = match self.data.get(self.pos) {
                None => {
                    self.at_marker = true;
                    continue;
                }
                Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0x00) => {
                    self.pos += 2;
                    0xFF
                }
                Some(&0xFF) => {
                    self.at_marker = true;
                    continue;
                }
                Some(&b) => {
                    self.pos += 1;
                    b
                }
            };
            self.buf |= u64::from(byte) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    /// True when bits past a marker or the end of input were consumed.
    #[inline(always)]
    fn overrun(&self) -> bool {
        self.phantom > self.nbits
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.nbits -= n;
    }

    /// Decodes one Huffman symbol. Needs 16 buffered bits.
    #[inline(always)]
    fn decode(&mut self, t: &HuffTable) -> Result<u8, &'static str> {
        let e = t.lookup[(self.buf >> (64 - LOOKUP_BITS)) as usize];
        if e != 0 {
            self.consume(u32::from(e >> 8));
            return Ok(e as u8);
        }
        self.decode_slow(t)
    }

    #[inline(never)]
    fn decode_slow(&mut self, t: &HuffTable) -> Result<u8, &'static str> {
        let code16 = (self.buf >> 48) as i32;
        for len in LOOKUP_BITS + 1..=16 {
            let code = code16 >> (16 - len);
            if code <= t.maxcode[len as usize] {
                let idx = code + t.delta[len as usize];
                let sym = usize::try_from(idx)
                    .ok()
                    .and_then(|i| t.values.get(i))
                    .copied()
                    .ok_or("huffman code not in table")?;
                self.consume(len);
                return Ok(sym);
            }
        }
        Err("huffman code not in table")
    }

    /// Reads `s` (1..=15) bits and sign-extends them. Needs `s` buffered bits.
    #[inline(always)]
    fn receive_extend(&mut self, s: u32) -> i32 {
        let v = (self.buf >> (64 - s)) as u32;
        self.consume(s);
        extend(v, s)
    }

    /// Ends a restart interval: checks the data was complete, finds the
    /// marker and checks it is `RST<expected>`.
    fn restart(&mut self, expected: u8) -> Result<(), &'static str> {
        if self.overrun() {
            return Err("entropy data truncated before restart marker");
        }
        self.buf = 0;
        self.nbits = 0;
        self.phantom = 0;
        // Skip whatever is left before the marker (normally nothing).
        loop {
            match self.data.get(self.pos) {
                None => return Err("missing restart marker"),
                Some(&0xFF) => match self.data.get(self.pos + 1) {
                    Some(&0x00) => self.pos += 2,
                    Some(&0xFF) => self.pos += 1,
                    Some(_) => break,
                    None => return Err("missing restart marker"),
                },
                Some(_) => self.pos += 1,
            }
        }
        // data[pos] == 0xFF, data[pos + 1] is the marker code.
        match self.data.get(self.pos + 1) {
            Some(&m) if m == 0xD0 + expected => {
                self.pos += 2;
                self.at_marker = false;
                Ok(())
            }
            Some(&(0xD0..=0xD7)) => Err("wrong restart marker number"),
            _ => Err("missing restart marker"),
        }
    }
}

// ---------------------------------------------------------------------------
// Block decoding and IDCT
// ---------------------------------------------------------------------------

/// Decodes one 8x8 block's coefficients into `blk` (transposed natural
/// order, which must be zero on entry). Returns the last zigzag index that
/// was written (0 when only DC).
#[inline(always)]
fn decode_block(
    rd: &mut BitReader<'_>,
    dc: &HuffTable,
    ac: &HuffTable,
    pred: &mut i32,
    blk: &mut [i32; 64],
) -> Result<usize, &'static str> {
    rd.ensure();
    let s = rd.decode(dc)?;
    let diff = if s == 0 {
        0
    } else {
        rd.receive_extend(u32::from(s))
    };
    *pred = pred.wrapping_add(diff);
    blk[0] = *pred;

    let mut k = 1usize;
    let mut last = 0usize;
    while k < 64 {
        rd.ensure();
        let f = ac.fast_ac[(rd.buf >> (64 - LOOKUP_BITS)) as usize];
        if f != 0 {
            rd.consume((f & 15) as u32);
            k += ((f >> 4) & 15) as usize;
            if k > 63 {
                return Err("AC coefficient index past 63");
            }
            blk[ZIGZAG_T[k]] = f >> 8;
            last = k;
            k += 1;
            continue;
        }
        let sym = rd.decode(ac)?;
        let run = usize::from(sym >> 4);
        let size = u32::from(sym & 15);
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += run;
        if k > 63 {
            return Err("AC coefficient index past 63");
        }
        blk[ZIGZAG_T[k]] = rd.receive_extend(size);
        last = k;
        k += 1;
    }
    Ok(last)
}

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
fn idct_block(blk: &[i32; 64], qt: &[f32; 64], last: usize, dst: &mut [u8], stride: usize) {
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

// ---------------------------------------------------------------------------
// Upsampling and colour conversion
// ---------------------------------------------------------------------------

/// Fancy (triangle filter) upsampling of one row by 2 horizontally.
/// `cs` holds the source with one replicated sample on each side
/// (`cs.len() == n + 2`), `out.len() == 2 * n`. `shift` is 2 for plain
/// samples and 4 for column sums of a vertical filter, with libjpeg's biases.
#[inline(always)]
fn upsample_h2(cs: &[u16], out: &mut [u8], shift: u32) {
    let (b0, b1) = if shift == 4 { (8, 7) } else { (1, 2) };
    let n = out.len() / 2;
    let (Some(left), Some(mid), Some(right)) = (cs.get(..n), cs.get(1..n + 1), cs.get(2..n + 2))
    else {
        return;
    };
    for (((pair, &l), &m), &r) in out.chunks_exact_mut(2).zip(left).zip(mid).zip(right) {
        let c = 3 * m;
        pair[0] = ((c + l + b0) >> shift) as u8;
        pair[1] = ((c + r + b1) >> shift) as u8;
    }
}

/// `(a * b) >> 16` on 16-bit lanes (compiles to `pmulhw`).
#[inline(always)]
fn mulhi(a: i16, b: i16) -> i16 {
    ((i32::from(a) * i32::from(b)) >> 16) as i16
}

// JFIF YCbCr -> RGB factors in 1.14 fixed point.
const CR_R: i16 = 22_970; // 1.402
const CB_B: i16 = 29_032; // 1.772
const CB_G: i16 = 5_638; // 0.344136
const CR_G: i16 = 11_700; // 0.714136

/// JFIF YCbCr -> RGB for one pixel in 16-bit arithmetic (vectorises to
/// `pmulhw`): the chroma offset is scaled by 128, multiplied by the 1.14
/// factor keeping the high 16 bits (32 times the product), and rounded.
/// The green term adds a floor and a ceiling so that it is not biased.
/// Agrees with libjpeg's 16.16 arithmetic for over 99% of inputs, else by 1.
#[inline(always)]
fn ycc_pixel(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i16::from(y);
    let cb = (i16::from(cb) - 128) * 128;
    let cr = (i16::from(cr) - 128) * 128;
    let r = y + ((mulhi(cr, CR_R) + 16) >> 5);
    let g = y - ((mulhi(cb, CB_G) - mulhi(-cr, CR_G) + 16) >> 5);
    let b = y + ((mulhi(cb, CB_B) + 16) >> 5);
    [
        r.clamp(0, 255) as u8,
        g.clamp(0, 255) as u8,
        b.clamp(0, 255) as u8,
    ]
}

/// JFIF YCbCr -> RGB for a row; 16 pixels at a time so that it vectorises.
#[inline(always)]
fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    const N: usize = 16;
    let mut yc = y.chunks_exact(N);
    let mut cbc = cb.chunks_exact(N);
    let mut crc = cr.chunks_exact(N);
    let mut oc = out.chunks_exact_mut(3 * N);
    for (((o, y), cb), cr) in (&mut oc).zip(&mut yc).zip(&mut cbc).zip(&mut crc) {
        let mut r = [0u8; N];
        let mut g = [0u8; N];
        let mut b = [0u8; N];
        for i in 0..N {
            [r[i], g[i], b[i]] = ycc_pixel(y[i], cb[i], cr[i]);
        }
        for i in 0..N {
            o[3 * i] = r[i];
            o[3 * i + 1] = g[i];
            o[3 * i + 2] = b[i];
        }
    }
    let tail = oc.into_remainder().chunks_exact_mut(3);
    for (((o, &y), &cb), &cr) in tail
        .zip(yc.remainder())
        .zip(cbc.remainder())
        .zip(crc.remainder())
    {
        o.copy_from_slice(&ycc_pixel(y, cb, cr));
    }
}

fn rgb_copy(a: &[u8], b: &[u8], c: &[u8], out: &mut [u8]) {
    for (((o, &a), &b), &c) in out.chunks_exact_mut(3).zip(a).zip(b).zip(c) {
        o[0] = a;
        o[1] = b;
        o[2] = c;
    }
}

fn gray_to_rgb(y: &[u8], out: &mut [u8]) {
    for (o, &y) in out.chunks_exact_mut(3).zip(y) {
        o[0] = y;
        o[1] = y;
        o[2] = y;
    }
}

// ---------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct CompInfo {
    id: u8,
    h: u8,
    v: u8,
    tq: u8,
    td: u8,
    ta: u8,
}

#[derive(Debug, Default, Clone, Copy)]
struct Frame {
    width: u32,
    height: u32,
    ncomp: usize,
    comps: [CompInfo; 3],
    /// Frame component index of each scan component, in scan order.
    scan_order: [usize; 3],
    hmax: u8,
    vmax: u8,
    restart_interval: u16,
    adobe_transform: Option<u8>,
    /// Offset of the first entropy-coded byte.
    scan_start: usize,
}

/// Layout of one component's plane and how it is upsampled.
#[derive(Debug, Default, Clone, Copy)]
struct Geo {
    h: usize,
    v: usize,
    /// Plane row length in bytes (blocks per row * 8).
    stride: usize,
    /// Upsampling factor horizontally / vertically (1 or 2).
    sx: usize,
    sy: usize,
    /// Meaningful width / height of the component (ceil(W*h/hmax) ...).
    cw: usize,
    ch: usize,
}

/// Per-component buffers kept between images.
#[derive(Debug, Default)]
struct CompBuf {
    plane: Vec<u8>,
    row: Vec<u8>,
    colsum: Vec<u16>,
}

/// Resizes `v` to `n` elements, reporting allocation failure as an error.
fn size_vec<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> Result<(), DecodeError> {
    if v.len() != n {
        if n > v.len() {
            v.try_reserve_exact(n - v.len())
                .map_err(|_| invalid(0, "cannot allocate image buffers"))?;
        }
        v.resize(n, T::default());
    }
    Ok(())
}

/// Produces the full-resolution row `y` of a component (upsampled when
/// needed), `width` samples long.
fn comp_row<'a>(buf: &'a mut CompBuf, g: &Geo, y: usize, width: usize) -> &'a [u8] {
    let plane = &buf.plane;
    let row_at = |r: usize| -> &[u8] {
        let start = r * g.stride;
        plane.get(start..start + g.cw).unwrap_or(&[])
    };
    match (g.sx, g.sy) {
        (1, 1) => {
            let start = y * g.stride;
            plane.get(start..start + width).unwrap_or(&[])
        }
        (1, _) => {
            let cy = y / 2;
            let near = row_at(cy);
            let (far, bias) = if y.is_multiple_of(2) {
                (row_at(cy.saturating_sub(1)), 1)
            } else {
                (row_at((cy + 1).min(g.ch - 1)), 2)
            };
            let out = &mut buf.row[..width];
            for ((o, &n), &f) in out.iter_mut().zip(near).zip(far) {
                *o = ((3 * u16::from(n) + u16::from(f) + bias) >> 2) as u8;
            }
            &buf.row[..width]
        }
        (_, sy) => {
            let cw = g.cw;
            let cs = &mut buf.colsum[..cw + 2];
            let shift;
            if sy == 1 {
                let src = row_at(y);
                for (c, &s) in cs[1..].iter_mut().zip(src) {
                    *c = u16::from(s);
                }
                shift = 2;
            } else {
                let cy = y / 2;
                let near = row_at(cy);
                let far = if y.is_multiple_of(2) {
                    row_at(cy.saturating_sub(1))
                } else {
                    row_at((cy + 1).min(g.ch - 1))
                };
                for ((c, &n), &f) in cs[1..].iter_mut().zip(near).zip(far) {
                    *c = 3 * u16::from(n) + u16::from(f);
                }
                shift = 4;
            }
            cs[0] = cs[1];
            cs[cw + 1] = cs[cw];
            upsample_h2(cs, &mut buf.row[..2 * cw], shift);
            &buf.row[..width]
        }
    }
}

/// A quantisation table in zigzag order.
#[derive(Debug, Clone, Copy)]
struct QTable([u16; 64]);

impl Default for QTable {
    fn default() -> Self {
        QTable([0; 64])
    }
}

/// Baseline JPEG decoder. Keeps Huffman tables' lookup arrays, quantisation
/// tables, component planes and row buffers between calls.
#[derive(Debug, Default)]
pub struct BaselineDecoder {
    qt: [QTable; 4],
    qt_defined: [bool; 4],
    dc: [HuffTable; 4],
    ac: [HuffTable; 4],
    bufs: [CompBuf; 3],
}

fn be16(data: &[u8], pos: usize) -> Option<u16> {
    let b = data.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

impl BaselineDecoder {
    /// Creates a decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses markers up to and including SOS (no pixel decoding); returns
    /// the frame size. Errors as for [`BaselineDecoder::decode_rgb`].
    pub fn read_header(&mut self, data: &[u8], limits: Limits) -> Result<Header, DecodeError> {
        let frame = self.parse(data, limits)?;
        Ok(Header {
            width: frame.width,
            height: frame.height,
            components: frame.ncomp as u8,
        })
    }

    /// Decodes the whole image into `out` as packed RGB8; `out.len()` must be
    /// exactly `width * height * 3`. Does not depend on
    /// [`BaselineDecoder::read_header`] having been called.
    pub fn decode_rgb(
        &mut self,
        data: &[u8],
        limits: Limits,
        out: &mut [u8],
    ) -> Result<Header, DecodeError> {
        let frame = self.parse(data, limits)?;
        let width = frame.width as usize;
        let height = frame.height as usize;
        let expected = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| invalid(0, "image size overflows usize"))?;
        if out.len() != expected {
            return Err(invalid(
                0,
                format!(
                    "output buffer is {} bytes, {width}x{height} RGB needs {expected}",
                    out.len()
                ),
            ));
        }
        self.decode_frame(data, &frame, out)?;
        Ok(Header {
            width: frame.width,
            height: frame.height,
            components: frame.ncomp as u8,
        })
    }

    /// [`BaselineDecoder::decode_rgb`] through the baseline build only, so that a test can
    /// check the AVX2 build against it. `out` must have the image's size.
    #[cfg(test)]
    pub(crate) fn decode_rgb_generic(
        &mut self,
        data: &[u8],
        limits: Limits,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let frame = self.parse(data, limits)?;
        self.decode_frame_generic(data, &frame, out)
    }

    /// Installs the Annex K tables as DC/AC tables 0 (luma) and 1 (chroma).
    fn load_standard_tables(&mut self) {
        // The constant tables are well formed; errors cannot happen.
        let _ = self.dc[0].build(&LUMA_DC.counts, LUMA_DC.symbols, true);
        let _ = self.dc[1].build(&CHROMA_DC.counts, CHROMA_DC.symbols, true);
        let _ = self.ac[0].build(&LUMA_AC.counts, LUMA_AC.symbols, false);
        let _ = self.ac[1].build(&CHROMA_AC.counts, CHROMA_AC.symbols, false);
    }

    /// Parses all markers up to and including SOS.
    fn parse(&mut self, data: &[u8], limits: Limits) -> Result<Frame, DecodeError> {
        self.qt_defined = [false; 4];
        for t in self.dc.iter_mut().chain(self.ac.iter_mut()) {
            t.defined = false;
        }
        if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
            return Err(invalid(0, "missing SOI marker (not a JPEG)"));
        }
        let mut pos = 2usize;
        let mut frame: Option<Frame> = None;
        let mut any_dht = false;
        let mut restart_interval = 0u16;
        let mut adobe_transform = None;

        loop {
            match data.get(pos) {
                None => return Err(invalid(pos, "end of data before the scan")),
                Some(&0xFF) => {}
                Some(&b) => {
                    return Err(invalid(pos, format!("expected a marker, found 0x{b:02X}")));
                }
            }
            let marker_pos = pos;
            pos += 1;
            while data.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let Some(&m) = data.get(pos) else {
                return Err(invalid(pos, "end of data inside a marker"));
            };
            pos += 1;
            match m {
                0xD8 => return Err(invalid(marker_pos, "second SOI marker")),
                0xD9 => return Err(invalid(marker_pos, "EOI before the first scan")),
                0x00 => return Err(invalid(marker_pos, "stuffed 0xFF00 outside entropy data")),
                // Standalone markers without a length: RSTn outside a scan, TEM.
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let Some(len) = be16(data, pos) else {
                return Err(invalid(pos, "end of data inside a segment length"));
            };
            let len = usize::from(len);
            if len < 2 {
                return Err(invalid(pos, format!("segment length {len} below 2")));
            }
            let end = pos + len;
            let Some(seg) = data.get(pos + 2..end) else {
                return Err(invalid(
                    marker_pos,
                    format!("segment 0xFF{m:02X} of {len} bytes runs past the end of data"),
                ));
            };
            let seg_pos = pos + 2;
            match m {
                0xC0 | 0xC1 => {
                    if frame.is_some() {
                        return Err(invalid(marker_pos, "second frame header"));
                    }
                    frame = Some(parse_sof(seg, seg_pos, limits)?);
                }
                0xC2 => return Err(unsupported("progressive JPEG (SOF2)")),
                0xC3 => return Err(unsupported("lossless JPEG (SOF3)")),
                0xC5..=0xC7 => {
                    return Err(unsupported(format!("hierarchical JPEG (SOF{})", m - 0xC0)));
                }
                0xC8 => return Err(unsupported("JPEG extension frame (SOF8)")),
                0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(unsupported(format!(
                        "arithmetic-coded JPEG (SOF{})",
                        m - 0xC0
                    )));
                }
                0xCC => return Err(unsupported("arithmetic coding conditioning (DAC)")),
                0xDE | 0xDF => return Err(unsupported("hierarchical JPEG (DHP/EXP marker)")),
                0xC4 => {
                    self.parse_dht(seg, seg_pos)?;
                    any_dht = true;
                }
                0xDB => self.parse_dqt(seg, seg_pos)?,
                0xDD => {
                    if seg.len() != 2 {
                        return Err(invalid(marker_pos, "DRI segment length is not 4"));
                    }
                    restart_interval = u16::from_be_bytes([seg[0], seg[1]]);
                }
                0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                    adobe_transform = Some(seg[11]);
                }
                0xDA => {
                    let Some(mut f) = frame else {
                        return Err(invalid(marker_pos, "scan before the frame header"));
                    };
                    self.parse_sos(seg, seg_pos, &mut f, any_dht)?;
                    f.restart_interval = restart_interval;
                    f.adobe_transform = adobe_transform;
                    f.scan_start = end;
                    return Ok(f);
                }
                // APPn, COM, DNL, JPGn and reserved markers: skipped.
                _ => {}
            }
            pos = end;
        }
    }

    fn parse_dht(&mut self, seg: &[u8], seg_pos: usize) -> Result<(), DecodeError> {
        let mut p = 0usize;
        while p < seg.len() {
            let tc_th = seg[p];
            let (tc, th) = (tc_th >> 4, usize::from(tc_th & 15));
            if tc > 1 || th > 3 {
                return Err(invalid(
                    seg_pos + p,
                    format!("bad huffman table class/id 0x{tc_th:02X}"),
                ));
            }
            let Some(counts) = seg.get(p + 1..p + 17) else {
                return Err(invalid(seg_pos + p, "DHT segment too short"));
            };
            let mut c = [0u8; 16];
            c.copy_from_slice(counts);
            let total: usize = c.iter().map(|&x| usize::from(x)).sum();
            let Some(values) = seg.get(p + 17..p + 17 + total) else {
                return Err(invalid(seg_pos + p, "DHT segment too short for its values"));
            };
            let table = if tc == 0 {
                &mut self.dc[th]
            } else {
                &mut self.ac[th]
            };
            table
                .build(&c, values, tc == 0)
                .map_err(|r| invalid(seg_pos + p, r))?;
            p += 17 + total;
        }
        Ok(())
    }

    fn parse_dqt(&mut self, seg: &[u8], seg_pos: usize) -> Result<(), DecodeError> {
        let mut p = 0usize;
        while p < seg.len() {
            let pq_tq = seg[p];
            let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
            if pq > 1 || tq > 3 {
                return Err(invalid(
                    seg_pos + p,
                    format!("bad quantisation table precision/id 0x{pq_tq:02X}"),
                ));
            }
            let n = if pq == 0 { 64 } else { 128 };
            let Some(vals) = seg.get(p + 1..p + 1 + n) else {
                return Err(invalid(seg_pos + p, "DQT segment too short"));
            };
            let table = &mut self.qt[tq].0;
            if pq == 0 {
                for (q, &v) in table.iter_mut().zip(vals) {
                    *q = u16::from(v);
                }
            } else {
                for (q, v) in table.iter_mut().zip(vals.chunks_exact(2)) {
                    *q = u16::from_be_bytes([v[0], v[1]]);
                }
            }
            self.qt_defined[tq] = true;
            p += 1 + n;
        }
        Ok(())
    }

    fn parse_sos(
        &mut self,
        seg: &[u8],
        seg_pos: usize,
        f: &mut Frame,
        any_dht: bool,
    ) -> Result<(), DecodeError> {
        let ns = usize::from(*seg.first().unwrap_or(&0));
        if ns == 0 || ns > 4 {
            return Err(invalid(seg_pos, format!("scan with {ns} components")));
        }
        if seg.len() < 1 + 2 * ns + 3 {
            return Err(invalid(seg_pos, "SOS segment too short"));
        }
        if ns < f.ncomp {
            return Err(unsupported(format!(
                "several scans ({ns} of {} components in the first scan)",
                f.ncomp
            )));
        }
        if ns > f.ncomp {
            return Err(invalid(seg_pos, "scan has more components than the frame"));
        }
        let mut seen = [false; 3];
        for i in 0..ns {
            let id = seg[1 + 2 * i];
            let tables = seg[2 + 2 * i];
            let Some(ci) = f.comps[..f.ncomp].iter().position(|c| c.id == id) else {
                return Err(invalid(
                    seg_pos + 1 + 2 * i,
                    format!("scan names unknown component {id}"),
                ));
            };
            if seen[ci] {
                return Err(invalid(seg_pos + 1 + 2 * i, "component twice in scan"));
            }
            seen[ci] = true;
            let (td, ta) = (tables >> 4, tables & 15);
            if td > 3 || ta > 3 {
                return Err(invalid(seg_pos + 2 + 2 * i, "huffman table id above 3"));
            }
            f.comps[ci].td = td;
            f.comps[ci].ta = ta;
            f.scan_order[i] = ci;
        }
        let (ss, se, ahal) = (seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]);
        if ss != 0 || se != 63 || ahal != 0 {
            return Err(invalid(
                seg_pos + 1 + 2 * ns,
                format!("sequential scan with Ss={ss} Se={se} Ah/Al=0x{ahal:02X}"),
            ));
        }
        if !any_dht {
            self.load_standard_tables();
        }
        for c in &f.comps[..f.ncomp] {
            if !self.qt_defined[usize::from(c.tq)] {
                return Err(invalid(
                    seg_pos,
                    format!("quantisation table {} not defined", c.tq),
                ));
            }
            if !self.dc[usize::from(c.td)].defined {
                return Err(invalid(
                    seg_pos,
                    format!("DC huffman table {} not defined", c.td),
                ));
            }
            if !self.ac[usize::from(c.ta)].defined {
                return Err(invalid(
                    seg_pos,
                    format!("AC huffman table {} not defined", c.ta),
                ));
            }
        }
        Ok(())
    }

    /// Sizes the buffers, decodes the scan and converts to RGB: compiled for AVX2 where the
    /// CPU has it (the same code and float operations, so the same pixels), else for the
    /// target's baseline.
    fn decode_frame(&mut self, data: &[u8], f: &Frame, out: &mut [u8]) -> Result<(), DecodeError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, checked just above; that is all the function requires.
            return unsafe { self.decode_frame_avx2(data, f, out) };
        }
        self.decode_frame_generic(data, f, out)
    }

    /// [`BaselineDecoder::decode_frame`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn decode_frame_avx2(
        &mut self,
        data: &[u8],
        f: &Frame,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        self.decode_frame_generic(data, f, out)
    }

    /// The decoder itself, inlined into [`BaselineDecoder::decode_frame`]'s variants.
    #[inline(always)]
    fn decode_frame_generic(
        &mut self,
        data: &[u8],
        f: &Frame,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let width = f.width as usize;
        let height = f.height as usize;
        let (hmax, vmax) = (usize::from(f.hmax), usize::from(f.vmax));
        let mcux = width.div_ceil(8 * hmax);
        let mcuy = height.div_ceil(8 * vmax);
        let too_big = || invalid(0, "image buffers overflow usize");

        let mut geo = [Geo::default(); 3];
        let mut qtf = [[0.0f32; 64]; 3];
        for ci in 0..f.ncomp {
            let c = &f.comps[ci];
            let (h, v) = (usize::from(c.h), usize::from(c.v));
            let stride = mcux.checked_mul(h * 8).ok_or_else(too_big)?;
            let rows = mcuy.checked_mul(v * 8).ok_or_else(too_big)?;
            let g = Geo {
                h,
                v,
                stride,
                sx: hmax / h,
                sy: vmax / v,
                cw: (width * h).div_ceil(hmax),
                ch: (height * v).div_ceil(vmax),
            };
            geo[ci] = g;
            let plane_len = stride.checked_mul(rows).ok_or_else(too_big)?;
            let buf = &mut self.bufs[ci];
            size_vec(&mut buf.plane, plane_len)?;
            size_vec(&mut buf.row, 2 * g.cw.max(width))?;
            size_vec(&mut buf.colsum, g.cw + 2)?;

            let q = &self.qt[usize::from(c.tq)].0;
            for (k, &qv) in q.iter().enumerate() {
                let n = ZIGZAG[k];
                let (row, col) = (n / 8, n % 8);
                qtf[ci][col * 8 + row] = f32::from(qv) * AAN_SCALE[row] * AAN_SCALE[col] / 8.0;
            }
        }

        let mut rd = BitReader::new(data, f.scan_start);
        let mut pred = [0i32; 3];
        let mut blk = [0i32; 64];
        let ri = usize::from(f.restart_interval);
        let mut left_in_interval = ri;
        let mut next_rst = 0u8;
        let mut converted = 0usize;

        for my in 0..mcuy {
            for mx in 0..mcux {
                if ri != 0 {
                    if left_in_interval == 0 {
                        rd.restart(next_rst).map_err(|r| invalid(rd.pos, r))?;
                        next_rst = (next_rst + 1) & 7;
                        pred = [0; 3];
                        left_in_interval = ri;
                    }
                    left_in_interval -= 1;
                }
                for &ci in &f.scan_order[..f.ncomp] {
                    let g = &geo[ci];
                    let c = &f.comps[ci];
                    let dc = &self.dc[usize::from(c.td)];
                    let ac = &self.ac[usize::from(c.ta)];
                    let plane = &mut self.bufs[ci].plane;
                    for by in 0..g.v {
                        for bx in 0..g.h {
                            let last = decode_block(&mut rd, dc, ac, &mut pred[ci], &mut blk)
                                .map_err(|r| invalid(rd.pos, r))?;
                            let off = (my * g.v + by) * 8 * g.stride + (mx * g.h + bx) * 8;
                            if let Some(dst) = plane.get_mut(off..) {
                                idct_block(&blk, &qtf[ci], last, dst, g.stride);
                            }
                            if last == 0 {
                                blk[0] = 0;
                            } else {
                                blk = [0; 64];
                            }
                        }
                    }
                }
                if rd.overrun() {
                    return Err(invalid(rd.pos, "entropy data truncated"));
                }
            }
            // Convert the rows whose samples (and upsampling neighbours) are
            // now decoded.
            let ready = if my + 1 == mcuy {
                height
            } else {
                let mut r = height;
                for g in &geo[..f.ncomp] {
                    let avail = (my + 1) * g.v * 8;
                    let lim = if g.sy == 2 { 2 * avail - 2 } else { avail };
                    r = r.min(lim);
                }
                r
            };
            if ready > converted {
                self.convert_rows(f, &geo, converted, ready, out);
                converted = ready;
            }
        }
        Ok(())
    }

    /// Converts output rows `y0..y1` to RGB.
    fn convert_rows(&mut self, f: &Frame, geo: &[Geo; 3], y0: usize, y1: usize, out: &mut [u8]) {
        let width = f.width as usize;
        let row_len = width * 3;
        let [b0, b1, b2] = &mut self.bufs;
        for y in y0..y1 {
            let Some(dst) = out.get_mut(y * row_len..(y + 1) * row_len) else {
                return;
            };
            if f.ncomp == 1 {
                let src = comp_row(b0, &geo[0], y, width);
                gray_to_rgb(src, dst);
            } else {
                let r0 = comp_row(b0, &geo[0], y, width);
                let r1 = comp_row(b1, &geo[1], y, width);
                let r2 = comp_row(b2, &geo[2], y, width);
                if f.adobe_transform == Some(0) {
                    rgb_copy(r0, r1, r2, dst);
                } else {
                    ycc_to_rgb(r0, r1, r2, dst);
                }
            }
        }
    }
}

/// Parses a SOF0/SOF1 segment body.
fn parse_sof(seg: &[u8], seg_pos: usize, limits: Limits) -> Result<Frame, DecodeError> {
    if seg.len() < 6 {
        return Err(invalid(seg_pos, "frame header too short"));
    }
    let precision = seg[0];
    if precision == 12 {
        return Err(unsupported("12-bit sample precision"));
    }
    if precision != 8 {
        return Err(invalid(seg_pos, format!("sample precision {precision}")));
    }
    let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
    let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
    if height == 0 {
        return Err(unsupported("height defined by a DNL marker"));
    }
    if width == 0 {
        return Err(invalid(seg_pos + 3, "width 0"));
    }
    let nf = usize::from(seg[5]);
    if nf == 0 {
        return Err(invalid(seg_pos + 5, "frame with 0 components"));
    }
    if nf != 1 && nf != 3 {
        return Err(unsupported(format!("{nf} colour components")));
    }
    if seg.len() < 6 + 3 * nf {
        return Err(invalid(seg_pos, "frame header too short"));
    }
    let mut f = Frame {
        width,
        height,
        ncomp: nf,
        ..Frame::default()
    };
    for i in 0..nf {
        let b = &seg[6 + 3 * i..9 + 3 * i];
        let (id, h, v, tq) = (b[0], b[1] >> 4, b[1] & 15, b[2]);
        let at = seg_pos + 6 + 3 * i;
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(invalid(at, format!("sampling factors {h}x{v}")));
        }
        if tq > 3 {
            return Err(invalid(at, format!("quantisation table id {tq}")));
        }
        if f.comps[..i].iter().any(|c| c.id == id) {
            return Err(invalid(at, format!("duplicate component id {id}")));
        }
        if nf == 3 && (h > 2 || v > 2) {
            return Err(unsupported(format!("sampling factors {h}x{v}")));
        }
        f.comps[i] = CompInfo {
            id,
            h,
            v,
            tq,
            td: 0,
            ta: 0,
        };
    }
    if nf == 1 {
        // A single component is one non-interleaved scan of 8x8 blocks.
        f.comps[0].h = 1;
        f.comps[0].v = 1;
    }
    f.hmax = f.comps[..nf].iter().map(|c| c.h).max().unwrap_or(1);
    f.vmax = f.comps[..nf].iter().map(|c| c.v).max().unwrap_or(1);
    if width > limits.max_width || height > limits.max_height {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limits,
        });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn standard_tables_build() {
        let mut d = BaselineDecoder::new();
        d.load_standard_tables();
        assert!(d.dc[0].defined && d.dc[1].defined && d.ac[0].defined && d.ac[1].defined);
    }

    #[test]
    fn bytes_before_ff_is_exact() {
        assert_eq!(bytes_before_ff(0x0102_0304_0506_0708), 8);
        assert_eq!(bytes_before_ff(0x01FF_0304_0506_0708), 1);
        assert_eq!(bytes_before_ff(0x0000_0000_0000_00FF), 7);
        assert_eq!(bytes_before_ff(0xFEFE_FEFE_FEFE_FEFE), 8);
        assert_eq!(bytes_before_ff(0xFFFF_FFFF_FFFF_FFFF), 0);
        // 0xFE just before (more significant than) an 0xFF must not count.
        assert_eq!(bytes_before_ff(0x1111_FEFF_1111_1111), 3);
        for b in 0..=255u64 {
            for sh in 0..8 {
                for fill in [0x1111_1111_1111_1111u64, 0xFEFE_FEFE_FEFE_FEFE, 0] {
                    let w = (b << (sh * 8)) | (fill & !(0xFF << (sh * 8)));
                    let want = if b == 0xFF { 7 - sh } else { 8 };
                    assert_eq!(bytes_before_ff(w), want as u32, "b={b} sh={sh}");
                }
            }
        }
    }
}
