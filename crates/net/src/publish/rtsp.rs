//! The RTSP RECORD publisher (RFC 2326 10.11, as ffmpeg's and OBS's RTSP output and MediaMTX's
//! publishers do it): ANNOUNCE with the stream's SDP, SETUP of its one track with interleaved
//! TCP transport (the RTP packets ride the RTSP connection as `$` frames, so no UDP port has to
//! pass a firewall), RECORD, then each access unit as RTP packets (`framewire_wire::rtp`), and
//! TEARDOWN at the end. A server that answers that SETUP with a `server_port` takes RTP over
//! UDP only (rtsp-server-perl does): the packets then go to that port of its address as
//! datagrams, each lost alone when the network drops it. A server that asks for a login is answered with HTTP Basic from the
//! URL's credentials. The server's own interleaved frames (RTCP) are read and skipped; the
//! messages are `framewire_wire::rtsp`'s, bounded.

use super::*;

use std::net::UdpSocket;

use framewire_file::h264::nal_units;
use framewire_wire::rtp::{self, H264Packetizer};
use framewire_wire::rtsp::{self as msg, Incoming, Request, Response};

/// The track's control path in the SDP, which SETUP names after the URL.
const CONTROL: &str = "streamid=0";

/// A recording RTSP connection.
pub(super) struct RtspOutlet {
    wire: Wire,
    url: String,
    session: String,
    cseq: u32,
    authorization: Option<String>,
    packetizer: H264Packetizer,
    /// RTP over UDP: the socket and the server's RTP port, for a server that takes no other.
    udp: Option<(UdpSocket, SocketAddr)>,
    /// The first packet's capture time and the RTP timestamp it got.
    start: Option<(u64, u32)>,
    out: Vec<u8>,
    /// What the opening read past RECORD's answer (the server's first RTCP), for the reader.
    read_ahead: Vec<u8>,
}

/// Reads one response by `deadline`, skipping interleaved frames.
fn response(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
    what: &str,
) -> Result<Response, String> {
    loop {
        match msg::parse(buf).map_err(|e| format!("{what}: {e}"))? {
            Incoming::Response(response, used) => {
                buf.drain(..used);
                return Ok(response);
            }
            Incoming::Interleaved { len, .. } => {
                buf.drain(..len);
            }
            Incoming::Partial => {
                read_some(conn, buf, deadline, msg::MAX_HEAD + msg::MAX_BODY, what)?;
            }
        }
    }
}

/// Random bits for the SSRC, the first sequence number and timestamp (RFC 3550 5.1).
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // Without an OS random source, a fixed start is still a valid stream.
    let _ = getrandom::fill(&mut b);
    u32::from_be_bytes(b)
}

/// The state of the exchange before RECORD.
struct Opening<'a> {
    conn: Conn,
    buf: Vec<u8>,
    cseq: u32,
    authorization: Option<String>,
    target: &'a Target,
    deadline: Instant,
}

impl Opening<'_> {
    /// Sends a request and reads its response; a 401 is answered once with the URL's
    /// credentials. Any status but 200 is an error naming it.
    fn ask(
        &mut self,
        method: &'static str,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Option<(&str, &str)>,
    ) -> Result<Response, String> {
        let what = format!("rtsp {method}");
        loop {
            self.cseq += 1;
            let mut all = headers.clone();
            if let Some(auth) = &self.authorization {
                all.push(("Authorization", auth.clone()));
            }
            let request = Request {
                method,
                url,
                cseq: self.cseq,
                headers: all,
                body,
            };
            write_by(&mut self.conn, &request.to_bytes(), self.deadline, &what)?;
            let response = response(&mut self.conn, &mut self.buf, self.deadline, &what)?;
            match response.status {
                200 => return Ok(response),
                401 if self.authorization.is_none() => {
                    let Some((user, password)) = &self.target.credentials else {
                        return Err(format!(
                            "{what}: the server asks for a login (401); put it in the URL: \
                             rtsp://USER:PASS@HOST/PATH"
                        ));
                    };
                    // A server may offer several schemes, a header each (MediaMTX: Basic
                    // and Digest).
                    let offered: Vec<&str> = response
                        .headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
                        .map(|(_, v)| v.as_str())
                        .collect();
                    if !offered
                        .iter()
                        .any(|v| v.to_ascii_lowercase().starts_with("basic"))
                    {
                        let schemes: Vec<&str> =
                            offered.iter().filter_map(|v| v.split(' ').next()).collect();
                        return Err(format!(
                            "{what}: the server asks for {} authentication; framewire answers \
                             Basic only",
                            if schemes.is_empty() {
                                "no named".to_string()
                            } else {
                                schemes.join(" or ")
                            }
                        ));
                    }
                    use base64::Engine;
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    self.authorization = Some(format!("Basic {token}"));
                }
                401 => return Err(format!("{what}: the server refused the login (401)")),
                status => {
                    return Err(format!(
                        "{what}: the server answered {status} {}",
                        response.reason
                    ));
                }
            }
        }
    }
}

