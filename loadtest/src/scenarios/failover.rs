//! Scenario `failover`: what clients see when the leader dies, and proof that
//! no acknowledged write is lost.
//!
//! Why it exists: the design promises that an acknowledged write survives the
//! loss of any minority of managers, the leader included. This scenario
//! kills the leader with SIGKILL (no clean shutdown, no flush) again and
//! again under continuous writes, restarts it from its data dir each time,
//! and at the end checks every acknowledged id against what the cluster
//! holds. On the way it measures the two numbers an operator cares about:
//! how long writes stall (the longest gap between consecutive acknowledged
//! writes around each kill) and how long until a survivor names a new
//! leader.
//!
//! Writers behave like a careful client: round-robin over all managers,
//! ~2 s per-request timeout, and on any error the *same* job id is retried on
//! the next manager until it is acknowledged (so an id is never abandoned
//! half-written while the run lasts).
//!
//! With `--agents S` (Gantry only), S simulated agents (fakes, in this
//! process: `place::fleet`) hold sessions throughout, and each kill is also
//! judged from the nodes' side: how long until every agent has a session with
//! a manager again, and — once the new leader's grace (2 × TTL) has passed —
//! that no node was marked `down` (a failover must not be mistaken for dead
//! nodes).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::progress::{Counters, Progress};
use crate::say;
use crate::stats::{fmt_ms, fmt_ratio, max, median, ratio_json, round3, ErrorCounts, Table};
use crate::svg::{Chart, Marker};
use crate::system::{send_write, Endpoints, Kind, Setup, System};
use crate::timeline::LatencyTimeline;

use super::place::fleet::{wall_ms, Fleet, NodeSize};
use super::{systems_to_run, Compare};

/// Leader failover under write load: SIGKILL the leader repeatedly, measure
/// the write stall and the election, verify no acknowledged write is lost.
///
/// Starts a fresh cluster, lets `--writers` clients write continuously
/// (round-robin over all nodes, retrying the same id on the next node on
/// error), and `--kills` times: waits `--interval`, SIGKILLs the current
/// leader, waits for a survivor to report a new leader, restarts the killed
/// node from its data dir and waits until it has caught up. After one more
/// interval the writers stop and every acknowledged id is looked up.
/// Exits non-zero if any acknowledged write is missing.
#[derive(clap::Args, Debug, Clone)]
pub struct FailoverArgs {
    /// How many times to kill the leader.
    #[arg(long, default_value_t = 5)]
    pub kills: usize,
    /// Concurrent writers, each with one write in flight at a time.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Steady time before each kill (after the previous recovery), and
    /// after the last one.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Number of managers (and etcd members with --compare etcd).
    #[arg(long, default_value_t = 3)]
    pub managers: usize,
    /// Per-request timeout for the writers.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Give up on a kill if no new leader is reported within this time.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub leader_timeout: Duration,
    /// Give up if a restarted node has not caught up within this time.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub catchup_timeout: Duration,
    /// Upper bound on write attempts in all; writers stop when it is reached.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// Run the same kill loop against another system too and print both.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,
    /// Run only this system (e.g. `--only etcd`).
    #[arg(long, value_enum, hide = true)]
    pub only: Option<Kind>,
    /// Attach this many simulated agents during the run (Gantry only): per
    /// kill, also measure when every agent has a session again, and fail if
    /// any node is marked down.
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// After a kill, how long every agent may take to have a session again.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
}

/// One kill and what followed it. Times are from the scenario's start.
struct Kill {
    killed: usize,
    new_leader: Option<usize>,
    at: Duration,
    /// Kill → a survivor reports a new leader.
    election: Option<Duration>,
    /// Restart → the restarted node has applied what the leader had committed.
    catch_up: Option<Duration>,
    /// Longest gap between consecutive acks, from the kill to the next kill
    /// (or the end of writing). Filled in once the writers are done.
    gap: Duration,
    acks_in_window: usize,
    /// With agents: what the nodes saw of this kill.
    agents: Option<AgentsAfterKill>,
}

/// One kill seen from the simulated agents.
#[derive(Debug, Clone, Copy, Default)]
struct AgentsAfterKill {
    /// Kill → the last agent received a complete set again (a new session).
    sessions_back: Option<Duration>,
    /// Agents with no new session within `--session-timeout`.
    without_session: usize,
    /// After the new leader's grace: this fleet's nodes `down`, and nodes whose
    /// status changed since the kill (a down and back up counts here).
    nodes_down: Option<usize>,
    nodes_changed: Option<usize>,
}

