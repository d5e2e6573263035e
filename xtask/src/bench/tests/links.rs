//! The narrow-link and lossy-link rows, the link runs, and OpenCV's jobs, from made-up runs.

use super::*;

/// The narrow-link results of `m` (a made-up run measures them all).
fn link_results(m: &mut Measurements) -> &mut Vec<Value> {
    match &mut m.link {
        LinkRuns::Measured(results) => results,
        LinkRuns::Unavailable(_) => panic!("made-up runs have namespaces"),
    }
}

#[test]
fn narrow_link_rows_give_latency_in_frame_times_and_fps_as_a_share() {
    let mut m = made_up_run(table());
    let results = link_results(&mut m);
    results.retain(|r| r["case"] != "off:30:0" && r["case"] != "on:30:0");
    // What narrow-link prints (fields it has and the table does not read left out).
    results.push(json!({
        "case": "off:30:0", "adapt": "off", "share_percent": 30, "rtt_ms": 0,
        "rate_kbit": 1440, "frame_ms": 40.0, "capacity_fps": 25.0, "source_fps": 30.0,
        "fps": 23.75, "p50_ms": 50.0, "p99_ms": 200.0, "rung": "640x480@80",
        "rung_changes": 0, "moves": 0, "settled_ms": 0.0, "warmup_ms": 0.0,
    }));
    results.push(json!({
        "case": "on:30:0", "adapt": "on", "share_percent": 30, "rtt_ms": 0,
        "rate_kbit": 1440, "frame_ms": 8.0, "capacity_fps": 125.0, "source_fps": 30.0,
        "fps": 24.0, "p50_ms": 12.0, "p99_ms": 30.0, "rung": "320x240@50",
        "rung_changes": 2, "moves": 2, "settled_ms": 1400.0, "warmup_ms": 3000.0,
    }));
    let mut notes = Vec::new();
    let rows = build_rows(table(), &m, &mut notes).expect("every row measured");
    assert!(notes.is_empty(), "{notes:?}");
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);

    // Adaptation off: latency over one frame-time, fps over what the link carries.
    let r = row(&rows, "narrow link 30%, adaptation off: p50 latency");
    assert_eq!((r.value, r.unit), (Some(50.0), "ms"));
    assert_eq!(
        r.baseline,
        "one frame-time (bytes per frame received / link rate): 40.0 ms"
    );
    assert!(close(r.ratio, 1.25) && r.target_text() == "<= 2" && r.meets() == Some(true));
    assert_eq!(
        r.note,
        "ended on 640x480@80 (0 rung changes), link 1440 kbit/s"
    );
    let r = row(&rows, "narrow link 30%, adaptation off: p99 latency");
    assert!(close(r.ratio, 5.0) && r.target_text() == "<= 3" && r.meets() == Some(false));
    let r = row(
        &rows,
        "narrow link 30%, adaptation off: fps of what the link carries",
    );
    assert_eq!(
        r.baseline,
        "what the link carries of frames that size: 25.0 fps"
    );
    assert!(close(r.ratio, 0.95) && r.target_text() == ">= 0.9" && r.meets() == Some(true));

    // Adaptation on: the frame-time of the rung received; fps over the source's 30.
    let case = "narrow link 30%, adaptation on, after 3 s: p50 latency";
    let r = row(&rows, case);
    assert!(close(r.ratio, 1.5) && r.meets() == Some(true));
    assert_eq!(
        r.note,
        "ended on 320x240@50 (2 rung changes), link 1440 kbit/s, last move 1.4 s after the \
         viewer started"
    );
    let r = row(
        &rows,
        "narrow link 30%, adaptation on, after 3 s: p99 latency",
    );
    assert!(close(r.ratio, 3.75) && r.meets() == Some(false));
    let fps_case = "narrow link 30%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)";
    let r = row(&rows, fps_case);
    assert_eq!(r.baseline, "the source's 30 fps: 30.0 fps");
    assert!(close(r.ratio, 0.8) && r.target_text() == ">= 0.833" && r.meets() == Some(false));
    let r = row(
        &rows,
        "narrow link 30%, adaptation on: last move along the ladder",
    );
    assert_eq!(r.baseline, "the viewer's 3 s warm-up: 3000 ms");
    assert!(close(r.ratio, 1400.0 / 3000.0) && r.meets() == Some(true));
    // 25 fps exactly meets the target.
    let results = link_results(&mut m);
    let on = results.iter_mut().find(|r| r["case"] == "on:30:0").unwrap();
    on["fps"] = json!(25.0);
    let rows = build_rows(table(), &m, &mut notes).expect("every row measured");
    assert_eq!(row(&rows, fps_case).meets(), Some(true));
    let md = markdown(&rows, &[], false, 1.0, 2.0);
    assert!(
        md.contains(&format!(
            "| {case} (ended on 320x240@50 (2 rung changes), link 1440 kbit/s, last move 1.4 \
             s after the viewer started) | 12.0 | ms | one frame-time (bytes per frame \
             received / link rate): 8.00 ms | 1.50 | <= 2 | yes |"
        )),
        "{md}"
    );
}

