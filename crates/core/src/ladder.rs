//! The quality ladder: the renditions a sender offers (a codec, size and quality or bitrate
//! each), which
//! of them some subscriber is on now, and how big each one's packets run. The send path
//! encodes only the renditions subscribers are on; each publisher moves its subscribers
//! between rungs by what their links carry.
//!
//! Renditions are numbered: the ladder's rungs first, best first (0 is the top), then any a
//! subscriber asked for by codec and size (off the ladder, up to [`MAX_RENDITIONS`] in all).
//! A rendition's number is [`Packet::rendition`](crate::Packet::rendition).

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{CodecError, CodecKind, PixelFormat, StreamInfo};

/// Renditions a ladder holds at most, rungs and asked-for ones together; a request for one
/// more is refused, so subscribers cannot make the sender encode without bound.
pub const MAX_RENDITIONS: usize = 8;

/// The least time between two keyframes a rendition's encoder is asked for: however many
/// subscribers join or lose a frame, at most 4 a second.
pub const KEYFRAME_GAP: Duration = Duration::from_millis(250);

/// A rendition no subscriber is on has its packet size measured again this often (one
/// frame encoded), so that a move down the ladder can go straight to the rung that fits.
pub const SIZE_PROBE_EVERY: Duration = Duration::from_secs(3);

/// One way of encoding the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// Codec, size and pixel format of the decoded frames.
    pub stream: StreamInfo,
    /// The codec's quality, 1..=100; 0 for a codec without one.
    pub quality: u8,
    /// The bitrate a rate-controlled codec (H.264) targets, kbit/s; 0 for a codec without one.
    pub bitrate_kbit: u32,
}

impl Rendition {
    /// `codec` at `width` x `height`, decoding to `format`, at `quality` (0 for a codec without one).
    pub const fn new(
        codec: CodecKind,
        width: u32,
        height: u32,
        format: PixelFormat,
        quality: u8,
    ) -> Rendition {
        Rendition {
            stream: StreamInfo {
                codec,
                width,
                height,
                format,
            },
            quality,
            bitrate_kbit: 0,
        }
    }

    /// This rendition at `kbit` kbit/s (for a rate-controlled codec).
    #[must_use]
    pub const fn with_bitrate(mut self, kbit: u32) -> Rendition {
        self.bitrate_kbit = kbit;
        self
    }
}

impl fmt::Display for Rendition {
    /// `640x480@80` (a JPEG's quality), `640x480@1500k` (an H.264 bitrate), or `640x480@raw`
    /// for a codec with neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StreamInfo { width, height, .. } = self.stream;
        if self.bitrate_kbit > 0 {
            write!(f, "{width}x{height}@{}k", self.bitrate_kbit)
        } else if self.quality > 0 {
            write!(f, "{width}x{height}@{}", self.quality)
        } else {
            write!(f, "{width}x{height}@{}", self.stream.codec)
        }
    }
}

/// What a subscriber asks for when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    /// Stay on this rung of the ladder, whatever the link.
    pub rung: Option<u8>,
    /// This codec (with `width`: that size, the height following the stream's aspect ratio).
    pub codec: Option<CodecKind>,
    /// This width.
    pub width: Option<u32>,
}

impl Request {
    /// Whether the subscriber leaves the choice to the link (no rung, codec or width asked).
    pub fn follows_link(&self) -> bool {
        *self == Request::default()
    }
}

/// Where a subscriber is: a rendition's number, and its rung when it is on the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The rendition's number.
    pub id: usize,
    /// The rendition.
    pub rendition: Rendition,
    /// Its rung (`None`: asked for by codec and size, off the ladder).
    pub rung: Option<u8>,
    /// Rungs on the ladder.
    pub rungs: u8,
}

impl fmt::Display for Placement {
    /// `rung 1 of 3 (640x480@50)`, or `160x120@80 (asked for, off the ladder)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rung {
            Some(r) => write!(f, "rung {r} of {} ({})", self.rungs, self.rendition),
            None => write!(f, "{} (asked for, off the ladder)", self.rendition),
        }
    }
}

