//! A framewire recording as a source: its packets handed over as they were recorded, never
//! decoded, at their original pace (or at the fps asked for). The packets of the first stream
//! record are replayed; a stretch in another stream (a viewer moved to another rung while
//! recording) is skipped. A recording cut short ends at its last whole record.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use framewire_core::{
    CaptureError, CodecKind, CompressedFrame, Frame, FrameSource, SourceInfo, now_micros,
};
use framewire_file::recording::{ReadError, Reader, Record, StreamRecord};
use framewire_pattern::Pacer;

use super::{SourceOptions, label, open, open_error, read_error};

/// How the replay is paced.
enum Pace {
    /// As recorded: packet `at_us` is due `at_us - first` after the replay's start.
    Original { start: Option<(Instant, u64)> },
    /// At a rate.
    Fps(Pacer),
}

/// The packets of a recording.
pub struct ReplaySource {
    path: PathBuf,
    reader: Reader<BufReader<File>>,
    stream: StreamRecord,
    looping: bool,
    pace: Pace,
    fps: f64,
    /// Whether the packets being read are of the first stream.
    in_stream: bool,
    /// Added to recorded sequence numbers, so a looped replay's keep rising.
    seq_base: u64,
    last_seq: u64,
    count: u64,
    /// `count` when the replay last started again (a loop that replays nothing ends).
    count_at_restart: u64,
}

impl ReplaySource {
    /// Opens `path`; its first record must say what the stream is.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<ReplaySource, CaptureError> {
        let (reader, stream) = start(path).map_err(|e| open_error(path, e))?;
        let pace = match options.fps {
            Some(fps) => Pace::Fps(Pacer::new(fps)),
            None => Pace::Original { start: None },
        };
        Ok(ReplaySource {
            path: path.to_path_buf(),
            reader,
            stream,
            looping: options.looping,
            pace,
            fps: options.fps.unwrap_or(stream.fps),
            in_stream: true,
            seq_base: 0,
            last_seq: 0,
            count: 0,
            count_at_restart: 0,
        })
    }

    /// Waits until the packet recorded at `at_us` is due.
    fn wait(&mut self, at_us: u64) {
        let wait = match &mut self.pace {
            Pace::Fps(pacer) => pacer.wait(self.count, Instant::now()),
            Pace::Original { start } => {
                let (t0, first) = *start.get_or_insert((Instant::now(), at_us));
                let due = t0 + Duration::from_micros(at_us.saturating_sub(first));
                due.saturating_duration_since(Instant::now())
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// Starts again at the beginning, pacing from now.
    fn restart(&mut self) -> Result<(), CaptureError> {
        let (reader, stream) = start(&self.path).map_err(|e| read_error(&self.path, e))?;
        if stream != self.stream {
            return Err(read_error(
                &self.path,
                "byte 12: the file changed while it was replayed",
            ));
        }
        self.reader = reader;
        self.in_stream = true;
        self.seq_base = self.last_seq + 1;
        if let Pace::Original { start } = &mut self.pace {
            *start = None;
        }
        Ok(())
    }
}

/// Opens a recording and reads its first record, which must be a stream record.
fn start(path: &Path) -> Result<(Reader<BufReader<File>>, StreamRecord), String> {
    let mut reader =
        Reader::new(open(path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let at = reader.position();
    match reader.next_record(&mut Vec::new()) {
        Ok(Some(Record::Stream(stream))) => Ok((reader, stream)),
        Ok(Some(Record::Packet(_))) => Err(format!(
            "byte {at}: the recording starts with a packet, not with what its stream is"
        )),
        Ok(None) => Err(format!("byte {at}: the recording holds no stream")),
        Err(e) => Err(e.to_string()),
    }
}

impl FrameSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        let s = self.stream.rendition.stream;
        SourceInfo {
            name: format!(
                "recording {}",
                label(&self.path).trim_start_matches("file ")
            ),
            width: s.width,
            height: s.height,
            format: s.format,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self, _dst: &mut Frame) -> Result<bool, CaptureError> {
        Err(CaptureError::Config(format!(
            "{} replays its packets as they were recorded; it has no frames to decode or resize",
            self.path.display()
        )))
    }

    fn compressed_codec(&self) -> Option<CodecKind> {
        Some(self.stream.rendition.stream.codec)
    }

    fn compressed_only(&self) -> bool {
        true
    }

    fn next_compressed(&mut self, dst: &mut CompressedFrame) -> Result<bool, CaptureError> {
        loop {
            let record = match self.reader.next_record(&mut dst.data) {
                Ok(Some(record)) => record,
                Ok(None) | Err(ReadError::CutShort(_))
                    if self.looping && self.count > self.count_at_restart =>
                {
                    self.count_at_restart = self.count;
                    self.restart()?;
                    continue;
                }
                Ok(None) => return Ok(false),
                Err(ReadError::CutShort(at)) => {
                    tracing::warn!(
                        "{}: byte {at}: the recording ends inside a record (cut short?); replayed up to its last whole record",
                        self.path.display()
                    );
                    return Ok(false);
                }
                Err(e) => return Err(read_error(&self.path, e)),
            };
            match record {
                Record::Stream(stream) => {
                    self.in_stream = stream.rendition == self.stream.rendition;
                    if !self.in_stream {
                        tracing::warn!(
                            "{}: skipping packets recorded as {} (the replay is {})",
                            self.path.display(),
                            stream.rendition,
                            self.stream.rendition
                        );
                    }
                }
                Record::Packet(_) if !self.in_stream => {}
                Record::Packet(p) => {
                    self.wait(p.at_us);
                    let s = self.stream.rendition.stream;
                    dst.codec = s.codec;
                    dst.width = s.width;
                    dst.height = s.height;
                    dst.seq = self.seq_base + p.seq;
                    dst.capture_us = now_micros();
                    dst.keyframe = p.keyframe;
                    self.last_seq = dst.seq;
                    self.count += 1;
                    return Ok(true);
                }
            }
        }
    }
}
