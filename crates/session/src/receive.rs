//! The receive path: a [`Connector`]'s subscription → decode → [`Stats`] → a [`FrameSink`],
//! reconnecting with backoff when the connection is lost and the transport says a retry may
//! help (not after a goodbye, nor after bytes that break the protocol: a bad sender is not
//! retried).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use framewire_core::{
    Closer, CodecError, Connector, Decoded, Flow, Frame, FrameDecoder, FrameSink, Packet,
    PeerReport, Placement, Received, SinkError, StreamInfo, Subscription, TransportError,
    now_micros,
};

use crate::Stats;

/// Reads the frame number a frame's pixels carry (the test pattern's), for checking.
pub type ReadNumber = dyn Fn(&Frame) -> Option<u64> + Send + Sync;

/// Builds a decoder for a stream.
pub type MakeDecoder = dyn Fn(&StreamInfo) -> Box<dyn FrameDecoder> + Send + Sync;

/// What the receive path is asked to do.
#[derive(Default)]
pub struct ReceiveConfig<'a> {
    /// Stop after this many frames (counted across reconnects).
    pub frames: Option<u64>,
    /// Stop when the connection is lost instead of reconnecting.
    pub no_reconnect: bool,
    /// Check every frame's pixels against its number (the low 32 bits of `seq`).
    pub verify: Option<&'a ReadNumber>,
    /// Measure only after this long from the first connection (the stream settling on a
    /// rung); `frames` counts from then on too.
    pub warmup: Option<Duration>,
}

/// Shared between the receive loop and whatever may stop it (Ctrl-C, Enter, a closed window):
/// setting it also closes the current connection, which wakes a blocked receive.
#[derive(Default)]
pub struct StopSignal {
    stop: AtomicBool,
    closer: Mutex<Option<Closer>>,
}

impl StopSignal {
    /// Stops the receive loop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(close) = &*self.closer.lock().unwrap_or_else(PoisonError::into_inner) {
            close();
        }
    }

    /// Whether [`StopSignal::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn watch(&self, sub: &dyn Subscription) {
        *self.closer.lock().unwrap_or_else(PoisonError::into_inner) = Some(sub.closer());
        if self.is_stopped() {
            self.stop();
        }
    }
}

