//! Scenario `engine`: how fast a submitted job becomes running containers
//! on one node, next to what the Docker engine alone manages and what
//! Docker Swarm manages on the same engine.
//!
//! Why it exists: `writes` measures the managers' ceiling, but what an
//! operator waits for is containers. Between the POST and a running
//! container sit the scheduler, the Raft write of the plan, the agent's
//! session, its reconcile loop, the driver's calls to the engine and the
//! status reports back. The engine's own speed at starting the same
//! containers (N `docker run -d` at once) is the floor under all of that, so
//! the ratio of the two says how much Gantry adds. Docker Swarm, when the
//! engine can be put in swarm mode, is the other orchestrator on the same
//! engine: its ratio says how Gantry's path compares with one whose
//! scheduler, dispatcher and agent all live inside `dockerd`.
//!
//! The shape: 3 managers and one `gantry agent --driver docker`. For each
//! count N and each round, first Gantry: submit a service of N replicas of
//! `sleep 3600` and poll, every `--poll`, both the managers' allocations
//! (placed, reported running) and the engine (`docker ps`) until all N run;
//! then delete the job and wait until its containers are gone. Then the
//! engine: N concurrent `docker run -d` of the same image with the same
//! limits, polled the same way, then removed. Then Swarm: a service of N
//! replicas, polled the same way until all N run, then `docker service rm`
//! and wait until its containers are gone. Each round runs the three in
//! turn so that a slow spell of the machine hits all of them. Every wait is
//! bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::agent::{AgentOptions, GantryAgent, JOB_LABEL, NODE_LABEL};
use crate::cluster::{AllocationCounts, GantryApi};
use crate::engine::{self, label, LabelSweep, Limits, IMAGE};
use crate::process::find_binary;
use crate::progress::{Counters, Progress};
use crate::say;
use crate::stats::{fmt_ms, fmt_ratio, max, median, min, ratio_json, round3, Table};
use crate::swarm::{self, ServiceSpec, SwarmSession};
use crate::system::{Kind, Setup, System};

/// Job → running containers on one agent, against the engine alone and
/// Docker Swarm on the same engine.
///
/// Starts 3 managers and one `gantry agent --driver docker` on the local
/// engine. For each N in `--counts`, `--rounds` times: submits a service of
/// N replicas of gantry/busybox:latest (`sleep 3600`, no ports, no
/// restarts) and times submit → all N allocations placed, → all N reported
/// running by the agent, → all N running in the engine (`docker ps`); then
/// deletes the job and waits until its containers are gone. Each round is
/// followed by the baseline: N concurrent `docker run -d` of the same image
/// with the same CPU/memory limits, timed until all N run, then removed;
/// then Docker Swarm: a service of N replicas of the same task, timed until
/// all N run, then removed. Swarm mode is initialised on 127.0.0.1 if the
/// engine is not in it (and left at the end), used if already active, and
/// skipped if neither works.
///
/// Needs a Docker engine and the image (deploy/images/build.sh); never
/// pulls. Removes every container and service it caused, whatever way the
/// run ends.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Replica counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    pub counts: Vec<usize>,
    /// Rounds per count (each one Gantry run, one engine run and one Swarm
    /// run).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Longest wait for all N to run, and for them to be removed.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// How often the managers and the engine are asked.
    #[arg(long, default_value = "25ms", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// CPU limit of each container, in millicores (Gantry's, the
    /// baseline's and Swarm's). Very small values throttle container
    /// start-up itself.
    #[arg(long, default_value_t = 100)]
    pub task_cpu_millis: u64,
    /// Memory limit of each container, in MiB.
    #[arg(long, default_value_t = 16)]
    pub task_memory_mb: u64,
    /// The agent's --stop-grace and Swarm's --stop-grace-period (busybox
    /// `sleep` as PID 1 ignores SIGTERM, so each removal waits this long).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub stop_grace: Duration,
    /// Number of managers.
    #[arg(long, default_value_t = 3)]
    pub managers: usize,
    /// Do not measure Docker Swarm (and never touch swarm mode).
    #[arg(long)]
    pub no_swarm: bool,
}

