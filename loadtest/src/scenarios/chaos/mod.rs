//! Scenario `chaos`: random faults against real managers under a mixed job
//! workload, then safety and liveness checks once everything has healed.
//!
//! Why it exists: `failover` proves one thing (leader kills lose no
//! acknowledged write). Chaos widens both the faults (kills, pauses,
//! partitions, whole-cluster restarts — `nemesis.rs`) and the workload
//! (register, scale, delete and linearizable reads of the same few dozen
//! jobs from concurrent clients, with simulated agents turning placements
//! into running allocations — `workload.rs`, `agents.rs`), and checks what
//! a user is promised: nothing acknowledged lost, nothing invented, a
//! linearizable history (`consistency.rs`), and sound, converged, identical
//! state on every manager (`checks.rs`). `report.rs` prints and serialises
//! the outcome.
//!
//! Order of events: start the managers (in their cgroups when partitions are
//! possible), attach the agents, run clients and nemesis for `--duration`,
//! heal, stop the clients, wait for a leader and for every manager to catch
//! up, read every key's final state, then run the checks.

mod agents;
mod checks;
mod consistency;
mod isolation;
mod nemesis;
mod report;
mod workload;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::linearizability::Budget;
use crate::progress::{Counters, Progress};
use crate::system::{Kind, Setup, System};

use checks::{Reader, Verdict};
use consistency::FinalState;
use isolation::Isolation;
use nemesis::Nemesis;
use report::Report;
use workload::{job_id, Clock, JobSeen, OpKind, OpRecord, Outcome, WorkloadConfig};

/// Random faults (kill, pause, partition, restart all) under a mixed job
/// workload; then lost writes, phantoms, linearizability, capacity, ports,
/// slots, convergence and agreement are checked.
///
/// Exits 1 on any violation. Needs root for partitions (iptables and
/// cgroup v2); without them partitions are skipped with a message.
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    /// How long clients and faults run.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Number of managers (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub managers: usize,
    /// Seed of every random choice (faults, keys, operations).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Mean time between faults.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub fault_interval: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Job ids the clients share (`chaos-00` ...).
    #[arg(long, default_value_t = 50)]
    pub keys: usize,
    /// Simulated agents (nodes of 4000 millicpu / 8192 MB).
    #[arg(long, default_value_t = 20)]
    pub agents: usize,
    /// Per-request timeout of the clients.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Pause of each client between two operations.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub think: Duration,
    /// How long jobs may take to reach their desired count after healing.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub converge_timeout: Duration,
    /// Time limit of the linearizability check.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub check_timeout: Duration,
    /// Also write every operation and fault event as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub history: Option<std::path::PathBuf>,
}