impl AgentsAfterKill {
    fn wrongly_down(&self) -> usize {
        self.nodes_down
            .unwrap_or(0)
            .max(self.nodes_changed.unwrap_or(0))
    }
}

struct Outcome {
    kind: Kind,
    kills: Vec<Kill>,
    /// Longest gap between acks before the first kill: the no-fault baseline.
    baseline_gap: Duration,
    written_for: Duration,
    acked: usize,
    errors: ErrorCounts,
    stored: Option<usize>,
    lost: Option<Vec<String>>,
    failure: Option<String>,
    /// Simulated agents attached (0: none; always 0 for etcd).
    agents: usize,
    /// Kills after which a node was wrongly marked down, or an agent got no session.
    agent_failures: Vec<String>,
    /// Each write's latency as its client saw it (first attempt → ack, retries
    /// included), by ack time since the writers started: for the chart.
    latency: LatencyTimeline,
}

impl Outcome {
    fn sessions_back_ms(&self) -> Vec<f64> {
        self.kills
            .iter()
            .filter_map(|k| k.agents.and_then(|a| a.sessions_back))
            .map(ms)
            .collect()
    }

    fn wrongly_down(&self) -> usize {
        self.kills
            .iter()
            .filter_map(|k| k.agents)
            .map(|a| a.wrongly_down())
            .sum()
    }

    fn gaps_ms(&self) -> Vec<f64> {
        self.kills.iter().map(|k| ms(k.gap)).collect()
    }

    fn elections_ms(&self) -> Vec<f64> {
        self.kills
            .iter()
            .filter_map(|k| k.election)
            .map(ms)
            .collect()
    }

    fn passed(&self) -> bool {
        self.failure.is_none()
            && self.agent_failures.is_empty()
            && self.lost.as_ref().is_some_and(Vec::is_empty)
    }

