//! The connection every stream protocol reads and writes: plain TCP, or TLS (rustls) over it.
//!
//! A [`Conn`] is `Read + Write` and keeps its TCP socket at hand for what only the socket
//! knows or does (`SIOCOUTQ` and `TCP_INFO` for the drain rule, timeouts, shutdown). Clones
//! ([`Conn::try_clone`]) share one TLS state, so one thread may read while another writes (a
//! call): the writer seals its bytes into records under the state's lock and writes them to
//! the socket outside it (under a second lock that keeps records in order), and the reader
//! reads raw bytes without any lock and hands them to the state under it. A writer blocked on
//! a full socket therefore never holds back the reader, which a two-way call needs to make
//! progress. TLS 1.3 session tickets are off, so after the handshake nothing but the writer
//! ever needs to write.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Plaintext sealed per lock of the TLS state; the records go to the socket before the next.
const SEAL_CHUNK: usize = 64 * 1024;

/// Ciphertext read from the socket at once by a TLS reader.
const RAW_READ: usize = 64 * 1024;

/// The first byte of a TLS handshake record.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// A stream connection: plain TCP or TLS over TCP.
pub struct Conn {
    tcp: TcpStream,
    tls: Option<Arc<TlsState>>,
    /// Ciphertext read from the socket and not yet taken by rustls: `raw[start..end]`.
    raw: Vec<u8>,
    start: usize,
    end: usize,
}

struct TlsState {
    conn: Mutex<rustls::Connection>,
    /// Held by the one writer whose records are on their way to the socket, so records leave
    /// in the order they were sealed; the buffer they are sealed into.
    out: Mutex<Vec<u8>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Conn {
    /// A plain TCP connection.
    pub fn plain(tcp: TcpStream) -> Conn {
        Conn {
            tcp,
            tls: None,
            raw: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// A TLS connection over `tcp` whose handshake is done.
    pub(crate) fn tls(tcp: TcpStream, conn: rustls::Connection) -> Conn {
        Conn {
            tcp,
            tls: Some(Arc::new(TlsState {
                conn: Mutex::new(conn),
                out: Mutex::new(Vec::new()),
            })),
            raw: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Whether this connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Fills `out` with keying material exported from the TLS session (RFC 8446 section 7.5):
    /// both ends get the same bytes for the same `label` and `context`. An error on a plain
    /// connection.
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "keying material needs a TLS connection",
            ));
        };
        lock(&tls.conn)
            .export_keying_material(out, label, Some(context))
            .map(drop)
            .map_err(io::Error::other)
    }

    /// The TCP socket under it (for its queue, its `TCP_INFO`, its timeouts).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// A second handle on the same connection (the same TLS state), for another thread.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(Conn {
            tcp: self.tcp.try_clone()?,
            tls: self.tls.clone(),
            raw: Vec::new(),
            start: 0,
            end: 0,
        })
    }

    /// Shuts the socket down (both handles' reads and writes wake).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp.shutdown(how)
    }

    /// The socket's read timeout.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(t)
    }

    /// The socket's write timeout.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(t)
    }

    /// Turns Nagle's delay on or off.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp.set_nodelay(on)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }

    /// Writes every slice, in order: straight to the socket with as few syscalls as the kernel
    /// allows, or sealed into TLS records in chunks, each chunk's records written outside the
    /// TLS state's lock.
    pub fn write_parts(&mut self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            let mut bufs = slices;
            while !bufs.is_empty() {
                match self.tcp.write_vectored(bufs) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        };
        let mut out = lock(&tls.out);
        out.clear();
        for slice in slices.iter() {
            let mut data: &[u8] = slice;
            while !data.is_empty() {
                let n = {
                    let mut conn = lock(&tls.conn);
                    let n = conn.writer().write(&data[..data.len().min(SEAL_CHUNK)])?;
                    while conn.wants_write() {
                        conn.write_tls(&mut *out)?;
                    }
                    n
                };
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                data = &data[n..];
                if out.len() >= SEAL_CHUNK {
                    let sent = (&self.tcp).write_all(&out);
                    out.clear();
                    sent?;
                }
            }
        }
        let sent = (&self.tcp).write_all(&out);
        out.clear();
        sent
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return self.tcp.read(buf);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut conn = lock(&tls.conn);
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The peer closed without close_notify: framewire's own messages say
                    // whether the stream was whole, so this is a plain end of stream.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let n = conn.read_tls(&mut &self.raw[self.start..self.end])?;
                    self.start += n;
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    continue;
                }
            }
            self.start = 0;
            self.end = 0;
            if self.raw.len() < RAW_READ {
                self.raw.resize(RAW_READ, 0);
            }
            let n = loop {
                match self.tcp.read(&mut self.raw) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            if n == 0 {
                // End of the socket: rustls learns it from an empty read.
                let mut conn = lock(&tls.conn);
                conn.read_tls(&mut &[][..])?;
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                continue;
            }
            self.end = n;
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.tcp.write(buf);
        }
        self.write_parts(&mut [IoSlice::new(buf)])?;
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.tcp.write_vectored(bufs);
        }
        let mut owned: Vec<IoSlice<'_>> = bufs.to_vec();
        self.write_parts(&mut owned)?;
        Ok(bufs.iter().map(|b| b.len()).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a TLS handshake on `tcp` before `deadline`: writes what rustls has to say, reads what
/// it waits for, until it is done. `first_bytes` sees the first bytes the peer sent (a peek,
/// before rustls reads them) and may refuse them (plaintext where TLS was expected).
pub(crate) fn handshake(
    tcp: &TcpStream,
    conn: &mut rustls::Connection,
    deadline: Instant,
    first_bytes: &dyn Fn(&[u8]) -> Result<(), String>,
) -> Result<(), HandshakeError> {
    let mut received = false;
    loop {
        while conn.wants_write() {
            conn.write_tls(&mut &*tcp).map_err(HandshakeError::Io)?;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HandshakeError::Io(io::ErrorKind::TimedOut.into()));
        }
        tcp.set_read_timeout(Some(left))
            .map_err(HandshakeError::Io)?;
        if !received {
            let mut head = [0u8; 8];
            let n = tcp.peek(&mut head).map_err(HandshakeError::Io)?;
            if n == 0 {
                return Err(HandshakeError::Closed);
            }
            first_bytes(&head[..n]).map_err(HandshakeError::Refused)?;
            received = true;
        }
        match conn.read_tls(&mut &*tcp) {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the peer why (an alert), as far as the socket takes it.
            while conn.wants_write() {
                if conn.write_tls(&mut &*tcp).is_err() {
                    break;
                }
            }
            return Err(HandshakeError::Tls(e));
        }
    }
}

