//! The viewer's sans-IO stream reader: bytes in, handshake (or refusal), frames and switches
//! out, whatever way the bytes were split, with every length checked before anything is
//! allocated for it.
//!
//! The reader owns one buffer that the caller reads into directly ([`FrameReader::space`] then
//! [`FrameReader::advance`]), so a payload is never copied on the way in, and the buffer is
//! never re-copied per read (the Python tutorial's `data += recv()` is what makes it crawl).
//! Its size is bounded by the largest message allowed plus one read chunk.

use framewire_core::{PeerReport, Placement};

use crate::message::{
    FRAME_MAGIC, FrameHeader, HANDSHAKE_LEN, HEADER_LEN, Handshake, MessageKind, PROOF_LEN,
    REPORT_LEN, Report, SWITCH_LEN, Switch, WireError, WireErrorKind,
};

/// Smallest room offered for one read, so that small messages arrive many per syscall.
const READ_CHUNK: usize = 64 * 1024;

/// One thing read from the stream.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// The stream handshake: the first event, unless the server refused the viewer (an
    /// [`Event::End`] then comes instead, and nothing after it).
    Handshake(Handshake),
    /// A frame: its header and its payload, borrowed from the reader until the next call.
    Frame(FrameHeader, &'a [u8]),
    /// The frames that follow are in this rendition.
    Switch(Placement),
    /// How the sender shows the stream it receives (a side of a two-way call).
    Report(PeerReport),
    /// The server asks for proof of the token (before the handshake, which comes after the
    /// proof).
    Challenge([u8; PROOF_LEN]),
    /// The server ended the stream on purpose, or refused the viewer before it started;
    /// `reason` is set when it said why.
    End {
        /// The server's reason, for a refusal or an error.
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// The first message: the stream handshake, or a refusal (an end or error header).
    Opening,
    Header,
    Payload(FrameHeader),
    /// A frame's payload the caller reads into its own buffer ([`FrameReader::take_payload`]):
    /// the header and the bytes of the payload read so far.
    Direct(FrameHeader, usize),
    /// A challenge before the handshake, whole in the buffer, its header not yet consumed.
    Challenge,
    Ended,
}

/// Sans-IO reader of a framewire stream (the viewer side).
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of `buf[start..]` the last event borrowed, dropped at the next call.
    pending: usize,
    state: State,
    max_payload: u32,
    /// Stream offset of `buf[start]`.
    offset: u64,
    last_seq: Option<u64>,
}

