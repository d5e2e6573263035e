//! The system tools a testbed is made with (`ip`, `tc`, `nft`): found once, run with their
//! standard error captured so a failure says what the tool said.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::NetbedError;

/// A tool, the Debian package that has it, and where it was found (if anywhere).
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) package: &'static str,
    path: Option<PathBuf>,
}

impl Tool {
    fn find(name: &'static str, package: &'static str) -> Tool {
        // root's PATH normally has the sbin directories; a test runner's may not.
        let path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate));
        Tool {
            name,
            package,
            path,
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Its path, or its bare name when it was not found (so running it fails plainly).
    pub(crate) fn program(&self) -> &OsStr {
        self.path().map_or(OsStr::new(self.name), Path::as_os_str)
    }

    /// A command for this tool.
    pub(crate) fn command(&self) -> Command {
        Command::new(self.program())
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) struct Tools {
    pub(crate) ip: Tool,
    pub(crate) tc: Tool,
    pub(crate) nft: Tool,
}

impl Tools {
    pub(crate) fn all(&self) -> [&Tool; 3] {
        [&self.ip, &self.tc, &self.nft]
    }
}

pub(crate) fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| Tools {
        ip: Tool::find("ip", "iproute2"),
        tc: Tool::find("tc", "iproute2"),
        nft: Tool::find("nft", "nftables"),
    })
}

/// Runs `tool args...` with `stdin` fed to it, failing with its standard error when it fails.
pub(crate) fn run(tool: &Tool, args: &[&str], stdin: Option<&str>) -> Result<(), NetbedError> {
    let mut command = tool.command();
    command.args(args);
    run_command(command, stdin)
}

/// Runs a prepared command (see [`run`]).
pub(crate) fn run_command(mut command: Command, stdin: Option<&str>) -> Result<(), NetbedError> {
    let line = command_line(&command);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| NetbedError::io(format!("start `{line}`"), e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| NetbedError::io(format!("write the input of `{line}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetbedError::io(format!("wait for `{line}`"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetbedError::Command {
            command: match stdin {
                Some(text) => format!("{line} <<< {:?}", text.trim()),
                None => line,
            },
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
