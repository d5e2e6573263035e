//! One framewire publisher into nginx-rtmp, with readers on the media server's side:
//! `media-server FRAMEWIRE [--quick]`, with FRAMEWIRE a `framewire` binary built with the
//! feature `h264`. nginx (with nginx-rtmp) runs from a temporary folder, RTMP in and HLS out.
//!
//! Figures, as one JSON object on stdout (or `{"skipped": REASON}` without nginx-rtmp or ffmpeg):
//! - `/rtmp/N` and `/hls/N` for N = 1, 10 and 50 readers (`ffmpeg -c copy -f null`, over RTMP,
//!   or over HLS from nginx's HTTP): framewire's CPU (`cpu_core`, a fraction of one core, user+system
//!   from `/proc/PID/stat`) and the bytes it sends the media server (`mbit_per_s`, `ss`'s
//!   `bytes_sent` of its connection) over a window after the readers settled. The fan-out is the media server's: both stay
//!   flat as readers grow.
//! - `/latency`: capture to an RTMP reader, p50 and p99 in ms. `serve --record` keeps each
//!   packet's capture time by its frame number; an `ffmpeg -fflags nobuffer` reader decodes
//!   the stream to RGB on a pipe, and this process reads the test pattern's number of each
//!   frame as it arrives: the latency of a frame is its arrival less its capture time (one
//!   clock, one machine), so it holds the publisher's send, nginx's relay and ffmpeg's decode.
//!   Beside it, `/latency/view`: a framewire viewer of the same server, same run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use framewire_core::{Frame, PixelFormat};
use serde_json::{Value, json};

