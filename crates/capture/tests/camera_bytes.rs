//! Camera conversion, negotiation-free decoding and MJPEG passthrough on recorded frames
//! (`testdata/camera`, made by `make-fixtures.sh` with ffmpeg), against ffmpeg's own RGB.

use framewire_capture::FourCc;
use framewire_capture::convert::{
    ConvertError, mjpeg_passthrough, mjpeg_to_rgb, nv12_to_rgb, scan_jpeg, to_rgb, yuyv_to_rgb,
};
use framewire_core::{Frame, PixelFormat};

const W: u32 = 64;
const H: u32 = 48;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../testdata/camera/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

/// Largest and mean absolute difference per sample between `got` and ffmpeg's `reference`.
fn difference(got: &Frame, reference: &[u8]) -> (u8, f64) {
    assert_eq!(
        (got.width, got.height, got.format),
        (W, H, PixelFormat::Rgb8)
    );
    assert_eq!(got.pixels.len(), reference.len());
    let diffs = got
        .pixels
        .iter()
        .zip(reference)
        .map(|(a, b)| a.abs_diff(*b));
    let max = diffs.clone().max().unwrap_or(0);
    let mean = diffs.map(f64::from).sum::<f64>() / reference.len() as f64;
    (max, mean)
}

fn check_close(name: &str, got: &Frame, reference: &[u8], max_allowed: u8, mean_allowed: f64) {
    let (max, mean) = difference(got, reference);
    assert!(
        max <= max_allowed && mean <= mean_allowed,
        "{name}: max difference {max} (allowed {max_allowed}), mean {mean:.3} (allowed {mean_allowed})"
    );
}

#[test]
fn yuyv_matches_ffmpeg() {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    yuyv_to_rgb(&fixture("frame.yuyv"), W, H, &mut frame).unwrap();
    check_close(
        "yuyv",
        &frame,
        &fixture("frame.yuyv.rgb"),
        MAX_YUYV,
        MEAN_YUYV,
    );
}

#[test]
fn nv12_matches_ffmpeg() {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    nv12_to_rgb(&fixture("frame.nv12"), W, H, &mut frame).unwrap();
    check_close(
        "nv12",
        &frame,
        &fixture("frame.nv12.rgb"),
        MAX_NV12,
        MEAN_NV12,
    );
}

#[test]
fn mjpeg_matches_ffmpeg() {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let info = mjpeg_to_rgb(&fixture("frame.mjpeg"), &mut frame, &mut Vec::new()).unwrap();
    assert_eq!((info.width, info.height), (W, H));
    check_close(
        "mjpeg",
        &frame,
        &fixture("frame.mjpeg.rgb"),
        MAX_MJPEG,
        MEAN_MJPEG,
    );
}

// Tolerances per sample (0-255), against references made with the same chroma upsampling
// (see make-fixtures.sh): what is left is rounding in the fixed-point arithmetic.
const MAX_YUYV: u8 = 3;
const MEAN_YUYV: f64 = 0.5;
const MAX_NV12: u8 = 3;
const MEAN_NV12: f64 = 0.5;
const MAX_MJPEG: u8 = 6;
const MEAN_MJPEG: f64 = 0.5;

#[test]
fn driver_buffers_longer_than_a_frame_are_fine() {
    let mut yuyv = fixture("frame.yuyv");
    yuyv.extend_from_slice(&[0x55; 1000]);
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    to_rgb(FourCc::Yuyv, &yuyv, W, H, &mut frame, &mut Vec::new()).unwrap();
    check_close(
        "yuyv+tail",
        &frame,
        &fixture("frame.yuyv.rgb"),
        MAX_YUYV,
        MEAN_YUYV,
    );
}

#[test]
fn short_buffers_and_bad_sizes_are_errors() {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let yuyv = fixture("frame.yuyv");
    let nv12 = fixture("frame.nv12");
    assert_eq!(
        yuyv_to_rgb(&yuyv[..yuyv.len() - 1], W, H, &mut frame),
        Err(ConvertError::Short {
            fourcc: FourCc::Yuyv,
            width: W,
            height: H,
            need: 6144,
            got: 6143
        })
    );
    assert_eq!(
        nv12_to_rgb(&nv12[..100], W, H, &mut frame)
            .unwrap_err()
            .to_string(),
        "NV12 64x48 frame needs 4608 bytes, got 100"
    );
    for (w, h) in [(0, 48), (63, 48), (64, 0), (20000, 2)] {
        assert!(matches!(
            yuyv_to_rgb(&yuyv, w, h, &mut frame),
            Err(ConvertError::BadSize { .. } | ConvertError::Short { .. })
        ));
    }
    assert!(matches!(
        nv12_to_rgb(&nv12, 64, 47, &mut frame),
        Err(ConvertError::BadSize { .. })
    ));
    assert!(to_rgb(FourCc::Yuyv, &[], W, H, &mut frame, &mut Vec::new()).is_err());
}

