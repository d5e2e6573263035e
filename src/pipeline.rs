//! `serve`'s encode stage: frames are encoded inline (one thread), or by N encoder threads
//! working on alternate frames while the serving thread captures and resizes the next ones,
//! handed back in capture order. Encoded buffers come from a pool and return to it, so the
//! steady state allocates nothing.
//!
//! With N threads, frame k goes to thread k % N over a one-job channel and its result is read
//! back from thread k % N: round robin keeps the order without sorting. The oldest frame is
//! handed back as soon as it is encoded; the serving thread waits for it only when 2N frames
//! are in flight, so it goes on capturing and resizing while both encoders are busy (waiting
//! at N in flight left a core idle whenever the oldest frame was late). That costs up to 2N
//! frames of latency: worth it unpaced (`--fps 0`), where throughput is the point, and not at
//! a paced rate the single thread keeps up with; `serve` picks the thread count accordingly.
//! [`Encoding::finish`] hands back what is still in flight when the source ends.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::{self, JoinHandle};

use anyhow::Context;
use framewire_core::{Frame, FrameEncoder};
use framewire_net::EncodedFrame;

/// Builds one encoder (one per thread).
pub type MakeEncoder = dyn Fn() -> anyhow::Result<Box<dyn FrameEncoder>>;

type Done = (Frame, Arc<EncodedFrame>, Result<(), String>);

struct Worker {
    jobs: SyncSender<(Frame, Arc<EncodedFrame>)>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// The encode stage. See the module doc.
pub struct Encoding {
    inline: Option<Box<dyn FrameEncoder>>,
    workers: Vec<Worker>,
    /// Frames submitted and frames collected so far.
    submitted: u64,
    collected: u64,
    /// Frame buffers not in flight.
    frames: Vec<Frame>,
    /// Encoded buffers; one is free when no viewer holds it.
    pool: Vec<Arc<EncodedFrame>>,
}

impl Encoding {
    /// `threads` 1 encodes inline; more starts that many encoder threads.
    pub fn new(make: &MakeEncoder, threads: usize) -> anyhow::Result<Encoding> {
        let mut encoding = Encoding {
            inline: None,
            workers: Vec::new(),
            submitted: 0,
            collected: 0,
            frames: Vec::new(),
            pool: Vec::new(),
        };
        if threads <= 1 {
            encoding.inline = Some(make()?);
            return Ok(encoding);
        }
        for i in 0..threads {
            let mut encoder = make()?;
            let (jobs, job_rx) = sync_channel::<(Frame, Arc<EncodedFrame>)>(1);
            let (done_tx, done) = sync_channel::<Done>(1);
            let thread = thread::Builder::new()
                .name(format!("framewire-encode-{i}"))
                .spawn(move || {
                    for (frame, mut out) in job_rx {
                        let encoded = Arc::get_mut(&mut out).expect("a job's buffer is not shared");
                        encoded.seq = frame.seq;
                        encoded.capture_us = frame.capture_us;
                        let result = encoder
                            .encode(&frame, &mut encoded.payload)
                            .map_err(|e| format!("encoding frame {}: {e}", frame.seq));
                        if done_tx.send((frame, out, result)).is_err() {
                            return;
                        }
                    }
                })
                .context("cannot start an encoder thread")?;
            encoding.workers.push(Worker {
                jobs,
                done,
                thread: Some(thread),
            });
        }
        Ok(encoding)
    }

    /// An encoded buffer no viewer holds, for a payload that needs no encoding (passthrough).
    pub fn free_buffer(&mut self) -> Arc<EncodedFrame> {
        match self.pool.iter().position(|f| Arc::strong_count(f) == 1) {
            Some(i) => self.pool.swap_remove(i),
            None => Arc::new(EncodedFrame::default()),
        }
    }

    /// Gives a published buffer back to the pool.
    pub fn recycle(&mut self, encoded: Arc<EncodedFrame>) {
        if self.pool.len() < 8 + 2 * self.workers.len() {
            self.pool.push(encoded);
        }
    }

