//! `serve --publish` into real media servers, each started here with its config in a temporary
//! folder and stopped by its PID, and read back by ffmpeg, an independent reader: Debian's
//! nginx with nginx-rtmp (RTMP in, RTMP and HLS out), `ffmpeg -rtsp_flags listen` (RTSP RECORD,
//! interleaved TCP) and rtsp-server-perl (RTSP RECORD over UDP, PLAY out). The test pattern's
//! frame numbers are read in what ffmpeg decodes. Servers that stall, answer garbage or send an
//! endless header get one line each and a dial again, and the server's own viewers are not
//! disturbed. A build with the feature `h264` (`cargo xtask test` runs this file in its
//! features' pass).
#![cfg(feature = "h264")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Serve, have_ffmpeg};
use framewire_core::{Frame, PixelFormat};

const SIZE: (u32, u32) = (640, 480);
const NGINX_RTMP: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const NGINX_STREAM: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Whether `what` is here (`ok`); if not, prints why (or fails when everything is required).
#[allow(clippy::print_stderr)] // the reason for a skip
fn have(ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("FRAMEWIRE_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("{why} (FRAMEWIRE_REQUIRE_ALL is set)");
    }
    eprintln!("skipped: {why}");
    false
}

fn runs(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A port free now on loopback (the servers started here cannot be asked for port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts on `port`.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A server process, stopped by its PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx with nginx-rtmp: RTMP on `rtmp`, its HLS in `dir/hls` served over HTTP on `http`.
fn nginx(dir: &Path, rtmp: u16, http: u16) -> Server {
    nginx_with(dir, rtmp, http, "")
}

/// [`nginx`] with more of its config (`more`: modules loaded first, then blocks).
fn nginx_with(dir: &Path, rtmp: u16, http: u16, more: &str) -> Server {
    let d = dir.display();
    let conf = format!(
        "load_module {NGINX_RTMP};\n{more}\n\
         daemon off;\nmaster_process off;\n\
         error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
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
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let server = Server(child);
    wait_listening(rtmp, "nginx-rtmp");
    wait_listening(http, "nginx's HTTP");
    server
}

fn have_nginx_rtmp() -> bool {
    have_ffmpeg()
        && have(
            runs("nginx", "-v") && Path::new(NGINX_RTMP).exists(),
            "nginx with nginx-rtmp is needed (Debian: apt-get install nginx libnginx-mod-rtmp)",
        )
}

/// `framewire serve --codec h264` at 30 fps publishing to `url`, once it says it publishes.
fn serve_publishing(url: &str, more: &[&str]) -> Serve {
    let serve = Serve::start(
        &[
            &["--codec", "h264", "--fps", "30", "--publish", url][..],
            more,
        ]
        .concat(),
    );
    let line = serve.line_containing("publishing to ");
    assert!(line.contains(" on 640x480@"), "{line}");
    serve
}

/// The test pattern's numbers in the first `n` frames ffmpeg decodes from `input` (its
/// arguments before the output's), checked to read and to rise.
fn numbers_read_back(input: &[&str], n: usize) -> Vec<u64> {
    numbers_read_back_at(input, n, SIZE)
}

/// [`numbers_read_back`] of a stream of this size.
fn numbers_read_back_at(input: &[&str], n: usize, size: (u32, u32)) -> Vec<u64> {
    let frames = n.to_string();
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(input)
        .args(["-map", "0:v", "-frames:v", &frames])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        all
    });
    let status = common::wait_timeout(&mut child, "ffmpeg to read the published stream");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let out = reader.join().unwrap();
    assert!(status.success(), "ffmpeg {input:?}: {err}");
    let frame_len = (size.0 * size.1 * 3) as usize;
    assert_eq!(
        out.len(),
        n * frame_len,
        "{n} frames of {size:?} from {input:?}: {err}"
    );
    let numbers: Vec<u64> = out
        .chunks(frame_len)
        .map(|pixels| {
            let mut frame = Frame::new(size.0, size.1, PixelFormat::Rgb8);
            frame.pixels.copy_from_slice(pixels);
            framewire_pattern::read_frame_number(&frame).expect("a test-pattern frame")
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
    numbers
}

#[test]
fn rtmp_into_nginx_reads_back_over_rtmp_and_hls_and_hides_the_stream_key() {
    if !have_nginx_rtmp() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rtmp, http) = (free_port(), free_port());
    let _nginx = nginx(dir.path(), rtmp, http);
    let url = format!("rtmp://127.0.0.1:{rtmp}/live/sk_live_0123");
    let serve = serve_publishing(&url, &[]);
    let over_rtmp = numbers_read_back(&["-i", &url], 60);
    // Every frame of a paced stream, in order: nothing dropped between framewire and nginx.
    assert_eq!(over_rtmp[59] - over_rtmp[0], 59, "{over_rtmp:?}");
    let playlist = format!("http://127.0.0.1:{http}/hls/sk_live_0123.m3u8");
    // The playlist appears once nginx cut the first fragment.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("hls/sk_live_0123.m3u8").exists() {
        assert!(Instant::now() < deadline, "nginx wrote no HLS playlist");
        thread::sleep(Duration::from_millis(50));
    }
    let over_hls = numbers_read_back(&["-i", &playlist], 60);
    assert_eq!(over_hls[59] - over_hls[0], 59, "{over_hls:?}");
    let (status, stderr) = serve.interrupt();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("sk_live_0123"), "{stderr}");
}