/// Bounds that keep a mistyped flag from starting thousands of containers.
const MAX_COUNT: usize = 500;
const MAX_ROUNDS: usize = 50;
/// The label on every baseline container and every Swarm service; its value
/// is our pid.
const BASELINE_LABEL: &str = "gantry.loadtest";
/// Narrows the baseline label to one round.
const BASELINE_ROUND_LABEL: &str = "gantry.loadtest.round";
const COMMAND: [&str; 2] = ["sleep", "3600"];
/// A pause before each measured run, so the previous one's stragglers
/// (status reports, engine events) do not land inside it.
const SETTLE: Duration = Duration::from_millis(500);

/// What one Gantry round measured, each from the POST (`removed`: from the
/// DELETE).
struct GantryRound {
    placed: Duration,
    reported: Duration,
    engine: Duration,
    removed: Duration,
}

/// Every round's figures for one N, in milliseconds.
#[derive(Default)]
struct CountResult {
    count: usize,
    placed: Vec<f64>,
    reported: Vec<f64>,
    gantry_engine: Vec<f64>,
    removed: Vec<f64>,
    baseline: Vec<f64>,
    swarm: Vec<f64>,
    swarm_removed: Vec<f64>,
}

impl CountResult {
    fn add_gantry(&mut self, r: &GantryRound) {
        self.placed.push(ms(r.placed));
        self.reported.push(ms(r.reported));
        self.gantry_engine.push(ms(r.engine));
        self.removed.push(ms(r.removed));
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "gantry": {
                "placed_ms": spread_json(&self.placed),
                "reported_running_ms": spread_json(&self.reported),
                "engine_running_ms": spread_json(&self.gantry_engine),
                "removed_ms": spread_json(&self.removed),
            },
            "engine": {"running_ms": spread_json(&self.baseline)},
            "swarm": self.swarm_json(),
            "ratio_gantry_to_engine": {
                "engine_running_median": ratio_json(median(&self.gantry_engine), median(&self.baseline)),
                "reported_running_median": ratio_json(median(&self.reported), median(&self.baseline)),
            },
            "ratio_gantry_to_swarm": {
                "engine_running_median": ratio_json(median(&self.gantry_engine), median(&self.swarm)),
                "reported_running_median": ratio_json(median(&self.reported), median(&self.swarm)),
            },
        })
    }

    /// `null` when Swarm was not measured.
    fn swarm_json(&self) -> Value {
        if self.swarm.is_empty() {
            return Value::Null;
        }
        json!({
            "running_ms": spread_json(&self.swarm),
            "removed_ms": spread_json(&self.swarm_removed),
        })
    }
}

