//! The summary's rows, in their order, and the benches and runs that measure them.

use super::*;

pub(crate) const READS: &str = "memcpy of the same bytes, same reads";
pub(crate) const COPY_THEN_READ: &str = "the same copy, then one 8-byte read of the message";
pub(crate) const COPY_THEN_READ_NOTE: &str =
    "informative: a baseline that also reads what it copied, as any reader must";
pub(crate) const MEMCPY_FRAME: &str = "memcpy of the frame";
pub(crate) const IMENCODE: &str = "OpenCV imencode (libjpeg-turbo)";
pub(crate) const IMDECODE: &str = "OpenCV imdecode (libjpeg-turbo)";
pub(crate) const PURE_RUST_NOTE: &str =
    "no per-frame target for the pure-Rust encoder; see the pipeline rows";
pub(crate) const TCP: &str = "plain TCP send/recv loop, same message size";
pub(crate) const PLAIN_SAME_RUN: &str = "the same without TLS, same run";
pub(crate) const TCP_SAME_BYTES: Key = Key::CritSameBytes("loopback/tcp/");
pub(crate) const SINGLE: &str = "same, --threads 1";
pub(crate) const IMENCODE_ALONE: &str = "OpenCV single-thread imencode alone";
pub(crate) const RESIZE_ENCODE: &str = "OpenCV single-thread cv2.resize INTER_AREA + imencode";
pub(crate) const OPENCV_320_LOOP: Key =
    Key::OpenCvSum(&["jpeg_encode:80 320x240", "resize_area:320x240 640x480"]);
pub(crate) const PER_VIEWER: &str = "one encode per viewer";
pub(crate) const FRAMEWIRE_VIEWERS: &str = "framewire-protocol viewers";
pub(crate) const IMG: &str = "an <img> of /stream, same grabs";
pub(crate) const BROWSER_NOTE: &str = "Chromium under Xvfb (software compositing), 320x240 JPEG at 30 fps; \
     screen grabs 23/s, each grab's frame number against its capture time";
pub(crate) const CPU_NOTE: &str =
    "user+system time of the server's threads / viewers, at the largest count fed";
pub(crate) const RENDER_NOTE: &str = "software adapter where no GPU; no baseline";
pub(crate) const FRAME_TIME: &str = "one frame-time (bytes per frame received / link rate)";
pub(crate) const LINK_CARRIES: &str = "what the link carries of frames that size";
pub(crate) const SOURCE_FPS: &str = "the source's 30 fps";
pub(crate) const WARMUP: &str = "the viewer's 3 s warm-up";

/// A string made here, kept for the run (a row's case or id is read until the process ends).
fn text(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The sizes the framing bench reads, by id.
const FRAMING: [&str; 3] = ["jpeg-320x240", "jpeg-640x480", "raw-1280x720"];

/// The resize cases against OpenCV: (filter, from, to, target on the ratio).
const RESIZE: [(&str, &str, &str, f64); 6] = [
    ("area", "640x480", "320x240", 1.0),
    ("bilinear", "640x480", "320x240", 1.0),
    ("area", "1280x720", "320x180", 1.0),
    ("bilinear", "1280x720", "320x180", 1.0),
    ("area", "1920x1080", "320x180", 0.5),
    ("bilinear", "1920x1080", "320x180", 1.0),
];

/// The sizes the codecs bench encodes and decodes.
const CODEC_SIZES: [&str; 3] = ["320x240", "640x480", "1920x1080"];

/// The loopback cases, in the order of their ids: (codec, size, target against plain TCP).
const LOOPBACK: [(&str, &str, Option<f64>); 5] = [
    ("raw", "640x480", None),
    ("raw", "1280x720", Some(0.8)),
    ("bincode", "1280x720", None),
    ("jpeg", "640x480", None),
    ("jpeg", "1280x720", None),
];

/// The narrow links measured with adaptation off, then on: (share of the top rung's stream in
/// percent, added round trip in ms).
const LINKS_ADAPT_OFF: [(u32, u32); 4] = [(60, 0), (30, 0), (60, 40), (30, 40)];
const LINKS_ADAPT_ON: [u32; 2] = [60, 30];

/// The renderer's cases, in the order of its ids.
const RENDER: [(&str, &str); 4] = [
    ("1920x1080", "rgb8"),
    ("1920x1080", "rgba8"),
    ("640x480", "rgb8"),
    ("640x480", "rgba8"),
];

/// Every row of the summary, in its order: made from the tables above once per run.
pub(crate) fn table() -> &'static [RowSpec] {
    static ROWS: std::sync::OnceLock<Vec<RowSpec>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let mut rows = framing_rows();
        rows.extend(resize_rows());
        rows.extend(codec_rows());
        rows.extend(loopback_rows());
        rows.extend(pipeline_rows());
        rows.extend(viewers_rows("320x240"));
        rows.extend(http_rows());
        rows.extend(websocket_rows());
        rows.extend(browser_rows());
        rows.extend(browser_link_rows());
        rows.extend(python_rows());
        rows.extend(h264_rows());
        rows.extend(media_server_rows());
        rows.extend(viewers_rows("640x480"));
        rows.extend(link_rows());
        rows.extend(lossy_rows());
        rows.extend(RENDER.iter().map(|(size, format)| {
            row(
                text(format!("render {size}/{format} (upload+draw+read back)")),
                crit(text(format!("render/{size}/{format}"))),
                Unit::Fps,
            )
            .optional(MayLack::WithoutGpu)
            .note(RENDER_NOTE)
        }));
        rows
    })
}

