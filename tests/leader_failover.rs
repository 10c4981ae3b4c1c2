//! Acknowledged writes survive the loss of the leader, repeatedly.
//!
//! Four writer tasks submit jobs continuously, round-robin over all three
//! managers, each with a fresh id, and record every 2xx (id, index, when it
//! was sent, when it was acknowledged, through which manager). The test then
//! SIGKILLs the leader, waits for the survivors to elect a new one, waits for
//! writes *sent after the kill* to be acknowledged, restarts the killed
//! manager and waits for it to catch up; K times (K=3, or GANTRY_TEST_KILLS).
//!
//! For each kill it prints the longest gap between consecutive acknowledged
//! writes around the kill (measured, never asserted), then the median and
//! max over all kills. At the end every acknowledged id must be present: in
//! a linearizable read on the leader, and in the local replica of every
//! manager once it has applied the highest acknowledged index; and the three
//! replicas must converge to the same set of jobs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{diff_ids, job, median_max, wait_until, Api, Cluster, ELECTION_TIMEOUT};

const WRITERS: usize = 4;
/// Pause after each acknowledged write, per writer: bounds the load (and the
/// size of the final listings) while keeping the gap resolution fine.
const PAUSE_AFTER_ACK: Duration = Duration::from_millis(20);
/// Pause after a failed write (refused connection, 503, timeout).
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(50);
/// Hard bounds on the writers whatever happens to the main task.
const WRITER_MAX_RUN: Duration = Duration::from_secs(900);
const WRITER_MAX_WRITES: u64 = 200_000;
/// Writes sent after the kill that must be acknowledged to call it resumed.
const RESUMED_AFTER: usize = 20;

#[derive(Debug, Clone)]
struct AckRec {
    id: String,
    index: u64,
    version: u64,
    via: String,
    sent: Instant,
    acked: Instant,
}

#[derive(Default)]
struct Shared {
    acks: Mutex<Vec<AckRec>>,
    /// kind of failure → count
    errors: Mutex<BTreeMap<String, u64>>,
    /// error responses whose body is not {"error":{"code","message"}}
    bad_error_bodies: Mutex<Vec<String>>,
    /// 2xx other than 201
    odd_success: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn ack_count(&self) -> usize {
        self.acks.lock().unwrap().len()
    }
    fn acks_sent_after(&self, t: Instant) -> usize {
        self.acks
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.sent > t)
            .count()
    }
    fn error(&self, kind: String) {
        *self.errors.lock().unwrap().entry(kind).or_default() += 1;
    }
}

fn classify_transport(e: &str) -> &'static str {
    let e = e.to_ascii_lowercase();
    if e.contains("refused") {
        "transport: connection refused"
    } else if e.contains("timed out") || e.contains("timeout") {
        "transport: timeout"
    } else if e.contains("reset") || e.contains("closed") || e.contains("broken pipe") {
        "transport: connection reset/closed"
    } else {
        "transport: other"
    }
}

