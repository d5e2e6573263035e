//! framewire's H.264 against JPEG q80 and ffmpeg's libx264 on camera-like video, in one run:
//! `h264-vs-x264 FRAMEWIRE [--quick] [--photo PATH]`, with FRAMEWIRE a `framewire` binary built
//! with the feature `h264`.
//!
//! The content: a real photograph (by default `Path` from Debian's
//! `plasma-workspace-wallpapers`, a forest path), slowly zoomed and panned by ffmpeg's
//! `zoompan`, with temporal noise (`noise=alls=3:allf=t`) as a sensor adds; 90 frames at 30 fps
//! (45 with `--quick`), made at 640x480 and 1280x720, as RGB.
//!
//! Figures, as one JSON object on stdout (or `{"skipped": REASON}` without ffmpeg, libx264 or
//! the photo):
//! - bandwidth at equal quality: the mean PSNR (RGB, over every frame) of JPEG q80 with
//!   framewire's encoder and its bytes per frame; framewire's H.264 at the lowest bitrate
//!   whose PSNR is at least JPEG's (bisected), its bytes per frame and `h264_bytes_share` of
//!   JPEG's; `x264 --preset veryfast --tune zerolatency` at the highest CRF whose PSNR is at
//!   least JPEG's, the same;
//! - encode speed on one core, frames per second at each size: framewire's H.264 (at the
//!   matched bitrate scaled by pixels) in this process, and `ffmpeg -threads 1` with libx264
//!   `--preset ultrafast --tune zerolatency` at the same bitrate on the same frames, from its
//!   user+system time (`-benchmark`; both include RGB to YUV);
//! - decode speed likewise: framewire's decoder (to RGB) on its own stream, and ffmpeg's
//!   `-threads 1` H.264 decoder on the same stream (to RGB);
//! - capture-to-decoded latency on loopback, p50 and p99: `framewire serve --codec C --fps 30
//!   --adapt off` and `view --frames 150`, for jpeg and h264.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use framewire_codec::EncodeOptions;
use framewire_core::{CodecKind, Decoded, Frame, PixelFormat, StreamInfo};
use serde_json::{Value, json};

/// The photograph used unless `--photo` names another.
const PHOTO: &str = "/usr/share/wallpapers/Path/contents/images/2560x1600.jpg";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut exe, mut quick, mut photo) = (None, false, PathBuf::from(PHOTO));
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--photo" => match args.next() {
                Some(p) => photo = p.into(),
                None => return usage("--photo needs a path"),
            },
            _ if exe.is_none() => exe = Some(PathBuf::from(a)),
            other => return usage(&format!("unexpected {other:?}")),
        }
    }
    let Some(exe) = exe else {
        return usage("expected the framewire binary's path");
    };
    if let Err(why) = available(&photo) {
        println!("{}", json!({ "skipped": why }));
        return ExitCode::SUCCESS;
    }
    match measure(&exe, &photo, if quick { 45 } else { 90 }) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("h264-vs-x264: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("h264-vs-x264: {problem}\nusage: h264-vs-x264 FRAMEWIRE [--quick] [--photo PATH]");
    ExitCode::from(2)
}

/// Why this machine cannot measure (ffmpeg with libx264, the photo).
fn available(photo: &Path) -> Result<(), String> {
    let encoders = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .map_err(|e| format!("no ffmpeg ({e}); Debian: apt-get install ffmpeg"))?;
    if !String::from_utf8_lossy(&encoders.stdout).contains("libx264") {
        return Err("this ffmpeg has no libx264".into());
    }
    if !photo.is_file() {
        return Err(format!(
            "no photograph at {} (Debian: apt-get install plasma-workspace-wallpapers)",
            photo.display()
        ));
    }
    Ok(())
}

/// A clip of raw RGB frames.
struct Clip {
    width: u32,
    height: u32,
    frames: Vec<Frame>,
}