fn framing_rows() -> Vec<RowSpec> {
    let mut rows = vec![
        row(
            "framing header encode",
            crit("framing/header_encode"),
            Unit::Ns,
        ),
        row(
            "framing header decode",
            crit("framing/header_decode"),
            Unit::Ns,
        ),
    ];
    for m in FRAMING {
        let reader = crit(text(format!("framing/reader/{m}")));
        rows.push(
            row(
                text(format!("framing reader {m}, 64 KiB reads")),
                reader,
                Unit::Us,
            )
            .vs(READS, crit(text(format!("framing/memcpy/{m}"))))
            .at_most(1.05),
        );
        rows.push(
            row(
                text(format!("framing reader {m}, vs copy + one header read")),
                reader,
                Unit::Us,
            )
            .vs(
                COPY_THEN_READ,
                crit(text(format!("framing/memcpy-then-read/{m}"))),
            )
            .note(COPY_THEN_READ_NOTE),
        );
    }
    rows
}

fn resize_rows() -> Vec<RowSpec> {
    RESIZE
        .iter()
        .map(|&(filter, from, to, target)| {
            let (opencv, op) = match filter {
                "area" => ("OpenCV INTER_AREA", "resize_area"),
                _ => ("OpenCV INTER_LINEAR", "resize_linear"),
            };
            row(
                text(format!("resize {filter} {from}->{to}")),
                crit(text(format!("resize/{filter}/{from}-{to}"))),
                Unit::Ms,
            )
            .vs_optional(
                opencv,
                cv(text(format!("{op}:{to} {from}"))),
                MayLack::WithoutOpenCv,
            )
            .at_most(target)
        })
        .collect()
}

fn codec_rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for size in CODEC_SIZES {
        let memcpy = crit(text(format!("codec/memcpy/{size}")));
        for codec in ["raw", "bincode"] {
            for op in ["encode", "decode"] {
                rows.push(
                    row(
                        text(format!("{codec} {op} {size}")),
                        crit(text(format!("codec/{op}/{codec}/{size}"))),
                        Unit::Ms,
                    )
                    .vs(MEMCPY_FRAME, memcpy),
                );
            }
        }
        let imencode = cv(text(format!("jpeg_encode:80 {size}")));
        rows.push(
            row(
                text(format!("jpeg encode {size} (framewire, pure Rust)")),
                crit(text(format!("codec/encode/jpeg/{size}"))),
                Unit::Ms,
            )
            .vs_optional(IMENCODE, imencode, MayLack::WithoutOpenCv)
            .note(PURE_RUST_NOTE),
        );
        rows.push(
            row(
                text(format!(
                    "jpeg encode {size} (libjpeg-turbo, --features turbojpeg)"
                )),
                crit(text(format!("codec/encode/jpeg-turbo/{size}"))),
                Unit::Ms,
            )
            .optional(MayLack::WithoutTurbo)
            .vs_optional(IMENCODE, imencode, MayLack::WithoutOpenCv)
            .at_most(1.1),
        );
        rows.push(
            row(
                text(format!("jpeg decode {size} (framewire, pure Rust)")),
                crit(text(format!("codec/decode/jpeg/{size}"))),
                Unit::Ms,
            )
            .vs_optional(
                IMDECODE,
                cv(text(format!("jpeg_decode:80 {size}"))),
                MayLack::WithoutOpenCv,
            )
            .at_most(1.3),
        );
    }
    rows
}

