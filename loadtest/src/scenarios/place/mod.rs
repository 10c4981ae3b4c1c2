//! Scenario `place`: the C1M shape — thousands of (simulated) nodes, J jobs × R
//! replicas, from submission to every allocation placed and reported running.
//!
//! Why it exists: the figures that matter for a large cluster are not one write's
//! latency but how fast the leader turns a burst of jobs into committed placements,
//! delivers them over thousands of sessions and commits the status reports coming
//! back — and what that costs it in CPU, memory and disk. Real managers do all of it
//! here; only the agents are fakes (`fleet.rs`), counting what they were given and
//! what was acknowledged, so the scenario can follow a million allocations without
//! listing them.
//!
//! Steps: start the managers; start S agents and wait until every node is `ready`;
//! submit J jobs (bounded concurrency); follow the agents' counters until all J × R
//! are placed and then reported running (a progress line every few seconds, a point
//! a second for the curve); count once through the API; read each manager's CPU,
//! peak memory and data dir size.

mod curve;
pub mod fleet;
mod jobs;
mod procstat;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cluster::{AllocationCounts, GantryApi};
use crate::stats::Latency;
use crate::system::{Kind, Setup, System};

use curve::{Curve, Point};
use fleet::{Fleet, NodeSize};
use jobs::JobShape;

/// Placement at scale: S simulated agents, J jobs × R replicas, 3 or 5 real
/// managers; time to all placed and to all reported running, the leader's CPU,
/// each manager's peak memory and state on disk.
///
/// Presets: `c100k` = 1,000 nodes, 100 jobs × 1,000 replicas; `c1m` = 5,000 nodes,
/// 1,000 jobs × 1,000 replicas. Without a preset: 200 nodes, 20 jobs × 500
/// replicas (under 2 minutes on 2 cores). Explicit flags win over the preset.
#[derive(clap::Args, Debug, Clone)]
pub struct PlaceArgs {
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Simulated agents (nodes).
    #[arg(long)]
    pub agents: Option<usize>,
    /// Jobs to submit.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Replicas per job.
    #[arg(long)]
    pub replicas: Option<u32>,
    /// What each node offers.
    #[arg(long, default_value_t = 16_000)]
    pub node_cpu_millis: u64,
    #[arg(long, default_value_t = 65_536)]
    pub node_memory_mb: u64,
    /// What each replica asks for.
    #[arg(long, default_value_t = 50)]
    pub task_cpu_millis: u64,
    #[arg(long, default_value_t = 128)]
    pub task_memory_mb: u64,
    /// Number of managers: 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub managers: usize,
    /// Jobs submitted at a time.
    #[arg(long, default_value_t = 4)]
    pub submit_concurrency: usize,
    /// The whole run after the managers are up: agents ready, placed, running
    /// [default: 2m; c100k 10m; c1m 15m].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Budget for the final count through the API (one request per job).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub count_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    C100k,
    C1m,
}

/// The flags with the preset applied.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub agents: usize,
    pub jobs: usize,
    pub replicas: u32,
    pub node: NodeSize,
    pub task_cpu_millis: u64,
    pub task_memory_mb: u64,
    pub managers: usize,
    pub timeout: Duration,
}

impl Params {
    fn from_args(a: &PlaceArgs) -> Params {
        let (agents, jobs, replicas, timeout) = match a.preset {
            None => (200, 20, 500, 120),
            Some(Preset::C100k) => (1_000, 100, 1_000, 600),
            Some(Preset::C1m) => (5_000, 1_000, 1_000, 900),
        };
        Params {
            agents: a.agents.unwrap_or(agents),
            jobs: a.jobs.unwrap_or(jobs),
            replicas: a.replicas.unwrap_or(replicas),
            node: NodeSize {
                cpu_millis: a.node_cpu_millis,
                memory_mb: a.node_memory_mb,
            },
            task_cpu_millis: a.task_cpu_millis,
            task_memory_mb: a.task_memory_mb,
            managers: a.managers,
            timeout: a.timeout.unwrap_or(Duration::from_secs(timeout)),
        }
    }

