//! Files in and out, with the real binaries and the real ffmpeg: a Y4M clip made by ffmpeg's
//! `testsrc` goes through `serve --source file:` and `view --output x.y4m` and comes back the
//! same size, the same count and close to the same pixels (ffmpeg's `psnr`); a `.mjpeg` written
//! by `view --output` is counted by ffprobe; recordings made by `serve --record` and `view
//! --record` replay with the same payloads, at their pace; hostile files and unwritable
//! recordings give one line. Tests that need ffmpeg skip with the reason where it is missing,
//! and fail under `FRAMEWIRE_REQUIRE_ALL=1`.

// A skipped test says why; the PSNR of each codec is printed for the person running it.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use framewire_file::recording::{ReadError, Reader, Record};

mod common;
use common::{Serve, framewire, have_ffmpeg, stats, stderr, view, wait_timeout};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// ffmpeg's `testsrc` at `size`, `frames` frames at 30 fps, as 4:2:0 Y4M.
fn testsrc_y4m(dir: &Path, size: &str, frames: u32) -> PathBuf {
    let path = dir.join("in.y4m");
    run(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size={size}:rate=30"))
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "yuv420p"])
        .arg(&path));
    path
}

/// (width, height, frames) as ffprobe counts them.
fn probe(path: &Path) -> (u32, u32, u64) {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    let [w, h, n] = fields[..] else {
        panic!("ffprobe said {text:?}");
    };
    (w.parse().unwrap(), h.parse().unwrap(), n.parse().unwrap())
}

/// ffmpeg's average PSNR of `b` against `a`, frame by frame.
fn psnr(a: &Path, b: &Path) -> f64 {
    let out = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "psnr", "-f", "null", "-"]));
    let text = String::from_utf8_lossy(&out.stderr);
    let avg = text
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in {text}"));
    avg.parse().unwrap()
}

/// Serves `source` with `args` and views it to the end with `view_args`; returns the viewer's
/// stats and output.
fn serve_and_view(serve_args: &[&str], view_args: &[&str]) -> (serde_json::Value, Output) {
    let serve = Serve::start(serve_args);
    let mut args = vec!["--headless", "--connect", &serve.addr, "--stats", "json"];
    args.extend_from_slice(view_args);
    let out = view(&args);
    (stats(&out), out)
}

#[test]
fn a_y4m_clip_goes_through_serve_and_view_to_a_y4m_ffmpeg_reads() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc_y4m(dir.path(), "320x240", 30);
    let source = format!("file:{}", input.display());
    for (codec, floor) in [("raw", 40.0), ("jpeg", 32.0)] {
        let output = dir.path().join(format!("out-{codec}.y4m"));
        let (stats, _) = serve_and_view(
            &[
                "--source",
                &source,
                "--codec",
                codec,
                "--quality",
                "90",
                "--adapt",
                "off",
            ],
            &["--output", output.to_str().unwrap()],
        );
        let (frames, dropped) = (
            stats["frames"].as_u64().unwrap(),
            stats["dropped"].as_u64().unwrap(),
        );
        // The stream ended with the file: every frame was either received or dropped.
        assert_eq!(frames + dropped, 30, "{codec}: {stats}");
        assert_eq!(probe(&output), (320, 240, frames), "{codec}");
        // The header carries the server's rate (the file's own, 30 fps).
        let rate = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=r_frame_rate",
                "-of",
                "csv=p=0",
            ])
            .arg(&output));
        assert_eq!(
            String::from_utf8_lossy(&rate.stdout).trim(),
            "30/1",
            "{codec}"
        );
        if dropped == 0 {
            let db = psnr(&input, &output);
            eprintln!("{codec}: PSNR {db:.2} dB");
            assert!(db >= floor, "{codec}: PSNR {db:.2} dB < {floor}");
        }
    }
}

#[test]
fn looping_a_file_goes_on_past_its_end() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = testsrc_y4m(dir.path(), "64x48", 10);
    let source = format!("file:{}", input.display());
    let (stats, _) = serve_and_view(
        &[
            "--source", &source, "--loop", "--fps", "0", "--adapt", "off",
        ],
        &["--frames", "35"],
    );
    assert_eq!(stats["frames"], 35);
    assert_eq!(
        stats["out_of_order"], 0,
        "sequence numbers keep rising: {stats}"
    );
}

#[test]
fn received_jpegs_written_as_mjpeg_are_counted_by_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.mjpeg");
    let (stats, _) = serve_and_view(
        &["--codec", "jpeg", "--size", "320x240", "--adapt", "off"],
        &["--frames", "25", "--output", output.to_str().unwrap()],
    );
    assert_eq!(stats["frames"], 25);
    assert_eq!(probe(&output), (320, 240, 25));

    // Read back as a source, the file's JPEGs go out as they are (no re-encode).
    let serve = Serve::start(&[
        "--source",
        &format!("file:{}", output.display()),
        "--codec",
        "jpeg",
        "--adapt",
        "off",
    ]);
    serve.line_containing("passing the source's jpeg frames through");
    let again = dir.path().join("again.mjpeg");
    let out = view(&[
        "--headless",
        "--connect",
        &serve.addr,
        "--output",
        again.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&output).unwrap()
    );
}

#[test]
fn mjpeg_output_of_a_raw_stream_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.mjpeg");
    let serve = Serve::start(&["--codec", "raw", "--size", "64x48"]);
    let out = view(&[
        "--headless",
        "--connect",
        &serve.addr,
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("an MJPEG file holds JPEG frames as they arrive, and this stream is raw"),
        "{err}"
    );
}

