//! What a row of the summary is made of: where its value and baseline come from (`Key`), its
//! unit, what this machine may lack, its note; `RowSpec` and its builders.

use super::*;

// The summary's rows, all from one table: `table()` says, for every row in its order, where its value
// and its baseline come from, its unit, target and note, and when (if ever) it may be left out.
// A row whose figure is missing for any other reason fails the run, naming the row and the id.

/// Where a figure comes from in this run's measurements.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
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
    /// A figure of h264-vs-x264's result, by JSON pointer (`/speed/640x480/encode_fps`).
    H264(&'static str),
    /// A figure of media-server's result, by JSON pointer (`/rtmp/10/cpu_core`).
    MediaServer(&'static str),
    /// A figure of browser-link's result, by JSON pointer (`/p50_ms`).
    BrowserLink(&'static str),
    /// A figure of python/bench/against_imagezmq.py's result, by JSON pointer
    /// (`/640x480/framewire_raw_fps`).
    Python(&'static str),
}

/// One case of bench-harness's `narrow-link`: `framewire serve` (640x480 JPEG at 30 fps) in one
/// netbed namespace and `framewire view` in the other, through a link that carries `share`
/// percent of the top rung's stream and adds `rtt_ms` of round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkCase {
    /// `serve --adapt on` (the viewer moves along the quality ladder; measured after a 3 s
    /// warm-up) or `off` (it stays on the top rung).
    pub(crate) adapt: bool,
    /// 0: no rate limit (a lossy case).
    pub(crate) share: u32,
    pub(crate) rtt_ms: u32,
    /// framewire over UDP (`--transport udp`) rather than TCP.
    pub(crate) udp: bool,
    /// A two-way call (`chat --transport udp`, both directions at once) rather than serve and
    /// view; its figures are the worse direction's.
    pub(crate) chat: bool,
    /// Random loss each way, percent.
    pub(crate) loss: u32,
    /// The loss is each sender's own firewall refusing its datagrams (`sendto` fails), not the
    /// link dropping them.
    pub(crate) refused: bool,
    /// framewire's H.264 at its default bitrate, through a link sized by JPEG q80's stream
    /// (`narrow-link --codec h264 --link-of jpeg`; across a lossy link without parity or
    /// periodic keyframes, each frame's picture verified).
    pub(crate) h264: bool,
}

impl LinkCase {
    /// The case as narrow-link takes it on its command line and names it in its output.
    pub(crate) fn arg(self) -> String {
        let adapt = if self.adapt { "on" } else { "off" };
        let base = format!("{adapt}:{}:{}", self.share, self.rtt_ms);
        if self.udp || self.loss > 0 {
            let transport = match (self.udp, self.chat) {
                (true, true) => "udpchat",
                (true, false) => "udp",
                _ => "tcp",
            };
            let r = if self.refused { "r" } else { "" };
            format!("{base}:{transport}:{r}{}", self.loss)
        } else {
            base
        }
    }
}

/// A figure of a narrow-link case: a field of its JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkFigure {
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
    /// H.264 across a lossy link: from a lost frame to the next picture (ms).
    Recovery,
}

impl LinkFigure {
    pub(crate) const fn field(self) -> &'static str {
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
            LinkFigure::Recovery => "recovery_ms",
        }
    }

    /// The figure as a raw value: milliseconds or frames per second.
    pub(crate) fn raw(self, v: f64) -> Raw {
        match self {
            LinkFigure::Fps | LinkFigure::Capacity | LinkFigure::Source => Raw::Fps(v),
            LinkFigure::P50
            | LinkFigure::P99
            | LinkFigure::P99Total
            | LinkFigure::FrameTime
            | LinkFigure::Settled
            | LinkFigure::Warmup
            | LinkFigure::Recovery => Raw::Ms(v),
        }
    }
}

impl Key {
    /// The key in words, for errors.
    pub(crate) fn describe(self) -> String {
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
            Key::H264(pointer) => format!("h264-vs-x264 {pointer}"),
            Key::MediaServer(pointer) => format!("media-server {pointer}"),
            Key::BrowserLink(pointer) => format!("browser-link {pointer}"),
            Key::Python(pointer) => format!("against_imagezmq.py {pointer}"),
        }
    }
}

pub(crate) const fn crit(id: &'static str) -> Key {
    Key::Crit(id)
}

