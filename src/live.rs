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

    /// Replaces the line with `line`.
    pub fn show(&mut self, line: &str) {
        if self.on {
            let _ = std::io::stderr().write_all(format!("\r\x1b[2K{line}").as_bytes());
            self.shown = true;
        }
    }

    /// Shows the receive path's figures, at most twice a second.
    pub fn show_stats(&mut self, stats: &mut framewire_session::Stats) {
        if self.on
            && let Some(line) = stats.live_line(std::time::Duration::from_millis(500))
        {
            self.show(&line);
        }
    }

    /// Ends the line, so that what is printed next starts on a line of its own.
    pub fn end(&mut self) {
        if std::mem::take(&mut self.shown) {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
