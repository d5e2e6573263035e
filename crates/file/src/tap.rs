//! Recorders at the packet seams, so that what is kept is what crossed the wire, never
//! re-encoded: [`RecordPublisher`] is one more [`Publisher`] beside a server's (`serve
//! --record`), and [`TapConnector`] wraps a viewer's [`Connector`] and keeps each packet it
//! receives (`view --record`, `view --output x.mjpeg` or `x.h264`). [`Y4mSink`] writes decoded frames as
//! Y4M (`view --output x.y4m`).
//!
//! A write error (a full disk, a missing folder) ends that file with one message to the
//! caller's `on_error` and the stream goes on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use framewire_core::{
    CodecKind, Connector, Flow, Frame, FrameSink, Ladder, Packet, Placement, Publisher, Received,
    SinkError, StreamInfo, Subscription, TransportError,
};

use crate::CreateError;
use crate::recording::{StreamRecord, Writer};
use crate::y4m;

/// Where a recorder tells of a write error that ended its file (one line, naming the file).
pub type OnError = Arc<dyn Fn(String) + Send + Sync>;

/// A recording being written to a file.
pub struct RecordFile {
    path: PathBuf,
    writer: Option<Writer<BufWriter<File>>>,
    on_error: OnError,
    /// Whether a [`RecordPublisher`] has left the rung it recorded.
    left: bool,
}

impl RecordFile {
    /// Creates the file and writes the recording's header.
    pub fn create(path: &Path, on_error: OnError) -> Result<RecordFile, CreateError> {
        let file = File::create(path).map_err(|e| CreateError::new("create recording", path, e))?;
        let writer = Writer::new(BufWriter::with_capacity(1 << 16, file))
            .map_err(|e| CreateError::new("write recording", path, std::io::Error::other(e)))?;
        Ok(RecordFile {
            path: path.to_path_buf(),
            writer: Some(writer),
            on_error,
            left: false,
        })
    }

    /// Whether the file is still being written (no write error so far).
    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Records that the packets after this are `stream`.
    pub fn stream(&mut self, stream: StreamRecord) {
        if let Some(w) = &mut self.writer {
            let result = w.stream(stream);
            self.check(result);
        }
    }

    /// Records `packet` as crossing now.
    pub fn packet(&mut self, packet: &Packet) {
        if let Some(w) = &mut self.writer {
            let result = w.packet(packet);
            self.check(result);
        }
    }

    fn check(&mut self, result: Result<(), crate::FileError>) {
        if let Err(e) = result {
            self.writer = None;
            (self.on_error)(format!(
                "recording {}: {e}; the recording ends there, the stream goes on",
                self.path.display()
            ));
        }
    }
}

/// Records what a server sends, as one more publisher: the top rung's packets (rendition 0),
/// from the moment it is made, whether viewers are connected or not.
pub struct RecordPublisher {
    file: Mutex<RecordFile>,
    ladder: Arc<Ladder>,
    fps: f64,
}

impl RecordPublisher {
    /// Leaves the top rung once the file is closed (by a write error or a shutdown).
    fn close(&self, file: &mut RecordFile) {
        file.writer = None;
        if !std::mem::replace(&mut file.left, true) {
            self.ladder.leave(0);
        }
    }
}

impl RecordPublisher {
    /// Records `ladder`'s top rung into `file`; it counts as a subscriber on that rung, so the
    /// server sends from the start.
    pub fn new(file: RecordFile, ladder: Arc<Ladder>, fps: f64) -> RecordPublisher {
        ladder.enter(0);
        RecordPublisher {
            file: Mutex::new(file),
            ladder,
            fps,
        }
    }

    fn file(&self) -> std::sync::MutexGuard<'_, RecordFile> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Publisher for RecordPublisher {
    fn describe(&self) -> String {
        format!("recording to {}", self.file().path.display())
    }

    fn publish(&self, packets: &[Arc<Packet>]) {
        let Some(packet) = packets.iter().find(|p| p.rendition == 0) else {
            return;
        };
        let mut file = self.file();
        file.stream(StreamRecord {
            rendition: self.ladder.placement(0).rendition,
            fps: self.fps,
        });
        file.packet(packet);
        if !file.is_open() {
            self.close(&mut file);
        }
    }

    fn subscribers(&self) -> usize {
        usize::from(self.file().is_open())
    }

    fn wait_for_subscriber(&self, timeout: Duration) -> usize {
        let n = self.subscribers();
        if n == 0 {
            std::thread::sleep(timeout);
        }
        n
    }

    fn dropped_total(&self) -> u64 {
        0
    }

    fn shutdown(&self) {
        let mut file = self.file();
        self.close(&mut file);
    }
}

