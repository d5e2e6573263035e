//! Frames as a program receives them, each with what a program asks of it: the session's
//! receive path on a connector, every decoded frame handed to a callback with its
//! [`FrameInfo`] (its number, capture time, latency, codec, size and rung). A binding's viewer
//! and the hub's senders are received this way.

use std::sync::{Arc, Mutex, PoisonError};

use framewire_core::{
    CallSide, CodecKind, Connector, Flow, Frame, FrameSink, Placement, SinkError, StreamInfo,
    now_micros,
};
use framewire_session::{Outcome, ReceiveConfig, ReceiveEvent, StopSignal, calls, receive};

/// What a program learns of a frame beside its pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    /// Its number in the sender's stream, from 0; gaps are frames this side did not get.
    pub seq: u64,
    /// When the sender captured it, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// From capture to decoded here, in microseconds (the two clocks' difference on two
    /// machines).
    pub latency_us: u64,
    /// The codec it travelled in.
    pub codec: CodecKind,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// Its rung on the sender's ladder (`None`: a rendition asked for, off the ladder).
    pub rung: Option<u8>,
}

/// Receives from `connector` until `signal` stops it (or `config` ends it), handing each
/// decoded frame and its info to `on_frame`, which may take the frame's pixels (the decoder
/// then fills a new buffer) and may say stop; `on_event` hears the rest
/// (connected, lost, switched). The session's outcome says why it ended.
pub fn watch(
    connector: &dyn Connector,
    signal: &StopSignal,
    config: &ReceiveConfig<'_>,
    on_frame: &mut (dyn FnMut(&mut Frame, &FrameInfo) -> Flow + Send),
    on_event: &mut dyn FnMut(&ReceiveEvent<'_>),
) -> Outcome {
    handing(on_frame, on_event, |sink, events| {
        let decoder = |s: &StreamInfo| framewire_codec::decoder(s);
        receive(connector, &decoder, sink, signal, config, events)
    })
}

/// [`watch`] of the peer's stream in a call on `side` (its reports going out on the side's
/// sending half); with `wait`, a listener takes one call after another until `signal` stops
/// it.
pub fn watch_calls(
    side: &dyn CallSide,
    wait: bool,
    signal: &StopSignal,
    config: &ReceiveConfig<'_>,
    on_frame: &mut (dyn FnMut(&mut Frame, &FrameInfo) -> Flow + Send),
    on_event: &mut dyn FnMut(&ReceiveEvent<'_>),
) -> Outcome {
    handing(on_frame, on_event, |sink, events| {
        let decoder = |s: &StreamInfo| framewire_codec::decoder(s);
        let mut next = || {};
        let wait = wait.then_some(&mut next as &mut dyn FnMut());
        calls(side, &decoder, sink, signal, config, wait, events)
    })
}

/// Runs `receiving` with a sink that hands each frame to `on_frame` with its info, the
/// placement it needs taken from the events on their way to `on_event`.
fn handing(
    on_frame: &mut (dyn FnMut(&mut Frame, &FrameInfo) -> Flow + Send),
    on_event: &mut dyn FnMut(&ReceiveEvent<'_>),
    receiving: impl FnOnce(&mut dyn FrameSink, &mut dyn FnMut(ReceiveEvent<'_>)) -> Outcome,
) -> Outcome {
    let placement: Arc<Mutex<Option<Placement>>> = Arc::default();
    let mut sink = Handing {
        placement: Arc::clone(&placement),
        on_frame,
    };
    receiving(&mut sink, &mut |event| {
        match &event {
            ReceiveEvent::Connected { placement: p, .. } | ReceiveEvent::Switched(p) => {
                *placement.lock().unwrap_or_else(PoisonError::into_inner) = Some(*p);
            }
            _ => {}
        }
        on_event(&event);
    })
}

/// The sink that hands each frame on with its info.
struct Handing<'a> {
    placement: Arc<Mutex<Option<Placement>>>,
    on_frame: &'a mut (dyn FnMut(&mut Frame, &FrameInfo) -> Flow + Send),
}

impl FrameSink for Handing<'_> {
    fn show(&mut self, frame: &Frame) -> Result<Flow, SinkError> {
        // The receive path calls `show_mut`; a caller with a shared frame hands on a copy.
        self.show_mut(&mut frame.clone())
    }

    fn show_mut(&mut self, frame: &mut Frame) -> Result<Flow, SinkError> {
        let placement = *self
            .placement
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let info = FrameInfo {
            seq: frame.seq,
            capture_us: frame.capture_us,
            latency_us: now_micros().saturating_sub(frame.capture_us),
            codec: placement.map_or(CodecKind::Raw, |p| p.rendition.stream.codec),
            width: frame.width,
            height: frame.height,
            rung: placement.and_then(|p| p.rung),
        };
        Ok((self.on_frame)(frame, &info))
    }
}