#[test]
fn a_server_that_comes_later_or_restarts_is_dialed_again_with_one_line_each_time() {
    if !have_nginx_rtmp() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rtmp, http) = (free_port(), free_port());
    let url = format!("rtmp://127.0.0.1:{rtmp}/live/later");
    let serve = Serve::start(&["--codec", "h264", "--fps", "30", "--publish", &url]);
    let line = serve.error_line("the failed dial");
    assert!(
        line.starts_with(&format!(
            "framewire: --publish rtmp://127.0.0.1:{rtmp}/live/****: cannot connect"
        )) && line.ends_with("dialing again in 1s"),
        "{line}"
    );
    let nginx_ = nginx(dir.path(), rtmp, http);
    serve.line_containing("publishing to ");
    numbers_read_back(&["-i", &url], 10);
    drop(nginx_);
    let line = serve.error_line("the lost connection");
    assert!(line.contains(" after "), "{line}");
    let _nginx = nginx(dir.path(), rtmp, http);
    serve.line_containing("publishing to ");
    numbers_read_back(&["-i", &url], 10);
}

#[test]
fn rtsp_record_into_ffmpeg_listening_reads_back_interleaved_over_tcp() {
    if !have_ffmpeg() {
        return;
    }
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let listen = url.clone();
    let reader = thread::spawn(move || {
        numbers_read_back(
            &["-rtsp_flags", "listen", "-timeout", "30", "-i", &listen],
            60,
        )
    });
    // ffmpeg takes the first connection as its publisher, so nothing probes it: framewire
    // dials again until it listens.
    let _serve = serve_publishing(&url, &[]);
    let numbers = reader.join().unwrap();
    assert_eq!(numbers[59] - numbers[0], 59, "{numbers:?}");
}

#[test]
fn rtsp_record_into_rtsp_server_perl_is_played_back_by_ffmpeg() {
    if !have_rtsp_server_perl() {
        return;
    }
    let (play, record) = (free_port(), free_port());
    let _server = rtsp_server_perl(play, record);
    let _serve = serve_publishing(&format!("rtsp://127.0.0.1:{record}/cam"), &[]);
    // A player joins mid-stream: it decodes from the next keyframe (every 2 s at 30 fps).
    let played = format!("rtsp://127.0.0.1:{play}/cam");
    numbers_read_back(&["-i", &played], 30);
}

/// How a hostile server treats each connection.
#[derive(Clone, Copy)]
enum Hostile {
    /// Reads what comes and never answers.
    Stalls,
    /// Answers with bytes of no protocol.
    Garbage,
    /// Answers an RTSP status line, then headers that never end.
    EndlessHeader,
}

/// A server on a free port treating every connection as `how`; its address.
fn hostile(how: Hostile) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = match how {
                    Hostile::Stalls => {
                        while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
                        Ok(())
                    }
                    Hostile::Garbage => conn.write_all(&[0x5a; 4096]),
                    Hostile::EndlessHeader => {
                        let _ = conn.write_all(b"RTSP/1.0 200 OK\r\n");
                        loop {
                            if conn.write_all(b"X-Filler: aaaaaaaaaaaaaaaa\r\n").is_err() {
                                break Ok(());
                            }
                        }
                    }
                };
            });
        }
    });
    port
}

