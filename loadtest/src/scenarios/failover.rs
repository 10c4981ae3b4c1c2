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

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::progress::{Counters, Progress};
use crate::stats::{fmt_ms, fmt_ratio, max, median, ratio_json, round3, ErrorCounts, Table};
use crate::system::{send_write, Endpoints, Kind, Setup, System};

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
}

impl Outcome {
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
        self.failure.is_none() && self.lost.as_ref().is_some_and(Vec::is_empty)
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
            })).collect::<Vec<_>>(),
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

/// What one writer brings back: the instant and id of each ack.
#[derive(Default)]
struct WriterResult {
    acks: Vec<(Instant, u64)>,
    errors: ErrorCounts,
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
        },
        "results": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        "ratio_gantry_to_etcd": ratios(&outcomes),
        "passed": passed,
    });
    Ok((passed, report))
}

async fn run_one(kind: Kind, args: &FailoverArgs, setup: &Setup) -> Result<Outcome> {
    let mut sys = System::start(kind, args.managers, setup).await?;
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
            Ok(k) => kills.push(k),
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
    while let Some(r) = tasks.join_next().await {
        let r = r?;
        acks.extend(r.acks);
        errors.merge(&r.errors);
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
    })
    // `sys` drops here: every process is killed, then its temp dir removed.
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
) -> WriterResult {
    let mut out = WriterResult::default();
    let mut k = w;
    'ids: while !stop.load(Ordering::Relaxed) {
        let n = next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("lt-{n}");
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
                    out.acks.push((Instant::now(), n));
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

fn print_report(args: &FailoverArgs, outcomes: &[Outcome]) {
    println!();
    println!(
        "failover: {} kills of the leader (SIGKILL), {} writers, {} steady between kills, {} nodes",
        args.kills,
        args.writers,
        humantime::format_duration(args.interval),
        args.managers,
    );
    for o in outcomes {
        println!();
        println!("{}:", o.kind.name());
        let mut t = Table::new([
            "kill",
            "at s",
            "killed",
            "new leader",
            "new leader after ms",
            "write gap ms",
            "caught up after ms",
            "acks to next kill",
        ]);
        for (n, k) in o.kills.iter().enumerate() {
            t.row([
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
            ]);
        }
        print!("{}", t.render());
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
        println!(
            "acked {} writes in {:.1}s ({:.0}/s); stored {}; {lost}",
            o.acked,
            o.written_for.as_secs_f64(),
            o.acked as f64 / o.written_for.as_secs_f64().max(1e-9),
            o.stored.map(|s| s.to_string()).unwrap_or("?".into()),
        );
        println!(
            "baseline gap before the first kill {} ms; errors: {}",
            fmt_ms(ms(o.baseline_gap)),
            o.errors.brief()
        );
        for s in o.errors.samples() {
            println!("  {s}");
        }
        if let Some(f) = &o.failure {
            println!("FAILED: {f}");
        }
    }

    println!();
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
    print!("{}", t.render());
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
