//! The one-line words for what happens, as the binary prints them and a binding logs them: a
//! server's viewers coming, moving and going; the send path's live figures and its source; a
//! viewer's and a call's receiving side.

use std::net::SocketAddr;

use framewire_capture::CameraMode;
use framewire_core::{PeerReport, SourceEvent};
use framewire_net::ServerEvent;
use framewire_net::hub::PushEvent as HubEvent;
use framewire_net::publish::PushEvent;
use framewire_session::{ReceiveEvent, SendEvent, chain};

/// A server's event about one of its viewers, `who` naming them (`viewer`, `http viewer`):
/// `viewer 127.0.0.1:5000 connected (1 viewer) on rung 0 of 3: 640x480@80, following its link`.
pub fn server_event(who: &str, event: &ServerEvent) -> String {
    let plural = |n: usize| if n == 1 { "viewer" } else { "viewers" };
    match event {
        ServerEvent::Joined {
            peer,
            viewers,
            placement,
            adapts,
        } => {
            let how = if *adapts {
                ", following its link"
            } else if placement.rung.is_some() && placement.rungs > 1 {
                ", staying there"
            } else {
                ""
            };
            let n = plural(*viewers);
            format!("{who} {peer} connected ({viewers} {n}) on {placement}{how}")
        }
        ServerEvent::Moved {
            peer,
            from,
            to,
            link,
        } => {
            let way = if to.id > from.id { "down" } else { "up" };
            format!(
                "{who} {peer} moved {way} to {to} from {}: its link carries about {:.2} Mbit/s",
                from.rendition,
                link * 8.0 / 1e6
            )
        }
        ServerEvent::Left {
            peer,
            viewers,
            frames,
            dropped,
            placement,
            error,
            ..
        } => {
            let why = error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
            format!(
                "{who} {peer} left after {frames} frames, {dropped} dropped, on {} ({viewers} {}){why}",
                placement.rendition,
                plural(*viewers)
            )
        }
        ServerEvent::Rejected { peer, error } => {
            format!("framewire: connection from {peer} rejected: {error}")
        }
    }
}

/// A push's event: `publishing to rtmp://HOST:1935/live/**** (127.0.0.1:1935) on
/// 640x480@2304k`, a lost connection with the wait before the next dial, the stop.
pub fn push_event(event: &PushEvent) -> String {
    match event {
        PushEvent::Publishing {
            to,
            server,
            placement,
        } => format!("publishing to {to} ({server}) on {}", placement.rendition),
        PushEvent::Lost {
            to,
            frames,
            error,
            retry_in,
        } => {
            let after = if *frames > 0 {
                format!(" after {frames} frames")
            } else {
                String::new()
            };
            format!(
                "framewire: --publish {to}{after}: {error}; dialing again in {}s",
                retry_in.as_secs()
            )
        }
        PushEvent::Stopped { to, frames } => {
            format!("stopped publishing to {to} after {frames} frames")
        }
    }
}

/// A push to a hub's event: `pushing to the hub 127.0.0.1:9990 as cam-1`, a lost connection
/// with the wait before the next dial, a refusal.
pub fn hub_push_event(name: &str, event: &HubEvent) -> String {
    match event {
        HubEvent::Connected { hub, again: false } => format!("pushing to the hub {hub} as {name}"),
        HubEvent::Connected { hub, again: true } => {
            format!("pushing to the hub {hub} as {name} again")
        }
        HubEvent::Lost { reason, retry_in } => format!(
            "framewire: --push as {name}: {reason}; dialing again in {:.1}s",
            retry_in.as_secs_f64()
        ),
        HubEvent::Refused(reason) => {
            format!("framewire: error: --push as {name}: {reason}; no longer pushing")
        }
    }
}

/// The send path's event from `source`: the live figures (`  29.9 fps   12.34 Mbit/s  viewers
/// 3 (640x480@80: 2, 320x240@50: 1) ...`), a camera lost and back, the end.
pub fn send_event(event: &SendEvent, source: &str) -> Option<String> {
    Some(match event {
        SendEvent::Live {
            fps,
            mbit_per_s,
            subscribers,
            renditions,
            frames,
            dropped_for_slow,
            dropped_at_capture,
        } => {
            // Each viewer's rung.
            let on: Vec<String> = renditions
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            let on = if on.is_empty() {
                String::new()
            } else {
                format!(" ({})", on.join(", "))
            };
            format!(
                "{fps:6.1} fps {mbit_per_s:8.2} Mbit/s  viewers {subscribers}{on}  frames {frames}  \
                 dropped for slow viewers {dropped_for_slow}  at capture {dropped_at_capture}"
            )
        }
        SendEvent::Source(SourceEvent::Lost(why)) => {
            format!("camera lost: {why}; viewers stay connected, opening it again")
        }
        SendEvent::Source(SourceEvent::Back) => format!("camera back: {source}"),
        SendEvent::Source(_) => return None,
        SendEvent::Ended { frames } => format!("source ended after {frames} frames"),
    })
}

