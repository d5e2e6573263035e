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
//!   --adapt off` and `view --frames 150`, for jpeg and h264;
//! - what a browser downloads each second, the page's WebSocket (H.264 at the matched bitrate)
//!   against `/stream` (JPEG q80), from one `serve --http` looping the 640x480 clip.

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
    let browser = browser_bytes(exe, &vga, kbit)?;

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
        "browser": browser,
    }))
}

/// What a browser downloads each second from `serve --http` showing the clip (looped): the
/// page's WebSocket (H.264 at `kbit`, the bitrate matched to JPEG q80's PSNR above) against
/// `/stream` (JPEG q80, the HTTP rendition), both read at once from the same serve for 5 s
/// after 2 s, every byte on the socket counted (headers and framing included).
fn browser_bytes(exe: &Path, clip: &Clip, kbit: u32) -> Result<Value, String> {
    let dir = std::env::temp_dir().join(format!("fw-browser-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let y4m = dir.join("clip.y4m");
    {
        let file = std::fs::File::create(&y4m).map_err(|e| format!("{}: {e}", y4m.display()))?;
        let mut w = framewire_file::y4m::Writer::new(
            std::io::BufWriter::new(file),
            clip.width,
            clip.height,
            30.0,
        )
        .map_err(|e| e.to_string())?;
        for f in &clip.frames {
            w.write_frame(f).map_err(|e| e.to_string())?;
        }
    }
    let mut serve = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--source")
        .arg(format!("file:{}", y4m.display()))
        .args(["--loop", "--codec", "h264", "--bitrate", &kbit.to_string()])
        .args(["--adapt", "off", "--quality", "80"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start framewire serve: {e}"))?;
    let mut lines = BufReader::new(serve.stdout.take().ok_or("serve's stdout")?);
    let mut http = None;
    for _ in 0..10 {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("http on http://") {
            http = Some(a.trim_end_matches('/').to_string());
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let measured = http
        .ok_or_else(|| "serve printed no http line".to_string())
        .and_then(|addr| {
            let ws = format!(
                "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: \
                 Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \
                 dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            );
            let mjpeg = format!("GET /stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            let readers: Vec<_> = [ws, mjpeg]
                .into_iter()
                .map(|request| {
                    let addr = addr.clone();
                    std::thread::spawn(move || count_bytes(&addr, &request))
                })
                .collect();
            let mut rates = Vec::new();
            for r in readers {
                rates.push(r.join().map_err(|_| "a reader panicked".to_string())??);
            }
            Ok(rates)
        });
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let rates = measured?;
    let (ws, mjpeg) = (rates[0], rates[1]);
    Ok(json!({
        "websocket_mbit_s": ws * 8.0 / 1e6,
        "mjpeg_mbit_s": mjpeg * 8.0 / 1e6,
        "websocket_share": ws / mjpeg,
    }))
}

/// Sends `request` to `addr` and counts what arrives: bytes per second over 5 s after 2 s.
fn count_bytes(addr: &str, request: &str) -> Result<f64, String> {
    use std::io::Read;
    let mut tcp = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    tcp.write_all(request.as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let (warm, window) = (2.0, 5.0);
    let mut counted = 0usize;
    loop {
        let n = tcp
            .read(&mut buf)
            .map_err(|e| format!("reading {addr}: {e}"))?;
        if n == 0 {
            return Err(format!("{addr} closed its stream"));
        }
        let t = start.elapsed().as_secs_f64();
        if t >= warm + window {
            return Ok(counted as f64 / window);
        }
        if t >= warm {
            counted += n;
        }
    }
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
