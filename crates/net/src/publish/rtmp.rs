//! The RTMP publisher: the handshake, `connect`, `createStream` and `publish` through
//! `rml_rtmp`'s client session, then one video message per packet: the AVC sequence header
//! before the first keyframe and whenever the parameter sets change, each access unit as an
//! FLV video tag (`framewire_file::flv`), timestamped in milliseconds from the first packet's
//! capture time.
//!
//! `rml_rtmp` (the RTMP library of mmids; MIT) is sans-IO: bytes in, bytes and events out, so
//! its session runs on our threads and sockets, TLS included, with nothing of an async runtime.
//! It speaks the handshake (with the digest form Flash servers ask for), the chunk stream and
//! AMF0; what is ours is only which messages go when. Its chunk reader bounds a message at RTMP's
//! 24-bit length.

use super::*;

use bytes::Bytes;
use framewire_file::flv;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;

/// The most the opening reads while waiting for one answer: the handshake is 3073 bytes, each
/// command's answer a few hundred.
const OPENING_READ_MAX: usize = 64 * 1024;
/// FLV's codec id of AVC, for the stream's metadata.
const AVC: u32 = 7;

/// A publishing RTMP connection.
pub(super) struct RtmpOutlet {
    wire: Wire,
    session: Arc<Mutex<ClientSession>>,
    /// What the reader thread's answers (pings, acknowledgements) put out, sent before the
    /// next message.
    pending: Arc<Mutex<Vec<u8>>>,
    /// The first packet's capture time: timestamps count from it.
    start_us: Option<u64>,
    /// The SPS and PPS of the last sequence header sent.
    parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
    tag: Vec<u8>,
    out: Vec<u8>,
}