impl FrameReader {
    /// A reader that rejects frame payloads longer than `max_payload` bytes.
    pub fn new(max_payload: u32) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            pending: 0,
            state: State::Opening,
            max_payload,
            offset: 0,
            last_seq: None,
        }
    }

    /// A reader of a stream whose first `offset` bytes were read elsewhere (a call's hello):
    /// the offsets it reports count them.
    pub fn after(max_payload: u32, offset: u64) -> FrameReader {
        FrameReader {
            offset,
            ..FrameReader::new(max_payload)
        }
    }

    /// Bytes consumed from the stream so far.
    pub fn offset(&self) -> u64 {
        self.offset + self.pending as u64
    }

    /// Sequence number of the last frame read whole.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Bytes the current message needs in all (header, handshake or payload).
    #[inline]
    fn need(&self) -> usize {
        match self.state {
            // A refusal's header, or a challenge whole.
            State::Opening if self.refused() => HEADER_LEN + PROOF_LEN,
            State::Opening => HANDSHAKE_LEN,
            State::Header => HEADER_LEN,
            State::Payload(h) => h.payload_len as usize,
            State::Challenge => HEADER_LEN + PROOF_LEN,
            State::Direct(..) | State::Ended => 0,
        }
    }

    #[inline]
    fn buffered(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    fn release_pending(&mut self) {
        self.start += self.pending;
        self.offset += self.pending as u64;
        self.pending = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: at least one byte, at least what the current message still needs
    /// to be contiguous, and one read chunk or that, whichever is more. Write into it, then
    /// call [`advance`](Self::advance) with the count written.
    #[inline]
    pub fn space(&mut self) -> &mut [u8] {
        self.release_pending();
        if self.is_ended() {
            // Nothing more will be read from this stream: drop what is left.
            self.start = 0;
            self.end = 0;
        }
        let room = self.need().max(READ_CHUNK);
        if self.start >= READ_CHUNK && self.start + room > self.buf.len() {
            // Move the partial message to the front; it is shorter than one message. Not for
            // a smaller dead prefix (a frame's own header, say): the buffer grows by it once
            // instead, so a large payload is not moved on every frame, and reads keep their
            // placement relative to the socket's data (moving by 32 bytes made each later
            // 64 KiB copy of a 2.7 MB frame up to 10x slower through 4 KiB aliasing).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grows only up to the largest allowed message plus one chunk (zeroed once); the
        // second term only matters for a caller that reads again without polling first.
        let len = (self.start + room).max(self.end + 1);
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        // No further: a read that found a header stops where [`take_payload`] can take over.
        &mut self.buf[self.end..len]
    }

    /// Marks `n` bytes of [`space`](Self::space) as filled.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len(), "advance past space");
        self.end += n;
    }

    /// Copies `bytes` in (for tests and callers that already hold the bytes).
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let space = self.space();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            self.advance(n);
            bytes = &bytes[n..];
        }
    }

    /// Runs the state machine as far as the buffered bytes allow, without borrowing them.
    /// `Ok(true)`: [`next_event`](Self::next_event) will return an event.
    #[inline(always)]
    pub fn poll(&mut self) -> Result<bool, WireError> {
        self.release_pending();
        // Branches in the order a stream takes them, most often first: a payload (polled
        // twice per frame), then a header.
        if let State::Payload(header) = self.state {
            return Ok(self.buffered() >= header.payload_len as usize);
        }
        if let State::Header = self.state {
            let Some(bytes) = self.take::<HEADER_LEN>() else {
                return Ok(false);
            };
            return match FrameHeader::parse(bytes, self.max_payload) {
                Ok(header) => {
                    self.consume(HEADER_LEN);
                    self.state = State::Payload(header);
                    Ok(self.buffered() >= header.payload_len as usize)
                }
                Err(kind) => Err(self.fail(kind)),
            };
        }
        match self.state {
            State::Opening => self.poll_opening(),
            State::Challenge => Ok(true),
            _ => Ok(false),
        }
    }

    /// Whether the first message opens as a frame header (a refusal), not as a handshake.
    fn refused(&self) -> bool {
        self.buffered() >= FRAME_MAGIC.len()
            && self.buf[self.start..self.start + FRAME_MAGIC.len()] == FRAME_MAGIC
    }

    /// [`poll`](Self::poll) before the handshake, once per stream: the handshake, or the
    /// header of a refusal (an end or an error, whose payload is then read as usual).
    #[inline(never)]
    fn poll_opening(&mut self) -> Result<bool, WireError> {
        if self.refused() {
            let Some(bytes) = self.take::<HEADER_LEN>() else {
                return Ok(false);
            };
            if let Some(
                kind @ (MessageKind::Frame
                | MessageKind::Switch
                | MessageKind::Report
                | MessageKind::Proof
                | MessageKind::Name),
            ) = MessageKind::from_id(bytes[4])
            {
                return Err(self.fail(WireErrorKind::BeforeHandshake(kind)));
            }
            if MessageKind::from_id(bytes[4]) == Some(MessageKind::Challenge) {
                FrameHeader::parse(bytes, 0).map_err(|k| self.fail(k))?;
                if self.buffered() < HEADER_LEN + PROOF_LEN {
                    return Ok(false);
                }
                self.state = State::Challenge;
                return Ok(true);
            }
            let header = FrameHeader::parse(bytes, 0).map_err(|k| self.fail(k))?;
            self.consume(HEADER_LEN);
            self.state = State::Payload(header);
            return Ok(self.buffered() >= header.payload_len as usize);
        }
        let Some(bytes) = self.take::<HANDSHAKE_LEN>() else {
            return Ok(false);
        };
        Handshake::parse(bytes).map_err(|k| self.fail(k))?;
        Ok(true)
    }

    /// The length of the frame payload the reader is inside (after [`poll`](Self::poll)
    /// returned `false`): whether it is worth [`take_payload`](Self::take_payload).
    pub fn pending_payload(&self) -> Option<usize> {
        match self.state {
            State::Payload(h) if h.kind == MessageKind::Frame => Some(h.payload_len as usize),
            _ => None,
        }
    }

    /// Hands the current frame's payload to the caller, to be read into `dst` without passing
    /// through the reader's buffer: for a large payload, that saves a copy of it. Only inside
    /// a frame's payload ([`pending_payload`](Self::pending_payload) is `Some`), else `None`.
    ///
    /// `dst` is resized to the payload's length (its bytes past the old length are zeroed
    /// only if it grows) and the part of the payload already buffered is moved into it.
    /// Returns the header and the count of bytes in place; the caller reads the rest from the
    /// stream straight into `dst[have..]`, reporting each read with
    /// [`payload_filled`](Self::payload_filled), and reads nothing else until it is whole.
    pub fn take_payload(&mut self, dst: &mut Vec<u8>) -> Option<(FrameHeader, usize)> {
        self.release_pending();
        let header = match self.state {
            State::Payload(h) if h.kind == MessageKind::Frame => h,
            _ => return None,
        };
        let len = header.payload_len as usize;
        let have = self.buffered().min(len);
        dst.resize(len, 0);
        dst[..have].copy_from_slice(&self.buf[self.start..self.start + have]);
        // The stream offset stays at the payload's start until it is whole, as for a payload
        // in the buffer; `payload_filled` moves it past.
        self.start += have;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        self.state = State::Direct(header, 0);
        self.payload_filled(have);
        Some((header, have))
    }

    /// Marks `n` more bytes of a payload [`take_payload`](Self::take_payload) handed out as
    /// read. Returns `true` when the payload is whole; the reader then goes on with the next
    /// message as usual.
    pub fn payload_filled(&mut self, n: usize) -> bool {
        let State::Direct(header, read) = self.state else {
            panic!("payload_filled outside a payload handed out by take_payload");
        };
        let read = read + n;
        let len = header.payload_len as usize;
        assert!(read <= len, "payload_filled past the payload's end");
        if read < len {
            self.state = State::Direct(header, read);
            return false;
        }
        self.offset += len as u64;
        self.last_seq = Some(header.seq);
        self.state = State::Header;
        true
    }

    /// The next event, or `Ok(None)` when more bytes are needed. After an error or
    /// [`Event::End`] the reader yields nothing more.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, WireError> {
        if !self.poll()? {
            return Ok(None);
        }
        // The common case, a frame, inlined into the caller; the handshake, an end or an
        // error are not.
        if let State::Payload(header) = self.state
            && header.kind == MessageKind::Frame
        {
            let len = header.payload_len as usize;
            self.state = State::Header;
            self.pending = len;
            self.last_seq = Some(header.seq);
            return Ok(Some(Event::Frame(
                header,
                &self.buf[self.start..self.start + len],
            )));
        }
        self.other_event().map(Some)
    }

    /// [`next_event`](Self::next_event) for a message that is not a frame, once polled.
    #[inline(never)]
    fn other_event(&mut self) -> Result<Event<'_>, WireError> {
        match self.state {
            State::Opening => {
                let bytes = self.take::<HANDSHAKE_LEN>().expect("polled");
                let hs = Handshake::parse(bytes).expect("polled");
                self.consume(HANDSHAKE_LEN);
                self.state = State::Header;
                Ok(Event::Handshake(hs))
            }
            State::Payload(header) if header.kind == MessageKind::Switch => {
                let bytes = self.take::<SWITCH_LEN>().expect("polled");
                match Switch::parse(bytes) {
                    Ok(switch) => {
                        self.consume(SWITCH_LEN);
                        self.state = State::Header;
                        Ok(Event::Switch(switch.placement))
                    }
                    Err(kind) => {
                        // Where the message starts: its header.
                        let mut err = self.fail(kind);
                        err.offset -= HEADER_LEN as u64;
                        Err(err)
                    }
                }
            }
            State::Challenge => {
                self.consume(HEADER_LEN);
                let bytes = *self.take::<PROOF_LEN>().expect("polled");
                self.consume(PROOF_LEN);
                self.state = State::Opening;
                Ok(Event::Challenge(bytes))
            }
            State::Payload(header)
                if matches!(
                    header.kind,
                    MessageKind::Challenge | MessageKind::Proof | MessageKind::Name
                ) =>
            {
                let mut err = self.fail(WireErrorKind::AfterHandshake(header.kind));
                err.offset -= HEADER_LEN as u64;
                Err(err)
            }
            State::Payload(header) if header.kind == MessageKind::Report => {
                let bytes = self.take::<REPORT_LEN>().expect("polled");
                let report = Report::parse(bytes);
                self.consume(REPORT_LEN);
                self.state = State::Header;
                Ok(Event::Report(report.0))
            }
            State::Payload(header) => {
                let len = header.payload_len as usize;
                self.pending = len;
                self.state = State::Ended;
                let payload = &self.buf[self.start..self.start + len];
                Ok(match header.kind {
                    MessageKind::Frame
                    | MessageKind::Switch
                    | MessageKind::Report
                    | MessageKind::Challenge
                    | MessageKind::Proof
                    | MessageKind::Name => {
                        unreachable!("next_event returns frames, the arms above the others")
                    }
                    MessageKind::End => Event::End { reason: None },
                    MessageKind::Error => Event::End {
                        reason: Some(crate::message::peer_text(payload)),
                    },
                })
            }
            State::Header | State::Direct(..) | State::Ended => {
                unreachable!("poll returned true")
            }
        }
    }

    /// Call when the byte stream has ended: an error if it ended inside a message.
    pub fn finish(&self) -> Result<(), WireError> {
        let buffered = self.buffered() - self.pending;
        let (inside, have, need) = match self.state {
            State::Ended | State::Challenge => return Ok(()),
            State::Opening if self.refused() => ("a frame header", buffered, HEADER_LEN),
            State::Opening => ("the stream handshake", buffered, HANDSHAKE_LEN),
            State::Header if buffered == 0 => return Ok(()),
            State::Header => ("a frame header", buffered, HEADER_LEN),
            State::Payload(h) => (payload_name(h.kind), buffered, h.payload_len as usize),
            State::Direct(h, read) => ("a frame payload", read, h.payload_len as usize),
        };
        Err(WireError {
            offset: self.offset(),
            last_good_seq: self.last_seq,
            kind: WireErrorKind::Truncated { inside, have, need },
        })
    }

    /// Whether the stream ended on purpose ([`Event::End`] was read).
    #[inline]
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// The next `N` bytes in place. Parsed where they lie: a copy of a header is written in
    /// pieces and read back across them, a store-forwarding stall that measured 5 ns per
    /// message.
    #[inline]
    fn take<const N: usize>(&self) -> Option<&[u8; N]> {
        if self.buffered() < N {
            return None;
        }
        Some(
            self.buf[self.start..self.start + N]
                .try_into()
                .expect("N bytes"),
        )
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    #[cold]
    fn fail(&mut self, kind: WireErrorKind) -> WireError {
        let err = WireError {
            offset: self.offset,
            last_good_seq: self.last_seq,
            kind,
        };
        self.state = State::Ended;
        err
    }
}

