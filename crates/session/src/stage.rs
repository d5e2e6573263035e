//! The send path's resize-and-encode stage, on one thread or several, handing each frame back
//! in capture order as one packet per rendition asked for. Packet buffers, and the lists that
//! carry a frame's packets, come from pools and return to them, and frames move between
//! threads by swapping buffers, so the steady state allocates and copies nothing.
//!
//! Each frame is submitted with the renditions wanted for it (from
//! [`Ladder::wanted`](framewire_core::Ladder::wanted): a number and a codec, size and quality
//! each). Its lane resizes the frame once to each wanted size that differs from the frame's
//! own, sharing the result between renditions of that size, and encodes it with each
//! rendition's encoder. A lane has its own [`Scaler`] and one encoder per rendition number,
//! made by the [`MakeEncoder`] when that number is first wanted and made again when the number
//! has come to name another rendition (a number freed by one asked-for rendition is reused for
//! the next); rendition 0's is made up front, so an encoder that cannot be made fails at the
//! start. A frame's packets carry its `seq` and `capture_us`, and their rendition's number.
//!
//! The stage has T lanes. Lane T-1 is the serving thread itself and lanes 0..T-1 are worker
//! threads, so `--threads 2` is the serving thread plus one worker: on two cores that is one
//! busy thread per core, where two workers beside a serving thread kept a third thread
//! runnable and measured slower (more frames in flight, colder caches, more wake-ups).
//! Frame k goes to lane k % T: round robin keeps the order without sorting. The serving thread
//! captures frame k, hands it to a worker, captures frame k+1 and processes it itself, then
//! publishes both, so capture overlaps the workers' resize and encode. At most T frames are in
//! flight, which costs up to T-1 frames of latency: worth it unpaced (`--fps 0`), where
//! throughput is the point, not at a paced rate one thread keeps up with; `serve` picks the
//! thread count accordingly. [`Encoding::finish`] hands back what is in flight when the
//! source ends. A packet that needs no encoding (a camera's JPEG passed through) joins the
//! same queue with [`Encoding::submit_packet`], as rendition 0, so every packet leaves by one
//! path.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::{self, JoinHandle};

use framewire_core::{Frame, FrameEncoder, MAX_RENDITIONS, Packet, Rendition, Scaler};

use crate::{SendError, chain};

/// Makes an encoder for a rendition (its codec, size and quality). Every lane makes its own
/// for each rendition it is asked for, on its own thread.
pub type MakeEncoder = dyn Fn(&Rendition) -> Result<Box<dyn FrameEncoder>, SendError> + Send + Sync;

/// Makes a scaler: one per lane (and one for the preview).
pub type MakeScaler = dyn Fn() -> Box<dyn Scaler> + Sync;

/// The renditions one frame is encoded in: each one's number and what it is.
type Wanted = Vec<(usize, Rendition)>;

/// A frame handed to a worker, and back: its renditions and a packet buffer for each.
struct Job {
    frame: Frame,
    wanted: Wanted,
    keyframes: u8,
    packets: Vec<Arc<Packet>>,
}

type Done = (Job, Result<(), String>);

/// What one lane owns: an encoder per rendition number, its scaler and resize buffers.
struct Lane {
    make: Arc<MakeEncoder>,
    /// By rendition number: the rendition the encoder was made for, and the encoder.
    encoders: Vec<Option<(Rendition, Box<dyn FrameEncoder>)>>,
    scaler: Box<dyn Scaler>,
    /// Resize buffers; while a frame is processed, the first `sizes.len()` hold it resized to
    /// `sizes`.
    resized: Vec<Frame>,
    sizes: Vec<(u32, u32)>,
}

