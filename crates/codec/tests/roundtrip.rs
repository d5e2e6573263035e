//! Every codec through one test body: round trips on the test pattern (framewire-pattern), and bad payloads that must give errors, never panics.

use framewire_codec::{EncodeOptions, decoder, encoder};
use framewire_core::{
    CodecError, CodecKind, Frame, FrameDecoder, FrameEncoder, PixelFormat, StreamInfo,
};
use framewire_pattern::{TestPattern, read_frame_number};

/// Lowest PSNR (over R, G and B) JPEG at quality 80 may give on the test pattern.
///
/// Measured (framewire's encoder → its decoder, frames 0, 1, 7, 12345, 0xDEADBEEF):
/// 320x240 27.2..27.6 dB, 640x480 28.5..28.7 dB, rgb8 and rgba8 input alike (the pattern's
/// seeded noise is what costs; 4:2:0 chroma). The floor sits about 3 dB under
/// the worst of those.
const JPEG_Q80_MIN_PSNR_DB: f64 = 23.0;

/// Sizes every codec is round-tripped at.
const SIZES: [(u32, u32); 2] = [(320, 240), (640, 480)];

/// Frame numbers rendered and read back; the pattern's code holds the low 32 bits.
const FRAME_NUMBERS: [u64; 5] = [0, 1, 7, 12_345, 0xDEAD_BEEF];

fn stream(kind: CodecKind, width: u32, height: u32, format: PixelFormat) -> StreamInfo {
    StreamInfo {
        codec: kind,
        width,
        height,
        format,
    }
}

/// Frame `n` of the test pattern.
fn pattern_frame(width: u32, height: u32, format: PixelFormat, n: u64) -> Frame {
    let mut frame = Frame::empty(format);
    TestPattern::new(width, height, 0.0)
        .unwrap()
        .with_format(format)
        .render(n, &mut frame);
    frame
}

/// The payload `kind` makes of `frame` at the default options.
fn encode(kind: CodecKind, frame: &Frame) -> Vec<u8> {
    let mut payload = Vec::new();
    encoder(kind, &EncodeOptions::default())
        .unwrap()
        .encode(frame, &mut payload)
        .unwrap();
    payload
}

/// The (original, decoded) R, G and B sample pairs of two same-sized frames (alpha is ignored).
fn rgb_pairs<'a>(original: &'a Frame, decoded: &'a Frame) -> impl Iterator<Item = (u8, u8)> + 'a {
    assert_eq!(
        (original.width, original.height),
        (decoded.width, decoded.height)
    );
    let (bpp_a, bpp_b) = (
        original.format.bytes_per_pixel(),
        decoded.format.bytes_per_pixel(),
    );
    let (at_a, at_b) = (original.format.rgb_offsets(), decoded.format.rgb_offsets());
    (0..original.height).flat_map(move |y| {
        original
            .row(y)
            .chunks_exact(bpp_a)
            .zip(decoded.row(y).chunks_exact(bpp_b))
            .flat_map(move |(pa, pb)| (0..3).map(move |c| (pa[at_a[c]], pb[at_b[c]])))
    })
}

