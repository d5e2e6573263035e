//! No allocation per frame in steady state: a counting global allocator watches the send path
//! (test pattern → resize → encode into a pooled buffer → `Server::publish` → the viewer's
//! sender thread) and the receive path (`Client::recv` → `decode_vec`, what `view` runs) for
//! every codec.
//!
//! Every stage allocates nothing per frame, for every codec: the 640x480 → 320x240 resize (the
//! resizer's own 2x2 means), framewire's JPEG encoder and decoder (both keep their rows and
//! tables between frames), the pooled payload buffers, the reader's buffer. With the feature
//! `turbojpeg` the JPEG row is measured for both encoders; libjpeg-turbo's encoder makes no Rust
//! allocation per frame (its own per-image state is `malloc`ed in C, which this allocator does
//! not see). Progressive and other non-baseline JPEGs, which only a camera could send, go to
//! zune-jpeg, which allocates its state per image; no stage here sends one.
//!
//! Resizes at the factors the 2x2 means do not cover go through fast_image_resize 6.1, which
//! rebuilds its coefficient tables on every call: one small `Vec` per output row and column
//! ([`resize_bound`]).
//!
//! The counter is global, so the tests take [`SERIAL`] to run one at a time.

// A global allocator is an `unsafe impl`; it only counts and forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use framewire_capture::{ResizeFilter, Resizer};
use framewire_codec::{EncodeOptions, JpegBackend, decoder, encoder};
use framewire_core::{
    CodecKind, Frame, FrameSource, Ladder, PixelFormat, Rendition, Request, StreamInfo,
};
use framewire_core::{Packet, Received};
use framewire_net::{Client, ClientConfig, Server, ServerConfig};
use framewire_pattern::TestPattern;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: pointer and layout come from this allocator, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: pointer and layout come from this allocator, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by each test while it counts.
static SERIAL: Mutex<()> = Mutex::new(());

const WARM: u64 = 20;
const MEASURED: u64 = 100;

/// Stages of one frame, in order.
const STAGES: [&str; 5] = [
    "capture",
    "resize",
    "encode",
    "publish, send, recv",
    "decode",
];

/// Allocations per stage during `MEASURED` frames after `WARM`, sending and receiving one frame
/// at a time, for `kind` (with `jpeg` as the JPEG encoder) at `w` x `h` resized to half that.
fn allocations_per_stage(kind: CodecKind, jpeg: JpegBackend, (w, h): (u32, u32)) -> [u64; 5] {
    let (ow, oh) = (w / 2, h / 2);
    let mut source = TestPattern::new(w, h, 0.0).unwrap();
    let mut resizer = Resizer::new(ResizeFilter::Area);
    let options = EncodeOptions {
        jpeg_backend: jpeg,
        ..EncodeOptions::default()
    };
    let mut enc = encoder(kind, &options).unwrap();
    let info = StreamInfo {
        codec: kind,
        width: ow,
        height: oh,
        format: enc.output_format(PixelFormat::Rgb8),
    };
    let ladder = Arc::new(Ladder::single(Rendition {
        stream: info,
        quality: 0,
        bitrate_kbit: 0,
    }));
    let server = Server::bind("127.0.0.1:0", ladder, 0.0, ServerConfig::default(), |_| {}).unwrap();
    let mut client = Client::connect(
        server.local_addr(),
        Request::default(),
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(
        server.wait_for_viewer(Duration::from_secs(5)),
        1,
        "waited 5 s for the viewer to join"
    );
    let mut dec = decoder(&info);
    let (mut captured, mut resized) = (
        Frame::empty(PixelFormat::Rgb8),
        Frame::empty(PixelFormat::Rgb8),
    );
    let mut decoded = Frame::empty(info.format);
    let mut received = Packet::default();
    // Two encoded buffers used in turn: frame i - 1 arrived whole, so the sender thread had
    // taken it from the slot and let go of frame i - 2's buffer: buffer i % 2 is free again.
    let mut pool: [Arc<Packet>; 2] = Default::default();

    let mut counts = [0u64; 5];
    for i in 0..WARM + MEASURED {
        let mut marks = [0u64; 6];
        let mut mark = |n: usize| marks[n] = ALLOCS.load(Ordering::SeqCst);
        mark(0);
        // Send path.
        assert!(source.next_frame(&mut captured).unwrap());
        mark(1);
        resizer.resize(&captured, &mut resized, ow, oh).unwrap();
        mark(2);
        let slot = &mut pool[(i % 2) as usize];
        let f = Arc::get_mut(slot).expect("the sender let go of the frame before last");
        f.seq = resized.seq;
        f.capture_us = resized.capture_us;
        f.keyframe = enc.encode(&resized, &mut f.payload).unwrap().is_keyframe();
        mark(3);
        server.publish(std::slice::from_ref(slot));
        // Receive path (the viewer's sender thread runs meanwhile; its allocations count here).
        match client.recv(&mut received).unwrap() {
            Received::Packet { .. } => assert_eq!(received.seq, i),
            other => panic!("expected a frame, got {other:?}"),
        }
        mark(4);
        dec.decode_vec(&mut received.payload, &mut decoded).unwrap();
        assert_eq!((decoded.width, decoded.height), (ow, oh));
        mark(5);
        if i >= WARM {
            for (n, c) in counts.iter_mut().enumerate() {
                *c += marks[n + 1] - marks[n];
            }
        }
    }
    server.shutdown();
    counts
}

#[test]
fn steady_state_sends_and_receives_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Vec::new();
    let mut over = false;
    let mut cases = Vec::new();
    // The intra-only codecs (H.264 is OpenH264's, C++ whose allocations this cannot count;
    // bench-harness builds without its feature).
    for kind in CodecKind::ALL.into_iter().filter(|k| k.is_intra_only()) {
        // JPEG with every encoder this build has; the other codecs ignore the choice.
        let jpeg_backends: Vec<_> = if kind == CodecKind::Jpeg {
            JpegBackend::available().collect()
        } else {
            vec![JpegBackend::default()]
        };
        for jpeg in jpeg_backends {
            let name = if kind == CodecKind::Jpeg {
                format!("{kind} ({jpeg} encoder)")
            } else {
                kind.to_string()
            };
            cases.push((name, kind, jpeg, (640, 480)));
        }
    }
    // Raw 640x360: a payload large enough that the client reads it straight into the buffer
    // that `decode_vec` swaps into the frame.
    let raw_hd = (
        "raw 640x360".to_string(),
        CodecKind::Raw,
        JpegBackend::default(),
        (1280, 720),
    );
    cases.push(raw_hd);
    for (name, kind, jpeg, size) in cases {
        let counts = allocations_per_stage(kind, jpeg, size);
        for (stage, count) in STAGES.iter().zip(counts) {
            over |= count > 0;
            report.push(format!(
                "{name} {stage}: {count} allocations in {MEASURED} frames"
            ));
        }
    }
    assert!(!over, "allocations in steady state:\n{}", report.join("\n"));
}