impl Lane {
    /// A lane with rendition 0's encoder made already.
    fn new(
        make: Arc<MakeEncoder>,
        scaler: Box<dyn Scaler>,
        first: &Rendition,
    ) -> Result<Lane, SendError> {
        let mut encoders = Vec::new();
        encoders.resize_with(MAX_RENDITIONS, || None);
        encoder_for(&mut encoders, &*make, 0, first)?;
        Ok(Lane {
            make,
            encoders,
            scaler,
            resized: Vec::with_capacity(MAX_RENDITIONS),
            sizes: Vec::with_capacity(MAX_RENDITIONS),
        })
    }

    /// Encodes `frame` in each of the `wanted` renditions, into the packet buffer beside it in
    /// `out` (as many as `wanted`, none shared), resizing it once per size that differs from
    /// its own. An error names the frame and the rendition or size.
    /// Bit `id` of `keyframes`: rendition `id`'s encoder is asked for a keyframe first.
    fn process(
        &mut self,
        frame: &mut Frame,
        wanted: &[(usize, Rendition)],
        keyframes: u8,
        out: &mut [Arc<Packet>],
    ) -> Result<(), String> {
        debug_assert_eq!(wanted.len(), out.len(), "one packet buffer per rendition");
        let Lane {
            make,
            encoders,
            scaler,
            resized,
            sizes,
        } = self;
        sizes.clear();
        let (seq, capture_us) = (frame.seq, frame.capture_us);
        for (n, ((id, rendition), out)) in wanted.iter().zip(out).enumerate() {
            let size = (rendition.stream.width, rendition.stream.height);
            let own_size = size == (frame.width, frame.height);
            let failed = |e: &dyn std::error::Error| {
                format!("encoding frame {seq} as {rendition}: {}", chain(e))
            };
            let encoder = encoder_for(encoders, &**make, *id, rendition).map_err(|e| failed(&e))?;
            if keyframes & (1 << *id) != 0 {
                encoder.request_keyframe();
            }
            let packet = Arc::get_mut(out).expect("a frame's packet buffers are not shared");
            packet.seq = seq;
            packet.capture_us = capture_us;
            packet.rendition = *id;
            let encoded = if own_size && n + 1 == wanted.len() {
                // Its last use: an encoder may take the frame's pixels (raw rows) as they are.
                encoder.encode_last(frame, &mut packet.payload)
            } else if own_size {
                encoder.encode(frame, &mut packet.payload)
            } else {
                let i = match sizes.iter().position(|&s| s == size) {
                    Some(i) => i,
                    None => {
                        let i = sizes.len();
                        if resized.len() == i {
                            resized.push(Frame::empty(frame.format));
                        }
                        let (w, h) = size;
                        scaler.scale(frame, &mut resized[i], w, h).map_err(|e| {
                            format!("resizing frame {seq} to {w}x{h}: {}", chain(&e))
                        })?;
                        resized[i].seq = seq;
                        resized[i].capture_us = capture_us;
                        sizes.push(size);
                        i
                    }
                };
                encoder.encode(&resized[i], &mut packet.payload)
            };
            packet.keyframe = encoded.map_err(|e| failed(&e))?.is_keyframe();
        }
        Ok(())
    }
}

/// The encoder for rendition `id`, made now when there is none or it was made for another
/// rendition.
fn encoder_for<'a>(
    encoders: &'a mut Vec<Option<(Rendition, Box<dyn FrameEncoder>)>>,
    make: &MakeEncoder,
    id: usize,
    rendition: &Rendition,
) -> Result<&'a mut dyn FrameEncoder, SendError> {
    if id >= encoders.len() {
        encoders.resize_with(id + 1, || None);
    }
    let slot = &mut encoders[id];
    if slot.as_ref().is_none_or(|(made, _)| made != rendition) {
        // The old encoder goes first, so two are never held for one number.
        *slot = None;
        *slot = Some((*rendition, make(rendition)?));
    }
    let (_, encoder) = slot.as_mut().expect("made just now");
    Ok(&mut **encoder)
}