/// PSNR in dB of `decoded` against `original`, over the R, G and B samples (alpha is ignored).
fn psnr_rgb(original: &Frame, decoded: &Frame) -> f64 {
    let (mut sum, mut count) = (0u64, 0u64);
    for (a, b) in rgb_pairs(original, decoded) {
        let d = u64::from(a.abs_diff(b));
        sum += d * d;
        count += 1;
    }
    if sum == 0 {
        return f64::INFINITY;
    }
    let mse = sum as f64 / count as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[test]
fn every_codec_round_trips_the_test_pattern() {
    let mut measured = Vec::new();
    let mut encoders: Vec<_> = intra_only()
        .map(|kind| encoder(kind, &EncodeOptions::default()).unwrap())
        .collect();
    // One payload buffer and one decoded frame for the whole run, as a pipeline keeps them.
    let mut payload = Vec::new();
    let mut decoded = Frame::empty(PixelFormat::Rgb8);
    for (width, height) in SIZES {
        for format in PixelFormat::ALL {
            let mut pattern = TestPattern::new(width, height, 0.0)
                .unwrap()
                .with_format(format);
            let mut frame = Frame::empty(format);
            for enc in &mut encoders {
                let kind = enc.kind();
                let out_format = enc.output_format(format);
                let mut dec = decoder(&stream(kind, width, height, out_format));
                assert_eq!(dec.kind(), kind);
                for n in FRAME_NUMBERS {
                    let case = format!("{kind} {width}x{height} {format} frame {n}");
                    pattern.render(n, &mut frame);
                    enc.encode(&frame, &mut payload).unwrap();
                    dec.decode(&payload, &mut decoded)
                        .unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(
                        (decoded.width, decoded.height, decoded.format),
                        (width, height, out_format),
                        "{case}"
                    );
                    assert!(decoded.is_packed(), "{case}");
                    if kind.is_lossless() {
                        assert_eq!(out_format, format, "{case}");
                        assert!(decoded.pixels == frame.pixels, "{case}: pixels differ");
                    } else {
                        assert_eq!(out_format, PixelFormat::Rgb8, "{case}");
                        measured.push((case.clone(), psnr_rgb(&frame, &decoded)));
                    }
                    assert_eq!(read_frame_number(&decoded), Some(n), "{case}");
                }
            }
        }
    }
    let low: Vec<_> = measured
        .iter()
        .filter(|(_, psnr)| *psnr < JPEG_Q80_MIN_PSNR_DB)
        .collect();
    assert!(
        low.is_empty(),
        "PSNR below {JPEG_Q80_MIN_PSNR_DB} dB: {low:?}; all: {measured:?}"
    );
    assert_eq!(
        measured.len(),
        SIZES.len() * PixelFormat::ALL.len() * FRAME_NUMBERS.len()
    );
}

#[test]
fn padded_rows_give_the_packed_payload() {
    for kind in intra_only() {
        for format in PixelFormat::ALL {
            let packed = pattern_frame(64, 48, format, 3);
            let mut padded = packed.clone();
            padded.stride = packed.row_bytes() + 13;
            padded.pixels = vec![0xA5; padded.stride * 48];
            for y in 0..48 {
                padded.pixels[y as usize * padded.stride..][..packed.row_bytes()]
                    .copy_from_slice(packed.row(y));
            }
            assert_eq!(
                encode(kind, &packed),
                encode(kind, &padded),
                "{kind} {format}"
            );
        }
    }
}

/// Decodes and returns the outcome; the point is that it returns at all.
fn try_decode(dec: &mut dyn FrameDecoder, payload: &[u8], dst: &mut Frame) -> bool {
    dec.decode(payload, dst).is_ok()
}

/// A small seeded xorshift64 generator: deterministic bytes without a rand dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Feeds `kind`'s decoder damaged versions of its payload for `frame`: prefixes, the payload
/// with one bit flipped, the payload's head followed by random bytes, and random bytes. With
/// `samples` of `None` every prefix and every offset is tried, else about that many of each.
fn damaged_payloads_do_not_panic(kind: CodecKind, frame: &Frame, samples: Option<usize>) {
    let valid = encode(kind, frame);
    let step = samples.map_or(1, |n| (valid.len() / n).max(1));
    let noise_rounds = samples.unwrap_or(64).min(64);
    let info = stream(kind, frame.width, frame.height, frame.format);
    let mut dec = decoder(&info);
    let mut dst = Frame::empty(PixelFormat::Rgb8);
    assert!(
        try_decode(dec.as_mut(), &valid, &mut dst),
        "{kind}: valid payload"
    );

    let mut prefixes: Vec<usize> = (0..valid.len()).step_by(step).collect();
    prefixes.push(valid.len() - 1);
    for len in prefixes {
        let ok = try_decode(dec.as_mut(), &valid[..len], &mut dst);
        if kind.is_lossless() {
            assert!(!ok, "{kind}: prefix of {len} bytes decoded");
        }
    }

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ u64::from(kind.wire_id()));
    let mut damaged = valid.clone();
    // Offset by one from the prefix step so that sampled flips do not all share an alignment.
    let flip_step = if step == 1 { 1 } else { step + 1 };
    for offset in (0..valid.len()).step_by(flip_step) {
        let mask = 1 << rng.below(8);
        damaged[offset] ^= mask;
        try_decode(dec.as_mut(), &damaged, &mut dst);
        damaged[offset] = valid[offset];
    }

    // The valid head (headers, tables) followed by noise reaches deeper into the decoders.
    // Noise is kept short: past a few KiB it only costs time (a 640x480 payload is 900 KiB raw).
    let max_noise = valid.len().min(8 << 10);
    for _ in 0..noise_rounds {
        let head = rng.below(valid.len().min(700));
        let len = head + rng.below(max_noise);
        let mut noisy = valid[..head].to_vec();
        noisy.resize(len, 0);
        rng.fill(&mut noisy[head..]);
        try_decode(dec.as_mut(), &noisy, &mut dst);
    }
    for _ in 0..noise_rounds {
        let mut noise = vec![0; rng.below(2 * max_noise)];
        rng.fill(&mut noise);
        try_decode(dec.as_mut(), &noise, &mut dst);
    }
    // Still decodes a good payload after all that.
    assert!(
        try_decode(dec.as_mut(), &valid, &mut dst),
        "{kind}: valid payload after damage"
    );
}