    pub fn total(&self) -> usize {
        self.jobs * self.replicas as usize
    }

    fn shape(&self) -> JobShape {
        JobShape {
            replicas: self.replicas,
            cpu_millis: self.task_cpu_millis,
            memory_mb: self.task_memory_mb,
        }
    }

    /// Replicas one node can hold.
    fn per_node(&self) -> u64 {
        (self.node.cpu_millis / self.task_cpu_millis.max(1))
            .min(self.node.memory_mb / self.task_memory_mb.max(1))
    }

    fn check(&self) -> Result<()> {
        anyhow::ensure!(
            self.managers == 3 || self.managers == 5,
            "--managers must be 3 or 5"
        );
        anyhow::ensure!(
            self.agents > 0 && self.jobs > 0 && self.replicas > 0,
            "--agents, --jobs, --replicas must be > 0"
        );
        let room = self.per_node() * self.agents as u64;
        anyhow::ensure!(
            room >= self.total() as u64,
            "{} allocations do not fit: {} nodes hold {} replicas each ({room} in all)",
            self.total(),
            self.agents,
            self.per_node()
        );
        Ok(())
    }
}

/// One manager's cost over the run.
#[derive(Debug, Clone)]
pub struct ManagerCost {
    pub node: usize,
    pub leader: bool,
    /// CPU seconds while the agents attached, and from the first submit to the end.
    pub cpu_attach_s: f64,
    pub cpu_place_s: f64,
    pub peak_rss_kb: u64,
    pub data_dir_bytes: u64,
    /// Its process was gone from /proc at the end (the figures are then void).
    pub gone: bool,
}

/// Everything measured; times count from the first submit unless named otherwise.
#[derive(Default)]
pub struct Outcome {
    pub agents_ready_after: Option<Duration>,
    pub submit_took: Option<Duration>,
    pub submit_latency: Option<Latency>,
    pub all_placed_after: Option<Duration>,
    pub all_running_after: Option<Duration>,
    /// When `GET /v1/jobs` (a follower, every 2 s) first showed every job placed.
    pub api_all_placed_after: Option<Duration>,
    pub last_counts: (usize, usize),
    pub last_job_statuses: Vec<(String, usize)>,
    pub api_count: Option<(AllocationCounts, usize)>,
    pub place_window: Duration,
    pub managers: Vec<ManagerCost>,
    pub curve: Vec<Point>,
    /// Leaders the samples saw, in order: (0-based node, term).
    pub leaders_seen: Vec<(usize, u64)>,
    /// The fleet's nodes at the end: `down` ones, and those whose status changed
    /// after all were ready (a node marked down and back counts there).
    pub nodes_at_end: Option<fleet::NodeTally>,
    /// This process's CPU seconds over the place window (it shares the cores).
    pub tester_cpu_s: f64,
    pub failure: Option<String>,
}

impl Outcome {
    fn passed(&self, total: usize) -> bool {
        self.failure.is_none()
            && self
                .nodes_at_end
                .is_some_and(|n| n.down == 0 && n.changed_since == 0)
            && self
                .api_count
                .as_ref()
                .is_some_and(|(c, _)| c.placed == total && c.running == total)
    }
}

pub async fn run(args: &PlaceArgs, setup: &Setup) -> Result<(bool, Value)> {
    let params = Params::from_args(args);
    params.check()?;
    let outcome = run_cluster(&params, args, setup).await?;
    report::print(&params, &outcome);
    report::chart(&params, &outcome);
    let passed = outcome.passed(params.total());
    Ok((passed, report::to_json(&params, args, &outcome, passed)))
}

/// Where each manager's process is, and its CPU time at a given moment.
struct Managers {
    procs: Vec<procstat::ManagerProc>,
    leader: usize,
}