#[test]
fn without_root_the_narrow_link_rows_stay_without_values_saying_they_need_root() {
    let mut m = made_up_run(table());
    let mut notes = Vec::new();
    let out = r#"{"unavailable":"not root: needs CAP_NET_ADMIN and CAP_SYS_ADMIN"}"#;
    m.link = link_runs(&format!("{out}\n"), &mut notes);
    let rows = build_rows(table(), &m, &mut notes).expect("namespaces may be missing");
    // Every row is there but H.264's through links, left out; the narrow-link ones have no
    // value, ratio or verdict.
    let h264_link_rows = table()
        .iter()
        .filter(|s| matches!(s.value, Key::Link(c, _) if c.h264))
        .count();
    assert_eq!(h264_link_rows, 8);
    assert_eq!(rows.len(), table().len() - h264_link_rows);
    let link_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            ["narrow link", "lossy link", "refused sends"]
                .iter()
                .any(|k| r.case.starts_with(k))
        })
        .collect();
    let needs_root = table()
        .iter()
        .filter(|s| s.may_lack == MayLack::WithoutRoot)
        .count();
    assert_eq!(link_rows.len(), needs_root);
    assert_eq!(
        needs_root, 26,
        "6 cases: 3 rows each, 4 with adaptation on; 2 rows of the lossy cases; 2 of the lossy \
         call; 2 of the refusing cases"
    );
    for r in link_rows {
        assert_eq!(r.note, "not measured: needs root", "{}", r.case);
        assert!(r.value.is_none() && r.ratio.is_none(), "{}", r.case);
        assert!(r.baseline.ends_with(": not measured"), "{}", r.case);
        assert!(
            !r.target_text().is_empty(),
            "{}: the target still shows",
            r.case
        );
    }
    let j = row(
        &rows,
        "narrow link 30%, adaptation on, after 3 s: fps of the source's 30 (>= 25 fps)",
    )
    .to_json();
    assert_eq!(
        (&j["value"], &j["ratio"], &j["meets"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(
        (&j["note"], &j["target"], &j["baseline"]),
        (
            &json!("not measured: needs root"),
            &json!(">= 0.833"),
            &json!("the source's 30 fps: not measured")
        )
    );
    let md = markdown(&rows, &notes, false, 1.0, 2.0);
    assert!(
        md.contains(
            "| narrow link 60%, adaptation off: p50 latency (not measured: needs root) |  | \
             ms | one frame-time (bytes per frame received / link rate): not measured |  | \
             <= 2 |  |"
        ),
        "{md}"
    );
    // The run's notes say what exactly is missing.
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("narrow-link rows not measured")
                && n.contains("not root: needs CAP_NET_ADMIN and CAP_SYS_ADMIN")),
        "{notes:?}"
    );
    // Other rows are measured as ever.
    assert!(row(&rows, "framing header encode").value.is_some());
}

