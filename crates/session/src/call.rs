//! A two-way call's receiving side, for any [`CallSide`]: the peer's stream through
//! [`receive`], each side telling the other once every [`REPORT_EVERY`] how it shows the
//! stream it gets (the report goes out on the side's sending half), and, for a listener that
//! waits, one call after another until this side hangs up.

use std::time::Duration;

use framewire_core::{CallSide, FrameSink};

use crate::receive::{MakeDecoder, Outcome, ReceiveConfig, ReceiveEvent, StopSignal, receive};

/// How often a side tells the other how it shows its stream.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Receives calls on `side` into `sink`: one, or with `wait` one after another until `signal`
/// stops it (`wait` is told each time a call ended and the next is awaited). Every event goes
/// to `on_event`. Returns the last call's outcome.
pub fn calls(
    side: &dyn CallSide,
    make_decoder: &MakeDecoder,
    sink: &mut dyn FrameSink,
    signal: &StopSignal,
    config: &ReceiveConfig<'_>,
    mut wait: Option<&mut dyn FnMut()>,
    on_event: &mut dyn FnMut(ReceiveEvent<'_>),
) -> Outcome {
    let sending = side.sending();
    loop {
        let mut hung_up = false;
        let outcome = receive(
            side,
            make_decoder,
            sink,
            signal,
            config,
            &mut |mut event| {
                match &mut event {
                    ReceiveEvent::Ended { .. } => hung_up = true,
                    ReceiveEvent::Frame(stats) => {
                        if let Some(report) = stats.peer_report(REPORT_EVERY) {
                            sending.report(report);
                        }
                    }
                    _ => {}
                }
                on_event(event);
            },
        );
        match &mut wait {
            Some(next_call) if hung_up && !signal.is_stopped() => next_call(),
            _ => return outcome,
        }
    }
}
