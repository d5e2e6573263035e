//! `cargo xtask test`: the one command CI and developers run before a commit.

use crate::{cargo, run_cmd};

pub fn run_all(extra: &[String]) -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run_cmd(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run_cmd(clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    run_cmd(test)?;

    // The camera feature (nokhwa) needs libclang to build; it is tested wherever that is there.
    if has_libclang() {
        let mut clippy = cargo();
        clippy.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "camera",
        ]);
        clippy.args(["--", "-D", "warnings"]);
        run_cmd(clippy)?;
        let mut test = cargo();
        test.args(["test", "--workspace", "--features", "camera"])
            .args(extra);
        run_cmd(test)?;
    } else if std::env::var_os("FRAMEWIRE_REQUIRE_ALL").is_some_and(|v| v == "1") {
        anyhow::bail!(
            "the camera feature needs libclang (apt-get install libclang1-14) and \
             FRAMEWIRE_REQUIRE_ALL=1 requires every feature to be tested"
        );
    } else {
        eprintln!(
            "xtask test: camera feature skipped: libclang1-14 is missing (apt-get install libclang1-14)"
        );
    }
    eprintln!("xtask test: rustfmt, clippy and every test passed");
    Ok(())
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
