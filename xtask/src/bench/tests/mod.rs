//! The summary built from measurements made up from the table: ratios, targets, missing figures,
//! what a machine may lack, and that every id in the table is one a run produces.

use super::*;

mod links;

pub(crate) fn crit_results(entries: &[(&str, f64, Option<u64>)]) -> BTreeMap<String, Measured> {
    entries
        .iter()
        .map(|&(id, ns, bytes)| (id.to_string(), Measured { ns, bytes }))
        .collect()
}

/// OpenCV's or the pipeline's figures by key.
pub(crate) fn figures(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
    entries.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

pub(crate) fn row<'a>(rows: &'a [Row], case: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.case == case)
        .unwrap_or_else(|| panic!("no row {case:?}"))
}

/// A run that measured every figure `table` names, on a machine with all it needs
/// (libjpeg-turbo built, a GPU adapter, OpenCV set up): criterion 1000 ns and 1000 bytes per
/// iteration, everything else 1.
pub(crate) fn made_up_run(table: &[RowSpec]) -> Measurements {
    let mut m = Measurements {
        crit: BTreeMap::new(),
        opencv: Some(BTreeMap::new()),
        pipeline: BTreeMap::new(),
        viewers: Vec::new(),
        turbo: true,
        link: LinkRuns::Measured(Vec::new()),
        browser: Ok(json!({})),
        h264: Ok(json!({})),
        media_server: Ok(json!({})),
        browser_link: Ok(json!({})),
        python: Ok(json!({})),
    };
    let bench = Measured {
        ns: 1000.0,
        bytes: Some(1000),
    };
    for key in table.iter().flat_map(RowSpec::keys) {
        let cv = m.opencv.as_mut().expect("OpenCV set up");
        match key {
            Key::Crit(id) => {
                m.crit.insert(id.into(), bench);
            }
            Key::CritSameBytes(prefix) => {
                m.crit.insert(format!("{prefix}1000"), bench);
            }
            Key::OpenCv(k) => {
                cv.insert(k.into(), 1.0);
            }
            Key::OpenCvSum(ks) => cv.extend(ks.iter().map(|k| (k.to_string(), 1.0))),
            Key::Pipeline(label, mode) => {
                m.pipeline.insert(format!("{label} {mode}"), 1.0);
            }
            Key::Viewers(size, mode, field) => {
                let at = match m.viewers_result(size, mode) {
                    Some(_) => m
                        .viewers
                        .iter()
                        .position(|v| v["size"] == size && v["mode"] == mode),
                    None => {
                        m.viewers.push(json!({ "size": size, "mode": mode }));
                        Some(m.viewers.len() - 1)
                    }
                };
                m.viewers[at.expect("just found or added")][field] = json!(1.0);
            }
            Key::Link(case, figure) => {
                let LinkRuns::Measured(results) = &mut m.link else {
                    unreachable!("measured above");
                };
                let name = case.arg();
                let codec = if case.h264 { "h264" } else { "jpeg" };
                let at = match results
                    .iter()
                    .position(|r| r["case"] == name && r["codec"] == codec)
                {
                    Some(at) => at,
                    None => {
                        results.push(json!({
                            "case": name,
                            "codec": codec,
                            "rung": "640x480@80",
                            "rung_changes": 0,
                            "rate_kbit": 1000,
                            "settled_ms": 0.0,
                        }));
                        results.len() - 1
                    }
                };
                results[at][figure.field()] = json!(1.0);
            }
            Key::Browser(field) => {
                if let Ok(v) = &mut m.browser {
                    v[field] = json!(1.0);
                }
            }
            Key::H264(pointer) => {
                if let Ok(mut v) = m.h264.as_mut() {
                    for part in pointer.split('/').skip(1) {
                        v = &mut v[part];
                    }
                    *v = json!(1.0);
                }
            }
            Key::BrowserLink(pointer) => {
                if let Ok(v) = m.browser_link.as_mut() {
                    v[&pointer[1..]] = json!(1.0);
                }
            }
            Key::Python(pointer) => {
                if let Ok(mut v) = m.python.as_mut() {
                    for part in pointer.split('/').skip(1) {
                        v = &mut v[part];
                    }
                    *v = json!(1.0);
                }
            }
            Key::MediaServer(pointer) => {
                if let Ok(mut v) = m.media_server.as_mut() {
                    for part in pointer.split('/').skip(1) {
                        v = &mut v[part];
                    }
                    *v = json!(1.0);
                }
            }
        }
    }
    m
}