fn loopback_rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for (codec, size, target) in LOOPBACK {
        let id = crit(text(format!("loopback/framewire/{codec}/{size}")));
        let mut r = row(
            text(format!("loopback {codec} {size} end to end")),
            id,
            Unit::MBps,
        )
        .vs(TCP, TCP_SAME_BYTES);
        if let Some(t) = target {
            r = r.at_least(t);
        }
        rows.push(r.note_of(Note::FramesPerSecond));
        // TLS's cost where it is largest: raw video, nothing else to do per byte.
        if (codec, size) == ("raw", "1280x720") {
            rows.push(
                row(
                    text(format!("loopback {codec} {size} end to end over TLS")),
                    crit(text(format!("loopback/framewire-tls/{codec}/{size}"))),
                    Unit::MBps,
                )
                .vs(PLAIN_SAME_RUN, id)
                .at_least(0.7)
                .note("rustls (ring, AES-GCM) both ends; one core each for sealing and opening"),
            );
        }
    }
    rows
}

/// The serve pipeline through the real binary: threads against one, against OpenCV, TLS, files.
fn pipeline_rows() -> Vec<RowSpec> {
    vec![
        // The serve pipeline through the real binary, pure-Rust encoder.
        row(
            "serve pipeline jpeg 640x480->320, threaded",
            pipe("jpeg 640x480->320", "threads"),
            Unit::Fps,
        )
        .vs(SINGLE, pipe("jpeg 640x480->320", "single"))
        .at_least(1.6)
        .note("framewire serve --fps 0 --jpeg-encoder rust -> a receive-only viewer, one machine"),
        row(
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV",
            pipe("jpeg 640x480->320", "threads"),
            Unit::Fps,
        )
        .vs_optional(
            IMENCODE_ALONE,
            cv("jpeg_encode:80 320x240"),
            MayLack::WithoutOpenCv,
        )
        .at_least(1.0)
        .note("pure Rust; ours also captures, resizes and sends, on the same 2 cores"),
        // Where ours resizes, the loop a Python user writes does too: the same work in OpenCV, from
        // the same run's figures. Informative, no target.
        row(
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV resize + encode",
            pipe("jpeg 640x480->320", "threads"),
            Unit::Fps,
        )
        .vs_optional(RESIZE_ENCODE, OPENCV_320_LOOP, MayLack::WithoutOpenCv)
        .note("pure Rust; the Python tutorial's per-frame work, without its capture or send"),
        row(
            "serve pipeline jpeg 640x480->320 over TLS, threaded",
            pipe("jpeg 640x480->320 over TLS", "threads"),
            Unit::Fps,
        )
        .vs(PLAIN_SAME_RUN, pipe("jpeg 640x480->320", "threads"))
        .at_least(0.95)
        .note("framewire serve --tls --fps 0 --jpeg-encoder rust -> a receive-only viewer pinning it"),
        row(
            "serve pipeline jpeg 640x480, threaded",
            pipe("jpeg 640x480", "threads"),
            Unit::Fps,
        )
        .vs(SINGLE, pipe("jpeg 640x480", "single"))
        .at_least(1.6)
        .note("framewire serve --fps 0 --jpeg-encoder rust -> a receive-only viewer, one machine"),
        row(
            "serve pipeline jpeg 640x480, threaded vs OpenCV",
            pipe("jpeg 640x480", "threads"),
            Unit::Fps,
        )
        .vs_optional(
            IMENCODE_ALONE,
            cv("jpeg_encode:80 640x480"),
            MayLack::WithoutOpenCv,
        )
        .at_least(1.0)
        .note("pure Rust; ours also captures, resizes and sends, on the same 2 cores"),
        // The serve pipeline with libjpeg-turbo: informative, no targets.
        row(
            "serve pipeline jpeg-turbo 640x480->320, threaded",
            pipe("jpeg-turbo 640x480->320", "threads"),
            Unit::Fps,
        )
        .optional(MayLack::WithoutTurbo)
        .vs(SINGLE, pipe("jpeg-turbo 640x480->320", "single"))
        .note("framewire serve --fps 0 --jpeg-encoder turbojpeg -> a receive-only viewer, one machine"),
        row(
            "serve pipeline jpeg-turbo 640x480->320, threaded vs OpenCV",
            pipe("jpeg-turbo 640x480->320", "threads"),
            Unit::Fps,
        )
        .optional(MayLack::WithoutTurbo)
        .vs_optional(
            IMENCODE_ALONE,
            cv("jpeg_encode:80 320x240"),
            MayLack::WithoutOpenCv,
        )
        .note("libjpeg-turbo; ours also captures, resizes and sends, on the same 2 cores"),
        row(
            "serve pipeline jpeg-turbo 640x480->320, threaded vs OpenCV resize + encode",
            pipe("jpeg-turbo 640x480->320", "threads"),
            Unit::Fps,
        )
        .optional(MayLack::WithoutTurbo)
        .vs_optional(RESIZE_ENCODE, OPENCV_320_LOOP, MayLack::WithoutOpenCv)
        .note("libjpeg-turbo; the Python tutorial's per-frame work, without its capture or send"),
        // Reading a file is never the bottleneck (issue 22).
        row(
            "serve pipeline raw 1280x720 from a Y4M file, threaded",
            pipe("raw 1280x720 y4m file", "threads"),
            Unit::Fps,
        )
        .vs(
            "the test pattern, same run",
            pipe("raw 1280x720 test pattern", "threads"),
        )
        .at_least(0.9)
        .note("framewire serve --source file:clip.y4m --loop --fps 0 --codec raw -> a receive-only viewer"),
    ]
}

