//! A status line that follows a long wait (`job run`, `node drain`).
//!
//! On a terminal the line is rewritten in place, with the time waited so far; otherwise
//! (a pipe, a log file, CI) each new state is printed once as a plain line, so the
//! output reads as a history and never holds control characters. It writes to stdout,
//! where the command's human output goes; with `--json` the commands do not use it.

use std::io::Write as _;

pub struct Progress {
    tty: bool,
    last: Option<String>,
}

impl Progress {
    pub fn new(tty: bool) -> Progress {
        Progress { tty, last: None }
    }

    /// Shows the state `line` and how long it has been waited for (`waited`, e.g.
    /// `3s`): on a terminal every time, elsewhere only when the state changed.
    pub fn update(&mut self, line: &str, waited: &str) {
        let changed = self.last.as_deref() != Some(line);
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{line} ({waited})");
        } else if changed {
            let _ = writeln!(out, "{line} ({waited})");
        }
        let _ = out.flush();
        self.last = Some(line.to_string());
    }

    /// Ends the line on a terminal, so what follows starts on its own line.
    pub fn finish(&mut self) {
        if self.tty && self.last.is_some() {
            println!();
        }
        self.last = None;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
