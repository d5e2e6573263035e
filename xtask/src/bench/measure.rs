//! Everything one run measured, and the rows built from it by the table.

use super::*;

/// Everything one run measured, for the table to read.
pub(crate) struct Measurements {
    /// Criterion's results by id.
    pub(crate) crit: BTreeMap<String, Measured>,
    /// OpenCV's median ms by op; `None` where OpenCV could not be set up (the notes say why).
    pub(crate) opencv: Option<BTreeMap<String, f64>>,
    /// The serve pipeline's frames per second, keyed `"<label> <mode>"`.
    pub(crate) pipeline: BTreeMap<String, f64>,
    /// The viewers-fed binary's JSON objects.
    pub(crate) viewers: Vec<Value>,
    /// Whether libjpeg-turbo was built and measured.
    pub(crate) turbo: bool,
    /// The narrow-link cases.
    pub(crate) link: LinkRuns,
    /// browser-latency's JSON object, or why there is none.
    pub(crate) browser: Result<Value, String>,
    /// h264-vs-x264's JSON object, or why there is none.
    pub(crate) h264: Result<Value, String>,
    /// media-server's JSON object, or why there is none.
    pub(crate) media_server: Result<Value, String>,
    /// browser-link's JSON object, or why there is none.
    pub(crate) browser_link: Result<Value, String>,
    /// python/bench/against_imagezmq.py's object, or why it did not run.
    pub(crate) python: Result<Value, String>,
}

/// What narrow-link gave.
#[derive(Debug)]
pub(crate) enum LinkRuns {
    /// Netbed cannot make namespaces on this machine; why not.
    Unavailable(String),
    /// One JSON object per case (with an `error` where the case failed).
    Measured(Vec<Value>),
}

/// A figure as its source gives it.
#[derive(Clone, Copy)]
pub(crate) enum Raw {
    /// Criterion: ns per iteration, and the bytes per iteration it declared.
    Ns { ns: f64, bytes: Option<u64> },
    /// OpenCV: ms per op.
    Ms(f64),
    /// The pipeline: frames per second.
    Fps(f64),
    /// viewers-fed: a count or a fraction of a core.
    Plain(f64),
}

impl Raw {
    pub(crate) fn bytes(self) -> Option<u64> {
        match self {
            Raw::Ns { bytes, .. } => bytes,
            _ => None,
        }
    }
}

impl Unit {
    /// `raw` in this unit.
    pub(crate) fn of(self, raw: Raw) -> Result<f64, String> {
        Ok(match (raw, self) {
            (Raw::Ns { ns, .. }, Unit::Ns) => ns,
            (Raw::Ns { ns, .. }, Unit::Us) => ns / 1e3,
            (Raw::Ns { ns, .. }, Unit::Ms) => ns / 1e6,
            (Raw::Ns { ns, .. }, Unit::Fps) => 1e9 / ns,
            (Raw::Ns { ns, bytes }, Unit::MBps) => match bytes {
                Some(bytes) => bytes as f64 / ns * 1e3,
                None => return Err("declares no bytes per iteration, which MB/s needs".into()),
            },
            (Raw::Ms(ms), Unit::Ms) => ms,
            (Raw::Ms(ms), Unit::Fps) => 1e3 / ms,
            (Raw::Fps(fps), Unit::Fps) => fps,
            (Raw::Plain(x), Unit::Viewers) => x,
            (Raw::Plain(x), Unit::PctCore) => x * 100.0,
            (Raw::Plain(x), Unit::Bytes) => x,
            (Raw::Plain(x), Unit::Mbits) => x,
            (Raw::Plain(x), Unit::Fps) => x,
            (Raw::Plain(x), Unit::Ms) => x,
            _ => return Err(format!("cannot be given in {}", self.as_str())),
        })
    }
}

/// The figure at `pointer` in a binary's JSON result, or why there is none: `excuse` where the
/// binary did not measure here.
fn by_pointer(
    result: &Result<Value, String>,
    pointer: &str,
    key: Key,
    excuse: MayLack,
) -> Result<Raw, Gap> {
    match result {
        Ok(v) => v
            .pointer(pointer)
            .and_then(Value::as_f64)
            .map(Raw::Plain)
            .ok_or_else(|| Gap::missing(key.describe())),
        Err(_) => Err(Gap {
            what: key.describe(),
            excused_by: Some(excuse),
        }),
    }
}

