//! Rebuilding frames from fragments (sans-IO): at most [`IN_PROGRESS`] frames at once, each at
//! most the configured maximum, so memory is bounded whatever arrives. A frame is handed out
//! only complete and only newer than the last one handed out; a newer complete frame makes
//! every older incomplete one obsolete. A frame number can run ahead of the last one handed
//! out only by [`WINDOW`], plus what [`MAX_RATE`] frames a second could have sent since (a
//! link that was down): an absurd number is dropped and counted, so no datagram can make the
//! frames that follow look old.

use std::time::{Duration, Instant};

use crate::datagram::{Fragment, parity_pieces};

/// Frames being rebuilt at once; a fragment of a newer frame evicts the oldest.
pub const IN_PROGRESS: usize = 4;
/// Frame numbers a fragment may run ahead of the last frame handed out, at any time.
pub const WINDOW: u32 = 1024;
/// And this many more per second since then (or since the first fragment).
pub const MAX_RATE: u64 = 10_000;

/// Counted drops and losses, over the reassembler's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    /// Frames sent that never arrived complete (including frames of which nothing arrived).
    pub lost: u64,
    /// Fragments of incomplete frames that never arrived (of frames lost whole: unknown, not counted).
    pub fragments_lost: u64,
    /// Fragments that came too late (their frame was handed out or made obsolete) or twice.
    pub late_or_duplicate: u64,
    /// Fragments that disagree with earlier ones of the same frame, or with themselves.
    pub inconsistent: u64,
    /// Data pieces rebuilt from parity.
    pub recovered: u64,
    /// Parity pieces that came after their frame was complete (no loss to repair).
    pub parity_unused: u64,
    /// Fragments whose frame number ran further ahead than [`WINDOW`] allows.
    pub out_of_window: u64,
}

#[derive(Debug, Default)]
struct Slot {
    sent: u32,
    seq: u64,
    capture_us: u64,
    frame_len: u32,
    count: u16,
    fec: u8,
    delta: bool,
    chunk: usize,
    got: u16,
    have: Vec<u64>,
    data: Vec<u8>,
    parity: Vec<u8>,
    first: Option<Instant>,
}

/// A frame that arrived complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    /// Capture's sequence number.
    pub seq: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Its number among the frames sent to this viewer, from 1.
    pub sent: u32,
    /// A delta of an inter-frame codec: it needs the frames before it.
    pub delta: bool,
    /// From its first fragment's arrival to its last one's.
    pub spread: Duration,
}

/// Rebuilds frames. See the module doc.
#[derive(Debug)]
pub struct Reassembler {
    max_frame: u32,
    slots: Vec<Slot>,
    active: Vec<bool>,
    /// The last frame handed out; 0 before any (the server numbers frames from 1).
    last: u32,
    /// When the last frame was handed out (or the first fragment came).
    last_at: Option<Instant>,
    losses: Losses,
    scratch: Vec<u8>,
}

impl Reassembler {
    /// A reassembler of frames of at most `max_frame` bytes.
    pub fn new(max_frame: u32) -> Reassembler {
        Reassembler {
            max_frame,
            slots: (0..IN_PROGRESS).map(|_| Slot::default()).collect(),
            active: vec![false; IN_PROGRESS],
            last: 0,
            last_at: None,
            losses: Losses::default(),
            scratch: Vec::new(),
        }
    }

    /// What was lost and dropped so far.
    pub fn losses(&self) -> Losses {
        self.losses
    }

    /// The number of the last frame handed out.
    pub fn last_sent(&self) -> Option<u32> {
        (self.last > 0).then_some(self.last)
    }

