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
    eprintln!("xtask test: rustfmt, clippy and every test passed");
    Ok(())
}

pub use run_all as run;