/// What a cut payload is called in [`WireErrorKind::Truncated`].
fn payload_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Frame => "a frame payload",
        MessageKind::Switch => "a switch message",
        MessageKind::Report => "a report message",
        MessageKind::Challenge | MessageKind::Proof => "a token message",
        MessageKind::Name => "a name message",
        MessageKind::End | MessageKind::Error => "an error message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::DEFAULT_MAX_PAYLOAD;
    use framewire_core::{CodecKind, PixelFormat, Rendition};

    /// Rung `rung` of a ladder of two: raw, 4x2 at the top, 2x1 below.
    fn placement(rung: u8) -> Placement {
        Placement {
            id: usize::from(rung),
            rendition: Rendition::new(CodecKind::Raw, 4 >> rung, 2 >> rung, PixelFormat::Rgb8, 0),
            rung: Some(rung),
            rungs: 2,
        }
    }

    fn handshake() -> Handshake {
        Handshake {
            placement: placement(0),
            fps: 30.0,
        }
    }

    fn switch_to(rung: u8) -> Vec<u8> {
        let switch = Switch {
            placement: placement(rung),
        };
        [&Switch::header().to_bytes()[..], &switch.to_bytes()].concat()
    }

    /// A refusal before the handshake: an error header and its reason.
    fn refusal(reason: &str) -> Vec<u8> {
        let header = FrameHeader {
            kind: MessageKind::Error,
            seq: 0,
            capture_us: 0,
            payload_len: reason.len() as u32,
            delta: false,
        };
        [&header.to_bytes()[..], reason.as_bytes()].concat()
    }

    /// A stream: handshake, `n` frames of `len` bytes each (payload byte = seq), then End.
    fn stream(n: u64, len: u32) -> Vec<u8> {
        let mut out = handshake().to_bytes().to_vec();
        for seq in 0..n {
            out.extend_from_slice(&FrameHeader::frame(seq, 1000 + seq, len).to_bytes());
            out.extend(std::iter::repeat_n(seq as u8, len as usize));
        }
        let end = FrameHeader {
            kind: MessageKind::End,
            seq: n,
            capture_us: 0,
            payload_len: 0,
            delta: false,
        };
        out.extend_from_slice(&end.to_bytes());
        out
    }

    #[derive(Debug, PartialEq)]
    enum Owned {
        Handshake(Handshake),
        Frame(FrameHeader, Vec<u8>),
        Switch(Placement),
        End(Option<String>),
        Report(PeerReport),
        Challenge([u8; PROOF_LEN]),
    }

    /// Feeds `bytes` in pieces of `step` and collects every event until the end or an error.
    fn read_all(bytes: &[u8], step: usize, max: u32) -> (Vec<Owned>, Option<WireError>) {
        let mut r = FrameReader::new(max);
        let mut out = Vec::new();
        for chunk in bytes.chunks(step) {
            r.push(chunk);
            loop {
                match r.next_event() {
                    Ok(Some(Event::Handshake(h))) => out.push(Owned::Handshake(h)),
                    Ok(Some(Event::Frame(h, p))) => out.push(Owned::Frame(h, p.to_vec())),
                    Ok(Some(Event::Switch(p))) => out.push(Owned::Switch(p)),
                    Ok(Some(Event::End { reason })) => out.push(Owned::End(reason)),
                    Ok(Some(Event::Report(r))) => out.push(Owned::Report(r)),
                    Ok(Some(Event::Challenge(c))) => out.push(Owned::Challenge(c)),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        let err = r.finish().err();
        (out, err)
    }

    /// [`read_all`], but every frame payload the reader is inside is taken with `take_payload`
    /// and the bytes that follow are written into it directly, as `Client::recv` does.
    fn read_all_direct(bytes: &[u8], step: usize, max: u32) -> (Vec<Owned>, Option<WireError>) {
        let mut r = FrameReader::new(max);
        let mut out = Vec::new();
        // A payload being filled directly: its header, buffer and bytes in place.
        let mut direct: Option<(FrameHeader, Vec<u8>, usize)> = None;
        for mut chunk in bytes.chunks(step) {
            while !chunk.is_empty() {
                if let Some((h, mut buf, have)) = direct.take() {
                    let n = chunk.len().min(buf.len() - have);
                    buf[have..have + n].copy_from_slice(&chunk[..n]);
                    chunk = &chunk[n..];
                    if r.payload_filled(n) {
                        out.push(Owned::Frame(h, buf));
                    } else {
                        direct = Some((h, buf, have + n));
                    }
                    continue;
                }
                let space = r.space();
                let n = space.len().min(chunk.len());
                space[..n].copy_from_slice(&chunk[..n]);
                r.advance(n);
                chunk = &chunk[n..];
                loop {
                    match r.next_event() {
                        Ok(Some(Event::Handshake(h))) => out.push(Owned::Handshake(h)),
                        Ok(Some(Event::Frame(h, p))) => out.push(Owned::Frame(h, p.to_vec())),
                        Ok(Some(Event::Switch(p))) => out.push(Owned::Switch(p)),
                        Ok(Some(Event::End { reason })) => out.push(Owned::End(reason)),
                        Ok(Some(Event::Report(r))) => out.push(Owned::Report(r)),
                        Ok(Some(Event::Challenge(c))) => out.push(Owned::Challenge(c)),
                        Ok(None) => {
                            if r.pending_payload().is_some() {
                                // Stale bytes in the buffer it hands out must not leak through.
                                let mut buf = vec![0xEE; 3];
                                let (h, have) = r.take_payload(&mut buf).unwrap();
                                if have == buf.len() {
                                    out.push(Owned::Frame(h, buf));
                                    continue;
                                }
                                direct = Some((h, buf, have));
                            }
                            break;
                        }
                        Err(e) => return (out, Some(e)),
                    }
                }
            }
        }
        let err = r.finish().err();
        (out, err)
    }

    #[test]
    fn payloads_taken_by_the_caller_read_the_same_as_buffered_ones() {
        for len in [0, 1, 20, READ_CHUNK as u32 + 17] {
            let bytes = stream(4, len);
            let (want, err) = read_all(&bytes, bytes.len(), DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "{err:?}");
            for step in [1, 7, 32, 33, 100, 5000, bytes.len()] {
                let (got, err) = read_all_direct(&bytes, step, DEFAULT_MAX_PAYLOAD);
                assert!(err.is_none(), "len {len} step {step}: {err:?}");
                assert_eq!(got, want, "len {len} step {step}");
            }
        }
    }

    #[test]
    fn a_payload_taken_by_the_caller_and_cut_short_is_reported_like_a_buffered_one() {
        let bytes = stream(3, 20);
        for cut in 0..bytes.len() {
            for step in [1, 5, 64] {
                let buffered = read_all(&bytes[..cut], step, DEFAULT_MAX_PAYLOAD);
                let direct = read_all_direct(&bytes[..cut], step, DEFAULT_MAX_PAYLOAD);
                assert_eq!(
                    direct.1.map(|e| e.to_string()),
                    buffered.1.map(|e| e.to_string()),
                    "cut {cut} step {step}"
                );
                assert_eq!(direct.0, buffered.0, "cut {cut} step {step}");
            }
        }
    }

    #[test]
    fn take_payload_is_only_for_frame_payloads() {
        let bytes = stream(1, 10);
        let mut r = FrameReader::new(DEFAULT_MAX_PAYLOAD);
        let mut dst = Vec::new();
        assert_eq!(r.take_payload(&mut dst), None, "before the handshake");
        r.push(&bytes[..HANDSHAKE_LEN + HEADER_LEN + 4]);
        assert!(matches!(r.next_event(), Ok(Some(Event::Handshake(_)))));
        assert_eq!(r.pending_payload(), None, "the header is not parsed yet");
        assert_eq!(r.next_event().unwrap(), None);
        assert_eq!(r.pending_payload(), Some(10));
        let (h, have) = r.take_payload(&mut dst).unwrap();
        assert_eq!((h.seq, have, dst.len()), (0, 4, 10));
        assert_eq!(&dst[..4], &[0; 4]);
        assert_eq!(r.pending_payload(), None, "it is the caller's now");
        assert!(!r.payload_filled(5));
        assert!(r.payload_filled(1));
        assert_eq!(r.last_seq(), Some(0));
        assert_eq!(r.offset(), (HANDSHAKE_LEN + HEADER_LEN + 10) as u64);
        // The end message's payload is the reader's own.
        r.push(&bytes[HANDSHAKE_LEN + HEADER_LEN + 10..]);
        assert_eq!(r.take_payload(&mut dst), None);
        assert_eq!(r.next_event().unwrap(), Some(Event::End { reason: None }));
    }

    #[test]
    fn read_whole_stream_at_once_and_one_byte_at_a_time() {
        let bytes = stream(5, 100);
        let (whole, err) = read_all(&bytes, bytes.len(), DEFAULT_MAX_PAYLOAD);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(whole.len(), 7);
        assert_eq!(whole[0], Owned::Handshake(handshake()));
        assert_eq!(
            whole[3],
            Owned::Frame(FrameHeader::frame(2, 1002, 100), vec![2; 100])
        );
        assert_eq!(whole[6], Owned::End(None));
        for step in [1, 2, 3, 7, 31, 32, 33, 131, 4096] {
            let (split, err) = read_all(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(split, whole, "step {step}");
        }
    }

    #[test]
    fn read_zero_length_and_large_payloads() {
        for len in [0, 1, READ_CHUNK as u32 + 17, 3 * READ_CHUNK as u32] {
            let bytes = stream(3, len);
            let (events, err) = read_all(&bytes, 5000, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "len {len}: {err:?}");
            assert_eq!(events.len(), 5, "len {len}");
        }
    }

    #[test]
    fn read_incomplete_head_needs_more() {
        let bytes = stream(1, 10);
        let mut r = FrameReader::new(DEFAULT_MAX_PAYLOAD);
        r.push(&bytes[..HANDSHAKE_LEN - 1]);
        assert_eq!(r.next_event().unwrap(), None);
        r.push(&bytes[HANDSHAKE_LEN - 1..HANDSHAKE_LEN + 5]);
        assert!(matches!(r.next_event(), Ok(Some(Event::Handshake(_)))));
        assert_eq!(r.next_event().unwrap(), None);
    }

    #[test]
    fn read_oversized_len_rejected_before_allocating() {
        let mut bytes = handshake().to_bytes().to_vec();
        bytes.extend_from_slice(&FrameHeader::frame(0, 0, 0x0C00_0000).to_bytes());
        let mut r = FrameReader::new(32 << 20);
        r.push(&bytes);
        assert!(matches!(r.next_event(), Ok(Some(Event::Handshake(_)))));
        let err = r.next_event().unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte 24 (before any frame): frame payload length 201326592 exceeds max 33554432"
        );
        assert!(
            r.buf.len() < 1 << 20,
            "buffer grew to {} bytes for a rejected length",
            r.buf.len()
        );
        // Nothing more comes out after an error.
        assert_eq!(r.next_event().unwrap(), None);
    }

    #[test]
    fn write_max_frame_len_is_accepted() {
        let bytes = stream(1, 4096);
        let (events, err) = read_all(&bytes, 1000, 4096);
        assert!(err.is_none());
        assert_eq!(events.len(), 3);
        let (_, err) = read_all(&bytes, 1000, 4095);
        assert!(matches!(
            err.unwrap().kind,
            WireErrorKind::PayloadTooLarge { len: 4096, .. }
        ));
    }

    #[test]
    fn every_prefix_either_waits_or_reports_truncation() {
        let bytes = stream(3, 20);
        for cut in 0..bytes.len() {
            let (_, err) = read_all(&bytes[..cut], 3, DEFAULT_MAX_PAYLOAD);
            // A cut exactly between messages is a clean (if abrupt) end; any other is truncated.
            if let Some(err) = err {
                assert!(
                    matches!(err.kind, WireErrorKind::Truncated { .. }),
                    "cut {cut}: {err}"
                );
            }
        }
        let (_, err) = read_all(&bytes[..HANDSHAKE_LEN + 32 + 7], 3, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 56 (before any frame): stream ended inside a frame payload: got 7 of 20 bytes"
        );
    }

    #[test]
    fn errors_name_offset_and_last_good_frame() {
        let mut bytes = stream(2, 8);
        let second_header = HANDSHAKE_LEN + HEADER_LEN + 8;
        bytes[second_header..second_header + 4].copy_from_slice(b"GET ");
        let (events, err) = read_all(&bytes, 1, DEFAULT_MAX_PAYLOAD);
        assert_eq!(events.len(), 2);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 64 (after frame 0): expected frame header magic \"FWFR\", got \
             47 45 54 20 00 00 00 00 01 00 00 00 00 00 00 00 (\"GET ............\")"
        );
    }

    #[test]
    fn bad_handshakes_are_named() {
        fn check(edit: impl Fn(&mut [u8]), want: &str) {
            let mut b = handshake().to_bytes();
            edit(&mut b);
            let (_, err) = read_all(&b, 24, DEFAULT_MAX_PAYLOAD);
            assert_eq!(err.unwrap().kind.to_string(), want);
        }
        check(
            |b| b[0..4].copy_from_slice(b"HTTP"),
            "expected stream handshake magic \"FWST\", got 48 54 54 50 02 00 01 01 04 00 00 00 02 00 00 00 (\"HTTP............\")",
        );
        check(
            |b| b[4] = 1,
            "server speaks wire version 1, this viewer speaks version 2: the server needs a \
             newer framewire",
        );
        check(
            |b| b[20] = 2,
            "stream handshake names rung 2 of a ladder of 2 rungs",
        );
        check(
            |b| b[21] = 0,
            "stream handshake names rung 0 of a ladder of 0 rungs",
        );
        check(|b| b[6] = 77, "unknown codec id 77 in stream handshake");
        check(
            |b| b[7] = 0,
            "unknown pixel format id 0 in stream handshake",
        );
        check(
            |b| b[8..12].copy_from_slice(&0u32.to_le_bytes()),
            "stream size 0x2 is outside 1x1..=16384x16384",
        );
        check(
            |b| b[12..16].copy_from_slice(&20000u32.to_le_bytes()),
            "stream size 4x20000 is outside 1x1..=16384x16384",
        );
    }

    #[test]
    fn error_message_carries_reason_and_unknown_kind_is_rejected() {
        let mut bytes = handshake().to_bytes().to_vec();
        let reason = b"server full: 64 viewers";
        let h = FrameHeader {
            kind: MessageKind::Error,
            seq: 0,
            capture_us: 0,
            payload_len: reason.len() as u32,
            delta: false,
        };
        bytes.extend_from_slice(&h.to_bytes());
        bytes.extend_from_slice(reason);
        let (events, err) = read_all(&bytes, 4, DEFAULT_MAX_PAYLOAD);
        assert!(err.is_none());
        assert_eq!(
            events[1],
            Owned::End(Some("server full: 64 viewers".into()))
        );

        let mut bytes = handshake().to_bytes().to_vec();
        let mut header = FrameHeader::frame(0, 0, 0).to_bytes();
        assert_eq!(header[..4], FRAME_MAGIC);
        header[4] = 9;
        bytes.extend_from_slice(&header);
        let (_, err) = read_all(&bytes, 4, DEFAULT_MAX_PAYLOAD);
        assert_eq!(err.unwrap().kind, WireErrorKind::UnknownMessageKind(9));
    }

    #[test]
    fn random_bytes_never_panic_and_memory_stays_bounded() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let valid = stream(4, 50);
        for round in 0..500 {
            let mut bytes = if round % 2 == 0 {
                valid.clone()
            } else {
                vec![0; 300]
            };
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if round % 2 == 1 || x.is_multiple_of(29) {
                    *b = x as u8;
                }
            }
            let mut r = FrameReader::new(1 << 16);
            for chunk in bytes.chunks(1 + (x % 40) as usize) {
                r.push(chunk);
                while let Ok(Some(_)) = r.next_event() {}
            }
            let _ = r.finish();
            assert!(r.buf.len() <= (1 << 16) + READ_CHUNK + HEADER_LEN);
        }
    }

    /// Handshake, a frame of 24 bytes, a switch to rung 1, a frame of 6 bytes, a switch
    /// back, a frame of 24 bytes, then End.
    fn switching_stream() -> Vec<u8> {
        let mut out = handshake().to_bytes().to_vec();
        let frame = |out: &mut Vec<u8>, seq: u64, len: u32| {
            out.extend_from_slice(&FrameHeader::frame(seq, 0, len).to_bytes());
            out.extend(std::iter::repeat_n(seq as u8, len as usize));
        };
        frame(&mut out, 0, 24);
        out.extend(switch_to(1));
        frame(&mut out, 1, 6);
        out.extend(switch_to(0));
        frame(&mut out, 2, 24);
        let end = FrameHeader {
            kind: MessageKind::End,
            seq: 3,
            capture_us: 0,
            payload_len: 0,
            delta: false,
        };
        out.extend_from_slice(&end.to_bytes());
        out
    }

    #[test]
    fn switches_read_the_same_however_the_bytes_are_split() {
        let bytes = switching_stream();
        let (whole, err) = read_all(&bytes, bytes.len(), DEFAULT_MAX_PAYLOAD);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(whole.len(), 7);
        assert_eq!(whole[2], Owned::Switch(placement(1)));
        assert_eq!(
            whole[3],
            Owned::Frame(FrameHeader::frame(1, 0, 6), vec![1; 6])
        );
        assert_eq!(whole[4], Owned::Switch(placement(0)));
        for step in 1..=bytes.len() {
            let (split, err) = read_all(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(split, whole, "step {step}");
            let (direct, err) = read_all_direct(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(direct, whole, "direct, step {step}");
        }
        // Cut inside the switch message.
        let cut = HANDSHAKE_LEN + HEADER_LEN + 24 + HEADER_LEN + 5;
        let (events, err) = read_all(&bytes[..cut], 7, DEFAULT_MAX_PAYLOAD);
        assert_eq!(events.len(), 2);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 112 (after frame 0): stream ended inside a switch message: got 5 of 16 bytes"
        );
    }

    #[test]
    fn reports_read_the_same_however_the_bytes_are_split() {
        let report = PeerReport {
            fps: 29.97,
            latency: Some(std::time::Duration::from_micros(41_250)),
        };
        let none_yet = PeerReport {
            fps: 0.0,
            latency: None,
        };
        let mut bytes = handshake().to_bytes().to_vec();
        for r in [report, none_yet] {
            bytes.extend_from_slice(&Report::header().to_bytes());
            bytes.extend_from_slice(&Report(r).to_bytes());
        }
        bytes.extend_from_slice(&FrameHeader::frame(0, 0, 3).to_bytes());
        bytes.extend_from_slice(&[7; 3]);
        let want = vec![
            Owned::Handshake(handshake()),
            Owned::Report(report),
            Owned::Report(none_yet),
            Owned::Frame(FrameHeader::frame(0, 0, 3), vec![7; 3]),
        ];
        for step in 1..=bytes.len() {
            let (events, err) = read_all(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(events, want, "step {step}");
        }
        // A report of another length is refused at its header, before its payload.
        let mut bad = handshake().to_bytes().to_vec();
        let mut header = Report::header();
        header.payload_len = 1 << 30;
        bad.extend_from_slice(&header.to_bytes());
        let (_, err) = read_all(&bad, 5, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 24 (before any frame): report payload length 1073741824, it must be 16"
        );
    }

    #[test]
    fn a_challenge_comes_before_the_handshake_and_nowhere_else() {
        let challenge = |fill: u8| {
            let header = FrameHeader {
                kind: MessageKind::Challenge,
                seq: 0,
                capture_us: 0,
                payload_len: PROOF_LEN as u32,
                delta: false,
            };
            [&header.to_bytes()[..], &[fill; PROOF_LEN]].concat()
        };
        let mut bytes = challenge(7);
        bytes.extend_from_slice(&handshake().to_bytes());
        let want = vec![
            Owned::Challenge([7; PROOF_LEN]),
            Owned::Handshake(handshake()),
        ];
        for step in 1..=bytes.len() {
            let (events, err) = read_all(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(events, want, "step {step}");
        }
        bytes.extend(challenge(8));
        let (events, err) = read_all(&bytes, 9, DEFAULT_MAX_PAYLOAD);
        assert_eq!(events, want);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 88 (before any frame): challenge message after the stream handshake"
        );
    }

    #[test]
    fn a_bad_switch_is_named_at_its_header() {
        let mut bytes = handshake().to_bytes().to_vec();
        let mut switch = switch_to(1);
        switch[HEADER_LEN] = 9;
        bytes.extend(switch);
        let (events, err) = read_all(&bytes, 3, DEFAULT_MAX_PAYLOAD);
        assert_eq!(events.len(), 1);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 24 (before any frame): unknown codec id 9 in switch message"
        );
        let mut bytes = handshake().to_bytes().to_vec();
        let mut header = Switch::header();
        header.payload_len = u32::MAX;
        bytes.extend_from_slice(&header.to_bytes());
        let mut r = FrameReader::new(DEFAULT_MAX_PAYLOAD);
        r.push(&bytes);
        assert!(matches!(r.next_event(), Ok(Some(Event::Handshake(_)))));
        assert_eq!(
            r.next_event().unwrap_err().kind,
            WireErrorKind::BadSwitchLength(u32::MAX)
        );
        assert!(r.buf.len() < 1 << 20, "{} bytes", r.buf.len());
    }

    #[test]
    fn a_refusal_may_come_instead_of_the_handshake() {
        let bytes = refusal("asked for rung 5, but the ladder has rungs 0 to 1");
        for step in 1..=bytes.len() {
            let (events, err) = read_all(&bytes, step, DEFAULT_MAX_PAYLOAD);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(
                events,
                [Owned::End(Some(
                    "asked for rung 5, but the ladder has rungs 0 to 1".into()
                ))],
                "step {step}"
            );
        }
        let end = FrameHeader {
            kind: MessageKind::End,
            seq: 0,
            capture_us: 0,
            payload_len: 0,
            delta: false,
        };
        let (events, err) = read_all(&end.to_bytes(), 5, DEFAULT_MAX_PAYLOAD);
        assert!(err.is_none());
        assert_eq!(events, [Owned::End(None)]);
        // Cut short: inside its header, then inside its reason.
        let (_, err) = read_all(&bytes[..20], 3, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 0 (before any frame): stream ended inside a frame header: got 20 of 32 bytes"
        );
        let (_, err) = read_all(&bytes[..40], 3, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 32 (before any frame): stream ended inside an error message: got 8 of 49 bytes"
        );
    }

    #[test]
    fn only_an_end_or_an_error_may_come_before_the_handshake() {
        let frame = FrameHeader::frame(0, 0, 4).to_bytes();
        let (events, err) = read_all(&frame, 32, DEFAULT_MAX_PAYLOAD);
        assert!(events.is_empty());
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 0 (before any frame): a frame message before the stream handshake (only an \
             end or an error may come instead of it)"
        );
        let (_, err) = read_all(&switch_to(1), 32, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().kind,
            WireErrorKind::BeforeHandshake(MessageKind::Switch)
        );
        let mut huge = refusal("x");
        huge[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, err) = read_all(&huge, 32, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            err.unwrap().to_string(),
            "at byte 0 (before any frame): error payload length 4294967295 exceeds max 1024"
        );
    }
}
