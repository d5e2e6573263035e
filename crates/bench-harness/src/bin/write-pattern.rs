//! Writes frame 7 of the RGB8 test pattern as raw packed rows, for the OpenCV baseline:
//! `write-pattern OUT.rgb WxH`.

#![allow(clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [out, size] => size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .map(|wh| (out, wh)),
        _ => None,
    };
    let Some((out, (w, h))) = parsed else {
        eprintln!("usage: write-pattern OUT.rgb WxH");
        return ExitCode::from(2);
    };
    let frame = framewire_bench_harness::pattern_frame(w, h, 7);
    if let Err(e) = std::fs::write(out, &frame.pixels) {
        eprintln!("write-pattern: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