/// What a [`TapConnector`] keeps of each packet a viewer receives.
#[derive(Default)]
pub struct Tap {
    /// A recording of every packet.
    pub record: Option<RecordFile>,
    /// A `.mjpeg` or `.h264` file: each payload as it arrived.
    pub payloads: Option<PayloadFile>,
    /// Where the sender's announced frame rate is kept (its `f64` bits), for a [`Y4mSink`]'s
    /// header.
    pub rate: Option<Arc<AtomicU64>>,
}

/// A codec's payloads written one after another: JPEGs (raw MJPEG, as `ffmpeg -f mjpeg`
/// reads it) or H.264 access units (an Annex-B elementary stream, as `ffmpeg -f h264` reads
/// it; it starts at a keyframe, as every viewer's stream does).
pub struct PayloadFile {
    codec: CodecKind,
    path: PathBuf,
    w: Option<BufWriter<File>>,
    on_error: OnError,
}

impl PayloadFile {
    /// Creates the file, for a stream of `codec` (jpeg or h264).
    pub fn create(
        path: &Path,
        codec: CodecKind,
        on_error: OnError,
    ) -> Result<PayloadFile, CreateError> {
        let file = File::create(path).map_err(|e| CreateError::new("create", path, e))?;
        Ok(PayloadFile {
            codec,
            path: path.to_path_buf(),
            w: Some(BufWriter::with_capacity(1 << 16, file)),
            on_error,
        })
    }

    fn write(&mut self, jpeg: &[u8]) {
        if let Some(w) = &mut self.w
            && let Err(e) = w.write_all(jpeg).and_then(|()| w.flush())
        {
            self.w = None;
            (self.on_error)(format!(
                "{}: {e}; the file ends there, the stream goes on",
                self.path.display()
            ));
        }
    }

    /// The error for a stream of another codec.
    fn refuse(&self, codec: CodecKind) -> TransportError {
        let (file, what) = match self.codec {
            CodecKind::H264 => ("an H.264 file", "H.264"),
            _ => ("an MJPEG file", "JPEG"),
        };
        TransportError::fatal(format!(
            "{}: {file} holds {what} frames as they arrive, and this stream is {codec}; ask the \
             server for {what} with --codec {}, or write decoded frames with a .y4m file",
            self.path.display(),
            self.codec
        ))
    }
}

/// Wraps a viewer's connector: every subscription it opens hands each packet to the [`Tap`]
/// before it is decoded.
pub struct TapConnector {
    inner: Box<dyn Connector>,
    tap: Arc<Mutex<Tap>>,
}

impl TapConnector {
    /// Taps every subscription `inner` opens.
    pub fn new(inner: Box<dyn Connector>, tap: Tap) -> TapConnector {
        TapConnector {
            inner,
            tap: Arc::new(Mutex::new(tap)),
        }
    }
}

impl Connector for TapConnector {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        let sub = self.inner.connect()?;
        if let Some(rate) = &self.tap.lock().unwrap_or_else(PoisonError::into_inner).rate {
            rate.store(sub.fps().to_bits(), Ordering::Relaxed);
        }
        let tapped = Tapped {
            inner: sub,
            tap: Arc::clone(&self.tap),
        };
        tapped.placed(tapped.inner.placement())?;
        Ok(Box::new(tapped))
    }
}

struct Tapped {
    inner: Box<dyn Subscription>,
    tap: Arc<Mutex<Tap>>,
}

impl Tapped {
    fn tap(&self) -> std::sync::MutexGuard<'_, Tap> {
        self.tap.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The packets after this are `placement`'s rendition.
    fn placed(&self, placement: Placement) -> Result<(), TransportError> {
        let fps = self.inner.fps();
        let mut tap = self.tap();
        let codec = placement.rendition.stream.codec;
        if let Some(file) = &tap.payloads
            && codec != file.codec
        {
            return Err(file.refuse(codec));
        }
        if let Some(record) = &mut tap.record {
            record.stream(StreamRecord {
                rendition: placement.rendition,
                fps,
            });
        }
        Ok(())
    }
}

impl Subscription for Tapped {
    fn stream(&self) -> StreamInfo {
        self.inner.stream()
    }

    fn placement(&self) -> Placement {
        self.inner.placement()
    }

    fn fps(&self) -> f64 {
        self.inner.fps()
    }

    fn peer(&self) -> String {
        self.inner.peer()
    }

    fn position(&self) -> String {
        self.inner.position()
    }

    fn recv(&mut self, packet: &mut Packet) -> Result<Received, TransportError> {
        let received = self.inner.recv(packet)?;
        match &received {
            Received::Packet { .. } => {
                let mut tap = self.tap();
                if let Some(record) = &mut tap.record {
                    record.packet(packet);
                }
                if let Some(file) = &mut tap.payloads {
                    file.write(&packet.payload);
                }
            }
            Received::Switched(placement) => self.placed(*placement)?,
            // A report is about the stream this side sends, not part of the one recorded.
            Received::End { .. } | Received::Report(_) => {}
        }
        Ok(received)
    }