#[test]
fn passthrough_gives_back_the_cameras_bytes() {
    let jpeg = fixture("frame.mjpeg");
    let mut out = Vec::new();
    let info = mjpeg_passthrough(&jpeg, &mut out).unwrap();
    assert_eq!(out, jpeg, "bytes out must be bytes in");
    assert_eq!((info.width, info.height, info.len), (W, H, jpeg.len()));
    assert!(info.has_huffman);

    // A V4L2 buffer holds the frame followed by whatever was there before: cut at the end marker.
    let mut buffer = jpeg.clone();
    buffer.extend_from_slice(&[0xFF, 0xD9, 0x12, 0xFF, 0x00, 0x34]);
    buffer.extend(std::iter::repeat_n(0u8, 4096));
    mjpeg_passthrough(&buffer, &mut out).unwrap();
    assert_eq!(out, jpeg);
}

/// Removes every DHT segment, as many webcams send MJPEG.
fn without_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while jpeg[pos + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if jpeg[pos + 1] != 0xC4 {
            out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&jpeg[pos..]);
    out
}

#[test]
fn mjpeg_without_huffman_tables_gets_the_standard_ones() {
    let jpeg = fixture("frame.mjpeg");
    let stripped = without_huffman_tables(&jpeg);
    assert!(stripped.len() < jpeg.len());
    let info = scan_jpeg(&stripped).unwrap();
    assert!(!info.has_huffman);

    let mut with_tables = Vec::new();
    mjpeg_passthrough(&stripped, &mut with_tables).unwrap();
    assert!(scan_jpeg(&with_tables).unwrap().has_huffman);

    // Both the repaired payload and the direct decode give the original picture exactly.
    let (mut want, mut got, mut direct) = (
        Frame::empty(PixelFormat::Rgb8),
        Frame::empty(PixelFormat::Rgb8),
        Frame::empty(PixelFormat::Rgb8),
    );
    mjpeg_to_rgb(&jpeg, &mut want, &mut Vec::new()).unwrap();
    mjpeg_to_rgb(&with_tables, &mut got, &mut Vec::new()).unwrap();
    mjpeg_to_rgb(&stripped, &mut direct, &mut Vec::new()).unwrap();
    assert_eq!(got.pixels, want.pixels);
    assert_eq!(direct.pixels, want.pixels);
}

#[test]
fn every_prefix_of_an_mjpeg_frame_is_an_error_not_a_panic() {
    let jpeg = fixture("frame.mjpeg");
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut out = Vec::new();
    for len in 0..jpeg.len() {
        let prefix = &jpeg[..len];
        assert!(scan_jpeg(prefix).is_err(), "prefix of {len} bytes");
        assert!(mjpeg_passthrough(prefix, &mut out).is_err());
        assert!(mjpeg_to_rgb(prefix, &mut frame, &mut out).is_err());
    }
}

#[test]
fn flipped_and_random_bytes_never_panic() {
    let jpeg = fixture("frame.mjpeg");
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut scratch = Vec::new();
    for i in 0..jpeg.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut bad = jpeg.clone();
            bad[i] ^= flip;
            let _ = mjpeg_to_rgb(&bad, &mut frame, &mut scratch);
            let _ = to_rgb(FourCc::Mjpeg, &bad, W, H, &mut frame, &mut scratch);
        }
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for len in [0, 1, 2, 4, 100, 5000] {
        let random: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut with_soi = vec![0xFF, 0xD8];
        with_soi.extend_from_slice(&random);
        for data in [&random, &with_soi] {
            assert!(mjpeg_to_rgb(data, &mut frame, &mut scratch).is_err());
        }
    }
}

#[test]
fn a_jpeg_of_another_size_than_the_camera_was_set_to_is_an_error() {
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let err = to_rgb(
        FourCc::Mjpeg,
        &fixture("frame.mjpeg"),
        640,
        480,
        &mut frame,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("not the size the camera was set to"),
        "{err}"
    );
}