    /// Takes one fragment. When it completes a frame, the frame's bytes are swapped into
    /// `out` (whose old buffer the reassembler keeps for reuse) and the frame is returned.
    pub fn push(&mut self, f: &Fragment<'_>, now: Instant, out: &mut Vec<u8>) -> Option<Complete> {
        let pieces = u64::from(f.count) + u64::from(parity_pieces(f.count, f.fec));
        let fits = u64::from(f.index) < pieces
            && u64::from(f.offset) + f.data.len() as u64 <= u64::from(f.frame_len);
        if !fits {
            self.losses.inconsistent += 1;
            return None;
        }
        if f.sent <= self.last && f.index >= f.count {
            // Parity for a frame that arrived without it: nothing was lost.
            self.losses.parity_unused += 1;
            return None;
        }
        if f.frame_len > self.max_frame || f.sent <= self.last {
            self.losses.late_or_duplicate += 1;
            return None;
        }
        let since = now.saturating_duration_since(*self.last_at.get_or_insert(now));
        let ahead = u64::from(WINDOW) + since.as_millis() as u64 * MAX_RATE / 1000;
        if u64::from(f.sent - self.last) > ahead {
            self.losses.out_of_window += 1;
            return None;
        }
        let i = match self.find(f.sent) {
            Some(i) => {
                let s = &self.slots[i];
                if (s.seq, s.capture_us, s.frame_len, s.count, s.fec, s.delta)
                    != (f.seq, f.capture_us, f.frame_len, f.count, f.fec, f.delta)
                {
                    self.losses.inconsistent += 1;
                    return None;
                }
                i
            }
            None => {
                let Some(chunk) = chunk_of(f) else {
                    self.losses.inconsistent += 1;
                    return None;
                };
                self.open(f, chunk, now)?
            }
        };
        let s = &mut self.slots[i];
        if !s.fits(f) {
            self.losses.inconsistent += 1;
            return None;
        }
        if s.has(f.index) {
            self.losses.late_or_duplicate += 1;
            return None;
        }
        s.mark(f.index);
        let group = if f.index >= s.count {
            let g = usize::from(f.index - s.count);
            let chunk = s.chunk;
            let groups = parity_pieces(s.count, s.fec) as usize;
            // Bounded: groups x chunk <= frame_len + 2 chunks (checked when the slot opened).
            s.parity.resize(groups * chunk, 0);
            s.parity[g * chunk..(g + 1) * chunk].copy_from_slice(f.data);
            g
        } else {
            let at = f.offset as usize;
            s.data[at..at + f.data.len()].copy_from_slice(f.data);
            s.got += 1;
            if s.fec == 0 {
                usize::MAX
            } else {
                usize::from(f.index / u16::from(s.fec))
            }
        };
        if group != usize::MAX && s.rebuild(group, &mut self.scratch) {
            self.losses.recovered += 1;
        }
        if s.got < s.count {
            return None;
        }
        self.active[i] = false;
        let done = Complete {
            seq: s.seq,
            capture_us: s.capture_us,
            sent: s.sent,
            delta: s.delta,
            spread: s.first.map_or(Duration::ZERO, |t| now.duration_since(t)),
        };
        std::mem::swap(&mut s.data, out);
        self.losses.lost += u64::from(done.sent - self.last - 1);
        self.last = done.sent;
        self.last_at = Some(now);
        // Older frames still in progress are obsolete now.
        for j in 0..IN_PROGRESS {
            if self.active[j] && self.slots[j].sent < done.sent {
                self.active[j] = false;
                let s = &self.slots[j];
                self.losses.fragments_lost += u64::from(s.count - s.got);
            }
        }
        Some(done)
    }

    fn find(&self, sent: u32) -> Option<usize> {
        (0..IN_PROGRESS).find(|&i| self.active[i] && self.slots[i].sent == sent)
    }

