//! Tests of framewire's JPEG decoder against real encoders and decoders: JPEGs in
//! every layout it takes (4:4:4, 4:2:2, 4:2:0, 4:4:0, grayscale, restart intervals, no DHT) made
//! by jpeg-encoder and decoded by both it and zune-jpeg, the kinds it hands on (progressive,
//! 12-bit), and hostile bytes: every prefix, byte changes at every offset, proptest mutations.

use super::{BaselineDecoder, DecodeError, Limits};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

const BIG: Limits = Limits {
    max_width: 8192,
    max_height: 8192,
};

/// Gradients, sharp-edged shapes and mild noise, packed RGB.
fn test_image(w: usize, h: usize) -> Vec<u8> {
    let mut seed = 0x1234_5678u32 ^ (w as u32 * 31 + h as u32);
    let mut img = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 24) % 13) as i32 - 6;
            let fx = x as f32 / w.max(2) as f32;
            let fy = y as f32 / h.max(2) as f32;
            let mut r = (fx * 220.0) as i32 + 20;
            let mut g = (fy * 200.0) as i32 + 30;
            let mut b = ((1.0 - fx) * 120.0 + fy * 100.0) as i32;
            // sharp rectangle and a circle
            if x > w / 4 && x < w / 2 && y > h / 4 && y < h / 2 {
                r = 210;
                g = 90;
                b = 70;
            }
            let (cx, cy) = (w as f32 * 0.7, h as f32 * 0.6);
            let rad = (w.min(h) as f32) * 0.2;
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < rad * rad {
                r = 50;
                g = 90;
                b = 190;
            }
            // dark (luma-only) lines, 2 pixels wide
            if x % 37 < 2 || y % 29 < 2 {
                r -= 80;
                g -= 80;
                b -= 80;
            }
            img.push((r + noise).clamp(0, 255) as u8);
            img.push((g + noise).clamp(0, 255) as u8);
            img.push((b + noise).clamp(0, 255) as u8);
        }
    }
    img
}

fn to_gray(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| ((p[0] as u32 * 77 + p[1] as u32 * 150 + p[2] as u32 * 29) >> 8) as u8)
        .collect()
}

fn encode(
    w: usize,
    h: usize,
    luma: bool,
    sampling: SamplingFactor,
    quality: u8,
    restart: Option<u16>,
    progressive: bool,
) -> Vec<u8> {
    let rgb = test_image(w, h);
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, quality);
    enc.set_sampling_factor(sampling);
    if let Some(r) = restart {
        enc.set_restart_interval(r);
    }
    enc.set_progressive(progressive);
    if luma {
        enc.encode(&to_gray(&rgb), w as u16, h as u16, ColorType::Luma)
            .unwrap();
    } else {
        enc.encode(&rgb, w as u16, h as u16, ColorType::Rgb)
            .unwrap();
    }
    out
}

fn zune_decode(data: &[u8]) -> Vec<u8> {
    let opts = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(data), opts);
    d.decode().expect("zune decode")
}

