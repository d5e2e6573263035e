//! Fuzz target: the viewer's sans-IO stream reader, fed arbitrary bytes in arbitrary pieces.
#![no_main]

use framewire_net::FrameReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, so splits are explored too.
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(step.max(1));
    let mut reader = FrameReader::new(1 << 16);
    for chunk in bytes.chunks(step) {
        reader.push(chunk);
        while let Ok(Some(_)) = reader.next_event() {}
    }
    let _ = reader.finish();
});