#[test]
fn damaged_small_payloads_never_panic() {
    let frame = pattern_frame(16, 8, PixelFormat::Rgb8, 42);
    for kind in intra_only() {
        damaged_payloads_do_not_panic(kind, &frame, None);
    }
}

#[test]
fn damaged_large_payloads_never_panic() {
    // About 60 prefixes and 60 flips per codec: a damaged 640x480 JPEG takes up to 8 ms to
    // reject, so this stays under 2 s in debug builds.
    let frame = pattern_frame(640, 480, PixelFormat::Rgb8, 42);
    for kind in intra_only() {
        damaged_payloads_do_not_panic(kind, &frame, Some(60));
    }
}

#[test]
fn payload_of_another_size_is_the_expected_error() {
    for kind in intra_only() {
        let small = encode(kind, &pattern_frame(320, 240, PixelFormat::Rgb8, 5));
        let big = encode(kind, &pattern_frame(640, 480, PixelFormat::Rgb8, 5));
        let mut dst = Frame::empty(PixelFormat::Rgb8);

        let err = decoder(&stream(kind, 640, 480, PixelFormat::Rgb8))
            .decode(&small, &mut dst)
            .unwrap_err();
        let want = match kind {
            CodecKind::Raw => format!(
                "bad raw payload of {} bytes: expected 921600 bytes for a 640x480 rgb8 frame, got {}",
                small.len(),
                small.len()
            ),
            _ => format!("{kind} payload is 320x240 rgb8, stream announced 640x480 rgb8"),
        };
        assert_eq!(err.to_string(), want);
        match kind {
            CodecKind::Raw => assert!(matches!(err, CodecError::BadPayload { .. })),
            _ => assert!(matches!(err, CodecError::Mismatch { .. })),
        }

        // Bigger than the stream: the JPEG decoder refuses it from the header, before sizing
        // anything for it.
        let err = decoder(&stream(kind, 320, 240, PixelFormat::Rgb8))
            .decode(&big, &mut dst)
            .unwrap_err();
        match kind {
            CodecKind::Raw => assert!(matches!(err, CodecError::BadPayload { .. }), "{err:?}"),
            _ => assert!(matches!(err, CodecError::Mismatch { .. }), "{err:?}"),
        }

        let err = decoder(&stream(kind, 320, 240, PixelFormat::Rgb8))
            .decode(&[], &mut dst)
            .unwrap_err();
        assert!(
            err.to_string().contains(kind.name()),
            "{kind}: error for an empty payload names the codec: {err}"
        );
    }
}

/// `(horizontal, vertical)` sampling factors of each component, read from the JPEG's SOF0 segment.
fn sampling_factors(jpeg: &[u8]) -> Vec<(u8, u8)> {
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG has an SOF0 marker");
    // FFC0, length (2), precision (1), height (2), width (2), components (1), then 3 bytes each.
    let count = usize::from(jpeg[sof + 9]);
    (0..count)
        .map(|i| {
            let hv = jpeg[sof + 10 + 3 * i + 1];
            (hv >> 4, hv & 0x0F)
        })
        .collect()
}

#[cfg(feature = "turbojpeg")]
mod turbojpeg {
    //! The libjpeg-turbo encoder against the pure-Rust one, both decoded by zune-jpeg.

    use super::*;
    use framewire_codec::{JpegBackend, JpegEncoder};

    /// Mean absolute difference over the R, G and B samples (alpha is ignored).
    fn mean_abs_error(original: &Frame, decoded: &Frame) -> f64 {
        let (mut sum, mut count) = (0u64, 0u64);
        for (a, b) in rgb_pairs(original, decoded) {
            sum += u64::from(a.abs_diff(b));
            count += 1;
        }
        sum as f64 / count as f64
    }

    fn options(backend: JpegBackend, quality: u8) -> EncodeOptions {
        EncodeOptions {
            quality,
            jpeg_backend: backend,
            ..EncodeOptions::default()
        }
    }