fn spread_json(v: &[f64]) -> Value {
    json!({
        "min": round3(min(v)),
        "median": round3(median(v)),
        "max": round3(max(v)),
        "rounds": v.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the round loops share.
struct Ctx<'a> {
    api: GantryApi,
    node: String,
    limits: Limits,
    timeout: Duration,
    poll: Duration,
    pid: u32,
    stop_grace: Duration,
    /// Swarm mode, when Swarm is measured.
    swarm: Option<&'a SwarmSession>,
    counters: Arc<Counters>,
    progress: Progress,
}

/// Whether Swarm is measured in this run, and why not if it is not.
enum SwarmUse {
    Measured(SwarmSession),
    Skipped(String),
}

impl SwarmUse {
    fn to_json(&self) -> Value {
        match self {
            SwarmUse::Measured(s) => json!({
                "measured": true,
                "initialised_by_run": s.initialised(),
                "skipped": null,
            }),
            SwarmUse::Skipped(why) => json!({
                "measured": false,
                "initialised_by_run": false,
                "skipped": why,
            }),
        }
    }
}

/// Joins swarm mode unless `--no-swarm`; a failure only skips Swarm.
async fn open_swarm(args: &EngineArgs, pid: u32) -> SwarmUse {
    if args.no_swarm {
        return SwarmUse::Skipped("--no-swarm".into());
    }
    let removal = args.timeout + args.stop_grace;
    match SwarmSession::open(label(BASELINE_LABEL, &pid.to_string()), removal).await {
        Ok(session) => {
            let how = if session.initialised() {
                "initialised on 127.0.0.1 (left at the end)"
            } else {
                "already active (used, not left)"
            };
            eprintln!("[engine] swarm mode {how}");
            SwarmUse::Measured(session)
        }
        Err(why) => {
            eprintln!("[engine] Docker Swarm skipped: {why}");
            SwarmUse::Skipped(why)
        }
    }
}

pub async fn run(args: &EngineArgs, setup: &Setup) -> Result<(bool, Value)> {
    check_args(args)?;
    let version = engine::engine_version().await?;
    engine::require_image(IMAGE).await?;
    eprintln!("[engine] Docker engine {version}, image {IMAGE} present");
    let bin = find_binary(setup.gantry_bin.as_ref(), "gantry")
        .context("looking for the gantry binary (--gantry-bin)")?;
    let pid = std::process::id();

    // Drop order is the reverse of this: progress, agent (then its
    // containers), the baseline's containers, the managers, then Swarm's
    // services and swarm mode itself if this run entered it.
    let swarm = open_swarm(args, pid).await;
    let mut sys = System::start(Kind::Gantry, args.managers, setup).await?;
    let _baseline = LabelSweep::new(label(BASELINE_LABEL, &pid.to_string()));
    let mut agent_dir = temp_dir("gantry-lt-agent-", setup.keep)?;
    let leader = sys.leader(setup.startup_timeout).await?;
    let api = GantryApi::new(sys.urls()[leader].clone(), Duration::from_secs(10))?;
    let options = agent_options(args, &sys, pid);
    let mut agent = GantryAgent::start(&bin, &options, agent_dir.path())?;
    eprintln!(
        "[engine] agent {} started, log {}",
        agent.name(),
        agent.log_path().display()
    );
    let node = agent.name().to_owned();
    let ready = guarded(
        wait_node_ready(&api, &node, setup.startup_timeout),
        &mut sys,
        &mut agent,
    )
    .await;
    if let Err(e) = ready {
        agent_dir.disable_cleanup(true);
        return Err(sys.fail(format!("{e:#}\n{}", agent.logs(30))));
    }

    let counters = Arc::new(Counters::default());
    let ctx = Ctx {
        api,
        node,
        limits: Limits {
            cpu_millis: args.task_cpu_millis,
            memory_mb: args.task_memory_mb,
        },
        timeout: args.timeout,
        poll: args.poll,
        pid,
        stop_grace: args.stop_grace,
        swarm: match &swarm {
            SwarmUse::Measured(session) => Some(session),
            SwarmUse::Skipped(_) => None,
        },
        progress: Progress::start("engine".into(), counters.clone()),
        counters,
    };
    let mut results = Vec::new();
    let mut failure = None;
    for &n in &args.counts {
        let mut result = CountResult {
            count: n,
            ..Default::default()
        };
        let outcome = measure_count(&ctx, args.rounds, &mut result, &mut sys, &mut agent).await;
        results.push(result);
        if let Err(e) = outcome {
            agent_dir.disable_cleanup(true);
            let kept = format!(
                "{e:#}\n{}(agent log kept at {})",
                agent.logs(30),
                agent.log_path().display()
            );
            failure = Some(format!("{:#}", sys.fail(kept)));
            break;
        }
    }
    drop(ctx);

    print_report(args, &version, &swarm, &results, failure.as_deref());
    let passed = failure.is_none();
    let report = json!({
        "scenario": "engine",
        "params": {
            "counts": args.counts,
            "rounds": args.rounds,
            "timeout_s": args.timeout.as_secs_f64(),
            "poll_ms": ms(args.poll),
            "task_cpu_millis": args.task_cpu_millis,
            "task_memory_mb": args.task_memory_mb,
            "stop_grace_s": args.stop_grace.as_secs_f64(),
            "managers": args.managers,
            "image": IMAGE,
            "engine_version": version,
            "swarm": swarm.to_json(),
        },
        "results": results.iter().map(CountResult::to_json).collect::<Vec<_>>(),
        "passed": passed,
        "failure": failure,
    });
    Ok((passed, report))
}

fn check_args(args: &EngineArgs) -> Result<()> {
    anyhow::ensure!(!args.counts.is_empty(), "--counts needs at least one count");
    for &n in &args.counts {
        anyhow::ensure!(
            (1..=MAX_COUNT).contains(&n),
            "--counts: {n} is outside 1..={MAX_COUNT}"
        );
    }
    anyhow::ensure!(
        (1..=MAX_ROUNDS).contains(&args.rounds),
        "--rounds must be in 1..={MAX_ROUNDS}"
    );
    anyhow::ensure!(args.managers > 0, "--managers must be at least 1");
    anyhow::ensure!(
        args.task_cpu_millis > 0 && args.task_memory_mb >= 6,
        "--task-cpu-millis must be above 0 and --task-memory-mb at least 6 (the engine's minimum)"
    );
    anyhow::ensure!(!args.poll.is_zero(), "--poll must be above 0");
    Ok(())
}

fn temp_dir(prefix: &str, keep: bool) -> Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temp dir")?;
    if keep {
        dir.disable_cleanup(true);
    }
    Ok(dir)
}

/// The agent offers twice what the largest count needs, so capacity never
/// limits placement.
fn agent_options(args: &EngineArgs, sys: &System, pid: u32) -> AgentOptions {
    let largest = args.counts.iter().copied().max().unwrap_or(1) as u64;
    AgentOptions {
        managers: sys
            .urls()
            .iter()
            .map(|u| u.trim_start_matches("http://").to_owned())
            .collect(),
        name: format!("loadtest-{pid}"),
        cpu_millis: (2 * largest * args.task_cpu_millis).max(1000),
        memory_mb: (2 * largest * args.task_memory_mb).max(1024),
        stop_grace: humantime::format_duration(args.stop_grace).to_string(),
    }
}

/// Run `work`, failing early if a manager or the agent exits meanwhile.
async fn guarded<T>(
    work: impl std::future::Future<Output = Result<T>>,
    sys: &mut System,
    agent: &mut GantryAgent,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        e = first_death(sys, agent) => Err(e),
    }
}

