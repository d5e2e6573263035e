//! Named network namespaces: unique names, entering one on a thread, and removing the ones a
//! killed run left behind.
//!
//! Names are `fwnb-PID-TOKEN-N-ROLE`: the process id, a random token drawn once per process,
//! a per-process counter and the role (`a`, `b`, `link`). Parallel tests in one process differ
//! by the counter, parallel processes by the pid, and a reused pid by the token.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

use crate::NetbedError;
use crate::tools::{run, tools};

/// The first part of every namespace name this crate makes.
pub(crate) const PREFIX: &str = "fwnb";

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// `fwnb-PID-TOKEN-N`: a fresh base, unique in this process and among live processes.
pub(crate) fn unique_base() -> String {
    static TOKEN: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState's keys are random per process; that is all the randomness needed here.
    let token = *TOKEN.get_or_init(|| RandomState::new().hash_one(std::process::id()) as u32);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{}-{token:08x}-{n}", std::process::id())
}

/// The pid in a name this crate made, or `None` for any other name.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.split('-');
    if parts.next()? != PREFIX {
        return None;
    }
    let pid = parts.next()?.parse().ok()?;
    let token = parts.next()?;
    (token.len() == 8 && token.bytes().all(|b| b.is_ascii_hexdigit())).then_some(pid)
}

/// Removes the namespaces of runs whose process is gone (killed before its testbeds dropped).
/// Best effort: another process may be removing the same ones.
pub(crate) fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match run(&tools().ip, &["netns", "del", &name], None) {
            Ok(()) => {
                tracing::info!(netns = %name, pid, "removed a namespace left by a dead process")
            }
            Err(e) => tracing::debug!(netns = %name, "stale namespace not removed: {e}"),
        }
    }
}

pub(crate) fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

fn open(name: &str) -> Result<File, NetbedError> {
    File::open(path(name)).map_err(|e| NetbedError::io(format!("open namespace {name}"), e))
}

/// Moves the calling thread (only it) into the namespace `file` refers to.
fn enter(name: &str, file: &File) -> Result<(), NetbedError> {
    setns(file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetbedError::io(format!("enter namespace {name}"), e.into()))
}

/// Runs `f` on a new thread inside namespace `name` and returns what it returns; a panic in `f`
/// is resumed on the caller. Sockets made by `f` stay in that namespace wherever they are used.
pub(crate) fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetbedError> {
    let file = open(name)?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn_scoped(scope, || {
                enter(name, &file)?;
                Ok(f())
            })
            .map_err(|e| NetbedError::io(format!("start a thread for namespace {name}"), e))?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Starts `f` on a new thread that lives inside namespace `name`.
pub(crate) fn spawn_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, NetbedError> {
    let file = open(name)?;
    let owned = name.to_string();
    std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            // Opening worked, so only a missing capability makes this fail; say so in the panic.
            enter(&owned, &file).unwrap_or_else(|e| panic!("{e}"));
            f()
        })
        .map_err(|e| NetbedError::io(format!("start a thread for namespace {name}"), e))
}

/// Deletes its namespaces when dropped: each testbed's owner of what it created.
#[derive(Debug, Default)]
pub(crate) struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// `ip netns add NAME`, remembered for deletion.
    pub(crate) fn add(&mut self, name: String) -> Result<(), NetbedError> {
        run(&tools().ip, &["netns", "add", &name], None)?;
        self.names.push(name);
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.names.drain(..).rev() {
            if let Err(e) = run(&tools().ip, &["netns", "del", &name], None) {
                tracing::warn!(netns = %name, "namespace not removed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_carry_the_pid() {
        let (first, second) = (unique_base(), unique_base());
        assert_ne!(first, second);
        for name in [&first, &second] {
            assert_eq!(owner_pid(name), Some(std::process::id()), "{name}");
            assert_eq!(owner_pid(&format!("{name}-link")), Some(std::process::id()));
        }
    }

    #[test]
    fn only_our_names_have_an_owner() {
        let check = |name: &str, pid: Option<u32>| assert_eq!(owner_pid(name), pid, "{name}");
        check("fwnb-123-0badcafe-0-a", Some(123));
        check("fwnb-123-0badcafe-17-link", Some(123));
        check("fwnb-123-0badcafe", Some(123));
        check("fwnb-123-cafe-0-a", None);
        check("fwnb-123-0badcafz-0-a", None);
        check("fwnb-x-0badcafe-0-a", None);
        check("fwnb", None);
        check("blue", None);
        check("fwnbx-123-0badcafe-0-a", None);
        check("other-123-0badcafe-0-a", None);
    }
}
