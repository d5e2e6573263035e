//! A hub's receiving side: every sender that pushes to it gets a thread of its own, which
//! decodes its stream ([`crate::watch`]) and hands each frame, named, to the program's
//! [`Senders`]. A slow program never slows a sender beyond its own stream: each sender's
//! frames are read and decoded on its own thread, and a sender's newest frame replaces the
//! one before wherever the program keeps them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use framewire_core::{Connector, Flow, Frame, Subscription, TransportError};
use framewire_session::{Outcome, ReceiveConfig, ReceiveEvent, StopSignal};

use crate::transport::HubListening;
use crate::watch::{FrameInfo, watch};

/// What a program does with the senders' streams; called from each sender's thread.
pub trait Senders: Send + Sync {
    /// A sender's stream started: its name, and who it is (`sender NAME at ADDR`).
    fn joined(&self, name: &str, peer: &str);
    /// A frame of sender `name`, whose pixels the program may take (`std::mem::take`);
    /// [`Flow::Stop`] ends that sender's stream.
    fn frame(&self, name: &str, frame: &mut Frame, info: &FrameInfo) -> Flow;
    /// Sender `name`'s stream ended: what was received, and why.
    fn left(&self, name: &str, outcome: &Outcome);
}

/// A running hub: its listener and each sender's thread, until [`stop`](Self::stop).
pub struct Hub {
    listening: Arc<HubListening>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Each sender's stop signal and thread.
    running: Mutex<Vec<(Arc<StopSignal>, JoinHandle<()>)>>,
}

/// How long the accepting thread waits for a sender before it looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);

impl Hub {
    /// Takes the senders that push to `listening`, each on its own thread, handing their
    /// frames to `senders`.
    pub fn start(listening: HubListening, senders: Arc<dyn Senders>) -> std::io::Result<Hub> {
        let listening = Arc::new(listening);
        let shared = Arc::new(Shared::default());
        let (taking, running) = (Arc::clone(&listening), Arc::clone(&shared));
        let accept = std::thread::Builder::new()
            .name("hub-accept".into())
            .spawn(move || {
                while !running.stop.load(Ordering::SeqCst) {
                    let Some((name, stream)) = taking.next(TICK) else {
                        continue;
                    };
                    let signal = Arc::new(StopSignal::default());
                    let thread = receive_sender(name, stream, &signal, Arc::clone(&senders));
                    let mut all = running
                        .running
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    all.retain(|(_, t)| !t.is_finished());
                    match thread {
                        Ok(thread) => all.push((signal, thread)),
                        Err(e) => tracing::warn!("cannot start a sender's thread: {e}"),
                    }
                }
            })?;
        Ok(Hub {
            listening,
            shared,
            accept: Some(accept),
        })
    }

    /// Where it listens.
    pub fn at(&self) -> &str {
        &self.listening.at
    }

    /// `sha256:HEX` of its TLS certificate, with TLS.
    pub fn fingerprint(&self) -> Option<&str> {
        self.listening.fingerprint.as_deref()
    }

    /// Senders pushing now.
    pub fn senders(&self) -> usize {
        self.listening.senders()
    }

    /// Stops taking senders, ends every sender's stream and waits for their threads (each
    /// says it left). Idempotent.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let running = std::mem::take(
            &mut *self
                .shared
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Each stream stopped before its connection is cut, so that it ends as asked.
        for (signal, _) in &running {
            signal.stop();
        }
        self.listening.shutdown();
        for (_, thread) in running {
            let _ = thread.join();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Receives sender `name`'s `stream` on a thread of its own until it ends or `signal` stops it.
fn receive_sender(
    name: String,
    stream: Box<dyn Subscription>,
    signal: &Arc<StopSignal>,
    senders: Arc<dyn Senders>,
) -> std::io::Result<JoinHandle<()>> {
    let signal = Arc::clone(signal);
    std::thread::Builder::new()
        .name(format!("hub-{name}"))
        .spawn(move || {
            let once = Once(Mutex::new(Some(stream)));
            // A sender that dials again comes as a new stream: this one is not reconnected.
            let config = ReceiveConfig {
                no_reconnect: true,
                ..ReceiveConfig::default()
            };
            let outcome = watch(
                &once,
                &signal,
                &config,
                &mut |frame, info| senders.frame(&name, frame, info),
                &mut |event| {
                    if let ReceiveEvent::Connected { peer, .. } = event {
                        senders.joined(&name, peer);
                    }
                },
            );
            senders.left(&name, &outcome);
        })
}

/// A connector that hands over one stream it already has.
struct Once(Mutex<Option<Box<dyn Subscription>>>);

impl Connector for Once {
    fn describe(&self) -> String {
        "a sender that pushed".into()
    }

    fn connect(&self) -> Result<Box<dyn Subscription>, TransportError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| TransportError {
                retry: false,
                source: "the sender's stream was taken already".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use framewire_core::{CodecKind, Ladder, Packet, PixelFormat, Publisher, Rendition};
    use framewire_net::{CallConfig, ServerConfig};

    use super::*;

    /// Takes each frame's pixels, as the Python hub does, and sends them on with the number.
    struct Taking(Mutex<mpsc::Sender<(u64, Vec<u8>)>>);

    impl Senders for Taking {
        fn joined(&self, _name: &str, _peer: &str) {}

        fn frame(&self, _name: &str, frame: &mut Frame, _info: &FrameInfo) -> Flow {
            let pixels = std::mem::take(&mut frame.pixels);
            let _ = self.0.lock().unwrap().send((frame.seq, pixels));
            Flow::Continue
        }

        fn left(&self, _name: &str, _outcome: &Outcome) {}
    }

    #[test]
    fn a_program_that_takes_each_frames_pixels_gets_every_frame_whole() {
        let listening = crate::transport::hub(
            "127.0.0.1:0".parse().unwrap(),
            4,
            (Duration::from_secs(10), 1 << 20),
            ServerConfig::default(),
            |_| {},
        )
        .unwrap();
        let at = listening.at.parse().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut hub = Hub::start(listening, Arc::new(Taking(Mutex::new(tx)))).unwrap();
        let rendition = Rendition::new(CodecKind::Raw, 4, 2, PixelFormat::Bgr8, 0);
        let ladder = Arc::new(Ladder::single(rendition));
        let pusher =
            crate::transport::push(at, "cam", (ladder, 30.0), CallConfig::default(), |_| {})
                .unwrap();
        let packet = |seq: u64| {
            Arc::new(Packet {
                keyframe: true,
                seq,
                capture_us: 1_000_000 + seq,
                rendition: 0,
                payload: vec![seq as u8 + 1; 24],
            })
        };
        // Each frame is published once it is taken: the pixels of every one arrive whole,
        // though the frame before had its buffer taken away.
        let mut seq = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while seq < 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "frame {seq} never came"
            );
            pusher.publish(&[packet(seq)]);
            if let Ok((got, pixels)) = rx.recv_timeout(Duration::from_millis(50)) {
                assert_eq!(pixels, vec![got as u8 + 1; 24], "frame {got}");
                if got == seq {
                    seq += 1;
                }
            }
        }
        hub.stop();
    }
}