/// Makes the rendition a subscriber asked for by codec and size, or says why it cannot be made.
pub type MakeRendition = dyn Fn(CodecKind, u32, u32) -> Result<Rendition, CodecError> + Send + Sync;

/// Why a ladder cannot be made, or cannot serve what a subscriber asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LadderError {
    /// Too few or too many rungs.
    #[error("a ladder has 1 to {MAX_RENDITIONS} rungs, not {0}")]
    Rungs(usize),
    /// A pinned rung the ladder does not have.
    #[error("asked for rung {asked}, but the ladder has rungs 0 to {last}")]
    NoSuchRung {
        /// The rung asked for.
        asked: u8,
        /// The ladder's last rung.
        last: usize,
    },
    /// Wider than the top rung: a subscriber cannot make the sender encode without bound.
    #[error("asked for width {asked}, but the stream is at most {max} wide")]
    TooWide {
        /// The width asked for.
        asked: u32,
        /// The top rung's width.
        max: u32,
    },
    /// Another rendition, from a ladder that makes none (a camera's JPEG passed through).
    #[error("asked for {codec} {width}x{height}, but this stream is only {only}")]
    OnlyOne {
        /// What was asked for.
        codec: CodecKind,
        /// Its width.
        width: u32,
        /// Its height, from the stream's aspect ratio.
        height: u32,
        /// The one rendition there is.
        only: Rendition,
    },
    /// Another rendition while as many as a ladder holds are being made.
    #[error(
        "asked for {codec} {width}x{height}, but {MAX_RENDITIONS} renditions are already being made"
    )]
    Full {
        /// What was asked for.
        codec: CodecKind,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The rendition asked for cannot be made (this build has no encoder for it).
    #[error(transparent)]
    Make(#[from] CodecError),
}

struct Entry {
    rendition: Rendition,
    /// Subscribers on it (or moving to it).
    subscribers: usize,
    /// Average packet size in bytes (exponentially weighted), once one was encoded.
    bytes: Option<f64>,
    measured: Option<Instant>,
    /// Some subscriber waits for a keyframe of it.
    keyframe_wanted: bool,
    /// When its encoder was last asked for one.
    keyframe_asked: Option<Instant>,
}

/// The renditions on offer and their use. Shared by the send path and every publisher.
pub struct Ladder {
    rungs: usize,
    adapt: bool,
    make: Option<Box<MakeRendition>>,
    entries: Mutex<Vec<Entry>>,
}

impl fmt::Debug for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ladder")
            .field("rungs", &self.rungs)
            .field("adapt", &self.adapt)
            .finish_non_exhaustive()
    }
}

impl Ladder {
    /// A ladder of `rungs` (best first, at least one, at most [`MAX_RENDITIONS`]). With
    /// `adapt`, subscribers who leave the choice to the link move along it; without, they stay
    /// on the top rung. `make` builds a rendition a subscriber asks for by codec and size;
    /// `None` refuses such requests (a camera's JPEG passed through has one rendition only).
    pub fn new(
        rungs: Vec<Rendition>,
        adapt: bool,
        make: Option<Box<MakeRendition>>,
    ) -> Result<Ladder, LadderError> {
        if rungs.is_empty() || rungs.len() > MAX_RENDITIONS {
            return Err(LadderError::Rungs(rungs.len()));
        }
        let entries = rungs
            .into_iter()
            .map(|rendition| Entry {
                rendition,
                subscribers: 0,
                bytes: None,
                measured: None,
                keyframe_wanted: false,
                keyframe_asked: None,
            })
            .collect::<Vec<_>>();
        Ok(Ladder {
            rungs: entries.len(),
            adapt,
            make,
            entries: Mutex::new(entries),
        })
    }

