//! Files as sources, on files written here: Y4M in each chroma layout, MJPEG decoded and passed
//! through, still images, recordings replayed byte for byte, looping, and hostile files that
//! must each give one error naming the file and the byte offset.

use std::path::{Path, PathBuf};

use framewire_capture::{SourceOptions, SourceSpec, open_source_with};
use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, Packet, PixelFormat, Rendition,
};
use framewire_file::recording::{StreamRecord, Writer};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/camera")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn open(
    path: &Path,
    fps: Option<f64>,
    looping: bool,
) -> Result<Box<dyn FrameSource>, CaptureError> {
    let spec: SourceSpec = format!("file:{}", path.display()).parse().unwrap();
    open_source_with(&spec, 640, 480, &SourceOptions { fps, looping })
}

/// A Y4M file of `frames` frames of `w`x`h` in `chroma`, every sample of frame `i` grey
/// (Y = 126 + i, U = V = 128).
fn y4m(chroma: &str, w: usize, h: usize, frames: usize) -> Vec<u8> {
    let (cw, ch) = match chroma {
        "444" => (w, h),
        "422" => (w.div_ceil(2), h),
        _ => (w.div_ceil(2), h.div_ceil(2)),
    };
    let mut bytes = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{chroma}\n").into_bytes();
    for i in 0..frames {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend(std::iter::repeat_n(126 + i as u8, w * h));
        bytes.extend(std::iter::repeat_n(128u8, 2 * cw * ch));
    }
    bytes
}

fn frames(source: &mut dyn FrameSource, n: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        if !source.next_frame(&mut frame).unwrap() {
            break;
        }
        out.push(frame);
    }
    out
}

#[test]
fn y4m_in_each_chroma_layout_becomes_rgb_at_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    for chroma in ["420jpeg", "422", "444"] {
        let path = write(&dir, "clip.y4m", &y4m(chroma, 6, 4, 3));
        let mut source = open(&path, Some(0.0), false).unwrap();
        let info = source.info();
        assert_eq!(
            (info.width, info.height, info.format),
            (6, 4, PixelFormat::Rgb8)
        );
        let got = frames(&mut *source, 10);
        assert_eq!(got.len(), 3, "C{chroma}: three frames, then the end");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.seq, i as u64);
            // Grey stays grey: Y 126 + i in limited range is about 128 + 1.16 i in RGB.
            let want = 128 + (i as i32 * 116 / 100);
            for &v in &f.pixels {
                assert!(
                    (i32::from(v) - want).abs() <= 2,
                    "C{chroma} frame {i}: {v} vs {want}"
                );
            }
        }
        // The file's own rate unless one is asked for.
        assert_eq!(open(&path, None, false).unwrap().info().fps, 25.0);
    }
}

#[test]
fn looping_starts_again_with_rising_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "clip.y4m", &y4m("420", 4, 2, 2));
    let mut source = open(&path, Some(0.0), true).unwrap();
    let got = frames(&mut *source, 5);
    let seqs: Vec<u64> = got.iter().map(|f| f.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    assert_eq!(got[0].pixels, got[2].pixels, "frame 2 is frame 0 again");
}

#[test]
fn mjpeg_decodes_each_jpeg_or_passes_it_through_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = fixture("frame.mjpeg");
    let path = write(&dir, "clip.mjpeg", &jpeg.repeat(3));
    let mut source = open(&path, Some(0.0), false).unwrap();
    assert_eq!((source.info().width, source.info().height), (64, 48));
    assert_eq!(frames(&mut *source, 10).len(), 3);

    let mut source = open(&path, Some(0.0), false).unwrap();
    assert_eq!(source.compressed_codec(), Some(CodecKind::Jpeg));
    let mut c = CompressedFrame::empty(CodecKind::Jpeg);
    for _ in 0..3 {
        assert!(source.next_compressed(&mut c).unwrap());
        // The fixture has its Huffman tables, so the bytes are the file's own.
        assert_eq!(c.data, jpeg);
        assert_eq!((c.width, c.height), (64, 48));
    }
    assert!(!source.next_compressed(&mut c).unwrap());
}