/// The most allocations one resize call may make in steady state, by what does the work.
fn resize_bound(filter: ResizeFilter, (w, h): (u32, u32), (ow, oh): (u32, u32)) -> u64 {
    let two_by_two = |src: u32, dst: u32| {
        src == 2 * dst
            || (filter == ResizeFilter::Bilinear
                && src.is_multiple_of(dst)
                && (src / dst).is_multiple_of(2))
    };
    if two_by_two(w, ow) && two_by_two(h, oh) {
        // framewire's 2x2 means: its row buffer is kept.
        0
    } else {
        // fast_image_resize: one coefficient vector per output column and row, plus a few.
        u64::from(ow + oh) + 16
    }
}

/// Allocations per call in steady state (after `WARM` calls) of one `Resizer` resizing
/// test-pattern frames from `size` to `out`.
fn resize_allocations(filter: ResizeFilter, size: (u32, u32), out: (u32, u32)) -> u64 {
    let mut source = TestPattern::new(size.0, size.1, 0.0).unwrap();
    let mut resizer = Resizer::new(filter);
    let (mut captured, mut resized) = (
        Frame::empty(PixelFormat::Rgb8),
        Frame::empty(PixelFormat::Rgb8),
    );
    let mut count = 0;
    for i in 0..WARM + MEASURED {
        assert!(source.next_frame(&mut captured).unwrap());
        let before = ALLOCS.load(Ordering::SeqCst);
        resizer
            .resize(&captured, &mut resized, out.0, out.1)
            .unwrap();
        if i >= WARM {
            count += ALLOCS.load(Ordering::SeqCst) - before;
        }
    }
    count.div_ceil(MEASURED)
}

#[test]
fn resizing_allocates_only_through_fast_image_resize() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cases = [
        (ResizeFilter::Area, (640, 480), (320, 240)),
        (ResizeFilter::Bilinear, (640, 480), (320, 240)),
        (ResizeFilter::Bilinear, (1280, 720), (320, 180)),
        (ResizeFilter::Bilinear, (1920, 1080), (320, 180)),
        (ResizeFilter::Area, (1280, 720), (320, 180)),
        (ResizeFilter::Area, (1920, 1080), (320, 180)),
        (ResizeFilter::Bilinear, (1000, 700), (320, 224)),
    ];
    let mut report = Vec::new();
    let mut over = false;
    for (filter, size, out) in cases {
        let per_call = resize_allocations(filter, size, out);
        let limit = resize_bound(filter, size, out);
        over |= per_call > limit;
        report.push(format!(
            "{filter:?} {}x{} -> {}x{}: {per_call} allocations per call (bound {limit})",
            size.0, size.1, out.0, out.1
        ));
    }
    assert!(!over, "allocations per resize:\n{}", report.join("\n"));
}