/// Viewers fed at 30 fps from one encode, against one encode per viewer, and the server's CPU.
fn viewers_rows(size: &str) -> Vec<RowSpec> {
    let size = text(size.to_string());
    vec![
        row(
            text(format!(
                "viewers fed, jpeg {size} 30 fps, all >= 29 fps, encode once"
            )),
            viewers(size, "once", "max_viewers"),
            Unit::Viewers,
        )
        .vs(PER_VIEWER, viewers(size, "per-viewer", "max_viewers"))
        .note_of(Note::ServerCpu),
        row(
            text(format!(
                "server CPU per viewer, jpeg {size} 30 fps, encode once"
            )),
            viewers(size, "once", "server_cpu_per_viewer"),
            Unit::PctCore,
        )
        .optional(MayLack::WhenNull)
        .vs_optional(
            PER_VIEWER,
            viewers(size, "per-viewer", "server_cpu_per_viewer"),
            MayLack::WhenNull,
        )
        .note(CPU_NOTE),
    ]
}

/// HTTP clients of `serve --http` (MJPEG from /stream), beside the framewire-protocol figures.
fn http_rows() -> Vec<RowSpec> {
    vec![
        row(
            "HTTP clients fed, jpeg 320x240 30 fps, all >= 29 fps, encode once",
            viewers("320x240", "http", "max_viewers"),
            Unit::Viewers,
        )
        .vs(FRAMEWIRE_VIEWERS, viewers("320x240", "once", "max_viewers"))
        .note_of(Note::ServerCpu),
        row(
            "server CPU per HTTP client, jpeg 320x240 30 fps, encode once",
            viewers("320x240", "http", "server_cpu_per_viewer"),
            Unit::PctCore,
        )
        .optional(MayLack::WhenNull)
        .vs_optional(
            FRAMEWIRE_VIEWERS,
            viewers("320x240", "once", "server_cpu_per_viewer"),
            MayLack::WhenNull,
        )
        .note(CPU_NOTE),
    ]
}

/// WebSocket clients of `/ws` (H.264, one encode), beside HTTP's MJPEG clients.
fn websocket_rows() -> Vec<RowSpec> {
    const HTTP: &str = "HTTP clients of /stream (jpeg 320x240)";
    vec![
        row(
            "WebSocket clients fed, h264 320x240 30 fps, all >= 29 fps, encode once",
            viewers("320x240", "websocket", "max_viewers"),
            Unit::Viewers,
        )
        .optional(MayLack::WhenNull)
        .vs(HTTP, viewers("320x240", "http", "max_viewers"))
        .note_of(Note::ServerCpu),
        row(
            "server CPU per WebSocket client, h264 320x240 30 fps, encode once",
            viewers("320x240", "websocket", "server_cpu_per_viewer"),
            Unit::PctCore,
        )
        .optional(MayLack::WhenNull)
        .vs_optional(
            HTTP,
            viewers("320x240", "http", "server_cpu_per_viewer"),
            MayLack::WhenNull,
        )
        .note(CPU_NOTE),
    ]
}

