//! `cargo xtask bench [--quick]`: runs the criterion benches, the OpenCV baseline, the serve
//! pipeline through the real binary, the viewers-fed measure and the real binary's serve -> view
//! across narrow netbed links (bench-harness's `narrow-link`), and writes one summary table
//! (`target/framewire-bench/summary.json` and `summary.md`) where every row carries its ratio
//! against a baseline measured in the same run. Every row comes from one table, `ROWS`; a row
//! whose bench gave no result fails the command, naming the row and the bench id, unless the table
//! lets this machine lack it (OpenCV, libjpeg-turbo's build tools, a GPU adapter). Where network
//! namespaces cannot be made (not root), the narrow-link rows stay, without a value, their note
//! "not measured: needs root".

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{cargo, on_path, root, run_cmd, target_dir};

/// One line of the summary.
struct Row {
    case: String,
    /// `None` where this machine cannot measure it (the note says why).
    value: Option<f64>,
    unit: &'static str,
    /// What the ratio divides by, with its value; empty where there is none.
    baseline: String,
    /// `value / baseline value`, in the row's unit.
    ratio: Option<f64>,
    /// The target on the ratio, e.g. `<= 1.05` or `>= 0.8`.
    target: Option<(Cmp, f64)>,
    note: String,
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    AtMost,
    AtLeast,
}

impl Row {
    fn new(case: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            value: Some(value),
            ..Row::not_measured(case, unit)
        }
    }

    /// A row without a value: this machine cannot measure it; the note should say why.
    fn not_measured(case: impl Into<String>, unit: &'static str) -> Row {
        Row {
            case: case.into(),
            value: None,
            unit,
            baseline: String::new(),
            ratio: None,
            target: None,
            note: String::new(),
        }
    }

    fn against(mut self, name: &str, base: Option<f64>) -> Row {
        if let Some(b) = base.filter(|b| *b > 0.0 && b.is_finite()) {
            self.baseline = format!("{name}: {} {}", fmt_num(b), self.unit);
            self.ratio = self.value.map(|v| v / b);
        } else {
            self.baseline = format!("{name}: not measured");
        }
        self
    }

    fn target(mut self, cmp: Cmp, t: f64) -> Row {
        self.target = Some((cmp, t));
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    fn meets(&self) -> Option<bool> {
        let (cmp, t) = self.target?;
        let r = self.ratio?;
        Some(match cmp {
            Cmp::AtMost => r <= t,
            Cmp::AtLeast => r >= t,
        })
    }

    /// The row as `summary.json` has it.
    fn to_json(&self) -> Value {
        json!({
            "case": self.case,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target_text(),
            "meets": self.meets(),
            "note": self.note,
        })
    }

    fn target_text(&self) -> String {
        // At most three decimals (25/30 reads 0.833), no trailing zeros.
        let t = |t: f64| {
            let s = format!("{t:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        match self.target {
            Some((Cmp::AtMost, v)) => format!("<= {}", t(v)),
            Some((Cmp::AtLeast, v)) => format!(">= {}", t(v)),
            None => String::new(),
        }
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

// The summary's rows, all from one table: `ROWS` says, for every row in its order, where its value
// and its baseline come from, its unit, target and note, and when (if ever) it may be left out.
// A row whose figure is missing for any other reason fails the run, naming the row and the id.

/// Where a figure comes from in this run's measurements.
#[derive(Clone, Copy, Debug)]
enum Key {
    /// A criterion bench's median, by full id (`group/function`).
    Crit(&'static str),
    /// The criterion bench named by this prefix and the bytes per iteration that the row's value
    /// bench declared (loopback's plain-TCP floor is named by its message size).
    CritSameBytes(&'static str),
    /// OpenCV's median ms for one op, keyed `"<op> <WxH>"` as opencv_micro.py prints it.
    OpenCv(&'static str),
    /// OpenCV ops one after the other: the sum of their medians.
    OpenCvSum(&'static [&'static str]),
    /// The serve pipeline's frames per second for a `PIPELINE` label in a `PIPELINE_MODES` mode.
    Pipeline(&'static str, &'static str),
    /// A field of viewers-fed's result for (size, mode).
    Viewers(&'static str, &'static str, &'static str),
    /// A figure of one narrow-link case.
    Link(LinkCase, LinkFigure),
    /// A field of browser-latency's result (Chromium showing `serve --http` on loopback).
    Browser(&'static str),
}

/// One case of bench-harness's `narrow-link`: `framewire serve` (640x480 JPEG at 30 fps) in one
/// netbed namespace and `framewire view` in the other, through a link that carries `share`
/// percent of the top rung's stream and adds `rtt_ms` of round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LinkCase {
    /// `serve --adapt on` (the viewer moves along the quality ladder; measured after a 3 s
    /// warm-up) or `off` (it stays on the top rung).
    adapt: bool,
    /// 0: no rate limit (a lossy case).
    share: u32,
    rtt_ms: u32,
    /// framewire over UDP (`--transport udp`) rather than TCP.
    udp: bool,
    /// A two-way call (`chat --transport udp`, both directions at once) rather than serve and
    /// view; its figures are the worse direction's.
    chat: bool,
    /// Random loss each way, percent.
    loss: u32,
}

impl LinkCase {
    /// The case as narrow-link takes it on its command line and names it in its output.
    fn arg(self) -> String {
        let adapt = if self.adapt { "on" } else { "off" };
        let base = format!("{adapt}:{}:{}", self.share, self.rtt_ms);
        if self.udp || self.loss > 0 {
            let transport = match (self.udp, self.chat) {
                (true, true) => "udpchat",
                (true, false) => "udp",
                _ => "tcp",
            };
            format!("{base}:{transport}:{}", self.loss)
        } else {
            base
        }
    }
}

/// A figure of a narrow-link case: a field of its JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkFigure {
    /// Latency p50, capture to decoded, minus the added round trip (ms).
    P50,
    /// Latency p99, likewise (ms).
    P99,
    /// Latency p99 with the round trip in (ms).
    P99Total,
    /// One frame-time: bytes per frame received / link rate (ms).
    FrameTime,
    /// Frames per second received.
    Fps,
    /// What the link carries of frames that size (fps).
    Capacity,
    /// The source's frame rate (30 fps).
    Source,
    /// From the viewer's start to its last move along the ladder; 0 when it never moved (ms).
    Settled,
    /// What the viewer left out of its stats (ms).
    Warmup,
}

impl LinkFigure {
    const fn field(self) -> &'static str {
        match self {
            LinkFigure::P50 => "p50_ms",
            LinkFigure::P99 => "p99_ms",
            LinkFigure::P99Total => "p99_total_ms",
            LinkFigure::FrameTime => "frame_ms",
            LinkFigure::Fps => "fps",
            LinkFigure::Capacity => "capacity_fps",
            LinkFigure::Source => "source_fps",
            LinkFigure::Settled => "settled_ms",
            LinkFigure::Warmup => "warmup_ms",
        }
    }

    /// The figure as a raw value: milliseconds or frames per second.
    fn raw(self, v: f64) -> Raw {
        match self {
            LinkFigure::Fps | LinkFigure::Capacity | LinkFigure::Source => Raw::Fps(v),
            LinkFigure::P50
            | LinkFigure::P99
            | LinkFigure::P99Total
            | LinkFigure::FrameTime
            | LinkFigure::Settled
            | LinkFigure::Warmup => Raw::Ms(v),
        }
    }
}

impl Key {
    /// The key in words, for errors.
    fn describe(self) -> String {
        match self {
            Key::Crit(id) => format!("criterion bench {id}"),
            Key::CritSameBytes(prefix) => format!("criterion bench {prefix}<bytes>"),
            Key::OpenCv(k) => format!("OpenCV op {k:?}"),
            Key::OpenCvSum(ks) => format!("OpenCV ops {ks:?}"),
            Key::Pipeline(label, mode) => format!("serve pipeline run \"{label} {mode}\""),
            Key::Viewers(size, mode, field) => format!("viewers-fed {field} of {size} {mode}"),
            Key::Link(case, figure) => {
                format!("narrow-link {} of case {}", figure.field(), case.arg())
            }
            Key::Browser(field) => format!("browser-latency {field}"),
        }
    }
}

const fn crit(id: &'static str) -> Key {
    Key::Crit(id)
}

const fn cv(key: &'static str) -> Key {
    Key::OpenCv(key)
}

const fn pipe(label: &'static str, mode: &'static str) -> Key {
    Key::Pipeline(label, mode)
}

const fn viewers(size: &'static str, mode: &'static str, field: &'static str) -> Key {
    Key::Viewers(size, mode, field)
}

const fn browser(field: &'static str) -> Key {
    Key::Browser(field)
}

/// A narrow-link figure: adaptation on or off, the link's share of the top rung's stream in
/// percent, its added round trip in ms.
const fn link(adapt: bool, share: u32, rtt_ms: u32, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt,
            share,
            rtt_ms,
            udp: false,
            chat: false,
            loss: 0,
        },
        figure,
    )
}

/// A figure of the lossy case: no rate limit, 100 ms round trip, 1% random loss each way,
/// adaptation off, over UDP or TCP.
const fn lossy(udp: bool, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt: false,
            share: 0,
            rtt_ms: 100,
            udp,
            chat: false,
            loss: 1,
        },
        figure,
    )
}

/// A figure of a two-way UDP call across the lossy link (`chat --transport udp`, each side
/// sending): the worse direction's.
const fn lossy_call(figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt: false,
            share: 0,
            rtt_ms: 100,
            udp: true,
            chat: true,
            loss: 1,
        },
        figure,
    )
}

/// A row's unit, which also says how a figure is put in it (criterion gives ns, OpenCV ms).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Unit {
    Ns,
    Us,
    Ms,
    /// Frames per second: 1e9 / ns, 1e3 / ms, or the pipeline's own figure.
    Fps,
    /// The bytes per iteration criterion was told, over the time.
    MBps,
    Viewers,
    /// A fraction of a core, times 100.
    PctCore,
}

impl Unit {
    const fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::Fps => "fps",
            Unit::MBps => "MB/s",
            Unit::Viewers => "viewers",
            Unit::PctCore => "% core",
        }
    }
}

/// When a row's value or its baseline may be missing without failing the run. Every case here is
/// something this machine lacks, and the notes say so; a figure missing for any other reason (a
/// renamed or failed bench) fails the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MayLack {
    /// Never.
    Never,
    /// Where OpenCV could not be set up (no opencv_micro.py, no python3, no venv or pip): the
    /// baseline reads "not measured". Where OpenCV ran, a missing op fails the run.
    WithoutOpenCv,
    /// Where cmake or nasm is missing, so libjpeg-turbo is not built: the row is left out.
    WithoutTurbo,
    /// Where the renderer bench measured nothing (it skips without a GPU adapter): the row is
    /// left out.
    WithoutGpu,
    /// Where viewers-fed gives null (no viewer count kept 29 fps): the row is left out, a baseline
    /// reads "not measured".
    WhenNull,
    /// Where netbed cannot make network namespaces (it needs root, and `ip`, `tc`, `nft`,
    /// `/dev/net/tun`): the row stays, without a value, its note `NEEDS_ROOT`.
    WithoutRoot,
    /// Where chromium, Xvfb or ffmpeg is missing (browser-latency skips): the row is left out,
    /// and the notes say why.
    WithoutBrowser,
}

/// The note of a row that needs netbed's namespaces where they cannot be made.
const NEEDS_ROOT: &str = "not measured: needs root";

/// What a row's note says.
#[derive(Clone, Copy, Debug)]
enum Note {
    None,
    Text(&'static str),
    /// Frames per second of the row's value bench: 1e9 / its ns.
    FramesPerSecond,
    /// The server threads' CPU at the viewer count of the row's viewers-fed result.
    ServerCpu,
    /// The rung the viewer of the row's narrow-link case ended on, its moves, the link's rate.
    Rung,
}

#[derive(Clone, Copy, Debug)]
struct Baseline {
    /// What the ratio divides by, in words.
    label: &'static str,
    key: Key,
    may_lack: MayLack,
}

/// One row of the summary.
#[derive(Clone, Copy, Debug)]
struct RowSpec {
    case: &'static str,
    value: Key,
    unit: Unit,
    may_lack: MayLack,
    baseline: Option<Baseline>,
    /// The target on the ratio.
    target: Option<(Cmp, f64)>,
    note: Note,
}

/// A row with a value and nothing else; the methods below add the rest.
const fn row(case: &'static str, value: Key, unit: Unit) -> RowSpec {
    RowSpec {
        case,
        value,
        unit,
        may_lack: MayLack::Never,
        baseline: None,
        target: None,
        note: Note::None,
    }
}

impl RowSpec {
    /// The row is left out where this machine lacks what `may_lack` names (or, for
    /// `MayLack::WithoutRoot`, kept without a value).
    const fn optional(self, may_lack: MayLack) -> RowSpec {
        RowSpec { may_lack, ..self }
    }