struct Worker {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// A frame in flight, in capture order.
enum Flight {
    /// With worker `i`.
    Worker(usize),
    /// Processed by the serving thread (or passed through), waiting for older frames.
    Done(Vec<Arc<Packet>>),
}

/// The resize-and-encode stage. See the module doc.
pub struct Encoding {
    own: Lane,
    workers: Vec<Worker>,
    /// Frames submitted so far.
    submitted: u64,
    in_flight: VecDeque<Flight>,
    /// Frame buffers not in flight.
    frames: Vec<Frame>,
    /// Packet buffers; one is free when no subscriber holds it.
    pool: Vec<Arc<Packet>>,
    /// Empty lists for a frame's packets.
    lists: Vec<Vec<Arc<Packet>>>,
    /// Empty lists of renditions, for a worker's jobs.
    wanted: Vec<Wanted>,
}

impl Encoding {
    /// A stage of `threads` lanes (the serving thread and `threads - 1` workers). Each lane
    /// gets a scaler from `make_scaler` and makes its encoders with `make_encoder`, the one for
    /// `first` (rendition 0) now.
    pub fn new(
        make_encoder: Arc<MakeEncoder>,
        make_scaler: &MakeScaler,
        threads: usize,
        first: &Rendition,
    ) -> Result<Encoding, SendError> {
        let mut encoding = Encoding {
            own: Lane::new(Arc::clone(&make_encoder), make_scaler(), first)?,
            workers: Vec::new(),
            submitted: 0,
            in_flight: VecDeque::new(),
            frames: Vec::new(),
            pool: Vec::new(),
            lists: Vec::new(),
            wanted: Vec::new(),
        };
        for i in 0..threads.saturating_sub(1) {
            let mut lane = Lane::new(Arc::clone(&make_encoder), make_scaler(), first)?;
            let (jobs, job_rx) = sync_channel::<Job>(1);
            let (done_tx, done) = sync_channel::<Done>(1);
            let thread = thread::Builder::new()
                .name(format!("framewire-encode-{i}"))
                .spawn(move || {
                    for mut job in job_rx {
                        let result = lane.process(
                            &mut job.frame,
                            &job.wanted,
                            job.keyframes,
                            &mut job.packets,
                        );
                        if done_tx.send((job, result)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| SendError::Stage(format!("cannot start an encoder thread: {e}")))?;
            encoding.workers.push(Worker {
                jobs,
                done,
                thread: Some(thread),
            });
        }
        Ok(encoding)
    }

    fn lanes(&self) -> u64 {
        self.workers.len() as u64 + 1
    }

    /// Frames' worth of buffers the pools keep.
    fn keep(&self) -> usize {
        8 + 2 * self.workers.len()
    }

    /// A packet buffer no subscriber holds.
    fn free_buffer(&mut self) -> Arc<Packet> {
        match self.pool.iter().position(|f| Arc::strong_count(f) == 1) {
            Some(i) => self.pool.swap_remove(i),
            None => Arc::new(Packet::default()),
        }
    }

    /// An empty list for a frame's packets.
    fn free_list(&mut self) -> Vec<Arc<Packet>> {
        self.lists
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_RENDITIONS))
    }

    /// Gives a published frame's packets back to the pool (a buffer is reused once no
    /// subscriber holds it any more), and the list that held them.
    pub fn recycle(&mut self, mut packets: Vec<Arc<Packet>>) {
        let keep = self.keep();
        for p in packets.drain(..) {
            if self.pool.len() < keep * MAX_RENDITIONS {
                self.pool.push(p);
            }
        }
        if self.lists.len() < keep {
            self.lists.push(packets);
        }
    }

    /// Resizes and encodes `frame` in each of the `wanted` renditions on its lane. A worker's
    /// lane takes the frame's buffer and `frame` gets a spare one back, and a raw rendition of
    /// the frame's size may take its pixels as the packet: either way `frame` comes back with
    /// stale pixels (the caller refills it), and no frame is copied. Then take what is ready with
    /// [`Encoding::next_ready`]. With nothing wanted, the frame comes back with no packets.
    /// Bit `id` of `keyframes`: rendition `id`'s packet of this frame is to be a keyframe.
    pub fn submit(
        &mut self,
        frame: &mut Frame,
        wanted: &[(usize, Rendition)],
        keyframes: u8,
    ) -> Result<(), SendError> {
        let mut packets = self.free_list();
        for _ in wanted {
            let buffer = self.free_buffer();
            packets.push(buffer);
        }
        let lane = (self.submitted % self.lanes()) as usize;
        self.submitted += 1;
        if lane == self.workers.len() {
            self.own
                .process(frame, wanted, keyframes, &mut packets)
                .map_err(SendError::Stage)?;
            self.in_flight.push_back(Flight::Done(packets));
            return Ok(());
        }
        let mut renditions = self
            .wanted
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_RENDITIONS));
        renditions.clear();
        renditions.extend_from_slice(wanted);
        let spare = self
            .frames
            .pop()
            .unwrap_or_else(|| Frame::empty(frame.format));
        let job = Job {
            frame: std::mem::replace(frame, spare),
            wanted: renditions,
            keyframes,
            packets,
        };
        self.workers[lane].jobs.send(job).map_err(|_| stopped())?;
        self.in_flight.push_back(Flight::Worker(lane));
        Ok(())
    }