#[test]
fn a_narrow_link_case_without_a_result_fails_the_summary_naming_the_row_and_why() {
    // A case that failed: narrow-link says why, the summary names the first row it lacks.
    let mut m = made_up_run(table());
    let out: String = link_results(&mut m)
        .iter()
        .map(|r| match (r["case"].as_str(), r["codec"].as_str()) {
            (Some("off:60:0"), Some("jpeg")) => {
                json!({"case": "off:60:0", "codec": "jpeg", "error": "view failed: connection refused"})
            }
            _ => r.clone(),
        })
        .map(|r| format!("{r}\n"))
        .collect();
    let mut notes = Vec::new();
    m.link = link_runs(&out, &mut notes);
    assert_eq!(
        notes,
        ["narrow-link case off:60:0 failed: view failed: connection refused"]
    );
    assert_eq!(
        error(&m),
        "summary row \"narrow link 60%, adaptation off: p50 latency\": no result from \
         narrow-link case off:60:0 (it failed: view failed: connection refused) (and 2 more \
         rows lack results); no summary written"
    );
    // narrow-link gave nothing (it could not run): with namespaces there, that is an error.
    m.link = link_runs("", &mut notes);
    let e = error(&m);
    assert!(
        e.contains("no result from narrow-link case off:60:0")
            && e.contains("(and 33 more rows lack results)"),
        "{e}"
    );
    // A figure missing from a case's result.
    let mut m = made_up_run(table());
    let results = link_results(&mut m);
    let on = results
        .iter_mut()
        .find(|r| r["case"] == "on:60:0" && r["codec"] == "jpeg")
        .unwrap();
    on.as_object_mut().unwrap().remove("source_fps");
    let e = error(&m);
    assert!(
        e.contains(
            "its baseline (the source's 30 fps) has no result from narrow-link \
             source_fps of case on:60:0"
        ),
        "{e}"
    );
}

#[test]
fn narrow_link_runs_each_case_the_table_names_once_in_its_order() {
    let (h264, cases): (Vec<LinkCase>, Vec<LinkCase>) =
        link_cases(table()).into_iter().partition(|c| c.h264);
    let h264: Vec<String> = h264.into_iter().map(LinkCase::arg).collect();
    assert_eq!(
        h264,
        ["off:60:0", "on:60:0", "off:0:0:udp:1", "off:0:100:udp:1"],
        "H.264's, run with --codec h264 --link-of jpeg"
    );
    let cases: Vec<String> = cases.into_iter().map(LinkCase::arg).collect();
    assert_eq!(
        cases,
        [
            "off:60:0",
            "off:30:0",
            "off:60:40",
            "off:30:40",
            "on:60:0",
            "on:30:0",
            "off:0:100:udp:1",
            "off:0:100:tcp:1",
            "off:0:100:udpchat:1",
            "off:0:0:udp:r1",
            "on:0:0:udp:r1"
        ]
    );
}

#[test]
fn opencv_runs_the_ops_the_table_names_smallest_input_first() {
    let jobs = opencv_jobs(table());
    assert_eq!(
        jobs,
        [
            ((320, 240), vec!["jpeg_encode:80", "jpeg_decode:80"]),
            (
                (640, 480),
                vec![
                    "resize_area:320x240",
                    "resize_linear:320x240",
                    "jpeg_encode:80",
                    "jpeg_decode:80"
                ]
            ),
            (
                (1280, 720),
                vec!["resize_area:320x180", "resize_linear:320x180"]
            ),
            (
                (1920, 1080),
                vec![
                    "resize_area:320x180",
                    "resize_linear:320x180",
                    "jpeg_encode:80",
                    "jpeg_decode:80"
                ]
            ),
        ]
    );
}
