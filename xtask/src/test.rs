//! `cargo xtask test`: the one command CI and developers run before a commit.

use crate::{cargo, on_path, run_cmd};

/// Runs the whole check; with `--build-only` first in `args`, stops once the first pass's
/// tests are built and linted (`.ci/run` does that while the packages the tests run install).
pub fn run_all(args: &[String]) -> anyhow::Result<()> {
    let (build_only, extra) = match args.split_first() {
        Some((first, rest)) if first == "--build-only" => (true, rest),
        _ => (false, args),
    };
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run_cmd(fmt)?;

    // Features that need system packages to build are tested too, each whose packages are
    // there: camera (nokhwa's bindgen needs libclang), turbojpeg (libjpeg-turbo is built from
    // source with cmake and nasm) and h264 (OpenH264 is built from source with a C++ compiler).
    // Missing ones are known before anything is built.
    let mut features = Vec::new();
    let mut missing = Vec::new();
    if has_libclang() {
        features.push("camera");
    } else {
        missing.push((
            "camera",
            "libclang1-14".to_string(),
            "apt-get install libclang1-14",
        ));
    }
    let tools: Vec<_> = ["cmake", "nasm"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect();
    if tools.is_empty() {
        features.push("turbojpeg");
    } else {
        missing.push((
            "turbojpeg",
            tools.join(" and "),
            "apt-get install cmake nasm",
        ));
    }
    if on_path("c++") {
        features.push("h264");
    } else {
        missing.push(("h264", "c++".to_string(), "apt-get install g++"));
    }
    // The Python package (python/): built into a venv and tested with pytest.
    let python = crate::python::missing();
    if let Some((what, install)) = python {
        missing.push(("python", what.to_string(), install));
    }
    if std::env::var_os("FRAMEWIRE_REQUIRE_ALL").is_some_and(|v| v == "1") && !missing.is_empty() {
        let needs: Vec<_> = missing
            .iter()
            .map(|(feature, what, install)| match *feature {
                "python" => format!("the Python package's tests need {what} ({install})"),
                _ => format!("the {feature} feature needs {what} ({install})"),
            })
            .collect();
        anyhow::bail!(
            "{}; FRAMEWIRE_REQUIRE_ALL=1 requires every feature to be tested",
            needs.join(", ")
        );
    }
    for (feature, what, install) in &missing {
        eprintln!("xtask test: {feature} skipped, missing: {what} ({install})");
    }
    let (qualified, packages) = in_their_crates(&features);

    // Clippy lints while the tests build: clippy-driver compiles the workspace's crates in
    // rustc's place (RUSTC_WORKSPACE_WRAPPER, which Cargo applies to workspace members only), so
    // one build both lints and makes the test binaries, where `cargo clippy` and then `cargo
    // test` compiled every crate twice. `--all-targets` lints the benches too, as `cargo clippy
    // --all-targets` did. A later plain `cargo test` rebuilds the workspace's own crates (not
    // their dependencies): the compiler differs.
    let clippy = clippy_driver()?;
    let linted = |args: &[&str]| {
        let mut cmd = cargo();
        cmd.env("RUSTC_WORKSPACE_WRAPPER", &clippy)
            // How cargo-clippy hands clippy-driver its arguments: `-D warnings`.
            .env(
                "CLIPPY_ARGS",
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
            )
            .args(args);
        cmd
    };
    // The Python package's crate links against Python: maturin builds it, below.
    let workspace = ["--workspace", "--exclude", "framewire-python"];
    let mut build = linted(&["test", "--all-targets", "--no-run"]);
    build.args(workspace);
    build.args(extra);
    run_cmd(build)?;
    if build_only {
        eprintln!("xtask test: rustfmt passed; the tests are built and linted (--build-only)");
        return Ok(());
    }
    let mut test = linted(&["test"]);
    test.args(workspace).args(extra);
    run_cmd(test)?;

    if !features.is_empty() {
        // The features' code, linted and tested: the crates that define them (all their targets),
        // and the binary's unit tests and command-line tests (which check the flags each feature
        // adds). The rest of the suite drives the binary over sockets and ran in the first pass.
        // The binary is selected beside those crates in both commands: Cargo unifies the
        // dependencies' features over the packages selected, and with the binary among them
        // they come out nearly as in the first pass, whose builds are reused (the two crates
        // alone rebuilt dozens the features do not need: syn, serde, clap, criterion, yuv ...).
        let targets = feature_targets(&packages, &features)?;
        let with = |first: &[&str]| {
            let mut cmd = linted(first);
            cmd.args(["--features", &qualified])
                .args(&packages)
                .args(["-p", "framewire"])
                .args(&targets)
                .args(extra);
            cmd
        };
        run_cmd(with(&["test", "--no-run"]))?;
        run_cmd(with(&["test"]))?;
    }
    if python.is_none() {
        // Built (and linted) into its venv, then pytest beside the binary the first pass built.
        let venv = crate::python::venv()?;
        crate::python::develop(&venv, false, &linted(&[]))?;
        let binary = crate::target_dir().join("debug/framewire");
        crate::python::pytest(&venv, &binary, &[])?;
    }
    eprintln!("xtask test: rustfmt, clippy and every test passed");
    Ok(())
}

/// Each feature of the second pass and the workspace crate that defines it.
const FEATURE_CRATES: [(&str, &str); 3] = [
    ("camera", "framewire-capture"),
    ("turbojpeg", "framewire-codec"),
    ("h264", "framewire-codec"),
];

/// `camera,turbojpeg` as features of the binary and of the crates that define them, and those
/// crates as `-p` flags.
fn in_their_crates(features: &[&str]) -> (String, Vec<String>) {
    let mut qualified = Vec::new();
    let mut packages = Vec::new();
    for (feature, krate) in FEATURE_CRATES {
        if features.contains(&feature) {
            qualified.push(format!("framewire/{feature}"));
            qualified.push(format!("{krate}/{feature}"));
            if !packages.iter().any(|p| p == krate) {
                packages.extend(["-p".to_string(), krate.to_string()]);
            }
        }
    }
    (qualified.join(","), packages)
}

/// The second pass's targets: the libraries, binaries and benches of the packages selected,
/// every test target of the crates in `packages` (`-p NAME` pairs), the binary's command-line
/// tests, and its end-to-end tests of a codec feature (`tests/h264.rs`, and `tests/publish.rs`,
/// which publishes H.264).
fn feature_targets(packages: &[String], features: &[&str]) -> anyhow::Result<Vec<String>> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run cargo metadata: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut targets: Vec<String> = ["--lib", "--bins", "--benches", "--test", "cli"]
        .map(String::from)
        .into();
    if features.contains(&"h264") {
        targets.extend(
            ["--test", "h264", "--test", "publish", "--test", "websocket"].map(String::from),
        );
    }
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        if !packages.iter().any(|p| p == name) {
            continue;
        }
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_test = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
            if is_test && let Some(test) = target["name"].as_str() {
                targets.extend(["--test".to_string(), test.to_string()]);
            }
        }
    }
    Ok(targets)
}

/// Whether bindgen (which nokhwa's V4L2 bindings run) will find libclang.
fn has_libclang() -> bool {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("LIBCLANG_PATH")
        .map(|p| vec![p.into()])
        .unwrap_or_default();
    dirs.extend(["/usr/lib", "/usr/lib64", "/usr/local/lib"].map(Into::into));
    dirs.push("/usr/lib/x86_64-linux-gnu".into());
    dirs.push("/usr/lib/aarch64-linux-gnu".into());
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("llvm-") {
                dirs.push(entry.path().join("lib"));
            }
        }
    }
    dirs.iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("libclang") && name.contains(".so") && !name.contains("cpp")
            })
        })
    })
}

pub use run_all as run;

/// clippy-driver of the toolchain cargo runs (`rustup component add clippy` where missing).
fn clippy_driver() -> anyhow::Result<std::path::PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run rustc --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let driver = std::path::Path::new(&sysroot).join("bin/clippy-driver");
    anyhow::ensure!(
        out.status.success() && driver.is_file(),
        "clippy is not installed for this toolchain ({} missing): rustup component add clippy",
        driver.display()
    );
    Ok(driver)
}