    /// Queues a packet that needs no encoding (a camera's JPEG, passed through) behind the
    /// frames in flight, as rendition 0; `packet` gets a spare buffer back. Take it with
    /// [`Encoding::next_ready`].
    pub fn submit_packet(&mut self, packet: &mut Packet) {
        let mut out = self.free_buffer();
        let slot = Arc::get_mut(&mut out).expect("pooled packets are not shared");
        std::mem::swap(slot, packet);
        slot.rendition = 0;
        let mut packets = self.free_list();
        packets.push(out);
        self.in_flight.push_back(Flight::Done(packets));
    }

    /// The oldest frame's packets if it is done; when every lane has a frame in flight, waits
    /// for it. `None`: nothing is ready (submit the next frame). Calling it once per
    /// [`Encoding::submit`] hands frames out evenly spaced, one per frame in. Give the packets
    /// back with [`Encoding::recycle`] once they are published.
    pub fn next_ready(&mut self) -> Result<Option<Vec<Arc<Packet>>>, SendError> {
        let full = self.in_flight.len() as u64 >= self.lanes();
        self.pop(full)
    }

    /// The next frame still in flight, in capture order, waiting for it; `None` once every
    /// submitted frame has been handed back. Call it until `None` when the source ends.
    pub fn finish(&mut self) -> Result<Option<Vec<Arc<Packet>>>, SendError> {
        self.pop(true)
    }

    /// The oldest frame in flight: waiting for it when `wait`, else only if it is done.
    fn pop(&mut self, wait: bool) -> Result<Option<Vec<Arc<Packet>>>, SendError> {
        let (job, result) = match self.in_flight.front() {
            None => return Ok(None),
            Some(Flight::Done(_)) => {
                let Some(Flight::Done(packets)) = self.in_flight.pop_front() else {
                    unreachable!("the front was just seen to be done");
                };
                return Ok(Some(packets));
            }
            Some(Flight::Worker(i)) => {
                let done = &self.workers[*i].done;
                if wait {
                    done.recv().map_err(|_| stopped())?
                } else {
                    match done.try_recv() {
                        Ok(d) => d,
                        Err(TryRecvError::Empty) => return Ok(None),
                        Err(TryRecvError::Disconnected) => return Err(stopped()),
                    }
                }
            }
        };
        self.in_flight.pop_front();
        let Job {
            frame,
            wanted,
            packets,
            ..
        } = job;
        self.frames.push(frame);
        self.wanted.push(wanted);
        result.map_err(SendError::Stage)?;
        Ok(Some(packets))
    }
}

fn stopped() -> SendError {
    SendError::Stage("an encoder thread stopped".to_string())
}

