//! The runs behind the rows: criterion's files, OpenCV in a venv, the serve pipeline through the
//! real binary, viewers-fed, browser-latency and narrow-link.

use super::*;

/// A criterion result: median ns per iteration, and the bytes per iteration it declared.
#[derive(Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) ns: f64,
    pub(crate) bytes: Option<u64>,
}

/// Criterion's results by id, for every bench run since `since`, read from its own files
/// (`<group>/<id>/new/benchmark.json` and `estimates.json`).
pub(crate) fn criterion_results(dir: &Path, since: SystemTime) -> BTreeMap<String, Measured> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name().is_none_or(|n| n != "benchmark.json")
                || p.parent()
                    .and_then(Path::file_name)
                    .is_none_or(|n| n != "new")
            {
                continue;
            }
            let fresh = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since);
            if !fresh {
                continue;
            }
            let read = |path: &Path| -> Option<Value> {
                serde_json::from_slice(&std::fs::read(path).ok()?).ok()
            };
            let (Some(bench), Some(est)) = (read(&p), read(&p.with_file_name("estimates.json")))
            else {
                continue;
            };
            let (Some(id), Some(median)) = (
                bench["full_id"].as_str(),
                est["median"]["point_estimate"].as_f64(),
            ) else {
                continue;
            };
            let bytes = bench["throughput"]["Bytes"].as_u64();
            out.insert(id.to_string(), Measured { ns: median, bytes });
        }
    }
    out
}

/// OpenCV's median ms per op, keyed `"<op> <WxH>"` as opencv_micro.py prints it, for every op the
/// table's rows name; `None` where OpenCV cannot be set up here (the notes say why).
pub(crate) fn opencv_baseline(
    out_dir: &Path,
    quick: bool,
    notes: &mut Vec<String>,
) -> Option<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let baselines = root().join("../shared/baselines");
    let script = baselines.join("opencv_micro.py");
    if !script.is_file() {
        notes.push(format!(
            "OpenCV ratios left empty: {} is missing",
            script.display()
        ));
        return None;
    }
    let venv = out_dir.join("venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import cv2, numpy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        if !on_path("python3") {
            notes.push("OpenCV ratios left empty: python3 is not on PATH".into());
            return None;
        }
        let mut mk = Command::new("python3");
        mk.arg("-m").arg("venv").arg(&venv);
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "-q", "-r"])
            .arg(baselines.join("requirements.txt"));
        if let Err(e) = run_cmd(mk).and_then(|()| run_cmd(pip)) {
            notes.push(format!(
                "OpenCV ratios left empty: cannot set up the Python venv with pip: {e:#}"
            ));
            return None;
        }
    }
    let runs = if quick { "40" } else { "200" };
    let writer = target_dir().join("release/write-pattern");
    for ((w, h), ops) in opencv_jobs(table()) {
        let input = out_dir.join(format!("pattern-{w}x{h}.rgb"));
        let status = Command::new(&writer)
            .arg(&input)
            .arg(format!("{w}x{h}"))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            notes.push(format!("OpenCV {w}x{h}: cannot write the test pattern"));
            continue;
        }
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg("--input").arg(&input).args([
            "--size",
            &format!("{w}x{h}"),
            "--runs",
            runs,
        ]);
        for op in ops {
            cmd.args(["--op", op]);
        }
        let output = cmd.stderr(Stdio::inherit()).output();
        let Ok(output) = output.map_err(|e| notes.push(format!("OpenCV {w}x{h}: {e}"))) else {
            continue;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let (Some(op), Some(ms)) = (v["op"].as_str(), v["median_ms"].as_f64())
            {
                if let Some(ver) = v["opencv"].as_str() {
                    let n = format!(
                        "OpenCV {ver} (opencv-python-headless, 1 thread) on the same test-pattern pixels"
                    );
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                out.insert(op.to_string(), ms);
            }
        }
    }
    Some(out)
}