/// Opens an RTSP recording session on `conn` by `deadline`: ANNOUNCE, SETUP, RECORD.
pub(super) fn open(
    conn: Conn,
    target: &Target,
    deadline: Instant,
    write_timeout: Duration,
) -> Result<RtspOutlet, String> {
    let url = target.bare_url();
    let origin = conn
        .tcp()
        .local_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into());
    let sdp = rtp::sdp(&origin, CONTROL);
    let mut opening = Opening {
        conn,
        buf: Vec::new(),
        cseq: 0,
        authorization: None,
        target,
        deadline,
    };
    opening.ask(
        "ANNOUNCE",
        &url,
        Vec::new(),
        Some(("application/sdp", &sdp)),
    )?;
    let track = format!("{url}/{CONTROL}");
    let transport = (
        "Transport",
        "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record".to_string(),
    );
    let setup = opening.ask("SETUP", &track, vec![transport], None)?;
    let session = setup
        .session()
        .ok_or("rtsp SETUP: the server's answer has no Session header")?
        .to_string();
    let channel = setup
        .header("Transport")
        .and_then(|t| {
            t.split(';')
                .find_map(|p| p.trim().strip_prefix("interleaved="))
        })
        .and_then(|i| i.split('-').next()?.parse::<u8>().ok())
        .unwrap_or(0);
    let transport = setup.header("Transport").unwrap_or_default();
    let udp = match transport
        .split(';')
        .find_map(|p| p.trim().strip_prefix("server_port="))
    {
        None => None,
        Some(ports) => {
            let port = ports
                .split('-')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("rtsp SETUP: a server_port of {ports:?}"))?;
            let server = opening
                .conn
                .peer_addr()
                .map_err(|e| format!("rtsp SETUP: {e}"))?;
            let local = opening.conn.tcp().local_addr().map_err(|e| e.to_string())?;
            let socket = UdpSocket::bind(SocketAddr::new(local.ip(), 0))
                .map_err(|e| format!("rtsp: cannot bind a UDP socket for RTP: {e}"))?;
            Some((socket, SocketAddr::new(server.ip(), port)))
        }
    };
    let headers = vec![
        ("Session", session.clone()),
        ("Range", "npt=0.000-".to_string()),
    ];
    opening.ask("RECORD", &url, headers, None)?;
    let Opening {
        conn,
        buf,
        cseq,
        authorization,
        ..
    } = opening;
    Ok(RtspOutlet {
        wire: Wire::new(conn, write_timeout),
        url,
        session,
        cseq,
        authorization,
        packetizer: H264Packetizer::new(channel, random_u32(), random_u32() as u16),
        udp,
        start: None,
        out: Vec::new(),
        read_ahead: buf,
    })
}

impl Outlet for RtspOutlet {
    fn start(&mut self, _: &Placement) -> io::Result<()> {
        Ok(())
    }

    fn ready(&mut self, slot: &Latest<Arc<Packet>>) -> Result<(), String> {
        self.wire.ready(slot)
    }

    /// Nothing: the parameter sets before the next keyframe say the new size.
    fn switch(&mut self, _: &Placement) -> io::Result<()> {
        Ok(())
    }

    fn send(&mut self, packet: &Packet, _: Option<&framewire_core::PeerReport>) -> io::Result<()> {
        let (start_us, base) = *self.start.get_or_insert((packet.capture_us, random_u32()));
        let timestamp = rtp::timestamp(base, start_us, packet.capture_us);
        self.out.clear();
        self.packetizer
            .access_unit(nal_units(&packet.payload), timestamp, &mut self.out);
        if let Some((socket, to)) = &self.udp {
            // Each interleaved frame's RTP packet as one datagram; one the network refuses is
            // one packet lost, as RTP over UDP expects.
            let mut rest = &self.out[..];
            while rest.len() >= 4 {
                let len = 4 + usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                let _ = socket.send_to(&rest[4..len.min(rest.len())], to);
                rest = &rest[len.min(rest.len())..];
            }
            return Ok(());
        }
        self.wire.write(&[&self.out], self.out.len())
    }

    fn end(&mut self, _: Option<&str>) -> io::Result<()> {
        self.cseq += 1;
        let mut headers = vec![("Session", self.session.clone())];
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.clone()));
        }
        let teardown = Request {
            method: "TEARDOWN",
            url: &self.url,
            cseq: self.cseq,
            headers,
            body: None,
        };
        self.wire.write(&[&teardown.to_bytes()], 0)?;
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

impl PushOutlet for RtspOutlet {
    /// Reads the server's RTCP and answers, skipping them; bytes that are neither end it.
    fn listen(&mut self, member: Arc<Member<()>>) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.read_ahead);
        spawn_reader(self.wire.conn.try_clone()?, member, move |bytes| {
            buf.extend_from_slice(bytes);
            loop {
                match msg::parse(&buf).map_err(|e| format!("rtsp from the server: {e}"))? {
                    Incoming::Partial => return Ok(()),
                    Incoming::Interleaved { len, .. } => {
                        buf.drain(..len);
                    }
                    Incoming::Response(response, used) => {
                        buf.drain(..used);
                        if response.status != 200 {
                            return Err(format!(
                                "the server answered {} {}",
                                response.status, response.reason
                            ));
                        }
                    }
                }
            }
        })
    }
}