impl Drop for Encoding {
    fn drop(&mut self) {
        for w in &mut self.workers {
            // Closing the job channel ends the thread; a pending result is dropped with it.
            let (closed, _) = sync_channel(0);
            drop(std::mem::replace(&mut w.jobs, closed));
            while w.done.recv().is_ok() {}
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::test_lanes::{
        counting_encoders, counting_scaler, encoders, read, rendition, scaler,
    };
    use framewire_core::{CodecError, CodecKind, Encoded, PixelFormat};

    /// A source frame: 8x4, every byte the frame's number.
    fn source(frame: &mut Frame, seq: u64) {
        frame.reset(8, 4, PixelFormat::Rgb8);
        frame.seq = seq;
        frame.capture_us = 1000 + seq;
        frame.pixels.fill(seq as u8);
    }

    /// Checks a frame's packets against the renditions it was submitted with.
    fn check(packets: &[Arc<Packet>], wanted: &[(usize, Rendition)]) -> u64 {
        assert_eq!(
            packets.len(),
            wanted.len(),
            "one packet per wanted rendition"
        );
        let seq = packets.first().map_or(u64::MAX, |p| p.seq);
        for (p, (id, r)) in packets.iter().zip(wanted) {
            assert_eq!((p.seq, p.capture_us), (seq, 1000 + seq));
            assert_eq!(p.rendition, *id, "frame {seq}");
            assert!(p.keyframe);
            let at = (r.stream.width, r.stream.height, r.quality, seq as u8);
            assert_eq!(read(&p.payload), at, "frame {seq} as {r}");
        }
        seq
    }

    /// Runs frames 0..n through `enc`, frame k encoded in `wanted(k)`, checking every packet;
    /// returns the frame numbers in the order they came out.
    fn run(
        enc: &mut Encoding,
        threads: usize,
        n: u64,
        wanted: impl Fn(u64) -> Vec<(usize, Rendition)>,
    ) -> Vec<u64> {
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        let mut got = Vec::new();
        let mut take = |packets: Vec<Arc<Packet>>, enc: &mut Encoding| {
            let seq = check(&packets, &wanted(packets[0].seq));
            got.push(seq);
            enc.recycle(packets);
        };
        for seq in 0..n {
            source(&mut frame, seq);
            enc.submit(&mut frame, &wanted(seq), 0).unwrap();
            if let Some(packets) = enc.next_ready().unwrap() {
                take(packets, enc);
            }
            assert!(
                enc.in_flight.len() < threads,
                "{threads} lanes: fewer than one frame per lane left in flight"
            );
        }
        while let Some(packets) = enc.finish().unwrap() {
            take(packets, enc);
        }
        got
    }

    #[test]
    fn every_lane_count_keeps_capture_order_in_every_rendition_from_pooled_buffers() {
        // Three sizes, one of them the source's: two resizes a frame, shared by 1 and 2.
        let wanted = vec![
            (0, rendition(8, 4, 80)),
            (1, rendition(4, 2, 50)),
            (2, rendition(4, 2, 30)),
            (3, rendition(2, 1, 50)),
        ];
        for threads in 1..=3 {
            let scaled = Arc::new(AtomicUsize::new(0));
            let make_scaler = counting_scaler(Arc::clone(&scaled));
            let mut enc = Encoding::new(encoders(), &make_scaler, threads, &wanted[0].1).unwrap();
            let got = run(&mut enc, threads, 20, |_| wanted.clone());
            assert_eq!(got, (0..20).collect::<Vec<_>>(), "{threads} threads");
            assert_eq!(
                scaled.load(Ordering::SeqCst),
                20 * 2,
                "{threads} threads: one resize per frame and size"
            );
            // Everything was recycled: the pools hold every buffer ever made, no more than
            // were in use at once (a frame per lane).
            assert!(
                enc.pool.len() <= threads * wanted.len(),
                "{threads} threads: {} packet buffers",
                enc.pool.len()
            );
            assert!(enc.lists.len() <= threads, "{threads} threads");
            assert!(enc.wanted.len() < threads, "{threads} threads");
            assert!(enc.frames.len() < threads, "{threads} threads");
        }
    }

    #[test]
    fn only_wanted_renditions_are_encoded_and_the_packets_follow_a_change() {
        let r = [
            rendition(8, 4, 80),
            rendition(4, 2, 50),
            rendition(2, 1, 50),
            rendition(4, 2, 20),
        ];
        let wanted = |seq: u64| match seq {
            0..10 => vec![(0, r[0]), (1, r[1])],
            10..20 => vec![(2, r[2])],
            20..25 => vec![],
            _ => vec![(0, r[0]), (2, r[2]), (3, r[3])],
        };
        for threads in 1..=3 {
            let made = Arc::new(AtomicUsize::new(0));
            let make = counting_encoders(Arc::clone(&made));
            let mut enc = Encoding::new(make, &scaler, threads, &r[0]).unwrap();
            let mut frame = Frame::empty(PixelFormat::Rgb8);
            let mut got = Vec::new();
            let mut take = |packets: Vec<Arc<Packet>>, seq: &mut u64, enc: &mut Encoding| {
                check(&packets, &wanted(*seq));
                got.push((*seq, packets.len()));
                *seq += 1;
                enc.recycle(packets);
            };
            let mut out = 0;
            for seq in 0..30 {
                source(&mut frame, seq);
                enc.submit(&mut frame, &wanted(seq), 0).unwrap();
                if let Some(packets) = enc.next_ready().unwrap() {
                    take(packets, &mut out, &mut enc);
                }
            }
            while let Some(packets) = enc.finish().unwrap() {
                take(packets, &mut out, &mut enc);
            }
            let counts: Vec<_> = got.iter().map(|&(_, n)| n).collect();
            let want: Vec<_> = (0..30).map(|s| wanted(s).len()).collect();
            assert_eq!(counts, want, "{threads} threads: every frame, its packets");
            assert_eq!(
                made.load(Ordering::SeqCst),
                threads * 4,
                "{threads} threads: each lane makes one encoder per rendition, once"
            );
        }
    }

    #[test]
    fn a_rendition_number_that_names_another_rendition_gets_a_new_encoder() {
        let top = rendition(8, 4, 80);
        // Number 1: 4x2@50, then 2x1@50 (another size), then 2x1@70 (another quality).
        let wanted = |seq: u64| {
            let one = match seq {
                0..6 => rendition(4, 2, 50),
                6..12 => rendition(2, 1, 50),
                _ => rendition(2, 1, 70),
            };
            vec![(0, top), (1, one)]
        };
        for threads in 1..=2 {
            let made = Arc::new(AtomicUsize::new(0));
            let make = counting_encoders(Arc::clone(&made));
            let mut enc = Encoding::new(make, &scaler, threads, &top).unwrap();
            // The probe encoder refuses a frame of another size than it was made for, and
            // writes the quality it was made for: `run` checks both.
            let got = run(&mut enc, threads, 18, wanted);
            assert_eq!(got, (0..18).collect::<Vec<_>>());
            assert_eq!(made.load(Ordering::SeqCst), threads * (1 + 3));
        }
    }

    #[test]
    fn a_frame_that_cannot_be_encoded_is_an_error_naming_it_and_the_rendition() {
        let top = rendition(4, 2, 80);
        let mut bincode = rendition(4, 2, 0);
        bincode.stream.codec = CodecKind::Bincode;
        // A frame too short for its size (the encoder refuses it), and a rendition after the
        // top one that has no encoder.
        let cases = [
            (
                vec![(2, rendition(4, 2, 50))],
                "encoding frame 7 as 4x2@50: ",
            ),
            (
                vec![(0, top), (2, bincode)],
                "encoding frame 7 as 4x2@bincode: no bincode encoder here",
            ),
        ];
        for threads in [1, 2] {
            for (wanted, want) in &cases {
                let mut enc = Encoding::new(encoders(), &scaler, threads, &top).unwrap();
                let mut bad = Frame::new(4, 2, PixelFormat::Rgb8);
                bad.seq = 7;
                if wanted.len() == 1 {
                    bad.pixels.truncate(3); // shorter than 4x2 rgb8
                }
                let mut result = enc.submit(&mut bad, wanted, 0).map(|()| None);
                while matches!(result, Ok(None)) && !enc.in_flight.is_empty() {
                    result = enc.finish();
                }
                let err = result.expect_err("the frame fails").to_string();
                assert!(err.starts_with(want), "{threads} threads: {err}");
            }
        }
    }

    #[test]
    fn a_first_rendition_without_an_encoder_fails_at_the_start() {
        let mut bincode = rendition(4, 2, 0);
        bincode.stream.codec = CodecKind::Bincode;
        let err = Encoding::new(encoders(), &scaler, 2, &bincode)
            .err()
            .expect("no encoder for rendition 0");
        assert!(err.to_string().contains("no bincode encoder"), "{err}");
    }

    /// Encodes a copy as the byte `c`; as the frame's last use, takes its pixels.
    struct Taking;

    impl FrameEncoder for Taking {
        fn kind(&self) -> CodecKind {
            CodecKind::Raw
        }

        fn output_format(&self, input: PixelFormat) -> PixelFormat {
            input
        }

        fn encode(&mut self, _: &Frame, dst: &mut Vec<u8>) -> Result<Encoded, CodecError> {
            *dst = b"c".to_vec();
            Ok(Encoded::Keyframe)
        }

        fn encode_last(
            &mut self,
            frame: &mut Frame,
            dst: &mut Vec<u8>,
        ) -> Result<Encoded, CodecError> {
            std::mem::swap(&mut frame.pixels, dst);
            Ok(Encoded::Keyframe)
        }
    }

    #[test]
    fn only_the_last_rendition_of_the_frames_own_size_may_take_its_pixels() {
        let make: Arc<MakeEncoder> = Arc::new(|_: &Rendition| Ok(Box::new(Taking) as _));
        let top = rendition(8, 4, 80);
        // The frame's size, a smaller one resized from it, the frame's size again: the last.
        let wanted = [(0, top), (1, rendition(4, 2, 50)), (2, rendition(8, 4, 30))];
        for threads in 1..=2 {
            let mut enc = Encoding::new(Arc::clone(&make), &scaler, threads, &top).unwrap();
            let mut frame = Frame::empty(PixelFormat::Rgb8);
            source(&mut frame, 7);
            let pixels = frame.pixels.as_ptr();
            enc.submit(&mut frame, &wanted, 0).unwrap();
            let packets = enc.finish().unwrap().expect("the frame's packets");
            let payloads: Vec<&[u8]> = packets.iter().map(|p| &p.payload[..]).collect();
            assert_eq!(
                payloads,
                [&b"c"[..], b"c", &[7u8; 96][..]],
                "{threads} lanes"
            );
            assert_eq!(
                packets[2].payload.as_ptr(),
                pixels,
                "{threads} lanes: not copied"
            );
        }
    }

    #[test]
    fn a_passed_through_packet_is_rendition_0_in_capture_order() {
        let top = rendition(8, 4, 80);
        let mut enc = Encoding::new(encoders(), &scaler, 2, &top).unwrap();
        let mut frame = Frame::empty(PixelFormat::Rgb8);
        source(&mut frame, 0);
        enc.submit(&mut frame, &[(0, top), (1, rendition(4, 2, 50))], 0)
            .unwrap();
        let mut packet = Packet {
            seq: 1,
            rendition: 5,
            payload: vec![9; 3],
            ..Packet::default()
        };
        enc.submit_packet(&mut packet);
        let mut got = Vec::new();
        while let Some(packets) = enc.finish().unwrap() {
            got.push(
                packets
                    .iter()
                    .map(|p| (p.seq, p.rendition))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(got, [vec![(0, 0), (0, 1)], vec![(1, 0)]]);
    }
}