/// Resolves only when a process we did not kill has exited.
async fn first_death(sys: &mut System, agent: &mut GantryAgent) -> anyhow::Error {
    loop {
        if let Err(e) = sys.check_alive() {
            return e;
        }
        if let Some(status) = agent.exited() {
            return anyhow::anyhow!("agent {} exited: {status}", agent.name());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_node_ready(api: &GantryApi, name: &str, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    let mut last = String::from("not registered");
    while t0.elapsed() < timeout {
        match api.node_status(name).await {
            Ok(Some(status)) if status == "ready" => {
                eprintln!(
                    "[engine] node {name} ready after {:.1}s",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            Ok(Some(status)) => last = status,
            Ok(None) => last = "not registered".into(),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {name} not ready after {timeout:?} (last seen: {last})")
}

async fn measure_count(
    ctx: &Ctx<'_>,
    rounds: usize,
    result: &mut CountResult,
    sys: &mut System,
    agent: &mut GantryAgent,
) -> Result<()> {
    let n = result.count;
    for r in 1..=rounds {
        let job = format!("lt-ct-{}-n{n}-r{r}", ctx.pid);
        let gantry = guarded(gantry_round(ctx, n, &job, r, rounds), sys, agent)
            .await
            .with_context(|| format!("N={n} round {r}: Gantry, job {job}"))?;
        result.add_gantry(&gantry);
        ctx.counters.ack();
        let tag = format!("n{n}-r{r}");
        let baseline = guarded(engine_round(ctx, n, &tag, r, rounds), sys, agent)
            .await
            .with_context(|| format!("N={n} round {r}: engine baseline"))?;
        result.baseline.push(ms(baseline));
        ctx.counters.ack();
        let swarm = if let Some(session) = ctx.swarm {
            let service = format!("gantry-lt-{}-{n}-{r}", ctx.pid);
            let s = guarded(
                swarm_round(ctx, session, n, &service, r, rounds),
                sys,
                agent,
            )
            .await
            .with_context(|| format!("N={n} round {r}: Swarm, service {service}"))?;
            result.swarm.push(ms(s.running));
            result.swarm_removed.push(ms(s.removed));
            ctx.counters.ack();
            format!(
                "; swarm {} ms, removed in {} ms",
                fmt_ms(ms(s.running)),
                fmt_ms(ms(s.removed))
            )
        } else {
            String::new()
        };
        eprintln!(
            "[engine] N={n} round {r}/{rounds}: gantry placed {} / reported {} / engine {} ms, \
             removed in {} ms; engine alone {} ms{swarm}",
            fmt_ms(ms(gantry.placed)),
            fmt_ms(ms(gantry.reported)),
            fmt_ms(ms(gantry.engine)),
            fmt_ms(ms(gantry.removed)),
            fmt_ms(ms(baseline)),
        );
    }
    Ok(())
}

/// The job: N replicas of one small `sleep` task, no ports, no restarts.
fn job_spec(id: &str, n: usize, limits: Limits) -> Value {
    json!({
        "id": id,
        "type": "service",
        "replicas": n,
        "tasks": [{
            "name": "main",
            "driver": "docker",
            "image": IMAGE,
            "command": COMMAND,
            "resources": {"cpu_millis": limits.cpu_millis, "memory_mb": limits.memory_mb},
        }],
        "restart": {"attempts": 0, "delay": "1s"},
    })
}

async fn gantry_round(
    ctx: &Ctx<'_>,
    n: usize,
    job: &str,
    round: usize,
    rounds: usize,
) -> Result<GantryRound> {
    tokio::time::sleep(SETTLE).await;
    let seen = Seen::new(format!("N={n} round {round}/{rounds} gantry"), n, true);
    let containers = [label(NODE_LABEL, &ctx.node), label(JOB_LABEL, job)];
    let spec = job_spec(job, n, ctx.limits);

    let t0 = Instant::now();
    let deadline = t0 + ctx.timeout;
    ctx.api.submit_job(&spec).await?;
    let ((placed, reported), engine) = tokio::try_join!(
        watch_allocations(ctx, job, t0, deadline, &seen),
        watch_engine(ctx, &containers, t0, deadline, &seen),
    )?;

    ctx.progress.phase(format!("{}: deleting", seen.what));
    let t1 = Instant::now();
    ctx.api.delete_job(job).await?;
    let removed = wait_engine_empty(ctx, &containers, t1 + ctx.timeout).await? - t1;
    Ok(GantryRound {
        placed,
        reported,
        engine,
        removed,
    })
}

async fn engine_round(
    ctx: &Ctx<'_>,
    n: usize,
    tag: &str,
    round: usize,
    rounds: usize,
) -> Result<Duration> {
    tokio::time::sleep(SETTLE).await;
    let seen = Seen::new(format!("N={n} round {round}/{rounds} engine"), n, false);
    let labels = [
        label(BASELINE_LABEL, &ctx.pid.to_string()),
        label(BASELINE_ROUND_LABEL, &format!("{}-{tag}", ctx.pid)),
    ];
    let t0 = Instant::now();
    let deadline = t0 + ctx.timeout;
    let starts = futures::future::try_join_all(
        (0..n).map(|_| engine::run_detached(IMAGE, &COMMAND, &labels, ctx.limits)),
    );
    let (_, running) = tokio::try_join!(starts, watch_engine(ctx, &labels, t0, deadline, &seen))?;

    ctx.progress.phase(format!("{}: removing", seen.what));
    engine::remove_labelled(&labels[1]).await?;
    Ok(running)
}

/// What one Swarm round measured: `service create` → all N running in the
/// engine, and `service rm` → none of its containers left.
struct SwarmRound {
    running: Duration,
    removed: Duration,
}

async fn swarm_round(
    ctx: &Ctx<'_>,
    session: &SwarmSession,
    n: usize,
    service: &str,
    round: usize,
    rounds: usize,
) -> Result<SwarmRound> {
    tokio::time::sleep(SETTLE).await;
    let seen = Seen::new(format!("N={n} round {round}/{rounds} swarm"), n, false);
    let containers = [swarm::service_containers(service)];
    let spec = ServiceSpec {
        name: service,
        replicas: n,
        image: IMAGE,
        command: &COMMAND,
        limits: ctx.limits,
        stop_grace: ctx.stop_grace,
    };

    let t0 = Instant::now();
    let deadline = t0 + ctx.timeout;
    let running = tokio::try_join!(
        session.create_service(&spec),
        watch_engine(ctx, &containers, t0, deadline, &seen),
    );
    let running = match running {
        Ok((_, running)) => running,
        Err(e) => bail!("{e:#}; its tasks: {}", swarm::task_states(service).await),
    };

    ctx.progress.phase(format!("{}: removing", seen.what));
    let t1 = Instant::now();
    session.remove_service(service).await?;
    let removed = wait_engine_empty(ctx, &containers, t1 + ctx.timeout).await? - t1;
    Ok(SwarmRound { running, removed })
}

/// Poll the job's allocations until all N are placed and reported running.
/// Returns when each first held, from `t0`.
async fn watch_allocations(
    ctx: &Ctx<'_>,
    job: &str,
    t0: Instant,
    deadline: Instant,
    seen: &Seen,
) -> Result<(Duration, Duration)> {
    let mut placed_at = None;
    let mut last_error = None;
    loop {
        match ctx.api.allocation_counts(job).await {
            Ok(AllocationCounts { placed, running }) => {
                let now = t0.elapsed();
                seen.set(&seen.placed, placed, &ctx.progress);
                seen.set(&seen.reported, running, &ctx.progress);
                if placed >= seen.n {
                    placed_at.get_or_insert(now);
                }
                if running >= seen.n {
                    return Ok((placed_at.unwrap_or(now), now));
                }
            }
            Err(e) => {
                ctx.counters.error();
                last_error = Some(format!("{e:#}"));
            }
        }
        if Instant::now() > deadline {
            bail!(
                "after {:?}: {} placed, {} reported running, of {}{}",
                ctx.timeout,
                seen.placed.load(Ordering::Relaxed),
                seen.reported.load(Ordering::Relaxed),
                seen.n,
                last_error.map_or(String::new(), |e| format!(" (last error: {e})"))
            );
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// Poll `docker ps` until N containers with `labels` are running; returns
/// when that first held, from `t0`.
async fn watch_engine(
    ctx: &Ctx<'_>,
    labels: &[String],
    t0: Instant,
    deadline: Instant,
    seen: &Seen,
) -> Result<Duration> {
    let mut last_error = None;
    loop {
        match engine::count(labels, false).await {
            Ok(running) => {
                let now = t0.elapsed();
                seen.set(&seen.engine, running, &ctx.progress);
                if running >= seen.n {
                    return Ok(now);
                }
            }
            Err(e) => {
                ctx.counters.error();
                last_error = Some(format!("{e:#}"));
            }
        }
        if Instant::now() > deadline {
            bail!(
                "after {:?}: {} of {} containers running in the engine{}",
                ctx.timeout,
                seen.engine.load(Ordering::Relaxed),
                seen.n,
                last_error.map_or(String::new(), |e| format!(" (last error: {e})"))
            );
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// Poll until no container (in any state) carries `labels`; returns when.
async fn wait_engine_empty(ctx: &Ctx<'_>, labels: &[String], deadline: Instant) -> Result<Instant> {
    loop {
        let left = engine::count(labels, true).await?;
        if left == 0 {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "{left} containers still present {:?} after DELETE",
                ctx.timeout
            );
        }
        tokio::time::sleep(ctx.poll).await;
    }
}

/// The latest counts of one run, shown in the progress line.
struct Seen {
    what: String,
    n: usize,
    /// A Gantry run (allocations shown) rather than the engine alone.
    gantry: bool,
    placed: AtomicUsize,
    reported: AtomicUsize,
    engine: AtomicUsize,
}

impl Seen {
    fn new(what: String, n: usize, gantry: bool) -> Seen {
        Seen {
            what,
            n,
            gantry,
            placed: AtomicUsize::new(0),
            reported: AtomicUsize::new(0),
            engine: AtomicUsize::new(0),
        }
    }

    fn set(&self, which: &AtomicUsize, value: usize, progress: &Progress) {
        which.store(value, Ordering::Relaxed);
        let n = self.n;
        let engine = self.engine.load(Ordering::Relaxed);
        let text = if self.gantry {
            format!(
                "{}: placed {}/{n}, reported {}/{n}, engine {engine}/{n}",
                self.what,
                self.placed.load(Ordering::Relaxed),
                self.reported.load(Ordering::Relaxed),
            )
        } else {
            format!("{}: {engine}/{n} running", self.what)
        };
        progress.phase(text);
    }
}

fn print_report(
    args: &EngineArgs,
    version: &str,
    swarm: &SwarmUse,
    results: &[CountResult],
    failure: Option<&str>,
) {
    say!();
    say!(
        "engine: {} managers, 1 agent (docker driver, Docker {version}), {} rounds per count, \
         {IMAGE} `sleep 3600`, {} millicores / {} MiB each, polled every {}",
        args.managers,
        args.rounds,
        args.task_cpu_millis,
        args.task_memory_mb,
        humantime::format_duration(args.poll),
    );
    match swarm {
        SwarmUse::Measured(s) if s.initialised() => {
            say!("swarm: measured (swarm mode initialised by this run, left at the end)")
        }
        SwarmUse::Measured(_) => say!("swarm: measured (swarm mode was already active)"),
        SwarmUse::Skipped(why) => say!("swarm: skipped: {why}"),
    }
    for r in results {
        say!();
        say!("{}", count_table(r).render().trim_end());
        print_ratios(r);
    }
    if let Some(f) = failure {
        say!();
        say!("FAILED: {f}");
    }
}

fn count_table(r: &CountResult) -> Table {
    let mut t = Table::new([
        format!("N={} (ms)", r.count),
        "min".into(),
        "median".into(),
        "max".into(),
    ]);
    let rows: [(&str, &[f64]); 7] = [
        ("gantry: submit -> all placed", &r.placed),
        ("gantry: submit -> all reported running", &r.reported),
        ("gantry: submit -> all running (engine)", &r.gantry_engine),
        ("engine: N x docker run -> all running", &r.baseline),
        ("swarm: service create -> all running", &r.swarm),
        ("gantry: delete -> all removed", &r.removed),
        ("swarm: service rm -> all removed", &r.swarm_removed),
    ];
    for (name, v) in rows {
        if v.is_empty() {
            continue;
        }
        t.row([
            name.to_string(),
            fmt_ms(min(v)),
            fmt_ms(median(v)),
            fmt_ms(max(v)),
        ]);
    }
    t
}

/// Gantry's medians over each other contender's.
fn print_ratios(r: &CountResult) {
    let others: [(&str, &[f64]); 2] = [("engine", &r.baseline), ("swarm", &r.swarm)];
    for (name, v) in others {
        if v.is_empty() {
            continue;
        }
        say!(
            "gantry/{name} (medians): running in the engine {}, reported running {}",
            fmt_ratio(median(&r.gantry_engine), median(v)),
            fmt_ratio(median(&r.reported), median(v)),
        );
    }
}