/// Why a figure is not there: what is missing, and which `MayLack` (if any) excuses it.
pub(crate) struct Gap {
    pub(crate) what: String,
    pub(crate) excused_by: Option<MayLack>,
}

impl Gap {
    pub(crate) fn missing(what: String) -> Gap {
        Gap {
            what,
            excused_by: None,
        }
    }
}

impl Measurements {
    /// Whether the renderer bench measured anything (it skips without a GPU adapter).
    pub(crate) fn gpu_measured(&self) -> bool {
        self.crit
            .keys()
            .any(|id| id.split('/').next() == Some(RENDER_GROUP))
    }

    /// The viewers-fed result for (size, mode).
    pub(crate) fn viewers_result(&self, size: &str, mode: &str) -> Option<&Value> {
        self.viewers
            .iter()
            .find(|v| v["size"] == size && v["mode"] == mode)
    }

    /// The narrow-link result of `case`; `Err` says why there is none.
    pub(crate) fn link_result(&self, case: LinkCase) -> Result<&Value, Gap> {
        let name = case.arg();
        let codec = if case.h264 { "h264" } else { "jpeg" };
        // An H.264 case's rows are H.264's: left out where it is not built, or cannot be run.
        let excuse = match case.h264 {
            true => MayLack::WithoutH264,
            false => MayLack::WithoutRoot,
        };
        match &self.link {
            LinkRuns::Unavailable(_) => Err(Gap {
                what: format!("narrow-link case {name} (netbed cannot make namespaces here)"),
                excused_by: Some(excuse),
            }),
            _ if case.h264 && self.h264.is_err() => Err(Gap {
                what: format!("narrow-link h264 case {name} (H.264 not measured here)"),
                excused_by: Some(excuse),
            }),
            LinkRuns::Measured(results) => match results
                .iter()
                .find(|r| r["case"] == name && r["codec"].as_str().unwrap_or("jpeg") == codec)
            {
                None => Err(Gap::missing(format!("narrow-link case {name}"))),
                Some(r) => match r.get("error") {
                    Some(e) => Err(Gap::missing(format!(
                        "narrow-link case {name} (it failed: {})",
                        e.as_str().unwrap_or_default()
                    ))),
                    None => Ok(r),
                },
            },
        }
    }

