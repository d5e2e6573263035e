//! The send path's resize-and-encode stage, on one thread or several, handing packets back in
//! capture order. Encoded buffers come from a pool and return to it, and frames move between
//! threads by swapping buffers, so the steady state allocates and copies nothing.
//!
//! The stage has T lanes; each lane resizes (when asked) and encodes with its own
//! [`Scaler`] and encoder. Lane T-1 is the serving thread itself and lanes 0..T-1 are worker
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
//! same queue with [`Encoding::submit_packet`], so every packet leaves by one path.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::{self, JoinHandle};

use framewire_core::{Frame, FrameEncoder, Packet, Scaler};

use crate::{SendError, chain};

/// What one lane resizes and encodes with.
pub type LaneParts = (Box<dyn FrameEncoder>, Box<dyn Scaler>);

/// Builds one lane's encoder and scaler (one of each per lane).
pub type MakeLane = dyn Fn() -> Result<LaneParts, SendError> + Sync;

type Done = (Frame, Arc<Packet>, Result<(), String>);

/// What one lane owns: its encoder, and its scaler and resize buffer.
struct Lane {
    encoder: Box<dyn FrameEncoder>,
    resize_to: Option<(u32, u32)>,
    scaler: Box<dyn Scaler>,
    resized: Frame,
}

impl Lane {
    fn new(make: &MakeLane, resize_to: Option<(u32, u32)>) -> Result<Lane, SendError> {
        let (encoder, scaler) = make()?;
        Ok(Lane {
            encoder,
            resize_to,
            scaler,
            resized: Frame::empty(framewire_core::PixelFormat::Rgb8),
        })
    }

    /// Resizes (if asked) and encodes `frame` into `out`; an error names the frame.
    fn process(&mut self, frame: &Frame, out: &mut Packet) -> Result<(), String> {
        out.seq = frame.seq;
        out.capture_us = frame.capture_us;
        let frame = match self.resize_to {
            Some((w, h)) => {
                self.scaler
                    .scale(frame, &mut self.resized, w, h)
                    .map_err(|e| format!("resizing frame {}: {}", frame.seq, chain(&e)))?;
                &self.resized
            }
            None => frame,
        };
        let encoded = self
            .encoder
            .encode(frame, &mut out.payload)
            .map_err(|e| format!("encoding frame {}: {}", frame.seq, chain(&e)))?;
        out.keyframe = encoded.is_keyframe();
        Ok(())
    }
}

