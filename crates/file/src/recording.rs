//! framewire recordings: a stream's packets as they crossed the wire, with their timing, so that
//! `serve --source file:REC` replays them at their pace with no decode or re-encode.
//!
//! This is the one place the format is written down. All integers are little-endian.
//!
//! ```text
//! file    = header record*
//!
//! header  (12 bytes)
//!   0  magic     8  "FWREC\0\r\n"
//!   8  version   u16  1
//!  10  reserved  u16  0
//!
//! record  (9 + len bytes): each delimits itself, so a file cut short reads up to its last
//!         whole record
//!   0  tag       u8   b'S' stream | b'P' packet
//!   1  len       u32  bytes of body, at most MAX_BODY
//!   5  body      len bytes
//!   .  crc32     u32  CRC-32 (IEEE) of tag, len and body
//!
//! stream body (20 bytes): what the packets after it are, until the next stream record
//!   0  codec     u8   the wire id (1 raw, 2 bincode, 3 jpeg)
//!   1  format    u8   the wire id of the decoded pixel format (1 rgb8, 2 rgba8, 3 bgr8)
//!   2  quality   u8   the codec's quality, 0 for a codec without one
//!   3  reserved  u8   0
//!   4  width     u32
//!   8  height    u32
//!  12  fps       f64  the sender's announced rate, 0 = unpaced
//!
//! packet body (25 + payload bytes)
//!   0  at_us     u64  microseconds from the start of the recording to this packet crossing
//!   8  seq       u64  the sender's sequence number
//!  16  capture   u64  capture time, microseconds since the Unix epoch
//!  24  flags     u8   bit 0: keyframe; the others 0
//!  25  payload        the codec's bytes, exactly as on the wire
//! ```
//!
//! A new field or record kind means a new version; a reader refuses a version it does not know
//! and a tag it does not know, naming the byte offset.

use std::io::{Read, Write};
use std::time::Instant;

use framewire_core::{CodecKind, Packet, PixelFormat, Rendition};

use crate::{FileError, read_full, read_up_to};

/// The first 8 bytes of every recording.
pub const MAGIC: [u8; 8] = *b"FWREC\0\r\n";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: u64 = 12;
/// The largest record body read or written (a packet of 256 MiB).
pub const MAX_BODY: u32 = 256 << 20;

const TAG_STREAM: u8 = b'S';
const TAG_PACKET: u8 = b'P';
const STREAM_BODY: usize = 20;
const PACKET_HEAD: usize = 25;

/// What a stream record says: the rendition of the packets after it and the sender's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamRecord {
    /// Codec, size, pixel format and quality.
    pub rendition: Rendition,
    /// The sender's announced frames per second (0 = unpaced).
    pub fps: f64,
}

/// A packet record's fixed fields (its payload goes to the buffer the caller hands in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRecord {
    /// Microseconds from the start of the recording.
    pub at_us: u64,
    /// The sender's sequence number.
    pub seq: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Whether it decodes on its own.
    pub keyframe: bool,
}

/// One record read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Record {
    /// The packets that follow are this stream.
    Stream(StreamRecord),
    /// A packet; its payload is in the caller's buffer.
    Packet(PacketRecord),
}

