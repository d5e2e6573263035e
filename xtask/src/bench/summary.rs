//! The summary: a row with its value, baseline, ratio and target, as JSON and as a markdown table.

use super::*;

/// One line of the summary.
pub(crate) struct Row {
    pub(crate) case: String,
    /// `None` where this machine cannot measure it (the note says why).
    pub(crate) value: Option<f64>,
    pub(crate) unit: &'static str,
    /// What the ratio divides by, with its value; empty where there is none.
    pub(crate) baseline: String,
    /// `value / baseline value`, in the row's unit.
    pub(crate) ratio: Option<f64>,
    /// The target on the ratio, e.g. `<= 1.05` or `>= 0.8`.
    pub(crate) target: Option<(Cmp, f64)>,
    pub(crate) note: String,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    AtMost,
    AtLeast,
}

impl Row {
    pub(crate) fn new(case: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            value: Some(value),
            ..Row::not_measured(case, unit)
        }
    }

    /// A row without a value: this machine cannot measure it; the note should say why.
    pub(crate) fn not_measured(case: impl Into<String>, unit: &'static str) -> Row {
        Row {
            case: case.into(),
            value: None,
            unit,
            baseline: String::new(),
            ratio: None,
            target: None,
            note: String::new(),
        }
    }

    pub(crate) fn against(mut self, name: &str, base: Option<f64>) -> Row {
        if let Some(b) = base.filter(|b| *b > 0.0 && b.is_finite()) {
            self.baseline = format!("{name}: {} {}", fmt_num(b), self.unit);
            self.ratio = self.value.map(|v| v / b);
        } else {
            self.baseline = format!("{name}: not measured");
        }
        self
    }

    pub(crate) fn target(mut self, cmp: Cmp, t: f64) -> Row {
        self.target = Some((cmp, t));
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    pub(crate) fn meets(&self) -> Option<bool> {
        let (cmp, t) = self.target?;
        let r = self.ratio?;
        Some(match cmp {
            Cmp::AtMost => r <= t,
            Cmp::AtLeast => r >= t,
        })
    }

    /// The row as `summary.json` has it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "case": self.case,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target_text(),
            "meets": self.meets(),
            "note": self.note,
        })
    }

    pub(crate) fn target_text(&self) -> String {
        // At most three decimals (25/30 reads 0.833), no trailing zeros.
        let t = |t: f64| {
            let s = format!("{t:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        match self.target {
            Some((Cmp::AtMost, v)) => format!("<= {}", t(v)),
            Some((Cmp::AtLeast, v)) => format!(">= {}", t(v)),
            None => String::new(),
        }
    }
}

pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

pub(crate) fn markdown(
    rows: &[Row],
    notes: &[String],
    quick: bool,
    build: f64,
    run: f64,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "framewire bench{}: {} rows, measuring took {:.0}s (build {:.0}s)\n\n",
        if quick { " --quick" } else { "" },
        rows.len(),
        run,
        build
    ));
    s.push_str("| case | value | unit | baseline | ratio | target | meets |\n");
    s.push_str("|---|---:|---|---|---:|---|---|\n");
    for r in rows {
        let case = if r.note.is_empty() {
            r.case.clone()
        } else {
            format!("{} ({})", r.case, r.note)
        };
        s.push_str(&format!(
            "| {case} | {} | {} | {} | {} | {} | {} |\n",
            r.value.map(fmt_num).unwrap_or_default(),
            r.unit,
            r.baseline,
            r.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            r.target_text(),
            match r.meets() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        ));
    }
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str(
        "\nratio = value / baseline value, both measured in this run; for ms and us lower is \
         better, for fps, MB/s and viewers higher is better. Narrow-link latency ratios are in \
         frame-times (bytes per frame received / link rate).\n",
    );
    s
}

/// The line before the figures in docs/performance.md.
pub(crate) const FIGURES_BEGIN: &str = "<!-- begin: written by `cargo xtask bench`";
/// The line after them.
pub(crate) const FIGURES_END: &str = "<!-- end: written by `cargo xtask bench` -->";

/// `doc` with what lies between its figure lines replaced by `figures`.
pub(crate) fn with_figures(doc: &str, figures: &str) -> anyhow::Result<String> {
    let begin = doc
        .find(FIGURES_BEGIN)
        .and_then(|at| doc[at..].find('\n').map(|end| at + end + 1));
    let end = doc.find(FIGURES_END);
    let (Some(begin), Some(end)) = (begin, end.filter(|end| Some(*end) >= begin)) else {
        anyhow::bail!(
            "docs/performance.md has no line starting {FIGURES_BEGIN:?} followed by a line {FIGURES_END:?}: \
             put them back around the figures"
        );
    };
    Ok(format!(
        "{}{}\n{}",
        &doc[..begin],
        figures.trim_end(),
        &doc[end..]
    ))
}

/// When, on what and from which commit the run measured, for the table's first line.
pub(crate) fn run_description() -> String {
    let out = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "From a full run on {} (commit {}), {cores} cores of {cpu}{}.",
        out("date", &["-u", "+%Y-%m-%d"]),
        out("git", &["rev-parse", "--short", "HEAD"]),
        if is_root() {
            ", as root (the link rows measured)"
        } else {
            ""
        },
    )
}

/// Whether this runs as root (netbed's link rows need it).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}