/// Why a TLS handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The socket failed or the deadline passed.
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    /// The peer's first bytes are not TLS (the reason, in words).
    Refused(String),
    /// rustls refused the handshake.
    Tls(rustls::Error),
}

/// Whether a read or write gave up at its timeout (a socket timeout reads as either kind).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether an error says the peer went away (closed or reset its end).
pub(crate) fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Wakes a thread blocked in `accept` on `addr` (loopback for an unspecified address) with a
/// connection of its own, so that it sees it should stop.
pub(crate) fn wake_accept(mut addr: SocketAddr) {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}
/// What a peer may send on a connection that expects little from it (a media server's
/// answers to a publisher, a WebSocket client's control frames): at most `max` bytes within
/// each `window`, so that a peer cannot make a reader hold or parse without bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InboundBudget {
    max: usize,
    window: Duration,
    since: Instant,
    bytes: usize,
}

impl InboundBudget {
    /// A budget whose first window starts now.
    pub(crate) fn new(max: usize, window: Duration) -> InboundBudget {
        InboundBudget {
            max,
            window,
            since: Instant::now(),
            bytes: 0,
        }
    }

    /// Takes in `n` bytes read at `now`; false once the window holds more than `max`.
    pub(crate) fn take(&mut self, n: usize, now: Instant) -> bool {
        if now.duration_since(self.since) >= self.window {
            (self.since, self.bytes) = (now, 0);
        }
        self.bytes += n;
        self.bytes <= self.max
    }

    /// What a peer that overspent it is told, as `sent more than 64 KiB within 10s`.
    pub(crate) fn overspent(&self) -> String {
        format!(
            "sent more than {} KiB within {}s",
            self.max / 1024,
            self.window.as_secs()
        )
    }
}