/// Why `rml_rtmp` failed, in a line.
fn failed(what: &str, e: impl fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Appends the bytes of every outbound result to `out`; the events go to `events`.
fn take(
    results: Vec<ClientSessionResult>,
    out: &mut Vec<u8>,
    events: &mut Vec<ClientSessionEvent>,
) {
    for result in results {
        match result {
            ClientSessionResult::OutboundResponse(packet) => out.extend_from_slice(&packet.bytes),
            ClientSessionResult::RaisedEvent(event) => events.push(event),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
}

/// Whether an `onStatus` code says publishing failed or ended.
fn is_failure(code: &str) -> bool {
    [
        "Failed",
        "BadName",
        "Rejected",
        "Error",
        "Denied",
        "Unpublish",
    ]
    .iter()
    .any(|word| code.contains(word))
}

/// Opens an RTMP publishing session on `conn` by `deadline`.
pub(super) fn open(
    mut conn: Conn,
    target: &Target,
    deadline: Instant,
    write_timeout: Duration,
) -> Result<RtmpOutlet, String> {
    let (app, stream) = target.rtmp_app().ok_or("no application and stream")?;
    let mut handshake = Handshake::new(PeerType::Client);
    let hello = handshake
        .generate_outbound_p0_and_p1()
        .map_err(|e| failed("rtmp handshake", e))?;
    write_by(&mut conn, &hello, deadline, "rtmp handshake")?;
    let mut buf = Vec::new();
    let remaining = loop {
        let at = buf.len();
        read_some(
            &mut conn,
            &mut buf,
            deadline,
            OPENING_READ_MAX,
            "rtmp handshake",
        )?;
        let result = handshake.process_bytes(&buf[at..]).map_err(|e| {
            failed(
                "rtmp handshake",
                format!("{e} (the server sent {:?}...)", preview(&buf)),
            )
        })?;
        match result {
            HandshakeProcessResult::InProgress { response_bytes } => {
                write_by(&mut conn, &response_bytes, deadline, "rtmp handshake")?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                write_by(&mut conn, &response_bytes, deadline, "rtmp handshake")?;
                break remaining_bytes;
            }
        }
    };
    let mut config = ClientSessionConfig::new();
    config.flash_version = "FMLE/3.0 (compatible; framewire)".into();
    config.tc_url = Some(format!(
        "{}://{}/{app}",
        target.scheme.name(),
        target.host_port()
    ));
    let (mut session, results) = ClientSession::new(config).map_err(|e| failed("rtmp", e))?;
    let mut out = Vec::new();
    let mut events = Vec::new();
    take(results, &mut out, &mut events);
    let connect = session
        .request_connection(app.to_string())
        .map_err(|e| failed("rtmp connect", e))?;
    take(vec![connect], &mut out, &mut events);
    write_by(&mut conn, &out, deadline, "rtmp connect")?;
    let mut input = remaining;
    let mut asked_publish = false;
    loop {
        out.clear();
        if !input.is_empty() {
            let results = session
                .handle_input(&input)
                .map_err(|e| failed("rtmp", e))?;
            take(results, &mut out, &mut events);
            input.clear();
        }
        for event in events.drain(..) {
            match event {
                ClientSessionEvent::ConnectionRequestAccepted if !asked_publish => {
                    asked_publish = true;
                    let publish = session
                        .request_publishing(stream.to_string(), PublishRequestType::Live)
                        .map_err(|e| failed("rtmp publish", e))?;
                    take(vec![publish], &mut out, &mut Vec::new());
                }
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    return Err(format!("rtmp connect to {app:?} refused: {description}"));
                }
                ClientSessionEvent::PublishRequestAccepted => {
                    write_by(&mut conn, &out, deadline, "rtmp publish")?;
                    return Ok(RtmpOutlet {
                        wire: Wire::new(conn, write_timeout),
                        session: Arc::new(Mutex::new(session)),
                        pending: Arc::new(Mutex::new(Vec::new())),
                        start_us: None,
                        parameter_sets: None,
                        tag: Vec::new(),
                        out: Vec::new(),
                    });
                }
                ClientSessionEvent::UnhandleableOnStatusCode { code } if is_failure(&code) => {
                    return Err(format!("rtmp publish refused: {code}"));
                }
                _ => {}
            }
        }
        let waiting = if asked_publish {
            "rtmp publish"
        } else {
            "rtmp connect"
        };
        write_by(&mut conn, &out, deadline, waiting)?;
        read_some(&mut conn, &mut input, deadline, OPENING_READ_MAX, waiting)?;
    }
}

/// The first bytes of `buf` as text, for a line about what a server sent.
fn preview(buf: &[u8]) -> String {
    buf.iter()
        .take(16)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

impl RtmpOutlet {
    /// Writes what the reader left pending and `self.out`, then empties both.
    fn flush(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let written = self.wire.write(&[&pending, &self.out], self.out.len());
        self.out.clear();
        written
    }

    /// Serializes one video message of `self.tag` at `timestamp` into `self.out`; the tag's
    /// buffer goes with the message (its chunks are written from it), uncopied.
    fn video(&mut self, timestamp: u32) -> io::Result<()> {
        let data = Bytes::from(std::mem::take(&mut self.tag));
        let result = lock(&self.session)
            .publish_video_data(data, RtmpTimestamp::new(timestamp), false)
            .map_err(io::Error::other)?;
        take(vec![result], &mut self.out, &mut Vec::new());
        Ok(())
    }
}

impl Outlet for RtmpOutlet {
    /// The stream's metadata (`onMetaData`: size, codec), as OBS and ffmpeg send it.
    fn start(&mut self, at: &Placement) -> io::Result<()> {
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(at.rendition.stream.width);
        metadata.video_height = Some(at.rendition.stream.height);
        metadata.video_codec_id = Some(AVC);
        metadata.video_bitrate_kbps =
            (at.rendition.bitrate_kbit > 0).then_some(at.rendition.bitrate_kbit);
        metadata.encoder = Some("framewire".into());
        let result = lock(&self.session)
            .publish_metadata(&metadata)
            .map_err(io::Error::other)?;
        take(vec![result], &mut self.out, &mut Vec::new());
        self.flush()
    }

    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        self.wire.ready(slot)
    }

    /// Nothing: a keyframe's parameter sets say a new size, in a new sequence header.
    fn switch(&mut self, _: &Placement) -> io::Result<()> {
        Ok(())
    }

    fn send(&mut self, packet: &Packet, _: Option<&framewire_core::PeerReport>) -> io::Result<()> {
        let start = *self.start_us.get_or_insert(packet.capture_us);
        // RTMP's timestamps are milliseconds in 32 bits, wrapping after 49 days.
        let timestamp = (packet.capture_us.saturating_sub(start) / 1000) as u32;
        if packet.keyframe
            && let Some((sps, pps)) = flv::parameter_sets(&packet.payload)
            && self
                .parameter_sets
                .as_ref()
                .is_none_or(|(s, p)| s != sps || p != pps)
        {
            self.tag.clear();
            if flv::sequence_header(sps, pps, &mut self.tag).is_some() {
                self.video(timestamp)?;
                self.parameter_sets = Some((sps.to_vec(), pps.to_vec()));
            }
        }
        self.tag.clear();
        if flv::video_tag(&packet.payload, packet.keyframe, &mut self.tag) > 0 {
            self.video(timestamp)?;
        }
        self.flush()
    }

    /// `FCUnpublish` and `deleteStream`, as a publisher that stops says.
    fn end(&mut self, _: Option<&str>) -> io::Result<()> {
        let result = lock(&self.session)
            .stop_publishing()
            .map_err(io::Error::other)?;
        take(result, &mut self.out, &mut Vec::new());
        self.flush()?;
        self.wire.drained();
        Ok(())
    }

    fn close(&mut self) {
        self.wire.close();
    }

    fn failed(&self, e: &io::Error) -> Option<String> {
        self.wire.failed(e)
    }
}

impl PushOutlet for RtmpOutlet {
    fn listen(&mut self, member: Arc<Member<()>>) -> io::Result<()> {
        let session = Arc::clone(&self.session);
        let pending = Arc::clone(&self.pending);
        spawn_reader(self.wire.conn.try_clone()?, member, move |bytes| {
            let mut events = Vec::new();
            let results = lock(&session)
                .handle_input(bytes)
                .map_err(|e| format!("rtmp from the server: {e}"))?;
            take(results, &mut lock(&pending), &mut events);
            for event in events {
                if let ClientSessionEvent::UnhandleableOnStatusCode { code } = event
                    && is_failure(&code)
                {
                    return Err(format!("the server ended publishing: {code}"));
                }
            }
            Ok(())
        })
    }
}