    /// A ladder of one rung and nothing else: a stream in one rendition.
    pub fn single(rendition: Rendition) -> Ladder {
        Ladder::new(vec![rendition], false, None).expect("one rung")
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether subscribers who leave the choice to the link move along the ladder.
    pub fn adapts(&self) -> bool {
        self.adapt && self.rungs > 1
    }

    /// Rungs on the ladder.
    pub fn rungs(&self) -> usize {
        self.rungs
    }

    /// Where subscriber `id` is.
    pub fn placement(&self, id: usize) -> Placement {
        let rendition = self.lock()[id].rendition;
        Placement {
            id,
            rendition,
            rung: (id < self.rungs).then_some(id as u8),
            rungs: self.rungs as u8,
        }
    }

    /// Where a new subscriber starts for what it asked: the rung it pinned, the rendition of
    /// the codec and size it asked for (made now if no rendition is that), or the top rung.
    /// It is counted as on it; call [`Ladder::leave`] when it goes. An error says why the
    /// request cannot be served.
    pub fn join(&self, request: &Request) -> Result<Placement, LadderError> {
        let id = self.resolve(request)?;
        self.lock()[id].subscribers += 1;
        Ok(self.placement(id))
    }

    fn resolve(&self, request: &Request) -> Result<usize, LadderError> {
        if let Some(rung) = request.rung {
            return if usize::from(rung) < self.rungs {
                Ok(usize::from(rung))
            } else {
                Err(LadderError::NoSuchRung {
                    asked: rung,
                    last: self.rungs - 1,
                })
            };
        }
        if request.codec.is_none() && request.width.is_none() {
            return Ok(0);
        }
        let mut entries = self.lock();
        let top = entries[0].rendition.stream;
        let codec = request.codec.unwrap_or(top.codec);
        let width = request.width.unwrap_or(top.width);
        // Never larger than the top rung: a viewer cannot make the sender encode without bound.
        if width > top.width {
            return Err(LadderError::TooWide {
                asked: width,
                max: top.width,
            });
        }
        let height = (u64::from(width) * u64::from(top.height) / u64::from(top.width)).max(1);
        let height = u32::try_from(height).unwrap_or(u32::MAX);
        // A rung that is this codec and size serves it (the best such rung: the top first).
        let same = |e: &Entry| {
            let s = e.rendition.stream;
            s.codec == codec && s.width == width && s.height == height
        };
        if let Some(id) = entries.iter().position(same) {
            return Ok(id);
        }
        let Some(make) = &self.make else {
            return Err(LadderError::OnlyOne {
                codec,
                width,
                height,
                only: entries[0].rendition,
            });
        };
        if entries.len() >= MAX_RENDITIONS {
            return Err(LadderError::Full {
                codec,
                width,
                height,
            });
        }
        let rendition = make(codec, width, height)?;
        // A rendition nobody is on any more is reused rather than kept beside the new one.
        if let Some(free) = (self.rungs..entries.len()).find(|&i| entries[i].subscribers == 0) {
            entries[free] = Entry {
                rendition,
                subscribers: 0,
                bytes: None,
                measured: None,
                keyframe_wanted: false,
                keyframe_asked: None,
            };
            return Ok(free);
        }
        entries.push(Entry {
            rendition,
            subscribers: 0,
            bytes: None,
            measured: None,
            keyframe_wanted: false,
            keyframe_asked: None,
        });
        Ok(entries.len() - 1)
    }

    /// Counts one more subscriber on rendition `id` (moving to it).
    pub fn enter(&self, id: usize) {
        self.lock()[id].subscribers += 1;
    }

    /// Counts one subscriber fewer on rendition `id`.
    pub fn leave(&self, id: usize) {
        let mut entries = self.lock();
        entries[id].subscribers = entries[id].subscribers.saturating_sub(1);
    }

    /// The renditions to encode for the next frame, into `out` (cleared first): those some
    /// subscriber is on, and any whose packet size was last measured longer ago than
    /// [`SIZE_PROBE_EVERY`] (only while the ladder adapts and someone is on it). A rung with a
    /// bitrate is never probed: its size follows from its bitrate ([`Ladder::rung_sizes`]),
    /// and one frame of an inter-frame encoder after seconds without one says nothing.
    pub fn wanted(&self, out: &mut Vec<(usize, Rendition)>) {
        out.clear();
        let entries = self.lock();
        let anyone = entries.iter().any(|e| e.subscribers > 0);
        let probe = anyone && self.adapts();
        for (id, e) in entries.iter().enumerate() {
            let stale = id < self.rungs
                && probe
                && e.rendition.bitrate_kbit == 0
                && e.measured.is_none_or(|t| t.elapsed() >= SIZE_PROBE_EVERY);
            if e.subscribers > 0 || stale {
                out.push((id, e.rendition));
            }
        }
    }

    /// A subscriber of rendition `id` waits for a keyframe (it joined, moved, or lost a packet
    /// of an inter-frame codec).
    pub fn request_keyframe(&self, id: usize) {
        if let Some(e) = self.lock().get_mut(id) {
            e.keyframe_wanted = true;
        }
    }

    /// The renditions whose encoder is to make the next packet a keyframe, as bits (bit `id`),
    /// at most one per [`KEYFRAME_GAP`] each: a request within the gap waits for its end.
    pub fn keyframes_due(&self, now: Instant) -> u8 {
        let mut due = 0;
        for (id, e) in self.lock().iter_mut().enumerate() {
            let free = e
                .keyframe_asked
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_GAP);
            if e.keyframe_wanted && free {
                e.keyframe_wanted = false;
                e.keyframe_asked = Some(now);
                due |= 1 << id;
            }
        }
        due
    }