/// framewire for Python against imagezmq on the same numpy frames (python/bench).
fn python_rows() -> Vec<RowSpec> {
    const NOTE: &str = "sender and receiver in two Python processes over loopback, the same \
         numpy frames; framewire.Sender to framewire.Hub, imagezmq's ImageSender to ImageHub \
         (REQ/REP); python/bench/against_imagezmq.py";
    let mut rows = Vec::new();
    for size in ["640x480", "1280x720"] {
        let at = |field: &str| python(text(format!("/{size}/{field}")));
        rows.push(
            row(
                text(format!("Python raw arrays as fast as possible, {size}")),
                at("framewire_raw_fps"),
                Unit::Fps,
            )
            .optional(MayLack::WithoutPython)
            .vs(
                "imagezmq send_image (zero-copy over ZeroMQ)",
                at("imagezmq_raw_fps"),
            )
            .at_least(1.5)
            .note(NOTE),
        );
        rows.push(
            row(
                text(format!(
                    "Python raw arrays: a plain socket moving the same bytes, {size}"
                )),
                at("socket_fps"),
                Unit::Fps,
            )
            .optional(MayLack::WithoutPython)
            .note(
                "one sendall per frame, recv_into until whole, in two Python processes: what \
                 loopback TCP carries here for a program that only moves bytes, for scale",
            ),
        );
        rows.push(
            row(
                text(format!("Python JPEG q80 as fast as possible, {size}")),
                at("framewire_jpeg_fps"),
                Unit::Fps,
            )
            .optional(MayLack::WithoutPython)
            .vs(
                "imagezmq send_jpg with simplejpeg (libjpeg-turbo) at q80",
                at("imagezmq_jpeg_fps"),
            )
            .at_least(1.0)
            .note(NOTE),
        );
        rows.push(
            row(
                text(format!(
                    "Python raw at 30 fps, capture to received p99, {size}"
                )),
                at("framewire_p99_ms"),
                Unit::Ms,
            )
            .optional(MayLack::WithoutPython)
            .vs("imagezmq, the same frames at 30 fps", at("imagezmq_p99_ms"))
            .at_most(1.0)
            .note(NOTE),
        );
    }
    rows.push(
        row(
            "Python hub restarted mid-stream (raw 640x480 at 30 fps): the new hub's first frame",
            python("/restart/framewire_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutPython)
        .vs_optional(
            "imagezmq (REQ/REP), the same restart",
            python("/restart/imagezmq_ms"),
            MayLack::WhenNull,
        )
        .note(NOTE),
    );
    rows
}

/// The page through WebCodecs behind a narrow netbed link (bench-harness's browser-link).
fn browser_link_rows() -> Vec<RowSpec> {
    const NOTE: &str = "serve --codec h264 --size 640x480 --fps 30 --http in one namespace, \
         Chromium in the other under Xvfb, the link toward it 60% of 640x480 JPEG q80's 30 fps \
         demand; screen grabs as for the loopback rows; bench-harness browser-link";
    vec![
        row(
            "the page through WebCodecs behind a link carrying 60% of JPEG's demand, 640x480",
            browser_link("/fps"),
            Unit::Fps,
        )
        .optional(MayLack::WithoutBrowserLink)
        .note(text(format!("target: 29 fps or more at full size; {NOTE}"))),
        row(
            "the same, capture to display p50 (screen grabs)",
            browser_link("/p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowserLink)
        .vs(
            "the goal: 2 frame-times plus the page's decode",
            browser_link("/bound_ms"),
        )
        .note(text(format!(
            "the grabs hold Xvfb's software compositor and half a frame on screen, as on \
             loopback (the WebCodecs row above); {NOTE}"
        ))),
        row(
            "the same, capture to the page's draw call p50 (the page's own figure)",
            browser_link("/own_p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowserLink)
        .vs(
            "the goal: 2 frame-times plus the page's decode",
            browser_link("/bound_ms"),
        )
        .at_most(1.0)
        .note(NOTE),
    ]
}

/// A browser watching `serve --http` on loopback (bench-harness's browser-latency).
fn browser_rows() -> Vec<RowSpec> {
    vec![
        row(
            "browser capture-to-display latency, loopback, the page through WebCodecs (H.264 over /ws)",
            browser("webcodecs_p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowser)
        .vs_optional(
            "the page showing MJPEG (/?mjpeg)",
            browser("page_p50_ms"),
            MayLack::WithoutBrowser,
        )
        .note(
            "Chromium under Xvfb (software compositing and decoding), serve --codec jpeg: the \
             page gets H.264 320x240 made for it; screen grabs as below",
        ),
        row(
            "browser capture-to-display latency, loopback, the page at /?mjpeg (fetch + canvas)",
            browser("page_p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowser)
        .vs_optional(IMG, browser("img_p50_ms"), MayLack::WithoutBrowser)
        .note(BROWSER_NOTE),
        row(
            "browser capture-to-display latency, loopback, <img> of /stream, early next-part headers",
            browser("img_p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowser)
        .vs_optional(
            "the same without them (?advance_headers=0)",
            browser("img_late_p50_ms"),
            MayLack::WithoutBrowser,
        )
        .note(BROWSER_NOTE),
        row(
            "browser capture-to-draw latency, loopback, as the page at / measures it",
            browser("page_own_p50_ms"),
            Unit::Ms,
        )
        .optional(MayLack::WithoutBrowser)
        .note("the page's own figure: capture to its canvas draw call, before the compositor"),
    ]
}

/// One `serve --publish` into nginx-rtmp with readers on the media server's side
/// (bench-harness media-server): framewire's CPU and bytes as readers grow, against one reader,
/// and the latency to an RTMP reader against a framewire viewer of the same server.
fn media_server_rows() -> Vec<RowSpec> {
    const NOTE: &str = "serve --codec h264 --fps 30 --publish rtmp://nginx-rtmp; readers: \
                        ffmpeg -c copy -f null; bench-harness media-server";
    let mut rows = Vec::new();
    for kind in ["rtmp", "hls"] {
        let name = if kind == "rtmp" { "RTMP" } else { "HLS" };
        for n in ["10", "50"] {
            rows.push(
                row(
                    text(format!(
                        "serve --publish into nginx-rtmp, {n} {name} readers: framewire CPU"
                    )),
                    media_server(text(format!("/{kind}/{n}/cpu_core"))),
                    Unit::PctCore,
                )
                .optional(MayLack::WithoutMediaServer)
                .vs(
                    "1 reader, same run",
                    media_server(text(format!("/{kind}/1/cpu_core"))),
                )
                .note(NOTE),
            );
            rows.push(
                row(
                    text(format!(
                        "serve --publish into nginx-rtmp, {n} {name} readers: bytes framewire writes"
                    )),
                    media_server(text(format!("/{kind}/{n}/mbit_per_s"))),
                    Unit::Mbits,
                )
                .optional(MayLack::WithoutMediaServer)
                .vs("1 reader, same run", media_server(text(format!("/{kind}/1/mbit_per_s"))))
                .note(NOTE),
            );
        }
    }
    for q in ["p50", "p99"] {
        rows.push(
            row(
                text(format!("capture to an RTMP reader through nginx-rtmp, {q}")),
                media_server(text(format!("/latency/{q}_ms"))),
                Unit::Ms,
            )
            .optional(MayLack::WithoutMediaServer)
            .vs(
                "a framewire viewer of the same serve, same run",
                media_server(text(format!("/latency/view/{q}_ms"))),
            )
            .note(
                "arrival of each frame ffmpeg -fflags nobuffer decodes (its test-pattern number) \
                 less its capture time from serve --record; the first second left out",
            ),
        );
    }
    rows
}

/// The note of every H.264 row.
const H264_NOTE: &str = "camera-like 640x480: a photograph (plasma-workspace-wallpapers' Path) \
     zoomed and panned by ffmpeg with temporal noise; PSNR over RGB; bench-harness h264-vs-x264";

/// framewire's H.264 against JPEG q80 and ffmpeg's libx264 on the same frames (h264-vs-x264).
fn h264_rows() -> Vec<RowSpec> {
    let jpeg = "JPEG q80 (framewire's encoder), same PSNR within 0.5 dB";
    let mut rows = vec![
        row(
            "H.264 bytes per frame at JPEG q80's PSNR",
            h264("/h264_bytes"),
            Unit::Bytes,
        )
        .optional(MayLack::WithoutH264)
        .vs(jpeg, h264("/jpeg_q80_bytes"))
        .at_most(1.0 / 3.0)
        .note(H264_NOTE),
        row(
            "a browser's download, the page's WebSocket, H.264 640x480 at JPEG q80's PSNR",
            h264("/browser/websocket_mbit_s"),
            Unit::Mbits,
        )
        .optional(MayLack::WithoutH264)
        .vs(
            "the same serve's /stream, JPEG q80 (what the page showed before)",
            h264("/browser/mjpeg_mbit_s"),
        )
        .note(
            "camera-like clip looped by serve --http --codec h264 --bitrate (matched); every \
             byte on each socket, 5 s",
        ),
        row(
            "x264 --preset veryfast --tune zerolatency bytes per frame at JPEG q80's PSNR",
            h264("/x264_veryfast_bytes"),
            Unit::Bytes,
        )
        .optional(MayLack::WithoutH264)
        .vs(jpeg, h264("/jpeg_q80_bytes"))
        .note("informative: the goal for framewire's H.264 is this share"),
    ];
    for (size, fps) in [("1280x720", "60"), ("640x480", "150")] {
        let at = |field: &str| h264(text(format!("/speed/{size}/{field}")));
        rows.push(
            row(
                text(format!("H.264 encode {size}, one core")),
                at("encode_fps"),
                Unit::Fps,
            )
            .optional(MayLack::WithoutH264)
            .vs(
                "ffmpeg -threads 1 libx264 --preset ultrafast --tune zerolatency, same frames",
                at("x264_ultrafast_fps"),
            )
            .note(text(format!(
                "target: {fps} fps or more; at the matched bitrate"
            ))),
        );
        rows.push(
            row(
                text(format!("H.264 decode {size}, one core, to RGB")),
                at("decode_fps"),
                Unit::Fps,
            )
            .optional(MayLack::WithoutH264)
            .vs(
                "ffmpeg -threads 1, the same stream, to RGB",
                at("ffmpeg_decode_fps"),
            ),
        );
    }
    for q in ["p50", "p99"] {
        rows.push(
            row(
                text(format!(
                    "capture-to-decoded latency, loopback, 30 fps, H.264, {q}"
                )),
                h264(text(format!("/latency/h264/{q}_ms"))),
                Unit::Ms,
            )
            .optional(MayLack::WithoutH264)
            .vs(
                "JPEG, same run",
                h264(text(format!("/latency/jpeg/{q}_ms"))),
            )
            .note("serve --fps 30 --adapt off, view --frames 150, the test pattern 640x480"),
        );
    }
    // Through a narrow link that carries 60% of what JPEG q80 needs (the frame-time is the
    // source's 33.3 ms, or a frame's time on the link where that is more).
    for adapt in [false, true] {
        let how = if adapt { "on" } else { "off" };
        let case = |what: &str| {
            text(format!(
                "H.264 through a narrow link 60% of JPEG q80's stream, adaptation {how}: {what}"
            ))
        };
        rows.push(
            row(
                case("fps"),
                h264_link(adapt, 60, LinkFigure::Fps),
                Unit::Fps,
            )
            .optional(MayLack::WithoutH264)
            .vs(SOURCE_FPS, h264_link(adapt, 60, LinkFigure::Source))
            .at_least(29.0 / 30.0)
            .note_of(Note::Rung),
        );
        rows.push(
            row(
                case("p50 latency"),
                h264_link(adapt, 60, LinkFigure::P50),
                Unit::Ms,
            )
            .optional(MayLack::WithoutH264)
            .vs(
                "one frame-time at 30 fps",
                h264_link(adapt, 60, LinkFigure::FrameTime),
            )
            .at_most(2.0)
            .note_of(Note::Rung),
        );
    }
    for rtt in [0, 100] {
        let case = |what: &str| {
            text(format!(
                "lossy link {rtt} ms RTT + 1% loss, udp, H.264 without parity: {what}"
            ))
        };
        rows.push(
            row(
                case("from a lost frame to a picture"),
                h264_lossy(rtt, LinkFigure::Recovery),
                Unit::Ms,
            )
            .optional(MayLack::WithoutH264)
            .note(text(format!(
                "target: within {} ms (200 ms + one RTT); no wrong picture (the case fails on one)",
                200 + rtt
            ))),
        );
        rows.push(
            row(
                case("fps of the source's 30"),
                h264_lossy(rtt, LinkFigure::Fps),
                Unit::Fps,
            )
            .optional(MayLack::WithoutH264)
            .vs(SOURCE_FPS, h264_lossy(rtt, LinkFigure::Source))
            .note("informative: every lost frame waits for a keyframe"),
        );
    }
    rows
}

/// serve -> view through a narrow link (netbed), one 640x480 JPEG stream at 30 fps; the link
/// carries `share`% of its top rung (640x480@80), adaptation off then on.
fn link_rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for (share, rtt) in LINKS_ADAPT_OFF {
        let (link, less) = match rtt {
            0 => (format!("narrow link {share}%"), ""),
            _ => (format!("narrow link {share}% + {rtt} ms RTT"), " - RTT"),
        };
        rows.push(link_p50(
            text(format!("{link}, adaptation off: p50 latency{less}")),
            false,
            share,
            rtt,
        ));
        rows.push(link_p99(
            text(format!("{link}, adaptation off: p99 latency{less}")),
            false,
            share,
            rtt,
        ));
        rows.push(link_fps_of_capacity(
            text(format!(
                "{link}, adaptation off: fps of what the link carries"
            )),
            share,
            rtt,
        ));
    }
    for share in LINKS_ADAPT_ON {
        let link = format!("narrow link {share}%, adaptation on");
        rows.push(link_settled(
            text(format!("{link}: last move along the ladder")),
            share,
            0,
        ));
        rows.push(link_p50(
            text(format!("{link}, after 3 s: p50 latency")),
            true,
            share,
            0,
        ));
        rows.push(link_p99(
            text(format!("{link}, after 3 s: p99 latency")),
            true,
            share,
            0,
        ));
        rows.push(link_fps_of_source(
            text(format!(
                "{link}, after 3 s: fps of the source's 30 (>= 25 fps)"
            )),
            share,
            0,
        ));
    }
    rows
}

/// serve -> view over UDP and over TCP through the same lossy, distant link (netbed: 100 ms
/// round trip, 1% random loss each way, no rate limit), 640x480 JPEG at 30 fps, adaptation
/// off: a lost packet holds TCP's later frames back a round trip; UDP rebuilds it from parity
/// or loses that frame alone.
fn lossy_rows() -> Vec<RowSpec> {
    vec![
        row(
            "lossy link 100 ms RTT + 1% loss, udp: p99 latency",
            lossy(true, LinkFigure::P99Total),
            Unit::Ms,
        )
        .optional(MayLack::WithoutRoot)
        .vs(
            "tcp's p99 on the same link",
            lossy(false, LinkFigure::P99Total),
        )
        .at_most(0.5),
        row(
            "lossy link 100 ms RTT + 1% loss, udp: fps of the source's 30",
            lossy(true, LinkFigure::Fps),
            Unit::Fps,
        )
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, lossy(true, LinkFigure::Source))
        .at_least(0.95),
        // Both directions of a UDP call at once across the same link (chat --transport udp, each
        // side sending the stream): the worse direction's figures.
        row(
            "lossy link 100 ms RTT + 1% loss, udp chat, worse direction: p99 latency",
            lossy_call(LinkFigure::P99Total),
            Unit::Ms,
        )
        .optional(MayLack::WithoutRoot)
        .vs(
            "tcp's one-way p99 on the same link",
            lossy(false, LinkFigure::P99Total),
        )
        .at_most(0.5),
        row(
            "lossy link 100 ms RTT + 1% loss, udp chat, worse direction: fps of the source's 30",
            lossy_call(LinkFigure::Fps),
            Unit::Fps,
        )
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, lossy_call(LinkFigure::Source))
        .at_least(0.95),
        // Each sender's own firewall refuses 1% of what it sends (no delay, no loss in transit):
        // each refused `sendto` is one lost datagram, on the server and on the viewer.
        row(
            "refused sends 1% each way (sender's firewall), udp, adaptation off: fps of the source's 30",
            refused(false, LinkFigure::Fps),
            Unit::Fps,
        )
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, refused(false, LinkFigure::Source))
        .at_least(0.97),
        row(
            "refused sends 1% each way (sender's firewall), udp, adaptation on, after 3 s: fps of the source's 30",
            refused(true, LinkFigure::Fps),
            Unit::Fps,
        )
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, refused(true, LinkFigure::Source))
        .at_least(0.97),
    ]
}