    #[test]
    fn turbo_and_rust_payloads_match_in_quality_and_size() {
        let mut report = Vec::new();
        for (width, height) in SIZES {
            for format in PixelFormat::ALL {
                let mut pattern = TestPattern::new(width, height, 0.0)
                    .unwrap()
                    .with_format(format);
                let mut frame = Frame::empty(format);
                let mut dec = decoder(&stream(CodecKind::Jpeg, width, height, PixelFormat::Rgb8));
                let mut decoded = Frame::empty(PixelFormat::Rgb8);
                let mut payload = Vec::new();
                let mut errors = [0.0f64; 2];
                let mut sizes = [0usize; 2];
                let backends = [JpegBackend::Rust, JpegBackend::Turbo];
                let mut encoders: Vec<_> = backends
                    .iter()
                    .map(|b| encoder(CodecKind::Jpeg, &options(*b, 80)).unwrap())
                    .collect();
                for n in FRAME_NUMBERS {
                    pattern.render(n, &mut frame);
                    for (i, enc) in encoders.iter_mut().enumerate() {
                        let case = format!("{} {width}x{height} {format} frame {n}", backends[i]);
                        enc.encode(&frame, &mut payload).unwrap();
                        dec.decode(&payload, &mut decoded)
                            .unwrap_or_else(|e| panic!("{case}: {e}"));
                        assert_eq!(
                            (decoded.width, decoded.height, decoded.format),
                            (width, height, PixelFormat::Rgb8),
                            "{case}"
                        );
                        assert_eq!(read_frame_number(&decoded), Some(n), "{case}");
                        let psnr = psnr_rgb(&frame, &decoded);
                        assert!(psnr >= JPEG_Q80_MIN_PSNR_DB, "{case}: {psnr:.1} dB");
                        errors[i] += mean_abs_error(&frame, &decoded);
                        sizes[i] += payload.len();
                    }
                }
                let [rust, turbo] = errors.map(|e| e / FRAME_NUMBERS.len() as f64);
                let [rust_bytes, turbo_bytes] = sizes.map(|b| b as f64);
                report.push(format!(
                    "{width}x{height} {format}: mean abs error rust {rust:.3}, turbojpeg \
                     {turbo:.3}; bytes rust {rust_bytes}, turbojpeg {turbo_bytes}"
                ));
                // Same quality tables, same 4:2:0, same standard Huffman tables: the two
                // encoders should write nearly the same JPEG. Measured (libjpeg-turbo 3.1.0 via
                // turbojpeg-sys 1.2): PSNR equal to 0.01 dB on every frame, framewire's payloads
                // 0.4-0.6% smaller.
                assert!(
                    rust < 10.0 && (turbo - rust).abs() < 0.02 * rust,
                    "{report:?}"
                );
                assert!(
                    (turbo_bytes - rust_bytes).abs() < 0.03 * turbo_bytes,
                    "{report:?}"
                );
            }
        }
    }

    #[test]
    fn turbo_writes_4_2_0_at_the_quality_asked_for() {
        let frame = pattern_frame(320, 240, PixelFormat::Rgb8, 9);
        let mut sizes = Vec::new();
        for quality in [30, 80, 95] {
            let mut payload = Vec::new();
            JpegEncoder::with_backend(quality, JpegBackend::Turbo)
                .unwrap()
                .encode(&frame, &mut payload)
                .unwrap();
            // Luma 2x2, chroma 1x1: 4:2:0, as OpenCV's imencode writes by default.
            assert_eq!(
                sampling_factors(&payload),
                [(2, 2), (1, 1), (1, 1)],
                "quality {quality}"
            );
            sizes.push(payload.len());
        }
        assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
    }

    #[test]
    fn turbo_reads_padded_rows_and_rgba_like_packed_rgb() {
        for format in PixelFormat::ALL {
            let packed = pattern_frame(61, 37, format, 77);
            let mut padded = packed.clone();
            padded.stride = packed.row_bytes() + 7;
            padded.pixels = vec![0x5A; padded.stride * 37];
            for y in 0..37 {
                padded.pixels[y as usize * padded.stride..][..packed.row_bytes()]
                    .copy_from_slice(packed.row(y));
            }
            let encode = |frame: &Frame| {
                let mut payload = Vec::new();
                JpegEncoder::with_backend(80, JpegBackend::Turbo)
                    .unwrap()
                    .encode(frame, &mut payload)
                    .unwrap();
                payload
            };
            assert_eq!(encode(&packed), encode(&padded), "{format}");
        }
        // rgba8 drops alpha: the payload is the rgb8 frame's.
        let rgb = pattern_frame(64, 48, PixelFormat::Rgb8, 5);
        let mut rgba = pattern_frame(64, 48, PixelFormat::Rgba8, 5);
        for px in rgba.pixels.chunks_exact_mut(4) {
            px[3] = 0x13;
        }
        let mut payloads = [Vec::new(), Vec::new()];
        let mut enc = JpegEncoder::with_backend(80, JpegBackend::Turbo).unwrap();
        enc.encode(&rgb, &mut payloads[0]).unwrap();
        enc.encode(&rgba, &mut payloads[1]).unwrap();
        assert_eq!(payloads[0], payloads[1]);
    }