    /// Encodes `frame`: inline, the encoded frame at once; threaded, the oldest encoded frame
    /// if it is done (waiting for it when 2N frames are in flight), else `None`. Threaded, the
    /// frame's buffer goes to an encoder thread and `frame` gets a spare one back (its pixels
    /// are stale: the caller refills it), so no frame is copied.
    pub fn submit(&mut self, frame: &mut Frame) -> anyhow::Result<Option<Arc<EncodedFrame>>> {
        let mut out = self.free_buffer();
        if let Some(encoder) = &mut self.inline {
            let encoded = Arc::get_mut(&mut out).expect("pooled frames are not shared");
            encoded.seq = frame.seq;
            encoded.capture_us = frame.capture_us;
            encoder
                .encode(frame, &mut encoded.payload)
                .with_context(|| format!("encoding frame {}", frame.seq))?;
            return Ok(Some(out));
        }
        let spare = self
            .frames
            .pop()
            .unwrap_or_else(|| Frame::empty(frame.format));
        let job = std::mem::replace(frame, spare);
        let n = self.workers.len() as u64;
        let worker = &self.workers[(self.submitted % n) as usize];
        worker
            .jobs
            .send((job, out))
            .map_err(|_| anyhow::anyhow!("an encoder thread stopped"))?;
        self.submitted += 1;
        let wait = self.submitted - self.collected >= 2 * n;
        self.collect(wait)
    }

    /// The next encoded frame still in flight, in capture order, waiting for it; `None` once
    /// every submitted frame has been handed back. Call it until `None` when the source ends.
    pub fn finish(&mut self) -> anyhow::Result<Option<Arc<EncodedFrame>>> {
        if self.submitted == self.collected {
            return Ok(None);
        }
        self.collect(true)
    }

    /// The oldest frame in flight: waiting for it when `wait`, else only if it is done.
    fn collect(&mut self, wait: bool) -> anyhow::Result<Option<Arc<EncodedFrame>>> {
        let n = self.workers.len() as u64;
        let worker = &self.workers[(self.collected % n) as usize];
        let stopped = || anyhow::anyhow!("an encoder thread stopped");
        let (frame, out, result) = if wait {
            worker.done.recv().map_err(|_| stopped())?
        } else {
            match worker.done.try_recv() {
                Ok(done) => done,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(stopped()),
            }
        };
        self.collected += 1;
        self.frames.push(frame);
        result.map_err(anyhow::Error::msg)?;
        Ok(Some(out))
    }
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
    use framewire_codec::EncodeOptions;
    use framewire_core::{CodecKind, PixelFormat};

    fn make() -> anyhow::Result<Box<dyn FrameEncoder>> {
        Ok(framewire_codec::encoder(
            CodecKind::Raw,
            &EncodeOptions::default(),
        )?)
    }

    #[test]
    fn threaded_encoding_keeps_capture_order_and_loses_nothing() {
        for threads in [1, 2, 3] {
            let mut enc = Encoding::new(&make, threads).unwrap();
            let mut frame = Frame::new(4, 2, PixelFormat::Rgb8);
            let mut got = Vec::new();
            let mut take = |e: Arc<EncodedFrame>, enc: &mut Encoding| {
                assert_eq!(e.payload, vec![e.seq as u8; 24]);
                got.push(e.seq);
                enc.recycle(e);
            };
            for seq in 0..20u64 {
                frame.reset(4, 2, PixelFormat::Rgb8);
                frame.seq = seq;
                frame.pixels.fill(seq as u8);
                if let Some(e) = enc.submit(&mut frame).unwrap() {
                    take(e, &mut enc);
                }
                assert!(
                    enc.submitted - enc.collected <= 2 * threads as u64,
                    "at most 2N frames in flight"
                );
            }
            while let Some(e) = enc.finish().unwrap() {
                take(e, &mut enc);
            }
            assert_eq!(got, (0..20).collect::<Vec<u64>>(), "{threads} threads");
            assert!(
                enc.finish().unwrap().is_none(),
                "nothing left after the end"
            );
        }
    }
}