pub async fn run(args: &ChaosArgs, setup: &Setup) -> Result<(bool, Value)> {
    ensure!(
        args.managers == 3 || args.managers == 5,
        "--managers must be 3 or 5"
    );
    ensure!(
        args.clients > 0 && args.keys > 0,
        "--clients and --keys must be at least 1"
    );
    // Declared before the system: dropped after it, so the managers are dead
    // before their cgroups are removed (rules go either way).
    let mut isolation = Isolation::probe(args.managers);
    if let Some(why) = isolation.unavailable() {
        eprintln!("[chaos] partition faults will be skipped: {why}");
    }
    let mut sys = System::start(Kind::Gantry, args.managers, setup).await?;
    let urls = sys.urls();
    isolation.set_ports(urls.iter().map(|u| port_of(u)).collect());
    if isolation.unavailable().is_none() {
        // Restart once so that every socket of every manager is made inside
        // its cgroup (the rules match sockets by the cgroup that made them).
        nemesis::restart_all(&mut sys, &isolation)?;
        sys.leader(setup.startup_timeout).await?;
    }
    let agents = agents::start(&urls, args.agents)?;
    agents::wait_registered(&agents, Duration::from_secs(30)).await?;
    eprintln!("[chaos] {} simulated agents registered", agents.len());

    let mut report = Report::new(args, isolation.unavailable().map(str::to_string));
    let clock = Clock::start();
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("chaos".into(), counters.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let config = WorkloadConfig {
        urls: urls.clone(),
        keys: args.keys,
        request_timeout: args.request_timeout,
        think: args.think,
        seed: args.seed,
    };
    let mut clients =
        workload::spawn_clients(args.clients, &config, clock, stop.clone(), counters)?;
    let mut nemesis = Nemesis::new(args.seed, args.fault_interval, clock.started());
    let end = Instant::now() + args.duration;
    if let Err(e) = nemesis
        .run_until(&mut sys, &mut isolation, end, &progress)
        .await
    {
        report.failure(format!("faults: {e:#}"));
    }
    // Heal for sure (each fault heals itself; this is the belt and braces).
    if let Err(e) = isolation.heal() {
        report.failure(format!("{e:#}"));
    }

    progress.phase("stopping clients");
    stop.store(true, Ordering::Relaxed);
    let mut records = Vec::new();
    while let Some(r) = clients.join_next().await {
        records.extend(r.context("a client task panicked")?);
    }
    report.faults(&nemesis);
    report::chart(&records, &nemesis.events);

    progress.phase("waiting for a leader and catch-up");
    let leader = match settle(&mut sys, setup).await {
        Ok(l) => l,
        Err(e) => {
            report.failure(format!("after healing: {e:#}"));
            drop(progress);
            return Ok(report.finish(&records));
        }
    };
    let reader = Reader::new()?;
    progress.phase("reading the final state");
    let (finals, listed) =
        read_final_state(&reader, &urls[leader], args, &clock, &mut records).await?;
    progress.phase("checking");
    check_consistency(args, &records, &finals, &listed, &mut report);
    check_state(args, &reader, &urls, leader, &mut report).await;
    drop(progress);
    drop(agents);
    if let Some(path) = &args.history {
        report::write_history(path, &records, &nemesis.events)?;
    }
    let (passed, json) = report.finish(&records);
    if !passed {
        // Keep the evidence: data dirs and logs of every manager.
        eprintln!("{}", sys.fail("chaos: a check failed".into()));
    }
    Ok((passed, json))
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Wait for a leader, then for every manager to apply what it committed.
async fn settle(sys: &mut System, setup: &Setup) -> Result<usize> {
    let timeout = setup.startup_timeout.max(Duration::from_secs(30));
    sys.leader(timeout).await?;
    for i in 0..sys.len() {
        sys.wait_caught_up(i, timeout).await?;
    }
    sys.leader(timeout).await
}

/// Read every key (linearizably, from the leader) and list every job. The
/// reads are recorded as operations of one more client, so they join the
/// history like any other read.
async fn read_final_state(
    reader: &Reader,
    base: &str,
    args: &ChaosArgs,
    clock: &Clock,
    records: &mut Vec<OpRecord>,
) -> Result<(FinalState, BTreeSet<String>)> {
    let mut finals = FinalState::new();
    for key in 0..args.keys {
        let id = job_id(key);
        let invoke_ns = clock.ns();
        let (status, body, _) = reader.get(base, &format!("/v1/jobs/{id}")).await?;
        let complete_ns = clock.ns();
        let seen = match status {
            200 => Some(JobSeen::from_job(&body)),
            404 => None,
            other => anyhow::bail!("final read of {id}: {other}: {body}"),
        };
        finals.insert(id.clone(), seen);
        records.push(final_read(
            args.clients as u32,
            id,
            invoke_ns,
            complete_ns,
            seen,
        ));
    }
    let (jobs, _) = reader.list(base, "/v1/jobs").await?;
    let listed = jobs
        .iter()
        .filter_map(|j| j["id"].as_str().map(str::to_string))
        .collect();
    Ok((finals, listed))
}

fn final_read(
    client: u32,
    key: String,
    invoke_ns: u64,
    complete_ns: u64,
    seen: Option<JobSeen>,
) -> OpRecord {
    OpRecord {
        client,
        kind: OpKind::Read,
        key,
        manager: usize::MAX,
        invoke_ns,
        complete_ns,
        outcome: Outcome::Ok,
        nonce: seen.and_then(|s| s.nonce),
        replicas: seen.and_then(|s| s.replicas),
        version: seen.and_then(|s| s.version),
        found: seen.is_some(),
        status: Some(if seen.is_some() { 200 } else { 404 }),
        error: None,
    }
}

fn check_consistency(
    args: &ChaosArgs,
    records: &[OpRecord],
    finals: &FinalState,
    listed: &BTreeSet<String>,
    report: &mut Report,
) {
    let lost = consistency::lost_writes(records, finals);
    report.lost(lost);
    let phantoms = consistency::phantoms(records, listed);
    report.phantoms(phantoms);
    let (history, origin) = consistency::history(records);
    let budget = Budget::default().until(Instant::now() + args.check_timeout);
    let checked = consistency::check_linearizable(&history, budget);
    let window: Vec<OpRecord> = consistency::explanation_records(&checked.result, &origin, records)
        .into_iter()
        .cloned()
        .collect();
    report.linearizability(&checked, window);
}

async fn check_state(
    args: &ChaosArgs,
    reader: &Reader,
    urls: &[String],
    leader: usize,
    report: &mut Report,
) {
    match checks::convergence(reader, &urls[leader], args.converge_timeout).await {
        Ok((converged, _, placement)) => {
            report.verdict(placement.capacity());
            report.verdict(placement.host_ports());
            report.verdict(placement.slots());
            report.verdict(converged);
        }
        Err(e) => report.verdict(Verdict::failed("every job converges", format!("{e:#}"))),
    }
    let (applied, same) = checks::agreement(reader, urls, Duration::from_secs(30)).await;
    report.verdict(applied);
    report.verdict(same);
}
