//! The live line: one status line rewritten in place on a terminal's stderr, and nothing at all
//! when stderr is not a terminal; and a stop on Ctrl-C or Enter.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

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

    /// Ends the live line and prints `line` on stderr in one write (a line another process
    /// prints to the same terminal, the demo's server, could otherwise land in the middle).
    pub fn say(&mut self, line: &str) {
        self.end();
        let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
    }

    /// What the receive path says: the live line for a frame, `line`'s words for the rest.
    pub fn receive_event(
        &mut self,
        event: framewire_session::ReceiveEvent<'_>,
        line: impl Fn(&framewire_session::ReceiveEvent<'_>) -> Option<String>,
    ) {
        match event {
            framewire_session::ReceiveEvent::Frame(stats) => self.show_stats(stats),
            event => {
                if let Some(text) = line(&event) {
                    self.say(&text);
                }
            }
        }
    }

    /// Ends the line, so that what is printed next starts on a line of its own.
    pub fn end(&mut self) {
        if std::mem::take(&mut self.shown) {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

/// Calls `stop` on Ctrl-C, and on Enter when stdin is a terminal.
pub fn stop_on_ctrl_c_or_enter(stop: impl Fn() + Clone + Send + 'static) -> anyhow::Result<()> {
    ctrlc::set_handler(stop.clone()).context("cannot install the Ctrl-C handler")?;
    if std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            if std::io::stdin()
                .lock()
                .read_line(&mut String::new())
                .is_ok()
            {
                stop();
            }
        });
    }
    Ok(())
}