    /// The figure `key` names; `bytes` is what the row's value bench declared, for
    /// `Key::CritSameBytes`.
    pub(crate) fn raw(&self, key: Key, bytes: Option<u64>) -> Result<Raw, Gap> {
        let opencv = |k: &'static str| match &self.opencv {
            None => Err(Gap {
                what: format!("OpenCV op {k:?} (OpenCV not set up)"),
                excused_by: Some(MayLack::WithoutOpenCv),
            }),
            Some(cv) => cv
                .get(k)
                .copied()
                .ok_or_else(|| Gap::missing(Key::OpenCv(k).describe())),
        };
        match key {
            Key::Crit(id) => self
                .crit
                .get(id)
                .map(|m| Raw::Ns {
                    ns: m.ns,
                    bytes: m.bytes,
                })
                .ok_or_else(|| Gap::missing(key.describe())),
            Key::CritSameBytes(prefix) => {
                let Some(bytes) = bytes else {
                    return Err(Gap::missing(format!(
                        "criterion bench {prefix}<bytes>: the value's bench declares no bytes"
                    )));
                };
                let id = format!("{prefix}{bytes}");
                match self.crit.get(&id) {
                    Some(m) => Ok(Raw::Ns {
                        ns: m.ns,
                        bytes: Some(bytes),
                    }),
                    None => Err(Gap::missing(format!("criterion bench {id}"))),
                }
            }
            Key::OpenCv(k) => opencv(k).map(Raw::Ms),
            Key::OpenCvSum(keys) => {
                let mut sum = 0.0;
                for k in keys {
                    sum += opencv(k)?;
                }
                Ok(Raw::Ms(sum))
            }
            Key::Pipeline(label, mode) => self
                .pipeline
                .get(&format!("{label} {mode}"))
                .map(|&fps| Raw::Fps(fps))
                .ok_or_else(|| Gap::missing(key.describe())),
            Key::Viewers(size, mode, field) => {
                let Some(result) = self.viewers_result(size, mode) else {
                    return Err(Gap::missing(format!("viewers-fed result {size} {mode}")));
                };
                let what = key.describe();
                match result.get(field) {
                    Some(Value::Null) => Err(Gap {
                        what,
                        excused_by: Some(MayLack::WhenNull),
                    }),
                    Some(v) => v.as_f64().map(Raw::Plain).ok_or_else(|| Gap::missing(what)),
                    None => Err(Gap::missing(what)),
                }
            }
            Key::Link(case, figure) => self.link_result(case).and_then(|r| {
                r[figure.field()]
                    .as_f64()
                    .map(|v| figure.raw(v))
                    .ok_or_else(|| Gap::missing(key.describe()))
            }),
            Key::Browser(field) => match &self.browser {
                // A figure browser-latency could not take (the page without WebCodecs).
                Ok(v) if v.get(field).is_some_and(Value::is_null) => Err(Gap {
                    what: key.describe(),
                    excused_by: Some(MayLack::WithoutBrowser),
                }),
                Ok(v) => v[field]
                    .as_f64()
                    .map(Raw::Ms)
                    .ok_or_else(|| Gap::missing(key.describe())),
                Err(_) => Err(Gap {
                    what: key.describe(),
                    excused_by: Some(MayLack::WithoutBrowser),
                }),
            },
            Key::H264(pointer) => by_pointer(&self.h264, pointer, key, MayLack::WithoutH264),
            Key::BrowserLink(pointer) => by_pointer(
                &self.browser_link,
                pointer,
                key,
                MayLack::WithoutBrowserLink,
            ),
            Key::MediaServer(pointer) => by_pointer(
                &self.media_server,
                pointer,
                key,
                MayLack::WithoutMediaServer,
            ),
            // imagezmq's figure is null where its sender never reached the restarted hub.
            Key::Python(pointer) => match &self.python {
                Ok(v) if v.pointer(pointer).is_some_and(Value::is_null) => Err(Gap {
                    what: key.describe(),
                    excused_by: Some(MayLack::WhenNull),
                }),
                _ => by_pointer(&self.python, pointer, key, MayLack::WithoutPython),
            },
        }
    }
}

