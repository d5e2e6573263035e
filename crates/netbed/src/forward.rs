//! The user-space delay: a thread inside the link namespace that reads each packet from a TUN
//! device, holds it for the direction's delay and writes it back into the same device, from
//! where the kernel routes it on toward its destination.
//!
//! This kernel has no netem, so the delay cannot come from a qdisc. One thread serves every
//! direction: it polls the TUN devices and a stop socket, with the time until the earliest held
//! packet is due as the poll timeout. Each direction is a FIFO with one constant delay, so
//! packets leave in the order they came; a full queue drops the arriving packet.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tun_rs::{DeviceBuilder, SyncDevice};

use crate::NetbedError;

/// How long [`Forwarder::start`] waits for the thread to open its TUN devices.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Packets read from one device per poll wake-up at most, so no direction starves the others.
const READ_BATCH: usize = 256;

/// A FIFO that holds each packet for a fixed delay and drops arrivals beyond a limit.
#[derive(Debug)]
pub(crate) struct DelayLine {
    delay: Duration,
    limit: usize,
    queue: VecDeque<(Instant, Vec<u8>)>,
    dropped: u64,
}

impl DelayLine {
    pub(crate) fn new(delay: Duration, limit: usize) -> Self {
        DelayLine {
            delay,
            limit,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Takes a packet that arrived at `now`; `false` when the queue was full and it was dropped.
    pub(crate) fn push(&mut self, now: Instant, packet: Vec<u8>) -> bool {
        if self.queue.len() >= self.limit {
            self.dropped += 1;
            return false;
        }
        // One constant delay and a clock that never goes back keep the due times in order.
        self.queue.push_back((now + self.delay, packet));
        true
    }

    /// When the oldest held packet is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// The oldest packet if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_due()? <= now {
            self.queue.pop_front().map(|(_, packet)| packet)
        } else {
            None
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// One delayed direction: the TUN device (in the link namespace) its packets are routed to.
#[derive(Clone, Debug)]
pub(crate) struct Lane {
    pub(crate) device: String,
    pub(crate) delay: Duration,
}

/// The running forwarder; dropping it stops the thread and closes its devices.
#[derive(Debug)]
pub(crate) struct Forwarder {
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts the thread in namespace `netns`, creates one TUN device per lane there, and returns
    /// once they exist and are up.
    pub(crate) fn start(netns: &str, lanes: Vec<Lane>, limit: usize) -> Result<Self, NetbedError> {
        let (stop, stopped) = UnixStream::pair()
            .map_err(|e| NetbedError::io("make the forwarder's stop socket", e))?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let where_ = netns.to_string();
        let thread = crate::netns::spawn_in(netns, move || {
            let opened: Result<Vec<_>, _> = lanes
                .iter()
                .map(|lane| {
                    open_tun(&lane.device).map_err(|e| {
                        NetbedError::io(format!("open TUN device {} in {where_}", lane.device), e)
                    })
                })
                .collect();
            match opened {
                Ok(devices) => {
                    let _ = ready_tx.send(Ok(()));
                    let lines = lanes
                        .iter()
                        .map(|lane| DelayLine::new(lane.delay, limit))
                        .collect();
                    forward(&devices, lines, &stopped);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        let mut forwarder = Forwarder {
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(forwarder),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(NetbedError::Timeout {
                what: format!("the delay forwarder to open its TUN devices in {netns}"),
                after: START_TIMEOUT,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The thread died before saying anything: it panicked entering the namespace.
                let why = match forwarder.thread.take().map(JoinHandle::join) {
                    Some(Err(panic)) => panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "it panicked".into()),
                    _ => "it ended without a word".into(),
                };
                Err(NetbedError::io(
                    format!("start the delay forwarder in {netns}"),
                    std::io::Error::other(why),
                ))
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Closing our end makes the thread's end readable (end of file): its signal to stop.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the delay forwarder panicked");
        }
    }
}

fn open_tun(name: &str) -> std::io::Result<SyncDevice> {
    let device = DeviceBuilder::new().name(name).enable(true).build_sync()?;
    device.set_nonblocking(true)?;
    Ok(device)
}

/// The forwarder's loop: until `stop` becomes readable, read packets into their lines and write
/// each back when it is due.
fn forward(devices: &[SyncDevice], mut lines: Vec<DelayLine>, stop: &UnixStream) {
    // Large enough for any packet a TUN device hands over (the MTU is 1500).
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        for (device, line) in devices.iter().zip(&mut lines) {
            while let Some(packet) = line.pop_due(now) {
                if let Err(e) = device.send(&packet) {
                    tracing::debug!("delay forwarder: packet not written back: {e}");
                }
            }
        }
        let timeout = match lines.iter().filter_map(DelayLine::next_due).min() {
            // Round up: waking early would only spin until the due time.
            Some(due) => {
                let ms = due
                    .saturating_duration_since(now)
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
            None => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd<'_>> = std::iter::once(stop.as_fd())
            .chain(devices.iter().map(AsFd::as_fd))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("delay forwarder stops: poll failed: {e}");
                return;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            let dropped: Vec<u64> = lines.iter().map(DelayLine::dropped).collect();
            tracing::debug!(?dropped, "delay forwarder stops");
            return;
        }
        let now = Instant::now();
        for ((device, line), _) in devices
            .iter()
            .zip(&mut lines)
            .zip(&ready[1..])
            .filter(|(_, ready)| **ready)
        {
            for _ in 0..READ_BATCH {
                match device.recv(&mut buf) {
                    Ok(n) => {
                        line.push(now, buf[..n].to_vec());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::error!("delay forwarder stops: read failed: {e}");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(n: u8) -> Vec<u8> {
        vec![n; 3]
    }

    #[test]
    fn holds_each_packet_for_the_delay() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut line = DelayLine::new(ms(40), 10);
        assert!(line.push(start, packet(1)));
        assert!(line.push(start + ms(5), packet(2)));
        assert_eq!(line.next_due(), Some(start + ms(40)));
        assert_eq!(line.pop_due(start + ms(39)), None);
        assert_eq!(line.pop_due(start + ms(40)), Some(packet(1)));
        assert_eq!(line.pop_due(start + ms(44)), None);
        assert_eq!(line.next_due(), Some(start + ms(45)));
        assert_eq!(line.pop_due(start + ms(45)), Some(packet(2)));
        assert_eq!(line.next_due(), None);
        assert_eq!(line.pop_due(start + ms(1000)), None);
    }

    #[test]
    fn keeps_arrival_order() {
        let start = Instant::now();
        let mut line = DelayLine::new(Duration::from_millis(10), 100);
        for n in 0..50 {
            line.push(start + Duration::from_micros(u64::from(n) * 300), packet(n));
        }
        let late = start + Duration::from_secs(1);
        let out: Vec<u8> = std::iter::from_fn(|| line.pop_due(late))
            .map(|p| p[0])
            .collect();
        assert_eq!(out, (0..50).collect::<Vec<u8>>());
    }

    #[test]
    fn drops_arrivals_beyond_the_limit() {
        let now = Instant::now();
        let mut line = DelayLine::new(Duration::ZERO, 2);
        assert!(line.push(now, packet(1)));
        assert!(line.push(now, packet(2)));
        assert!(!line.push(now, packet(3)));
        assert_eq!(line.dropped(), 1);
        assert_eq!(line.pop_due(now), Some(packet(1)));
        assert!(line.push(now, packet(4)));
        assert_eq!(line.pop_due(now), Some(packet(2)));
        assert_eq!(line.pop_due(now), Some(packet(4)));
        assert_eq!(line.dropped(), 1);
    }
}