impl Clip {
    /// `frames` frames at `width` x `height` from `photo`, zoomed, panned and noisy.
    fn make(photo: &Path, width: u32, height: u32, frames: usize) -> Result<Clip, String> {
        let filter = format!(
            "scale=-2:{}, zoompan=z='1+0.0015*on':x='iw/2-(iw/zoom/2)+on*1.5':\
             y='ih/2-(ih/zoom/2)+on*0.5':d=1:s={width}x{height}:fps=30, noise=alls=3:allf=t",
            height * 2
        );
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-loop", "1", "-i"])
            .arg(photo)
            .args(["-vf", &filter, "-frames:v", &frames.to_string()])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        let size = (width * height * 3) as usize;
        if !out.status.success() || out.stdout.len() != size * frames {
            return Err(format!(
                "ffmpeg made {} bytes of clip, not {}: {}",
                out.stdout.len(),
                size * frames,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let frames = out
            .stdout
            .chunks_exact(size)
            .enumerate()
            .map(|(n, pixels)| {
                let mut f = Frame::new(width, height, PixelFormat::Rgb8);
                f.pixels.copy_from_slice(pixels);
                f.seq = n as u64;
                f
            })
            .collect();
        Ok(Clip {
            width,
            height,
            frames,
        })
    }

    fn raw(&self) -> Vec<u8> {
        self.frames
            .iter()
            .flat_map(|f| f.pixels.iter().copied())
            .collect()
    }
}

/// The mean PSNR of `decoded` against the clip, in dB (RGB, 8 bits).
fn psnr(clip: &Clip, decoded: &[Vec<u8>]) -> Result<f64, String> {
    if decoded.len() != clip.frames.len() {
        return Err(format!(
            "{} frames decoded of {}",
            decoded.len(),
            clip.frames.len()
        ));
    }
    let sum: f64 = clip
        .frames
        .iter()
        .zip(decoded)
        .map(|(a, b)| {
            let se: u64 = a
                .pixels
                .iter()
                .zip(b)
                .map(|(x, y)| u64::from(x.abs_diff(*y)).pow(2))
                .sum();
            let mse = (se as f64 / a.pixels.len() as f64).max(1e-10);
            10.0 * (255.0 * 255.0 / mse).log10()
        })
        .sum();
    Ok(sum / decoded.len() as f64)
}

/// One encode of the clip: each frame's payload, and the seconds the encoder took.
struct Encoded {
    payloads: Vec<Vec<u8>>,
    secs: f64,
}

impl Encoded {
    fn bytes_per_frame(&self) -> f64 {
        self.payloads.iter().map(Vec::len).sum::<usize>() as f64 / self.payloads.len() as f64
    }
}

fn encode(clip: &Clip, codec: CodecKind, options: EncodeOptions) -> Result<Encoded, String> {
    let mut encoder = framewire_codec::encoder(codec, &options).map_err(|e| e.to_string())?;
    let mut payloads = Vec::with_capacity(clip.frames.len());
    let t = Instant::now();
    for f in &clip.frames {
        let mut p = Vec::new();
        encoder.encode(f, &mut p).map_err(|e| e.to_string())?;
        payloads.push(p);
    }
    Ok(Encoded {
        payloads,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// Decodes `payloads` with framewire's decoder: the pictures, and the seconds it took.
fn decode(
    clip: &Clip,
    codec: CodecKind,
    payloads: &[Vec<u8>],
) -> Result<(Vec<Vec<u8>>, f64), String> {
    let info = StreamInfo {
        codec,
        width: clip.width,
        height: clip.height,
        format: PixelFormat::Rgb8,
    };
    let mut decoder = framewire_codec::decoder(&info);
    let mut frame = Frame::empty(PixelFormat::Rgb8);
    let mut out = Vec::with_capacity(payloads.len());
    let t = Instant::now();
    for p in payloads {
        if decoder.decode(p, &mut frame).map_err(|e| e.to_string())? == Decoded::Picture {
            out.push(frame.pixels.clone());
        }
    }
    Ok((out, t.elapsed().as_secs_f64()))
}

fn h264(kbit: u32) -> EncodeOptions {
    EncodeOptions {
        bitrate_kbit: kbit,
        ..EncodeOptions::default()
    }
}

/// Runs ffmpeg with `args` (`-benchmark` added): its stdout, and its user+system seconds.
fn ffmpeg(args: &[&str], input: Option<&[u8]>) -> Result<(Vec<u8>, f64), String> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-v", "info", "-benchmark", "-y"])
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("piped");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || stdin.write_all(&bytes))
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("ffmpeg {args:?} failed: {}", stderr.trim()));
    }
    // "bench: utime=0.512s stime=0.020s rtime=0.540s"
    let field = |name: &str| -> Option<f64> {
        let at = stderr.find(name)? + name.len();
        stderr[at..].split('s').next()?.parse().ok()
    };
    let cpu = field("utime=").zip(field("stime=")).map(|(u, s)| u + s);
    Ok((
        out.stdout,
        cpu.ok_or_else(|| format!("no -benchmark line in {stderr:?}"))?,
    ))
}

fn raw_input(clip: &Clip) -> Vec<String> {
    let size = format!("{}x{}", clip.width, clip.height);
    [
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-r", "30", "-i", "-",
    ]
    .map(String::from)
    .to_vec()
}

/// libx264 on the clip with `settings`: the Annex-B stream, and ffmpeg's CPU seconds.
fn x264(clip: &Clip, settings: &[&str]) -> Result<(Vec<u8>, f64), String> {
    let mut args = raw_input(clip);
    args.extend(["-threads", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"].map(String::from));
    args.extend(settings.iter().map(|s| s.to_string()));
    args.extend(["-f", "h264", "-"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&args, Some(&clip.raw()))
}

/// ffmpeg's one-thread decode of an Annex-B stream to RGB: the pictures, and its CPU seconds.
fn ffmpeg_decode(clip: &Clip, stream: &[u8]) -> Result<(Vec<Vec<u8>>, f64), String> {
    let (rgb, secs) = ffmpeg(
        &[
            "-threads", "1", "-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        Some(stream),
    )?;
    let size = (clip.width * clip.height * 3) as usize;
    Ok((rgb.chunks_exact(size).map(<[u8]>::to_vec).collect(), secs))
}

fn measure(exe: &Path, photo: &Path, frames: usize) -> Result<Value, String> {
    let vga = Clip::make(photo, 640, 480, frames)?;
    let hd = Clip::make(photo, 1280, 720, frames)?;

    // JPEG q80, framewire's own encoder and decoder.
    let jpeg = encode(&vga, CodecKind::Jpeg, EncodeOptions::default())?;
    let jpeg_psnr = psnr(&vga, &decode(&vga, CodecKind::Jpeg, &jpeg.payloads)?.0)?;

    // framewire's H.264: the lowest bitrate (kbit/s, bisected) at JPEG's PSNR or above.
    let h264_at = |kbit: u32| -> Result<(Encoded, f64), String> {
        let e = encode(&vga, CodecKind::H264, h264(kbit))?;
        let p = psnr(&vga, &decode(&vga, CodecKind::H264, &e.payloads)?.0)?;
        Ok((e, p))
    };
    let (mut lo, mut hi) = (100u32, 60_000u32);
    let mut best = h264_at(hi)?;
    if best.1 < jpeg_psnr {
        return Err(format!(
            "H.264 at {hi} kbit/s reaches {:.2} dB, below JPEG q80's {jpeg_psnr:.2}",
            best.1
        ));
    }
    let mut kbit = hi;
    while hi - lo > hi / 20 {
        let mid = lo + (hi - lo) / 2;
        let at = h264_at(mid)?;
        if at.1 >= jpeg_psnr {
            (hi, kbit, best) = (mid, mid, at);
        } else {
            lo = mid;
        }
    }
    let (h264_vga, h264_psnr) = best;

    // x264 veryfast zerolatency: the highest CRF (bisected) at JPEG's PSNR or above.
    let x264_at = |crf: u32| -> Result<(usize, f64), String> {
        let crf = crf.to_string();
        let (stream, _) = x264(
            &vga,
            &["-preset", "veryfast", "-tune", "zerolatency", "-crf", &crf],
        )?;
        let p = psnr(&vga, &ffmpeg_decode(&vga, &stream)?.0)?;
        Ok((stream.len(), p))
    };
    let (mut good, mut bad) = (0u32, 51u32);
    let mut x264_best = x264_at(good)?;
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        let at = x264_at(mid)?;
        if at.1 >= jpeg_psnr {
            (good, x264_best) = (mid, at);
        } else {
            bad = mid;
        }
    }
    let x264_bytes = x264_best.0 as f64 / frames as f64;

    // Speed on one core at each size, at the matched bitrate scaled by pixels.
    let mut speed = serde_json::Map::new();
    for (name, clip) in [("640x480", &vga), ("1280x720", &hd)] {
        let scale = f64::from(clip.width * clip.height) / f64::from(640 * 480);
        let k = (f64::from(kbit) * scale).round() as u32;
        let enc = encode(clip, CodecKind::H264, h264(k))?;
        let stream: Vec<u8> = enc.payloads.concat();
        let (_, dec_secs) = decode(clip, CodecKind::H264, &enc.payloads)?;
        let b = format!("{k}k");
        let (_, x264_secs) = x264(
            clip,
            &["-preset", "ultrafast", "-tune", "zerolatency", "-b:v", &b],
        )?;
        let (_, ffdec_secs) = ffmpeg_decode(clip, &stream)?;
        let n = frames as f64;
        speed.insert(
            name.into(),
            json!({
                "kbit": k,
                "encode_fps": n / enc.secs,
                "x264_ultrafast_fps": n / x264_secs,
                "decode_fps": n / dec_secs,
                "ffmpeg_decode_fps": n / ffdec_secs,
            }),
        );
    }
    drop(hd);

    let mut latency = serde_json::Map::new();
    for codec in ["jpeg", "h264"] {
        latency.insert(codec.into(), loopback_latency(exe, codec)?);
    }

    Ok(json!({
        "photo": photo.display().to_string(),
        "frames": frames,
        "jpeg_q80_psnr_db": jpeg_psnr,
        "jpeg_q80_bytes": jpeg.bytes_per_frame(),
        "h264_kbit": kbit,
        "h264_psnr_db": h264_psnr,
        "h264_bytes": h264_vga.bytes_per_frame(),
        "h264_bytes_share": h264_vga.bytes_per_frame() / jpeg.bytes_per_frame(),
        "x264_veryfast_crf": good,
        "x264_veryfast_psnr_db": x264_best.1,
        "x264_veryfast_bytes": x264_bytes,
        "x264_veryfast_bytes_share": x264_bytes / jpeg.bytes_per_frame(),
        "speed": speed,
        "latency": latency,
    }))
}

/// `framewire serve --codec CODEC --fps 30 --adapt off` and `view --frames 150` on loopback:
/// the viewer's capture-to-decoded latency, p50 and p99 in ms.
fn loopback_latency(exe: &Path, codec: &str) -> Result<Value, String> {
    let mut serve = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--codec", codec])
        .args(["--fps", "30", "--adapt", "off"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start framewire serve: {e}"))?;
    let mut lines = BufReader::new(serve.stdout.take().ok_or("serve's stdout")?);
    let mut first = String::new();
    let read = lines.read_line(&mut first);
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string);
    // Read on while it runs: a closed pipe would end serve at its next line.
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let view = match (read, addr) {
        (Ok(_), Some(addr)) => Command::new(exe)
            .args(["view", "--connect", &addr, "--headless", "--no-reconnect"])
            .args(["--frames", "150", "--stats", "json"])
            .env_remove("RUST_LOG")
            .output()
            .map_err(|e| format!("framewire view: {e}")),
        _ => Err(format!("serve's first line was {first:?}")),
    };
    let _ = serve.kill();
    let _ = serve.wait();
    let view = view?;
    let stdout = String::from_utf8_lossy(&view.stdout);
    let s: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .map_err(|e| format!("view --codec {codec}'s stats {stdout:?}: {e}"))?;
    Ok(json!({
        "p50_ms": s["latency_ms"]["p50"],
        "p99_ms": s["latency_ms"]["p99"],
        "frames": s["frames"],
    }))
}
