//! [`ReadAhead`]: a file source read one frame ahead on a thread of its own, so that reading and
//! converting the next frame overlaps sending this one. Nothing is dropped (unlike a camera's
//! newest-wins slot): the thread waits until its frame is taken, and the frames' buffers go
//! round between the two threads.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use framewire_core::{CaptureError, Frame, FrameSource, PixelFormat, SourceInfo};

/// What the reading thread hands over: a frame, the end, or why it stopped.
type Read = Result<Option<Frame>, CaptureError>;

/// A source run one frame ahead on its own thread.
pub struct ReadAhead {
    info: SourceInfo,
    full: Receiver<Read>,
    empty: SyncSender<Frame>,
    ended: bool,
}

impl ReadAhead {
    /// Runs `source` on its own thread, one frame ahead of [`next_frame`](FrameSource::next_frame).
    pub fn new(mut source: Box<dyn FrameSource>) -> Result<ReadAhead, CaptureError> {
        let info = source.info();
        let (full_tx, full) = sync_channel::<Read>(1);
        let (empty, empty_rx) = sync_channel::<Frame>(2);
        thread::Builder::new()
            .name("file-read-ahead".into())
            .spawn(move || {
                let mut frame = Frame::empty(PixelFormat::Rgb8);
                loop {
                    let read = match source.next_frame(&mut frame) {
                        Ok(true) => Ok(Some(frame)),
                        Ok(false) => Ok(None),
                        Err(e) => Err(e),
                    };
                    let more = matches!(read, Ok(Some(_)));
                    // The reader went away, or the source ended: the thread ends.
                    if full_tx.send(read).is_err() || !more {
                        return;
                    }
                    frame = match empty_rx.recv() {
                        Ok(f) => f,
                        Err(_) => return,
                    };
                }
            })
            .map_err(|e| CaptureError::Backend {
                context: format!("cannot start the thread that reads {}", info.name),
                source: Box::new(e),
            })?;
        Ok(ReadAhead {
            info,
            full,
            empty,
            ended: false,
        })
    }
}

impl FrameSource for ReadAhead {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
        if self.ended {
            return Ok(false);
        }
        match self.full.recv() {
            Ok(Ok(Some(mut frame))) => {
                std::mem::swap(dst, &mut frame);
                // The buffer goes back for the frame after next.
                let _ = self.empty.send(frame);
                Ok(true)
            }
            Ok(Ok(None)) => {
                self.ended = true;
                Ok(false)
            }
            Ok(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(_) => {
                self.ended = true;
                Err(CaptureError::Device {
                    source_name: self.info.name.clone(),
                    reason: "its reading thread stopped".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames numbered 0..n, each filled with its number, then the end or an error.
    struct Counting {
        n: u64,
        next: u64,
        fail: bool,
    }

    impl FrameSource for Counting {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                name: "counting".into(),
                width: 4,
                height: 2,
                format: PixelFormat::Rgb8,
                fps: 0.0,
            }
        }

        fn next_frame(&mut self, dst: &mut Frame) -> Result<bool, CaptureError> {
            if self.next == self.n {
                if self.fail {
                    return Err(CaptureError::Device {
                        source_name: "counting".into(),
                        reason: "byte 99: cut short".into(),
                    });
                }
                return Ok(false);
            }
            dst.reset(4, 2, PixelFormat::Rgb8);
            dst.pixels.fill(self.next as u8);
            dst.seq = self.next;
            self.next += 1;
            Ok(true)
        }
    }

    #[test]
    fn every_frame_comes_in_order_then_the_end_or_the_error_and_nothing_after() {
        for fail in [false, true] {
            let source = Counting {
                n: 50,
                next: 0,
                fail,
            };
            let mut ahead = ReadAhead::new(Box::new(source)).unwrap();
            let mut frame = Frame::empty(PixelFormat::Rgb8);
            for n in 0..50u64 {
                assert!(ahead.next_frame(&mut frame).unwrap());
                assert_eq!(frame.seq, n);
                assert_eq!((frame.width, frame.height), (4, 2));
                assert!(
                    frame.pixels.iter().all(|&p| p == n as u8),
                    "frame {n} whole"
                );
            }
            match ahead.next_frame(&mut frame) {
                Ok(false) => assert!(!fail),
                Err(e) => assert!(fail && e.to_string().contains("byte 99"), "{e}"),
                Ok(true) => panic!("a frame after the last"),
            }
            assert!(!ahead.next_frame(&mut frame).unwrap(), "ended stays ended");
        }
    }
}
