//! The constants of ITU T.81 that framewire's JPEG encoder and decoder share: the zigzag order,
//! the example quantisation tables of Annex K.1 with libjpeg's quality scaling, and the standard
//! Huffman tables of Annex K.3 (which webcams' MJPEG leaves out of the stream and the encoder
//! always writes).

/// `ZIGZAG[i]` is the natural (row-major) index of the `i`th coefficient in zigzag order.
pub(crate) const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// `ZIGZAG_T[i]`: the transposed natural index (column * 8 + row) of the `i`th coefficient in
/// zigzag order. The encoder's DCT leaves its output transposed and the decoder keeps its
/// blocks transposed, each to save one transpose.
pub(crate) const ZIGZAG_T: [usize; 64] = {
    let mut t = [0; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (ZIGZAG[i] % 8) * 8 + ZIGZAG[i] / 8;
        i += 1;
    }
    t
};

/// `AAN_SCALE[k]` = cos(k·π/16)·√2 (1 for k = 0): the scale the AAN DCT and IDCT (Arai, Agui
/// and Nakajima) leave on coefficient k, folded into the quantisation tables.
pub(crate) const AAN_SCALE: [f32; 8] = [
    1.0,
    1.387_039_8,
    1.306_563,
    1.175_875_6,
    1.0,
    0.785_694_96,
    0.541_196_1,
    0.275_899_38,
];

/// Table K.1, luminance quantisation, natural order.
const LUMA_QUANT: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, //
    12, 12, 14, 19, 26, 58, 60, 55, //
    14, 13, 16, 24, 40, 57, 69, 56, //
    14, 17, 22, 29, 51, 87, 80, 62, //
    18, 22, 37, 56, 68, 109, 103, 77, //
    24, 35, 55, 64, 81, 104, 113, 92, //
    49, 64, 78, 87, 103, 121, 120, 101, //
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// Table K.2, chrominance quantisation, natural order.
const CHROMA_QUANT: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, //
    18, 21, 26, 66, 99, 99, 99, 99, //
    24, 26, 56, 99, 99, 99, 99, 99, //
    47, 66, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99,
];

/// The luminance (`chroma == false`) or chrominance table for `quality` (1..=100), natural
/// order, scaled as libjpeg (and so OpenCV and libjpeg-turbo) scales it, each entry in 1..=255
/// so that it fits an 8-bit (baseline) DQT.
pub(crate) fn quant_table(quality: u8, chroma: bool) -> [u8; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let base = if chroma { &CHROMA_QUANT } else { &LUMA_QUANT };
    base.map(|b| ((u32::from(b) * scale + 50) / 100).clamp(1, 255) as u8)
}

/// A Huffman table as a DHT segment states it: how many codes of each length 1..=16, and the
/// symbols in code order.
#[derive(Debug)]
pub(crate) struct HuffmanSpec {
    /// `counts[i]`: the number of codes `i + 1` bits long.
    pub counts: [u8; 16],
    /// The symbols, shortest code first.
    pub symbols: &'static [u8],
}

/// Table K.3: luminance DC differences.
pub(crate) const LUMA_DC: HuffmanSpec = HuffmanSpec {
    counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

/// Table K.4: chrominance DC differences.
pub(crate) const CHROMA_DC: HuffmanSpec = HuffmanSpec {
    counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

/// Table K.5: luminance AC coefficients (symbol = run << 4 | size).
pub(crate) const LUMA_AC: HuffmanSpec = HuffmanSpec {
    counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
    symbols: &[
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
};

/// Table K.6: chrominance AC coefficients.
pub(crate) const CHROMA_AC: HuffmanSpec = HuffmanSpec {
    counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    symbols: &[
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
        0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
        0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
        0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_visits_every_coefficient_once_along_antidiagonals() {
        let mut seen = [false; 64];
        for (i, &k) in ZIGZAG.iter().enumerate() {
            assert!(!seen[k], "{k} twice");
            seen[k] = true;
            if i > 0 {
                let (r0, c0) = (ZIGZAG[i - 1] / 8, ZIGZAG[i - 1] % 8);
                let (r, c) = (k / 8, k % 8);
                assert!(r.abs_diff(r0) <= 1 && c.abs_diff(c0) <= 1, "step {i}");
            }
        }
    }

    #[test]
    fn huffman_specs_count_their_symbols() {
        for spec in [LUMA_DC, CHROMA_DC, LUMA_AC, CHROMA_AC] {
            let total: usize = spec.counts.iter().map(|&c| usize::from(c)).sum();
            assert_eq!(total, spec.symbols.len());
        }
    }

    #[test]
    fn quality_scales_like_libjpeg() {
        // Quality 50 is the table itself; 100 is all ones; 1 clamps to 255.
        assert_eq!(
            quant_table(50, false)[..8],
            [16, 11, 10, 16, 24, 40, 51, 61]
        );
        assert_eq!(quant_table(100, true), [1; 64]);
        assert_eq!(quant_table(1, false)[0], 255);
        // Quality 80 (scale 40): 16 * 0.4 = 6.4 -> 6, 99 * 0.4 = 39.6 -> 40.
        assert_eq!(quant_table(80, false)[0], 6);
        assert_eq!(quant_table(80, true)[63], 40);
    }
}