async fn writer(w: usize, api: Api, addrs: Vec<String>, shared: Arc<Shared>) {
    let start = Instant::now();
    let mut i: u64 = 0;
    while !shared.stop.load(Ordering::SeqCst)
        && i < WRITER_MAX_WRITES
        && start.elapsed() < WRITER_MAX_RUN
    {
        let addr = &addrs[(w + i as usize) % addrs.len()];
        let id = format!("fo-w{w}-{i}");
        i += 1;
        let sent = Instant::now();
        match api.post_job(addr, &job(&id)).await {
            Ok(r) if r.is_success() => {
                let acked = Instant::now();
                if r.status != 201 {
                    shared
                        .odd_success
                        .lock()
                        .unwrap()
                        .push(format!("{id} via {addr}: {}", r.describe()));
                }
                let index = r.body.get("index").and_then(|v| v.as_u64());
                let version = r.body.get("version").and_then(|v| v.as_u64());
                let (Some(index), Some(version)) = (index, version) else {
                    // Still acknowledged: it must survive. Record what we can.
                    shared.odd_success.lock().unwrap().push(format!(
                        "{id} via {addr}: 2xx without index/version: {}",
                        r.describe()
                    ));
                    shared.acks.lock().unwrap().push(AckRec {
                        id,
                        index: 0,
                        version: 0,
                        via: addr.clone(),
                        sent,
                        acked,
                    });
                    continue;
                };
                shared.acks.lock().unwrap().push(AckRec {
                    id,
                    index,
                    version,
                    via: addr.clone(),
                    sent,
                    acked,
                });
                tokio::time::sleep(PAUSE_AFTER_ACK).await;
            }
            Ok(r) => {
                shared.error(format!(
                    "HTTP {} {}",
                    r.status,
                    r.error_code().unwrap_or("(no error code)")
                ));
                if !r.has_error_body() {
                    let mut bad = shared.bad_error_bodies.lock().unwrap();
                    if bad.len() < 20 {
                        bad.push(format!("POST {addr}/v1/jobs ({id}): {}", r.describe()));
                    }
                }
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
            }
            Err(e) => {
                shared.error(classify_transport(&e).to_string());
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
            }
        }
    }
}

