//! framewire for Python in a virtual environment under `target/python`: the packages its
//! tests and benchmark need (`python/requirements-dev.txt`, from PyPI), the package built into
//! it by maturin, and pytest run on `python/tests`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{root, run_cmd, target_dir};

/// What this machine lacks to test the Python package, and the command that installs it.
pub fn missing() -> Option<(&'static str, &'static str)> {
    let venv = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match venv {
        Ok(s) if s.success() => None,
        _ => Some(("python3 with venv", "apt-get install python3-venv")),
    }
}

/// The environment, made and filled on first use: its directory.
pub fn venv() -> anyhow::Result<PathBuf> {
    let venv = target_dir().join("python");
    let python = venv.join("bin/python");
    let requirements = root().join("python/requirements-dev.txt");
    // Filled when every requirement imports; pip runs only the first time (or when one is new).
    let ready = Command::new(&python)
        .args([
            "-c",
            "import maturin, numpy, pytest, cv2, zmq, imagezmq, simplejpeg",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let mut make = Command::new("python3");
        make.args(["-m", "venv"]).arg(&venv);
        run_cmd(make)?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "-q", "--disable-pip-version-check", "-r"])
            .arg(&requirements);
        run_cmd(pip)?;
    }
    Ok(venv)
}

/// Builds the package into `venv` (`release`: optimised, for the benchmark), with `cargo`'s
/// environment (clippy's wrapper, when the tests lint).
pub fn develop(venv: &Path, release: bool, cargo: &Command) -> anyhow::Result<()> {
    let mut maturin = Command::new(venv.join("bin/maturin"));
    maturin
        .arg("develop")
        .arg("--quiet")
        .current_dir(root().join("python"))
        .env("VIRTUAL_ENV", venv);
    if release {
        maturin.arg("--release");
    }
    for (key, value) in cargo.get_envs() {
        if let Some(value) = value {
            maturin.env(key, value);
        }
    }
    run_cmd(maturin)
}

/// Runs pytest on `python/tests` with the binary at `framewire` (the end-to-end tests run
/// it beside Python); `extra` goes to pytest.
pub fn pytest(venv: &Path, framewire: &Path, extra: &[String]) -> anyhow::Result<()> {
    let mut pytest = Command::new(venv.join("bin/python"));
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root().join("python/tests"))
        .args(extra)
        .env("FRAMEWIRE_BIN", framewire);
    run_cmd(pytest)
}