pub(crate) const fn cv(key: &'static str) -> Key {
    Key::OpenCv(key)
}

pub(crate) const fn pipe(label: &'static str, mode: &'static str) -> Key {
    Key::Pipeline(label, mode)
}

pub(crate) const fn viewers(size: &'static str, mode: &'static str, field: &'static str) -> Key {
    Key::Viewers(size, mode, field)
}

pub(crate) const fn browser(field: &'static str) -> Key {
    Key::Browser(field)
}

pub(crate) const fn h264(pointer: &'static str) -> Key {
    Key::H264(pointer)
}

pub(crate) const fn media_server(pointer: &'static str) -> Key {
    Key::MediaServer(pointer)
}

pub(crate) const fn browser_link(pointer: &'static str) -> Key {
    Key::BrowserLink(pointer)
}

pub(crate) const fn python(pointer: &'static str) -> Key {
    Key::Python(pointer)
}

/// A narrow-link figure: adaptation on or off, the link's share of the top rung's stream in
/// percent, its added round trip in ms.
pub(crate) const fn link(adapt: bool, share: u32, rtt_ms: u32, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt,
            share,
            rtt_ms,
            udp: false,
            chat: false,
            loss: 0,
            refused: false,
            h264: false,
        },
        figure,
    )
}

/// A figure of H.264 through a narrow link that carries `share` percent of JPEG q80's stream.
pub(crate) const fn h264_link(adapt: bool, share: u32, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt,
            share,
            rtt_ms: 0,
            udp: false,
            chat: false,
            loss: 0,
            refused: false,
            h264: true,
        },
        figure,
    )
}

/// A figure of H.264 over UDP across a link with 1% random loss each way and `rtt_ms` of
/// round trip, no rate limit.
pub(crate) const fn h264_lossy(rtt_ms: u32, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt: false,
            share: 0,
            rtt_ms,
            udp: true,
            chat: false,
            loss: 1,
            refused: false,
            h264: true,
        },
        figure,
    )
}

/// A figure of the lossy case: no rate limit, 100 ms round trip, 1% random loss each way,
/// adaptation off, over UDP or TCP.
pub(crate) const fn lossy(udp: bool, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt: false,
            share: 0,
            rtt_ms: 100,
            udp,
            chat: false,
            loss: 1,
            refused: false,
            h264: false,
        },
        figure,
    )
}

/// A figure of the refusing case: no rate limit, no delay, each sender's firewall refusing 1%
/// of its datagrams (its `sendto` fails), over UDP with adaptation `adapt`.
pub(crate) const fn refused(adapt: bool, figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt,
            share: 0,
            rtt_ms: 0,
            udp: true,
            chat: false,
            loss: 1,
            refused: true,
            h264: false,
        },
        figure,
    )
}

/// A figure of a two-way UDP call across the lossy link (`chat --transport udp`, each side
/// sending): the worse direction's.
pub(crate) const fn lossy_call(figure: LinkFigure) -> Key {
    Key::Link(
        LinkCase {
            adapt: false,
            share: 0,
            rtt_ms: 100,
            udp: true,
            chat: true,
            loss: 1,
            refused: false,
            h264: false,
        },
        figure,
    )
}

/// A row's unit, which also says how a figure is put in it (criterion gives ns, OpenCV ms).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Unit {
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
    /// Bytes (of a frame).
    Bytes,
    /// Megabits per second.
    Mbits,
}

impl Unit {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::Fps => "fps",
            Unit::MBps => "MB/s",
            Unit::Viewers => "viewers",
            Unit::PctCore => "% core",
            Unit::Bytes => "bytes",
            Unit::Mbits => "Mbit/s",
        }
    }
}

/// When a row's value or its baseline may be missing without failing the run. Every case here is
/// something this machine lacks, and the notes say so; a figure missing for any other reason (a
/// renamed or failed bench) fails the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MayLack {
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
    /// Where a C++ compiler (H.264's build), ffmpeg with libx264 or the photograph is missing
    /// (h264-vs-x264 skips): the row is left out, and the notes say why.
    WithoutH264,
    /// Where nginx with nginx-rtmp, ffmpeg or H.264 is missing (media-server skips): the row is
    /// left out, and the notes say why.
    WithoutMediaServer,
    /// Where chromium, Xvfb, ffmpeg, xdotool, netbed's namespaces (root) or H.264 is missing
    /// (browser-link skips): the row is left out, and the notes say why.
    WithoutBrowserLink,
    /// Where python3 with venv or pip's packages are missing (the Python package is not built
    /// or imagezmq is not installed): the row is left out, and the notes say why.
    WithoutPython,
}