#[test]
fn hostile_servers_get_one_line_each_and_a_dial_again_while_viewers_watch() {
    let garbage = hostile(Hostile::Garbage);
    let endless = hostile(Hostile::EndlessHeader);
    let stalls = hostile(Hostile::Stalls);
    let serve = Serve::start(&[
        "--codec",
        "h264",
        "--fps",
        "30",
        "--publish",
        &format!("rtmp://127.0.0.1:{garbage}/live/x"),
        "--publish",
        &format!("rtsp://127.0.0.1:{garbage}/x"),
        "--publish",
        &format!("rtsp://127.0.0.1:{endless}/x"),
        "--publish",
        &format!("rtmp://127.0.0.1:{stalls}/live/x"),
    ]);
    // A viewer watches throughout, every frame in order.
    let viewer = common::spawn_view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "450",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]);
    let want = [
        format!("rtmp://127.0.0.1:{garbage}/live/****: rtmp handshake:"),
        format!("rtsp://127.0.0.1:{garbage}/x: rtsp ANNOUNCE: not an RTSP response"),
        format!("rtsp://127.0.0.1:{endless}/x: rtsp ANNOUNCE: a response head longer than"),
        format!("rtmp://127.0.0.1:{stalls}/live/****: rtmp handshake: no answer within 10s"),
    ];
    // Each says so once a dial, and dials again: two lines each.
    let mut seen = vec![0; want.len()];
    while seen.iter().any(|&n| n < 2) {
        let line = serve.error_line("a line for each hostile server");
        let Some(i) = want.iter().position(|w| line.contains(w.as_str())) else {
            panic!("an unexpected line: {line}");
        };
        assert!(line.contains("; dialing again in "), "{line}");
        seen[i] += 1;
    }
    let out = common::finish_view(viewer);
    let s = common::stats(&out);
    assert_eq!(s["frames"], 450, "{s}");
    assert_eq!(s["pattern_errors"], 0, "{s}");
    assert_eq!(s["out_of_order"], 0, "{s}");
    let (status, _) = serve.interrupt();
    assert!(status.success());
}

#[test]
fn a_typo_in_a_publish_url_stops_serve_at_once_with_what_is_expected() {
    for (url, says) in [
        ("rtmp://host/onlyapp", "names an application and a stream"),
        ("srt://host:9000", "not a protocol framewire publishes over"),
        ("rtsp://user:hunter2@host:99999/x", "is not 1..=65535"),
    ] {
        let out = common::framewire()
            .args(["serve", "--codec", "h264", "--publish", url])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = common::stderr(&out);
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{url}: {err}");
    }
}

#[test]
fn a_jpeg_server_publishes_h264_encoded_for_the_push_while_its_viewers_keep_jpeg() {
    if !have_ffmpeg() {
        return;
    }
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/jpeg-ladder");
    let listen = url.clone();
    let reader = thread::spawn(move || {
        numbers_read_back(
            &["-rtsp_flags", "listen", "-timeout", "30", "-i", &listen],
            30,
        )
    });
    let serve = Serve::start(&["--codec", "jpeg", "--fps", "30", "--publish", &url]);
    let line = serve.line_containing("publishing to ");
    // The rendition made for it: H.264 at the top rung's size, at the default bitrate.
    assert!(line.ends_with(" on 640x480@2304k"), "{line}");
    let out = common::view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "30",
        "--stats",
        "json",
        "--verify-test-pattern",
    ]);
    let s = common::stats(&out);
    assert_eq!(s["codec"], "jpeg", "{s}");
    assert_eq!(s["pattern_errors"], 0, "{s}");
    reader.join().unwrap();
}

/// A minimal RTSP RECORD server on a free port that asks for a Basic login of `user:pass`; it
/// sends what it saw (each request's method, and the access units received) down the channel.
fn rtsp_with_login(login: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    rtsp_server(login, false)
}