    /// A slot for a new frame: a free one, else the oldest's (unless this frame is older
    /// than every frame in progress: then it is dropped).
    fn open(&mut self, f: &Fragment<'_>, chunk: usize, now: Instant) -> Option<usize> {
        let i = match (0..IN_PROGRESS).find(|&i| !self.active[i]) {
            Some(i) => i,
            None => {
                let oldest = (0..IN_PROGRESS).min_by_key(|&i| self.slots[i].sent)?;
                if self.slots[oldest].sent > f.sent {
                    self.losses.late_or_duplicate += 1;
                    return None;
                }
                let s = &self.slots[oldest];
                self.losses.fragments_lost += u64::from(s.count - s.got);
                oldest
            }
        };
        let s = &mut self.slots[i];
        s.sent = f.sent;
        s.seq = f.seq;
        s.capture_us = f.capture_us;
        s.frame_len = f.frame_len;
        s.count = f.count;
        s.fec = f.fec;
        s.delta = f.delta;
        s.chunk = chunk;
        s.got = 0;
        s.have.clear();
        let pieces = u32::from(f.count) + parity_pieces(f.count, f.fec);
        s.have.resize((pieces as usize).div_ceil(64), 0);
        // Bounded: frame_len was checked against max_frame.
        s.data.clear();
        s.data.resize(f.frame_len as usize, 0);
        s.parity.clear();
        s.first = Some(now);
        self.active[i] = true;
        Some(i)
    }
}

/// The piece size a frame's first fragment implies (every data piece but the last has it, and
/// so does every parity piece), when it is consistent with the frame's length and count.
fn chunk_of(f: &Fragment<'_>) -> Option<usize> {
    let (len, count) = (f.frame_len as usize, usize::from(f.count));
    let chunk = if f.index >= f.count || f.index + 1 < f.count {
        f.data.len()
    } else if count == 1 {
        len
    } else {
        f.offset as usize / (count - 1)
    };
    (chunk > 0 && (count - 1) * chunk < len && len <= count * chunk).then_some(chunk)
}

impl Slot {
    fn has(&self, index: u16) -> bool {
        self.have[usize::from(index) / 64] & (1 << (index % 64)) != 0
    }

    fn mark(&mut self, index: u16) {
        self.have[usize::from(index) / 64] |= 1 << (index % 64);
    }

    /// Where data piece `i` lies in the frame.
    fn span(&self, i: u16) -> std::ops::Range<usize> {
        let at = usize::from(i) * self.chunk;
        at..(at + self.chunk).min(self.frame_len as usize)
    }

    /// Whether `f` lies where its index says in a frame of this slot's piece size.
    fn fits(&self, f: &Fragment<'_>) -> bool {
        if f.index >= self.count {
            return f.data.len() == self.chunk;
        }
        let span = self.span(f.index);
        f.offset as usize == span.start && f.data.len() == span.len()
    }

