//! `/stats` and `/metrics`: a [`Board`]'s figures as JSON and in the Prometheus text format.
//!
//! `/stats`:
//!
//! ```text
//! { "stream":    { "source", "fps" (its pace, 0 = unpaced), "uptime_s", "codec", "width",
//!                  "height", "rungs": ["640x480@80", ...] },
//!   "protocols": [ { "protocol", "addr", "viewers", "frames", "dropped" } ],   totals per fan-out
//!   "viewers":   [ { "protocol", "peer" (null on a server without a token), "fps", "frames", "dropped",
//!                    "rung" (null: off the ladder), "rungs", "rendition" } ],
//!   "encode":    { "frames", "seconds", "ms_per_frame" } }
//! ```
//!
//! `/metrics`: `framewire_frames_sent_total{protocol}`, `framewire_frames_dropped_total{protocol}`,
//! `framewire_viewers{protocol}` and `framewire_encode_seconds` (a summary: `_sum`, `_count`).
//! The text format is four metrics written by hand: a client library would bring a registry
//! and its dependencies for what a `format!` does.

use std::fmt::Write;

use framewire_core::Ladder;
use serde_json::json;

use crate::board::Board;

/// `/stats`: the board's figures as one JSON object; the viewers' addresses only for a request
/// that proved the token (`peers`): a server anyone may ask does not tell where to aim.
pub fn json(board: &Board, ladder: &Ladder, peers: bool) -> String {
    let top = ladder.placement(0).rendition.stream;
    let rungs: Vec<String> = (0..ladder.rungs())
        .map(|id| ladder.placement(id).rendition.to_string())
        .collect();
    let protocols = board.protocols();
    let totals: Vec<_> = protocols
        .iter()
        .map(|p| {
            json!({
                "protocol": p.protocol,
                "addr": p.addr.to_string(),
                "viewers": p.viewers.len(),
                "frames": p.frames,
                "dropped": p.dropped,
            })
        })
        .collect();
    let viewers: Vec<_> = protocols
        .iter()
        .flat_map(|p| {
            p.viewers.iter().map(|v| {
                json!({
                    "protocol": p.protocol,
                    "peer": peers.then(|| v.peer.to_string()),
                    "fps": (v.fps * 10.0).round() / 10.0,
                    "frames": v.frames,
                    "dropped": v.dropped,
                    "rung": v.placement.rung,
                    "rungs": v.placement.rungs,
                    "rendition": v.placement.rendition.to_string(),
                })
            })
        })
        .collect();
    let (encodes, took) = board.encodes();
    let per_frame = if encodes > 0 {
        took.as_secs_f64() * 1e3 / encodes as f64
    } else {
        0.0
    };
    json!({
        "stream": {
            "source": board.source(),
            "fps": board.fps(),
            "uptime_s": (board.uptime().as_secs_f64() * 10.0).round() / 10.0,
            "codec": top.codec.to_string(),
            "width": top.width,
            "height": top.height,
            "rungs": rungs,
        },
        "protocols": totals,
        "viewers": viewers,
        "encode": {
            "frames": encodes,
            "seconds": took.as_secs_f64(),
            "ms_per_frame": (per_frame * 1000.0).round() / 1000.0,
        },
    })
    .to_string()
}

/// `/metrics`: the board's counters in the Prometheus text format (version 0.0.4).
pub fn prometheus(board: &Board) -> String {
    let protocols = board.protocols();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (i, p) in protocols.iter().enumerate() {
            let _ = writeln!(out, "{name}{{protocol=\"{}\"}} {}", p.protocol, value(i));
        }
    };
    family(
        "framewire_frames_sent_total",
        "counter",
        "Frames written whole to viewers.",
        &|i| protocols[i].frames,
    );
    family(
        "framewire_frames_dropped_total",
        "counter",
        "Frames a viewer missed because its socket was busy with an earlier one (newest wins).",
        &|i| protocols[i].dropped,
    );
    family(
        "framewire_viewers",
        "gauge",
        "Viewers connected now.",
        &|i| protocols[i].viewers.len() as u64,
    );
    let (encodes, took) = board.encodes();
    let _ = writeln!(
        out,
        "# HELP framewire_encode_seconds Time spent encoding frames, every rendition.\n\
         # TYPE framewire_encode_seconds summary\n\
         framewire_encode_seconds_sum {}\n\
         framewire_encode_seconds_count {encodes}",
        took.as_secs_f64()
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use framewire_core::{CodecKind, PixelFormat, Rendition};

    use super::*;

    #[test]
    fn an_idle_board_reads_as_json_and_prometheus_text() {
        let board = Board::new("test pattern", 30.0);
        board.record_encode(Duration::from_millis(4));
        let rung = Rendition::new(CodecKind::Jpeg, 64, 48, PixelFormat::Rgb8, 80);
        let stats: serde_json::Value =
            serde_json::from_str(&json(&board, &Ladder::single(rung), true)).unwrap();
        assert_eq!(stats["stream"]["rungs"], json!(["64x48@80"]));
        assert_eq!(stats["stream"]["codec"], "jpeg");
        assert_eq!(stats["encode"]["frames"], 1);
        assert_eq!(stats["encode"]["ms_per_frame"], 4.0);
        assert_eq!(stats["viewers"], json!([]));
        let text = prometheus(&board);
        assert!(
            text.contains("framewire_encode_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE framewire_viewers gauge\n"), "{text}");
    }
}
