//! What the kernel still holds of a TCP socket's writes, and how fast it moves them: the two
//! Linux calls the fan-out needs to wait until a socket can take a frame without queueing it
//! behind older ones, and the third that paces the socket. The only `unsafe` code of the crate:
//! neither std, nix 0.31 nor rustix wraps `SIOCOUTQ`, `TCP_INFO` or `SO_MAX_PACING_RATE`, so
//! this module calls them through `libc`, each on a buffer it owns and with the length the
//! kernel is told.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Bytes written to `stream` that its peer has not acknowledged yet: those not sent plus those
/// in flight (`SIOCOUTQ`, the same request number as `TIOCOUTQ`).
pub(crate) fn unacked_bytes(stream: &TcpStream) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ on a TCP socket writes one c_int through the pointer, which points to
    // `queued`, a live c_int on this stack frame; the fd is valid while `stream` is borrowed.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}

/// Caps the rate at which the kernel sends `stream`'s bytes at `bytes_per_sec`
/// (`SO_MAX_PACING_RATE`): the kernel then spaces its packets out at that rate (its own TCP
/// pacing, which needs no `fq` qdisc since Linux 4.13) instead of sending a burst at once.
pub(crate) fn set_max_pacing_rate(stream: &TcpStream, bytes_per_sec: u64) -> io::Result<()> {
    // The kernel reads an unsigned long when given that many bytes (64 bits here), else a u32.
    #[allow(clippy::useless_conversion)] // c_ulong has 32 bits on 32-bit targets
    let rate: libc::c_ulong = bytes_per_sec.try_into().unwrap_or(libc::c_ulong::MAX);
    // SAFETY: setsockopt reads `size_of::<c_ulong>()` bytes from `&rate`, a live c_ulong on this
    // stack frame; the fd is valid while `stream` is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MAX_PACING_RATE,
            (&rate as *const libc::c_ulong).cast(),
            std::mem::size_of::<libc::c_ulong>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The parts of Linux's `struct tcp_info` (linux/tcp.h) the fan-out reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpInfo {
    /// Maximum segment size the socket sends.
    pub mss: u32,
    /// Smoothed round-trip time.
    pub srtt: Duration,
    /// The smallest round-trip time seen (kernel 4.6+; zero when older or not measured yet).
    pub min_rtt: Duration,
    /// The most recent delivery rate in bytes per second (kernel 4.9+; zero when unknown).
    pub delivery_rate: u64,
}

/// Byte offsets in `struct tcp_info` (fields are only ever appended to it, so they are the
/// same on every kernel that has them; the kernel reports how many bytes it filled).
mod offset {
    pub const SND_MSS: usize = 16;
    pub const RTT: usize = 68;
    pub const MIN_RTT: usize = 148;
    pub const DELIVERY_RATE: usize = 160;
}

/// Reads `TCP_INFO` of `stream`. Fields the kernel did not fill stay zero.
pub(crate) fn tcp_info(stream: &TcpStream) -> io::Result<TcpInfo> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes to `buf`, a live array of that many bytes on
    // this stack frame (a byte array: no alignment needed), and stores the length it wrote in
    // `len`, a live socklen_t; the fd is valid while `stream` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(parse(&buf[..(len as usize).min(buf.len())]))
}

fn parse(info: &[u8]) -> TcpInfo {
    let u32_at = |at: usize| {
        info.get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |at: usize| {
        info.get(at..at + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    TcpInfo {
        mss: u32_at(offset::SND_MSS),
        srtt: Duration::from_micros(u32_at(offset::RTT).into()),
        min_rtt: Duration::from_micros(u32_at(offset::MIN_RTT).into()),
        delivery_rate: u64_at(offset::DELIVERY_RATE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn offsets_match_the_c_library_struct() {
        assert_eq!(
            offset::SND_MSS,
            std::mem::offset_of!(libc::tcp_info, tcpi_snd_mss)
        );
        assert_eq!(offset::RTT, std::mem::offset_of!(libc::tcp_info, tcpi_rtt));
        assert_eq!(
            offset::MIN_RTT,
            std::mem::offset_of!(libc::tcp_info, tcpi_min_rtt)
        );
        assert_eq!(
            offset::DELIVERY_RATE,
            std::mem::offset_of!(libc::tcp_info, tcpi_delivery_rate)
        );
    }

    #[test]
    fn a_connected_socket_reports_its_queue_and_path() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(unacked_bytes(&server).unwrap(), 0, "nothing written yet");
        server.write_all(&[7; 10_000]).unwrap();
        let mut got = vec![0; 10_000];
        client.read_exact(&mut got).unwrap();
        let info = tcp_info(&server).unwrap();
        assert!(info.mss > 0, "{info:?}");
        assert!(info.srtt > Duration::ZERO, "{info:?}");
        // Unacknowledged bytes are at most what was written (acks may still be on their way).
        assert!(unacked_bytes(&server).unwrap() <= 10_000);
    }

    #[test]
    fn a_paced_socket_sends_no_faster_than_its_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        // The kernel sends a connection's first 10 segments unpaced; on loopback (64 KB
        // segments) the rest of 2 MB at 10 MB/s takes over 0.1 s, where unpaced it takes a
        // millisecond or so.
        set_max_pacing_rate(&server, 10_000_000).unwrap();
        let start = std::time::Instant::now();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0; 2_000_000];
            client.read_exact(&mut got).unwrap();
        });
        server.write_all(&vec![7; 2_000_000]).unwrap();
        reader.join().unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50), "took {took:?}");
        // Lifting the cap (`!0`) is accepted.
        set_max_pacing_rate(&server, u64::MAX).unwrap();
    }

    #[test]
    fn a_short_answer_leaves_the_missing_fields_zero() {
        let mut old = vec![0u8; 104];
        old[offset::SND_MSS..offset::SND_MSS + 4].copy_from_slice(&1448u32.to_ne_bytes());
        old[offset::RTT..offset::RTT + 4].copy_from_slice(&2500u32.to_ne_bytes());
        let info = parse(&old);
        assert_eq!(info.mss, 1448);
        assert_eq!(info.srtt, Duration::from_micros(2500));
        assert_eq!((info.min_rtt, info.delivery_rate), (Duration::ZERO, 0));
    }
}
