//! `gantry-loadtest`: benchmark and chaos scenarios against real `gantry
//! server` processes (and, for comparison, a real etcd cluster).
//!
//! Why a separate binary: the figures only mean something if they come from
//! the same processes, flags, fsyncs and sockets an operator runs. This file
//! is only the command line; each scenario lives in `scenarios/`, the
//! clusters in `cluster.rs` and `etcd.rs`.
//!
//! Every scenario is bounded in time and in requests, talks only to
//! 127.0.0.1, and kills every process it started when it ends — also on
//! error, on Ctrl-C (the scenario's future is dropped, and with it the
//! process guards) and on panic (the guards drop while unwinding).

mod agent;
mod cluster;
mod engine;
mod etcd;
mod linearizability;
mod process;
mod progress;
mod report;
mod rng;
mod scenarios;
mod stats;
mod svg;
mod swarm;
mod system;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use scenarios::{chaos, failover, packing, place, writes};
use system::Setup;

/// Load, failover and chaos scenarios against real Gantry processes.
///
/// Each scenario starts its own cluster of `gantry server` processes on
/// 127.0.0.1 (own temp data dirs, fsync on), drives it over HTTP, prints a
/// report on stdout (progress on stderr) and writes it with its charts under
/// `--out`, and stops every process it started. See loadtest/README.md for
/// what each figure means.
#[derive(Parser, Debug)]
#[command(name = "gantry-loadtest", version)]
struct Cli {
    /// The `gantry` binary [default: `gantry` next to this executable, else
    /// on $PATH].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GANTRY_LOADTEST_GANTRY_BIN"
    )]
    gantry_bin: Option<PathBuf>,
    /// The `etcd` binary for `--compare etcd` [default: `etcd` on $PATH].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "GANTRY_LOADTEST_ETCD_BIN"
    )]
    etcd_bin: Option<PathBuf>,
    /// Where to write the report files (`report.md`, `report.json`, one SVG per
    /// chart) once the scenario has run, passed or failed [default:
    /// `loadtest-report/<scenario>` under the current directory].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    out: Option<PathBuf>,
    /// Also write every figure as JSON to this file.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    json: Option<PathBuf>,
    /// Keep the temp dirs (data and server logs) instead of removing them.
    #[arg(long, global = true, help_heading = "Global options")]
    keep: bool,
    /// How long a fresh cluster may take to agree on a leader.
    #[arg(long, global = true, help_heading = "Global options", default_value = "30s", value_parser = humantime::parse_duration)]
    startup_timeout: Duration,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    Writes(writes::WritesArgs),
    Failover(failover::FailoverArgs),
    Engine(scenarios::engine::EngineArgs),
    Packing(packing::PackingArgs),
    Chaos(chaos::ChaosArgs),
    Place(place::PlaceArgs),
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let setup = Setup {
        gantry_bin: cli.gantry_bin,
        etcd_bin: cli.etcd_bin,
        keep: cli.keep,
        startup_timeout: cli.startup_timeout,
    };
    let (passed, report) = match &cli.scenario {
        Scenario::Writes(args) => writes::run(args, &setup).await?,
        Scenario::Failover(args) => failover::run(args, &setup).await?,
        Scenario::Engine(args) => scenarios::engine::run(args, &setup).await?,
        Scenario::Packing(args) => packing::run(args).await?,
        Scenario::Chaos(args) => chaos::run(args, &setup).await?,
        Scenario::Place(args) => place::run(args, &setup).await?,
    };
    if let Some(path) = &cli.json {
        stats::write_json(path, &report)?;
    }
    write_report_files(cli.out.as_deref(), &cli.scenario, passed, &report)?;
    Ok(passed)
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Writes(_) => "writes",
            Scenario::Failover(_) => "failover",
            Scenario::Engine(_) => "engine",
            Scenario::Packing(_) => "packing",
            Scenario::Chaos(_) => "chaos",
            Scenario::Place(_) => "place",
        }
    }
}

/// `report.md`, `report.json` and the charts, into `--out` or
/// `loadtest-report/<scenario>`; says where on stderr.
fn write_report_files(
    out: Option<&Path>,
    scenario: &Scenario,
    passed: bool,
    figures: &serde_json::Value,
) -> anyhow::Result<()> {
    let scenario = scenario.name();
    let dir = out.map_or_else(
        || PathBuf::from("loadtest-report").join(scenario),
        Path::to_path_buf,
    );
    let written = report::write(&dir, scenario, passed, figures)?;
    let charts = written
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    eprintln!(
        "report: {} (report.md, report.json, {charts} chart{})",
        dir.display(),
        if charts == 1 { "" } else { "s" }
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Servers are spawned from this (main) thread's task, which matters for
    // PR_SET_PDEATHSIG: see process.rs.
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Dropping the runtime cancels what is left of the client tasks.
    drop(runtime);
    match result {
        None => {
            eprintln!("interrupted: every server this run started has been killed");
            ExitCode::from(130)
        }
        Some(Ok(true)) => ExitCode::SUCCESS,
        Some(Ok(false)) => {
            eprintln!("FAILED: see the report above");
            ExitCode::from(1)
        }
        Some(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