/// Something the caller may want to tell the user.
#[derive(Debug)]
pub enum ReceiveEvent<'a> {
    /// Connected (`again`: after a lost connection) to a sender of this stream.
    Connected {
        /// Who sends.
        peer: String,
        /// The stream.
        stream: StreamInfo,
        /// Its rendition, and its rung on the sender's ladder.
        placement: Placement,
        /// The sender's frame rate (0 = unpaced).
        fps: f64,
        /// Whether this is a reconnection.
        again: bool,
    },
    /// The sender moved this viewer to another rendition (by what its link carries).
    Switched(Placement),
    /// A frame was shown; the stats so far (for a live line).
    Frame(&'a mut Stats),
    /// The connection was lost; reconnecting.
    Lost(&'a TransportError),
    /// A reconnection attempt failed differently from the one before.
    StillReconnecting(&'a TransportError),
    /// Reconnected after this many attempts.
    Reconnected {
        /// Attempts made.
        attempts: u64,
        /// Time since the connection was lost.
        after: Duration,
    },
    /// The sender says how it shows the stream this side sends it (a two-way call).
    PeerReport(PeerReport),
    /// The sender ended the stream on purpose.
    Ended {
        /// Who sent.
        peer: String,
    },
}

/// Why a receive session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The connection failed in a way a retry would not fix (or retrying was off).
    #[error(transparent)]
    Transport(TransportError),
    /// A packet did not decode; `at` names the sender, the frame and where.
    #[error("{at}")]
    Decode {
        /// `server 127.0.0.1:9999: frame 12 at byte 4567`.
        at: String,
        /// The decoder's error.
        #[source]
        source: CodecError,
    },
    /// The sender ended the stream with an error (e.g. it is full).
    #[error("{peer} ended the stream: {reason}")]
    Refused {
        /// Who sent.
        peer: String,
        /// The sender's reason.
        reason: String,
    },
    /// The sink failed.
    #[error("showing a frame")]
    Sink(#[source] SinkError),
}

/// What a receive session ended with.
pub struct Outcome {
    /// What was measured.
    pub stats: Stats,
    /// The last stream's description, when a connection was made.
    pub stream: Option<StreamInfo>,
    /// Ok when it ended as asked (frames reached, stopped, the sender said goodbye).
    pub result: Result<(), ReceiveError>,
}

/// Connects, then receives, decodes and measures frames, handing each to `sink`, until
/// `config.frames` is reached, the sender ends the stream, the sink says stop, or `signal` is
/// set. Reconnects with backoff when the connection is lost, unless `config.no_reconnect`.
pub fn receive(
    connector: &dyn Connector,
    make_decoder: &MakeDecoder,
    sink: &mut dyn FrameSink,
    signal: &StopSignal,
    config: &ReceiveConfig<'_>,
    on_event: &mut dyn FnMut(ReceiveEvent<'_>),
) -> Outcome {
    let mut stats = Stats::new(config.verify.is_some());
    let mut sub = match connector.connect() {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                stats,
                stream: None,
                result: Err(ReceiveError::Transport(e)),
            };
        }
    };
    signal.watch(&*sub);
    connected(&*sub, false, on_event);
    stats.placed(sub.placement().rendition, false);
    let mut stream = sub.stream();
    let mut decoder = make_decoder(&stream);
    let mut frame = Frame::empty(stream.format);
    let mut packet = Packet::default();
    let mut warmup = config.warmup.map(|w| Instant::now() + w);

    let result = loop {
        if warmup.is_some_and(|end| Instant::now() >= end) {
            warmup = None;
            stats.forget_so_far();
        }
        if config.frames.is_some_and(|n| stats.frames() >= n) || signal.is_stopped() {
            break Ok(());
        }
        let err = match sub.recv(&mut packet) {
            Ok(Received::Packet { bytes }) => {
                let decoding = (&mut decoder, &mut frame);
                let shown = show(
                    decoding,
                    &mut packet,
                    bytes,
                    &*sub,
                    &mut stats,
                    sink,
                    config.verify,
                );
                match shown {
                    Ok(Flow::Continue) => {
                        on_event(ReceiveEvent::Frame(&mut stats));
                        continue;
                    }
                    Ok(Flow::Stop) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            Ok(Received::Switched(placement)) => {
                if placement.rendition.stream != stream {
                    stream = placement.rendition.stream;
                    decoder = make_decoder(&stream);
                }
                stats.placed(placement.rendition, true);
                on_event(ReceiveEvent::Switched(placement));
                continue;
            }
            Ok(Received::Report(report)) => {
                on_event(ReceiveEvent::PeerReport(report));
                continue;
            }
            Ok(Received::End { reason: None }) => {
                on_event(ReceiveEvent::Ended { peer: sub.peer() });
                break Ok(());
            }
            Ok(Received::End {
                reason: Some(reason),
            }) => {
                break Err(ReceiveError::Refused {
                    peer: sub.peer(),
                    reason,
                });
            }
            Err(_) if signal.is_stopped() => break Ok(()),
            Err(e) => e,
        };
        if config.no_reconnect || !err.retry {
            break Err(ReceiveError::Transport(err));
        }
        on_event(ReceiveEvent::Lost(&err));
        let Some(new) = reconnect(connector, signal, on_event) else {
            break Ok(());
        };
        sub = new;
        signal.watch(&*sub);
        stats.reconnected();
        connected(&*sub, true, on_event);
        stats.placed(sub.placement().rendition, false);
        if sub.stream() != stream {
            stream = sub.stream();
            decoder = make_decoder(&stream);
        }
    };
    Outcome {
        stats,
        stream: Some(stream),
        result,
    }
}

/// Decodes `packet`, records it and shows it. A decoder that has no picture yet shows nothing.
fn show(
    decoding: (&mut Box<dyn FrameDecoder>, &mut Frame),
    packet: &mut Packet,
    bytes: u64,
    sub: &dyn Subscription,
    stats: &mut Stats,
    sink: &mut dyn FrameSink,
    verify: Option<&ReadNumber>,
) -> Result<Flow, ReceiveError> {
    let (decoder, frame) = decoding;
    match decoder.decode_vec(&mut packet.payload, frame) {
        Ok(Decoded::Picture) => {}
        Ok(Decoded::NotYet) => return Ok(Flow::Continue),
        Err(source) => {
            let at = format!("{}: frame {} at {}", sub.peer(), packet.seq, sub.position());
            return Err(ReceiveError::Decode { at, source });
        }
    }
    frame.seq = packet.seq;
    frame.capture_us = packet.capture_us;
    stats.record(packet.seq, packet.capture_us, bytes, now_micros());
    if packet.keyframe {
        stats.keyframe();
    }
    if let Some(read) = verify
        && read(frame) != Some(packet.seq & 0xFFFF_FFFF)
    {
        stats.pattern_error();
    }
    sink.show_mut(frame).map_err(ReceiveError::Sink)
}

fn connected(sub: &dyn Subscription, again: bool, on_event: &mut dyn FnMut(ReceiveEvent<'_>)) {
    on_event(ReceiveEvent::Connected {
        peer: sub.peer(),
        stream: sub.stream(),
        placement: sub.placement(),
        fps: sub.fps(),
        again,
    });
}

/// Tries to connect again, waiting 0.1 s, 0.2 s, 0.4 s ... up to 2 s between attempts, until it
/// succeeds or `signal` is set.
fn reconnect(
    connector: &dyn Connector,
    signal: &StopSignal,
    on_event: &mut dyn FnMut(ReceiveEvent<'_>),
) -> Option<Box<dyn Subscription>> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut last_error = String::new();
    for attempt in 1u64.. {
        let wake = Instant::now() + delay;
        while Instant::now() < wake {
            if signal.is_stopped() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20).min(wake - Instant::now()));
        }
        match connector.connect() {
            Ok(sub) => {
                on_event(ReceiveEvent::Reconnected {
                    attempts: attempt,
                    after: started.elapsed(),
                });
                return Some(sub);
            }
            Err(e) => {
                let msg = crate::chain(&e);
                if msg != last_error {
                    on_event(ReceiveEvent::StillReconnecting(&e));
                    last_error = msg;
                }
            }
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    None
}
