//! How the operator commands print: aligned tables and relative times for people,
//! the API's JSON for scripts (`--json`), and colour only on a terminal that wants it.

pub mod progress;
pub mod table;
pub mod time;

use std::io::IsTerminal;

use serde::Serialize;

pub use table::Table;

/// Whether stdout is a terminal and may be coloured (not when `NO_COLOR` is set, see
/// <https://no-color.org>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub tty: bool,
    pub colour: bool,
}

impl Style {
    pub fn detect() -> Style {
        let tty = std::io::stdout().is_terminal();
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            tty,
            colour: tty && !no_colour,
        }
    }

    /// `text` in bold.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// `text` coloured by what a state word means: green for good, yellow for on the
    /// way, red for bad.
    pub fn state(&self, text: &str) -> String {
        let code = match text {
            "running" | "ready" | "healthy" | "eligible" | "leader" | "complete" | "voter"
            | "ok" | "upsert" | "successful" => "32",
            "pending" | "starting" | "initializing" | "degraded" | "draining" | "candidate"
            | "learner" | "unknown" | "stop" | "stopped" | "delete" => "33",
            // Deployments held by an operator or taken over by a newer version.
            "paused" | "cancelled" => "33",
            "failed" | "lost" | "down" | "blocked" | "unhealthy" | "ineligible" | "unreachable" => {
                "31"
            }
            _ => return text.to_string(),
        };
        self.paint(code, text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Prints `value` as pretty JSON on stdout (what `--json` prints).
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    let text = serde_json::to_string_pretty(value).expect("API values always serialise");
    println!("{text}");
}

/// `key: value` lines with the keys padded to one width.
pub fn print_fields(style: &Style, fields: &[(&str, String)]) {
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in fields {
        let pad = width - key.chars().count();
        println!("{}{} = {value}", style.bold(key), " ".repeat(pad));
    }
}

/// A section heading before a table.
pub fn print_heading(style: &Style, title: &str) {
    println!();
    println!("{}", style.bold(title));
}

/// Resources in the units of the spec: `250m cpu, 64 MB`.
pub fn resources(r: &gantry_api::Resources) -> String {
    format!("{}m cpu, {} MB", r.cpu_millis, r.memory_mb)
}