impl Managers {
    fn find(sys: &System, leader: usize) -> Result<Managers> {
        let procs = sys
            .urls()
            .iter()
            .map(|u| {
                let port = u.rsplit(':').next().and_then(|p| p.parse().ok());
                procstat::find_manager(port.context("a manager URL without a port")?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Managers { procs, leader })
    }

    fn cpu_seconds(&self) -> Vec<f64> {
        self.procs
            .iter()
            .map(|p| procstat::sample(p.pid).map_or(0.0, |s| s.cpu_seconds))
            .collect()
    }

    fn costs(&self, at_start: &[f64], at_submit: &[f64]) -> Vec<ManagerCost> {
        let at_end = self.cpu_seconds();
        self.procs
            .iter()
            .enumerate()
            .map(|(i, p)| ManagerCost {
                gone: procstat::sample(p.pid).is_none(),
                node: i + 1,
                leader: i == self.leader,
                cpu_attach_s: at_submit[i] - at_start[i],
                cpu_place_s: at_end[i] - at_submit[i],
                peak_rss_kb: procstat::sample(p.pid).map_or(0, |s| s.peak_rss_kb),
                data_dir_bytes: p.data_dir.as_deref().map_or(0, procstat::disk_usage),
            })
            .collect()
    }
}

async fn run_cluster(params: &Params, args: &PlaceArgs, setup: &Setup) -> Result<Outcome> {
    let mut sys = System::start(Kind::Gantry, params.managers, setup).await?;
    let leader = sys.leader(setup.startup_timeout).await?;
    let managers = Managers::find(&sys, leader)?;
    let urls = sys.urls();
    let deadline = Instant::now() + params.timeout;
    let mut out = Outcome::default();

    let cpu_start = managers.cpu_seconds();
    let prefix = format!("lt-place-{}", std::process::id());
    let fleet = Arc::new(Fleet::start(&urls, &prefix, params.agents, params.node)?);
    eprintln!(
        "[place] started {} simulated agents; waiting until every node is ready",
        params.agents
    );
    match wait_agents_ready(&mut sys, &fleet, deadline).await {
        Ok(took) => out.agents_ready_after = Some(took),
        Err(e) => out.failure = Some(format!("{e:#}")),
    }
    let cpu_submit = managers.cpu_seconds();
    let ready_wall_ms = fleet::wall_ms();

    let t0 = Instant::now();
    let tester_cpu = || procstat::sample(std::process::id()).map_or(0.0, |s| s.cpu_seconds);
    let tester_at_submit = tester_cpu();
    if out.failure.is_none() {
        let pids = managers.procs.iter().map(|p| p.pid).collect();
        let curve = Curve::start(fleet.clone(), urls.clone(), pids, t0, params.total());
        if let Err(e) = place(
            &mut sys, &fleet, &curve, params, args, &urls, leader, deadline, &mut out,
        )
        .await
        {
            out.failure = Some(format!("{e:#}"));
        }
        out.curve = curve.points();
    }
    out.place_window = t0.elapsed();
    out.tester_cpu_s = tester_cpu() - tester_at_submit;
    out.managers = managers.costs(&cpu_start, &cpu_submit);
    out.leaders_seen = curve::leaders_seen(&out.curve);
    let counts = fleet.counts();
    out.last_counts = (counts.to_run, counts.running);
    out.nodes_at_end = fleet.node_tally(false, ready_wall_ms).await.ok();
    if out.failure.is_none() || out.all_placed_after.is_some() {
        out.api_count = final_count(&urls[leader], params, args.count_timeout).await;
    }
    if let Some(f) = &out.failure {
        eprintln!("[place] FAILED: {f}");
    }
    drop(fleet);
    Ok(out)
    // `sys` drops here: every manager is killed, then the temp dir removed.
}

/// Polls `GET /v1/nodes` every 500 ms until all the fleet's nodes are ready, with
/// a progress line every 3 s, checking that no manager died.
async fn wait_agents_ready(sys: &mut System, fleet: &Fleet, deadline: Instant) -> Result<Duration> {
    let mut last_print = Instant::now();
    let t0 = Instant::now();
    let result = fleet
        .wait_ready(deadline, Duration::from_millis(500), |t| {
            if last_print.elapsed() >= Duration::from_secs(3) {
                last_print = Instant::now();
                eprintln!(
                    "[place] {:>6.1}s  nodes registered {}  ready {}/{}  down {}",
                    t0.elapsed().as_secs_f64(),
                    t.registered,
                    t.ready,
                    fleet.len(),
                    t.down
                );
            }
        })
        .await;
    sys.check_alive()?;
    let took = result?;
    eprintln!(
        "[place] all {} nodes ready after {:.1}s",
        fleet.len(),
        took.as_secs_f64()
    );
    Ok(took)
}

/// Submit the jobs, then follow the counters until all are running.
#[allow(clippy::too_many_arguments)]
async fn place(
    sys: &mut System,
    fleet: &Fleet,
    curve: &Curve,
    params: &Params,
    args: &PlaceArgs,
    urls: &[String],
    leader: usize,
    deadline: Instant,
    out: &mut Outcome,
) -> Result<()> {
    let t0 = Instant::now();
    curve.phase(format!("submitting {} jobs", params.jobs));
    let api = GantryApi::new(urls[leader].clone(), Duration::from_secs(60))?;
    let submitting = jobs::submit_all(&api, params.jobs, params.shape(), args.submit_concurrency);
    let latency = tokio::time::timeout_at(deadline.into(), submitting)
        .await
        .context("timed out while submitting")??;
    out.submit_took = Some(t0.elapsed());
    out.submit_latency = Some(latency);
    eprintln!(
        "[place] {} jobs submitted in {:.1}s",
        params.jobs,
        t0.elapsed().as_secs_f64()
    );
    let follower = (0..urls.len()).find(|&i| i != leader).unwrap_or(leader);
    let follower_client = gantry_api::Client::new([urls[follower].as_str()], None)?;
    follow(
        sys,
        fleet,
        curve,
        params,
        &follower_client,
        t0,
        deadline,
        out,
    )
    .await
}

/// Every 200 ms, the agents' counters; every 2 s, the job statuses from a
/// follower and a check that no manager died. Returns when all are running.
#[allow(clippy::too_many_arguments)]
async fn follow(
    sys: &mut System,
    fleet: &Fleet,
    curve: &Curve,
    params: &Params,
    follower: &gantry_api::Client,
    t0: Instant,
    deadline: Instant,
    out: &mut Outcome,
) -> Result<()> {
    let total = params.total();
    let mut next_check = Instant::now();
    curve.phase("placing");
    loop {
        let counts = fleet.counts();
        if counts.to_run >= total && out.all_placed_after.is_none() {
            out.all_placed_after = Some(t0.elapsed());
            curve.phase("all placed; waiting for running reports");
        }
        if counts.running >= total {
            out.all_running_after = Some(t0.elapsed());
            return Ok(());
        }
        if Instant::now() >= next_check {
            next_check = Instant::now() + Duration::from_secs(2);
            sys.check_alive()?;
            if let Ok(statuses) = jobs::statuses(follower).await {
                let placed_jobs = statuses
                    .iter()
                    .find(|(s, _)| s == "running")
                    .map_or(0, |(_, n)| *n);
                if placed_jobs == params.jobs && out.api_all_placed_after.is_none() {
                    out.api_all_placed_after = Some(t0.elapsed());
                }
                out.last_job_statuses = statuses;
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {:.0}s: placed {}/{total}, running {}/{total}; jobs by status: {}",
                t0.elapsed().as_secs_f64(),
                counts.to_run,
                counts.running,
                report::statuses_brief(&out.last_job_statuses)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One full count through the API (linearizable, on the leader), bounded.
async fn final_count(
    leader_url: &str,
    params: &Params,
    budget: Duration,
) -> Option<(AllocationCounts, usize)> {
    eprintln!(
        "[place] counting every allocation through the API ({} jobs)",
        params.jobs
    );
    let started = Instant::now();
    let api = GantryApi::new(leader_url.to_string(), Duration::from_secs(60)).ok()?;
    match jobs::count_all(&api, params.jobs, 4, started + budget).await {
        Ok(result) => {
            eprintln!(
                "[place] counted {} jobs in {:.1}s: placed {}, running {}",
                result.1,
                started.elapsed().as_secs_f64(),
                result.0.placed,
                result.0.running
            );
            Some(result)
        }
        Err(e) => {
            eprintln!("[place] the final count failed: {e:#}");
            None
        }
    }
}