/// A recording's packets: (seq, at_us, payload).
type Packets = Vec<(u64, u64, Vec<u8>)>;

/// Every packet of a whole recording.
fn packets(path: &Path) -> Packets {
    let (out, cut) = packets_up_to_cut(path);
    assert_eq!(cut, None, "{} is cut short", path.display());
    out
}

/// Every whole packet of a recording, and where it is cut short, if it is.
fn packets_up_to_cut(path: &Path) -> (Packets, Option<u64>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = Reader::new(std::io::BufReader::new(file)).unwrap();
    let mut out = Vec::new();
    let mut payload = Vec::new();
    loop {
        match reader.next_record(&mut payload) {
            Ok(Some(Record::Packet(p))) => out.push((p.seq, p.at_us, payload.clone())),
            Ok(Some(Record::Stream(_))) => {}
            Ok(None) => return (out, None),
            Err(ReadError::CutShort(at)) => return (out, Some(at)),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn recordings_replay_the_same_payloads_at_their_pace() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // The server records its own stream from the start; with --frames it ends by itself.
    let (sent, viewed) = (path("sent.fwrec"), path("viewed.fwrec"));
    let mut serve = Serve::start(&[
        "--codec", "jpeg", "--size", "160x120", "--adapt", "off", "--frames", "20", "--record",
        &sent,
    ]);
    let status = wait_timeout(&mut serve.child, "serve --record --frames 20 to end");
    assert!(status.success());
    let original = packets(Path::new(&sent));
    assert_eq!(original.len(), 20);

    // A replay is never decoded, so flags that would need it are refused in one line.
    let out = framewire()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--width",
            "80",
            "--source",
        ])
        .arg(format!("file:{sent}"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("--width/--height: a recording is replayed as it was recorded (jpeg)"),
        "{err}"
    );

    // Replayed twice, each viewer recording what it got: the same payloads every time.
    for round in 0..2 {
        let (stats, _) = serve_and_view(
            &["--source", &format!("file:{sent}")],
            &["--record", &viewed],
        );
        let replayed = packets(Path::new(&viewed));
        assert_eq!(stats["frames"].as_u64().unwrap() as usize, replayed.len());
        assert_eq!(
            replayed.len() + stats["dropped"].as_u64().unwrap() as usize,
            20
        );
        for (seq, _, payload) in &replayed {
            let (_, _, want) = original.iter().find(|(s, _, _)| s == seq).unwrap();
            assert_eq!(payload, want, "round {round}: frame {seq}");
        }
        // At the original pace: the replay takes about as long as the recording did.
        let span = |p: &[(u64, u64, Vec<u8>)]| p.last().unwrap().1 - p[0].1;
        let (was, now) = (span(&original), span(&replayed));
        assert!(
            now * 10 >= was * 8 && now <= was * 2,
            "round {round}: recorded over {was} µs, replayed over {now} µs"
        );
    }
}

#[test]
fn hostile_files_and_unwritable_recordings_give_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    for (file, want) in [
        (
            write("a.y4m", b"YUV4MPEG2 W4 H2\nFRAME\n\x10\x10"),
            "byte 24: the file ends inside frame 0",
        ),
        (
            write("b.fwrec", b"FWREC\0\r\n\x01\0\0\0X\0\0\0\0"),
            "byte 12: unknown record tag 0x58",
        ),
        (
            write("c.bin", b"\0\0\0\0"),
            "byte 0: not a file framewire reads",
        ),
    ] {
        let out = framewire()
            .args(["serve", "--listen", "127.0.0.1:0", "--source"])
            .arg(format!("file:{}", file.display()))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(want),
            "{err}"
        );
    }

    // A recording that cannot be written: one line, and the stream goes on.
    for (path, want) in [
        (
            "/nonexistent-folder/x.fwrec",
            "cannot create recording /nonexistent-folder/x.fwrec",
        ),
        (
            "/dev/full",
            "cannot write recording /dev/full: byte 0: No space left on device",
        ),
    ] {
        let serve = Serve::start(&["--size", "64x48", "--record", path]);
        let line = serve.error_line("the --record error");
        assert!(
            line.contains(want) && line.contains("streaming without recording"),
            "{line}"
        );
        let out = view(&[
            "--headless",
            "--connect",
            &serve.addr,
            "--frames",
            "5",
            "--stats",
            "json",
        ]);
        assert_eq!(stats(&out)["frames"], 5);
    }
}

#[test]
fn a_recording_that_hits_a_full_disk_ends_in_one_line_and_the_stream_goes_on() {
    // A file size limit of 100 KiB stands in for a full disk: past it, writes fail (EFBIG; the
    // signal that would kill the process is ignored, as a shell's `trap` leaves it to exec).
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("cut.fwrec");
    let serve = Serve::start(&["--codec", "raw", "--size", "64x48", "--adapt", "off"]);
    let script = format!(
        "trap '' XFSZ; ulimit -f 100; exec \"$0\" view --headless --connect {} --frames 30 \
         --stats json --record {}",
        serve.addr,
        rec.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_framewire")])
        .output()
        .unwrap();
    assert_eq!(stats(&out)["frames"], 30, "the stream went on");
    let err = stderr(&out);
    let said: Vec<&str> = err.lines().filter(|l| l.contains("cut.fwrec")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("File too large") && said[0].contains("the recording ends there"),
        "{err}"
    );
    // What was written reads back up to its last whole record.
    let (kept, cut) = packets_up_to_cut(&rec);
    assert!((5..30).contains(&kept.len()), "{} packets kept", kept.len());
    assert_eq!(cut, Some(100 * 1024), "cut at the limit");
}