/// The one-line error `build_rows` fails with.
pub(crate) fn error(m: &Measurements) -> String {
    match build_rows(table(), m, &mut Vec::new()) {
        Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
pub(crate) fn each_row_divides_by_its_own_baseline_and_says_whether_it_meets_its_target() {
    let mut m = made_up_run(table());
    // No GPU adapter on this machine.
    m.crit.retain(|id, _| !id.starts_with("render/"));
    m.crit.extend(crit_results(&[
        ("framing/reader/jpeg-320x240", 109.0, Some(14_032)),
        ("framing/memcpy/jpeg-320x240", 100.0, Some(14_032)),
        ("framing/memcpy-then-read/jpeg-320x240", 107.0, Some(14_032)),
        ("framing/reader/jpeg-640x480", 104.0, Some(40_032)),
        ("framing/memcpy/jpeg-640x480", 100.0, Some(40_032)),
        ("resize/area/1920x1080-320x180", 0.4e6, None),
        ("codec/decode/jpeg/320x240", 0.3e6, None),
        ("loopback/framewire/raw/1280x720", 1e6, Some(2_764_832)),
        ("loopback/tcp/2764832", 0.9e6, Some(2_764_832)),
    ]));
    m.opencv.as_mut().expect("OpenCV set up").extend(figures(&[
        ("resize_area:320x180 1920x1080", 1.0),
        ("jpeg_decode:80 320x240", 0.25),
        ("jpeg_encode:80 320x240", 0.25),
        ("resize_area:320x240 640x480", 0.15),
    ]));
    m.pipeline.extend(figures(&[
        ("jpeg 640x480->320 threads", 3400.0),
        ("jpeg 640x480->320 single", 2000.0),
    ]));
    let mut notes = Vec::new();
    let rows = build_rows(table(), &m, &mut notes).expect("every row measured");

    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    let r = row(&rows, "framing reader jpeg-320x240, 64 KiB reads");
    assert!(close(r.ratio, 1.09) && r.meets() == Some(false));
    let r = row(
        &rows,
        "framing reader jpeg-320x240, vs copy + one header read",
    );
    assert!(
        close(r.ratio, 109.0 / 107.0) && r.meets().is_none(),
        "no target"
    );
    let r = row(&rows, "framing reader jpeg-640x480, 64 KiB reads");
    assert!(close(r.ratio, 1.04) && r.meets() == Some(true));
    // Resize 1920x1080 area: at least 2x OpenCV, so at most 0.5 of its time.
    let r = row(&rows, "resize area 1920x1080->320x180");
    assert!(close(r.ratio, 0.4) && r.target_text() == "<= 0.5" && r.meets() == Some(true));
    let r = row(&rows, "jpeg decode 320x240 (framewire, pure Rust)");
    assert!(close(r.ratio, 1.2) && r.meets() == Some(true), "target 1.3");
    // Throughput rows: higher is better, so the ratio is ours over theirs in MB/s.
    let r = row(&rows, "loopback raw 1280x720 end to end");
    assert!(close(r.ratio, 0.9) && r.target_text() == ">= 0.8" && r.meets() == Some(true));
    let r = row(&rows, "serve pipeline jpeg 640x480->320, threaded");
    assert!(close(r.ratio, 1.7) && r.meets() == Some(true), "target 1.6");
    let r = row(
        &rows,
        "serve pipeline jpeg 640x480->320, threaded vs OpenCV",
    );
    assert!(close(r.ratio, 3400.0 / 4000.0) && r.meets() == Some(false));
    let r = row(
        &rows,
        "serve pipeline jpeg 640x480->320, threaded vs OpenCV resize + encode",
    );
    assert!(close(r.ratio, 3400.0 / (1e3 / 0.4)) && r.meets().is_none());
    // What this machine cannot measure (no GPU adapter) has no row, and the notes say why.
    // (What was not measured for any other reason fails the summary: see the tests below.)
    assert!(!rows.iter().any(|r| r.case.starts_with("render")));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("renderer fps not measured"))
    );
}