    /// A baseline that is always measured.
    const fn vs(self, label: &'static str, key: Key) -> RowSpec {
        self.vs_optional(label, key, MayLack::Never)
    }

    /// A baseline that reads "not measured" where this machine lacks what `may_lack` names.
    const fn vs_optional(self, label: &'static str, key: Key, may_lack: MayLack) -> RowSpec {
        RowSpec {
            baseline: Some(Baseline {
                label,
                key,
                may_lack,
            }),
            ..self
        }
    }

    const fn at_most(self, t: f64) -> RowSpec {
        RowSpec {
            target: Some((Cmp::AtMost, t)),
            ..self
        }
    }

    const fn at_least(self, t: f64) -> RowSpec {
        RowSpec {
            target: Some((Cmp::AtLeast, t)),
            ..self
        }
    }

    const fn note(self, text: &'static str) -> RowSpec {
        RowSpec {
            note: Note::Text(text),
            ..self
        }
    }

    const fn note_of(self, note: Note) -> RowSpec {
        RowSpec { note, ..self }
    }

    /// The keys of the value and the baseline.
    fn keys(&self) -> impl Iterator<Item = Key> {
        std::iter::once(self.value).chain(self.baseline.map(|b| b.key))
    }
}

/// The criterion benches the run measures: (package, bench target, the group its ids start with).
/// One cargo invocation runs them all.
const BENCHES: [(&str, &str, &str); 5] = [
    ("framewire-wire", "framing", "framing"),
    ("framewire-capture", "resize", "resize"),
    ("framewire-codec", "codecs", "codec"),
    ("framewire-bench-harness", "loopback", "loopback"),
    ("framewire-display", "render", RENDER_GROUP),
];

/// The renderer's group; without a GPU adapter its bench measures nothing.
const RENDER_GROUP: &str = "render";

/// The filter of the second run of the codecs bench, with `--features turbojpeg`: the ids of the
/// libjpeg-turbo encoder.
const TURBO_FILTER: &str = "encode/jpeg-turbo/";

/// One `framewire serve` configuration the pipeline rows measure.
struct PipelineCase {
    label: &'static str,
    codec: &'static str,
    flags: &'static [&'static str],
    /// Measured only where the turbojpeg feature is built.
    turbo: bool,
    /// Served from a Y4M file of this size (written under the target folder, looped) instead of
    /// the test pattern.
    y4m: Option<(u32, u32)>,
}

const PIPELINE: [PipelineCase; 6] = [
    // The same over TLS (serve --tls, the sink pinning its certificate).
    PipelineCase {
        label: "jpeg 640x480->320 over TLS",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "rust",
            "--tls",
        ],
        codec: "jpeg",
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg 640x480->320",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "rust",
        ],
        codec: "jpeg",
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg 640x480",
        codec: "jpeg",
        flags: &["--size", "640x480", "--jpeg-encoder", "rust"],
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg-turbo 640x480->320",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "turbojpeg",
        ],
        codec: "jpeg",
        turbo: true,
        y4m: None,
    },
    // Reading a file is never the bottleneck: a raw Y4M file beside the test pattern.
    PipelineCase {
        label: "raw 1280x720 test pattern",
        codec: "raw",
        flags: &["--size", "1280x720"],
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "raw 1280x720 y4m file",
        codec: "raw",
        flags: &[],
        turbo: false,
        y4m: Some((1280, 720)),
    },
];

/// Every pipeline case runs in each mode: (mode, its extra flags); the default thread count is
/// "threads".
const PIPELINE_MODES: [(&str, &[&str]); 2] = [("single", &["--threads", "1"]), ("threads", &[])];

const READS: &str = "memcpy of the same bytes, same reads";
const COPY_THEN_READ: &str = "the same copy, then one 8-byte read of the message";
const COPY_THEN_READ_NOTE: &str =
    "informative: a baseline that also reads what it copied, as any reader must";
const MEMCPY_FRAME: &str = "memcpy of the frame";
const IMENCODE: &str = "OpenCV imencode (libjpeg-turbo)";
const IMDECODE: &str = "OpenCV imdecode (libjpeg-turbo)";
const PURE_RUST_NOTE: &str = "no per-frame target for the pure-Rust encoder; see the pipeline rows";
const TCP: &str = "plain TCP send/recv loop, same message size";
const PLAIN_SAME_RUN: &str = "the same without TLS, same run";
const TCP_SAME_BYTES: Key = Key::CritSameBytes("loopback/tcp/");
const SINGLE: &str = "same, --threads 1";
const IMENCODE_ALONE: &str = "OpenCV single-thread imencode alone";
const RESIZE_ENCODE: &str = "OpenCV single-thread cv2.resize INTER_AREA + imencode";
const OPENCV_320_LOOP: Key =
    Key::OpenCvSum(&["jpeg_encode:80 320x240", "resize_area:320x240 640x480"]);
const PER_VIEWER: &str = "one encode per viewer";
const FRAMEWIRE_VIEWERS: &str = "framewire-protocol viewers";
const IMG: &str = "an <img> of /stream, same grabs";
const BROWSER_NOTE: &str = "Chromium under Xvfb (software compositing), 320x240 JPEG at 30 fps; \
     screen grabs 23/s, each grab's frame number against its capture time";
const CPU_NOTE: &str =
    "user+system time of the server's threads / viewers, at the largest count fed";
const RENDER_NOTE: &str = "software adapter where no GPU; no baseline";
const FRAME_TIME: &str = "one frame-time (bytes per frame received / link rate)";
const LINK_CARRIES: &str = "what the link carries of frames that size";
const SOURCE_FPS: &str = "the source's 30 fps";
const WARMUP: &str = "the viewer's 3 s warm-up";

// Narrow-link rows, one case's kind at a time: the ratio is the latency in frame-times (p50 at
// most 2, p99 at most 3), the frame rate as a share of what the link carries (at least 0.9) or,
// with adaptation on, of the source's 30 fps (at least 25 of 30), and the viewer's last move
// along the ladder within its 3 s warm-up.

/// A narrow-link latency row (`figure` is `P50` or `P99`): in frame-times, at most
/// `frame_times`.
const fn link_latency(
    case: &'static str,
    (adapt, share, rtt_ms): (bool, u32, u32),
    figure: LinkFigure,
    frame_times: f64,
) -> RowSpec {
    row(case, link(adapt, share, rtt_ms, figure), Unit::Ms)
        .optional(MayLack::WithoutRoot)
        .vs(
            FRAME_TIME,
            link(adapt, share, rtt_ms, LinkFigure::FrameTime),
        )
        .at_most(frame_times)
        .note_of(Note::Rung)
}

/// p50 latency (minus the added round trip) of a narrow-link case, at most 2 frame-times.
const fn link_p50(case: &'static str, adapt: bool, share: u32, rtt_ms: u32) -> RowSpec {
    link_latency(case, (adapt, share, rtt_ms), LinkFigure::P50, 2.0)
}

/// p99 latency (minus the added round trip) of a narrow-link case, at most 3 frame-times.
const fn link_p99(case: &'static str, adapt: bool, share: u32, rtt_ms: u32) -> RowSpec {
    link_latency(case, (adapt, share, rtt_ms), LinkFigure::P99, 3.0)
}

/// Frames per second received with adaptation off, at least 0.9 of what the link carries.
const fn link_fps_of_capacity(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
    row(case, link(false, share, rtt_ms, LinkFigure::Fps), Unit::Fps)
        .optional(MayLack::WithoutRoot)
        .vs(
            LINK_CARRIES,
            link(false, share, rtt_ms, LinkFigure::Capacity),
        )
        .at_least(0.9)
        .note_of(Note::Rung)
}

/// Frames per second received with adaptation on, at least 25 of the source's 30.
const fn link_fps_of_source(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
    row(case, link(true, share, rtt_ms, LinkFigure::Fps), Unit::Fps)
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, link(true, share, rtt_ms, LinkFigure::Source))
        .at_least(25.0 / 30.0)
        .note_of(Note::Rung)
}

/// With adaptation on, the viewer's last move along the ladder: within its 3 s warm-up.
const fn link_settled(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
    row(
        case,
        link(true, share, rtt_ms, LinkFigure::Settled),
        Unit::Ms,
    )
    .optional(MayLack::WithoutRoot)
    .vs(WARMUP, link(true, share, rtt_ms, LinkFigure::Warmup))
    .at_most(1.0)
    .note_of(Note::Rung)
}