struct Worker {
    jobs: SyncSender<(Frame, Arc<Packet>)>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// A frame in flight, in capture order.
enum Flight {
    /// With worker `i`.
    Worker(usize),
    /// Processed by the serving thread (or passed through), waiting for older frames.
    Done(Arc<Packet>),
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
}

impl Encoding {
    /// A stage of `threads` lanes (the serving thread and `threads - 1` workers) that resize
    /// frames to `resize_to` (none: as they are) and encode them.
    pub fn new(
        make: &MakeLane,
        threads: usize,
        resize_to: Option<(u32, u32)>,
    ) -> Result<Encoding, SendError> {
        let mut encoding = Encoding {
            own: Lane::new(make, resize_to)?,
            workers: Vec::new(),
            submitted: 0,
            in_flight: VecDeque::new(),
            frames: Vec::new(),
            pool: Vec::new(),
        };
        for i in 0..threads.saturating_sub(1) {
            let mut lane = Lane::new(make, resize_to)?;
            let (jobs, job_rx) = sync_channel::<(Frame, Arc<Packet>)>(1);
            let (done_tx, done) = sync_channel::<Done>(1);
            let thread = thread::Builder::new()
                .name(format!("framewire-encode-{i}"))
                .spawn(move || {
                    for (frame, mut out) in job_rx {
                        let encoded = Arc::get_mut(&mut out).expect("a job's buffer is not shared");
                        let result = lane.process(&frame, encoded);
                        if done_tx.send((frame, out, result)).is_err() {
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

    /// A packet buffer no subscriber holds.
    fn free_buffer(&mut self) -> Arc<Packet> {
        match self.pool.iter().position(|f| Arc::strong_count(f) == 1) {
            Some(i) => self.pool.swap_remove(i),
            None => Arc::new(Packet::default()),
        }
    }

    /// Gives a published buffer back to the pool.
    pub fn recycle(&mut self, encoded: Arc<Packet>) {
        if self.pool.len() < 8 + 2 * self.workers.len() {
            self.pool.push(encoded);
        }
    }

    /// Resizes and encodes `frame` on its lane. A worker's lane takes the frame's buffer and
    /// `frame` gets a spare one back (stale pixels: the caller refills it), so no frame is
    /// copied. Then take what is ready with [`Encoding::next_ready`].
    pub fn submit(&mut self, frame: &mut Frame) -> Result<(), SendError> {
        let mut out = self.free_buffer();
        let lane = (self.submitted % self.lanes()) as usize;
        self.submitted += 1;
        if lane == self.workers.len() {
            let encoded = Arc::get_mut(&mut out).expect("pooled packets are not shared");
            self.own.process(frame, encoded).map_err(SendError::Stage)?;
            self.in_flight.push_back(Flight::Done(out));
            return Ok(());
        }
        let spare = self
            .frames
            .pop()
            .unwrap_or_else(|| Frame::empty(frame.format));
        let job = std::mem::replace(frame, spare);
        self.workers[lane]
            .jobs
            .send((job, out))
            .map_err(|_| stopped())?;
        self.in_flight.push_back(Flight::Worker(lane));
        Ok(())
    }

    /// Queues a packet that needs no encoding (a camera's JPEG, passed through) behind the
    /// frames in flight; `packet` gets a spare buffer back. Take it with [`Encoding::next_ready`].
    pub fn submit_packet(&mut self, packet: &mut Packet) {
        let mut out = self.free_buffer();
        let slot = Arc::get_mut(&mut out).expect("pooled packets are not shared");
        std::mem::swap(slot, packet);
        self.in_flight.push_back(Flight::Done(out));
    }

    /// The oldest encoded frame if it is done; when every lane has a frame in flight, waits
    /// for it. `None`: nothing is ready (submit the next frame). Calling it once per
    /// [`Encoding::submit`] hands frames out evenly spaced, one per frame in.
    pub fn next_ready(&mut self) -> Result<Option<Arc<Packet>>, SendError> {
        let full = self.in_flight.len() as u64 >= self.lanes();
        self.pop(full)
    }

    /// The next frame still in flight, in capture order, waiting for it; `None` once every
    /// submitted frame has been handed back. Call it until `None` when the source ends.
    pub fn finish(&mut self) -> Result<Option<Arc<Packet>>, SendError> {
        self.pop(true)
    }

    /// The oldest frame in flight: waiting for it when `wait`, else only if it is done.
    fn pop(&mut self, wait: bool) -> Result<Option<Arc<Packet>>, SendError> {
        let (frame, out, result) = match self.in_flight.front() {
            None => return Ok(None),
            Some(Flight::Done(_)) => {
                let Some(Flight::Done(out)) = self.in_flight.pop_front() else {
                    unreachable!("the front was just seen to be done");
                };
                return Ok(Some(out));
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
        self.frames.push(frame);
        result.map_err(SendError::Stage)?;
        Ok(Some(out))
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
    use super::*;
    use crate::test_lanes::make;
    use framewire_core::PixelFormat;

    #[test]
    fn every_lane_count_keeps_capture_order_and_loses_nothing() {
        for threads in [1, 2, 3] {
            for resize_to in [None, Some((2, 1))] {
                let mut enc = Encoding::new(&make, threads, resize_to).unwrap();
                let mut frame = Frame::new(4, 2, PixelFormat::Rgb8);
                let mut got = Vec::new();
                let want_len = if resize_to.is_some() { 6 } else { 24 };
                let mut take = |e: Arc<Packet>, enc: &mut Encoding| {
                    assert_eq!(e.payload, vec![e.seq as u8; want_len], "frame {}", e.seq);
                    got.push(e.seq);
                    enc.recycle(e);
                };
                for seq in 0..20u64 {
                    frame.reset(4, 2, PixelFormat::Rgb8);
                    frame.seq = seq;
                    frame.pixels.fill(seq as u8);
                    enc.submit(&mut frame).unwrap();
                    if let Some(e) = enc.next_ready().unwrap() {
                        take(e, &mut enc);
                    }
                    assert!(
                        enc.in_flight.len() < threads,
                        "{threads} lanes: fewer than one frame per lane left in flight"
                    );
                }
                while let Some(e) = enc.finish().unwrap() {
                    take(e, &mut enc);
                }
                let want: Vec<u64> = (0..20).collect();
                assert_eq!(got, want, "{threads} threads, resize {resize_to:?}");
            }
        }
    }

    #[test]
    fn a_frame_that_cannot_be_encoded_is_an_error_naming_it() {
        for threads in [1, 2] {
            let mut enc = Encoding::new(&make, threads, None).unwrap();
            let mut bad = Frame::new(4, 2, PixelFormat::Rgb8);
            bad.seq = 7;
            bad.pixels.truncate(3); // shorter than 4x2 rgb8: the raw encoder refuses it
            let mut result = enc.submit(&mut bad).map(|()| None);
            while matches!(result, Ok(None)) && !enc.in_flight.is_empty() {
                result = enc.finish();
            }
            let err = format!("{:#}", result.expect_err("a short frame fails"));
            assert!(err.contains("frame 7"), "{threads} threads: {err}");
        }
    }
}