#[test]
pub(crate) fn without_opencv_the_ratio_and_meets_are_empty_and_the_baseline_says_so() {
    let mut m = made_up_run(table());
    m.opencv = None;
    m.crit.extend(crit_results(&[(
        "resize/area/640x480-320x240",
        0.1e6,
        None,
    )]));
    let rows = build_rows(table(), &m, &mut Vec::new()).expect("OpenCV may be missing");
    let r = row(&rows, "resize area 640x480->320x240");
    assert_eq!(r.baseline, "OpenCV INTER_AREA: not measured");
    let j = r.to_json();
    assert_eq!((&j["ratio"], &j["meets"]), (&Value::Null, &Value::Null));
    assert_eq!(j["target"], "<= 1");
}

#[test]
pub(crate) fn summary_rows_carry_the_fields_the_issue_names_and_markdown_flags_misses() {
    let r = Row::new("framing reader x", 1.09, "us")
        .against("memcpy", Some(1.0))
        .target(Cmp::AtMost, 1.05);
    let j = r.to_json();
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "case", "value", "unit", "baseline", "ratio", "target", "meets",
    ] {
        assert!(keys.contains(&key), "{key} missing from {j}");
    }
    assert_eq!(j["meets"], false);
    assert_eq!(j["baseline"], "memcpy: 1.00 us");
    let md = markdown(&[r], &["a note".into()], true, 1.0, 2.0);
    assert!(md.starts_with("framewire bench --quick: 1 rows"), "{md}");
    assert!(
        md.contains("| framing reader x | 1.09 | us | memcpy: 1.00 us | 1.09 | <= 1.05 | **no** |"),
        "{md}"
    );
    assert!(md.contains("- a note"), "{md}");
}