/// Every row of the summary, in its order.
static ROWS: &[RowSpec] = &[
    // Framing.
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
    row(
        "framing reader jpeg-320x240, 64 KiB reads",
        crit("framing/reader/jpeg-320x240"),
        Unit::Us,
    )
    .vs(READS, crit("framing/memcpy/jpeg-320x240"))
    .at_most(1.05),
    row(
        "framing reader jpeg-320x240, vs copy + one header read",
        crit("framing/reader/jpeg-320x240"),
        Unit::Us,
    )
    .vs(
        COPY_THEN_READ,
        crit("framing/memcpy-then-read/jpeg-320x240"),
    )
    .note(COPY_THEN_READ_NOTE),
    row(
        "framing reader jpeg-640x480, 64 KiB reads",
        crit("framing/reader/jpeg-640x480"),
        Unit::Us,
    )
    .vs(READS, crit("framing/memcpy/jpeg-640x480"))
    .at_most(1.05),
    row(
        "framing reader jpeg-640x480, vs copy + one header read",
        crit("framing/reader/jpeg-640x480"),
        Unit::Us,
    )
    .vs(
        COPY_THEN_READ,
        crit("framing/memcpy-then-read/jpeg-640x480"),
    )
    .note(COPY_THEN_READ_NOTE),
    row(
        "framing reader raw-1280x720, 64 KiB reads",
        crit("framing/reader/raw-1280x720"),
        Unit::Us,
    )
    .vs(READS, crit("framing/memcpy/raw-1280x720"))
    .at_most(1.05),
    row(
        "framing reader raw-1280x720, vs copy + one header read",
        crit("framing/reader/raw-1280x720"),
        Unit::Us,
    )
    .vs(
        COPY_THEN_READ,
        crit("framing/memcpy-then-read/raw-1280x720"),
    )
    .note(COPY_THEN_READ_NOTE),
    // Resize against OpenCV.
    row(
        "resize area 640x480->320x240",
        crit("resize/area/640x480-320x240"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_AREA",
        cv("resize_area:320x240 640x480"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.0),
    row(
        "resize bilinear 640x480->320x240",
        crit("resize/bilinear/640x480-320x240"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_LINEAR",
        cv("resize_linear:320x240 640x480"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.0),
    row(
        "resize area 1280x720->320x180",
        crit("resize/area/1280x720-320x180"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_AREA",
        cv("resize_area:320x180 1280x720"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.0),
    row(
        "resize bilinear 1280x720->320x180",
        crit("resize/bilinear/1280x720-320x180"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_LINEAR",
        cv("resize_linear:320x180 1280x720"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.0),
    row(
        "resize area 1920x1080->320x180",
        crit("resize/area/1920x1080-320x180"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_AREA",
        cv("resize_area:320x180 1920x1080"),
        MayLack::WithoutOpenCv,
    )
    .at_most(0.5),
    row(
        "resize bilinear 1920x1080->320x180",
        crit("resize/bilinear/1920x1080-320x180"),
        Unit::Ms,
    )
    .vs_optional(
        "OpenCV INTER_LINEAR",
        cv("resize_linear:320x180 1920x1080"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.0),
    // Codecs, 320x240.
    row(
        "raw encode 320x240",
        crit("codec/encode/raw/320x240"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/320x240")),
    row(
        "raw decode 320x240",
        crit("codec/decode/raw/320x240"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/320x240")),
    row(
        "bincode encode 320x240",
        crit("codec/encode/bincode/320x240"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/320x240")),
    row(
        "bincode decode 320x240",
        crit("codec/decode/bincode/320x240"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/320x240")),
    row(
        "jpeg encode 320x240 (framewire, pure Rust)",
        crit("codec/encode/jpeg/320x240"),
        Unit::Ms,
    )
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 320x240"),
        MayLack::WithoutOpenCv,
    )
    .note(PURE_RUST_NOTE),
    row(
        "jpeg encode 320x240 (libjpeg-turbo, --features turbojpeg)",
        crit("codec/encode/jpeg-turbo/320x240"),
        Unit::Ms,
    )
    .optional(MayLack::WithoutTurbo)
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 320x240"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.1),
    row(
        "jpeg decode 320x240 (framewire, pure Rust)",
        crit("codec/decode/jpeg/320x240"),
        Unit::Ms,
    )
    .vs_optional(
        IMDECODE,
        cv("jpeg_decode:80 320x240"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.3),
    // Codecs, 640x480.
    row(
        "raw encode 640x480",
        crit("codec/encode/raw/640x480"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/640x480")),
    row(
        "raw decode 640x480",
        crit("codec/decode/raw/640x480"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/640x480")),
    row(
        "bincode encode 640x480",
        crit("codec/encode/bincode/640x480"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/640x480")),
    row(
        "bincode decode 640x480",
        crit("codec/decode/bincode/640x480"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/640x480")),
    row(
        "jpeg encode 640x480 (framewire, pure Rust)",
        crit("codec/encode/jpeg/640x480"),
        Unit::Ms,
    )
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 640x480"),
        MayLack::WithoutOpenCv,
    )
    .note(PURE_RUST_NOTE),
    row(
        "jpeg encode 640x480 (libjpeg-turbo, --features turbojpeg)",
        crit("codec/encode/jpeg-turbo/640x480"),
        Unit::Ms,
    )
    .optional(MayLack::WithoutTurbo)
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 640x480"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.1),
    row(
        "jpeg decode 640x480 (framewire, pure Rust)",
        crit("codec/decode/jpeg/640x480"),
        Unit::Ms,
    )
    .vs_optional(
        IMDECODE,
        cv("jpeg_decode:80 640x480"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.3),
    // Codecs, 1920x1080.
    row(
        "raw encode 1920x1080",
        crit("codec/encode/raw/1920x1080"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/1920x1080")),
    row(
        "raw decode 1920x1080",
        crit("codec/decode/raw/1920x1080"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/1920x1080")),
    row(
        "bincode encode 1920x1080",
        crit("codec/encode/bincode/1920x1080"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/1920x1080")),
    row(
        "bincode decode 1920x1080",
        crit("codec/decode/bincode/1920x1080"),
        Unit::Ms,
    )
    .vs(MEMCPY_FRAME, crit("codec/memcpy/1920x1080")),
    row(
        "jpeg encode 1920x1080 (framewire, pure Rust)",
        crit("codec/encode/jpeg/1920x1080"),
        Unit::Ms,
    )
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 1920x1080"),
        MayLack::WithoutOpenCv,
    )
    .note(PURE_RUST_NOTE),
    row(
        "jpeg encode 1920x1080 (libjpeg-turbo, --features turbojpeg)",
        crit("codec/encode/jpeg-turbo/1920x1080"),
        Unit::Ms,
    )
    .optional(MayLack::WithoutTurbo)
    .vs_optional(
        IMENCODE,
        cv("jpeg_encode:80 1920x1080"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.1),
    row(
        "jpeg decode 1920x1080 (framewire, pure Rust)",
        crit("codec/decode/jpeg/1920x1080"),
        Unit::Ms,
    )
    .vs_optional(
        IMDECODE,
        cv("jpeg_decode:80 1920x1080"),
        MayLack::WithoutOpenCv,
    )
    .at_most(1.3),
    // Loopback end to end.
    row(
        "loopback raw 640x480 end to end",
        crit("loopback/framewire/raw/640x480"),
        Unit::MBps,
    )
    .vs(TCP, TCP_SAME_BYTES)
    .note_of(Note::FramesPerSecond),
    row(
        "loopback raw 1280x720 end to end",
        crit("loopback/framewire/raw/1280x720"),
        Unit::MBps,
    )
    .vs(TCP, TCP_SAME_BYTES)
    .at_least(0.8)
    .note_of(Note::FramesPerSecond),
    row(
        "loopback raw 1280x720 end to end over TLS",
        crit("loopback/framewire-tls/raw/1280x720"),
        Unit::MBps,
    )
    .vs(PLAIN_SAME_RUN, crit("loopback/framewire/raw/1280x720"))
    .at_least(0.7)
    .note("rustls (ring, AES-GCM) both ends; one core each for sealing and opening"),
    row(
        "loopback bincode 1280x720 end to end",
        crit("loopback/framewire/bincode/1280x720"),
        Unit::MBps,
    )
    .vs(TCP, TCP_SAME_BYTES)
    .note_of(Note::FramesPerSecond),
    row(
        "loopback jpeg 640x480 end to end",
        crit("loopback/framewire/jpeg/640x480"),
        Unit::MBps,
    )
    .vs(TCP, TCP_SAME_BYTES)
    .note_of(Note::FramesPerSecond),
    row(
        "loopback jpeg 1280x720 end to end",
        crit("loopback/framewire/jpeg/1280x720"),
        Unit::MBps,
    )
    .vs(TCP, TCP_SAME_BYTES)
    .note_of(Note::FramesPerSecond),
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
    // Viewers fed at 30 fps.
    row(
        "viewers fed, jpeg 320x240 30 fps, all >= 29 fps, encode once",
        viewers("320x240", "once", "max_viewers"),
        Unit::Viewers,
    )
    .vs(PER_VIEWER, viewers("320x240", "per-viewer", "max_viewers"))
    .note_of(Note::ServerCpu),
    row(
        "server CPU per viewer, jpeg 320x240 30 fps, encode once",
        viewers("320x240", "once", "server_cpu_per_viewer"),
        Unit::PctCore,
    )
    .optional(MayLack::WhenNull)
    .vs_optional(
        PER_VIEWER,
        viewers("320x240", "per-viewer", "server_cpu_per_viewer"),
        MayLack::WhenNull,
    )
    .note(CPU_NOTE),
    // HTTP clients of `serve --http` (MJPEG from /stream), beside the framewire-protocol figures.
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
    // A browser watching `serve --http` on loopback (bench-harness's browser-latency).
    row(
        "browser capture-to-display latency, loopback, the page at / (fetch + canvas)",
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
    row(
        "viewers fed, jpeg 640x480 30 fps, all >= 29 fps, encode once",
        viewers("640x480", "once", "max_viewers"),
        Unit::Viewers,
    )
    .vs(PER_VIEWER, viewers("640x480", "per-viewer", "max_viewers"))
    .note_of(Note::ServerCpu),
    row(
        "server CPU per viewer, jpeg 640x480 30 fps, encode once",
        viewers("640x480", "once", "server_cpu_per_viewer"),
        Unit::PctCore,
    )
    .optional(MayLack::WhenNull)
    .vs_optional(
        PER_VIEWER,
        viewers("640x480", "per-viewer", "server_cpu_per_viewer"),
        MayLack::WhenNull,
    )
    .note(CPU_NOTE),
    // serve -> view through a narrow link (netbed), one 640x480 JPEG stream at 30 fps; the link
    // carries 60% or 30% of its top rung (640x480@80).
    link_p50("narrow link 60%, adaptation off: p50 latency", false, 60, 0),
    link_p99("narrow link 60%, adaptation off: p99 latency", false, 60, 0),
    link_fps_of_capacity(
        "narrow link 60%, adaptation off: fps of what the link carries",
        60,
        0,
    ),
    link_p50("narrow link 30%, adaptation off: p50 latency", false, 30, 0),
    link_p99("narrow link 30%, adaptation off: p99 latency", false, 30, 0),
    link_fps_of_capacity(
        "narrow link 30%, adaptation off: fps of what the link carries",
        30,
        0,
    ),
    link_p50(
        "narrow link 60% + 40 ms RTT, adaptation off: p50 latency - RTT",
        false,
        60,
        40,
    ),
    link_p99(
        "narrow link 60% + 40 ms RTT, adaptation off: p99 latency - RTT",
        false,
        60,
        40,
    ),
    link_fps_of_capacity(
        "narrow link 60% + 40 ms RTT, adaptation off: fps of what the link carries",
        60,
        40,
    ),
    link_p50(
        "narrow link 30% + 40 ms RTT, adaptation off: p50 latency - RTT",
        false,
        30,
        40,
    ),
    link_p99(
        "narrow link 30% + 40 ms RTT, adaptation off: p99 latency - RTT",
        false,
        30,
        40,
    ),
    link_fps_of_capacity(
        "narrow link 30% + 40 ms RTT, adaptation off: fps of what the link carries",
        30,
        40,
    ),
    link_settled(
        "narrow link 60%, adaptation on: last move along the ladder",
        60,
        0,
    ),
    link_p50(
        "narrow link 60%, adaptation on, after 3 s: p50 latency",
        true,
        60,
        0,
    ),
    link_p99(
        "narrow link 60%, adaptation on, after 3 s: p99 latency",
        true,
        60,
        0,
    ),
    link_fps_of_source(
        "narrow link 60%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)",
        60,
        0,
    ),
    link_settled(
        "narrow link 30%, adaptation on: last move along the ladder",
        30,
        0,
    ),
    link_p50(
        "narrow link 30%, adaptation on, after 3 s: p50 latency",
        true,
        30,
        0,
    ),
    link_p99(
        "narrow link 30%, adaptation on, after 3 s: p99 latency",
        true,
        30,
        0,
    ),
    link_fps_of_source(
        "narrow link 30%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)",
        30,
        0,
    ),
    // serve -> view over UDP and over TCP through the same lossy, distant link (netbed: 100 ms
    // round trip, 1% random loss each way, no rate limit), 640x480 JPEG at 30 fps, adaptation
    // off: a lost packet holds TCP's later frames back a round trip; UDP rebuilds it from parity
    // or loses that frame alone.
    row(
        "lossy link 100 ms RTT + 1% loss, udp: p99 latency",
        lossy(true, LinkFigure::P99Total),
        Unit::Ms,
    )
    .optional(MayLack::WithoutRoot)
    .vs("tcp's p99 on the same link", lossy(false, LinkFigure::P99Total))
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
    .vs("tcp's one-way p99 on the same link", lossy(false, LinkFigure::P99Total))
    .at_most(0.5),
    row(
        "lossy link 100 ms RTT + 1% loss, udp chat, worse direction: fps of the source's 30",
        lossy_call(LinkFigure::Fps),
        Unit::Fps,
    )
    .optional(MayLack::WithoutRoot)
    .vs(SOURCE_FPS, lossy_call(LinkFigure::Source))
    .at_least(0.95),
    // Renderer, in the order of its ids.
    row(
        "render 1920x1080/rgb8 (upload+draw+read back)",
        crit("render/1920x1080/rgb8"),
        Unit::Fps,
    )
    .optional(MayLack::WithoutGpu)
    .note(RENDER_NOTE),
    row(
        "render 1920x1080/rgba8 (upload+draw+read back)",
        crit("render/1920x1080/rgba8"),
        Unit::Fps,
    )
    .optional(MayLack::WithoutGpu)
    .note(RENDER_NOTE),
    row(
        "render 640x480/rgb8 (upload+draw+read back)",
        crit("render/640x480/rgb8"),
        Unit::Fps,
    )
    .optional(MayLack::WithoutGpu)
    .note(RENDER_NOTE),
    row(
        "render 640x480/rgba8 (upload+draw+read back)",
        crit("render/640x480/rgba8"),
        Unit::Fps,
    )
    .optional(MayLack::WithoutGpu)
    .note(RENDER_NOTE),
];

pub fn run_bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown bench option {other:?} (see cargo xtask --help)"),
        }
    }
    let t0 = Instant::now();
    let started = SystemTime::now();
    let out_dir = target_dir().join("framewire-bench");
    std::fs::create_dir_all(&out_dir)?;
    let mut notes: Vec<String> = Vec::new();

    // The libjpeg-turbo backend is measured beside the pure-Rust one where it can be built.
    let turbo = on_path("cmake") && on_path("nasm");
    if turbo {
        notes.push(
            "both JPEG encoders measured: framewire's own (pure Rust, the default) and libjpeg-turbo \
             (`--features turbojpeg`, built because cmake and nasm are present)"
                .into(),
        );
    } else {
        notes.push(format!(
            "turbojpeg backend not measured: building it needs cmake and nasm on PATH \
             (cmake {}, nasm {}; Debian: apt-get install cmake nasm); only the pure-Rust JPEG \
             encoder (framewire's own) is measured",
            if on_path("cmake") { "found" } else { "missing" },
            if on_path("nasm") { "found" } else { "missing" },
        ));
    }

    // Build everything first, so that the timings below are not sharing the CPU with rustc.
    // Two builds: the harness's binaries keep the default JPEG encoder (the viewers-fed
    // measure is about the pure-Rust default), and framewire gets both backends where it can.
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--bins",
        "-p",
        "framewire-bench-harness",
    ]);
    run_cmd(build)?;
    let mut build = cargo();
    build.args(["build", "--release", "--bins", "-p", "framewire"]);
    if turbo {
        build.args(["--features", "turbojpeg"]);
    }
    run_cmd(build)?;
    // One cargo invocation for all of them, here and below: the same feature set, so the
    // benches are built once. No features: `cargo bench` also rebuilds the harness's binaries,
    // which keep the default encoder. The libjpeg-turbo encoder's rows come from a second
    // invocation of the codecs bench alone, with the feature.
    let bench_cmd = || {
        let mut cmd = cargo();
        cmd.args(["bench", "--no-fail-fast"]);
        for (p, b, _) in BENCHES {
            cmd.args(["-p", p, "--bench", b]);
        }
        cmd
    };
    let turbo_cmd = || {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "framewire-codec", "--bench", "codecs"]);
        cmd.args(["--features", "turbojpeg"]);
        cmd
    };
    let mut build = bench_cmd();
    build.arg("--no-run");
    run_cmd(build)?;
    if turbo {
        let mut build = turbo_cmd();
        build.arg("--no-run");
        run_cmd(build)?;
    }
    let build_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();

    let criterion_args: &[&str] = if quick {
        &[
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.6",
            "--sample-size",
            "10",
        ]
    } else {
        &["--warm-up-time", "1", "--measurement-time", "3"]
    };
    let mut cmd = bench_cmd();
    cmd.arg("--").args(criterion_args).arg("--noplot");
    if let Err(e) = run_cmd(cmd) {
        notes.push(format!(
            "a criterion bench failed (its rows are missing): {e:#}"
        ));
    }
    if turbo {
        let mut cmd = turbo_cmd();
        cmd.args(["--", TURBO_FILTER])
            .args(criterion_args)
            .arg("--noplot");
        if let Err(e) = run_cmd(cmd) {
            notes.push(format!(
                "the libjpeg-turbo encode bench failed (its rows are missing): {e:#}"
            ));
        }
    }
    let crit = criterion_results(&target_dir().join("criterion"), started);

    let opencv = opencv_baseline(&out_dir, quick, &mut notes);
    let pipeline = pipeline_runs(quick, turbo, &mut notes);
    let viewers = viewers_fed(quick, &mut notes);
    let link = narrow_link(quick, &mut notes);
    let browser = browser_latency(quick, &mut notes);
    let measured = Measurements {
        crit,
        opencv,
        pipeline,
        viewers,
        turbo,
        link,
        browser,
    };

    let rows = match build_rows(ROWS, &measured, &mut notes) {
        Ok(rows) => rows,
        Err(e) => {
            // What the run noted often says why a figure is missing (a bench that failed).
            for n in &notes {
                eprintln!("xtask bench: note: {n}");
            }
            return Err(e);
        }
    };
    let run_secs = t1.elapsed().as_secs_f64();
    let md = markdown(&rows, &notes, quick, build_secs, run_secs);
    print!("{md}");
    let json_rows: Vec<Value> = rows.iter().map(Row::to_json).collect();
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&json_rows)? + "\n",
    )?;
    std::fs::write(out_dir.join("summary.md"), &md)?;
    eprintln!(
        "xtask bench: wrote {} and summary.md ({} rows; build {build_secs:.0}s, measuring {run_secs:.0}s)",
        out_dir.join("summary.json").display(),
        rows.len()
    );
    Ok(())
}

/// A criterion result: median ns per iteration, and the bytes per iteration it declared.
#[derive(Clone, Copy)]
struct Measured {
    ns: f64,
    bytes: Option<u64>,
}

/// Criterion's results by id, for every bench run since `since`, read from its own files
/// (`<group>/<id>/new/benchmark.json` and `estimates.json`).
fn criterion_results(dir: &Path, since: SystemTime) -> BTreeMap<String, Measured> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name().is_none_or(|n| n != "benchmark.json")
                || p.parent()
                    .and_then(Path::file_name)
                    .is_none_or(|n| n != "new")
            {
                continue;
            }
            let fresh = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since);
            if !fresh {
                continue;
            }
            let read = |path: &Path| -> Option<Value> {
                serde_json::from_slice(&std::fs::read(path).ok()?).ok()
            };
            let (Some(bench), Some(est)) = (read(&p), read(&p.with_file_name("estimates.json")))
            else {
                continue;
            };
            let (Some(id), Some(median)) = (
                bench["full_id"].as_str(),
                est["median"]["point_estimate"].as_f64(),
            ) else {
                continue;
            };
            let bytes = bench["throughput"]["Bytes"].as_u64();
            out.insert(id.to_string(), Measured { ns: median, bytes });
        }
    }
    out
}

/// OpenCV's median ms per op, keyed `"<op> <WxH>"` as opencv_micro.py prints it, for every op the
/// table's rows name; `None` where OpenCV cannot be set up here (the notes say why).
fn opencv_baseline(
    out_dir: &Path,
    quick: bool,
    notes: &mut Vec<String>,
) -> Option<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let baselines = root().join("../shared/baselines");
    let script = baselines.join("opencv_micro.py");
    if !script.is_file() {
        notes.push(format!(
            "OpenCV ratios left empty: {} is missing",
            script.display()
        ));
        return None;
    }
    let venv = out_dir.join("venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import cv2, numpy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        if !on_path("python3") {
            notes.push("OpenCV ratios left empty: python3 is not on PATH".into());
            return None;
        }
        let mut mk = Command::new("python3");
        mk.arg("-m").arg("venv").arg(&venv);
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "-q", "-r"])
            .arg(baselines.join("requirements.txt"));
        if let Err(e) = run_cmd(mk).and_then(|()| run_cmd(pip)) {
            notes.push(format!(
                "OpenCV ratios left empty: cannot set up the Python venv with pip: {e:#}"
            ));
            return None;
        }
    }
    let runs = if quick { "40" } else { "200" };
    let writer = target_dir().join("release/write-pattern");
    for ((w, h), ops) in opencv_jobs(ROWS) {
        let input = out_dir.join(format!("pattern-{w}x{h}.rgb"));
        let status = Command::new(&writer)
            .arg(&input)
            .arg(format!("{w}x{h}"))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            notes.push(format!("OpenCV {w}x{h}: cannot write the test pattern"));
            continue;
        }
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg("--input").arg(&input).args([
            "--size",
            &format!("{w}x{h}"),
            "--runs",
            runs,
        ]);
        for op in ops {
            cmd.args(["--op", op]);
        }
        let output = cmd.stderr(Stdio::inherit()).output();
        let Ok(output) = output.map_err(|e| notes.push(format!("OpenCV {w}x{h}: {e}"))) else {
            continue;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let (Some(op), Some(ms)) = (v["op"].as_str(), v["median_ms"].as_f64())
            {
                if let Some(ver) = v["opencv"].as_str() {
                    let n = format!(
                        "OpenCV {ver} (opencv-python-headless, 1 thread) on the same test-pattern pixels"
                    );
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                out.insert(op.to_string(), ms);
            }
        }
    }
    Some(out)
}

/// The OpenCV ops `table` names, by input size (smallest first), each size's ops in the order the
/// table first names them: a key `"resize_area:320x240 640x480"` is the op `resize_area:320x240`
/// on a 640x480 input.
fn opencv_jobs(table: &[RowSpec]) -> Vec<((u32, u32), Vec<&'static str>)> {
    let mut jobs: Vec<((u32, u32), Vec<&'static str>)> = Vec::new();
    let keys = table.iter().flat_map(RowSpec::keys).flat_map(|k| match k {
        Key::OpenCv(k) => vec![k],
        Key::OpenCvSum(ks) => ks.to_vec(),
        _ => Vec::new(),
    });
    for key in keys {
        let Some((op, size)) = opencv_op(key) else {
            continue;
        };
        match jobs.iter_mut().find(|(s, _)| *s == size) {
            Some((_, ops)) if ops.contains(&op) => {}
            Some((_, ops)) => ops.push(op),
            None => jobs.push((size, vec![op])),
        }
    }
    jobs.sort_by_key(|&((w, h), _)| u64::from(w) * u64::from(h));
    jobs
}

/// An OpenCV key's op and input size.
fn opencv_op(key: &'static str) -> Option<(&'static str, (u32, u32))> {
    let (op, size) = key.split_once(' ')?;
    let (w, h) = size.split_once('x')?;
    Some((op, (w.parse().ok()?, h.parse().ok()?)))
}

/// `framewire serve --fps 0` fed to the harness's `sink` (a viewer that receives without
/// decoding, so the figure is the server's pipeline): frames per second for each `PIPELINE` case
/// this build has, `"<label> threads"` (the default thread count) and `"<label> single"`
/// (`--threads 1`).
/// Runs alternate single and threaded, and each figure is the median of its runs.
fn pipeline_runs(quick: bool, turbo: bool, notes: &mut Vec<String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let (frames, rounds) = if quick { (1500, 1) } else { (3000, 3) };
    for case in PIPELINE.iter().filter(|c| turbo || !c.turbo) {
        let label = case.label;
        for (mode, extra) in PIPELINE_MODES {
            let mut runs = Vec::new();
            for _ in 0..rounds {
                match pipeline_fps(case, extra, frames) {
                    Ok(fps) => runs.push(fps),
                    Err(e) => notes.push(format!("pipeline {label} {mode}: {e:#}")),
                }
            }
            runs.sort_by(f64::total_cmp);
            if let Some(median) = runs.get(runs.len() / 2) {
                out.insert(format!("{label} {mode}"), *median);
            }
        }
    }
    out
}

fn pipeline_fps(case: &PipelineCase, extra: &[&str], frames: u64) -> anyhow::Result<f64> {
    let exe = target_dir().join("release/framewire");
    let mut cmd = Command::new(&exe);
    cmd.args([
        "serve",
        "--fps",
        "0",
        "--codec",
        case.codec,
        // One rendition: the figure is the pipeline's, not a ladder's.
        "--adapt",
        "off",
        "--listen",
        "127.0.0.1:0",
    ]);
    if let Some((w, h)) = case.y4m {
        let clip = y4m_clip(w, h)?;
        cmd.arg("--loop")
            .arg("--source")
            .arg(format!("file:{}", clip.display()));
    }
    // serve --tls keeps its certificate in a config folder of the bench's own.
    cmd.env(
        "XDG_CONFIG_HOME",
        target_dir().join("framewire-bench/config"),
    );
    let mut server = cmd
        .args(case.flags)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let result = (|| {
        let stdout = server.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().context("server exited before listening")??;
            if let Some(a) = line.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        let mut sink_args = vec![addr, frames.to_string()];
        if case.flags.contains(&"--tls") {
            let line = lines
                .next()
                .context("server exited before its fingerprint")??;
            let pin = line
                .strip_prefix("tls fingerprint ")
                .with_context(|| format!("expected the tls fingerprint line, got {line:?}"))?;
            sink_args.push(pin.trim().to_string());
        }
        // Drain the server's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let out = Command::new(target_dir().join("release/sink"))
            .args(sink_args)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("sink failed ({})", out.status);
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("sink's json")?;
        v["fps"].as_f64().context("no fps in sink's json")
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// A Y4M clip (4:2:0, 30 frames of a moving gradient) of `w` x `h` under the target folder,
/// written when missing: what `serve --source file:` reads in the file pipeline row.
fn y4m_clip(w: u32, h: u32) -> anyhow::Result<std::path::PathBuf> {
    let path = target_dir().join(format!("framewire-bench/clip-{w}x{h}.y4m"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(path.parent().context("bench folder")?)?;
    let (w, h) = (w as usize, h as usize);
    let mut bytes = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for n in 0..30 {
        bytes.extend_from_slice(b"FRAME\n");
        for y in 0..h {
            bytes.extend((0..w).map(|x| (16 + (x + y + 4 * n) % 220) as u8));
        }
        for plane in 0..2 {
            for y in 0..h.div_ceil(2) {
                bytes.extend(
                    (0..w.div_ceil(2)).map(|x| (64 + (x * (plane + 1) + y + n) % 128) as u8),
                );
            }
        }
    }
    let tmp = path.with_extension("y4m.part");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The viewers-fed binary's JSON objects.
fn viewers_fed(quick: bool, notes: &mut Vec<String>) -> Vec<Value> {
    let exe = target_dir().join("release/viewers-fed");
    let mut cmd = Command::new(&exe);
    if quick {
        cmd.arg("--quick");
    }
    match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Ok(o) => {
            notes.push(format!("viewers-fed failed ({})", o.status));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("cannot run {}: {e}", exe.display()));
            Vec::new()
        }
    }
}

/// The narrow-link cases `table` names, in its order, each once.
fn link_cases(table: &[RowSpec]) -> Vec<LinkCase> {
    let mut cases = Vec::new();
    for key in table.iter().flat_map(RowSpec::keys) {
        if let Key::Link(case, _) = key
            && !cases.contains(&case)
        {
            cases.push(case);
        }
    }
    cases
}

/// Bench-harness's browser-latency with the release `framewire` binary: its JSON object, or why
/// it measured nothing (chromium, Xvfb or ffmpeg missing: the notes say so).
fn browser_latency(quick: bool, notes: &mut Vec<String>) -> Result<Value, String> {
    let exe = target_dir().join("release/browser-latency");
    let mut cmd = Command::new(&exe);
    cmd.arg(target_dir().join("release/framewire"));
    cmd.args(["--seconds", if quick { "3" } else { "8" }]);
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    let why = match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) if o.status.success() => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            match v.get("skipped") {
                None => return Ok(v),
                Some(why) => format!(
                    "browser-latency skipped: {}; the browser rows are left out (Debian: \
                     apt-get install chromium xvfb ffmpeg)",
                    why.as_str().unwrap_or("no reason given")
                ),
            }
        }
        Ok(o) => format!("browser-latency failed ({})", o.status),
        Err(e) => format!("cannot run {}: {e}", exe.display()),
    };
    notes.push(why.clone());
    Err(why)
}

/// Bench-harness's narrow-link on the table's cases, one at a time, with the release
/// `framewire` binary: 5 s of streaming each, after a 3 s warm-up with adaptation on (3 s with
/// `--quick`).
fn narrow_link(quick: bool, notes: &mut Vec<String>) -> LinkRuns {
    let exe = target_dir().join("release/narrow-link");
    let mut cmd = Command::new(&exe);
    cmd.arg(target_dir().join("release/framewire"));
    if quick {
        cmd.arg("--quick");
    }
    cmd.args(link_cases(ROWS).into_iter().map(LinkCase::arg));
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) => {
            if !o.status.success() {
                notes.push(format!("narrow-link failed ({})", o.status));
            }
            link_runs(&String::from_utf8_lossy(&o.stdout), notes)
        }
        Err(e) => {
            notes.push(format!("cannot run {}: {e}", exe.display()));
            LinkRuns::Measured(Vec::new())
        }
    }
}

/// Narrow-link's output, one JSON object a line: `{"unavailable": REASON}` where netbed cannot
/// make namespaces, else one object per case; a case that failed is noted.
fn link_runs(stdout: &str, notes: &mut Vec<String>) -> LinkRuns {
    let mut results = Vec::new();
    for v in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if let Some(why) = v.get("unavailable") {
            let why = why.as_str().unwrap_or("no reason given");
            return LinkRuns::Unavailable(why.to_string());
        }
        if let Some(e) = v.get("error") {
            notes.push(format!(
                "narrow-link case {} failed: {}",
                v["case"].as_str().unwrap_or("?"),
                e.as_str().unwrap_or_default()
            ));
        }
        results.push(v);
    }
    LinkRuns::Measured(results)
}

/// Everything one run measured, for the table to read.
struct Measurements {
    /// Criterion's results by id.
    crit: BTreeMap<String, Measured>,
    /// OpenCV's median ms by op; `None` where OpenCV could not be set up (the notes say why).
    opencv: Option<BTreeMap<String, f64>>,
    /// The serve pipeline's frames per second, keyed `"<label> <mode>"`.
    pipeline: BTreeMap<String, f64>,
    /// The viewers-fed binary's JSON objects.
    viewers: Vec<Value>,
    /// Whether libjpeg-turbo was built and measured.
    turbo: bool,
    /// The narrow-link cases.
    link: LinkRuns,
    /// browser-latency's JSON object, or why there is none.
    browser: Result<Value, String>,
}

/// What narrow-link gave.
#[derive(Debug)]
enum LinkRuns {
    /// Netbed cannot make namespaces on this machine; why not.
    Unavailable(String),
    /// One JSON object per case (with an `error` where the case failed).
    Measured(Vec<Value>),
}

/// A figure as its source gives it.
#[derive(Clone, Copy)]
enum Raw {
    /// Criterion: ns per iteration, and the bytes per iteration it declared.
    Ns { ns: f64, bytes: Option<u64> },
    /// OpenCV: ms per op.
    Ms(f64),
    /// The pipeline: frames per second.
    Fps(f64),
    /// viewers-fed: a count or a fraction of a core.
    Plain(f64),
}

impl Raw {
    fn bytes(self) -> Option<u64> {
        match self {
            Raw::Ns { bytes, .. } => bytes,
            _ => None,
        }
    }
}

impl Unit {
    /// `raw` in this unit.
    fn of(self, raw: Raw) -> Result<f64, String> {
        Ok(match (raw, self) {
            (Raw::Ns { ns, .. }, Unit::Ns) => ns,
            (Raw::Ns { ns, .. }, Unit::Us) => ns / 1e3,
            (Raw::Ns { ns, .. }, Unit::Ms) => ns / 1e6,
            (Raw::Ns { ns, .. }, Unit::Fps) => 1e9 / ns,
            (Raw::Ns { ns, bytes }, Unit::MBps) => match bytes {
                Some(bytes) => bytes as f64 / ns * 1e3,
                None => return Err("declares no bytes per iteration, which MB/s needs".into()),
            },
            (Raw::Ms(ms), Unit::Ms) => ms,
            (Raw::Ms(ms), Unit::Fps) => 1e3 / ms,
            (Raw::Fps(fps), Unit::Fps) => fps,
            (Raw::Plain(x), Unit::Viewers) => x,
            (Raw::Plain(x), Unit::PctCore) => x * 100.0,
            _ => return Err(format!("cannot be given in {}", self.as_str())),
        })
    }
}

/// Why a figure is not there: what is missing, and which `MayLack` (if any) excuses it.
struct Gap {
    what: String,
    excused_by: Option<MayLack>,
}

impl Gap {
    fn missing(what: String) -> Gap {
        Gap {
            what,
            excused_by: None,
        }
    }
}

impl Measurements {
    /// Whether the renderer bench measured anything (it skips without a GPU adapter).
    fn gpu_measured(&self) -> bool {
        self.crit
            .keys()
            .any(|id| id.split('/').next() == Some(RENDER_GROUP))
    }

    /// The viewers-fed result for (size, mode).
    fn viewers_result(&self, size: &str, mode: &str) -> Option<&Value> {
        self.viewers
            .iter()
            .find(|v| v["size"] == size && v["mode"] == mode)
    }

    /// The narrow-link result of `case`; `Err` says why there is none.
    fn link_result(&self, case: LinkCase) -> Result<&Value, Gap> {
        let name = case.arg();
        match &self.link {
            LinkRuns::Unavailable(_) => Err(Gap {
                what: format!("narrow-link case {name} (netbed cannot make namespaces here)"),
                excused_by: Some(MayLack::WithoutRoot),
            }),
            LinkRuns::Measured(results) => match results.iter().find(|r| r["case"] == name) {
                None => Err(Gap::missing(format!("narrow-link case {name}"))),
                Some(r) => match r.get("error") {
                    Some(e) => Err(Gap::missing(format!(
                        "narrow-link case {name} (it failed: {})",
                        e.as_str().unwrap_or_default()
                    ))),
                    None => Ok(r),
                },
            },
        }
    }

    /// The figure `key` names; `bytes` is what the row's value bench declared, for
    /// `Key::CritSameBytes`.
    fn raw(&self, key: Key, bytes: Option<u64>) -> Result<Raw, Gap> {
        let opencv = |k: &'static str| match &self.opencv {
            None => Err(Gap {
                what: format!("OpenCV op {k:?} (OpenCV not set up)"),
                excused_by: Some(MayLack::WithoutOpenCv),
            }),
            Some(cv) => cv
                .get(k)
                .copied()
                .ok_or_else(|| Gap::missing(Key::OpenCv(k).describe())),
        };
        match key {
            Key::Crit(id) => self
                .crit
                .get(id)
                .map(|m| Raw::Ns {
                    ns: m.ns,
                    bytes: m.bytes,
                })
                .ok_or_else(|| Gap::missing(key.describe())),
            Key::CritSameBytes(prefix) => {
                let Some(bytes) = bytes else {
                    return Err(Gap::missing(format!(
                        "criterion bench {prefix}<bytes>: the value's bench declares no bytes"
                    )));
                };
                let id = format!("{prefix}{bytes}");
                match self.crit.get(&id) {
                    Some(m) => Ok(Raw::Ns {
                        ns: m.ns,
                        bytes: Some(bytes),
                    }),
                    None => Err(Gap::missing(format!("criterion bench {id}"))),
                }
            }
            Key::OpenCv(k) => opencv(k).map(Raw::Ms),
            Key::OpenCvSum(keys) => {
                let mut sum = 0.0;
                for k in keys {
                    sum += opencv(k)?;
                }
                Ok(Raw::Ms(sum))
            }
            Key::Pipeline(label, mode) => self
                .pipeline
                .get(&format!("{label} {mode}"))
                .map(|&fps| Raw::Fps(fps))
                .ok_or_else(|| Gap::missing(key.describe())),
            Key::Viewers(size, mode, field) => {
                let Some(result) = self.viewers_result(size, mode) else {
                    return Err(Gap::missing(format!("viewers-fed result {size} {mode}")));
                };
                let what = key.describe();
                match result.get(field) {
                    Some(Value::Null) => Err(Gap {
                        what,
                        excused_by: Some(MayLack::WhenNull),
                    }),
                    Some(v) => v.as_f64().map(Raw::Plain).ok_or_else(|| Gap::missing(what)),
                    None => Err(Gap::missing(what)),
                }
            }
            Key::Link(case, figure) => self.link_result(case).and_then(|r| {
                r[figure.field()]
                    .as_f64()
                    .map(|v| figure.raw(v))
                    .ok_or_else(|| Gap::missing(key.describe()))
            }),
            Key::Browser(field) => match &self.browser {
                Ok(v) => v[field]
                    .as_f64()
                    .map(Raw::Ms)
                    .ok_or_else(|| Gap::missing(key.describe())),
                Err(_) => Err(Gap {
                    what: key.describe(),
                    excused_by: Some(MayLack::WithoutBrowser),
                }),
            },
        }
    }
}

impl RowSpec {
    /// The row from this run's measurements: `None` where the table lets it be left out here; an
    /// error (what is missing, in words) where a figure it needs is not there.
    fn build(&self, m: &Measurements, gpu: bool) -> Result<Option<Row>, String> {
        let here = match self.may_lack {
            MayLack::WithoutTurbo => m.turbo,
            MayLack::WithoutGpu => gpu,
            MayLack::WithoutBrowser => m.browser.is_ok(),
            MayLack::Never | MayLack::WithoutOpenCv | MayLack::WhenNull | MayLack::WithoutRoot => {
                true
            }
        };
        if !here {
            return Ok(None);
        }
        let raw = match m.raw(self.value, None) {
            Ok(raw) => raw,
            Err(gap) if gap.excused_by == Some(self.may_lack) => {
                return Ok(self.unmeasured());
            }
            Err(gap) => return Err(format!("no result from {}", gap.what)),
        };
        let value = self
            .unit
            .of(raw)
            .map_err(|e| format!("{} {e}", self.value.describe()))?;
        let mut row = Row::new(self.case, value, self.unit.as_str());
        if let Some(b) = self.baseline {
            let base = match m.raw(b.key, raw.bytes()) {
                Ok(base) => Some(
                    self.unit
                        .of(base)
                        .map_err(|e| format!("its baseline, {} {e}", b.key.describe()))?,
                ),
                Err(gap) if gap.excused_by == Some(b.may_lack) => None,
                Err(gap) => {
                    return Err(format!(
                        "its baseline ({}) has no result from {}",
                        b.label, gap.what
                    ));
                }
            };
            row = row.against(b.label, base);
        }
        if let Some((cmp, t)) = self.target {
            row = row.target(cmp, t);
        }
        match self.note {
            Note::None => {}
            Note::Text(text) => row = row.note(text),
            Note::FramesPerSecond => match raw {
                Raw::Ns { ns, .. } => row = row.note(format!("{:.0} frames/s", 1e9 / ns)),
                _ => return Err("a frames/s note needs a criterion value".into()),
            },
            Note::ServerCpu => {
                let Key::Viewers(size, mode, _) = self.value else {
                    return Err("a server CPU note needs a viewers-fed value".into());
                };
                let result = m
                    .viewers_result(size, mode)
                    .ok_or_else(|| format!("no result from viewers-fed result {size} {mode}"))?;
                let n = result["max_viewers"].as_f64().unwrap_or(0.0);
                let capped = if result["capped"].as_bool() == Some(true) {
                    " (the most tried)"
                } else {
                    ""
                };
                row = row.note(format!(
                    "server threads' CPU {:.1}% of a core at {n}{capped}",
                    result["server_cpu_cores"].as_f64().unwrap_or(f64::NAN) * 100.0
                ));
            }
            Note::Rung => {
                let Key::Link(case, _) = self.value else {
                    return Err("a rung note needs a narrow-link value".into());
                };
                let r = m
                    .link_result(case)
                    .map_err(|gap| format!("no result from {}", gap.what))?;
                let changes = r["rung_changes"].as_u64().unwrap_or_default();
                let mut note = format!(
                    "ended on {} ({changes} rung change{}), link {} kbit/s",
                    r["rung"].as_str().unwrap_or("an unnamed rung"),
                    if changes == 1 { "" } else { "s" },
                    r["rate_kbit"]
                );
                if case.adapt {
                    note.push_str(&format!(
                        ", last move {:.1} s after the viewer started",
                        r["settled_ms"].as_f64().unwrap_or(f64::NAN) / 1e3
                    ));
                }
                row = row.note(note);
            }
        }
        Ok(Some(row))
    }

    /// The row where its value may be missing here: left out, or (where that needs root) kept
    /// without a value, its baseline and ratio empty, saying why.
    fn unmeasured(&self) -> Option<Row> {
        if self.may_lack != MayLack::WithoutRoot {
            return None;
        }
        let mut row = Row::not_measured(self.case, self.unit.as_str()).note(NEEDS_ROOT);
        if let Some(b) = self.baseline {
            row = row.against(b.label, None);
        }
        if let Some((cmp, t)) = self.target {
            row = row.target(cmp, t);
        }
        Some(row)
    }
}

/// The summary's rows: `table`'s, in its order, from this run's measurements. A row whose value
/// or baseline has no result fails the whole summary (with one line naming the first such row
/// and what it lacks), unless the table lets it be missing on a machine like this one.
fn build_rows(
    table: &[RowSpec],
    m: &Measurements,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Row>> {
    let gpu = m.gpu_measured();
    if !gpu {
        notes.push(
            "renderer fps not measured: no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
                .into(),
        );
    }
    if let LinkRuns::Unavailable(why) = &m.link {
        notes.push(format!(
            "narrow-link rows not measured: netbed cannot make network namespaces here ({why}); \
             run `cargo xtask bench` as root, with ip, tc (iproute2), nft (nftables) and \
             /dev/net/tun"
        ));
    }
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for spec in table {
        match spec.build(m, gpu) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(what) => missing.push((spec.case, what)),
        }
    }
    if let Some((case, what)) = missing.first() {
        let more = match missing.len() - 1 {
            0 => String::new(),
            1 => " (and 1 more row lacks results)".into(),
            n => format!(" (and {n} more rows lack results)"),
        };
        bail!("summary row {case:?}: {what}{more}; no summary written");
    }
    Ok(rows)
}

fn markdown(rows: &[Row], notes: &[String], quick: bool, build: f64, run: f64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "framewire bench{}: {} rows, measuring took {:.0}s (build {:.0}s)\n\n",
        if quick { " --quick" } else { "" },
        rows.len(),
        run,
        build
    ));
    s.push_str("| case | value | unit | baseline | ratio | target | meets |\n");
    s.push_str("|---|---:|---|---|---:|---|---|\n");
    for r in rows {
        let case = if r.note.is_empty() {
            r.case.clone()
        } else {
            format!("{} ({})", r.case, r.note)
        };
        s.push_str(&format!(
            "| {case} | {} | {} | {} | {} | {} | {} |\n",
            r.value.map(fmt_num).unwrap_or_default(),
            r.unit,
            r.baseline,
            r.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            r.target_text(),
            match r.meets() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        ));
    }
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str(
        "\nratio = value / baseline value, both measured in this run; for ms and us lower is \
         better, for fps, MB/s and viewers higher is better. Narrow-link latency ratios are in \
         frame-times (bytes per frame received / link rate).\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit_results(entries: &[(&str, f64, Option<u64>)]) -> BTreeMap<String, Measured> {
        entries
            .iter()
            .map(|&(id, ns, bytes)| (id.to_string(), Measured { ns, bytes }))
            .collect()
    }

    /// OpenCV's or the pipeline's figures by key.
    fn figures(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    fn row<'a>(rows: &'a [Row], case: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.case == case)
            .unwrap_or_else(|| panic!("no row {case:?}"))
    }

    /// A run that measured every figure `table` names, on a machine with all it needs
    /// (libjpeg-turbo built, a GPU adapter, OpenCV set up): criterion 1000 ns and 1000 bytes per
    /// iteration, everything else 1.
    fn made_up_run(table: &[RowSpec]) -> Measurements {
        let mut m = Measurements {
            crit: BTreeMap::new(),
            opencv: Some(BTreeMap::new()),
            pipeline: BTreeMap::new(),
            viewers: Vec::new(),
            turbo: true,
            link: LinkRuns::Measured(Vec::new()),
            browser: Ok(json!({})),
        };
        let bench = Measured {
            ns: 1000.0,
            bytes: Some(1000),
        };
        for key in table.iter().flat_map(RowSpec::keys) {
            let cv = m.opencv.as_mut().expect("OpenCV set up");
            match key {
                Key::Crit(id) => {
                    m.crit.insert(id.into(), bench);
                }
                Key::CritSameBytes(prefix) => {
                    m.crit.insert(format!("{prefix}1000"), bench);
                }
                Key::OpenCv(k) => {
                    cv.insert(k.into(), 1.0);
                }
                Key::OpenCvSum(ks) => cv.extend(ks.iter().map(|k| (k.to_string(), 1.0))),
                Key::Pipeline(label, mode) => {
                    m.pipeline.insert(format!("{label} {mode}"), 1.0);
                }
                Key::Viewers(size, mode, field) => {
                    let at = match m.viewers_result(size, mode) {
                        Some(_) => m
                            .viewers
                            .iter()
                            .position(|v| v["size"] == size && v["mode"] == mode),
                        None => {
                            m.viewers.push(json!({ "size": size, "mode": mode }));
                            Some(m.viewers.len() - 1)
                        }
                    };
                    m.viewers[at.expect("just found or added")][field] = json!(1.0);
                }
                Key::Link(case, figure) => {
                    let LinkRuns::Measured(results) = &mut m.link else {
                        unreachable!("measured above");
                    };
                    let name = case.arg();
                    let at = match results.iter().position(|r| r["case"] == name) {
                        Some(at) => at,
                        None => {
                            results.push(json!({
                                "case": name,
                                "rung": "640x480@80",
                                "rung_changes": 0,
                                "rate_kbit": 1000,
                                "settled_ms": 0.0,
                            }));
                            results.len() - 1
                        }
                    };
                    results[at][figure.field()] = json!(1.0);
                }
                Key::Browser(field) => {
                    if let Ok(v) = &mut m.browser {
                        v[field] = json!(1.0);
                    }
                }
            }
        }
        m
    }

    /// The one-line error `build_rows` fails with.
    fn error(m: &Measurements) -> String {
        match build_rows(ROWS, m, &mut Vec::new()) {
            Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn each_row_divides_by_its_own_baseline_and_says_whether_it_meets_its_target() {
        let mut m = made_up_run(ROWS);
        // No GPU adapter on this machine.
        m.crit.retain(|id, _| !id.starts_with("render/"));
        m.crit.extend(crit_results(&[
            ("framing/reader/jpeg-320x240", 109.0, Some(14_032)),
            ("framing/memcpy/jpeg-320x240", 100.0, Some(14_032)),
            ("framing/memcpy-then-read/jpeg-320x240", 107.0, Some(14_032)),
            ("framing/reader/jpeg-640x480", 104.0, Some(40_032)),
            ("framing/memcpy/jpeg-640x480", 100.0, Some(40_032)),
            ("resize/area/1920x1080-320x180", 0.4e6, None),
            ("codec/decode/jpeg/320x240", 0.3e6, None),
            ("loopback/framewire/raw/1280x720", 1e6, Some(2_764_832)),
            ("loopback/tcp/2764832", 0.9e6, Some(2_764_832)),
        ]));
        m.opencv.as_mut().expect("OpenCV set up").extend(figures(&[
            ("resize_area:320x180 1920x1080", 1.0),
            ("jpeg_decode:80 320x240", 0.25),
            ("jpeg_encode:80 320x240", 0.25),
            ("resize_area:320x240 640x480", 0.15),
        ]));
        m.pipeline.extend(figures(&[
            ("jpeg 640x480->320 threads", 3400.0),
            ("jpeg 640x480->320 single", 2000.0),
        ]));
        let mut notes = Vec::new();
        let rows = build_rows(ROWS, &m, &mut notes).expect("every row measured");

        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let r = row(&rows, "framing reader jpeg-320x240, 64 KiB reads");
        assert!(close(r.ratio, 1.09) && r.meets() == Some(false));
        let r = row(
            &rows,
            "framing reader jpeg-320x240, vs copy + one header read",
        );
        assert!(
            close(r.ratio, 109.0 / 107.0) && r.meets().is_none(),
            "no target"
        );
        let r = row(&rows, "framing reader jpeg-640x480, 64 KiB reads");
        assert!(close(r.ratio, 1.04) && r.meets() == Some(true));
        // Resize 1920x1080 area: at least 2x OpenCV, so at most 0.5 of its time.
        let r = row(&rows, "resize area 1920x1080->320x180");
        assert!(close(r.ratio, 0.4) && r.target_text() == "<= 0.5" && r.meets() == Some(true));
        let r = row(&rows, "jpeg decode 320x240 (framewire, pure Rust)");
        assert!(close(r.ratio, 1.2) && r.meets() == Some(true), "target 1.3");
        // Throughput rows: higher is better, so the ratio is ours over theirs in MB/s.
        let r = row(&rows, "loopback raw 1280x720 end to end");
        assert!(close(r.ratio, 0.9) && r.target_text() == ">= 0.8" && r.meets() == Some(true));
        let r = row(&rows, "serve pipeline jpeg 640x480->320, threaded");
        assert!(close(r.ratio, 1.7) && r.meets() == Some(true), "target 1.6");
        let r = row(
            &rows,
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV",
        );
        assert!(close(r.ratio, 3400.0 / 4000.0) && r.meets() == Some(false));
        let r = row(
            &rows,
            "serve pipeline jpeg 640x480->320, threaded vs OpenCV resize + encode",
        );
        assert!(close(r.ratio, 3400.0 / (1e3 / 0.4)) && r.meets().is_none());
        // What this machine cannot measure (no GPU adapter) has no row, and the notes say why.
        // (What was not measured for any other reason fails the summary: see the tests below.)
        assert!(!rows.iter().any(|r| r.case.starts_with("render")));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("renderer fps not measured"))
        );
    }

    #[test]
    fn without_opencv_the_ratio_and_meets_are_empty_and_the_baseline_says_so() {
        let mut m = made_up_run(ROWS);
        m.opencv = None;
        m.crit.extend(crit_results(&[(
            "resize/area/640x480-320x240",
            0.1e6,
            None,
        )]));
        let rows = build_rows(ROWS, &m, &mut Vec::new()).expect("OpenCV may be missing");
        let r = row(&rows, "resize area 640x480->320x240");
        assert_eq!(r.baseline, "OpenCV INTER_AREA: not measured");
        let j = r.to_json();
        assert_eq!((&j["ratio"], &j["meets"]), (&Value::Null, &Value::Null));
        assert_eq!(j["target"], "<= 1");
    }

    #[test]
    fn summary_rows_carry_the_fields_the_issue_names_and_markdown_flags_misses() {
        let r = Row::new("framing reader x", 1.09, "us")
            .against("memcpy", Some(1.0))
            .target(Cmp::AtMost, 1.05);
        let j = r.to_json();
        let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "case", "value", "unit", "baseline", "ratio", "target", "meets",
        ] {
            assert!(keys.contains(&key), "{key} missing from {j}");
        }
        assert_eq!(j["meets"], false);
        assert_eq!(j["baseline"], "memcpy: 1.00 us");
        let md = markdown(&[r], &["a note".into()], true, 1.0, 2.0);
        assert!(md.starts_with("framewire bench --quick: 1 rows"), "{md}");
        assert!(
            md.contains(
                "| framing reader x | 1.09 | us | memcpy: 1.00 us | 1.09 | <= 1.05 | **no** |"
            ),
            "{md}"
        );
        assert!(md.contains("- a note"), "{md}");
    }

    #[test]
    fn criterion_results_are_read_from_this_runs_files_only() {
        let dir = std::env::temp_dir().join(format!("framewire-xtask-crit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |id: &str, median: f64, bytes: Option<u64>| {
            let new = dir.join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            let throughput = bytes.map_or(Value::Null, |b| json!({ "Bytes": b }));
            let bench = json!({ "full_id": id, "throughput": throughput });
            let est = json!({ "median": { "point_estimate": median } });
            std::fs::write(new.join("benchmark.json"), bench.to_string()).unwrap();
            std::fs::write(new.join("estimates.json"), est.to_string()).unwrap();
        };
        write("framing/old", 5.0, None);
        // File times have coarse steps on some file systems: start the run well after.
        let since = SystemTime::now() + std::time::Duration::from_secs(3600);
        let got = criterion_results(&dir, since);
        assert!(
            got.is_empty(),
            "files older than the run are not this run's"
        );
        write("framing/reader/jpeg-320x240", 123.5, Some(14_032));
        let got = criterion_results(&dir, SystemTime::UNIX_EPOCH);
        let m = got["framing/reader/jpeg-320x240"];
        assert_eq!((m.ns, m.bytes), (123.5, Some(14_032)));
        assert_eq!(got.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_with_every_figure_the_table_names_has_every_row_in_the_tables_order() {
        let mut notes = Vec::new();
        let rows = build_rows(ROWS, &made_up_run(ROWS), &mut notes).expect("every row measured");
        let cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
        let table: Vec<&str> = ROWS.iter().map(|r| r.case).collect();
        assert_eq!(cases, table);
        for r in &rows {
            assert!(!r.baseline.ends_with("not measured"), "{}", r.case);
            assert_eq!(r.ratio.is_some(), !r.baseline.is_empty(), "{}", r.case);
        }
        assert!(notes.is_empty(), "{notes:?}");
        // Rows are found by their case (here and by whoever reads summary.json).
        let mut unique = table.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), table.len(), "two rows share a case");
    }

    #[test]
    fn every_id_in_the_table_is_one_that_a_run_produces() {
        let groups: Vec<&str> = BENCHES.iter().map(|&(_, _, group)| group).collect();
        // What opencv_micro.py and viewers-fed print.
        let opencv_ops = ["resize_area", "resize_linear", "jpeg_encode", "jpeg_decode"];
        let viewers_sizes = ["320x240", "640x480"];
        let viewers_modes = ["once", "per-viewer", "http"];
        let viewers_fields = ["max_viewers", "server_cpu_per_viewer"];
        for spec in ROWS {
            let case = spec.case;
            let turbo = spec.may_lack == MayLack::WithoutTurbo;
            for key in spec.keys() {
                match key {
                    Key::Crit(id) | Key::CritSameBytes(id) => {
                        let group = id.split('/').next().unwrap_or_default();
                        assert!(groups.contains(&group), "{case}: {id} is no bench's");
                        // Only the turbojpeg run gives libjpeg-turbo ids; only with a GPU
                        // adapter does the renderer give any.
                        assert!(!id.contains(TURBO_FILTER) || turbo, "{case}: {id}");
                        assert!(
                            group != RENDER_GROUP || spec.may_lack == MayLack::WithoutGpu,
                            "{case}: {id}"
                        );
                    }
                    Key::OpenCv(k) => assert!(
                        opencv_op(k).is_some_and(|(op, _)| opencv_ops
                            .contains(&op.split(':').next().unwrap_or_default())),
                        "{case}: OpenCV op {k:?}"
                    ),
                    Key::OpenCvSum(ks) => {
                        for k in ks {
                            assert!(opencv_op(k).is_some(), "{case}: OpenCV op {k:?}");
                        }
                    }
                    Key::Pipeline(label, mode) => {
                        let run = PIPELINE.iter().find(|c| c.label == label);
                        assert!(run.is_some_and(|c| c.turbo == turbo), "{case}: {label}");
                        assert!(PIPELINE_MODES.iter().any(|&(m, _)| m == mode), "{mode}");
                    }
                    Key::Viewers(size, mode, field) => assert!(
                        viewers_sizes.contains(&size)
                            && viewers_modes.contains(&mode)
                            && viewers_fields.contains(&field),
                        "{case}: viewers-fed {size} {mode} {field}"
                    ),
                    // Narrow-link runs the cases the table names (`link_cases`); what each
                    // gives is in its own test below.
                    // The lossy case: a link without a rate limit, named by its loss.
                    Key::Link(c, figure) if c.loss > 0 => assert!(
                        c.share == 0
                            && !c.adapt
                            && case.contains(&format!(
                                "lossy link {} ms RTT + {}% loss, udp",
                                c.rtt_ms, c.loss
                            ))
                            && !matches!(figure, LinkFigure::Settled | LinkFigure::Warmup),
                        "{case}: narrow-link {} {figure:?}",
                        c.arg()
                    ),
                    Key::Link(c, figure) => assert!(
                        (1..=100).contains(&c.share)
                            && case.contains(&format!("narrow link {}%", c.share))
                            && case.contains(if c.adapt {
                                "adaptation on"
                            } else {
                                "adaptation off"
                            })
                            && (c.rtt_ms == 0 || case.contains(&format!("{} ms RTT", c.rtt_ms)))
                            && (c.adapt
                                || !matches!(figure, LinkFigure::Settled | LinkFigure::Warmup)),
                        "{case}: narrow-link {} {figure:?}",
                        c.arg()
                    ),
                    // What browser-latency prints.
                    Key::Browser(field) => assert!(
                        ["page", "img", "img_late", "page_own"]
                            .iter()
                            .any(|case| field == format!("{case}_p50_ms")),
                        "{case}: browser-latency {field}"
                    ),
                }
            }
            // Each excuse names what this machine can lack for that kind of figure.
            let excuses = |key: Key, may_lack: MayLack| match may_lack {
                MayLack::Never => true,
                MayLack::WithoutOpenCv => matches!(key, Key::OpenCv(_) | Key::OpenCvSum(_)),
                MayLack::WhenNull => matches!(key, Key::Viewers(..)),
                MayLack::WithoutTurbo => matches!(key, Key::Crit(_) | Key::Pipeline(..)),
                MayLack::WithoutGpu => matches!(key, Key::Crit(_)),
                MayLack::WithoutRoot => matches!(key, Key::Link(..)),
                MayLack::WithoutBrowser => matches!(key, Key::Browser(_)),
            };
            assert!(excuses(spec.value, spec.may_lack), "{case}");
            if let Some(b) = spec.baseline {
                let row_only = matches!(b.may_lack, MayLack::WithoutTurbo | MayLack::WithoutGpu);
                assert!(excuses(b.key, b.may_lack) && !row_only, "{case}: baseline");
            }
        }
    }

    #[test]
    fn a_missing_bench_result_fails_the_summary_naming_the_row_and_the_id() {
        // A renamed or failed bench: the row is an error, not a row left out.
        let mut m = made_up_run(ROWS);
        m.crit.remove("resize/bilinear/640x480-320x240");
        assert_eq!(
            error(&m),
            "summary row \"resize bilinear 640x480->320x240\": no result from criterion bench \
             resize/bilinear/640x480-320x240; no summary written"
        );
        // A missing baseline too; the first row lacking it is named, the others counted.
        let mut m = made_up_run(ROWS);
        m.crit.remove("codec/memcpy/320x240");
        assert_eq!(
            error(&m),
            "summary row \"raw encode 320x240\": its baseline (memcpy of the frame) has no \
             result from criterion bench codec/memcpy/320x240 (and 3 more rows lack results); \
             no summary written"
        );
        // Loopback's plain-TCP floor is named by the message size.
        let mut m = made_up_run(ROWS);
        m.crit.extend(crit_results(&[(
            "loopback/framewire/raw/1280x720",
            1e6,
            Some(2_764_832),
        )]));
        let e = error(&m);
        assert!(
            e.contains("\"loopback raw 1280x720 end to end\"")
                && e.contains("criterion bench loopback/tcp/2764832"),
            "{e}"
        );
        // MB/s needs the bytes per iteration the bench declares.
        let mut m = made_up_run(ROWS);
        m.crit.extend(crit_results(&[(
            "loopback/framewire/jpeg/640x480",
            1e6,
            None,
        )]));
        let e = error(&m);
        assert!(
            e.contains(
                "criterion bench loopback/framewire/jpeg/640x480 declares no bytes per iteration"
            ),
            "{e}"
        );
        // The serve pipeline, viewers-fed, and OpenCV where it was set up.
        let mut m = made_up_run(ROWS);
        m.pipeline.remove("jpeg 640x480 single");
        let e = error(&m);
        assert!(
            e.contains("\"serve pipeline jpeg 640x480, threaded\"")
                && e.contains("serve pipeline run \"jpeg 640x480 single\""),
            "{e}"
        );
        let mut m = made_up_run(ROWS);
        m.viewers.clear();
        let e = error(&m);
        assert!(
            e.contains("\"viewers fed, jpeg 320x240 30 fps, all >= 29 fps, encode once\"")
                && e.contains("viewers-fed result 320x240 once"),
            "{e}"
        );
        let mut m = made_up_run(ROWS);
        if let Some(cv) = m.opencv.as_mut() {
            cv.remove("jpeg_decode:80 1920x1080");
        }
        let e = error(&m);
        assert!(
            e.contains("\"jpeg decode 1920x1080 (framewire, pure Rust)\"")
                && e.contains("OpenCV op \"jpeg_decode:80 1920x1080\""),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn rows_are_left_out_only_for_what_the_table_lets_this_machine_lack() {
        // No cmake or nasm: no libjpeg-turbo, so its rows are left out.
        let mut m = made_up_run(ROWS);
        m.turbo = false;
        m.crit.retain(|id, _| !id.contains(TURBO_FILTER));
        m.pipeline
            .retain(|label, _| !label.starts_with("jpeg-turbo"));
        let rows = build_rows(ROWS, &m, &mut Vec::new()).expect("turbo may be missing");
        let turbo_rows = ROWS
            .iter()
            .filter(|r| r.may_lack == MayLack::WithoutTurbo)
            .count();
        assert_eq!(rows.len(), ROWS.len() - turbo_rows);
        assert!(!rows.iter().any(|r| r.case.contains("turbo")));
        // Where it was built, its rows are required.
        m.turbo = true;
        let e = error(&m);
        assert!(
            e.contains("(libjpeg-turbo, --features turbojpeg)")
                && e.contains("criterion bench codec/encode/jpeg-turbo/320x240"),
            "{e}"
        );

        // The renderer measured something, so there is an adapter: every render row is required.
        let mut m = made_up_run(ROWS);
        m.crit.remove("render/640x480/rgba8");
        let e = error(&m);
        assert!(
            e.contains("\"render 640x480/rgba8 (upload+draw+read back)\""),
            "{e}"
        );

        // viewers-fed's null (no viewer count kept 29 fps): no CPU per viewer, and a zero
        // viewer count is no baseline.
        let mut m = made_up_run(ROWS);
        for v in m.viewers.iter_mut().filter(|v| v["size"] == "640x480") {
            v["max_viewers"] = json!(0);
            v["server_cpu_per_viewer"] = Value::Null;
        }
        let rows = build_rows(ROWS, &m, &mut Vec::new()).expect("nulls are allowed there");
        assert!(
            !rows
                .iter()
                .any(|r| r.case.starts_with("server CPU per viewer, jpeg 640x480"))
        );
        let r = row(
            &rows,
            "viewers fed, jpeg 640x480 30 fps, all >= 29 fps, encode once",
        );
        assert_eq!(r.baseline, "one encode per viewer: not measured");
        // A null viewer count is not allowed.
        m.viewers[0]["max_viewers"] = Value::Null;
        let e = error(&m);
        assert!(e.contains("viewers-fed max_viewers of 320x240 once"), "{e}");
    }

    /// The narrow-link results of `m` (a made-up run measures them all).
    fn link_results(m: &mut Measurements) -> &mut Vec<Value> {
        match &mut m.link {
            LinkRuns::Measured(results) => results,
            LinkRuns::Unavailable(_) => panic!("made-up runs have namespaces"),
        }
    }

    #[test]
    fn narrow_link_rows_give_latency_in_frame_times_and_fps_as_a_share() {
        let mut m = made_up_run(ROWS);
        let results = link_results(&mut m);
        results.retain(|r| r["case"] != "off:30:0" && r["case"] != "on:30:0");
        // What narrow-link prints (fields it has and the table does not read left out).
        results.push(json!({
            "case": "off:30:0", "adapt": "off", "share_percent": 30, "rtt_ms": 0,
            "rate_kbit": 1440, "frame_ms": 40.0, "capacity_fps": 25.0, "source_fps": 30.0,
            "fps": 23.75, "p50_ms": 50.0, "p99_ms": 200.0, "rung": "640x480@80",
            "rung_changes": 0, "moves": 0, "settled_ms": 0.0, "warmup_ms": 0.0,
        }));
        results.push(json!({
            "case": "on:30:0", "adapt": "on", "share_percent": 30, "rtt_ms": 0,
            "rate_kbit": 1440, "frame_ms": 8.0, "capacity_fps": 125.0, "source_fps": 30.0,
            "fps": 24.0, "p50_ms": 12.0, "p99_ms": 30.0, "rung": "320x240@50",
            "rung_changes": 2, "moves": 2, "settled_ms": 1400.0, "warmup_ms": 3000.0,
        }));
        let mut notes = Vec::new();
        let rows = build_rows(ROWS, &m, &mut notes).expect("every row measured");
        assert!(notes.is_empty(), "{notes:?}");
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);

        // Adaptation off: latency over one frame-time, fps over what the link carries.
        let r = row(&rows, "narrow link 30%, adaptation off: p50 latency");
        assert_eq!((r.value, r.unit), (Some(50.0), "ms"));
        assert_eq!(
            r.baseline,
            "one frame-time (bytes per frame received / link rate): 40.0 ms"
        );
        assert!(close(r.ratio, 1.25) && r.target_text() == "<= 2" && r.meets() == Some(true));
        assert_eq!(
            r.note,
            "ended on 640x480@80 (0 rung changes), link 1440 kbit/s"
        );
        let r = row(&rows, "narrow link 30%, adaptation off: p99 latency");
        assert!(close(r.ratio, 5.0) && r.target_text() == "<= 3" && r.meets() == Some(false));
        let r = row(
            &rows,
            "narrow link 30%, adaptation off: fps of what the link carries",
        );
        assert_eq!(
            r.baseline,
            "what the link carries of frames that size: 25.0 fps"
        );
        assert!(close(r.ratio, 0.95) && r.target_text() == ">= 0.9" && r.meets() == Some(true));

        // Adaptation on: the frame-time of the rung received; fps over the source's 30.
        let case = "narrow link 30%, adaptation on, after 3 s: p50 latency";
        let r = row(&rows, case);
        assert!(close(r.ratio, 1.5) && r.meets() == Some(true));
        assert_eq!(
            r.note,
            "ended on 320x240@50 (2 rung changes), link 1440 kbit/s, last move 1.4 s after the \
             viewer started"
        );
        let r = row(
            &rows,
            "narrow link 30%, adaptation on, after 3 s: p99 latency",
        );
        assert!(close(r.ratio, 3.75) && r.meets() == Some(false));
        let fps_case =
            "narrow link 30%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)";
        let r = row(&rows, fps_case);
        assert_eq!(r.baseline, "the source's 30 fps: 30.0 fps");
        assert!(close(r.ratio, 0.8) && r.target_text() == ">= 0.833" && r.meets() == Some(false));
        let r = row(
            &rows,
            "narrow link 30%, adaptation on: last move along the ladder",
        );
        assert_eq!(r.baseline, "the viewer's 3 s warm-up: 3000 ms");
        assert!(close(r.ratio, 1400.0 / 3000.0) && r.meets() == Some(true));
        // 25 fps exactly meets the target.
        let results = link_results(&mut m);
        let on = results.iter_mut().find(|r| r["case"] == "on:30:0").unwrap();
        on["fps"] = json!(25.0);
        let rows = build_rows(ROWS, &m, &mut notes).expect("every row measured");
        assert_eq!(row(&rows, fps_case).meets(), Some(true));
        let md = markdown(&rows, &[], false, 1.0, 2.0);
        assert!(
            md.contains(&format!(
                "| {case} (ended on 320x240@50 (2 rung changes), link 1440 kbit/s, last move 1.4 \
                 s after the viewer started) | 12.0 | ms | one frame-time (bytes per frame \
                 received / link rate): 8.00 ms | 1.50 | <= 2 | yes |"
            )),
            "{md}"
        );
    }

    #[test]
    fn without_root_the_narrow_link_rows_stay_without_values_saying_they_need_root() {
        let mut m = made_up_run(ROWS);
        let mut notes = Vec::new();
        let out = r#"{"unavailable":"not root: needs CAP_NET_ADMIN and CAP_SYS_ADMIN"}"#;
        m.link = link_runs(&format!("{out}\n"), &mut notes);
        let rows = build_rows(ROWS, &m, &mut notes).expect("namespaces may be missing");
        // Every row is there; the narrow-link ones have no value, ratio or verdict.
        assert_eq!(rows.len(), ROWS.len());
        let link_rows: Vec<&Row> = rows
            .iter()
            .filter(|r| r.case.starts_with("narrow link") || r.case.starts_with("lossy link"))
            .collect();
        let needs_root = ROWS
            .iter()
            .filter(|s| s.may_lack == MayLack::WithoutRoot)
            .count();
        assert_eq!(link_rows.len(), needs_root);
        assert_eq!(
            needs_root, 24,
            "6 cases: 3 rows each, 4 with adaptation on; 2 rows of the lossy cases; 2 of the lossy call"
        );
        for r in link_rows {
            assert_eq!(r.note, "not measured: needs root", "{}", r.case);
            assert!(r.value.is_none() && r.ratio.is_none(), "{}", r.case);
            assert!(r.baseline.ends_with(": not measured"), "{}", r.case);
            assert!(
                !r.target_text().is_empty(),
                "{}: the target still shows",
                r.case
            );
        }
        let j = row(
            &rows,
            "narrow link 30%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)",
        )
        .to_json();
        assert_eq!(
            (&j["value"], &j["ratio"], &j["meets"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
        assert_eq!(
            (&j["note"], &j["target"], &j["baseline"]),
            (
                &json!("not measured: needs root"),
                &json!(">= 0.833"),
                &json!("the source's 30 fps: not measured")
            )
        );
        let md = markdown(&rows, &notes, false, 1.0, 2.0);
        assert!(
            md.contains(
                "| narrow link 60%, adaptation off: p50 latency (not measured: needs root) |  | \
                 ms | one frame-time (bytes per frame received / link rate): not measured |  | \
                 <= 2 |  |"
            ),
            "{md}"
        );
        // The run's notes say what exactly is missing.
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("narrow-link rows not measured")
                    && n.contains("not root: needs CAP_NET_ADMIN and CAP_SYS_ADMIN")),
            "{notes:?}"
        );
        // Other rows are measured as ever.
        assert!(row(&rows, "framing header encode").value.is_some());
    }

    #[test]
    fn a_narrow_link_case_without_a_result_fails_the_summary_naming_the_row_and_why() {
        // A case that failed: narrow-link says why, the summary names the first row it lacks.
        let mut m = made_up_run(ROWS);
        let out: String = link_results(&mut m)
            .iter()
            .map(|r| match r["case"].as_str() {
                Some("off:60:0") => {
                    json!({"case": "off:60:0", "error": "view failed: connection refused"})
                }
                _ => r.clone(),
            })
            .map(|r| format!("{r}\n"))
            .collect();
        let mut notes = Vec::new();
        m.link = link_runs(&out, &mut notes);
        assert_eq!(
            notes,
            ["narrow-link case off:60:0 failed: view failed: connection refused"]
        );
        assert_eq!(
            error(&m),
            "summary row \"narrow link 60%, adaptation off: p50 latency\": no result from \
             narrow-link case off:60:0 (it failed: view failed: connection refused) (and 2 more \
             rows lack results); no summary written"
        );
        // narrow-link gave nothing (it could not run): with namespaces there, that is an error.
        m.link = link_runs("", &mut notes);
        let e = error(&m);
        assert!(
            e.contains("no result from narrow-link case off:60:0")
                && e.contains("(and 23 more rows lack results)"),
            "{e}"
        );
        // A figure missing from a case's result.
        let mut m = made_up_run(ROWS);
        let results = link_results(&mut m);
        let on = results.iter_mut().find(|r| r["case"] == "on:60:0").unwrap();
        on.as_object_mut().unwrap().remove("source_fps");
        let e = error(&m);
        assert!(
            e.contains(
                "its baseline (the source's 30 fps) has no result from narrow-link \
                 source_fps of case on:60:0"
            ),
            "{e}"
        );
    }

    #[test]
    fn narrow_link_runs_each_case_the_table_names_once_in_its_order() {
        let cases: Vec<String> = link_cases(ROWS).into_iter().map(LinkCase::arg).collect();
        assert_eq!(
            cases,
            [
                "off:60:0",
                "off:30:0",
                "off:60:40",
                "off:30:40",
                "on:60:0",
                "on:30:0",
                "off:0:100:udp:1",
                "off:0:100:tcp:1",
                "off:0:100:udpchat:1"
            ]
        );
    }

    #[test]
    fn opencv_runs_the_ops_the_table_names_smallest_input_first() {
        let jobs = opencv_jobs(ROWS);
        assert_eq!(
            jobs,
            [
                ((320, 240), vec!["jpeg_encode:80", "jpeg_decode:80"]),
                (
                    (640, 480),
                    vec![
                        "resize_area:320x240",
                        "resize_linear:320x240",
                        "jpeg_encode:80",
                        "jpeg_decode:80"
                    ]
                ),
                (
                    (1280, 720),
                    vec!["resize_area:320x180", "resize_linear:320x180"]
                ),
                (
                    (1920, 1080),
                    vec![
                        "resize_area:320x180",
                        "resize_linear:320x180",
                        "jpeg_encode:80",
                        "jpeg_decode:80"
                    ]
                ),
            ]
        );
    }
}
