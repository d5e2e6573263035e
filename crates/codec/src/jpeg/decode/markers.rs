//! Marker and segment parsing: everything before the entropy-coded data.
//!
//! Reads SOI, then the segments up to and including SOS: the frame header
//! (SOF0/SOF1) into a `FrameInfo`, DHT into the decoder's Huffman tables (or
//! the Annex K tables when there is none), DQT, DRI and the Adobe APP14
//! colour transform; skips APPn, COM and reserved markers, and refuses the
//! frame types the decoder does not take as [`DecodeError::Unsupported`].

use crate::jpeg::tables::{CHROMA_AC, CHROMA_DC, LUMA_AC, LUMA_DC};

use super::{BaselineDecoder, CompInfo, DecodeError, FrameInfo, Limits, invalid, unsupported};

fn be16(data: &[u8], pos: usize) -> Option<u16> {
    let b = data.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

impl BaselineDecoder {
    /// Installs the Annex K tables as DC/AC tables 0 (luma) and 1 (chroma).
    fn load_standard_tables(&mut self) {
        // The constant tables are well formed; errors cannot happen.
        let _ = self.dc[0].build(&LUMA_DC.counts, LUMA_DC.symbols, true);
        let _ = self.dc[1].build(&CHROMA_DC.counts, CHROMA_DC.symbols, true);
        let _ = self.ac[0].build(&LUMA_AC.counts, LUMA_AC.symbols, false);
        let _ = self.ac[1].build(&CHROMA_AC.counts, CHROMA_AC.symbols, false);
    }

    /// Parses all markers up to and including SOS.
    pub(super) fn parse(&mut self, data: &[u8], limits: Limits) -> Result<FrameInfo, DecodeError> {
        self.qt_defined = [false; 4];
        for t in self.dc.iter_mut().chain(self.ac.iter_mut()) {
            t.defined = false;
        }
        if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
            return Err(invalid(0, "missing SOI marker (not a JPEG)"));
        }
        let mut pos = 2usize;
        let mut frame: Option<FrameInfo> = None;
        let mut any_dht = false;
        let mut restart_interval = 0u16;
        let mut adobe_transform = None;

        loop {
            match data.get(pos) {
                None => return Err(invalid(pos, "end of data before the scan")),
                Some(&0xFF) => {}
                Some(&b) => {
                    return Err(invalid(pos, format!("expected a marker, found 0x{b:02X}")));
                }
            }
            let marker_pos = pos;
            pos += 1;
            while data.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let Some(&m) = data.get(pos) else {
                return Err(invalid(pos, "end of data inside a marker"));
            };
            pos += 1;
            match m {
                0xD8 => return Err(invalid(marker_pos, "second SOI marker")),
                0xD9 => return Err(invalid(marker_pos, "EOI before the first scan")),
                0x00 => return Err(invalid(marker_pos, "stuffed 0xFF00 outside entropy data")),
                // Standalone markers without a length: RSTn outside a scan, TEM.
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let Some(len) = be16(data, pos) else {
                return Err(invalid(pos, "end of data inside a segment length"));
            };
            let len = usize::from(len);
            if len < 2 {
                return Err(invalid(pos, format!("segment length {len} below 2")));
            }
            let end = pos + len;
            let Some(seg) = data.get(pos + 2..end) else {
                return Err(invalid(
                    marker_pos,
                    format!("segment 0xFF{m:02X} of {len} bytes runs past the end of data"),
                ));
            };
            let seg_pos = pos + 2;
            match m {
                0xC0 | 0xC1 => {
                    if frame.is_some() {
                        return Err(invalid(marker_pos, "second frame header"));
                    }
                    frame = Some(parse_sof(seg, seg_pos, limits)?);
                }
                0xC2 => return Err(unsupported("progressive JPEG (SOF2)")),
                0xC3 => return Err(unsupported("lossless JPEG (SOF3)")),
                0xC5..=0xC7 => {
                    return Err(unsupported(format!("hierarchical JPEG (SOF{})", m - 0xC0)));
                }
                0xC8 => return Err(unsupported("JPEG extension frame (SOF8)")),
                0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(unsupported(format!(
                        "arithmetic-coded JPEG (SOF{})",
                        m - 0xC0
                    )));
                }
                0xCC => return Err(unsupported("arithmetic coding conditioning (DAC)")),
                0xDE | 0xDF => return Err(unsupported("hierarchical JPEG (DHP/EXP marker)")),
                0xC4 => {
                    self.parse_dht(seg, seg_pos)?;
                    any_dht = true;
                }
                0xDB => self.parse_dqt(seg, seg_pos)?,
                0xDD => {
                    if seg.len() != 2 {
                        return Err(invalid(marker_pos, "DRI segment length is not 4"));
                    }
                    restart_interval = u16::from_be_bytes([seg[0], seg[1]]);
                }
                0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                    adobe_transform = Some(seg[11]);
                }
                0xDA => {
                    let Some(mut f) = frame else {
                        return Err(invalid(marker_pos, "scan before the frame header"));
                    };
                    self.parse_sos(seg, seg_pos, &mut f, any_dht)?;
                    f.restart_interval = restart_interval;
                    f.adobe_transform = adobe_transform;
                    f.scan_start = end;
                    return Ok(f);
                }
                // APPn, COM, DNL, JPGn and reserved markers: skipped.
                _ => {}
            }
            pos = end;
        }
    }

    fn parse_dht(&mut self, seg: &[u8], seg_pos: usize) -> Result<(), DecodeError> {
        let mut p = 0usize;
        while p < seg.len() {
            let tc_th = seg[p];
            let (tc, th) = (tc_th >> 4, usize::from(tc_th & 15));
            if tc > 1 || th > 3 {
                return Err(invalid(
                    seg_pos + p,
                    format!("bad huffman table class/id 0x{tc_th:02X}"),
                ));
            }
            let Some(counts) = seg.get(p + 1..p + 17) else {
                return Err(invalid(seg_pos + p, "DHT segment too short"));
            };
            let mut c = [0u8; 16];
            c.copy_from_slice(counts);
            let total: usize = c.iter().map(|&x| usize::from(x)).sum();
            let Some(values) = seg.get(p + 17..p + 17 + total) else {
                return Err(invalid(seg_pos + p, "DHT segment too short for its values"));
            };
            let table = if tc == 0 {
                &mut self.dc[th]
            } else {
                &mut self.ac[th]
            };
            table
                .build(&c, values, tc == 0)
                .map_err(|r| invalid(seg_pos + p, r))?;
            p += 17 + total;
        }
        Ok(())
    }

    fn parse_dqt(&mut self, seg: &[u8], seg_pos: usize) -> Result<(), DecodeError> {
        let mut p = 0usize;
        while p < seg.len() {
            let pq_tq = seg[p];
            let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
            if pq > 1 || tq > 3 {
                return Err(invalid(
                    seg_pos + p,
                    format!("bad quantisation table precision/id 0x{pq_tq:02X}"),
                ));
            }
            let n = if pq == 0 { 64 } else { 128 };
            let Some(vals) = seg.get(p + 1..p + 1 + n) else {
                return Err(invalid(seg_pos + p, "DQT segment too short"));
            };
            let table = &mut self.qt[tq].0;
            if pq == 0 {
                for (q, &v) in table.iter_mut().zip(vals) {
                    *q = u16::from(v);
                }
            } else {
                for (q, v) in table.iter_mut().zip(vals.chunks_exact(2)) {
                    *q = u16::from_be_bytes([v[0], v[1]]);
                }
            }
            self.qt_defined[tq] = true;
            p += 1 + n;
        }
        Ok(())
    }

    fn parse_sos(
        &mut self,
        seg: &[u8],
        seg_pos: usize,
        f: &mut FrameInfo,
        any_dht: bool,
    ) -> Result<(), DecodeError> {
        let ns = usize::from(*seg.first().unwrap_or(&0));
        if ns == 0 || ns > 4 {
            return Err(invalid(seg_pos, format!("scan with {ns} components")));
        }
        if seg.len() < 1 + 2 * ns + 3 {
            return Err(invalid(seg_pos, "SOS segment too short"));
        }
        if ns < f.ncomp {
            return Err(unsupported(format!(
                "several scans ({ns} of {} components in the first scan)",
                f.ncomp
            )));
        }
        if ns > f.ncomp {
            return Err(invalid(seg_pos, "scan has more components than the frame"));
        }
        let mut seen = [false; 3];
        for i in 0..ns {
            let id = seg[1 + 2 * i];
            let tables = seg[2 + 2 * i];
            let Some(ci) = f.comps[..f.ncomp].iter().position(|c| c.id == id) else {
                return Err(invalid(
                    seg_pos + 1 + 2 * i,
                    format!("scan names unknown component {id}"),
                ));
            };
            if seen[ci] {
                return Err(invalid(seg_pos + 1 + 2 * i, "component twice in scan"));
            }
            seen[ci] = true;
            let (td, ta) = (tables >> 4, tables & 15);
            if td > 3 || ta > 3 {
                return Err(invalid(seg_pos + 2 + 2 * i, "huffman table id above 3"));
            }
            f.comps[ci].td = td;
            f.comps[ci].ta = ta;
            f.scan_order[i] = ci;
        }
        let (ss, se, ahal) = (seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]);
        if ss != 0 || se != 63 || ahal != 0 {
            return Err(invalid(
                seg_pos + 1 + 2 * ns,
                format!("sequential scan with Ss={ss} Se={se} Ah/Al=0x{ahal:02X}"),
            ));
        }
        if !any_dht {
            self.load_standard_tables();
        }
        for c in &f.comps[..f.ncomp] {
            if !self.qt_defined[usize::from(c.tq)] {
                return Err(invalid(
                    seg_pos,
                    format!("quantisation table {} not defined", c.tq),
                ));
            }
            if !self.dc[usize::from(c.td)].defined {
                return Err(invalid(
                    seg_pos,
                    format!("DC huffman table {} not defined", c.td),
                ));
            }
            if !self.ac[usize::from(c.ta)].defined {
                return Err(invalid(
                    seg_pos,
                    format!("AC huffman table {} not defined", c.ta),
                ));
            }
        }
        Ok(())
    }
}