/// A viewer's receiving side, connected to `addr`: connected, moved, lost, back, ended. `None`
/// for a frame and a peer's report.
pub fn view_event(event: &ReceiveEvent<'_>, addr: SocketAddr) -> Option<String> {
    Some(match event {
        ReceiveEvent::Connected {
            stream,
            placement,
            fps,
            again,
            ..
        } => {
            let what = if *again {
                "reconnected to"
            } else {
                "connected to"
            };
            let fps = if *fps > 0.0 {
                format!(" at {fps} fps")
            } else {
                String::new()
            };
            let (c, w, h, f) = (stream.codec, stream.width, stream.height, stream.format);
            format!("{what} {addr}: {c} {w}x{h} {f}{fps}, {placement}")
        }
        ReceiveEvent::Switched(placement) => format!("moved to {placement}"),
        ReceiveEvent::Lost(e) => format!("{e}; reconnecting"),
        ReceiveEvent::StillReconnecting(e) => format!("still reconnecting: {}", chain(*e)),
        ReceiveEvent::Reconnected { attempts, after } => format!(
            "reconnected after {attempts} attempts in {:.1}s",
            after.as_secs_f64()
        ),
        ReceiveEvent::Ended { peer } => format!("{peer} ended the stream"),
        ReceiveEvent::Frame(_) | ReceiveEvent::PeerReport(_) => return None,
    })
}

/// A call's receiving side, the listening side's (`listening`) or the caller's: in a call,
/// moved, lost, back, hung up. `None` for a frame and a peer's report.
pub fn call_event(event: &ReceiveEvent<'_>, listening: bool) -> Option<String> {
    Some(match event {
        ReceiveEvent::Connected {
            peer,
            stream,
            placement,
            again,
            ..
        } => {
            let what = if *again {
                "back in the call"
            } else {
                "in a call"
            };
            let (c, w, h) = (stream.codec, stream.width, stream.height);
            format!("{what} with {peer}: receiving {c} {w}x{h}, {placement}")
        }
        ReceiveEvent::Switched(placement) => format!("receiving: moved to {placement}"),
        ReceiveEvent::Lost(e) if listening => {
            format!("{}; waiting for the caller to call back", chain(*e))
        }
        ReceiveEvent::Lost(e) => format!("{}; calling again", chain(*e)),
        ReceiveEvent::StillReconnecting(e) if listening => format!("still waiting: {}", chain(*e)),
        ReceiveEvent::StillReconnecting(e) => format!("still calling: {}", chain(*e)),
        ReceiveEvent::Reconnected { attempts, after } => format!(
            "call back on after {attempts} attempts in {:.1}s",
            after.as_secs_f64()
        ),
        ReceiveEvent::Ended { peer } => format!("{peer} hung up"),
        ReceiveEvent::Frame(_) | ReceiveEvent::PeerReport(_) => return None,
    })
}

/// A call's sending half: the peer's link moved it along the ladder, or a caller was refused.
/// `None` for a call on and a call over (the receiving half says those).
pub fn call_sending_event(event: &ServerEvent) -> Option<String> {
    match event {
        ServerEvent::Moved { to, from, link, .. } => {
            let way = if to.id > from.id { "down" } else { "up" };
            Some(format!(
                "sending: moved {way} to {to} from {}: the link to the peer carries about {:.2} Mbit/s",
                from.rendition,
                link * 8.0 / 1e6
            ))
        }
        ServerEvent::Rejected { peer, error } => {
            Some(format!("framewire: call from {peer} refused: {error}"))
        }
        ServerEvent::Joined { .. } | ServerEvent::Left { .. } => None,
    }
}

/// How the peer of a call shows this side's stream: `sending 29.9 fps, latency 12.0 ms at the
/// peer`.
pub fn peer_status(report: &PeerReport) -> String {
    match report.latency {
        Some(latency) => format!(
            "sending {:.1} fps, latency {:.1} ms at the peer",
            report.fps,
            latency.as_secs_f64() * 1000.0
        ),
        None => format!("sending {:.1} fps at the peer", report.fps),
    }
}

/// A camera's modes, one line per layout and size: `MJPG 1280x720: 30, 15 fps` (the modes as
/// the camera lists them, each layout and size together).
pub fn camera_modes(modes: &[CameraMode]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < modes.len() {
        let m = modes[i];
        let rates: Vec<String> = modes[i..]
            .iter()
            .take_while(|o| (o.fourcc, o.width, o.height) == (m.fourcc, m.width, m.height))
            .map(|o| o.fps.to_string())
            .collect();
        i += rates.len();
        let (f, w, h) = (m.fourcc, m.width, m.height);
        lines.push(format!("{f} {w}x{h}: {} fps", rates.join(", ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_capture::FourCc;

    #[test]
    fn a_cameras_modes_are_one_line_per_layout_and_size() {
        let modes = [
            CameraMode::new(FourCc::Mjpeg, 1280, 720, 30),
            CameraMode::new(FourCc::Mjpeg, 1280, 720, 15),
            CameraMode::new(FourCc::Yuyv, 640, 480, 30),
        ];
        assert_eq!(
            camera_modes(&modes),
            ["MJPG 1280x720: 30, 15 fps", "YUYV 640x480: 30 fps"]
        );
        assert!(camera_modes(&[]).is_empty());
    }
}
