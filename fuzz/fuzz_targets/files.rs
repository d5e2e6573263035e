//! Fuzz target: the file readers, on arbitrary bytes: the recording reader and the Y4M parser
//! (header and frames). Neither may panic, and neither may allocate more than the bytes hold.
#![no_main]

use framewire_file::{recording, y4m};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the reader, so one corpus grows both.
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let mut buf = Vec::new();
    if first & 1 == 0 {
        let Ok(mut reader) = recording::Reader::new(bytes) else {
            return;
        };
        while let Ok(Some(_)) = reader.next_record(&mut buf) {
            assert!(buf.len() <= bytes.len());
        }
    } else {
        let Ok(mut reader) = y4m::Reader::new(bytes) else {
            return;
        };
        while let Ok(true) = reader.next_frame(&mut buf) {
            assert!(buf.len() <= bytes.len());
        }
    }
});