/// What reading a record ended with, besides a record.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends inside a record, at this offset (a recording cut short by a crash or a
    /// full disk): everything before it was whole.
    CutShort(u64),
    /// The bytes are wrong, or reading failed.
    File(FileError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::CutShort(at) => write!(
                f,
                "byte {at}: the file ends inside a record (cut short?); the records before it are whole"
            ),
            ReadError::File(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<FileError> for ReadError {
    fn from(e: FileError) -> ReadError {
        ReadError::File(e)
    }
}

/// Reads a recording record by record, reusing the caller's payload buffer.
pub struct Reader<R> {
    r: R,
    at: u64,
    version: u16,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(mut r: R) -> Result<Reader<R>, ReadError> {
        let mut head = [0u8; HEADER_LEN as usize];
        let got = read_full(&mut r, &mut head, 0)?;
        if got < MAGIC.len() || head[..MAGIC.len()] != MAGIC {
            if got < MAGIC.len() && head[..got] == MAGIC[..got] {
                return Err(ReadError::CutShort(got as u64));
            }
            return Err(FileError::bad(0, "not a framewire recording (wrong magic)").into());
        }
        if got < head.len() {
            return Err(ReadError::CutShort(got as u64));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != VERSION {
            return Err(FileError::bad(
                8,
                format!("recording version {version}; this build reads version {VERSION}"),
            )
            .into());
        }
        if head[10..12] != [0, 0] {
            return Err(FileError::bad(10, "reserved header bytes are not 0").into());
        }
        Ok(Reader {
            r,
            at: HEADER_LEN,
            version,
        })
    }

    /// The format version of the file.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The offset of the next record.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The next record, `Ok(None)` at the end of the file. A packet's payload replaces the
    /// contents of `payload`.
    pub fn next_record(&mut self, payload: &mut Vec<u8>) -> Result<Option<Record>, ReadError> {
        let start = self.at;
        let mut head = [0u8; 5];
        match read_full(&mut self.r, &mut head, start)? {
            0 => return Ok(None),
            5 => {}
            n => return Err(ReadError::CutShort(start + n as u64)),
        }
        let tag = head[0];
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        let body_at = start + 5;
        let bad = |what: String| ReadError::File(FileError::bad(start, what));
        let record = match tag {
            TAG_STREAM => {
                if len as usize != STREAM_BODY {
                    return Err(bad(format!(
                        "stream record of {len} bytes, expected {STREAM_BODY}"
                    )));
                }
                let mut body = [0u8; STREAM_BODY];
                let got = read_full(&mut self.r, &mut body, body_at)?;
                if got < body.len() {
                    return Err(ReadError::CutShort(body_at + got as u64));
                }
                crc.update(&body);
                self.check_crc(crc, body_at + STREAM_BODY as u64, start)?;
                Record::Stream(parse_stream(&body).map_err(bad)?)
            }
            TAG_PACKET => {
                if len > MAX_BODY || (len as usize) < PACKET_HEAD {
                    return Err(bad(format!(
                        "packet record of {len} bytes, expected {PACKET_HEAD} to {MAX_BODY}"
                    )));
                }
                let mut fixed = [0u8; PACKET_HEAD];
                let got = read_full(&mut self.r, &mut fixed, body_at)?;
                if got < fixed.len() {
                    return Err(ReadError::CutShort(body_at + got as u64));
                }
                let payload_at = body_at + PACKET_HEAD as u64;
                let want = u64::from(len) - PACKET_HEAD as u64;
                let got = read_up_to(&mut self.r, want, payload, payload_at)?;
                if (got as u64) < want {
                    return Err(ReadError::CutShort(payload_at + got as u64));
                }
                crc.update(&fixed);
                crc.update(payload);
                self.check_crc(crc, payload_at + want, start)?;
                let u64_at = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().unwrap());
                if fixed[24] & !1 != 0 {
                    return Err(bad(format!(
                        "packet flags {:#04x}, expected 0 or 1",
                        fixed[24]
                    )));
                }
                Record::Packet(PacketRecord {
                    at_us: u64_at(0),
                    seq: u64_at(8),
                    capture_us: u64_at(16),
                    keyframe: fixed[24] & 1 == 1,
                })
            }
            other => {
                return Err(bad(format!(
                    "unknown record tag {other:#04x}, expected 'S' or 'P' (a corrupt record?)"
                )));
            }
        };
        self.at = start + 9 + u64::from(len);
        Ok(Some(record))
    }

    fn check_crc(
        &mut self,
        crc: crc32fast::Hasher,
        crc_at: u64,
        start: u64,
    ) -> Result<(), ReadError> {
        let mut stored = [0u8; 4];
        let got = read_full(&mut self.r, &mut stored, crc_at)?;
        if got < 4 {
            return Err(ReadError::CutShort(crc_at + got as u64));
        }
        let (stored, computed) = (u32::from_le_bytes(stored), crc.finalize());
        if stored != computed {
            return Err(FileError::bad(
                start,
                format!("record checksum {stored:#010x} does not match its bytes ({computed:#010x}): a corrupt record"),
            )
            .into());
        }
        Ok(())
    }
}

fn parse_stream(body: &[u8; STREAM_BODY]) -> Result<StreamRecord, String> {
    let codec = CodecKind::from_wire_id(body[0])
        .ok_or_else(|| format!("unknown codec id {} in a stream record", body[0]))?;
    let format = PixelFormat::from_wire_id(body[1])
        .ok_or_else(|| format!("unknown pixel format id {} in a stream record", body[1]))?;
    let width = u32::from_le_bytes(body[4..8].try_into().unwrap());
    let height = u32::from_le_bytes(body[8..12].try_into().unwrap());
    let max = framewire_core::MAX_SIDE;
    if width == 0 || height == 0 || width > max || height > max {
        return Err(format!(
            "stream record says {width}x{height}; sides are 1 to {max}"
        ));
    }
    let fps = f64::from_le_bytes(body[12..20].try_into().unwrap());
    if !(0.0..=1000.0).contains(&fps) {
        return Err(format!("stream record says {fps} fps; expected 0 to 1000"));
    }
    Ok(StreamRecord {
        rendition: Rendition::new(codec, width, height, format, body[2]),
        fps,
    })
}

/// Writes a recording: the header at once, then stream and packet records, each flushed as it
/// is written, so a crash loses at most the record being written.
pub struct Writer<W: Write> {
    w: W,
    at: u64,
    start: Instant,
    stream: Option<StreamRecord>,
}

impl<W: Write> Writer<W> {
    /// Writes the header; the recording's clock starts now.
    pub fn new(mut w: W) -> Result<Writer<W>, FileError> {
        let mut head = [0u8; HEADER_LEN as usize];
        head[..8].copy_from_slice(&MAGIC);
        head[8..10].copy_from_slice(&VERSION.to_le_bytes());
        w.write_all(&head)
            .and_then(|()| w.flush())
            .map_err(|source| FileError::Io { at: 0, source })?;
        Ok(Writer {
            w,
            at: HEADER_LEN,
            start: Instant::now(),
            stream: None,
        })
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The writer underneath.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Says what the packets after it are; written only when it differs from the last one.
    pub fn stream(&mut self, stream: StreamRecord) -> Result<(), FileError> {
        if self.stream == Some(stream) {
            return Ok(());
        }
        let s = stream.rendition.stream;
        let mut body = [0u8; STREAM_BODY];
        body[0] = s.codec.wire_id();
        body[1] = s.format.wire_id();
        body[2] = stream.rendition.quality;
        body[4..8].copy_from_slice(&s.width.to_le_bytes());
        body[8..12].copy_from_slice(&s.height.to_le_bytes());
        body[12..20].copy_from_slice(&stream.fps.to_le_bytes());
        self.record(TAG_STREAM, &body, &[])?;
        self.stream = Some(stream);
        Ok(())
    }

    /// Records `packet` as crossing now.
    pub fn packet(&mut self, packet: &Packet) -> Result<(), FileError> {
        let at_us = self.start.elapsed().as_micros() as u64;
        self.packet_at(at_us, packet)
    }

    /// Records `packet` as crossing `at_us` after the start of the recording.
    pub fn packet_at(&mut self, at_us: u64, packet: &Packet) -> Result<(), FileError> {
        if packet.payload.len() as u64 > u64::from(MAX_BODY) - PACKET_HEAD as u64 {
            return Err(FileError::bad(
                self.at,
                format!(
                    "a packet of {} bytes is larger than a recording holds",
                    packet.payload.len()
                ),
            ));
        }
        let mut fixed = [0u8; PACKET_HEAD];
        fixed[0..8].copy_from_slice(&at_us.to_le_bytes());
        fixed[8..16].copy_from_slice(&packet.seq.to_le_bytes());
        fixed[16..24].copy_from_slice(&packet.capture_us.to_le_bytes());
        fixed[24] = u8::from(packet.keyframe);
        self.record(TAG_PACKET, &fixed, &packet.payload)
    }

    fn record(&mut self, tag: u8, fixed: &[u8], payload: &[u8]) -> Result<(), FileError> {
        let len = (fixed.len() + payload.len()) as u32;
        let mut head = [0u8; 5];
        head[0] = tag;
        head[1..5].copy_from_slice(&len.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(fixed);
        crc.update(payload);
        let at = self.at;
        let w = &mut self.w;
        w.write_all(&head)
            .and_then(|()| w.write_all(fixed))
            .and_then(|()| w.write_all(payload))
            .and_then(|()| w.write_all(&crc.finalize().to_le_bytes()))
            .and_then(|()| w.flush())
            .map_err(|source| FileError::Io { at, source })?;
        self.at += 9 + u64::from(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(codec: CodecKind, w: u32, h: u32) -> StreamRecord {
        StreamRecord {
            rendition: Rendition::new(codec, w, h, PixelFormat::Rgb8, 80),
            fps: 30.0,
        }
    }

    fn packet(seq: u64, payload: &[u8]) -> Packet {
        Packet {
            seq,
            capture_us: 1_000_000 + seq,
            keyframe: true,
            rendition: 0,
            payload: payload.to_vec(),
        }
    }

    /// A recording of a stream record and three packets.
    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.stream(stream(CodecKind::Jpeg, 64, 48)).unwrap();
        for seq in 0..3 {
            w.packet_at(seq * 33_333, &packet(seq, &[seq as u8; 100]))
                .unwrap();
        }
        w.w
    }

    /// Every record read with its payload, and how the reading ended.
    type ReadAll = (Vec<(Record, Vec<u8>)>, Result<(), ReadError>);

    fn read_all(bytes: &[u8]) -> ReadAll {
        let mut out = Vec::new();
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (out, Err(e)),
        };
        let mut payload = Vec::new();
        loop {
            match r.next_record(&mut payload) {
                Ok(Some(rec)) => out.push((rec, payload.clone())),
                Ok(None) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn round_trips_streams_and_packets() {
        let (records, end) = read_all(&sample());
        end.unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[0].0,
            Record::Stream(stream(CodecKind::Jpeg, 64, 48))
        );
        for seq in 0..3u64 {
            let (rec, payload) = &records[seq as usize + 1];
            assert_eq!(
                *rec,
                Record::Packet(PacketRecord {
                    at_us: seq * 33_333,
                    seq,
                    capture_us: 1_000_000 + seq,
                    keyframe: true
                })
            );
            assert_eq!(payload, &vec![seq as u8; 100]);
        }
    }

    #[test]
    fn a_repeated_stream_record_is_written_once() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.stream(stream(CodecKind::Raw, 8, 8)).unwrap();
        w.stream(stream(CodecKind::Raw, 8, 8)).unwrap();
        assert_eq!(w.w.len() as u64, HEADER_LEN + 9 + STREAM_BODY as u64);
    }

    #[test]
    fn every_prefix_reads_its_whole_records_then_says_cut_short() {
        let bytes = sample();
        let whole = read_all(&bytes).0.len();
        for cut in 0..bytes.len() {
            let (records, end) = read_all(&bytes[..cut]);
            assert!(records.len() < whole, "cut at {cut}");
            match end {
                Ok(()) => {} // cut exactly between records
                Err(ReadError::CutShort(at)) => assert_eq!(at, cut as u64, "cut at {cut}"),
                Err(e) => panic!("cut at {cut}: {e}"),
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_an_error_naming_an_offset_or_is_caught() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x41;
            let (_, end) = read_all(&bad);
            match end {
                Err(ReadError::File(e)) => assert!(e.at() <= i as u64, "flip at {i}: {e}"),
                Err(ReadError::CutShort(_)) => {} // a length made longer than the file
                Ok(()) => panic!("flip at {i} went unnoticed"),
            }
        }
    }

    #[test]
    fn hostile_headers_and_lengths_say_what_and_where() {
        let check = |bytes: &[u8], want: &str| {
            let (_, end) = read_all(bytes);
            assert_eq!(end.unwrap_err().to_string(), want);
        };
        check(
            b"GIF89a..........",
            "byte 0: not a framewire recording (wrong magic)",
        );
        check(
            b"FWREC\0\r\n\x02\0\0\0",
            "byte 8: recording version 2; this build reads version 1",
        );
        check(
            b"FWREC",
            "byte 5: the file ends inside a record (cut short?); the records before it are whole",
        );
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[1, 0, 0, 0, b'P', 0xFF, 0xFF, 0xFF, 0xFF]);
        check(
            &huge,
            "byte 12: packet record of 4294967295 bytes, expected 25 to 268435456",
        );
        // A packet that claims 200 MiB but holds 10 bytes: read as far as the file goes.
        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&[1, 0, 0, 0, b'P']);
        short.extend_from_slice(&(200u32 << 20).to_le_bytes());
        short.extend_from_slice(&[0; 35]);
        check(
            &short,
            "byte 52: the file ends inside a record (cut short?); the records before it are whole",
        );
    }

    #[test]
    fn a_write_error_names_the_offset() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::other("no space left on device"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = Writer::new(Full(45)).unwrap();
        w.stream(stream(CodecKind::Raw, 8, 8)).unwrap();
        let err = w.packet(&packet(0, &[0; 100])).unwrap_err();
        assert_eq!(err.to_string(), "byte 41: no space left on device");
    }
}
