//! Fuzz target: the viewer's sans-IO stream reader, fed arbitrary bytes in arbitrary pieces,
//! through the buffered path or with frame payloads read straight into the caller's buffer.
#![no_main]

use framewire_wire::FrameReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte's low 7 bits pick the piece size, so splits are explored too; its top bit
    // whether frame payloads are taken out (`take_payload`) and their rest written straight
    // into the caller's buffer, as `Client::recv` does.
    let Some((&first, mut bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from((first & 0x7F).max(1));
    let direct = first & 0x80 != 0;
    let mut reader = FrameReader::new(1 << 16);
    let mut payload = Vec::new();
    loop {
        loop {
            match reader.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if bytes.is_empty() {
            break;
        }
        if direct && let Some((header, mut have)) = reader.take_payload(&mut payload) {
            let len = header.payload_len as usize;
            while have < len && !bytes.is_empty() {
                let n = step.min(len - have).min(bytes.len());
                payload[have..have + n].copy_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                have += n;
                reader.payload_filled(n);
            }
            continue;
        }
        let n = step.min(bytes.len());
        reader.push(&bytes[..n]);
        bytes = &bytes[n..];
    }
    let _ = reader.finish();
});