/// The note of a row that needs netbed's namespaces where they cannot be made.
pub(crate) const NEEDS_ROOT: &str = "not measured: needs root";

/// What a row's note says.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Note {
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
pub(crate) struct Baseline {
    /// What the ratio divides by, in words.
    pub(crate) label: &'static str,
    pub(crate) key: Key,
    pub(crate) may_lack: MayLack,
}

/// One row of the summary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowSpec {
    pub(crate) case: &'static str,
    pub(crate) value: Key,
    pub(crate) unit: Unit,
    pub(crate) may_lack: MayLack,
    pub(crate) baseline: Option<Baseline>,
    /// The target on the ratio.
    pub(crate) target: Option<(Cmp, f64)>,
    pub(crate) note: Note,
}

/// A row with a value and nothing else; the methods below add the rest.
pub(crate) const fn row(case: &'static str, value: Key, unit: Unit) -> RowSpec {
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
    pub(crate) const fn optional(self, may_lack: MayLack) -> RowSpec {
        RowSpec { may_lack, ..self }
    }

    /// A baseline that is always measured.
    pub(crate) const fn vs(self, label: &'static str, key: Key) -> RowSpec {
        self.vs_optional(label, key, MayLack::Never)
    }

    /// A baseline that reads "not measured" where this machine lacks what `may_lack` names.
    pub(crate) const fn vs_optional(
        self,
        label: &'static str,
        key: Key,
        may_lack: MayLack,
    ) -> RowSpec {
        RowSpec {
            baseline: Some(Baseline {
                label,
                key,
                may_lack,
            }),
            ..self
        }
    }

    pub(crate) const fn at_most(self, t: f64) -> RowSpec {
        RowSpec {
            target: Some((Cmp::AtMost, t)),
            ..self
        }
    }

    pub(crate) const fn at_least(self, t: f64) -> RowSpec {
        RowSpec {
            target: Some((Cmp::AtLeast, t)),
            ..self
        }
    }

    pub(crate) const fn note(self, text: &'static str) -> RowSpec {
        RowSpec {
            note: Note::Text(text),
            ..self
        }
    }

    pub(crate) const fn note_of(self, note: Note) -> RowSpec {
        RowSpec { note, ..self }
    }

    /// The keys of the value and the baseline.
    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> {
        std::iter::once(self.value).chain(self.baseline.map(|b| b.key))
    }
}

// Narrow-link rows, one case's kind at a time: the ratio is the latency in frame-times (p50 at
// most 2, p99 at most 3), the frame rate as a share of what the link carries (at least 0.9) or,
// with adaptation on, of the source's 30 fps (at least 25 of 30), and the viewer's last move
// along the ladder within its 3 s warm-up.

/// A narrow-link latency row (`figure` is `P50` or `P99`): in frame-times, at most
/// `frame_times`.
pub(crate) const fn link_latency(
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
pub(crate) const fn link_p50(case: &'static str, adapt: bool, share: u32, rtt_ms: u32) -> RowSpec {
    link_latency(case, (adapt, share, rtt_ms), LinkFigure::P50, 2.0)
}

/// p99 latency (minus the added round trip) of a narrow-link case, at most 3 frame-times.
pub(crate) const fn link_p99(case: &'static str, adapt: bool, share: u32, rtt_ms: u32) -> RowSpec {
    link_latency(case, (adapt, share, rtt_ms), LinkFigure::P99, 3.0)
}

/// Frames per second received with adaptation off, at least 0.9 of what the link carries.
pub(crate) const fn link_fps_of_capacity(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
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
pub(crate) const fn link_fps_of_source(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
    row(case, link(true, share, rtt_ms, LinkFigure::Fps), Unit::Fps)
        .optional(MayLack::WithoutRoot)
        .vs(SOURCE_FPS, link(true, share, rtt_ms, LinkFigure::Source))
        .at_least(25.0 / 30.0)
        .note_of(Note::Rung)
}

/// With adaptation on, the viewer's last move along the ladder: within its 3 s warm-up.
pub(crate) const fn link_settled(case: &'static str, share: u32, rtt_ms: u32) -> RowSpec {
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
