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
        let framewire = framewire_deps_except(&deps, plugin, &[CORE, PATTERN, FILE, WIRE]);
        assert!(
            framewire.is_empty(),
            "{plugin} depends on {framewire:?}; only the binary, the kit, bench-harness and tests assemble \
             plugins (the test pattern is {PATTERN}, the file formats are {FILE} and the protocols are {WIRE}, which anyone \
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
fn the_kit_assembles_without_a_window() {
    let deps = dependencies();
    let kit = "framewire-kit";
    let display = framewire_deps_except(&deps, kit, &[])
        .into_iter()
        .filter(|d| d.starts_with("framewire-display"))
        .collect::<Vec<_>>();
    assert!(
        display.is_empty(),
        "{kit} depends on {display:?}; it puts sending and transports together, and a program \
         that shows frames brings its own window"
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

/// The sans-IO protocol crate: net's transports and the fuzz targets build on it.
const WIRE: &str = "framewire-wire";

/// What a file holds before its unit tests (`#[cfg(test)]` and everything after it).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

#[test]
fn the_wire_crate_has_no_sockets_threads_or_clock() {
    let deps = dependencies();
    let framewire = framewire_deps_except(&deps, WIRE, &[CORE]);
    assert!(
        framewire.is_empty(),
        "{WIRE} depends on {framewire:?}; the protocols depend on {CORE} alone"
    );
    let mut files = Vec::new();
    rust_files(&root().join("crates/wire/src"), &mut files);
    assert!(files.len() >= 7, "{files:?}");
    let forbidden = [
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "thread::spawn",
        "thread::sleep",
        "Instant::now",
        "SystemTime::now",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for word in forbidden {
            if without_tests(&text).contains(word) {
                found.push(format!("{} names {word}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{WIRE} is sans-IO: no sockets, no threads, and the time is passed in: {found:?}"
    );
}

/// What names a transport: its enum's variants, its module, its servers and connectors.
const TRANSPORT_WORDS: [&str; 10] = [
    "HubListener",
    "HubPusher",
    "Transport::",
    "framewire_net::udp",
    "Udp",
    "TcpConnector",
    "ChatListener",
    "ChatDialer",
    "Server::bind",
    "Fanout",
];

/// The Rust files under `dir` other than `except` that name a transport, and the word.
fn naming_a_transport(dir: &str, except: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    assert!(files.len() >= 2, "{files:?}");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with(except)) {
        let text = std::fs::read_to_string(file).unwrap();
        for word in TRANSPORT_WORDS.iter().filter(|w| text.contains(**w)) {
            found.push(format!("{} names {word}", file.display()));
        }
    }
    found
}

#[test]
fn only_assemble_names_a_transport_in_the_binary() {
    let found = naming_a_transport("src", "assemble.rs");
    assert!(
        found.is_empty(),
        "src/assemble.rs turns flags into transports; the subcommands see publishers, \
         connectors and call sides: {found:?}"
    );
}

#[test]
fn only_one_file_of_the_kit_names_a_transport() {
    let found = naming_a_transport("crates/kit/src", "transport.rs");
    assert!(
        found.is_empty(),
        "crates/kit/src/transport.rs makes each transport's parts; the rest of the kit sees \
         publishers: {found:?}"
    );
}

#[test]
fn the_fuzz_targets_depend_on_the_wire_crate_not_on_net() {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    assert!(manifest.contains("framewire-wire = "), "{manifest}");
    assert!(
        !manifest.contains("framewire-net"),
        "the fuzz targets drive the sans-IO state machines of {WIRE}, not net's sockets"
    );
}

/// The top-level modules of the crate whose sources are in `src`, each with the top-level
/// modules its code (tests left out) names through `crate::`.
fn module_imports(src: &Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |file: &Path| -> Option<String> {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()?
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let name = first.trim_end_matches(".rs").to_string();
        (!matches!(name.as_str(), "lib" | "main")).then_some(name)
    };
    let modules: std::collections::BTreeSet<String> =
        files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = without_tests(&text);
        let named = graph.entry(from.clone()).or_default();
        // `crate::a::..`, and each item of `use crate::{a::.., b}`.
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let heads: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find("};").unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|item| item.trim())
                    .filter(|item| !item.is_empty())
                    .map(|item| item.split("::").next().unwrap())
                    .collect()
            } else {
                vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap(),
                ]
            };
            for head in heads {
                if head != from && modules.contains(head) {
                    named.insert(head.to_string());
                }
            }
        }
    }
    graph
}

/// A circle in `graph`, as the modules along it, if there is one.
fn circle(graph: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let mut crates = vec![root().join("src"), root().join("xtask/src")];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        crates.push(entry.unwrap().path().join("src"));
    }
    let mut circles = Vec::new();
    for src in crates {
        if let Some(found) = circle(&module_imports(&src)) {
            circles.push(format!("{}: {}", src.display(), found.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other in a circle (a newcomer cannot read one without the \
         other; move what they share into a module both import): {circles:?}"
    );
}
