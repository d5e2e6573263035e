//! An X screen of a test's own: a private Xvfb (`-displayfd` picks a free display), its screen
//! read with `xwd` (package x11-apps) into a frame, and children killed when the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use framewire_core::{Frame, PixelFormat};

/// Kills (and reaps) a child when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first line `child` prints on stdout, within `timeout`; `what` names it in the failure.
pub fn first_line(child: &mut Child, what: &str, timeout: Duration) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(timeout) {
        Ok(Some(Ok(line))) => line,
        other => panic!("waited {timeout:?} for {what}, got {other:?}"),
    }
}

pub fn start_xvfb() -> (Reaped, String) {
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
            "-br",
            // An X server resets when its last client leaves, and refuses connections while it
            // does: a window opened right after another closed would fail now and then.
            "-noreset",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let n = first_line(
        &mut xvfb,
        "Xvfb to print its display number",
        Duration::from_secs(20),
    );
    (Reaped(xvfb), format!(":{}", n.trim()))
}

/// Parses an `xwd` dump (ZPixmap at 32 or 24 bits per pixel, what Xvfb at depth 24 gives) into
/// an RGB frame.
pub fn parse_xwd(data: &[u8]) -> Result<Frame, String> {
    let field = |i: usize| -> Result<u32, String> {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("xwd header field {i} is missing"))
    };
    let (header_size, format, width, height) = (field(0)?, field(2)?, field(4)?, field(5)?);
    let (byte_order, bpp, bytes_per_line) = (field(7)?, field(11)?, field(12)?);
    let (red_mask, green_mask, blue_mask, ncolors) =
        (field(14)?, field(15)?, field(16)?, field(19)?);
    if format != 2 || !(bpp == 32 || bpp == 24) {
        return Err(format!(
            "xwd format {format} at {bpp} bits per pixel, expected ZPixmap (2) at 24 or 32"
        ));
    }
    let size = bpp as usize / 8;
    let start = header_size as usize + ncolors as usize * 12;
    let pixels = data
        .get(start..start + bytes_per_line as usize * height as usize)
        .ok_or("xwd pixel data is truncated")?;
    let channel = |v: u32, mask: u32| ((v & mask) >> mask.trailing_zeros()) as u8;
    let mut frame = Frame::new(width, height, PixelFormat::Rgb8);
    for y in 0..height as usize {
        for x in 0..width as usize {
            let p = &pixels[y * bytes_per_line as usize + x * size..][..size];
            let v = p.iter().enumerate().fold(0u32, |v, (i, &b)| {
                let shift = if byte_order == 0 { i } else { size - 1 - i };
                v | u32::from(b) << (8 * shift)
            });
            let i = (y * width as usize + x) * 3;
            frame.pixels[i..i + 3].copy_from_slice(&[
                channel(v, red_mask),
                channel(v, green_mask),
                channel(v, blue_mask),
            ]);
        }
    }
    Ok(frame)
}

pub fn screenshot(display: &str) -> Frame {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .stderr(Stdio::inherit())
        .output()
        .expect("run xwd");
    assert!(out.status.success(), "xwd -root failed: {}", out.status);
    parse_xwd(&out.stdout).unwrap_or_else(|e| panic!("cannot read the xwd dump: {e}"))
}

pub fn crop(screen: &Frame, x0: u32, y0: u32, w: u32, h: u32) -> Frame {
    let mut out = Frame::new(w, h, PixelFormat::Rgb8);
    for y in 0..h {
        let src = ((y0 + y) * screen.width + x0) as usize * 3;
        out.pixels[(y * w) as usize * 3..][..w as usize * 3]
            .copy_from_slice(&screen.pixels[src..src + w as usize * 3]);
    }
    out
}