    /// Rebuilds the one data piece missing in parity group `g` when its parity piece is here.
    fn rebuild(&mut self, g: usize, scratch: &mut Vec<u8>) -> bool {
        let fec = usize::from(self.fec);
        let first = g * fec;
        let end = (first + fec).min(usize::from(self.count));
        let mut missing = (first..end).filter(|&j| !self.has(j as u16));
        let (Some(m), None) = (missing.next(), missing.next()) else {
            return false;
        };
        if !self.has(self.count + g as u16) {
            return false;
        }
        scratch.clear();
        scratch.extend_from_slice(&self.parity[g * self.chunk..(g + 1) * self.chunk]);
        for j in (first..end).filter(|&j| j != m) {
            let span = self.span(j as u16);
            for (x, b) in scratch.iter_mut().zip(&self.data[span]) {
                *x ^= b;
            }
        }
        let span = self.span(m as u16);
        let n = span.len();
        self.data[span].copy_from_slice(&scratch[..n]);
        self.mark(m as u16);
        self.got += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::{Datagram, Outgoing, parse};

    /// The datagrams of frame `sent`: a 16-byte prefix and `len - 16` payload bytes (byte k of
    /// the frame is k % 251), in pieces of `mtu`, with `fec`.
    fn frame(sent: u32, len: usize, mtu: usize, fec: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
        let bytes: Vec<u8> = (0..len).map(|k| (k % 251) as u8).collect();
        let out = Outgoing {
            seq: u64::from(sent) + 100,
            capture_us: 5,
            sent,
            delta: false,
            tag: [0; 8],
            prefix: &bytes[..16],
            payload: &bytes[16..],
        };
        let mut all = Vec::new();
        let (mut buf, mut parity) = (Vec::new(), Vec::new());
        out.datagrams(mtu, fec, &mut buf, &mut parity, |d| {
            all.push(d.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        (bytes, all)
    }

    fn push(r: &mut Reassembler, d: &[u8]) -> Option<Vec<u8>> {
        let Ok(Datagram::Fragment(f)) = parse(d, 1 << 24) else {
            panic!("not a fragment");
        };
        let mut out = Vec::new();
        r.push(&f, Instant::now(), &mut out).map(|_| out)
    }

    #[test]
    fn reordered_and_duplicated_pieces_give_the_frame_once() {
        let mut r = Reassembler::new(10_000);
        let (want, mut ds) = frame(1, 5000, 1200, 0);
        ds.reverse();
        let mut got = None;
        for d in &ds {
            assert!(got.is_none());
            got = push(&mut r, d);
            assert_eq!(push(&mut r, d), None, "a duplicate");
        }
        assert_eq!(got, Some(want));
        assert_eq!(r.losses().late_or_duplicate, ds.len() as u64);
    }

    #[test]
    fn an_absurd_frame_number_is_dropped_and_the_stream_goes_on() {
        let mut r = Reassembler::new(10_000);
        let t0 = Instant::now();
        let take = |r: &mut Reassembler, sent: u32, at: Instant| {
            let (_, ds) = frame(sent, 100, 1000, 0);
            let Ok(Datagram::Fragment(f)) = parse(&ds[0], 1 << 24) else {
                panic!("not a fragment");
            };
            r.push(&f, at, &mut Vec::new()).map(|d| d.sent)
        };
        assert_eq!(take(&mut r, 1, t0), Some(1));
        // The largest number there is would make every later frame look old: dropped.
        assert_eq!(take(&mut r, u32::MAX, t0), None);
        assert_eq!(take(&mut r, 1 + WINDOW + 1, t0), None);
        assert_eq!(r.losses().out_of_window, 2);
        assert_eq!(take(&mut r, 2, t0), Some(2), "the stream goes on");
        assert_eq!(take(&mut r, 2 + WINDOW, t0), Some(2 + WINDOW));
        // After a second of silence (a link down), as many more as could have been sent.
        let later = t0 + Duration::from_secs(1);
        let n = 2 + 2 * WINDOW + MAX_RATE as u32;
        assert_eq!(take(&mut r, n, later), Some(n));
    }

    #[test]
    fn parity_rebuilds_one_lost_piece_per_group() {
        for lost in 0..13 {
            let mut r = Reassembler::new(100_000);
            // 10 data pieces (the last short) and 3 parity pieces of groups of 4.
            let (want, ds) = frame(1, 9_500, 1000, 4);
            assert_eq!(ds.len(), 13);
            let got: Vec<_> = ds
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != lost)
                .filter_map(|(_, d)| push(&mut r, d))
                .collect();
            assert_eq!(got, vec![want.clone()], "piece {lost} lost");
        }
        // Two lost in one group: the frame is lost, and counted once the next one arrives.
        let mut r = Reassembler::new(100_000);
        let (_, ds) = frame(1, 9_500, 1000, 4);
        for d in ds.iter().skip(2) {
            assert_eq!(push(&mut r, d), None);
        }
        for d in &frame(2, 100, 1000, 4).1 {
            push(&mut r, d);
        }
        assert_eq!((r.losses().lost, r.losses().fragments_lost), (1, 2));
    }

    #[test]
    fn a_newer_complete_frame_makes_older_ones_obsolete() {
        let mut r = Reassembler::new(10_000);
        let (_, old) = frame(1, 3000, 1000, 0);
        push(&mut r, &old[0]);
        for d in &frame(2, 2000, 1000, 0).1 {
            push(&mut r, d);
        }
        assert_eq!(r.last_sent(), Some(2));
        // The rest of frame 1 is late now, and its two missing pieces are lost.
        assert_eq!(push(&mut r, &old[1]), None);
        assert_eq!(push(&mut r, &old[2]), None);
        let l = r.losses();
        assert_eq!((l.fragments_lost, l.late_or_duplicate, l.lost), (2, 2, 1));
        // Frames lost whole show as a gap.
        for d in &frame(5, 100, 1000, 0).1 {
            push(&mut r, d);
        }
        assert_eq!(r.losses().lost, 3);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_new_frames() {
        let mut r = Reassembler::new(1 << 20);
        let (_, first) = frame(1, 1 << 20, 60_000, 0);
        for sent in 1..1_000u32 {
            let mut d = first[0].clone();
            d[24..28].copy_from_slice(&sent.to_le_bytes());
            push(&mut r, &d);
        }
        let held: usize = r.slots.iter().map(|s| s.data.capacity()).sum();
        assert!(held <= IN_PROGRESS << 20, "{held} bytes held");
        assert_eq!(
            r.losses().fragments_lost,
            (1_000 - 1 - IN_PROGRESS as u64) * 17
        );
    }

    #[test]
    fn random_fragments_never_panic_and_frames_come_out_in_order_and_whole() {
        let mut r = Reassembler::new(1 << 16);
        let mut x = 0x2545_f491_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut out, mut last, mut whole) = (Vec::new(), 0, 0);
        for _ in 0..200_000 {
            let mut d = b"FWUD\x02\x04".to_vec();
            d.push((next() % 4) as u8);
            d.push(0);
            d.extend_from_slice(&(next() % 4).to_le_bytes());
            d.extend_from_slice(&1u64.to_le_bytes());
            d.extend_from_slice(&((next() % 4000) as u32 + 1).to_le_bytes());
            let len = (next() % 3000) as u32 + 16;
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&((next() % 3000) as u32).to_le_bytes());
            d.extend_from_slice(&((next() % 6) as u16).to_le_bytes());
            d.extend_from_slice(&((next() % 6) as u16).to_le_bytes());
            d.extend_from_slice(&[0; 8]);
            d.extend(std::iter::repeat_n(7u8, (next() % 1500) as usize));
            // Now and then a real frame's datagrams, mixed with the garbage.
            let mut all = vec![d];
            if next() % 20 == 0 {
                let sent = last + 1 + (next() % 500) as u32;
                all.extend(frame(sent, (next() % 5000) as usize + 16, 1000, 4).1);
            }
            for d in &all {
                let Ok(Datagram::Fragment(f)) = parse(d, 1 << 16) else {
                    continue;
                };
                if let Some(done) = r.push(&f, Instant::now(), &mut out) {
                    assert!(done.sent > last);
                    assert_eq!(out.len(), f.frame_len as usize);
                    last = done.sent;
                    whole += 1;
                }
            }
        }
        assert!(
            whole > 0,
            "no random frame was ever whole: the test tests nothing"
        );
        let held: usize = r
            .slots
            .iter()
            .map(|s| s.data.capacity() + s.parity.capacity())
            .sum();
        assert!(held <= (2 * IN_PROGRESS) << 16, "{held} bytes held");
    }

    #[test]
    fn pieces_that_disagree_are_counted_not_used() {
        let mut r = Reassembler::new(10_000);
        let (_, ds) = frame(1, 3000, 1000, 0);
        push(&mut r, &ds[0]);
        let mut other = ds[1].clone();
        other[28..32].copy_from_slice(&2999u32.to_le_bytes());
        assert_eq!(push(&mut r, &other), None);
        let mut shifted = ds[1].clone();
        shifted[32..36].copy_from_slice(&999u32.to_le_bytes());
        assert_eq!(push(&mut r, &shifted), None);
        assert_eq!(r.losses().inconsistent, 2);
    }
}