/// Parses a SOF0/SOF1 segment body.
fn parse_sof(seg: &[u8], seg_pos: usize, limits: Limits) -> Result<FrameInfo, DecodeError> {
    if seg.len() < 6 {
        return Err(invalid(seg_pos, "frame header too short"));
    }
    let precision = seg[0];
    if precision == 12 {
        return Err(unsupported("12-bit sample precision"));
    }
    if precision != 8 {
        return Err(invalid(seg_pos, format!("sample precision {precision}")));
    }
    let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
    let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
    if height == 0 {
        return Err(unsupported("height defined by a DNL marker"));
    }
    if width == 0 {
        return Err(invalid(seg_pos + 3, "width 0"));
    }
    let nf = usize::from(seg[5]);
    if nf == 0 {
        return Err(invalid(seg_pos + 5, "frame with 0 components"));
    }
    if nf != 1 && nf != 3 {
        return Err(unsupported(format!("{nf} colour components")));
    }
    if seg.len() < 6 + 3 * nf {
        return Err(invalid(seg_pos, "frame header too short"));
    }
    let mut f = FrameInfo {
        width,
        height,
        ncomp: nf,
        ..FrameInfo::default()
    };
    for i in 0..nf {
        let b = &seg[6 + 3 * i..9 + 3 * i];
        let (id, h, v, tq) = (b[0], b[1] >> 4, b[1] & 15, b[2]);
        let at = seg_pos + 6 + 3 * i;
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(invalid(at, format!("sampling factors {h}x{v}")));
        }
        if tq > 3 {
            return Err(invalid(at, format!("quantisation table id {tq}")));
        }
        if f.comps[..i].iter().any(|c| c.id == id) {
            return Err(invalid(at, format!("duplicate component id {id}")));
        }
        if nf == 3 && (h > 2 || v > 2) {
            return Err(unsupported(format!("sampling factors {h}x{v}")));
        }
        f.comps[i] = CompInfo {
            id,
            h,
            v,
            tq,
            td: 0,
            ta: 0,
        };
    }
    if nf == 1 {
        // A single component is one non-interleaved scan of 8x8 blocks.
        f.comps[0].h = 1;
        f.comps[0].v = 1;
    }
    f.hmax = f.comps[..nf].iter().map(|c| c.h).max().unwrap_or(1);
    f.vmax = f.comps[..nf].iter().map(|c| c.v).max().unwrap_or(1);
    if width > limits.max_width || height > limits.max_height {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limits,
        });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_tables_build() {
        let mut d = BaselineDecoder::new();
        d.load_standard_tables();
        assert!(d.dc[0].defined && d.dc[1].defined && d.ac[0].defined && d.ac[1].defined);
    }
}