    /// Records the size of a packet just encoded for rendition `id`.
    pub fn record_size(&self, id: usize, bytes: usize) {
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(id) else {
            return;
        };
        let bytes = bytes as f64;
        // A rate-controlled rung's packets swing from keyframe to delta: its average is taken
        // over about a keyframe interval's worth, the others' over the last few packets.
        let k = if e.rendition.bitrate_kbit > 0 {
            0.03
        } else {
            0.2
        };
        e.bytes = Some(e.bytes.map_or(bytes, |avg| avg * (1.0 - k) + bytes * k));
        e.measured = Some(Instant::now());
    }

    /// The average packet size of each rung, best first (`None`: not known yet). A rung with a
    /// bitrate that was not measured is the size of a measured one scaled by their bitrates
    /// (rate control holds each near its own).
    pub fn rung_sizes(&self) -> Vec<Option<f64>> {
        let entries = self.lock();
        let rungs = &entries[..self.rungs];
        let per_kbit = rungs
            .iter()
            .filter(|e| e.rendition.bitrate_kbit > 0)
            .find_map(|e| Some(e.bytes? / f64::from(e.rendition.bitrate_kbit)));
        rungs
            .iter()
            .map(|e| match (e.bytes, per_kbit, e.rendition.bitrate_kbit) {
                (Some(bytes), _, _) => Some(bytes),
                (None, Some(per_kbit), kbit) if kbit > 0 => Some(per_kbit * f64::from(kbit)),
                _ => None,
            })
            .collect()
    }

