//! What a receiver measures: frames, bytes, drops, order, capture-to-decoded latency; a live
//! line for a terminal and one report at exit (the `--stats json` object).

use std::time::{Duration, Instant};

use framewire_core::{PeerReport, Rendition};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Running totals of one receive session.
#[derive(Debug)]
pub struct Stats {
    started: Option<Instant>,
    last: Option<Instant>,
    frames: u64,
    bytes: u64,
    dropped: u64,
    out_of_order: u64,
    repeated: u64,
    keyframes: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    /// The previous frame's number on the current connection (a new connection may restart at 0).
    prev_seq: Option<u64>,
    reconnects: u64,
    /// Microseconds from capture to decoded.
    latency: Histogram<u64>,
    pattern_errors: Option<u64>,
    /// The rendition frames arrive in now, and how often the sender moved it.
    rung: Option<Rendition>,
    rung_changes: u64,
    window: Window,
    /// Since the last [`Stats::peer_report`]: frames, and their latencies summed.
    report_since: Instant,
    report_frames: u64,
    report_latency_us: u64,
}

/// The last second or so, for the live line.
#[derive(Debug)]
struct Window {
    since: Instant,
    frames: u64,
    bytes: u64,
}

/// The `--stats json` object.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Frames decoded (keepalive repeats not counted).
    pub frames: u64,
    /// Frames per second between the first and the last frame.
    pub fps: f64,
    /// Bytes received, headers included.
    pub bytes: u64,
    /// Megabits per second between the first and the last frame.
    pub mbit_per_s: f64,
    /// The stream's codec.
    pub codec: String,
    /// The stream's width in pixels.
    pub width: u32,
    /// The stream's height in pixels.
    pub height: u32,
    /// Frames decoded that decode on their own: every frame of an intra-only codec, an
    /// inter-frame codec's keyframes.
    pub keyframes: u64,
    /// Frames the sender numbered that never arrived (gaps in `seq`).
    pub dropped: u64,
    /// Frames that arrived with a number lower than one already seen.
    pub out_of_order: u64,
    /// The previous frame again, same number: `serve`'s keepalive while its camera is gone.
    /// Not counted in `frames` or latency (its capture time is old).
    pub repeated: u64,
    /// The first frame's number.
    pub first_seq: Option<u64>,
    /// The last frame's number.
    pub last_seq: Option<u64>,
    /// Connections made again after one was lost.
    pub reconnects: u64,
    /// The rendition of the last frames, `WxH@quality` (a JPEG's quality) or `WxH@codec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rung: Option<String>,
    /// Times the sender moved this viewer to another rendition (by what its link carries).
    pub rung_changes: u64,
    /// Capture to decoded.
    pub latency_ms: Latency,
    /// Frames whose pixels did not carry the test pattern's number their header named (only
    /// when checking).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_errors: Option<u64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Empty totals; `check_pattern` adds `pattern_errors` to the report.
    pub fn new(check_pattern: bool) -> Stats {
        Stats {
            started: None,
            last: None,
            frames: 0,
            bytes: 0,
            dropped: 0,
            out_of_order: 0,
            repeated: 0,
            keyframes: 0,
            first_seq: None,
            last_seq: None,
            prev_seq: None,
            reconnects: 0,
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            pattern_errors: check_pattern.then_some(0),
            rung: None,
            rung_changes: 0,
            window: Window {
                since: Instant::now(),
                frames: 0,
                bytes: 0,
            },
            report_since: Instant::now(),
            report_frames: 0,
            report_latency_us: 0,
        }
    }

    /// The frame just recorded decodes on its own.
    pub fn keyframe(&mut self) {
        self.keyframes += 1;
    }

    /// One frame decoded: `bytes` on the wire, latency from its capture stamp to `now_us`.
    /// The frame just recorded, again (same number on the same connection), is a keepalive: only
    /// its bytes and `repeated` count.
    pub fn record(&mut self, seq: u64, capture_us: u64, bytes: u64, now_us: u64) {
        if self.prev_seq.is_some() && self.last_seq == Some(seq) {
            self.repeated += 1;
            self.bytes += bytes;
            self.window.bytes += bytes;
            return;
        }
        let now = Instant::now();
        if self.started.is_none() {
            self.started = Some(now);
            self.window.since = now;
        }
        self.last = Some(now);
        self.frames += 1;
        self.bytes += bytes;
        self.window.frames += 1;
        self.window.bytes += bytes;
        match self.prev_seq {
            Some(prev) if seq > prev => self.dropped += seq - prev - 1,
            Some(_) => self.out_of_order += 1,
            None => {}
        }
        self.first_seq.get_or_insert(seq);
        self.prev_seq = Some(self.prev_seq.map_or(seq, |p| p.max(seq)));
        self.last_seq = Some(seq);
        let latency_us = now_us.saturating_sub(capture_us).max(1);
        self.latency.saturating_record(latency_us);
        self.report_frames += 1;
        self.report_latency_us = self.report_latency_us.saturating_add(latency_us);
    }

    /// At most once per `every`: frames per second and mean latency since the last time, for
    /// the sender (a two-way call's report).
    pub fn peer_report(&mut self, every: Duration) -> Option<PeerReport> {
        let elapsed = self.report_since.elapsed();
        if elapsed < every {
            return None;
        }
        let frames = self.report_frames;
        let report = PeerReport {
            fps: frames as f64 / elapsed.as_secs_f64(),
            latency: (frames > 0).then(|| Duration::from_micros(self.report_latency_us / frames)),
        };
        self.report_since = Instant::now();
        self.report_frames = 0;
        self.report_latency_us = 0;
        Some(report)
    }

    /// Forgets what was measured so far, to measure only from now on (after a warm-up): the
    /// rung, its changes and the reconnects are kept, and the frame just seen still counts
    /// as the one the next frame's number follows.
    pub fn forget_so_far(&mut self) {
        let fresh = Stats::new(self.pattern_errors.is_some());
        *self = Stats {
            prev_seq: self.prev_seq,
            reconnects: self.reconnects,
            rung: self.rung,
            rung_changes: self.rung_changes,
            ..fresh
        };
    }

    /// A new connection: its sequence numbers are not compared with the last one's.
    pub fn reconnected(&mut self) {
        self.reconnects += 1;
        self.prev_seq = None;
    }

    /// The frames that follow are `rendition`: where a connection starts (`moved` false) or
    /// where the sender moved it (`moved` true, counted in `rung_changes`).
    pub fn placed(&mut self, rendition: Rendition, moved: bool) {
        if moved && self.rung != Some(rendition) {
            self.rung_changes += 1;
        }
        self.rung = Some(rendition);
    }

    /// Counts a frame whose pixels did not carry the frame number its header named.
    pub fn pattern_error(&mut self) {
        if let Some(n) = &mut self.pattern_errors {
            *n += 1;
        }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        round3(self.latency.value_at_quantile(q) as f64 / 1000.0)
    }

    /// A one-line summary of the last interval, at most every `every`; `None` in between.
    pub fn live_line(&mut self, every: Duration) -> Option<String> {
        let elapsed = self.window.since.elapsed();
        if elapsed < every || self.started.is_none() {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let mut line = format!(
            "{:6.1} fps {:8.2} Mbit/s  latency p50 {:.1} ms p99 {:.1} ms  frames {}  dropped {}",
            self.window.frames as f64 / secs,
            self.window.bytes as f64 * 8.0 / secs / 1e6,
            self.ms(0.5),
            self.ms(0.99),
            self.frames,
            self.dropped,
        );
        if let Some(rung) = self.rung {
            line.push_str(&format!("  rung {rung}"));
        }
        self.window = Window {
            since: Instant::now(),
            frames: 0,
            bytes: 0,
        };
        Some(line)
    }

    /// The totals as the report, for a stream of `codec` at `width` x `height`.
    pub fn report(&self, codec: &str, width: u32, height: u32) -> Report {
        let secs = match (self.started, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        // n frames span n-1 intervals.
        let fps = if secs > 0.0 {
            (self.frames - 1) as f64 / secs
        } else {
            0.0
        };
        let mbit = if secs > 0.0 {
            self.bytes as f64 * 8.0 / secs / 1e6
        } else {
            0.0
        };
        Report {
            frames: self.frames,
            fps: round3(fps),
            bytes: self.bytes,
            mbit_per_s: round3(mbit),
            codec: codec.to_string(),
            width,
            height,
            keyframes: self.keyframes,
            dropped: self.dropped,
            out_of_order: self.out_of_order,
            repeated: self.repeated,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            reconnects: self.reconnects,
            rung: self.rung.map(|r| r.to_string()),
            rung_changes: self.rung_changes,
            latency_ms: Latency {
                p50: self.ms(0.5),
                p99: self.ms(0.99),
                max: if self.latency.is_empty() {
                    0.0
                } else {
                    round3(self.latency.max() as f64 / 1000.0)
                },
            },
            pattern_errors: self.pattern_errors,
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_as_dropped_and_reordering() {
        let mut s = Stats::new(false);
        for seq in [5, 6, 9, 8, 10] {
            s.record(seq, 1_000, 100, 3_000);
        }
        let r = s.report("raw", 4, 2);
        assert_eq!(r.frames, 5);
        assert_eq!(r.bytes, 500);
        assert_eq!(r.dropped, 2);
        assert_eq!(r.out_of_order, 1);
        assert_eq!((r.first_seq, r.last_seq), (Some(5), Some(10)));
        assert_eq!(r.reconnects, 0);
        assert_eq!(r.latency_ms.p50, 2.0);
        assert_eq!(r.pattern_errors, None);
    }

    #[test]
    fn a_keepalive_repeat_is_counted_apart_and_not_timed() {
        let mut s = Stats::new(false);
        s.record(7, 1_000, 100, 3_000);
        // serve re-sends frame 7 every 5 s while its camera is gone: old capture time.
        s.record(7, 1_000, 100, 5_003_000);
        s.record(7, 1_000, 100, 10_003_000);
        s.record(8, 10_004_000, 100, 10_006_000);
        let r = s.report("jpeg", 4, 2);
        assert_eq!(
            (r.frames, r.repeated, r.out_of_order, r.dropped),
            (2, 2, 0, 0)
        );
        assert_eq!(r.bytes, 400);
        assert_eq!(r.latency_ms.max, 2.0, "the repeats' 5 s are not latency");
        // After a reconnect the same number is a new frame, not a repeat.
        s.reconnected();
        s.record(8, 10_007_000, 100, 10_008_000);
        assert_eq!(s.report("jpeg", 4, 2).frames, 3);
    }

    #[test]
    fn a_reconnect_restarts_the_sequence_without_counting_drops() {
        let mut s = Stats::new(false);
        for seq in [100, 101, 102] {
            s.record(seq, 0, 1, 1);
        }
        s.reconnected();
        for seq in [0, 1, 3] {
            s.record(seq, 0, 1, 1);
        }
        let r = s.report("raw", 1, 1);
        assert_eq!(
            (r.frames, r.dropped, r.out_of_order, r.reconnects),
            (6, 1, 0, 1)
        );
        assert_eq!((r.first_seq, r.last_seq), (Some(100), Some(3)));
    }

    #[test]
    fn latency_percentiles_in_ms() {
        let mut s = Stats::new(true);
        for i in 0..100u64 {
            s.record(i, 0, 1, (i + 1) * 1000);
        }
        let r = s.report("jpeg", 1, 1);
        // The histogram keeps 3 significant digits.
        let near = |got: f64, want: f64| assert!((got - want).abs() < 0.1, "{got} vs {want}");
        near(r.latency_ms.p50, 50.0);
        near(r.latency_ms.p99, 99.0);
        near(r.latency_ms.max, 100.0);
        assert_eq!(r.pattern_errors, Some(0));
    }

    #[test]
    fn the_rung_is_the_last_rendition_and_only_moves_count_as_changes() {
        use framewire_core::{CodecKind, PixelFormat};
        let jpeg = |width, height, quality| {
            Rendition::new(CodecKind::Jpeg, width, height, PixelFormat::Rgb8, quality)
        };
        let mut s = Stats::new(false);
        assert_eq!(s.report("jpeg", 1, 1).rung, None);
        s.placed(jpeg(640, 480, 80), false);
        s.placed(jpeg(320, 240, 50), true);
        s.reconnected();
        s.placed(jpeg(640, 480, 80), false);
        let r = s.report("jpeg", 640, 480);
        assert_eq!((r.rung.as_deref(), r.rung_changes), (Some("640x480@80"), 1));
    }

    #[test]
    fn forgetting_keeps_the_rung_and_the_sequence() {
        let mut s = Stats::new(true);
        for seq in [1, 2, 4] {
            s.record(seq, 0, 10, 5_000_000);
        }
        s.reconnected();
        s.record(9, 0, 10, 5_000_000);
        s.forget_so_far();
        s.record(10, 1_000, 10, 2_000);
        let r = s.report("raw", 1, 1);
        assert_eq!((r.frames, r.bytes, r.dropped, r.reconnects), (1, 10, 0, 1));
        assert_eq!(
            (r.first_seq, r.latency_ms.max, r.pattern_errors),
            (Some(10), 1.0, Some(0))
        );
    }

    #[test]
    fn empty_report_is_all_zero() {
        let r = Stats::new(false).report("raw", 1, 1);
        assert_eq!((r.frames, r.fps, r.latency_ms.p99), (0, 0.0, 0.0));
    }
}