fn ours(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut d = BaselineDecoder::new();
    let hdr = d.read_header(data, BIG)?;
    let mut out = vec![0u8; hdr.width as usize * hdr.height as usize * 3];
    d.decode_rgb(data, BIG, &mut out)?;
    Ok(out)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

const SIZES: [(usize, usize); 7] = [
    (1, 1),
    (7, 5),
    (16, 16),
    (17, 9),
    (320, 240),
    (641, 479),
    (1920, 1080),
];

#[test]
fn round_trip_against_zune() {
    let samplings = [
        (false, SamplingFactor::F_1_1, "rgb 4:4:4"),
        (false, SamplingFactor::F_2_1, "rgb 4:2:2"),
        (false, SamplingFactor::F_2_2, "rgb 4:2:0"),
        (false, SamplingFactor::F_1_2, "rgb 4:4:0"),
        (true, SamplingFactor::F_1_1, "luma"),
    ];
    let mut dec = BaselineDecoder::new();
    let mut worst_max = 0;
    let mut worst_mean = 0.0f64;
    let mut failures = Vec::new();
    for &(w, h) in &SIZES {
        let original = test_image(w, h);
        for &(luma, sf, name) in &samplings {
            for &q in &[50u8, 80, 95] {
                for &restart in &[None, Some(3u16)] {
                    let jpg = encode(w, h, luma, sf, q, restart, false);
                    let what = format!("{w}x{h} {name} q{q} restart {restart:?}");
                    let reference = zune_decode(&jpg);
                    let mut out = vec![0u8; w * h * 3];
                    let hdr = dec
                        .decode_rgb(&jpg, BIG, &mut out)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!((hdr.width, hdr.height), (w as u32, h as u32));
                    assert_eq!(reference.len(), out.len(), "{what}");
                    // Tolerances. Chroma is upsampled with libjpeg's
                    // h2v2 rounding (+8/+7 on a 4x4 sum); zune-jpeg
                    // rounds twice (vertical then horizontal, +2 each),
                    // which biases its chroma up by ~0.25. Where chroma
                    // is also vertically halved, an IDCT rounding
                    // difference of 1 plus that rounding difference of 1
                    // times the 1.772 Cb->B factor can reach 5.
                    let vert = !luma && matches!(sf, SamplingFactor::F_2_2 | SamplingFactor::F_1_2);
                    let max_ok = if vert { 5 } else { 4 };
                    // The bias dominates the mean only on tiny images
                    // (7x5 4:2:0: 0.57); 16x16 and 17x9 4:2:0 reach 0.39,
                    // 320x240 and larger stay below 0.25.
                    let mean_ok = if w * h < 64 { 0.75 } else { 0.5 };
                    // zune-jpeg takes the lower neighbour of the last
                    // image row from the padding chroma row below the
                    // image; libjpeg (and this decoder) replicate the
                    // last real chroma row ("edges replicate"). So the
                    // last row is only loosely compared when the chroma
                    // plane has padding rows.
                    let last_row_padded = vert && h % 16 != 0;
                    let mut max = 0u8;
                    let mut last_max = 0u8;
                    let mut sum = 0u64;
                    for (i, (&a, &b)) in out.iter().zip(&reference).enumerate() {
                        let d = a.abs_diff(b);
                        if last_row_padded && i / 3 / w == h - 1 {
                            last_max = last_max.max(d);
                        } else {
                            max = max.max(d);
                        }
                        sum += u64::from(d);
                    }
                    let mean = sum as f64 / out.len() as f64;
                    worst_max = worst_max.max(max);
                    if w * h >= 64 {
                        worst_mean = worst_mean.max(mean);
                    }
                    if max > max_ok || mean > mean_ok || last_max > 16 {
                        failures.push(format!(
                            "{what}: max {max} mean {mean:.3} last row max {last_max}"
                        ));
                    }
                    if q == 80 {
                        let orig: Vec<u8> = if luma {
                            to_gray(&original).iter().flat_map(|&g| [g, g, g]).collect()
                        } else {
                            original.clone()
                        };
                        let p = psnr(&out, &orig);
                        let pz = psnr(&reference, &orig);
                        // Images below 64x64 are nearly all sharp edges
                        // (rectangle, circle, lines), where JPEG itself
                        // loses more: there only require zune's quality.
                        if w >= 64 && h >= 64 {
                            assert!(p > 30.0, "{what}: PSNR {p:.2} dB vs original");
                        }
                        assert!(p > pz - 0.5, "{what}: PSNR {p:.2} dB, zune {pz:.2}");
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "differences from zune:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_code_path_decodes_the_same_pixels() {
    // The AVX2 build of the decoder (where the CPU has it) and the baseline build run the
    // same float operations in the same order, so they must agree to the byte.
    let mut dec = BaselineDecoder::new();
    for (w, h) in [(17, 9), (641, 479)] {
        for (luma, sf) in [
            (false, SamplingFactor::F_1_1),
            (false, SamplingFactor::F_2_1),
            (false, SamplingFactor::F_2_2),
            (false, SamplingFactor::F_1_2),
            (true, SamplingFactor::F_1_1),
        ] {
            for restart in [None, Some(3u16)] {
                let jpg = encode(w, h, luma, sf, 80, restart, false);
                let (mut dispatched, mut generic) = (vec![0u8; w * h * 3], vec![1u8; w * h * 3]);
                dec.decode_rgb(&jpg, BIG, &mut dispatched).unwrap();
                dec.decode_rgb_generic(&jpg, BIG, &mut generic).unwrap();
                assert!(
                    dispatched == generic,
                    "{w}x{h} luma {luma} {sf:?} restart {restart:?}"
                );
            }
        }
    }
}

/// Removes every DHT segment (marker 0xFFC4) before the first SOS.
fn strip_dht(jpg: &[u8]) -> Vec<u8> {
    let mut out = jpg[..2].to_vec();
    let mut p = 2;
    while p + 4 <= jpg.len() {
        assert_eq!(jpg[p], 0xFF);
        let m = jpg[p + 1];
        let len = u16::from_be_bytes([jpg[p + 2], jpg[p + 3]]) as usize;
        if m == 0xDA {
            out.extend_from_slice(&jpg[p..]);
            return out;
        }
        if m != 0xC4 {
            out.extend_from_slice(&jpg[p..p + 2 + len]);
        }
        p += 2 + len;
    }
    panic!("no SOS");
}

#[test]
fn missing_dht_uses_standard_tables() {
    for &(luma, sf) in &[
        (false, SamplingFactor::F_2_2),
        (false, SamplingFactor::F_2_1),
        (true, SamplingFactor::F_1_1),
    ] {
        let jpg = encode(320, 240, luma, sf, 80, Some(5), false);
        let stripped = strip_dht(&jpg);
        assert!(stripped.len() < jpg.len());
        assert!(!stripped.windows(2).any(|w| w == [0xFF, 0xC4]) || luma);
        let a = ours(&jpg).unwrap();
        let b = ours(&stripped).unwrap();
        assert!(a == b, "stripped DHT decodes differently");
    }
}

#[test]
fn unsupported_progressive_and_12bit() {
    let prog = encode(64, 48, false, SamplingFactor::F_2_2, 80, None, true);
    let mut d = BaselineDecoder::new();
    match d.read_header(&prog, BIG) {
        Err(DecodeError::Unsupported(r)) => assert!(r.contains("progressive"), "{r}"),
        other => panic!("progressive: {other:?}"),
    }
    let mut out = vec![0u8; 64 * 48 * 3];
    assert!(matches!(
        d.decode_rgb(&prog, BIG, &mut out),
        Err(DecodeError::Unsupported(_))
    ));

    let mut twelve = encode(64, 48, false, SamplingFactor::F_2_2, 80, None, false);
    let sof = twelve
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    twelve[sof + 4] = 12;
    twelve[sof + 1] = 0xC1;
    match d.decode_rgb(&twelve, BIG, &mut out) {
        Err(DecodeError::Unsupported(r)) => assert!(r.contains("12-bit"), "{r}"),
        other => panic!("12-bit: {other:?}"),
    }
    // CMYK-like 4 components.
    let mut four = encode(64, 48, false, SamplingFactor::F_1_1, 80, None, false);
    let sof = four.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    four[sof + 9] = 4;
    assert!(matches!(
        d.read_header(&four, BIG),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn undefined_tables_invalid_and_several_scans_unsupported() {
    let jpg = encode(32, 24, false, SamplingFactor::F_2_2, 80, None, false);
    let sos = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let mut d = BaselineDecoder::new();
    // SOS: FF DA len(2) Ns (Cs Td/Ta)*3 ... -> point the first component
    // at Huffman tables 2/2, which were never defined.
    let mut bad = jpg.clone();
    bad[sos + 6] = 0x22;
    match d.read_header(&bad, BIG) {
        Err(DecodeError::Invalid { reason, .. }) => assert!(reason.contains("not defined")),
        other => panic!("{other:?}"),
    }
    // Quantisation table 3 in the frame header, never defined.
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut bad = jpg.clone();
    bad[sof + 12] = 3;
    match d.read_header(&bad, BIG) {
        Err(DecodeError::Invalid { reason, .. }) => assert!(reason.contains("quantisation")),
        other => panic!("{other:?}"),
    }
    // A first scan with one of three components: several scans.
    let mut one = jpg.clone();
    one[sos + 4] = 1;
    assert!(matches!(
        d.read_header(&one, BIG),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn too_large_and_bad_output_len() {
    let mut jpg = encode(32, 24, false, SamplingFactor::F_2_2, 80, None, false);
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let limits = Limits {
        max_width: 640,
        max_height: 480,
    };
    let mut d = BaselineDecoder::new();
    let mut out = vec![0u8; 640 * 480 * 3];
    match d.decode_rgb(&jpg, limits, &mut out) {
        Err(DecodeError::TooLarge {
            width: 65535,
            height: 65535,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let ok = encode(32, 24, false, SamplingFactor::F_2_2, 80, None, false);
    let mut short = vec![0u8; 32 * 24 * 3 - 1];
    let e = d.decode_rgb(&ok, limits, &mut short).unwrap_err();
    assert!(matches!(e, DecodeError::Invalid { .. }), "{e}");
}

#[test]
fn truncated_and_wrong_rst_are_invalid() {
    let jpg = encode(64, 48, false, SamplingFactor::F_2_2, 90, Some(2), false);
    let mut d = BaselineDecoder::new();
    let mut out = vec![0u8; 64 * 48 * 3];
    d.decode_rgb(&jpg, BIG, &mut out).unwrap();
    // Cut in the middle of the entropy data.
    let sos = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let cut = &jpg[..sos + (jpg.len() - sos) / 2];
    assert!(matches!(
        d.decode_rgb(cut, BIG, &mut out),
        Err(DecodeError::Invalid { .. })
    ));
    // Missing EOI is fine.
    let no_eoi = &jpg[..jpg.len() - 2];
    d.decode_rgb(no_eoi, BIG, &mut out).unwrap();
    // Renumber the first RST marker.
    let mut bad = jpg.clone();
    let rst = bad[sos..]
        .windows(2)
        .position(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
        .unwrap()
        + sos;
    bad[rst + 1] = 0xD3;
    match d.decode_rgb(&bad, BIG, &mut out) {
        Err(DecodeError::Invalid { reason, .. }) => assert!(reason.contains("restart")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn adobe_rgb_transform_zero() {
    // Build a 3-component 4:4:4 JPEG and mark it Adobe transform=0: the
    // decoder must then output the component values directly.
    let jpg = encode(16, 16, false, SamplingFactor::F_1_1, 95, None, false);
    let mut adobe = jpg[..2].to_vec();
    adobe.extend_from_slice(&[0xFF, 0xEE, 0, 14]);
    adobe.extend_from_slice(b"Adobe");
    adobe.extend_from_slice(&[0, 100, 0, 0, 0, 0, 0]);
    adobe.extend_from_slice(&jpg[2..]);
    let ycc = ours(&jpg).unwrap();
    let raw = ours(&adobe).unwrap();
    assert_ne!(ycc, raw);
    // Converting the raw components with JFIF equations gives the YCbCr result.
    for (p, q) in raw.chunks(3).zip(ycc.chunks(3)) {
        let (y, cr) = (p[0] as f32, p[2] as f32 - 128.0);
        let r = (y + 1.402 * cr).round().clamp(0.0, 255.0);
        assert!((r - q[0] as f32).abs() <= 1.0);
    }
}

#[test]
fn hostile_prefixes_and_byte_changes() {
    let jpg = encode(32, 24, false, SamplingFactor::F_2_2, 80, Some(2), false);
    let limits = Limits {
        max_width: 64,
        max_height: 64,
    };
    let mut d = BaselineDecoder::new();
    let mut out = vec![0u8; 32 * 24 * 3];
    let mut try_one = |data: &[u8]| {
        if let Ok(h) = d.read_header(data, limits) {
            let mut o = vec![0u8; h.width as usize * h.height as usize * 3];
            let _ = d.decode_rgb(data, limits, &mut o);
        }
        let _ = d.decode_rgb(data, limits, &mut out);
    };
    for n in 0..=jpg.len() {
        try_one(&jpg[..n]);
    }
    let mut m = jpg.clone();
    for i in 0..jpg.len() {
        for v in [0x00, 0xFF, jpg[i] ^ 0x55] {
            m[i] = v;
            try_one(&m);
        }
        m[i] = jpg[i];
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Vec<u8> {
        encode(24, 16, false, SamplingFactor::F_2_1, 75, Some(1), false)
    }

    fn run(data: &[u8]) {
        let limits = Limits {
            max_width: 256,
            max_height: 256,
        };
        let mut d = BaselineDecoder::new();
        if let Ok(h) = d.read_header(data, limits) {
            let mut o = vec![0u8; h.width as usize * h.height as usize * 3];
            let _ = d.decode_rgb(data, limits, &mut o);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut v = vec![0xFF, 0xD8];
            v.extend_from_slice(&data);
            run(&v);
            run(&data);
        }

        #[test]
        fn mutated_jpeg(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
                        cut in any::<usize>()) {
            let mut v = small();
            for (i, b) in muts {
                let n = v.len();
                v[i % n] = b;
            }
            run(&v);
            let n = cut % (v.len() + 1);
            run(&v[..n]);
        }
    }
}
