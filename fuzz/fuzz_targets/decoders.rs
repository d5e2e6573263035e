//! Fuzz target: every codec's decoder (H.264 included) on arbitrary payloads for a small stream.
#![no_main]

use framewire_core::{CodecKind, Frame, PixelFormat, StreamInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for codec in CodecKind::ALL {
        let info = StreamInfo {
            codec,
            width: 16,
            height: 8,
            format: if codec == CodecKind::Jpeg {
                PixelFormat::Rgb8
            } else {
                PixelFormat::Rgba8
            },
        };
        let mut decoder = framewire_codec::decoder(&info);
        let mut frame = Frame::empty(info.format);
        let _ = decoder.decode(data, &mut frame);
    }
});
