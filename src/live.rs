//! The live line: one status line rewritten in place on a terminal's stderr, and nothing at all
//! when stderr is not a terminal.

use std::io::{IsTerminal, Write};

/// A status line on stderr.
pub struct LiveLine {
    on: bool,
    shown: bool,
}

impl LiveLine {
    /// A live line that shows only when stderr is a terminal.
    pub fn on_stderr() -> LiveLine {
        LiveLine {
            on: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Whether lines are shown at all.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Replaces the line with `line`.
    pub fn show(&mut self, line: &str) {
        if self.on {
            let _ = std::io::stderr().write_all(format!("\r\x1b[2K{line}").as_bytes());
            self.shown = true;
        }
    }

    /// Ends the line, so that what is printed next starts on a line of its own.
    pub fn end(&mut self) {
        if std::mem::take(&mut self.shown) {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
