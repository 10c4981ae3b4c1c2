//! The files a run leaves behind under `--out DIR`: `report.json` (every figure),
//! `report.md` (what the run printed, for a person, with the command, machine and date)
//! and an SVG chart per picture a scenario drew.
//!
//! Scenarios print their report with [`say!`] instead of `println!`: the text goes to
//! stdout as before and is kept for `report.md`. Charts are handed over with
//! [`add_chart`]. Both are process-wide (one scenario runs per process), which keeps the
//! scenarios' signatures free of plumbing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::svg::Chart;

static TRANSCRIPT: Mutex<String> = Mutex::new(String::new());
static CHARTS: Mutex<Vec<(String, Chart)>> = Mutex::new(Vec::new());

/// Prints a line of the report on stdout and keeps it for `report.md`.
#[macro_export]
macro_rules! say {
    () => { $crate::report::say_line(String::new()) };
    ($($arg:tt)*) => { $crate::report::say_line(format!($($arg)*)) };
}

pub fn say_line(line: String) {
    println!("{line}");
    let mut transcript = TRANSCRIPT.lock().expect("transcript lock");
    transcript.push_str(&line);
    transcript.push('\n');
}

/// Keeps a chart to be written as `<name>.svg`.
pub fn add_chart(name: &str, chart: Chart) {
    CHARTS
        .lock()
        .expect("charts lock")
        .push((name.to_string(), chart));
}

/// Writes `report.json`, `report.md` and the charts into `dir` (created if needed);
/// returns the paths written.
pub fn write(dir: &Path, scenario: &str, passed: bool, figures: &Value) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();

    let json_path = dir.join("report.json");
    let document = serde_json::json!({
        "scenario": scenario,
        "passed": passed,
        "command": command_line(),
        "machine": machine(),
        "unix_time": unix_time(),
        "figures": figures,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&document)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    written.push(json_path);

    let charts = std::mem::take(&mut *CHARTS.lock().expect("charts lock"));
    let mut markdown = format!(
        "# gantry-loadtest {scenario}: {}\n\n- command: `{}`\n- machine: {}\n- unix time: {}\n\n```\n{}```\n",
        if passed { "passed" } else { "FAILED" },
        command_line(),
        machine(),
        unix_time(),
        TRANSCRIPT.lock().expect("transcript lock"),
    );
    for (name, chart) in &charts {
        let file = format!("{name}.svg");
        let path = dir.join(&file);
        std::fs::write(&path, chart.render())
            .with_context(|| format!("writing {}", path.display()))?;
        markdown.push_str(&format!("\n![{}]({file})\n", chart.title));
        written.push(path);
    }
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, markdown).with_context(|| format!("writing {}", md_path.display()))?;
    written.push(md_path);
    Ok(written)
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut words = args.clone();
    if let Some(program) = words.first_mut() {
        *program = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    words.join(" ")
}

/// Cores and memory of this machine, from /proc.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores, {memory_gib:.0} GiB")
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svg::Series;

    #[test]
    fn a_report_holds_the_transcript_the_figures_and_the_charts() {
        say!("table line {}", 1);
        add_chart(
            "gaps",
            Chart {
                title: "gaps".into(),
                x_label: "s".into(),
                y_label: "ms".into(),
                series: vec![Series {
                    name: "g".into(),
                    points: vec![(0.0, 1.0)],
                }],
                markers: vec![],
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), "writes", true, &serde_json::json!({"x": 1})).unwrap();
        assert_eq!(written.len(), 3);
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("table line 1"));
        assert!(md.contains("![gaps](gaps.svg)"));
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["figures"]["x"], 1);
        assert_eq!(json["scenario"], "writes");
    }
}
