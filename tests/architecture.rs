//! The invariants ARCHITECTURE.md promises, checked: plugin crates depend on core and never on
//! each other, heavy dependencies stay where they belong, and every Rust file says what it is for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo metadata` of the workspace: package name -> names of its normal dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

const PLUGINS: [&str; 4] = [
    "framewire-capture",
    "framewire-codec",
    "framewire-net",
    "framewire-display",
];

#[test]
fn plugin_crates_depend_on_core_and_never_on_each_other() {
    let deps = dependencies();
    for plugin in PLUGINS {
        let own = deps
            .get(plugin)
            .unwrap_or_else(|| panic!("{plugin} is not in the workspace"));
        assert!(
            own.iter().any(|d| d == "framewire-core"),
            "{plugin}: {own:?}"
        );
        let framewire: Vec<_> = own
            .iter()
            // framewire-pattern (the test pattern) is no plugin: anyone may use it.
            .filter(|d| {
                d.starts_with("framewire")
                    && !["framewire-core", "framewire-pattern"].contains(&d.as_str())
            })
            .collect();
        assert!(
            framewire.is_empty(),
            "{plugin} depends on {framewire:?}; only the binary, bench-harness and tests assemble plugins"
        );
    }
    let core = &deps["framewire-core"];
    assert!(
        core.iter().all(|d| d == "thiserror"),
        "core must stay almost dependency-free, has {core:?}"
    );
    let xtask = &deps["xtask"];
    assert!(
        xtask.iter().all(|d| !d.starts_with("framewire")),
        "xtask depends on no workspace crate, has {xtask:?}"
    );
}

#[test]
fn net_never_links_gpu_window_or_camera_crates() {
    let deps = dependencies();
    for forbidden in ["wgpu", "winit", "nokhwa"] {
        assert!(
            !deps["framewire-net"].iter().any(|d| d == forbidden),
            "framewire-net depends on {forbidden}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git" | "snapshots") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_purpose_line() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "crates", "xtask"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 10);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line: {missing:?}"
    );
}
