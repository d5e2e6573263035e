//! The one error type of building, using and tearing down a testbed.

use std::time::Duration;

/// Why a testbed could not be built or a namespace could not be entered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetbedError {
    /// The link asked for is not one this crate can make.
    #[error("invalid link: {0}")]
    InvalidLink(String),
    /// A tool (`ip`, `tc`, `nft`) failed; its standard error says why.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line as run.
        command: String,
        /// Its exit status.
        status: String,
        /// What it wrote to standard error, trimmed.
        stderr: String,
    },
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the namespace or device.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Something this crate waited for did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
}

impl NetbedError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        NetbedError::Io {
            what: what.into(),
            source,
        }
    }
}