#[test]
pub(crate) fn criterion_results_are_read_from_this_runs_files_only() {
    let dir = std::env::temp_dir().join(format!("framewire-xtask-crit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let write = |id: &str, median: f64, bytes: Option<u64>| {
        let new = dir.join(id).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let throughput = bytes.map_or(Value::Null, |b| json!({ "Bytes": b }));
        let bench = json!({ "full_id": id, "throughput": throughput });
        let est = json!({ "median": { "point_estimate": median } });
        std::fs::write(new.join("benchmark.json"), bench.to_string()).unwrap();
        std::fs::write(new.join("estimates.json"), est.to_string()).unwrap();
    };
    write("framing/old", 5.0, None);
    // File times have coarse steps on some file systems: start the run well after.
    let since = SystemTime::now() + std::time::Duration::from_secs(3600);
    let got = criterion_results(&dir, since);
    assert!(
        got.is_empty(),
        "files older than the run are not this run's"
    );
    write("framing/reader/jpeg-320x240", 123.5, Some(14_032));
    let got = criterion_results(&dir, SystemTime::UNIX_EPOCH);
    let m = got["framing/reader/jpeg-320x240"];
    assert_eq!((m.ns, m.bytes), (123.5, Some(14_032)));
    assert_eq!(got.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
pub(crate) fn a_run_with_every_figure_the_table_names_has_every_row_in_the_tables_order() {
    let mut notes = Vec::new();
    let rows = build_rows(table(), &made_up_run(table()), &mut notes).expect("every row measured");
    let cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    let table: Vec<&str> = table().iter().map(|r| r.case).collect();
    assert_eq!(cases, table);
    for r in &rows {
        assert!(!r.baseline.ends_with("not measured"), "{}", r.case);
        assert_eq!(r.ratio.is_some(), !r.baseline.is_empty(), "{}", r.case);
    }
    assert!(notes.is_empty(), "{notes:?}");
    // Rows are found by their case (here and by whoever reads summary.json).
    let mut unique = table.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), table.len(), "two rows share a case");
}

#[test]
pub(crate) fn every_id_in_the_table_is_one_that_a_run_produces() {
    let groups: Vec<&str> = BENCHES.iter().map(|&(_, _, group)| group).collect();
    // What opencv_micro.py and viewers-fed print.
    let opencv_ops = ["resize_area", "resize_linear", "jpeg_encode", "jpeg_decode"];
    let viewers_sizes = ["320x240", "640x480"];
    let viewers_modes = ["once", "per-viewer", "http", "websocket"];
    let viewers_fields = ["max_viewers", "server_cpu_per_viewer"];
    for spec in table() {
        let case = spec.case;
        let turbo = spec.may_lack == MayLack::WithoutTurbo;
        for key in spec.keys() {
            match key {
                Key::Crit(id) | Key::CritSameBytes(id) => {
                    let group = id.split('/').next().unwrap_or_default();
                    assert!(groups.contains(&group), "{case}: {id} is no bench's");
                    // Only the turbojpeg run gives libjpeg-turbo ids; only with a GPU
                    // adapter does the renderer give any.
                    assert!(!id.contains(TURBO_FILTER) || turbo, "{case}: {id}");
                    assert!(
                        group != RENDER_GROUP || spec.may_lack == MayLack::WithoutGpu,
                        "{case}: {id}"
                    );
                }
                Key::OpenCv(k) => assert!(
                    opencv_op(k)
                        .is_some_and(|(op, _)| opencv_ops
                            .contains(&op.split(':').next().unwrap_or_default())),
                    "{case}: OpenCV op {k:?}"
                ),
                Key::OpenCvSum(ks) => {
                    for k in ks {
                        assert!(opencv_op(k).is_some(), "{case}: OpenCV op {k:?}");
                    }
                }
                Key::Pipeline(label, mode) => {
                    let run = PIPELINE.iter().find(|c| c.label == label);
                    assert!(run.is_some_and(|c| c.turbo == turbo), "{case}: {label}");
                    assert!(PIPELINE_MODES.iter().any(|&(m, _)| m == mode), "{mode}");
                }
                Key::Viewers(size, mode, field) => assert!(
                    viewers_sizes.contains(&size)
                        && viewers_modes.contains(&mode)
                        && viewers_fields.contains(&field),
                    "{case}: viewers-fed {size} {mode} {field}"
                ),
                // Narrow-link runs the cases the table names (`link_cases`); what each
                // gives is in its own test below.
                // The refusing case: each sender's firewall refuses a share of its datagrams.
                Key::Link(c, figure) if c.refused => assert!(
                    c.share == 0
                        && c.udp
                        && case.contains(&format!("refused sends {}% each way", c.loss))
                        && case.contains(if c.adapt {
                            "adaptation on"
                        } else {
                            "adaptation off"
                        })
                        && matches!(figure, LinkFigure::Fps | LinkFigure::Source),
                    "{case}: narrow-link {} {figure:?}",
                    c.arg()
                ),
                // The lossy case: a link without a rate limit, named by its loss.
                Key::Link(c, figure) if c.loss > 0 => assert!(
                    c.share == 0
                        && !c.adapt
                        && case.contains(&format!(
                            "lossy link {} ms RTT + {}% loss, udp",
                            c.rtt_ms, c.loss
                        ))
                        && !matches!(figure, LinkFigure::Settled | LinkFigure::Warmup),
                    "{case}: narrow-link {} {figure:?}",
                    c.arg()
                ),
                Key::Link(c, figure) => assert!(
                    (1..=100).contains(&c.share)
                        && case.contains(&format!("narrow link {}%", c.share))
                        && case.contains(if c.adapt {
                            "adaptation on"
                        } else {
                            "adaptation off"
                        })
                        && (c.rtt_ms == 0 || case.contains(&format!("{} ms RTT", c.rtt_ms)))
                        && (c.adapt || !matches!(figure, LinkFigure::Settled | LinkFigure::Warmup)),
                    "{case}: narrow-link {} {figure:?}",
                    c.arg()
                ),
                // What h264-vs-x264 prints.
                Key::H264(pointer) => {
                    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
                    let known = match parts[..] {
                        [field] => field.ends_with("_bytes"),
                        ["speed", size, field] => {
                            ["640x480", "1280x720"].contains(&size) && field.ends_with("_fps")
                        }
                        ["latency", codec, q] => {
                            ["jpeg", "h264"].contains(&codec) && ["p50_ms", "p99_ms"].contains(&q)
                        }
                        ["browser", field] => ["websocket_mbit_s", "mjpeg_mbit_s"].contains(&field),
                        _ => false,
                    };
                    assert!(known, "{case}: h264-vs-x264 {pointer}");
                }
                // What media-server prints: per kind and reader count, and the latencies.
                Key::MediaServer(pointer) => {
                    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
                    let known = match parts[..] {
                        ["latency", q] | ["latency", "view", q] => {
                            ["p50_ms", "p99_ms"].contains(&q)
                        }
                        [kind, n, field] => {
                            ["rtmp", "hls"].contains(&kind)
                                && ["1", "10", "50"].contains(&n)
                                && ["cpu_core", "mbit_per_s"].contains(&field)
                        }
                        _ => false,
                    };
                    assert!(known, "{case}: media-server {pointer}");
                }
                // What python/bench/against_imagezmq.py prints: per size, and the restart.
                Key::Python(pointer) => {
                    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
                    let known = match parts[..] {
                        ["restart", field] => ["framewire_ms", "imagezmq_ms"].contains(&field),
                        [size, field] => {
                            ["640x480", "1280x720"].contains(&size)
                                && (field == "socket_fps"
                                    || ["framewire", "imagezmq"].iter().any(|who| {
                                        ["raw_fps", "jpeg_fps", "p50_ms", "p99_ms"]
                                            .iter()
                                            .any(|f| field == format!("{who}_{f}"))
                                    }))
                        }
                        _ => false,
                    };
                    assert!(known, "{case}: against_imagezmq.py {pointer}");
                }
                // What browser-link prints.
                Key::BrowserLink(pointer) => assert!(
                    ["/fps", "/p50_ms", "/own_p50_ms", "/bound_ms"].contains(&pointer),
                    "{case}: browser-link {pointer}"
                ),
                // What browser-latency prints.
                Key::Browser(field) => assert!(
                    ["page", "img", "img_late", "page_own", "webcodecs"]
                        .iter()
                        .any(|case| field == format!("{case}_p50_ms")),
                    "{case}: browser-latency {field}"
                ),
            }
        }
        // Each excuse names what this machine can lack for that kind of figure.
        let excuses = |key: Key, may_lack: MayLack| match may_lack {
            MayLack::Never => true,
            MayLack::WithoutOpenCv => matches!(key, Key::OpenCv(_) | Key::OpenCvSum(_)),
            MayLack::WhenNull => matches!(key, Key::Viewers(..) | Key::Python(_)),
            MayLack::WithoutTurbo => matches!(key, Key::Crit(_) | Key::Pipeline(..)),
            MayLack::WithoutGpu => matches!(key, Key::Crit(_)),
            MayLack::WithoutRoot => matches!(key, Key::Link(..)),
            MayLack::WithoutBrowser => matches!(key, Key::Browser(_)),
            MayLack::WithoutH264 => {
                matches!(key, Key::H264(_)) || matches!(key, Key::Link(c, _) if c.h264)
            }
            MayLack::WithoutMediaServer => matches!(key, Key::MediaServer(_)),
            MayLack::WithoutBrowserLink => matches!(key, Key::BrowserLink(_)),
            MayLack::WithoutPython => matches!(key, Key::Python(_)),
        };
        assert!(excuses(spec.value, spec.may_lack), "{case}");
        if let Some(b) = spec.baseline {
            let row_only = matches!(b.may_lack, MayLack::WithoutTurbo | MayLack::WithoutGpu);
            assert!(excuses(b.key, b.may_lack) && !row_only, "{case}: baseline");
        }
    }
}

#[test]
pub(crate) fn a_missing_bench_result_fails_the_summary_naming_the_row_and_the_id() {
    // A renamed or failed bench: the row is an error, not a row left out.
    let mut m = made_up_run(table());
    m.crit.remove("resize/bilinear/640x480-320x240");
    assert_eq!(
        error(&m),
        "summary row \"resize bilinear 640x480->320x240\": no result from criterion bench \
         resize/bilinear/640x480-320x240; no summary written"
    );
    // A missing baseline too; the first row lacking it is named, the others counted.
    let mut m = made_up_run(table());
    m.crit.remove("codec/memcpy/320x240");
    assert_eq!(
        error(&m),
        "summary row \"raw encode 320x240\": its baseline (memcpy of the frame) has no \
         result from criterion bench codec/memcpy/320x240 (and 3 more rows lack results); \
         no summary written"
    );
    // Loopback's plain-TCP floor is named by the message size.
    let mut m = made_up_run(table());
    m.crit.extend(crit_results(&[(
        "loopback/framewire/raw/1280x720",
        1e6,
        Some(2_764_832),
    )]));
    let e = error(&m);
    assert!(
        e.contains("\"loopback raw 1280x720 end to end\"")
            && e.contains("criterion bench loopback/tcp/2764832"),
        "{e}"
    );
    // MB/s needs the bytes per iteration the bench declares.
    let mut m = made_up_run(table());
    m.crit.extend(crit_results(&[(
        "loopback/framewire/jpeg/640x480",
        1e6,
        None,
    )]));
    let e = error(&m);
    assert!(
        e.contains(
            "criterion bench loopback/framewire/jpeg/640x480 declares no bytes per iteration"
        ),
        "{e}"
    );
    // The serve pipeline, viewers-fed, and OpenCV where it was set up.
    let mut m = made_up_run(table());
    m.pipeline.remove("jpeg 640x480 single");
    let e = error(&m);
    assert!(
        e.contains("\"serve pipeline jpeg 640x480, threaded\"")
            && e.contains("serve pipeline run \"jpeg 640x480 single\""),
        "{e}"
    );
    let mut m = made_up_run(table());
    m.viewers.clear();
    let e = error(&m);
    assert!(
        e.contains("\"viewers fed, jpeg 320x240 30 fps, all >= 29 fps, encode once\"")
            && e.contains("viewers-fed result 320x240 once"),
        "{e}"
    );
    let mut m = made_up_run(table());
    if let Some(cv) = m.opencv.as_mut() {
        cv.remove("jpeg_decode:80 1920x1080");
    }
    let e = error(&m);
    assert!(
        e.contains("\"jpeg decode 1920x1080 (framewire, pure Rust)\"")
            && e.contains("OpenCV op \"jpeg_decode:80 1920x1080\""),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
pub(crate) fn rows_are_left_out_only_for_what_the_table_lets_this_machine_lack() {
    // No cmake or nasm: no libjpeg-turbo, so its rows are left out.
    let mut m = made_up_run(table());
    m.turbo = false;
    m.crit.retain(|id, _| !id.contains(TURBO_FILTER));
    m.pipeline
        .retain(|label, _| !label.starts_with("jpeg-turbo"));
    let rows = build_rows(table(), &m, &mut Vec::new()).expect("turbo may be missing");
    let turbo_rows = table()
        .iter()
        .filter(|r| r.may_lack == MayLack::WithoutTurbo)
        .count();
    assert_eq!(rows.len(), table().len() - turbo_rows);
    assert!(!rows.iter().any(|r| r.case.contains("turbo")));
    // Where it was built, its rows are required.
    m.turbo = true;
    let e = error(&m);
    assert!(
        e.contains("(libjpeg-turbo, --features turbojpeg)")
            && e.contains("criterion bench codec/encode/jpeg-turbo/320x240"),
        "{e}"
    );

    // The renderer measured something, so there is an adapter: every render row is required.
    let mut m = made_up_run(table());
    m.crit.remove("render/640x480/rgba8");
    let e = error(&m);
    assert!(
        e.contains("\"render 640x480/rgba8 (upload+draw+read back)\""),
        "{e}"
    );

    // viewers-fed's null (no viewer count kept 29 fps): no CPU per viewer, and a zero
    // viewer count is no baseline.
    let mut m = made_up_run(table());
    for v in m.viewers.iter_mut().filter(|v| v["size"] == "640x480") {
        v["max_viewers"] = json!(0);
        v["server_cpu_per_viewer"] = Value::Null;
    }
    let rows = build_rows(table(), &m, &mut Vec::new()).expect("nulls are allowed there");
    assert!(
        !rows
            .iter()
            .any(|r| r.case.starts_with("server CPU per viewer, jpeg 640x480"))
    );
    let r = row(
        &rows,
        "viewers fed, jpeg 640x480 30 fps, all >= 29 fps, encode once",
    );
    assert_eq!(r.baseline, "one encode per viewer: not measured");
    // A null viewer count is not allowed.
    m.viewers[0]["max_viewers"] = Value::Null;
    let e = error(&m);
    assert!(e.contains("viewers-fed max_viewers of 320x240 once"), "{e}");
}

#[test]
fn a_full_run_writes_its_table_between_the_figure_lines_and_nowhere_else() {
    let doc = format!(
        "# Title\n\nbefore\n\n{FIGURES_BEGIN} ... -->\nold table\n{FIGURES_END}\n\nafter\n"
    );
    let new = with_figures(&doc, "new table\n").expect("both lines are there");
    assert_eq!(
        new,
        format!(
            "# Title\n\nbefore\n\n{FIGURES_BEGIN} ... -->\nnew table\n{FIGURES_END}\n\nafter\n"
        )
    );
    // Written again, it reads the same: nothing accumulates.
    assert_eq!(with_figures(&new, "new table\n").unwrap(), new);
    let e = with_figures("no lines here", "t").unwrap_err().to_string();
    assert!(e.contains("put them back"), "{e}");
    // The docs themselves carry both lines.
    let docs = std::fs::read_to_string(crate::root().join("docs/performance.md")).unwrap();
    assert!(with_figures(&docs, "t").is_ok());
}
