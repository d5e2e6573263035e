//! Entropy decoding: Huffman tables, the bit reader and the decoding of one
//! 8x8 block's coefficients (ITU T.81 F.2.2).
//!
//! Everything the MCU loop calls per block is `#[inline(always)]`, so that it
//! is compiled into both the AVX2 and the baseline build of that loop.

use std::fmt;

use crate::jpeg::tables::ZIGZAG_T;

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
pub(super) struct HuffTable {
    pub(super) defined: bool,
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
    pub(super) fn build(
        &mut self,
        counts: &[u8; 16],
        values: &[u8],
        is_dc: bool,
    ) -> Result<(), &'static str> {
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
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pub(super) pos: usize,
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
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
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
    pub(super) fn overrun(&self) -> bool {
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
    pub(super) fn restart(&mut self, expected: u8) -> Result<(), &'static str> {
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
// Block decoding
// ---------------------------------------------------------------------------

/// Decodes one 8x8 block's coefficients into `blk` (transposed natural
/// order, which must be zero on entry). Returns the last zigzag index that
/// was written (0 when only DC).
#[inline(always)]
pub(super) fn decode_block(
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

#[cfg(test)]
mod tests {
    use super::*;

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