    fn closer(&self) -> framewire_core::Closer {
        self.inner.closer()
    }
}

/// Writes every decoded frame to a Y4M file (4:4:4), then hands it to the next sink, if any.
/// The file's size is the first frame's; a frame of another size is an error (a Y4M file holds
/// one size).
pub struct Y4mSink {
    path: PathBuf,
    rate: Arc<AtomicU64>,
    file: Option<File>,
    writer: Option<y4m::Writer<BufWriter<File>>>,
    next: Option<Box<dyn FrameSink>>,
}

impl Y4mSink {
    /// Creates `path` now, so a bad path fails before connecting. The header's frame rate is
    /// what `rate` holds at the first frame (a [`Tap`]'s: the sender's), 30 when it is 0.
    pub fn create(path: &Path, rate: Arc<AtomicU64>) -> Result<Y4mSink, CreateError> {
        let file = File::create(path).map_err(|e| CreateError::new("create", path, e))?;
        Ok(Y4mSink {
            path: path.to_path_buf(),
            rate,
            file: Some(file),
            writer: None,
            next: None,
        })
    }

    /// Hands each frame on to `next` after writing it.
    pub fn then(mut self, next: Option<Box<dyn FrameSink>>) -> Y4mSink {
        self.next = next;
        self
    }

    fn error(&self, e: crate::FileError) -> SinkError {
        SinkError::Backend {
            context: format!("writing {}", self.path.display()),
            source: Box::new(e),
        }
    }
}

impl FrameSink for Y4mSink {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        if self.writer.is_none()
            && let Some(file) = self.file.take()
        {
            let w = BufWriter::with_capacity(1 << 20, file);
            let fps = f64::from_bits(self.rate.load(Ordering::Relaxed));
            let w =
                y4m::Writer::new(w, frame.width, frame.height, fps).map_err(|e| self.error(e))?;
            self.writer = Some(w);
        }
        if let Some(w) = &mut self.writer {
            // Flushed every frame: the file is whole whenever the viewer stops.
            let result = w.write_frame(frame).and_then(|()| w.flush());
            result.map_err(|e| self.error(e))?;
        }
        match &mut self.next {
            Some(next) => next.show(frame),
            None => Ok(Flow::Continue),
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Some(w) = &mut self.writer {
            let result = w.flush();
            result.map_err(|e| self.error(e))?;
        }
        match &mut self.next {
            Some(next) => next.finish(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use framewire_core::{PixelFormat, Rendition};

    use super::*;
    use crate::recording::{Reader, Record};

    #[test]
    fn the_record_publisher_keeps_the_top_rung_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sent.fwrec");
        let errors = Arc::new(Mutex::new(Vec::new()));
        let said = Arc::clone(&errors);
        let on_error: OnError = Arc::new(move |line| said.lock().unwrap().push(line));
        let top = Rendition::new(CodecKind::Jpeg, 8, 4, PixelFormat::Rgb8, 80);
        let ladder = Arc::new(Ladder::single(top));
        let file = RecordFile::create(&path, on_error).unwrap();
        let publisher = RecordPublisher::new(file, Arc::clone(&ladder), 30.0);
        assert_eq!(publisher.subscribers(), 1, "it records from the start");
        for seq in 0..3u64 {
            let packet = |rendition| {
                Arc::new(Packet {
                    seq,
                    rendition,
                    payload: vec![seq as u8; 5 + rendition],
                    ..Packet::default()
                })
            };
            publisher.publish(&[packet(1), packet(0)]);
        }
        publisher.shutdown();
        publisher.shutdown();
        assert_eq!(publisher.subscribers(), 0);
        publisher.publish(&[Arc::new(Packet::default())]);

        let bytes = std::fs::read(&path).unwrap();
        let mut reader = Reader::new(&bytes[..]).unwrap();
        let mut payload = Vec::new();
        let mut records = Vec::new();
        while let Some(record) = reader.next_record(&mut payload).unwrap() {
            records.push((record, payload.clone()));
        }
        assert_eq!(records.len(), 4, "a stream record and three packets");
        assert!(matches!(records[0].0, Record::Stream(s) if s.rendition == top && s.fps == 30.0));
        for (seq, (record, payload)) in records[1..].iter().enumerate() {
            assert!(matches!(record, Record::Packet(p) if p.seq == seq as u64));
            assert_eq!(payload, &vec![seq as u8; 5], "rendition 0's packet");
        }
        assert!(errors.lock().unwrap().is_empty());
    }
}