/// [`rtsp_with_login`], which after RECORD floods the publisher with interleaved frames when
/// `flood` says so.
fn rtsp_server(login: &'static str, flood: bool) -> (u16, std::sync::mpsc::Receiver<String>) {
    use base64::Engine;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(login)
    );
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            // A request head, with its body when it has one; or interleaved RTP.
            while buf.first() == Some(&b'$') && buf.len() >= 4 {
                let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() < len {
                    break;
                }
                if buf[5] & 0x80 != 0 {
                    let _ = tx.send("access unit".to_string());
                }
                buf.drain(..len);
            }
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let body_len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() < end + 4 + body_len {
                    let Ok(n) = conn.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                buf.drain(..end + 4 + body_len);
                let method = head.split(' ').next().unwrap().to_string();
                let cseq = head
                    .lines()
                    .find_map(|l| l.strip_prefix("CSeq: "))
                    .unwrap()
                    .to_string();
                let authorized = head.lines().any(|l| l == format!("Authorization: {want}"));
                let _ = tx.send(format!("{method} authorized={authorized}"));
                let answer = if !authorized {
                    format!(
                        "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\
                         WWW-Authenticate: Digest realm=\"x\", nonce=\"1\"\r\n\
                         WWW-Authenticate: Basic realm=\"x\"\r\n\r\n"
                    )
                } else {
                    format!(
                        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1234;timeout=60\r\n\
                         Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
                    )
                };
                if conn.write_all(answer.as_bytes()).is_err() {
                    return;
                }
                if flood && method == "RECORD" {
                    let frame: Vec<u8> = [b'$', 1, 1, 0].into_iter().chain([7; 256]).collect();
                    while conn.write_all(&frame).is_ok() {}
                    return;
                }
                continue;
            }
            let Ok(n) = conn.read(&mut chunk) else { return };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    });
    (port, rx)
}

#[test]
fn an_rtsp_server_that_asks_for_a_login_gets_basic_from_the_url_which_is_never_printed() {
    // A password with `@` in it, %-encoded in the URL as RFC 3986 writes it.
    let (port, seen) = rtsp_with_login("cam:s3cr@t");
    let url = format!("rtsp://cam:s3cr%40t@127.0.0.1:{port}/x");
    let serve = Serve::start(&["--codec", "h264", "--fps", "30", "--publish", &url]);
    let line = serve.line_containing("publishing to ");
    assert!(
        line.starts_with(&format!("publishing to rtsp://cam:****@127.0.0.1:{port}/x")),
        "{line}"
    );
    let wait = |what: &str| {
        let got = seen.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(got, what);
    };
    wait("ANNOUNCE authorized=false");
    wait("ANNOUNCE authorized=true");
    wait("SETUP authorized=true");
    wait("RECORD authorized=true");
    for _ in 0..30 {
        wait("access unit");
    }
    let (status, stderr) = serve.interrupt();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("s3cr"), "{stderr}");
}

fn have_rtsp_server_perl() -> bool {
    have_ffmpeg()
        && have(
            runs("rtsp-server-perl", "--help"),
            "rtsp-server-perl is needed (Debian: apt-get install rtsp-server-perl)",
        )
}