    /// Each rendition some subscriber is on, with how many are on it, best first.
    pub fn in_use(&self) -> Vec<(Rendition, usize)> {
        self.lock()
            .iter()
            .filter(|e| e.subscribers > 0)
            .map(|e| (e.rendition, e.subscribers))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    fn jpeg(width: u32, height: u32, quality: u8) -> Rendition {
        Rendition::new(CodecKind::Jpeg, width, height, PixelFormat::Rgb8, quality)
    }

    fn ladder(make: bool) -> Ladder {
        let rungs = vec![jpeg(640, 480, 80), jpeg(640, 480, 50), jpeg(320, 240, 50)];
        let make: Option<Box<MakeRendition>> =
            make.then(|| Box::new(|_, w, h| Ok(jpeg(w, h, 80))) as Box<MakeRendition>);
        Ladder::new(rungs, true, make).unwrap()
    }

    #[test]
    fn keyframes_are_asked_for_at_most_once_a_gap_however_many_want_them() {
        let l = ladder(false);
        let t0 = Instant::now();
        assert_eq!(l.keyframes_due(t0), 0);
        for _ in 0..10 {
            l.request_keyframe(2);
        }
        l.request_keyframe(0);
        assert_eq!(l.keyframes_due(t0), 0b101);
        assert_eq!(l.keyframes_due(t0), 0, "asked for once");
        l.request_keyframe(2);
        assert_eq!(l.keyframes_due(t0 + KEYFRAME_GAP / 2), 0, "within the gap");
        assert_eq!(
            l.keyframes_due(t0 + KEYFRAME_GAP),
            0b100,
            "the request waited"
        );
        l.request_keyframe(99);
    }

    fn wanted(l: &Ladder) -> Vec<usize> {
        let mut out = Vec::new();
        l.wanted(&mut out);
        out.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn labels_name_size_and_quality_or_codec() {
        assert_eq!(jpeg(640, 480, 80).to_string(), "640x480@80");
        let mut raw = jpeg(320, 240, 0);
        raw.stream.codec = CodecKind::Raw;
        assert_eq!(raw.to_string(), "320x240@raw");
    }

    #[test]
    fn only_renditions_someone_is_on_are_wanted_once_sizes_are_known() {
        let l = ladder(false);
        assert!(wanted(&l).is_empty(), "nobody on it: nothing to encode");
        let top = l.join(&Request::default()).unwrap();
        assert_eq!((top.id, top.rung), (0, Some(0)));
        assert_eq!(
            wanted(&l),
            [0, 1, 2],
            "sizes unknown: every rung is measured"
        );
        for id in 0..3 {
            l.record_size(id, 1000);
        }
        assert_eq!(wanted(&l), [0]);
        l.enter(2);
        l.leave(0);
        assert_eq!(wanted(&l), [2]);
        l.leave(2);
        assert!(wanted(&l).is_empty());
    }

    #[test]
    fn rungs_with_a_bitrate_are_never_probed_and_their_sizes_follow_their_bitrates() {
        let h264 = |w, h, kbit| {
            Rendition::new(CodecKind::H264, w, h, PixelFormat::Rgb8, 0).with_bitrate(kbit)
        };
        let rungs = vec![
            h264(640, 480, 2000),
            h264(640, 480, 1000),
            h264(320, 240, 500),
        ];
        assert_eq!(rungs[1].to_string(), "640x480@1000k");
        let l = Ladder::new(rungs, true, None).unwrap();
        l.join(&Request::default()).unwrap();
        assert_eq!(wanted(&l), [0], "only the rung someone is on is encoded");
        assert_eq!(l.rung_sizes(), [None, None, None]);
        l.record_size(0, 8000);
        assert_eq!(l.rung_sizes(), [Some(8000.0), Some(4000.0), Some(2000.0)]);
        l.record_size(2, 3000);
        assert_eq!(l.rung_sizes()[2], Some(3000.0), "measured wins");
    }

    #[test]
    fn requests_pick_a_rung_or_make_a_rendition_within_bounds() {
        let l = ladder(true);
        let pinned = l.join(&Request {
            rung: Some(2),
            ..Request::default()
        });
        assert_eq!(pinned.unwrap().id, 2);
        let err = l
            .join(&Request {
                rung: Some(3),
                ..Request::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("rungs 0 to 2"), "{err}");
        let small = Request {
            width: Some(320),
            ..Request::default()
        };
        assert_eq!(
            l.join(&small).unwrap().id,
            2,
            "a rung of that size serves it"
        );
        let asked = l
            .join(&Request {
                width: Some(160),
                ..Request::default()
            })
            .unwrap();
        assert_eq!((asked.id, asked.rung), (3, None));
        assert_eq!(asked.rendition.to_string(), "160x120@80");
        for w in 0..4 {
            l.join(&Request {
                width: Some(100 + w),
                ..Request::default()
            })
            .unwrap();
        }
        let err = l
            .join(&Request {
                width: Some(99),
                ..Request::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("8 renditions"), "{err}");
        let err = l
            .join(&Request {
                width: Some(641),
                ..Request::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 640 wide"), "{err}");
        let fixed = ladder(false);
        let err = fixed.join(&small_other()).unwrap_err().to_string();
        assert!(err.contains("only 640x480@80"), "{err}");
    }

    fn small_other() -> Request {
        Request {
            width: Some(200),
            ..Request::default()
        }
    }
}