#[test]
fn a_still_jpeg_repeats_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "still.jpg", &fixture("frame.mjpeg"));
    let mut source = open(&path, Some(0.0), false).unwrap();
    let got = frames(&mut *source, 4);
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|f| f.pixels == got[0].pixels && f.width == 64)
    );
}

/// A PNG of `w` x `h` in `color`, its samples counting up.
fn png_file(w: u32, h: u32, color: png::ColorType, samples: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let data: Vec<u8> = (0..w as usize * h as usize * samples)
        .map(|i| i as u8)
        .collect();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

#[test]
fn a_still_png_keeps_its_pixels_rgb_rgba_or_grey() {
    let dir = tempfile::tempdir().unwrap();
    for (color, samples, format, want) in [
        (
            png::ColorType::Rgb,
            3,
            PixelFormat::Rgb8,
            vec![0, 1, 2, 3, 4, 5],
        ),
        (
            png::ColorType::Rgba,
            4,
            PixelFormat::Rgba8,
            vec![0, 1, 2, 3, 4, 5, 6, 7],
        ),
        (
            png::ColorType::Grayscale,
            1,
            PixelFormat::Rgb8,
            vec![0, 0, 0, 1, 1, 1],
        ),
    ] {
        let path = write(&dir, "still.png", &png_file(2, 3, color, samples));
        let mut source = open(&path, Some(0.0), false).unwrap();
        assert_eq!(source.info().format, format, "{color:?}");
        let got = frames(&mut *source, 3);
        assert_eq!(got.len(), 3, "{color:?}: repeated");
        assert_eq!((got[2].width, got[2].height, got[2].seq), (2, 3, 2));
        assert_eq!(got[2].row(0), &want[..], "{color:?}");
    }
}

#[test]
fn a_recording_replays_its_packets_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let stream = StreamRecord {
        rendition: Rendition::new(CodecKind::Raw, 2, 2, PixelFormat::Rgb8, 0),
        fps: 30.0,
    };
    let mut w = Writer::new(Vec::new()).unwrap();
    w.stream(stream).unwrap();
    for seq in 0..4u64 {
        let packet = Packet {
            seq: 10 + seq,
            payload: vec![seq as u8; 12],
            ..Packet::default()
        };
        w.packet_at(seq * 1000, &packet).unwrap();
    }
    let bytes = w.into_inner();
    let path = write(&dir, "rec.fwrec", &bytes);
    let mut source = open(&path, None, false).unwrap();
    assert!(source.compressed_only());
    assert_eq!(source.compressed_codec(), Some(CodecKind::Raw));
    assert_eq!(source.info().fps, 30.0);
    let mut c = CompressedFrame::empty(CodecKind::Raw);
    for seq in 0..4u64 {
        assert!(source.next_compressed(&mut c).unwrap());
        assert_eq!((c.seq, &c.data[..]), (10 + seq, &[seq as u8; 12][..]));
    }
    assert!(!source.next_compressed(&mut c).unwrap());
    let err = source
        .next_frame(&mut Frame::empty(PixelFormat::Rgb8))
        .unwrap_err();
    assert!(err.to_string().contains("replays its packets"), "{err}");

    // Cut short in its last record: the whole ones replay, then it ends.
    let path = write(&dir, "cut.fwrec", &bytes[..bytes.len() - 3]);
    let mut source = open(&path, Some(0.0), false).unwrap();
    let mut n = 0;
    while source.next_compressed(&mut c).unwrap() {
        n += 1;
    }
    assert_eq!(n, 3);

    // A corrupt record: an error naming the file and the record's offset.
    let mut bad = bytes.clone();
    let last = bad.len() - 10;
    bad[last] ^= 1;
    let path = write(&dir, "bad.fwrec", &bad);
    let mut source = open(&path, Some(0.0), false).unwrap();
    let err = loop {
        match source.next_compressed(&mut c) {
            Ok(true) => {}
            Ok(false) => panic!("the corrupt record went unnoticed"),
            Err(e) => break e.to_string(),
        }
    };
    let at = 12 + 29 + 3 * 46;
    assert!(
        err.starts_with(&format!(
            "{} failed: byte {at}: record checksum",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn hostile_files_give_one_line_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, bytes: &[u8], want: &str| {
        let path = write(&dir, name, bytes);
        let err = match open(&path, Some(0.0), false) {
            Ok(_) => panic!("{name} opened"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err,
            format!("cannot open {}: {want}", path.display()),
            "{name}"
        );
        assert!(!err.contains('\n'));
    };
    check(
        "notes.txt",
        b"hello",
        "byte 0: not a file framewire reads (found \"hello\"); expected Y4M, MJPEG (.mjpeg), H.264 (.h264, Annex-B), PNG, JPEG or a framewire recording",
    );
    check(
        "empty.y4m",
        b"",
        "byte 0: not a file framewire reads (found \"\"); expected Y4M, MJPEG (.mjpeg), H.264 (.h264, Annex-B), PNG, JPEG or a framewire recording",
    );
    // H.264: another profile, an SPS cut short, no SPS, a first picture that is no keyframe.
    check(
        "high.h264",
        b"\0\0\0\x01\x67\x64\0\x1f\xac",
        "byte 4: an H.264 stream in the high profile (100, constraints 0x00): framewire takes \
         constrained baseline only (no B-frames); encode with -profile:v baseline",
    );
    check(
        "short.h264",
        b"\0\0\0\x01\x67\x42",
        "byte 4: a truncated or malformed SPS (or a picture side beyond 16384)",
    );
    check(
        "nosps.h264",
        b"\0\0\0\x01\x65\x88\x80",
        "byte 0: no SPS before the first picture",
    );
    check(
        "delta.h264",
        b"\0\0\0\x01\x67\x42\xc0\x1e\xda\x02\x80\xf6\x80\0\0\0\x01\x41\x9a\x02",
        "byte 0: the first picture is not a keyframe (IDR)",
    );
    check(
        "noframes.y4m",
        b"YUV4MPEG2 W4 H2\n",
        "byte 16: no frames after the header",
    );
    let mut cut = y4m("420", 4, 2, 1);
    cut.truncate(cut.len() - 5);
    check(
        "cut.y4m",
        &cut,
        "byte 48: the file ends inside frame 0: it needs 12 bytes, 7 are there",
    );
    check(
        "huge.y4m",
        b"YUV4MPEG2 W16384 H16384 C444\nFRAME\nabc",
        "byte 38: the file ends inside frame 0: it needs 805306368 bytes, 3 are there",
    );
    check(
        "rec.fwrec",
        b"FWREC\0\r\n\x01\0\0\0P\xff\xff\xff\x7f",
        "byte 12: packet record of 2147483647 bytes, expected 25 to 268435456",
    );
    check(
        "rec2.fwrec",
        b"FWREC\0\r\n\x09\0\0\0",
        "byte 8: recording version 9; this build reads version 1",
    );
    let mut jpeg = fixture("frame.mjpeg");
    jpeg.truncate(jpeg.len() / 2);
    check(
        "cut.mjpeg",
        &jpeg,
        &format!(
            "byte {}: truncated before the end-of-image marker (in the JPEG that starts at byte 0)",
            jpeg.len()
        ),
    );
    // A header that lies about the frame size (4x2 over frames of 2x2): the first frame takes
    // the second's bytes, and the next FRAME line is not where the header says.
    let mut lying = y4m("444", 2, 2, 2);
    lying.splice(
        ..lying.iter().position(|&b| b == b'\n').unwrap(),
        *b"YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C444",
    );
    let path = write(&dir, "lying.y4m", &lying);
    let mut source = open(&path, Some(0.0), false).unwrap();
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    assert!(source.next_frame(&mut frame).unwrap());
    let err = source.next_frame(&mut frame).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{} failed: byte 65: expected FRAME (frame 1 of 4x2), found \"{}\": does the header give the right size?",
            path.display(),
            "\\x80".repeat(6)
        )
    );
    check(
        "bad.png",
        b"\x89PNG\r\n\x1a\n\0\0",
        "PNG: unexpected end of file",
    );
}