/// rtsp-server-perl taking RECORD on `record` and PLAY on `play`.
fn rtsp_server_perl(play: u16, record: u16) -> Server {
    let child = Command::new("rtsp-server-perl")
        .args(["-c", &play.to_string(), "-s", &record.to_string()])
        .args(["--client_listen_address", "127.0.0.1"])
        .args(["--source_listen_address", "127.0.0.1"])
        .args(["--rtp_start_port", &free_port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rtsp-server-perl");
    let server = Server(child);
    wait_listening(record, "rtsp-server-perl");
    wait_listening(play, "rtsp-server-perl");
    server
}

/// ffmpeg publishing `clip` at its pace (30 fps) into rtsp-server-perl's `url`, as a camera would.
fn ffmpeg_publishing(clip: &Path, url: &str) -> Server {
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-re", "-framerate", "30", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "rtsp", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    Server(child)
}

#[test]
fn an_rtsp_camera_is_a_source_passed_through_and_dialed_again_when_it_drops() {
    if !have_rtsp_server_perl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pattern.h264");
    common::x264(&common::pattern_y4m(dir.path(), 600), "baseline", 30, &clip);
    let (play, record) = (free_port(), free_port());
    let server = rtsp_server_perl(play, record);
    let camera = ffmpeg_publishing(&clip, &format!("rtsp://127.0.0.1:{record}/cam"));
    let source = format!("rtsp://127.0.0.1:{play}/cam");
    // What the camera offers, as a user would look first.
    let deadline = Instant::now() + Duration::from_secs(20);
    let offered = loop {
        let out = common::framewire()
            .args(["devices", "--probe", &source])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "{}", common::stderr(&out));
        thread::sleep(Duration::from_millis(200));
    };
    assert!(
        offered.starts_with("stream 0: video h264/90000"),
        "{offered}"
    );
    // rtsp-server-perl describes a path from the publisher's ANNOUNCE, before its RECORD: the
    // camera is up once an independent player gets a frame of it.
    numbers_read_back_at(&["-i", &source], 1, (320, 240));
    let serve = Serve::start(&["--source", &source, "--codec", "h264"]);
    assert!(
        serve
            .line_containing("passing the source's")
            .contains("h264")
    );
    // Its frames, as a framewire viewer decodes them, in the camera's order with none lost.
    let y4m = dir.path().join("relayed.y4m");
    let out = common::view(&[
        "--connect",
        &serve.addr,
        "--headless",
        "--frames",
        "60",
        "--output",
        y4m.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let numbers = numbers_read_back_at(&["-i", y4m.to_str().unwrap()], 60, (320, 240));
    assert_eq!(numbers[59] - numbers[0], 59, "{numbers:?}");
    // The camera restarts (rtsp-server-perl keeps a path while it runs, so the server goes
    // with it): serve says so, keeps its viewer, and dials until the camera is back.
    let mut viewer = common::spawn_view(&["--connect", &serve.addr, "--headless"]);
    serve.line_containing("connected (1 viewer)");
    drop((camera, server));
    let lost = serve.line_containing("camera lost: ");
    assert!(lost.contains(&source), "{lost}");
    let _server = rtsp_server_perl(play, record);
    let _camera = ffmpeg_publishing(&clip, &format!("rtsp://127.0.0.1:{record}/cam"));
    let back = serve.line_containing("camera back: ");
    assert!(back.ends_with(&source), "{back}");
    assert!(viewer.try_wait().unwrap().is_none(), "the viewer stayed");
    let _ = viewer.kill();
    let _ = viewer.wait();
}

#[test]
fn rtmps_goes_through_tls_trusted_by_the_ca_given_into_nginx() {
    if !have_nginx_rtmp()
        || !have(
            Path::new(NGINX_STREAM).exists(),
            "nginx's stream module is needed for TLS in front of RTMP (Debian: apt-get install \
             libnginx-mod-stream)",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::ca_signed(dir.path(), "rtmps");
    let (rtmp, http, tls) = (free_port(), free_port(), free_port());
    // nginx's stream module ends TLS on `tls` and hands the bytes to its own RTMP port, as a
    // load balancer in front of a media server does.
    let stream = format!(
        "load_module {NGINX_STREAM};\n\
         stream {{ server {{ listen 127.0.0.1:{tls} ssl; ssl_certificate {}; \
           ssl_certificate_key {}; proxy_pass 127.0.0.1:{rtmp}; }} }}",
        cert.display(),
        key.display()
    );
    let _nginx = nginx_with(dir.path(), rtmp, http, &stream);
    wait_listening(tls, "nginx's TLS");
    let url = format!("rtmps://localhost:{tls}/live/over_tls");
    let serve = serve_publishing(&url, &["--publish-tls-ca", ca.to_str().unwrap()]);
    let numbers = numbers_read_back(
        &["-i", &format!("rtmp://127.0.0.1:{rtmp}/live/over_tls")],
        30,
    );
    assert_eq!(numbers[29] - numbers[0], 29, "{numbers:?}");
    drop(serve);
    // Another CA's certificate is refused, in one line, and dialed again.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = common::ca_signed(other.path(), "other");
    let serve = Serve::start(&[
        "--codec",
        "h264",
        "--publish",
        &url,
        "--publish-tls-ca",
        other_ca.to_str().unwrap(),
    ]);
    let line = serve.error_line("the refused certificate");
    assert!(
        line.starts_with(&format!(
            "framewire: --publish rtmps://localhost:{tls}/live/****: "
        )) && line.ends_with("dialing again in 1s"),
        "{line}"
    );
}

#[test]
fn a_server_that_floods_a_publisher_is_left_with_one_line() {
    let (port, seen) = rtsp_server("cam:pw", true);
    let url = format!("rtsp://cam:pw@127.0.0.1:{port}/x");
    let serve = Serve::start(&["--codec", "h264", "--fps", "30", "--publish", &url]);
    serve.line_containing("publishing to ");
    let line = serve.error_line("the flood's line");
    assert!(
        line.contains(
            "the server sent more than 1024 KiB within 10s to a publisher; dialing again"
        ),
        "{line}"
    );
    assert!(seen.try_iter().any(|s| s == "RECORD authorized=true"));
}