const NGINX_RTMP: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const SIZE: (u32, u32) = (640, 480);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut exe, mut quick) = (None, false);
    for a in args.by_ref() {
        match a.as_str() {
            "--quick" => quick = true,
            _ if exe.is_none() => exe = Some(PathBuf::from(a)),
            other => {
                eprintln!(
                    "media-server: unexpected {other:?}; usage: media-server FRAMEWIRE [--quick]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(exe) = exe else {
        eprintln!("media-server: usage: media-server FRAMEWIRE [--quick]");
        return ExitCode::FAILURE;
    };
    let runs = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !runs("nginx", "-v") || !Path::new(NGINX_RTMP).exists() || !runs("ffmpeg", "-version") {
        let why = "needs nginx with nginx-rtmp and ffmpeg (Debian: apt-get install nginx \
                   libnginx-mod-rtmp ffmpeg)";
        println!("{}", json!({ "skipped": why }));
        return ExitCode::SUCCESS;
    }
    match measure(&exe, quick) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("media-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(19350)
}

fn wait_listening(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listened on {port}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn nginx(dir: &Path, rtmp: u16, http: u16) -> Result<Killed, String> {
    let d = dir.display();
    let conf = format!(
        "load_module {NGINX_RTMP};\ndaemon off;\nmaster_process off;\n\
         error_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{rtmp};\n\
           application live {{ live on; hls on; hls_path {d}/hls; hls_fragment 1s;\n\
             hls_playlist_length 6s; }} }} }}\n\
         http {{ access_log off;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{ listen 127.0.0.1:{http};\n\
             location /hls {{ root {d}; types {{ application/vnd.apple.mpegurl m3u8;\n\
               video/mp2t ts; }} }} }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("nginx: {e}"))?;
    let nginx = Killed(child);
    wait_listening(rtmp)?;
    wait_listening(http)?;
    Ok(nginx)
}

/// User+system CPU seconds of a process so far.
fn cpu_of(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The fields after the command name (which may hold spaces) in its parentheses.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .zip(fields.get(12))
        .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
        .ok_or("an unreadable /proc stat")?;
    // USER_HZ is 100 on Linux.
    Ok(ticks / 100.0)
}

/// The bytes process `pid` has sent on its connections to `port` (`ss`'s `bytes_sent`).
fn sent_to(pid: u32, port: u16) -> Result<u64, String> {
    let out = Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .map_err(|e| format!("ss: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let mut total = 0;
    while let Some(line) = lines.next() {
        let info = lines.next().unwrap_or_default();
        if !line.contains(&format!("pid={pid},")) {
            continue;
        }
        total += info
            .split_whitespace()
            .find_map(|f| f.strip_prefix("bytes_sent:"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn reader(input: &str) -> Result<Killed, String> {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", input])
        .args(["-map", "0:v", "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Killed)
        .map_err(|e| format!("ffmpeg: {e}"))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn measure(exe: &Path, quick: bool) -> Result<Value, String> {
    let dir = std::env::temp_dir().join(format!("framewire-media-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (rtmp, http) = (free_port(), free_port());
    let _nginx = nginx(&dir, rtmp, http)?;
    let url = format!("rtmp://127.0.0.1:{rtmp}/live/bench");
    let record = dir.join("sent.fwr");
    let mut serve = Command::new(exe)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--codec",
            "h264",
            "--fps",
            "30",
        ])
        .args(["--adapt", "off", "--publish", &url, "--record"])
        .arg(&record)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let pid = serve.id();
    let mut lines = BufReader::new(serve.stdout.take().ok_or("no stdout")?).lines();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = a.to_string();
        }
        if line.starts_with("publishing to ") {
            break;
        }
    }
    thread::spawn(move || for _ in lines {});
    let serve = Killed(serve);
    let window = Duration::from_secs(if quick { 2 } else { 5 });
    let settle = Duration::from_secs(if quick { 2 } else { 4 });
    let playlist = format!("http://127.0.0.1:{http}/hls/bench.m3u8");
    while !dir.join("hls/bench.m3u8").exists() {
        thread::sleep(Duration::from_millis(50));
    }
    let mut out = json!({ "rtmp": {}, "hls": {} });
    for (kind, input) in [("rtmp", url.as_str()), ("hls", playlist.as_str())] {
        let mut readers = Vec::new();
        for n in [1usize, 10, 50] {
            while readers.len() < n {
                readers.push(reader(input)?);
            }
            thread::sleep(settle);
            let (cpu0, bytes0) = (cpu_of(pid)?, sent_to(pid, rtmp)?);
            let t0 = Instant::now();
            thread::sleep(window);
            let (cpu1, bytes1) = (cpu_of(pid)?, sent_to(pid, rtmp)?);
            let sent = bytes1.saturating_sub(bytes0);
            let secs = t0.elapsed().as_secs_f64();
            let mut alive = 0;
            for r in &mut readers {
                if r.0.try_wait().ok().flatten().is_none() {
                    alive += 1;
                }
            }
            out[kind][n.to_string()] = json!({
                "cpu_core": (cpu1 - cpu0) / secs,
                "mbit_per_s": sent as f64 * 8.0 / secs / 1e6,
                "readers_alive": alive,
            });
            eprintln!(
                "media-server: {kind} {n} readers: {}",
                out[kind][n.to_string()]
            );
        }
    }
    // Latency: an RTMP reader decoding to RGB, beside a framewire viewer.
    let frames = if quick { 90 } else { 300 };
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-fflags",
            "nobuffer",
            "-flags",
            "low_delay",
        ])
        .args(["-i", &url, "-map", "0:v", "-frames:v", &frames.to_string()])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let view = Command::new(exe)
        .args(["view", "--connect", &addr, "--headless", "--stats", "json"])
        .args(["--frames", &frames.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("view: {e}"))?;
    let mut stdout = ffmpeg.stdout.take().ok_or("no stdout")?;
    let frame_len = (SIZE.0 * SIZE.1 * 3) as usize;
    let mut pixels = vec![0u8; frame_len];
    let mut arrivals = Vec::new();
    while stdout.read_exact(&mut pixels).is_ok() {
        let at = now_us();
        let mut frame = Frame::new(SIZE.0, SIZE.1, PixelFormat::Rgb8);
        frame.pixels.copy_from_slice(&pixels);
        if let Some(n) = framewire_pattern::read_frame_number(&frame) {
            arrivals.push((n, at));
        }
    }
    let _ = ffmpeg.wait();
    let view = view.wait_with_output().map_err(|e| e.to_string())?;
    // Ctrl-C, so that serve closes its recording whole.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let mut serve = serve;
    let _ = serve.0.wait();
    let captured = captures(&record)?;
    // The first second is ffmpeg's probing of the stream: left out.
    let mut ms: Vec<f64> = arrivals
        .iter()
        .skip(30)
        .filter_map(|(n, at)| Some((*at as f64 - *captured.get(n)? as f64) / 1000.0))
        .collect();
    ms.sort_by(f64::total_cmp);
    let stats: Value = String::from_utf8_lossy(&view.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    out["latency"] = json!({
        "p50_ms": percentile(&ms, 0.5),
        "p99_ms": percentile(&ms, 0.99),
        "frames": ms.len(),
        "view": {
            "p50_ms": stats["latency_ms"]["p50"],
            "p99_ms": stats["latency_ms"]["p99"],
        },
    });
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Each recorded packet's capture time, by its frame number.
fn captures(path: &Path) -> Result<HashMap<u64, u64>, String> {
    use framewire_file::recording::{Reader, Record};
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = Reader::new(std::io::BufReader::new(file)).map_err(|e| format!("{e:?}"))?;
    let mut payload = Vec::new();
    let mut map = HashMap::new();
    while let Ok(Some(record)) = reader.next_record(&mut payload) {
        if let Record::Packet(p) = record {
            map.insert(p.seq, p.capture_us);
        }
    }
    Ok(map)
}