impl RowSpec {
    /// The row from this run's measurements: `None` where the table lets it be left out here; an
    /// error (what is missing, in words) where a figure it needs is not there.
    pub(crate) fn build(&self, m: &Measurements, gpu: bool) -> Result<Option<Row>, String> {
        let here = match self.may_lack {
            MayLack::WithoutTurbo => m.turbo,
            MayLack::WithoutGpu => gpu,
            MayLack::WithoutBrowser => m.browser.is_ok(),
            MayLack::WithoutH264 => m.h264.is_ok(),
            MayLack::WithoutMediaServer => m.media_server.is_ok(),
            MayLack::WithoutBrowserLink => m.browser_link.is_ok(),
            MayLack::WithoutPython => m.python.is_ok(),
            MayLack::Never | MayLack::WithoutOpenCv | MayLack::WhenNull | MayLack::WithoutRoot => {
                true
            }
        };
        if !here {
            return Ok(None);
        }
        let raw = match m.raw(self.value, None) {
            Ok(raw) => raw,
            Err(gap) if gap.excused_by == Some(self.may_lack) => {
                return Ok(self.unmeasured());
            }
            Err(gap) => return Err(format!("no result from {}", gap.what)),
        };
        let value = self
            .unit
            .of(raw)
            .map_err(|e| format!("{} {e}", self.value.describe()))?;
        let mut row = Row::new(self.case, value, self.unit.as_str());
        if let Some(b) = self.baseline {
            let base = match m.raw(b.key, raw.bytes()) {
                Ok(base) => Some(
                    self.unit
                        .of(base)
                        .map_err(|e| format!("its baseline, {} {e}", b.key.describe()))?,
                ),
                Err(gap) if gap.excused_by == Some(b.may_lack) => None,
                Err(gap) => {
                    return Err(format!(
                        "its baseline ({}) has no result from {}",
                        b.label, gap.what
                    ));
                }
            };
            row = row.against(b.label, base);
        }
        if let Some((cmp, t)) = self.target {
            row = row.target(cmp, t);
        }
        match self.note {
            Note::None => {}
            Note::Text(text) => row = row.note(text),
            Note::FramesPerSecond => match raw {
                Raw::Ns { ns, .. } => row = row.note(format!("{:.0} frames/s", 1e9 / ns)),
                _ => return Err("a frames/s note needs a criterion value".into()),
            },
            Note::ServerCpu => {
                let Key::Viewers(size, mode, _) = self.value else {
                    return Err("a server CPU note needs a viewers-fed value".into());
                };
                let result = m
                    .viewers_result(size, mode)
                    .ok_or_else(|| format!("no result from viewers-fed result {size} {mode}"))?;
                let n = result["max_viewers"].as_f64().unwrap_or(0.0);
                let capped = if result["capped"].as_bool() == Some(true) {
                    " (the most tried)"
                } else {
                    ""
                };
                row = row.note(format!(
                    "server threads' CPU {:.1}% of a core at {n}{capped}",
                    result["server_cpu_cores"].as_f64().unwrap_or(f64::NAN) * 100.0
                ));
            }
            Note::Rung => {
                let Key::Link(case, _) = self.value else {
                    return Err("a rung note needs a narrow-link value".into());
                };
                let r = m
                    .link_result(case)
                    .map_err(|gap| format!("no result from {}", gap.what))?;
                let changes = r["rung_changes"].as_u64().unwrap_or_default();
                let mut note = format!(
                    "ended on {} ({changes} rung change{}), link {} kbit/s",
                    r["rung"].as_str().unwrap_or("an unnamed rung"),
                    if changes == 1 { "" } else { "s" },
                    r["rate_kbit"]
                );
                if case.adapt {
                    note.push_str(&format!(
                        ", last move {:.1} s after the viewer started",
                        r["settled_ms"].as_f64().unwrap_or(f64::NAN) / 1e3
                    ));
                }
                row = row.note(note);
            }
        }
        Ok(Some(row))
    }

    /// The row where its value may be missing here: left out, or (where that needs root) kept
    /// without a value, its baseline and ratio empty, saying why.
    pub(crate) fn unmeasured(&self) -> Option<Row> {
        if self.may_lack != MayLack::WithoutRoot {
            return None;
        }
        let mut row = Row::not_measured(self.case, self.unit.as_str()).note(NEEDS_ROOT);
        if let Some(b) = self.baseline {
            row = row.against(b.label, None);
        }
        if let Some((cmp, t)) = self.target {
            row = row.target(cmp, t);
        }
        Some(row)
    }
}

/// The summary's rows: `table`'s, in its order, from this run's measurements. A row whose value
/// or baseline has no result fails the whole summary (with one line naming the first such row
/// and what it lacks), unless the table lets it be missing on a machine like this one.
pub(crate) fn build_rows(
    table: &[RowSpec],
    m: &Measurements,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Row>> {
    let gpu = m.gpu_measured();
    if !gpu {
        notes.push(
            "renderer fps not measured: no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
                .into(),
        );
    }
    if let LinkRuns::Unavailable(why) = &m.link {
        notes.push(format!(
            "narrow-link rows not measured: netbed cannot make network namespaces here ({why}); \
             run `cargo xtask bench` as root, with ip, tc (iproute2), nft (nftables) and \
             /dev/net/tun"
        ));
    }
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for spec in table {
        match spec.build(m, gpu) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(what) => missing.push((spec.case, what)),
        }
    }
    if let Some((case, what)) = missing.first() {
        let more = match missing.len() - 1 {
            0 => String::new(),
            1 => " (and 1 more row lacks results)".into(),
            n => format!(" (and {n} more rows lack results)"),
        };
        bail!("summary row {case:?}: {what}{more}; no summary written");
    }
    Ok(rows)
}