fn kills_from_env() -> usize {
    std::env::var("GANTRY_TEST_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|k: &usize| (1..=100).contains(k))
        .unwrap_or(3)
}

struct KillReport {
    killed: u64,
    new_leader: u64,
    elected_after: Duration,
    first_post_kill_ack: Option<Duration>,
    longest_gap: Duration,
    acks_in_window: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_repeated_leader_kills() {
    let kills = kills_from_env();
    let mut cluster = Cluster::start(3).await;
    let addrs = cluster.addrs();
    let shared = Arc::new(Shared::default());

    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        writers.spawn(writer(w, cluster.client(), addrs.clone(), shared.clone()));
    }

    wait_for_acks(
        &cluster,
        &shared,
        "the first 50 acknowledged writes",
        50,
        |s| s.ack_count(),
    )
    .await;

    let mut reports = Vec::new();
    for k in 1..=kills {
        let leader = cluster.wait_for_leader().await;

        // Steady state first: 100 more acks with everyone up.
        let base = shared.ack_count();
        let what = format!("100 acknowledged writes before kill {k}");
        wait_for_acks(&cluster, &shared, &what, 100, |s| s.ack_count() - base).await;

        let t_kill = Instant::now();
        cluster.kill(leader);

        let new_leader = {
            let c = &cluster;
            wait_until(
                &format!("a new leader after killing leader {leader} (kill {k})"),
                ELECTION_TIMEOUT,
                || async move {
                    let l = c.agreed_leader().await?;
                    if l == leader {
                        Err(format!("still reports killed manager {leader} as leader"))
                    } else {
                        Ok(l)
                    }
                },
            )
            .await
        };
        let elected_after = t_kill.elapsed();
        cluster.log(&format!(
            "kill {k}: manager {new_leader} leads, observed {:.3}s after killing {leader}",
            elected_after.as_secs_f64()
        ));

        let what = format!(
            "{RESUMED_AFTER} acknowledged writes sent after kill {k} (leader {leader} killed)"
        );
        wait_for_acks(&cluster, &shared, &what, RESUMED_AFTER, |s| {
            s.acks_sent_after(t_kill)
        })
        .await;

        // Measure the gap around the kill (printed, not asserted).
        let report = {
            let acks = shared.acks.lock().unwrap();
            let mut times: Vec<Instant> = acks.iter().map(|a| a.acked).collect();
            times.sort();
            let window_start = times
                .iter()
                .copied()
                .filter(|t| *t <= t_kill)
                .max()
                .unwrap_or(t_kill);
            let mut post_kill_sent: Vec<Instant> = acks
                .iter()
                .filter(|a| a.sent > t_kill)
                .map(|a| a.acked)
                .collect();
            post_kill_sent.sort();
            let first_post_kill_ack = post_kill_sent.first().map(|t| *t - t_kill);
            let window_end = post_kill_sent
                .get(RESUMED_AFTER - 1)
                .copied()
                .unwrap_or_else(Instant::now);
            let window: Vec<Instant> = times
                .into_iter()
                .filter(|t| *t >= window_start && *t <= window_end)
                .collect();
            let longest_gap = window
                .windows(2)
                .map(|p| p[1] - p[0])
                .max()
                .unwrap_or_default();
            KillReport {
                killed: leader,
                new_leader,
                elected_after,
                first_post_kill_ack,
                longest_gap,
                acks_in_window: window.len(),
            }
        };
        println!(
            "kill {k}: leader {} killed -> new leader {} (observed after {:.3}s); longest gap between consecutive acks: {:.3}s; kill -> first ack of a write sent after the kill: {}; acks in window: {}",
            report.killed,
            report.new_leader,
            report.elected_after.as_secs_f64(),
            report.longest_gap.as_secs_f64(),
            report
                .first_post_kill_ack
                .map(|d| format!("{:.3}s", d.as_secs_f64()))
                .unwrap_or_else(|| "none".into()),
            report.acks_in_window
        );
        reports.push(report);

        // Bring the killed manager back and let it catch up before the next kill.
        cluster.restart(leader);
        let current = cluster.wait_for_leader().await;
        let target = cluster
            .status(current)
            .await
            .unwrap_or_else(|e| panic!("leader {current}: {e}"))
            .commit_index;
        let st = cluster.wait_applied(leader, target).await;
        cluster.log(&format!(
            "kill {k}: restarted manager {leader} caught up to {} (leader {current} commit was {target})",
            st.applied_index
        ));
    }

    // A few more writes with everyone back, then stop the writers.
    {
        let s = shared.clone();
        let base = s.ack_count();
        let c = &cluster;
        wait_until(
            "30 acknowledged writes after the last restart",
            Duration::from_secs(30),
            || {
                let s = s.clone();
                async move {
                    c.assert_alive();
                    let n = s.ack_count() - base;
                    if n >= 30 {
                        Ok(())
                    } else {
                        Err(format!("{n} new acks"))
                    }
                }
            },
        )
        .await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let join_deadline = Instant::now() + Duration::from_secs(60);
    while let Some(res) = tokio::time::timeout(
        join_deadline.saturating_duration_since(Instant::now()),
        writers.join_next(),
    )
    .await
    .expect("writers did not stop within 60s")
    {
        res.expect("writer task panicked");
    }

    let acks = shared.acks.lock().unwrap().clone();
    let errors = shared.errors.lock().unwrap().clone();
    let gaps: Vec<Duration> = reports.iter().map(|r| r.longest_gap).collect();
    let (median, max) = median_max(&gaps).expect("at least one kill");
    println!(
        "failover summary: {kills} kill(s); longest gap per kill: [{}]; median {:.3}s, max {:.3}s",
        gaps.iter()
            .map(|g| format!("{:.3}s", g.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        median.as_secs_f64(),
        max.as_secs_f64()
    );
    println!(
        "writes: {} acknowledged, failures by kind: {errors:?}",
        acks.len()
    );
    let bad = shared.bad_error_bodies.lock().unwrap().clone();
    if !bad.is_empty() {
        println!(
            "CONTRACT WARNING: {} error response(s) without an {{\"error\":{{code,message}}}} body, e.g.:\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }
    let odd = shared.odd_success.lock().unwrap().clone();
    if !odd.is_empty() {
        println!(
            "CONTRACT WARNING: {} 2xx response(s) other than 201 with {{id, version, index}}, e.g.:\n  {}",
            odd.len(),
            odd.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
        );
    }

    // --- Every acknowledged write is on every manager. ---
    let acked: BTreeMap<String, AckRec> = acks.iter().map(|a| (a.id.clone(), a.clone())).collect();
    assert_eq!(acked.len(), acks.len(), "an id was acknowledged twice");
    let acked_ids: BTreeSet<String> = acked.keys().cloned().collect();
    let max_index = acks.iter().map(|a| a.index).max().unwrap_or(0);
    let describe_missing = |missing: &BTreeSet<String>| -> String {
        missing
            .iter()
            .take(10)
            .map(|id| {
                let a = &acked[id];
                format!(
                    "{id} (acked via {} with index {}, sent {:.3}s / acked {:.3}s before the check)",
                    a.via,
                    a.index,
                    a.sent.elapsed().as_secs_f64(),
                    a.acked.elapsed().as_secs_f64()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };

    let leader = cluster.wait_for_leader().await;
    let lin = cluster
        .job_versions(leader, false)
        .await
        .unwrap_or_else(|e| panic!("linearizable list on leader {leader}: {e}"));
    let lin_ids: BTreeSet<String> = lin.keys().cloned().collect();
    let missing: BTreeSet<String> = acked_ids.difference(&lin_ids).cloned().collect();
    assert!(
        missing.is_empty(),
        "LOST WRITES: {} of {} acknowledged jobs are missing from a linearizable read on leader {leader}: {}",
        missing.len(),
        acked_ids.len(),
        describe_missing(&missing)
    );
    for a in acked.values() {
        if a.index > 0 {
            assert_eq!(
                lin[&a.id], a.version,
                "job {}: version {} on leader {leader}, acknowledged version {}",
                a.id, lin[&a.id], a.version
            );
        }
    }
    println!(
        "leader {leader}: {} jobs in a linearizable read, all {} acknowledged ones among them ({} unacknowledged writes also landed)",
        lin_ids.len(),
        acked_ids.len(),
        lin_ids.len() - acked_ids.len()
    );

    for id in cluster.ids() {
        cluster.wait_applied(id, max_index).await;
        let stale = cluster
            .job_versions(id, true)
            .await
            .unwrap_or_else(|e| panic!("stale list on manager {id}: {e}"));
        let got: BTreeSet<String> = stale.keys().cloned().collect();
        let missing: BTreeSet<String> = acked_ids.difference(&got).cloned().collect();
        assert!(
            missing.is_empty(),
            "LOST WRITES on manager {id}: {} of {} acknowledged jobs missing from its local replica after it applied index {max_index}: {}",
            missing.len(),
            acked_ids.len(),
            describe_missing(&missing)
        );
    }

    // With the writers stopped, the replicas converge to the same set.
    let c = &cluster;
    let lin_ids_ref = &lin_ids;
    wait_until(
        "every manager's local replica to hold the same jobs as the leader",
        Duration::from_secs(30),
        || async move {
            let leader_now = c.agreed_leader().await?;
            let reference: BTreeSet<String> = c
                .job_versions(leader_now, false)
                .await?
                .into_keys()
                .collect();
            if !reference.is_superset(lin_ids_ref) {
                return Err(format!(
                    "leader {leader_now} lost jobs it listed before: {}",
                    diff_ids(lin_ids_ref, &reference)
                ));
            }
            for id in c.ids() {
                let got: BTreeSet<String> = c.job_versions(id, true).await?.into_keys().collect();
                if got != reference {
                    return Err(format!("manager {id}: {}", diff_ids(&reference, &got)));
                }
            }
            Ok(())
        },
    )
    .await;
}

/// Waits (bounded) until `count` reaches `target` while every manager stays alive; on
/// timeout the panic shows the writers' errors so far.
async fn wait_for_acks(
    cluster: &Cluster,
    shared: &Arc<Shared>,
    what: &str,
    target: usize,
    count: impl Fn(&Shared) -> usize,
) {
    let count = &count;
    wait_until(what, Duration::from_secs(30), || async move {
        cluster.assert_alive();
        let n = count(shared);
        if n >= target {
            Ok(())
        } else {
            Err(format!(
                "{n} of {target}; errors so far: {:?}",
                shared.errors.lock().unwrap()
            ))
        }
    })
    .await;
}