    #[test]
    fn the_registry_builds_the_backend_the_options_name() {
        let frame = pattern_frame(64, 48, PixelFormat::Rgb8, 4);
        let mut payloads = Vec::new();
        for backend in [JpegBackend::Rust, JpegBackend::Turbo] {
            let (mut direct, mut registry) = (Vec::new(), Vec::new());
            JpegEncoder::with_backend(80, backend)
                .unwrap()
                .encode(&frame, &mut direct)
                .unwrap();
            encoder(CodecKind::Jpeg, &options(backend, 80))
                .unwrap()
                .encode(&frame, &mut registry)
                .unwrap();
            assert_eq!(direct, registry, "{backend}");
            payloads.push(direct);
        }
        assert_ne!(payloads[0], payloads[1], "two libraries, two byte streams");
        assert_eq!(EncodeOptions::default().jpeg_backend, JpegBackend::Turbo);
    }

    #[test]
    fn turbo_quality_out_of_range_is_unsupported() {
        for quality in [0, 101] {
            let err = encoder(CodecKind::Jpeg, &options(JpegBackend::Turbo, quality))
                .err()
                .unwrap();
            assert!(matches!(err, CodecError::Unsupported { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "jpeg cannot encode this frame: quality {quality} is out of range, expected 1..=100"
                )
            );
        }
    }

    #[test]
    fn turbo_reuses_the_callers_buffer() {
        let mut enc = JpegEncoder::with_backend(80, JpegBackend::Turbo).unwrap();
        let mut payload = Vec::new();
        let first = pattern_frame(320, 240, PixelFormat::Rgb8, 1);
        enc.encode(&first, &mut payload).unwrap();
        let whole = payload.clone();
        // A frame's payload replaces the last one; the buffer is not replaced once it is big enough.
        payload.reserve(payload.len());
        let ptr = payload.as_ptr();
        for n in 2..6 {
            enc.encode(&pattern_frame(320, 240, PixelFormat::Rgb8, n), &mut payload)
                .unwrap();
            assert_eq!(payload.as_ptr(), ptr);
            assert_eq!(&payload[..2], [0xFF, 0xD8], "starts with SOI");
            assert_eq!(&payload[payload.len() - 2..], [0xFF, 0xD9], "ends with EOI");
        }
        enc.encode(&first, &mut payload).unwrap();
        assert_eq!(payload, whole, "the same frame gives the same bytes");
    }
}

#[cfg(not(feature = "turbojpeg"))]
#[test]
fn turbo_without_the_feature_is_unsupported_with_the_rebuild_hint() {
    use framewire_codec::JpegBackend;
    for kind in intra_only() {
        let options = EncodeOptions {
            jpeg_backend: JpegBackend::Turbo,
            ..EncodeOptions::default()
        };
        let err = encoder(kind, &options).err().unwrap();
        assert!(matches!(err, CodecError::Unsupported { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("jpeg cannot encode this frame: this build has no turbojpeg")
                && msg.contains("rebuild with `--features turbojpeg`")
                && msg.contains("cmake and nasm"),
            "{kind}: {msg}"
        );
    }
}

#[test]
fn the_pure_rust_encoder_writes_4_2_0_at_every_quality() {
    // What both encoders write, as OpenCV's imencode does: 2x2 luma per 1x1 chroma.
    for quality in [1, 80, 100] {
        let mut payload = Vec::new();
        framewire_codec::JpegEncoder::with_backend(quality, framewire_codec::JpegBackend::Rust)
            .unwrap()
            .encode(&pattern_frame(64, 48, PixelFormat::Rgb8, 2), &mut payload)
            .unwrap();
        assert_eq!(
            sampling_factors(&payload),
            [(2, 2), (1, 1), (1, 1)],
            "quality {quality}"
        );
    }
}

/// The codecs whose every frame decodes on its own: the round trips here are of single frames.
/// H.264's own tests (a stream of frames, keyframes, profiles) are in `src/h264.rs`.
fn intra_only() -> impl Iterator<Item = CodecKind> {
    CodecKind::ALL.into_iter().filter(|k| k.is_intra_only())
}
