//! Short runs of the scenarios that guard correctness, as tests CI can run:
//! `writes`, `failover` (with agents) and `chaos`, each a few seconds to a
//! minute long against real `gantry server` processes.
//!
//! Why here: each scenario already checks its own invariants (no acknowledged
//! write lost, no node wrongly marked down, a linearizable history, ...) and
//! says so with its exit status, so a test only has to run the built binary and
//! assert success. No timing is asserted: the figures depend on the machine.
//!
//! The runs go one at a time (they would otherwise fight over the cores and
//! turn timeouts into false failures). Each writes its report into a temp
//! `--out` dir; on failure the test prints where it is and its tail.
//!
//! Needs the `gantry` binary next to `gantry-loadtest`, which cargo puts there
//! when the workspace is built (`cargo build --release -p gantry`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One scenario at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Lines of output shown when a run fails.
const TAIL_LINES: usize = 40;

#[test]
fn writes_with_a_few_clients() {
    run_scenario(&[
        "writes",
        "--clients",
        "8",
        "--duration",
        "5s",
        "--warmup",
        "1s",
    ]);
}

#[test]
fn failover_two_leader_kills_with_agents() {
    run_scenario(&[
        "failover",
        "--kills",
        "2",
        "--interval",
        "3s",
        "--agents",
        "50",
    ]);
}

#[test]
fn chaos_for_a_minute() {
    run_scenario(&["chaos", "--duration", "60s"]);
}

/// Runs `gantry-loadtest --out TEMP <args>` and fails the test, with the
/// report's path and tail, unless it exits 0.
fn run_scenario(args: &[&str]) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out_dir = tempfile::Builder::new()
        .prefix("gantry-loadtest-report-")
        .tempdir()
        .expect("a temp dir for the report");
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_gantry-loadtest"))
        .arg("--gantry-bin")
        .arg(gantry_binary())
        .arg("--out")
        .arg(out_dir.path())
        .args(args)
        .output()
        .expect("running gantry-loadtest");
    eprintln!(
        "gantry-loadtest {}: {} after {:.1}s",
        args.join(" "),
        output.status,
        started.elapsed().as_secs_f64()
    );
    if !output.status.success() {
        // Keep the report for whoever reads the failure.
        let kept = out_dir.keep();
        panic!("{}", failure_message(args, &output, &kept));
    }
}

/// `gantry`, built into the same directory as this package's binary.
fn gantry_binary() -> PathBuf {
    let loadtest = Path::new(env!("CARGO_BIN_EXE_gantry-loadtest"));
    let gantry = loadtest.with_file_name(format!("gantry{}", std::env::consts::EXE_SUFFIX));
    assert!(
        gantry.is_file(),
        "{} not found: build the server binary first, e.g. \
         `cargo build --release -p gantry` (with the same CARGO_TARGET_DIR), \
         or test the whole workspace",
        gantry.display()
    );
    gantry
}

fn failure_message(args: &[&str], output: &Output, report_dir: &Path) -> String {
    let report = report_dir.join("report.md");
    let report_tail = std::fs::read_to_string(&report)
        .map(|text| tail(&text))
        .unwrap_or_else(|e| {
            format!(
                "(no report: {e}; stdout follows)\n{}",
                tail_of(&output.stdout)
            )
        });
    format!(
        "gantry-loadtest {} exited with {}\n\
         report: {}\n\
         --- report, last {TAIL_LINES} lines ---\n{report_tail}\n\
         --- stderr, last {TAIL_LINES} lines ---\n{}",
        args.join(" "),
        output.status,
        report.display(),
        tail_of(&output.stderr),
    )
}

fn tail_of(bytes: &[u8]) -> String {
    tail(&String::from_utf8_lossy(bytes))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}