/// The OpenCV ops `table` names, by input size (smallest first), each size's ops in the order the
/// table first names them: a key `"resize_area:320x240 640x480"` is the op `resize_area:320x240`
/// on a 640x480 input.
pub(crate) fn opencv_jobs(table: &[RowSpec]) -> Vec<((u32, u32), Vec<&'static str>)> {
    let mut jobs: Vec<((u32, u32), Vec<&'static str>)> = Vec::new();
    let keys = table.iter().flat_map(RowSpec::keys).flat_map(|k| match k {
        Key::OpenCv(k) => vec![k],
        Key::OpenCvSum(ks) => ks.to_vec(),
        _ => Vec::new(),
    });
    for key in keys {
        let Some((op, size)) = opencv_op(key) else {
            continue;
        };
        match jobs.iter_mut().find(|(s, _)| *s == size) {
            Some((_, ops)) if ops.contains(&op) => {}
            Some((_, ops)) => ops.push(op),
            None => jobs.push((size, vec![op])),
        }
    }
    jobs.sort_by_key(|&((w, h), _)| u64::from(w) * u64::from(h));
    jobs
}

/// An OpenCV key's op and input size.
pub(crate) fn opencv_op(key: &'static str) -> Option<(&'static str, (u32, u32))> {
    let (op, size) = key.split_once(' ')?;
    let (w, h) = size.split_once('x')?;
    Some((op, (w.parse().ok()?, h.parse().ok()?)))
}

/// `framewire serve --fps 0` fed to the harness's `sink` (a viewer that receives without
/// decoding, so the figure is the server's pipeline): frames per second for each `PIPELINE` case
/// this build has, `"<label> threads"` (the default thread count) and `"<label> single"`
/// (`--threads 1`).
/// Runs alternate single and threaded, and each figure is the median of its runs.
pub(crate) fn pipeline_runs(
    quick: bool,
    turbo: bool,
    notes: &mut Vec<String>,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let (frames, rounds) = if quick { (1500, 1) } else { (3000, 3) };
    for case in PIPELINE.iter().filter(|c| turbo || !c.turbo) {
        let label = case.label;
        for (mode, extra) in PIPELINE_MODES {
            let mut runs = Vec::new();
            for _ in 0..rounds {
                match pipeline_fps(case, extra, frames) {
                    Ok(fps) => runs.push(fps),
                    Err(e) => notes.push(format!("pipeline {label} {mode}: {e:#}")),
                }
            }
            runs.sort_by(f64::total_cmp);
            if let Some(median) = runs.get(runs.len() / 2) {
                out.insert(format!("{label} {mode}"), *median);
            }
        }
    }
    out
}

pub(crate) fn pipeline_fps(
    case: &PipelineCase,
    extra: &[&str],
    frames: u64,
) -> anyhow::Result<f64> {
    let exe = target_dir().join("release/framewire");
    let mut cmd = Command::new(&exe);
    cmd.args([
        "serve",
        "--fps",
        "0",
        "--codec",
        case.codec,
        // One rendition: the figure is the pipeline's, not a ladder's.
        "--adapt",
        "off",
        "--listen",
        "127.0.0.1:0",
    ]);
    if let Some((w, h)) = case.y4m {
        let clip = y4m_clip(w, h)?;
        cmd.arg("--loop")
            .arg("--source")
            .arg(format!("file:{}", clip.display()));
    }
    // serve --tls keeps its certificate in a config folder of the bench's own.
    cmd.env(
        "XDG_CONFIG_HOME",
        target_dir().join("framewire-bench/config"),
    );
    let mut server = cmd
        .args(case.flags)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let result = (|| {
        let stdout = server.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().context("server exited before listening")??;
            if let Some(a) = line.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        let mut sink_args = vec![addr, frames.to_string()];
        if case.flags.contains(&"--tls") {
            let line = lines
                .next()
                .context("server exited before its fingerprint")??;
            let pin = line
                .strip_prefix("tls fingerprint ")
                .with_context(|| format!("expected the tls fingerprint line, got {line:?}"))?;
            sink_args.push(pin.trim().to_string());
        }
        // Drain the server's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let out = Command::new(target_dir().join("release/sink"))
            .args(sink_args)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("sink failed ({})", out.status);
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("sink's json")?;
        v["fps"].as_f64().context("no fps in sink's json")
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// A Y4M clip (4:2:0, 30 frames of a moving gradient) of `w` x `h` under the target folder,
/// written when missing: what `serve --source file:` reads in the file pipeline row.
pub(crate) fn y4m_clip(w: u32, h: u32) -> anyhow::Result<std::path::PathBuf> {
    let path = target_dir().join(format!("framewire-bench/clip-{w}x{h}.y4m"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(path.parent().context("bench folder")?)?;
    let (w, h) = (w as usize, h as usize);
    let mut bytes = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for n in 0..30 {
        bytes.extend_from_slice(b"FRAME\n");
        for y in 0..h {
            bytes.extend((0..w).map(|x| (16 + (x + y + 4 * n) % 220) as u8));
        }
        for plane in 0..2 {
            for y in 0..h.div_ceil(2) {
                bytes.extend(
                    (0..w.div_ceil(2)).map(|x| (64 + (x * (plane + 1) + y + n) % 128) as u8),
                );
            }
        }
    }
    let tmp = path.with_extension("y4m.part");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The viewers-fed binary's JSON objects.
pub(crate) fn viewers_fed(quick: bool, notes: &mut Vec<String>) -> Vec<Value> {
    let exe = target_dir().join("release/viewers-fed");
    let mut cmd = Command::new(&exe);
    if quick {
        cmd.arg("--quick");
    }
    match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Ok(o) => {
            notes.push(format!("viewers-fed failed ({})", o.status));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("cannot run {}: {e}", exe.display()));
            Vec::new()
        }
    }
}

/// The narrow-link cases `table` names, in its order, each once.
pub(crate) fn link_cases(table: &[RowSpec]) -> Vec<LinkCase> {
    let mut cases = Vec::new();
    for key in table.iter().flat_map(RowSpec::keys) {
        if let Key::Link(case, _) = key
            && !cases.contains(&case)
        {
            cases.push(case);
        }
    }
    cases
}

/// Bench-harness's browser-latency with the release `framewire` binary: its JSON object, or why
/// it measured nothing (chromium, Xvfb or ffmpeg missing: the notes say so).
pub(crate) fn browser_latency(quick: bool, notes: &mut Vec<String>) -> Result<Value, String> {
    let exe = target_dir().join("release/browser-latency");
    let mut cmd = Command::new(&exe);
    cmd.arg(target_dir().join("release/framewire"));
    cmd.args(["--seconds", if quick { "3" } else { "8" }]);
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    let why = match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) if o.status.success() => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            match v.get("skipped") {
                None => return Ok(v),
                Some(why) => format!(
                    "browser-latency skipped: {}; the browser rows are left out (Debian: \
                     apt-get install chromium xvfb ffmpeg)",
                    why.as_str().unwrap_or("no reason given")
                ),
            }
        }
        Ok(o) => format!("browser-latency failed ({})", o.status),
        Err(e) => format!("cannot run {}: {e}", exe.display()),
    };
    notes.push(why.clone());
    Err(why)
}

/// Bench-harness's h264-vs-x264 with the release `framewire` (built with H.264): framewire's
/// H.264 against JPEG q80 and libx264 on camera-like video made from a photograph.
pub(crate) fn h264_vs_x264(
    built: bool,
    quick: bool,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let not_built = "H.264 not built: it needs a C++ compiler (Debian: apt-get install g++); the \
                     H.264 rows are left out";
    with_framewire(
        "h264-vs-x264",
        "the H.264 rows",
        built.then_some(quick).ok_or(not_built),
        notes,
    )
}

/// Bench-harness's media-server with the release `framewire` (built with H.264): one publisher
/// into nginx-rtmp with 1, 10 and 50 readers over RTMP and HLS, and the latency to an RTMP reader.
pub(crate) fn media_server_run(
    built: bool,
    quick: bool,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let not_built =
        "H.264 not built (a C++ compiler is needed): the media-server rows are left out";
    with_framewire(
        "media-server",
        "the media-server rows",
        built.then_some(quick).ok_or(not_built),
        notes,
    )
}

/// Bench-harness's browser-link with the release `framewire` (built with H.264): the page
/// through WebCodecs behind a netbed link that carries 60% of JPEG's demand.
pub(crate) fn browser_link_run(
    built: bool,
    quick: bool,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let not_built =
        "H.264 not built (a C++ compiler is needed): the browser-link rows are left out";
    with_framewire(
        "browser-link",
        "the browser-link rows",
        built.then_some(quick).ok_or(not_built),
        notes,
    )
}

/// framewire for Python against imagezmq (python/bench/against_imagezmq.py), the package built
/// optimised into the venv the tests use, imagezmq, pyzmq and simplejpeg beside it: its JSON
/// object, or why there is none (in the notes too).
pub(crate) fn python_run(quick: bool, notes: &mut Vec<String>) -> Result<Value, String> {
    let run = || -> anyhow::Result<Value> {
        if let Some((what, install)) = crate::python::missing() {
            anyhow::bail!("{what} is missing ({install})");
        }
        let venv = crate::python::venv()?;
        crate::python::develop(&venv, true, &Command::new("cargo"))?;
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(root().join("python/bench/against_imagezmq.py"));
        if quick {
            cmd.arg("--quick");
        }
        eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
        let out = cmd.stderr(Stdio::inherit()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "against_imagezmq.py failed ({})",
            out.status
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    match run() {
        Ok(v) => {
            if v.pointer("/restart/imagezmq_ms")
                .is_some_and(Value::is_null)
            {
                notes.push(
                    "imagezmq's sender sent nothing to the restarted hub within 10 s: its REQ \
                     socket waits for the dead hub's reply (the restart row's baseline is left \
                     out)"
                        .into(),
                );
            }
            if let Some(versions) = v.get("versions") {
                notes.push(format!("against imagezmq: {versions}"));
            }
            Ok(v)
        }
        Err(e) => {
            let why = format!("the Python rows are left out: {e:#}");
            notes.push(why.clone());
            Err(why)
        }
    }
}

/// Bench-harness's `name` run on the release `framewire` (with `--quick` when `quick` says so,
/// or not at all when it says why): its JSON object, or why there is none, in the notes too
/// (`{"skipped": REASON}` from the binary leaves `rows` out).
fn with_framewire(
    name: &str,
    rows: &str,
    quick: Result<bool, &str>,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let why = match quick {
        Err(why) => why.to_string(),
        Ok(quick) => {
            let exe = target_dir().join("release").join(name);
            let mut cmd = Command::new(&exe);
            cmd.arg(target_dir().join("release/framewire"));
            if quick {
                cmd.arg("--quick");
            }
            eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
            match cmd.stderr(Stdio::inherit()).output() {
                Ok(o) if o.status.success() => {
                    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                    match v.get("skipped") {
                        None => return Ok(v),
                        Some(why) => format!(
                            "{name} skipped: {}; {rows} are left out",
                            why.as_str().unwrap_or("no reason given")
                        ),
                    }
                }
                Ok(o) => format!("{name} failed ({})", o.status),
                Err(e) => format!("cannot run {}: {e}", exe.display()),
            }
        }
    };
    notes.push(why.clone());
    Err(why)
}

/// Bench-harness's narrow-link on the table's cases, one at a time, with the release
/// `framewire` binary: 5 s of streaming each, after a 3 s warm-up with adaptation on (3 s with
/// `--quick`).
pub(crate) fn narrow_link(quick: bool, h264: bool, notes: &mut Vec<String>) -> LinkRuns {
    let (h264_cases, cases): (Vec<LinkCase>, Vec<LinkCase>) =
        link_cases(table()).into_iter().partition(|c| c.h264);
    let runs = narrow_link_run(quick, &[], &cases, notes);
    match runs {
        LinkRuns::Measured(mut results) if h264 && !h264_cases.is_empty() => {
            let args = ["--codec", "h264", "--link-of", "jpeg"];
            match narrow_link_run(quick, &args, &h264_cases, notes) {
                LinkRuns::Measured(more) => results.extend(more),
                LinkRuns::Unavailable(_) => {}
            }
            LinkRuns::Measured(results)
        }
        other => other,
    }
}

/// One narrow-link invocation with `args` before `cases`.
fn narrow_link_run(
    quick: bool,
    args: &[&str],
    cases: &[LinkCase],
    notes: &mut Vec<String>,
) -> LinkRuns {
    let exe = target_dir().join("release/narrow-link");
    let mut cmd = Command::new(&exe);
    cmd.arg(target_dir().join("release/framewire"));
    if quick {
        cmd.arg("--quick");
    }
    cmd.args(args);
    cmd.args(cases.iter().map(|c| c.arg()));
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    match cmd.stderr(Stdio::inherit()).output() {
        Ok(o) => {
            if !o.status.success() {
                notes.push(format!("narrow-link failed ({})", o.status));
            }
            link_runs(&String::from_utf8_lossy(&o.stdout), notes)
        }
        Err(e) => {
            notes.push(format!("cannot run {}: {e}", exe.display()));
            LinkRuns::Measured(Vec::new())
        }
    }
}

/// Narrow-link's output, one JSON object a line: `{"unavailable": REASON}` where netbed cannot
/// make namespaces, else one object per case; a case that failed is noted.
pub(crate) fn link_runs(stdout: &str, notes: &mut Vec<String>) -> LinkRuns {
    let mut results = Vec::new();
    for v in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if let Some(why) = v.get("unavailable") {
            let why = why.as_str().unwrap_or("no reason given");
            return LinkRuns::Unavailable(why.to_string());
        }
        if let Some(e) = v.get("error") {
            notes.push(format!(
                "narrow-link case {} failed: {}",
                v["case"].as_str().unwrap_or("?"),
                e.as_str().unwrap_or_default()
            ));
        }
        results.push(v);
    }
    LinkRuns::Measured(results)
}

/// The criterion benches the run measures: (package, bench target, the group its ids start with).
/// One cargo invocation runs them all.
pub(crate) const BENCHES: [(&str, &str, &str); 5] = [
    ("framewire-wire", "framing", "framing"),
    ("framewire-capture", "resize", "resize"),
    ("framewire-codec", "codecs", "codec"),
    ("framewire-bench-harness", "loopback", "loopback"),
    ("framewire-display", "render", RENDER_GROUP),
];

/// The renderer's group; without a GPU adapter its bench measures nothing.
pub(crate) const RENDER_GROUP: &str = "render";

/// The filter of the second run of the codecs bench, with `--features turbojpeg`: the ids of the
/// libjpeg-turbo encoder.
pub(crate) const TURBO_FILTER: &str = "encode/jpeg-turbo/";

/// One `framewire serve` configuration the pipeline rows measure.
pub(crate) struct PipelineCase {
    pub(crate) label: &'static str,
    pub(crate) codec: &'static str,
    pub(crate) flags: &'static [&'static str],
    /// Measured only where the turbojpeg feature is built.
    pub(crate) turbo: bool,
    /// Served from a Y4M file of this size (written under the target folder, looped) instead of
    /// the test pattern.
    pub(crate) y4m: Option<(u32, u32)>,
}

pub(crate) const PIPELINE: [PipelineCase; 6] = [
    // The same over TLS (serve --tls, the sink pinning its certificate).
    PipelineCase {
        label: "jpeg 640x480->320 over TLS",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "rust",
            "--tls",
        ],
        codec: "jpeg",
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg 640x480->320",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "rust",
        ],
        codec: "jpeg",
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg 640x480",
        codec: "jpeg",
        flags: &["--size", "640x480", "--jpeg-encoder", "rust"],
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "jpeg-turbo 640x480->320",
        flags: &[
            "--size",
            "640x480",
            "--width",
            "320",
            "--jpeg-encoder",
            "turbojpeg",
        ],
        codec: "jpeg",
        turbo: true,
        y4m: None,
    },
    // Reading a file is never the bottleneck: a raw Y4M file beside the test pattern.
    PipelineCase {
        label: "raw 1280x720 test pattern",
        codec: "raw",
        flags: &["--size", "1280x720"],
        turbo: false,
        y4m: None,
    },
    PipelineCase {
        label: "raw 1280x720 y4m file",
        codec: "raw",
        flags: &[],
        turbo: false,
        y4m: Some((1280, 720)),
    },
];

/// Every pipeline case runs in each mode: (mode, its extra flags); the default thread count is
/// "threads".
pub(crate) const PIPELINE_MODES: [(&str, &[&str]); 2] =
    [("single", &["--threads", "1"]), ("threads", &[])];