    fn to_json(&self) -> Value {
        json!({
            "system": self.kind.name(),
            "kills": self.kills.iter().enumerate().map(|(n, k)| json!({
                "kill": n + 1,
                "killed_node": k.killed + 1,
                "new_leader_node": k.new_leader.map(|l| l + 1),
                "at_s": round3(k.at.as_secs_f64()),
                "new_leader_after_ms": k.election.map(|d| round3(ms(d))),
                "write_gap_ms": round3(ms(k.gap)),
                "caught_up_after_ms": k.catch_up.map(|d| round3(ms(d))),
                "acks_until_next_kill": k.acks_in_window,
                "agents_sessions_back_after_ms": k.agents.and_then(|a| a.sessions_back).map(|d| round3(ms(d))),
                "agents_without_session": k.agents.map(|a| a.without_session),
                "nodes_down_after_grace": k.agents.and_then(|a| a.nodes_down),
                "nodes_status_changed_since_kill": k.agents.and_then(|a| a.nodes_changed),
            })).collect::<Vec<_>>(),
            "agents": self.agents,
            "median_sessions_back_ms": (self.agents > 0).then(|| round3(median(&self.sessions_back_ms()))),
            "max_sessions_back_ms": (self.agents > 0).then(|| round3(max(&self.sessions_back_ms()))),
            "nodes_wrongly_down": (self.agents > 0).then(|| self.wrongly_down()),
            "agent_failures": self.agent_failures,
            "baseline_gap_ms": round3(ms(self.baseline_gap)),
            "median_gap_ms": round3(median(&self.gaps_ms())),
            "max_gap_ms": round3(max(&self.gaps_ms())),
            "median_new_leader_ms": round3(median(&self.elections_ms())),
            "max_new_leader_ms": round3(max(&self.elections_ms())),
            "written_for_s": round3(self.written_for.as_secs_f64()),
            "acked": self.acked,
            "stored": self.stored,
            "errors": self.errors.to_json(),
            "lost_count": self.lost.as_ref().map(Vec::len),
            "lost": self.lost,
            "failure": self.failure,
            "passed": self.passed(),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The resolution of the latency chart.
const CHART_BUCKET: Duration = Duration::from_millis(100);

/// What one writer brings back: the instant and id of each ack, and each
/// write's latency over time.
struct WriterResult {
    acks: Vec<(Instant, u64)>,
    errors: ErrorCounts,
    latency: LatencyTimeline,
}

pub async fn run(args: &FailoverArgs, setup: &Setup) -> Result<(bool, Value)> {
    anyhow::ensure!(args.writers > 0, "--writers must be at least 1");
    anyhow::ensure!(
        args.managers >= 3,
        "--managers must be at least 3 to survive a kill"
    );
    let mut outcomes = Vec::new();
    for kind in systems_to_run(args.only, args.compare) {
        outcomes.push(run_one(kind, args, setup).await?);
    }
    print_report(args, &outcomes);
    for outcome in &outcomes {
        add_latency_chart(outcome);
    }
    let passed = outcomes.iter().all(Outcome::passed);
    let report = json!({
        "scenario": "failover",
        "params": {
            "kills": args.kills,
            "writers": args.writers,
            "interval_s": args.interval.as_secs_f64(),
            "managers": args.managers,
            "request_timeout_s": args.request_timeout.as_secs_f64(),
            "max_requests": args.max_requests,
            "agents": args.agents,
        },
        "results": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        "ratio_gantry_to_etcd": ratios(&outcomes),
        "passed": passed,
    });
    Ok((passed, report))
}

async fn run_one(kind: Kind, args: &FailoverArgs, setup: &Setup) -> Result<Outcome> {
    let mut sys = System::start(kind, args.managers, setup).await?;
    // etcd has no agents: the agent figures are Gantry's alone.
    let fleet = match kind {
        Kind::Gantry if args.agents > 0 => Some(attach_agents(&mut sys, args, setup).await?),
        _ => None,
    };
    let mut agent_failures = Vec::new();
    let all: Vec<usize> = (0..sys.len()).collect();
    let endpoints = sys.endpoints(&all);
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(format!("failover {}", kind.name()), counters.clone());
    progress.phase("steady");

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let next_id = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.writers {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(args.request_timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        tasks.spawn(writer(
            w,
            client,
            endpoints.clone(),
            counters.clone(),
            stop.clone(),
            attempts.clone(),
            next_id.clone(),
            args.max_requests,
            t0,
        ));
    }

    // The kill loop. Any failure stops it, but the writers are still stopped,
    // and what was acknowledged is still checked and reported.
    let mut kills: Vec<(Kill, Instant)> = Vec::new();
    let mut failure = None;
    for n in 0..args.kills {
        progress.phase(format!("steady before kill {}/{}", n + 1, args.kills));
        if let Err(e) = watchful_sleep(&mut sys, args.interval).await {
            failure = Some(format!("{e:#}"));
            break;
        }
        match kill_once(&mut sys, args, &progress, n, t0).await {
            Ok((mut kill, at)) => {
                if let Some(fleet) = &fleet {
                    let checked = check_agents(&mut sys, fleet, args, &progress, &kill, at).await;
                    match checked {
                        Ok((seen, problem)) => {
                            kill.agents = Some(seen);
                            agent_failures.extend(problem.map(|p| format!("kill {}: {p}", n + 1)));
                        }
                        Err(e) => {
                            failure = Some(format!("{e:#}"));
                            kills.push((kill, at));
                            break;
                        }
                    }
                }
                kills.push((kill, at));
            }
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    if failure.is_none() {
        progress.phase("steady after the last kill");
        if let Err(e) = watchful_sleep(&mut sys, args.interval).await {
            failure = Some(format!("{e:#}"));
        }
    }
    progress.phase("stopping writers");
    stop.store(true, Ordering::Relaxed);
    let t_stop = Instant::now();
    let mut acks: Vec<(Instant, u64)> = Vec::new();
    let mut errors = ErrorCounts::default();
    let mut latency = LatencyTimeline::new(t0, CHART_BUCKET);
    while let Some(r) = tasks.join_next().await {
        let r = r?;
        acks.extend(r.acks);
        errors.merge(&r.errors);
        latency.merge(&r.latency);
    }
    acks.sort_unstable();
    let times: Vec<Instant> = acks.iter().map(|(t, _)| *t).collect();

    // Gaps: per kill, the longest silence between consecutive acks from the
    // kill up to the next kill (or the stop).
    let ends: Vec<Instant> = kills
        .iter()
        .skip(1)
        .map(|(_, at)| *at)
        .chain(std::iter::once(t_stop))
        .collect();
    for ((kill, at), end) in kills.iter_mut().zip(ends) {
        (kill.gap, kill.acks_in_window) = longest_gap(&times, t0, *at, end);
    }
    let first_kill = kills.first().map(|(_, at)| *at).unwrap_or(t_stop);
    // Skip the first second: connections are still being opened.
    let (baseline_gap, _) = longest_gap(&times, t0, t0 + Duration::from_secs(1), first_kill);

    // Verification: every acknowledged id must be stored.
    progress.phase("verifying");
    let acked_ids: HashSet<String> = acks.iter().map(|(_, n)| format!("lt-{n}")).collect();
    let (stored, lost) = match verify(&mut sys, &acked_ids, setup).await {
        Ok((stored, lost)) => (Some(stored), Some(lost)),
        Err(e) => {
            let msg = format!("verification failed: {e:#}");
            failure = Some(match failure {
                Some(f) => format!("{f}; {msg}"),
                None => msg,
            });
            (None, None)
        }
    };
    drop(progress);
    if let Some(f) = &failure {
        eprintln!("[failover {}] FAILED: {f}", kind.name());
    }
    Ok(Outcome {
        kind,
        kills: kills.into_iter().map(|(k, _)| k).collect(),
        baseline_gap,
        written_for: t_stop - t0,
        acked: acked_ids.len(),
        errors,
        stored,
        lost,
        failure,
        agents: fleet.as_ref().map_or(0, Fleet::len),
        agent_failures,
        latency,
    })
    // `fleet` and `sys` drop here: the agents stop, every process is killed,
    // then its temp dir removed.
}

/// Starts `--agents` simulated agents and waits until every node is `ready`.
async fn attach_agents(sys: &mut System, args: &FailoverArgs, setup: &Setup) -> Result<Fleet> {
    let prefix = format!("lt-fo-{}", std::process::id());
    let size = NodeSize {
        cpu_millis: 4000,
        memory_mb: 8192,
    };
    let fleet = Fleet::start(&sys.urls(), &prefix, args.agents, size)?;
    // Registration is one Raft write per node: allow ~10 ms each on top.
    let budget = setup.startup_timeout + Duration::from_millis(10 * args.agents as u64);
    let ready = fleet
        .wait_ready(Instant::now() + budget, Duration::from_millis(200), |_| {})
        .await;
    sys.check_alive()?;
    let took = ready?;
    eprintln!(
        "[failover gantry] {} simulated agents ready after {:.1}s (heartbeat TTL {:?})",
        fleet.len(),
        took.as_secs_f64(),
        fleet.ttl()
    );
    Ok(fleet)
}

/// After the kill at `at`: wait until every agent has a session again, then until
/// the new leader's grace (2 × TTL from its election) has passed, then count the
/// fleet's nodes that are `down` or changed status since the kill. Returns the
/// figures and, if a node was wrongly marked down or an agent got no session,
/// why the run fails.
async fn check_agents(
    sys: &mut System,
    fleet: &Fleet,
    args: &FailoverArgs,
    progress: &Progress,
    kill: &Kill,
    at: Instant,
) -> Result<(AgentsAfterKill, Option<String>)> {
    let kill_wall_ms = wall_ms().saturating_sub(at.elapsed().as_millis() as u64);
    progress.phase(format!(
        "kill at {:.1}s: waiting for every agent's session",
        kill.at.as_secs_f64()
    ));
    let mut seen = AgentsAfterKill::default();
    let deadline = at + args.session_timeout;
    loop {
        let (last, missing) = fleet.sessions_back_since(at);
        if missing == 0 || Instant::now() >= deadline {
            seen.sessions_back = last.filter(|_| missing == 0).map(|t| t - at);
            seen.without_session = missing;
            break;
        }
        sys.check_alive()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing expires before 2 x TTL after the election; a node missed then is
    // marked down within a check interval (250 ms) and a commit: allow 1 s more.
    let elected = at + kill.election.unwrap_or_default();
    let after_grace = elected + fleet.ttl() * 2 + Duration::from_millis(1250);
    progress.phase("waiting out the new leader's grace");
    watchful_sleep(sys, after_grace.saturating_duration_since(Instant::now())).await?;
    let tally = fleet.node_tally(false, kill_wall_ms).await?;
    seen.nodes_down = Some(tally.down);
    seen.nodes_changed = Some(tally.changed_since);
    let mut problems = Vec::new();
    if seen.without_session > 0 {
        problems.push(format!(
            "{} agents had no session {:?} after the kill",
            seen.without_session, args.session_timeout
        ));
    }
    if seen.wrongly_down() > 0 {
        problems.push(format!(
            "{} nodes down and {} changed status after the grace (must be 0)",
            tally.down, tally.changed_since
        ));
    }
    eprintln!(
        "[failover gantry] agents: every session back {} after the kill; nodes down {}, changed {}",
        seen.sessions_back
            .map_or("-".into(), |d| format!("{:.0} ms", ms(d))),
        tally.down,
        tally.changed_since
    );
    Ok((seen, (!problems.is_empty()).then(|| problems.join("; "))))
}

/// Kill the leader, wait for a new one, restart the old one, wait until it
/// has caught up.
async fn kill_once(
    sys: &mut System,
    args: &FailoverArgs,
    progress: &Progress,
    n: usize,
    t0: Instant,
) -> Result<(Kill, Instant)> {
    let of = format!("kill {}/{}", n + 1, args.kills);
    progress.phase(format!("{of}: finding the leader"));
    let leader = sys.leader(args.leader_timeout).await?;
    let at = Instant::now();
    sys.kill(leader);
    progress.phase(format!(
        "{of}: killed node {}, waiting for a new leader",
        leader + 1
    ));
    let new_leader = sys.wait_new_leader(leader, args.leader_timeout).await?;
    let election = at.elapsed();
    sys.restart(leader)?;
    let restarted = Instant::now();
    progress.phase(format!("{of}: node {} restarted, catching up", leader + 1));
    sys.wait_caught_up(leader, args.catchup_timeout).await?;
    let catch_up = restarted.elapsed();
    eprintln!(
        "[failover {}] {of}: killed node {}; node {} leads after {:.0} ms; node {} caught up {:.0} ms after restart",
        sys.name(),
        leader + 1,
        new_leader + 1,
        ms(election),
        leader + 1,
        ms(catch_up),
    );
    Ok((
        Kill {
            killed: leader,
            new_leader: Some(new_leader),
            at: at - t0,
            election: Some(election),
            catch_up: Some(catch_up),
            gap: Duration::ZERO,
            acks_in_window: 0,
            agents: None,
        },
        at,
    ))
}

/// Sleep, checking every 200 ms that no node died on its own.
async fn watchful_sleep(sys: &mut System, d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        sys.check_alive()?;
        tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(200))).await;
    }
    sys.check_alive()
}

/// The longest time without an ack in `(from, to]`, counting from the last
/// ack before `from` (or `t0`) and, if acks never resume, up to `to`. Also
/// returns how many acks fall in the window. `times` is sorted.
fn longest_gap(times: &[Instant], t0: Instant, from: Instant, to: Instant) -> (Duration, usize) {
    let first = times.partition_point(|t| *t <= from);
    let last = times.partition_point(|t| *t <= to);
    let mut prev = if first > 0 { times[first - 1] } else { t0 };
    let mut gap = Duration::ZERO;
    for t in &times[first..last] {
        gap = gap.max(*t - prev);
        prev = *t;
    }
    gap = gap.max(to.saturating_duration_since(prev));
    (gap, last - first)
}

/// Ask the leader for every stored id; whatever acknowledged id the list
/// lacks is looked up one by one (in case the list is paged) before it is
/// called lost.
async fn verify(
    sys: &mut System,
    acked: &HashSet<String>,
    setup: &Setup,
) -> Result<(usize, Vec<String>)> {
    const MAX_LOOKUPS: usize = 2000;
    let leader = sys.leader(setup.startup_timeout).await?;
    let stored = sys.stored_ids(leader).await?;
    let mut missing: Vec<String> = acked.difference(&stored).cloned().collect();
    missing.sort_by_key(|id| id[3..].parse::<u64>().unwrap_or(u64::MAX));
    if missing.is_empty() {
        return Ok((stored.len(), missing));
    }
    eprintln!(
        "[failover {}] {} acknowledged ids not in the list; looking them up one by one",
        sys.name(),
        missing.len()
    );
    let mut lost = sys
        .confirm_missing(leader, &missing[..missing.len().min(MAX_LOOKUPS)])
        .await?;
    // Beyond the lookup budget, trust the list.
    lost.extend(missing.into_iter().skip(MAX_LOOKUPS));
    Ok((stored.len(), lost))
}

#[allow(clippy::too_many_arguments)]
async fn writer(
    w: usize,
    client: reqwest::Client,
    endpoints: Endpoints,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    max_requests: u64,
    t0: Instant,
) -> WriterResult {
    let mut out = WriterResult {
        acks: Vec::new(),
        errors: ErrorCounts::default(),
        latency: LatencyTimeline::new(t0, CHART_BUCKET),
    };
    let mut k = w;
    'ids: while !stop.load(Ordering::Relaxed) {
        let n = next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("lt-{n}");
        let first_attempt = Instant::now();
        let mut failures = 0;
        loop {
            if stop.load(Ordering::Relaxed)
                || attempts.fetch_add(1, Ordering::Relaxed) >= max_requests
            {
                break 'ids;
            }
            let result = send_write(endpoints.write(&client, k % endpoints.len(), &id)).await;
            k += 1; // next manager, whether this one answered or not
            match result {
                Ok(()) => {
                    let acked = Instant::now();
                    out.acks.push((acked, n));
                    out.latency.record(acked, acked - first_attempt);
                    counters.ack();
                    continue 'ids;
                }
                Err(e) => {
                    counters.error();
                    out.errors.add(&e);
                    failures += 1;
                    if failures % endpoints.len() == 0 {
                        // Every node refused: no leader yet; back off a little.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }
    out
}

fn ratios(outcomes: &[Outcome]) -> Value {
    let (Some(g), Some(e)) = (
        outcomes.iter().find(|o| o.kind == Kind::Gantry),
        outcomes.iter().find(|o| o.kind == Kind::Etcd),
    ) else {
        return Value::Null;
    };
    let r = ratio_json;
    json!({
        "median_gap": r(median(&g.gaps_ms()), median(&e.gaps_ms())),
        "max_gap": r(max(&g.gaps_ms()), max(&e.gaps_ms())),
        "median_new_leader": r(median(&g.elections_ms()), median(&e.elections_ms())),
    })
}

/// `failover-<system>.svg`: write latency per 100 ms (max and mean), with a
/// dashed marker at each kill. One chart per system: each run has its own
/// time axis and its own kills.
fn add_latency_chart(o: &Outcome) {
    let system = o.kind.name();
    let chart = Chart {
        title: format!(
            "failover ({system}): write latency per {} ms, retries included",
            CHART_BUCKET.as_millis()
        ),
        x_label: "seconds since the writers started (by ack time)".into(),
        y_label: "latency ms".into(),
        series: vec![
            o.latency.max_series(&format!("{system} max")),
            o.latency.mean_series(&format!("{system} mean")),
        ],
        markers: o
            .kills
            .iter()
            .enumerate()
            .map(|(n, k)| Marker {
                x: k.at.as_secs_f64(),
                label: format!("kill {}", n + 1),
            })
            .collect(),
    };
    crate::report::add_chart(&format!("failover-{system}"), chart);
}

/// The per-kill cells of the agent figures: sessions back, nodes down.
fn agent_cells(a: AgentsAfterKill) -> [String; 2] {
    let down = match (a.nodes_down, a.nodes_changed) {
        (Some(d), Some(c)) if c > d => format!("{d} (+{} flapped)", c - d),
        (Some(d), _) => d.to_string(),
        _ => "-".into(),
    };
    [a.sessions_back.map_or("-".into(), |d| fmt_ms(ms(d))), down]
}

fn print_report(args: &FailoverArgs, outcomes: &[Outcome]) {
    say!();
    say!(
        "failover: {} kills of the leader (SIGKILL), {} writers, {} steady between kills, {} nodes",
        args.kills,
        args.writers,
        humantime::format_duration(args.interval),
        args.managers,
    );
    for o in outcomes {
        say!();
        say!("{}:", o.kind.name());
        let mut header = vec![
            "kill",
            "at s",
            "killed",
            "new leader",
            "new leader after ms",
            "write gap ms",
            "caught up after ms",
            "acks to next kill",
        ];
        if o.agents > 0 {
            header.extend(["sessions back after ms", "nodes down"]);
        }
        let mut t = Table::new(header);
        for (n, k) in o.kills.iter().enumerate() {
            let mut row = vec![
                (n + 1).to_string(),
                format!("{:.1}", k.at.as_secs_f64()),
                (k.killed + 1).to_string(),
                k.new_leader
                    .map(|l| (l + 1).to_string())
                    .unwrap_or("-".into()),
                k.election.map(|d| fmt_ms(ms(d))).unwrap_or("-".into()),
                fmt_ms(ms(k.gap)),
                k.catch_up.map(|d| fmt_ms(ms(d))).unwrap_or("-".into()),
                k.acks_in_window.to_string(),
            ];
            if o.agents > 0 {
                row.extend(agent_cells(k.agents.unwrap_or_default()));
            }
            t.row(row);
        }
        say!("{}", t.render().trim_end());
        let lost = match &o.lost {
            None => "not checked".to_string(),
            Some(l) if l.is_empty() => "lost=0".to_string(),
            Some(l) => {
                let shown: Vec<&str> = l.iter().take(50).map(String::as_str).collect();
                format!(
                    "LOST {} acknowledged writes: {}{}",
                    l.len(),
                    shown.join(", "),
                    if l.len() > 50 { ", ..." } else { "" }
                )
            }
        };
        say!(
            "acked {} writes in {:.1}s ({:.0}/s); stored {}; {lost}",
            o.acked,
            o.written_for.as_secs_f64(),
            o.acked as f64 / o.written_for.as_secs_f64().max(1e-9),
            o.stored.map(|s| s.to_string()).unwrap_or("?".into()),
        );
        say!(
            "baseline gap before the first kill {} ms; errors: {}",
            fmt_ms(ms(o.baseline_gap)),
            o.errors.brief()
        );
        for s in o.errors.samples() {
            say!("  {s}");
        }
        if o.agents > 0 {
            say!(
                "{} simulated agents: every session back after a kill in median {} ms, max {} ms; nodes wrongly marked down: {} (must be 0)",
                o.agents,
                fmt_ms(median(&o.sessions_back_ms())),
                fmt_ms(max(&o.sessions_back_ms())),
                o.wrongly_down(),
            );
        }
        for f in &o.agent_failures {
            say!("FAILED (agents): {f}");
        }
        if let Some(f) = &o.failure {
            say!("FAILED: {f}");
        }
    }

    say!();
    let both = outcomes.len() == 2;
    let mut header: Vec<String> = vec!["summary".into()];
    header.extend(outcomes.iter().map(|o| o.kind.name().to_string()));
    if both {
        header.push("gantry/etcd".into());
    }
    let mut t = Table::new(header);
    type Figure = fn(&Outcome) -> f64;
    let rows: [(&str, Figure, bool); 6] = [
        ("median write gap ms", |o| median(&o.gaps_ms()), true),
        ("max write gap ms", |o| max(&o.gaps_ms()), true),
        (
            "median new leader after ms",
            |o| median(&o.elections_ms()),
            true,
        ),
        ("max new leader after ms", |o| max(&o.elections_ms()), true),
        ("baseline gap ms", |o| ms(o.baseline_gap), true),
        ("kills done", |o| o.kills.len() as f64, false),
    ];
    for (name, figure, ratio) in rows {
        let mut row = vec![name.to_string()];
        row.extend(outcomes.iter().map(|o| {
            if ratio {
                fmt_ms(figure(o))
            } else {
                format!("{:.0}", figure(o))
            }
        }));
        if both {
            row.push(if ratio {
                fmt_ratio(figure(&outcomes[0]), figure(&outcomes[1]))
            } else {
                String::new()
            });
        }
        t.row(row);
    }
    let mut row = vec!["lost acknowledged writes".to_string()];
    row.extend(outcomes.iter().map(|o| {
        o.lost
            .as_ref()
            .map(|l| l.len().to_string())
            .unwrap_or("?".into())
    }));
    t.row(row);
    say!("{}", t.render().trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_gap_spans_the_kill_and_counts_a_stall_to_the_end() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(10), at(20), at(30), at(700), at(710)];
        // Kill at 35: last ack before it at 30, next at 700.
        assert_eq!(
            longest_gap(&times, t0, at(35), at(800)),
            (Duration::from_millis(670), 2)
        );
        // No ack after 710 up to 2000: the stall counts.
        assert_eq!(
            longest_gap(&times, t0, at(705), at(2000)),
            (Duration::from_millis(1290), 1)
        );
        // Nothing at all: from t0.
        assert_eq!(
            longest_gap(&[], t0, at(0), at(50)),
            (Duration::from_millis(50), 0)
        );
    }
}
