//! The invariants ARCHITECTURE.md promises, checked: plugin crates depend on core and never on
//! each other (not even in dev or build dependencies), the test pattern depends on core alone,
//! heavy dependencies stay where they belong, and every Rust file says what it is for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One dependency of a package: the package it names and its section (`normal`, `dev` or `build`).
#[derive(Debug)]
struct Dep {
    name: String,
    section: String,
}

/// `cargo metadata` of the workspace: package name -> its dependencies, every section.
fn dependencies() -> BTreeMap<String, Vec<Dep>> {
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
                .map(|d| Dep {
                    name: d["name"].as_str().unwrap().to_string(),
                    section: d["kind"].as_str().unwrap_or("normal").to_string(),
                })
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// The names of `package`'s normal dependencies (what its library links).
fn normal<'a>(deps: &'a BTreeMap<String, Vec<Dep>>, package: &str) -> Vec<&'a str> {
    deps.get(package)
        .unwrap_or_else(|| panic!("{package} is not in the workspace"))
        .iter()
        .filter(|d| d.section == "normal")
        .map(|d| d.name.as_str())
        .collect()
}

/// `package`'s dependencies on framewire crates other than `allowed`, in any section, as
/// `name (section)`.
fn framewire_deps_except(
    deps: &BTreeMap<String, Vec<Dep>>,
    package: &str,
    allowed: &[&str],
) -> Vec<String> {
    deps.get(package)
        .unwrap_or_else(|| panic!("{package} is not in the workspace"))
        .iter()
        .filter(|d| d.name.starts_with("framewire") && !allowed.contains(&d.name.as_str()))
        .map(|d| format!("{} ({})", d.name, d.section))
        .collect()
}

const CORE: &str = "framewire-core";

/// The test pattern's crate: not a plugin, so any crate may depend on it, plugins included.
const PATTERN: &str = "framewire-pattern";

/// The file formats' crate (recordings, Y4M): not a plugin either, so the capture side (files as
/// sources) and the writers share one parser and one writer per format.
const FILE: &str = "framewire-file";

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
        let own = normal(&deps, plugin);
        assert!(own.contains(&CORE), "{plugin}: {own:?}");
        // Every section: a plugin that dev-depends on another one (for a test or a bench) is as
        // coupled to it as one that depends on it.
        let framewire = framewire_deps_except(&deps, plugin, &[CORE, PATTERN, FILE]);
        assert!(
            framewire.is_empty(),
            "{plugin} depends on {framewire:?}; only the binary, bench-harness and tests assemble \
             plugins (the test pattern is {PATTERN} and the file formats are {FILE}, which anyone \
             may use)"
        );
    }
    let core = normal(&deps, CORE);
    assert!(
        core.iter().all(|d| *d == "thiserror"),
        "core must stay almost dependency-free, has {core:?}"
    );
    let xtask = normal(&deps, "xtask");
    assert!(
        xtask.iter().all(|d| !d.starts_with("framewire")),
        "xtask depends on no workspace crate, has {xtask:?}"
    );
}

#[test]
fn the_test_pattern_depends_on_core_alone_and_stays_light() {
    let deps = dependencies();
    let framewire = framewire_deps_except(&deps, PATTERN, &[CORE]);
    assert!(
        framewire.is_empty(),
        "{PATTERN} depends on {framewire:?}; it may depend on {CORE} only, so that every crate \
         can use it"
    );
    // Every test and bench that draws the pattern links it: nothing heavy.
    let own = normal(&deps, PATTERN);
    assert!(
        own.iter().all(|d| [CORE, "tracing"].contains(d)),
        "{PATTERN} must stay light (framewire-core and tracing), has {own:?}"
    );
}

#[test]
fn the_file_formats_depend_on_core_alone_and_stay_light() {
    let deps = dependencies();
    let framewire = framewire_deps_except(&deps, FILE, &[CORE]);
    assert!(
        framewire.is_empty(),
        "{FILE} depends on {framewire:?}; it may depend on {CORE} only, so that a plugin can read \
         what another writes"
    );
    let own = normal(&deps, FILE);
    assert!(
        own.iter()
            .all(|d| [CORE, "thiserror", "crc32fast"].contains(d)),
        "{FILE} must stay light (framewire-core, thiserror, crc32fast), has {own:?}"
    );
}

#[test]
fn the_session_knows_only_core() {
    let deps = dependencies();
    let session = "framewire-session";
    // Its tests use doubles of their own: no plugin, in any section.
    let framewire = framewire_deps_except(&deps, session, &[CORE]);
    assert!(
        framewire.is_empty(),
        "{session} depends on {framewire:?}; the send and receive paths know only {CORE}'s \
         traits, and the binary hands them plugins"
    );
    let netbed = "framewire-netbed";
    let framewire = framewire_deps_except(&deps, netbed, &[]);
    assert!(
        framewire.is_empty(),
        "{netbed} depends on {framewire:?}; the network test bed depends on no framewire crate"
    );
}

#[test]
fn net_never_links_gpu_window_or_camera_crates() {
    let deps = dependencies();
    for forbidden in ["wgpu", "winit", "nokhwa"] {
        assert!(
            !normal(&deps, "framewire-net").contains(&forbidden),
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
