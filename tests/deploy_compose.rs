//! The deployment kit of `deploy/`, on the real Docker engine, used the way an operator
//! uses it: the `gantry/gantry` image built by `deploy/image/build.sh` from the binary
//! under test, and the compose files `deploy/compose/3-managers.yml` and `5-managers.yml`
//! brought up with `docker compose` or `docker-compose`.
//!
//! What it shows:
//! - three managers come up healthy (their compose health checks pass), as an
//!   unprivileged user, agree on a leader and list each other by service name; both
//!   agents register; a job of two busybox httpd replicas submitted to a follower runs as
//!   two containers, one per agent, answering on their host ports;
//! - a partition, three times: the leader's container is cut off the network while
//!   clients write through the other two managers' published ports and through the
//!   isolated manager itself (from inside its container). The isolated manager
//!   acknowledges nothing; the other two elect a leader and keep acknowledging; every read
//!   made after a write was acknowledged returns it (or a later version) or fails, on
//!   every manager, never an older state; reconnected, the old leader follows the new one
//!   and all three converge on the same applied index and the same jobs, with every
//!   acknowledged write;
//! - the loss of a host: a manager's container and its volume are destroyed; the other
//!   two keep serving; the dead manager is removed from the membership and a replacement
//!   with a new id joins in its place (same service, fresh volume), catching up through
//!   a snapshot (the managers snapshot every 50 entries);
//! - five managers: with two lost the cluster keeps serving; with three lost writes fail
//!   with `503 no_quorum`, stale reads are still served, and the job's containers keep
//!   running, untouched;
//! - the images build from `scratch` and `docker import` only: nothing is pulled (the
//!   engine's event log shows no pull while both build scripts run);
//! - the example config files of `deploy/systemd/` hold only real flags and start a
//!   manager and an agent; the unit files pass `systemd-analyze verify` where it exists.
//!
//! Figures printed (never asserted): for each partition, the time from the cut to the
//! first write acknowledged by the new leader, and from the reconnection to the old
//! leader having applied everything committed meanwhile.
//!
//! Skipped (with a message) when no Docker engine or compose command answers, except
//! with `CI=true`. Every project is removed on every exit path (see `deploy/compose.rs`).

mod support;

#[path = "deploy/clients.rs"]
mod clients;
#[path = "deploy/compose.rs"]
mod compose;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gantry_api::{Client, ClientOptions, NodeStatus};
use serde_json::{json, Value};

use clients::{inside, Ledger, Read};
use compose::{require_compose, Compose, REPO};
use support::agent::{
    allocations, check_running, docker, host_port, httpd_job, nodes, running_container,
    wait_http_200, Snapshot,
};
use support::{free_ports, job, wait_until, write_many, Api, GANTRY, SERIAL};

const THREE: &str = "3-managers.yml";
const FIVE: &str = "5-managers.yml";
/// How long managers may take to agree on a leader after `up` or a loss.
const LEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a job may take to run once submitted (the image is local).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Partitions made in one test, each measured.
const PARTITIONS: u32 = 3;
/// Writes the majority must acknowledge during a partition before it ends.
const WRITES_DURING_PARTITION: u64 = 20;

fn managers(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("manager-{i}")).collect()
}

fn addrs(c: &Compose, services: &[String]) -> Vec<String> {
    services
        .iter()
        .map(|s| c.addr(s).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A typed client of `services`, with the project's management token.
fn api_client(c: &Compose, services: &[String]) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(addrs(c, services), Some(c.token.clone()), options).expect("client")
}

/// Waits until both agents' nodes are ready; returns node id → name.
async fn wait_nodes_ready(c: &Compose, client: &Client) -> BTreeMap<String, String> {
    let names = [c.node(1), c.node(2)];
    wait_until("both agents' nodes to be ready", RUN_TIMEOUT, || async {
        let nodes = nodes(client).await?;
        let mut ids = BTreeMap::new();
        for name in &names {
            match nodes.iter().find(|n| &n.name == name) {
                Some(n) if n.status == NodeStatus::Ready => {
                    ids.insert(n.id.clone(), n.name.clone());
                }
                Some(n) => return Err(format!("node {name} is {:?}", n.status)),
                None => return Err(format!("no node named {name} yet")),
            }
        }
        Ok(ids)
    })
    .await
}

/// Submits a 2-replica httpd job through `via` and waits until it runs; returns its
/// allocations.
async fn run_web_job(
    c: &Compose,
    client: &Client,
    via: &str,
    id: &str,
) -> Vec<gantry_api::Allocation> {
    let addr = c.addr(via).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let ack = c
        .api
        .submit(&addr, &httpd_job(id, 2))
        .await
        .unwrap_or_else(|e| panic!("submitting {id} to {via}: {e}"));
    let by_slot = wait_until(
        &format!("job {id}: 2 slots running"),
        RUN_TIMEOUT,
        || async { check_running(&allocations(client, id).await?, 2) },
    )
    .await;
    c.log(&format!(
        "job {id} submitted to {via} (index {}), 2 allocations running after {:?}",
        ack.index,
        t.elapsed()
    ));
    by_slot.into_values().collect()
}

/// Every job id → version on `service`, from its own replica.
async fn jobs_on(c: &Compose, service: &str) -> Result<BTreeMap<String, u64>, String> {
    let addr = c.addr(service)?;
    Ok(c.api
        .list_jobs(&addr, true)
        .await
        .map_err(|e| format!("{service}: {e}"))?
        .into_iter()
        .map(|j| (j.id, j.version))
        .collect())
}

/// Waits until `services` have applied the same index and hold the same jobs; returns
/// those jobs.
async fn wait_converged(c: &Compose, services: &[String]) -> BTreeMap<String, u64> {
    wait_until(
        &format!("{services:?} to converge"),
        Duration::from_secs(60),
        || async {
            let mut applied = BTreeMap::new();
            for s in services {
                applied.insert(s.clone(), c.status(s).await?.applied_index);
            }
            if applied.values().collect::<BTreeSet<_>>().len() != 1 {
                return Err(format!("applied indexes differ: {applied:?}"));
            }
            let mut views = Vec::new();
            for s in services {
                views.push((s.clone(), jobs_on(c, s).await?));
            }
            let (first, jobs) = &views[0];
            for (s, other) in &views[1..] {
                if other != jobs {
                    return Err(format!(
                        "{s} holds {} jobs, {first} {} (applied {applied:?})",
                        other.len(),
                        jobs.len()
                    ));
                }
            }
            Ok(jobs.clone())
        },
    )
    .await
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------
// 1. Up, healthy, running a job
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_managers_come_up_healthy_and_run_a_job_on_both_agents() {
    if !require_compose() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let c = Compose::up(THREE, "up", &[]);
    let all = managers(3);

    for s in &all {
        wait_until(&format!("{s} to be healthy"), LEADER_TIMEOUT, || async {
            match c.inspect(s, "{{.State.Health.Status}}")?.as_str() {
                "healthy" => Ok(()),
                other => Err(format!("{s} is {other}")),
            }
        })
        .await;
        // The image's unprivileged user; root only in the agents' groups, never as a user.
        let uid = c
            .exec(s, &["id", "-u"], Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(uid.stdout.trim(), "10001", "{s} runs as {}", uid.describe());
    }
    let groups = c
        .exec("agent-1", &["id", "-G"], Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    c.log(&format!(
        "managers healthy, running as uid 10001; agent-1 groups: {}",
        groups.stdout.trim()
    ));

    let (leader, st) = c.wait_leader(&all, LEADER_TIMEOUT).await;
    let members: BTreeSet<(u64, String, bool)> = st
        .members
        .iter()
        .map(|m| (m.id, m.addr.clone(), m.voter))
        .collect();
    let expected: BTreeSet<(u64, String, bool)> = (1..=3)
        .map(|i| (i, format!("manager-{i}:4646"), true))
        .collect();
    assert_eq!(members, expected, "membership seen by the leader {leader}");
    c.log(&format!(
        "leader {leader} (id {}), members {members:?}",
        st.id
    ));

    // Auth from .env: acl-bootstrap ran; the API wants a token and the peer routes the
    // cluster secret.
    let bootstrap = c
        .inspect("acl-bootstrap", "{{.State.Status}} {{.State.ExitCode}}")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bootstrap,
        "exited 0",
        "acl-bootstrap: {}",
        c.service_log("acl-bootstrap")
    );
    let leader_addr = c.addr(&leader).unwrap_or_else(|e| panic!("{e}"));
    let anonymous = Api::default();
    let refused = anonymous
        .get(&leader_addr, "/v1/jobs")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        refused.status,
        401,
        "GET /v1/jobs without a token: {}",
        refused.describe()
    );
    let vote = anonymous
        .request(
            &leader_addr,
            reqwest::Method::POST,
            "/v1/raft/vote",
            Some(support::Body::Raw {
                content_type: "application/msgpack",
                bytes: vec![0x80],
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        vote.status,
        401,
        "a vote without the cluster secret: {}",
        vote.describe()
    );
    let said: Vec<String> = c
        .service_log("acl-bootstrap")
        .lines()
        .filter_map(|l| l.split_once(" | ").map(|(_, text)| text.trim().to_string()))
        .collect();
    c.log(&format!(
        "ACL on: acl-bootstrap said {said:?}; without a token GET /v1/jobs is {}, a vote \
         without the cluster secret {}",
        refused.status, vote.status
    ));

    let client = api_client(&c, &all);
    let nodes = wait_nodes_ready(&c, &client).await;
    let follower = all.iter().find(|s| **s != leader).expect("a follower");
    let allocs = run_web_job(&c, &client, follower, "web").await;

    let mut used = BTreeSet::new();
    for a in &allocs {
        let container = running_container(&a.id).unwrap_or_else(|e| panic!("{e}"));
        let node = container.label("gantry.node").unwrap_or("").to_string();
        assert_eq!(
            Some(&node),
            nodes.get(&a.node_id),
            "container {} of allocation {} carries node {node}",
            container.name,
            a.id
        );
        used.insert(node);
        let port = host_port(a, "http");
        wait_http_200(port, Duration::from_secs(30)).await;
        c.log(&format!(
            "allocation {} runs as {} on {} and answers on host port {port}",
            a.id,
            container.short(),
            nodes[&a.node_id]
        ));
    }
    assert_eq!(used.len(), 2, "the two replicas share a node: {used:?}");
}

// ---------------------------------------------------------------------------
// 2. Partitions
// ---------------------------------------------------------------------------

/// What one partition measured.
struct PartitionFigures {
    old_leader: String,
    new_leader: String,
    /// Cut → the other two agree on a new leader.
    election: Duration,
    /// Cut → the first acknowledged write among fresh ones sent every 100 ms: when new
    /// writes reach the new leader.
    failover: Duration,
    /// Cut → the first acknowledged write of a client whose write was in flight at the cut
    /// (it waits for that one to fail first).
    writer_failover: Duration,
    /// Reconnection → the old leader follows the new one and has applied what was
    /// committed while it was away.
    rejoin: Duration,
    acks_during: u64,
    isolated_writes: usize,
}

/// Fresh writes through the majority, one every 100 ms, each on its own (not waiting for
/// the previous one): the first acknowledged after the cut says when new writes reach the
/// new leader.
struct Probes {
    stop: Arc<AtomicBool>,
    first_ack: Arc<OnceLock<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probes {
    fn start(
        api: &Api,
        round: u32,
        majority: &[(String, String)],
        cut: Instant,
        ledger: &Arc<Ledger>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let first_ack: Arc<OnceLock<Duration>> = Arc::default();
        let (api, majority, ledger) = (api.clone(), majority.to_vec(), ledger.clone());
        let (stop2, first2) = (stop.clone(), first_ack.clone());
        let task = tokio::spawn(async move {
            let mut probes = tokio::task::JoinSet::new();
            let mut k = 0usize;
            while !stop2.load(Ordering::SeqCst) {
                let (api, ledger, first) = (api.clone(), ledger.clone(), first2.clone());
                let addr = majority[k % majority.len()].1.clone();
                let id = format!("p{round}-probe-{k}");
                probes.spawn(async move {
                    if let Ok(ack) = api.submit(&addr, &job(&id)).await {
                        ledger.ack(&ack.id, ack.version);
                        first.get_or_init(|| cut.elapsed());
                    }
                });
                k += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            while probes.join_next().await.is_some() {}
        });
        Probes {
            stop,
            first_ack,
            task,
        }
    }

    /// Stops sending, waits for the answers; the first ack's time after the cut.
    async fn stop(self) -> Option<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("probe task");
        self.first_ack.get().copied()
    }
}

/// Clients writing through the majority's published ports; each acknowledged write is
/// read back on every manager they reach.
struct Writers {
    stop: Arc<AtomicBool>,
    cut: Arc<OnceLock<Instant>>,
    first_after_cut: Arc<OnceLock<Duration>>,
    acked: Arc<AtomicU64>,
    acked_after_cut: Arc<AtomicU64>,
    /// The newest write acknowledged after the cut: (job id, version).
    latest_after_cut: Arc<Mutex<Option<(String, u64)>>>,
    tasks: tokio::task::JoinSet<u64>,
}

impl Writers {
    fn start(api: &Api, round: u32, majority: &[(String, String)], ledger: &Arc<Ledger>) -> Self {
        let mut w = Writers {
            stop: Arc::default(),
            cut: Arc::default(),
            first_after_cut: Arc::default(),
            acked: Arc::default(),
            acked_after_cut: Arc::default(),
            latest_after_cut: Arc::default(),
            tasks: tokio::task::JoinSet::new(),
        };
        for (service, addr) in majority {
            let (api, service, addr) = (api.clone(), service.clone(), addr.clone());
            let readers = majority.to_vec();
            let ledger = ledger.clone();
            let (stop, cut, first) = (w.stop.clone(), w.cut.clone(), w.first_after_cut.clone());
            let (acked, after, latest) = (
                w.acked.clone(),
                w.acked_after_cut.clone(),
                w.latest_after_cut.clone(),
            );
            w.tasks.spawn(async move {
                let mut failures = 0;
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    // Every fourth write updates one shared job: reads must never go back
                    // to an older version of it.
                    let id = if n.is_multiple_of(4) {
                        format!("p{round}-shared")
                    } else {
                        format!("p{round}-{service}-{n}")
                    };
                    let mut spec = job(&id);
                    spec["tasks"][0]["env"] = json!({ "SEQ": format!("{service}-{n}") });
                    let started = Instant::now();
                    let resp = api.post_job(&addr, &spec).await;
                    let version = match resp {
                        Ok(r) if r.status == 201 => r.body["version"]
                            .as_u64()
                            .unwrap_or_else(|| panic!("201 without a version: {}", r.describe())),
                        _ => {
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    ledger.ack(&id, version);
                    acked.fetch_add(1, Ordering::SeqCst);
                    if let Some(cut) = cut.get() {
                        if started > *cut {
                            first.get_or_init(|| cut.elapsed());
                            after.fetch_add(1, Ordering::SeqCst);
                            *latest.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((id.clone(), version));
                        }
                    }
                    for (reader, raddr) in &readers {
                        let read = match api.get(raddr, &format!("/v1/jobs/{id}")).await {
                            Ok(r) => Read::from_resp(&r),
                            Err(e) => Read::Failed(e),
                        };
                        ledger.check_read(reader, &id, version, read);
                    }
                }
                failures
            });
        }
        w
    }

    async fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = 0;
        while let Some(r) = self.tasks.join_next().await {
            failures += r.expect("writer task");
        }
        failures
    }
}

async fn partition_once(c: &Arc<Compose>, round: u32, ledger: &Arc<Ledger>) -> PartitionFigures {
    let all = managers(3);
    let (old, old_st) = c.wait_leader(&all, LEADER_TIMEOUT).await;
    let majority: Vec<(String, String)> = all
        .iter()
        .filter(|s| **s != old)
        .map(|s| (s.clone(), c.addr(s).unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    let majority_names: Vec<String> = majority.iter().map(|(s, _)| s.clone()).collect();
    let writers = Writers::start(&c.api, round, &majority, ledger);
    wait_until("writes before the cut", Duration::from_secs(30), || async {
        match writers.acked.load(Ordering::SeqCst) {
            n if n >= 10 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        }
    })
    .await;

    c.disconnect(&old);
    let cut = Instant::now();
    let _ = writers.cut.set(cut);
    let probes = Probes::start(&c.api, round, &majority, cut, ledger);
    c.log(&format!(
        "partition {round}: leader {old} (id {}, term {}) cut off the network",
        old_st.id, old_st.term
    ));
    let election = {
        let (c, majority_names, old_id) = (c.clone(), majority_names.clone(), old_st.id);
        tokio::spawn(async move {
            loop {
                if let Ok((_, st)) = c.agreed_leader(&majority_names).await {
                    if st.id != old_id {
                        return cut.elapsed();
                    }
                }
                assert!(
                    cut.elapsed() < LEADER_TIMEOUT,
                    "no new leader after the cut"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Clients of the isolated manager: writes from inside its container.
    let mut isolated = tokio::task::JoinSet::new();
    for k in 0..2 {
        let (c, old) = (c.clone(), old.clone());
        isolated.spawn_blocking(move || {
            let id = format!("p{round}-isolated-{k}");
            (id.clone(), inside::submit(&c, &old, &job(&id)))
        });
    }

    wait_until(
        "the majority to acknowledge writes after the cut",
        Duration::from_secs(60),
        || async {
            match writers.acked_after_cut.load(Ordering::SeqCst) {
                n if n >= WRITES_DURING_PARTITION => Ok(()),
                n => Err(format!("{n} acknowledged since the cut")),
            }
        },
    )
    .await;
    let writer_failover = *writers
        .first_after_cut
        .get()
        .expect("set with the first ack");
    let election = election.await.expect("election watcher");
    let (new, new_st) = c.wait_leader(&majority_names, LEADER_TIMEOUT).await;
    assert_ne!(new_st.id, old_st.id, "the isolated manager still leads");
    assert!(new_st.term > old_st.term, "a new term: {new_st:?}");

    // Reads on the isolated manager of what the new leader acknowledged: an error, or the
    // write itself; never the state from before it.
    let latest = writers
        .latest_after_cut
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .expect("a write acknowledged after the cut");
    let shared = format!("p{round}-shared");
    let shared_acked = ledger.acks().get(&shared).copied();
    let mut reads = vec![latest];
    if let Some(v) = shared_acked {
        reads.push((shared, v));
    }
    for (id, version) in reads {
        let (c2, old2, id2) = (c.clone(), old.clone(), id.clone());
        let read = tokio::task::spawn_blocking(move || inside::read_job(&c2, &old2, &id2))
            .await
            .expect("read task");
        ledger.check_read(&format!("{old} (isolated)"), &id, version, read);
    }

    let mut isolated_acks = Vec::new();
    let mut isolated_writes = 0;
    while let Some(r) = isolated.join_next().await {
        let (id, outcome) = r.expect("isolated client");
        isolated_writes += 1;
        match outcome {
            Ok((acked_id, v)) => {
                ledger.ack(&acked_id, v);
                isolated_acks.push(format!("{id}@{v}"));
            }
            Err(e) => c.log(&format!(
                "partition {round}: write {id} to the isolated {old}: {}",
                e.lines().next().unwrap_or("")
            )),
        }
    }

    let acks_during = writers.acked_after_cut.load(Ordering::SeqCst);
    let failures = writers.stop().await;
    let failover = probes
        .stop()
        .await
        .expect("a probe write acknowledged after the cut");
    let target = c
        .status(&new)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .commit_index;

    c.reconnect(&old);
    let reconnected = Instant::now();
    let new_id = new_st.id;
    let rejoin = wait_until(
        &format!("{old} to follow {new} and apply index {target}"),
        Duration::from_secs(60),
        || async {
            let st = c.status(&old).await?;
            let follows = st.leader.as_ref().map(|l| l.id) == Some(new_id);
            if st.role == "follower" && follows && st.applied_index >= target {
                Ok(reconnected.elapsed())
            } else {
                Err(format!(
                    "role={} leader={:?} applied={} (target {target})",
                    st.role, st.leader, st.applied_index
                ))
            }
        },
    )
    .await;

    let jobs = wait_converged(c, &all).await;
    for s in &all {
        let view = jobs_on(c, s).await.unwrap_or_else(|e| panic!("{e}"));
        ledger
            .check_present(s, &view)
            .unwrap_or_else(|e| panic!("partition {round}: {e}"));
    }
    assert!(
        isolated_acks.is_empty(),
        "partition {round}: the isolated {old} acknowledged {isolated_acks:?}"
    );
    c.log(&format!(
        "partition {round}: {old} → {new}; elected after {}; fresh writes acknowledged after {}; \
         a writer with a write in flight at the cut acknowledged again after {}; rejoined {} \
         after reconnecting; {acks_during} of that writer's writes acknowledged meanwhile \
         ({failures} failed or refused), {isolated_writes} writes to the isolated manager \
         acknowledged none; {} jobs everywhere",
        seconds(election),
        seconds(failover),
        seconds(writer_failover),
        seconds(rejoin),
        jobs.len()
    ));
    PartitionFigures {
        old_leader: old,
        new_leader: new,
        election,
        failover,
        writer_failover,
        rejoin,
        acks_during,
        isolated_writes,
    }
}

/// `min / median / max` of some durations.
fn spread(mut values: Vec<Duration>) -> String {
    values.sort();
    format!(
        "min {} / median {} / max {}",
        seconds(values[0]),
        seconds(values[values.len() / 2]),
        seconds(values[values.len() - 1])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_acknowledges_nothing_and_rejoins_as_a_follower() {
    if !require_compose() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let c = Arc::new(Compose::up(THREE, "part", &[]));
    let ledger = Arc::new(Ledger::default());
    let mut figures = Vec::new();
    for round in 1..=PARTITIONS {
        figures.push(partition_once(&c, round, &ledger).await);
    }
    let violations = ledger.violations();
    assert!(
        violations.is_empty(),
        "reads returned an older state than an acknowledged write:\n{}",
        violations.join("\n")
    );

    eprintln!("\n[figures] partitions of the leader, 3 managers in compose (write timeout 5 s):");
    for (i, f) in figures.iter().enumerate() {
        eprintln!(
            "[figures]   #{}: {} cut off → {} leads. Elected {} after the cut; fresh writes \
             acknowledged after {}; a write in flight at the cut fails and the next is \
             acknowledged after {}; the old leader follows and has caught up {} after \
             reconnecting. {} writes acknowledged meanwhile, {} sent to the isolated manager, \
             none acknowledged",
            i + 1,
            f.old_leader,
            f.new_leader,
            seconds(f.election),
            seconds(f.failover),
            seconds(f.writer_failover),
            seconds(f.rejoin),
            f.acks_during,
            f.isolated_writes
        );
    }
    eprintln!(
        "[figures]   election {}; fresh writes {}; in-flight writer {}; rejoin {}",
        spread(figures.iter().map(|f| f.election).collect()),
        spread(figures.iter().map(|f| f.failover).collect()),
        spread(figures.iter().map(|f| f.writer_failover).collect()),
        spread(figures.iter().map(|f| f.rejoin).collect()),
    );
    eprintln!(
        "[figures]   {} acknowledged writes checked on every manager; reads after an ack: {} returned it, {} failed (allowed), 0 stale\n",
        ledger.acks().len(),
        ledger.reads_ok.load(Ordering::SeqCst),
        ledger.reads_failed.load(Ordering::SeqCst)
    );
    for why in ledger.failure_samples() {
        eprintln!("[figures]   a failed read: {why}");
    }
}

// ---------------------------------------------------------------------------
// 3. Host loss and replacement
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_manager_is_replaced_by_a_new_one_that_catches_up_from_a_snapshot() {
    if !require_compose() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let c = Compose::up(THREE, "loss", &[("GANTRY_SNAPSHOT_EVERY", "50")]);
    let all = managers(3);
    let ledger = Ledger::default();
    let (victim, victim_st) = c.wait_leader(&all, LEADER_TIMEOUT).await;

    for ack in write_many(&c.api, "before", 200, 8, &addrs(&c, &all), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        ledger.ack(&ack.id, ack.version);
    }
    let victim_addr = c.addr(&victim).unwrap_or_else(|e| panic!("{e}"));
    let raft = wait_until(
        "the leader to snapshot and purge its log",
        Duration::from_secs(30),
        || async {
            let r = c.api.raft(&victim_addr).await?;
            match r.purged_index {
                Some(p) if p > 0 => Ok(r),
                _ => Err(format!(
                    "snapshot_index={:?} purged_index={:?}",
                    r.snapshot_index, r.purged_index
                )),
            }
        },
    )
    .await;
    c.log(&format!(
        "200 jobs written; leader {victim}: snapshot_index={:?} purged_index={:?}",
        raft.snapshot_index, raft.purged_index
    ));

    // The leader's host is lost: container and data volume.
    c.destroy(&victim);
    let lost = Instant::now();
    let survivors: Vec<String> = all.iter().filter(|s| **s != victim).cloned().collect();
    let (leader, _) = c.wait_leader(&survivors, LEADER_TIMEOUT).await;
    for ack in write_many(&c.api, "after-loss", 100, 4, &addrs(&c, &survivors), 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        ledger.ack(&ack.id, ack.version);
    }
    c.log(&format!(
        "{victim} (id {}) destroyed with its volume; {leader} leads; 100 writes acknowledged {} after the loss",
        victim_st.id,
        seconds(lost.elapsed())
    ));

    // Remove the dead manager first: its replacement takes over its address.
    let leader_addr = c.addr(&leader).unwrap_or_else(|e| panic!("{e}"));
    let removed = c
        .api
        .request(
            &leader_addr,
            reqwest::Method::DELETE,
            &format!("/v1/operator/raft/peers/{}", victim_st.id),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(removed.is_success(), "DELETE peer: {}", removed.describe());
    let st = c.status(&leader).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !st.member_ids().contains(&victim_st.id),
        "{} still a member: {:?}",
        victim_st.id,
        st.members
    );

    // The replacement: the same service and name, a fresh volume, a new id, --join.
    let n = victim.trim_start_matches("manager-");
    let new_id: u64 = 4;
    let target = c
        .status(&leader)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .commit_index;
    c.set(&format!("GANTRY_MANAGER_{n}_ID"), &new_id.to_string());
    c.set(
        &format!("GANTRY_MANAGER_{n}_BOOTSTRAP"),
        &format!("--join={leader}:4646"),
    );
    let joined = Instant::now();
    c.compose(
        &["up", "-d", "--no-deps", &victim],
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.forget_addr(&victim);
    let caught_up = wait_until(
        &format!("manager {new_id} to be a voter that applied index {target}"),
        Duration::from_secs(90),
        || async {
            let mine = c.status(&victim).await?;
            if mine.id != new_id {
                return Err(format!("{victim} answers as id {}", mine.id));
            }
            let theirs = c.status(&leader).await?;
            let voter = theirs.members.iter().any(|m| m.id == new_id && m.voter);
            if voter && mine.applied_index >= target {
                Ok(joined.elapsed())
            } else {
                Err(format!(
                    "voter={voter} applied={} (target {target}), role={}",
                    mine.applied_index, mine.role
                ))
            }
        },
    )
    .await;
    let raft = c
        .api
        .raft(&c.addr(&victim).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        raft.snapshot_index.unwrap_or(0) > 0,
        "manager {new_id} caught up without a snapshot although the leader purged its log: {raft:?}"
    );
    let log = c.service_log(&victim);
    let snapshot_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("snapshot"))
        .take(3)
        .collect();
    c.log(&format!(
        "manager {new_id} joined as {victim}, voter with index {target} applied {} after `up -d` began; \
         its snapshot_index={:?}; its log about snapshots: {snapshot_lines:?}",
        seconds(caught_up),
        raft.snapshot_index
    ));

    // It serves writes like the others, and everyone holds everything.
    let replacement = vec![victim.clone()];
    for ack in write_many(&c.api, "after-join", 20, 2, &addrs(&c, &replacement), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        ledger.ack(&ack.id, ack.version);
    }
    let jobs = wait_converged(&c, &all).await;
    for s in &all {
        ledger
            .check_present(s, &jobs_on(&c, s).await.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let st = c.status(&leader).await.unwrap_or_else(|e| panic!("{e}"));
    let voters = st.voters();
    assert_eq!(voters.len(), 3, "voters: {voters:?}");
    assert!(voters.contains(&new_id) && !voters.contains(&victim_st.id));
    c.log(&format!(
        "converged: {} jobs on every manager, voters {voters:?}",
        jobs.len()
    ));
}

// ---------------------------------------------------------------------------
// 4. Five managers: two lost, then three
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_managers_serve_with_two_lost_and_refuse_writes_with_three_lost() {
    if !require_compose() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let c = Compose::up(FIVE, "five", &[("GANTRY_WRITE_TIMEOUT", "2s")]);
    let all = managers(5);
    let (leader, _) = c.wait_leader(&all, LEADER_TIMEOUT).await;
    let client = api_client(&c, &all);
    wait_nodes_ready(&c, &client).await;
    let allocs = run_web_job(&c, &client, &leader, "web").await;
    let before = Snapshot::take(&allocs).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::default();

    // Two lost: the leader and a follower.
    let follower = all
        .iter()
        .find(|s| **s != leader)
        .expect("a follower")
        .clone();
    c.kill(&leader);
    c.kill(&follower);
    let survivors: Vec<String> = all
        .iter()
        .filter(|s| **s != leader && **s != follower)
        .cloned()
        .collect();
    let t = Instant::now();
    let (leader3, _) = c.wait_leader(&survivors, LEADER_TIMEOUT).await;
    for ack in write_many(&c.api, "two-lost", 30, 3, &addrs(&c, &survivors), 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        ledger.ack(&ack.id, ack.version);
    }
    c.log(&format!(
        "{leader} and {follower} killed; {leader3} leads the other three; 30 writes acknowledged {} after the kills",
        seconds(t.elapsed())
    ));
    for s in &survivors {
        let addr = c.addr(s).unwrap_or_else(|e| panic!("{e}"));
        for (id, v) in ledger.acks() {
            let r = c
                .api
                .get(&addr, &format!("/v1/jobs/{id}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            match Read::from_resp(&r) {
                Read::Found(have) if have >= v => {}
                _ => panic!("{s}: job {id}@{v} after its ack: {}", r.describe()),
            }
        }
    }

    // Three lost: no quorum. Writes fail with 503 no_quorum on the two left.
    c.kill(&leader3);
    let left: Vec<String> = survivors.into_iter().filter(|s| *s != leader3).collect();
    for s in &left {
        let addr = c.addr(s).unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        let refused = wait_until(
            &format!("{s} to refuse a write with 503 no_quorum"),
            Duration::from_secs(60),
            || async {
                let r = c
                    .api
                    .post_job(&addr, &job(&format!("no-quorum-{s}")))
                    .await?;
                if r.is_success() {
                    panic!(
                        "{s} acknowledged a write with 3 of 5 managers lost: {}",
                        r.describe()
                    );
                }
                if r.status == 503 && r.error_code() == Some("no_quorum") {
                    Ok(r)
                } else {
                    Err(r.describe())
                }
            },
        )
        .await;
        c.log(&format!(
            "{s}: {} ({} after the first attempt)",
            refused.describe(),
            seconds(t.elapsed())
        ));
        // Stale reads are still served from the local replica.
        let view = jobs_on(&c, s).await.unwrap_or_else(|e| panic!("{e}"));
        ledger
            .check_present(s, &view)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // The job's containers keep running, untouched, and keep answering.
    let after = Snapshot::take(&allocs).unwrap_or_else(|e| panic!("{e}"));
    before
        .same_as(&after)
        .unwrap_or_else(|e| panic!("the job's containers changed without a quorum: {e}"));
    for a in &allocs {
        wait_http_200(host_port(a, "http"), Duration::from_secs(30)).await;
    }
    for agent in ["agent-1", "agent-2"] {
        let running = c
            .inspect(agent, "{{.State.Running}}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(running, "true", "{agent} stopped");
    }
    c.log("with 3 of 5 managers lost: writes refused, stale reads served, 2 containers untouched and answering");
}

// ---------------------------------------------------------------------------
// 5. Images without a registry
// ---------------------------------------------------------------------------

/// The engine's clock, in seconds since the epoch (for `docker events --since/--until`).
fn engine_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_build_from_local_files_without_pulling_anything() {
    if !require_compose() {
        return;
    }
    let _serial = SERIAL.lock().await;

    // What the build files say: FROM scratch only, no pull anywhere.
    let dockerfile = std::fs::read_to_string(format!("{REPO}/deploy/image/Dockerfile"))
        .expect("read deploy/image/Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .collect();
    assert_eq!(
        froms,
        vec!["FROM scratch"],
        "base images of deploy/image/Dockerfile"
    );
    for script in ["deploy/image/build.sh", "deploy/images/build.sh"] {
        let text = std::fs::read_to_string(format!("{REPO}/{script}")).expect("read script");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for word in ["docker pull", "--pull", "docker run --pull", "FROM "] {
            assert!(!code.contains(word), "{script} contains `{word}`");
        }
    }

    // Build both under throwaway names while watching the engine's events.
    let tag = format!("gantry/gantry:nopull-{}", std::process::id());
    let busybox_tag = format!("gantry/busybox:nopull-{}", std::process::id());
    let since = engine_now().saturating_sub(1);
    let t = Instant::now();
    let built = support::agent::run(
        Command::new("bash").args([
            &format!("{REPO}/deploy/image/build.sh"),
            "--binary",
            GANTRY,
            "--tag",
            &tag,
        ]),
        Duration::from_secs(300),
    );
    let gantry_build = t.elapsed();
    let t = Instant::now();
    let built_busybox = support::agent::run(
        Command::new("bash").args([
            &format!("{REPO}/deploy/images/build.sh"),
            "--tag",
            &busybox_tag,
        ]),
        Duration::from_secs(300),
    );
    let busybox_build = t.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let until = engine_now() + 1;
    let events = docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}}",
    ]);
    let inspect_gantry = docker(&["image", "inspect", "-f", "{{.Id}} {{.Size}}", &tag]);
    let inspect_busybox = docker(&["image", "inspect", "-f", "{{.Id}} {{.Size}}", &busybox_tag]);
    let version = docker(&["run", "--rm", "--network", "none", &tag, "--version"]);
    let _ = docker(&["rmi", &tag, &busybox_tag]);

    let built = built.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        built.status.success(),
        "deploy/image/build.sh: {}",
        built.describe()
    );
    let built_busybox = built_busybox.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        built_busybox.status.success(),
        "deploy/images/build.sh: {}",
        built_busybox.describe()
    );
    let events = events.unwrap_or_else(|e| panic!("{e}"));
    let pulls: Vec<&str> = events.lines().filter(|l| l.starts_with("pull ")).collect();
    assert!(
        pulls.is_empty(),
        "images were pulled during the builds: {pulls:?}"
    );
    // The builds themselves are in the log (the query sees what happened meanwhile).
    assert!(
        events
            .lines()
            .any(|l| l.starts_with("tag ") && l.contains(&tag)),
        "no tag event for {tag} in the engine's events: {events}"
    );
    assert!(
        events.lines().any(|l| l.starts_with("import ")),
        "no import event for {busybox_tag} in the engine's events: {events}"
    );
    let inspect_gantry = inspect_gantry.unwrap_or_else(|e| panic!("{e}"));
    let inspect_busybox = inspect_busybox.unwrap_or_else(|e| panic!("{e}"));
    let version = version.unwrap_or_else(|e| panic!("{e}"));
    let local = Command::new(GANTRY)
        .arg("--version")
        .output()
        .expect("gantry --version");
    assert_eq!(
        version.trim(),
        String::from_utf8_lossy(&local.stdout).trim(),
        "the image's gantry --version"
    );
    eprintln!(
        "[images] {tag}: {} (built in {}); {busybox_tag}: {} (built in {}); {} image events, no pull; `{}` in the image",
        inspect_gantry.trim(),
        seconds(gantry_build),
        inspect_busybox.trim(),
        seconds(busybox_build),
        events.lines().count(),
        version.trim()
    );
}

// ---------------------------------------------------------------------------
// 6. Config files and systemd units (no engine needed)
// ---------------------------------------------------------------------------

/// The flags `gantry <command> --help` lists, without their dashes.
fn flags_of(command: &str) -> BTreeSet<String> {
    let out = Command::new(GANTRY)
        .args([command, "--help"])
        .output()
        .expect("gantry --help");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_configs_hold_real_flags_and_start_a_manager_and_an_agent() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (command, file) in [("server", "server.yaml"), ("agent", "agent.yaml")] {
        let path = format!("{REPO}/deploy/systemd/{file}");
        let text = std::fs::read_to_string(&path).expect("read config");
        let yaml: serde_json::Map<String, Value> =
            serde_yaml_to_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let flags = flags_of(command);
        for key in yaml.keys() {
            let flag = key.replace('_', "-");
            assert!(
                flags.contains(&flag),
                "{path}: `{key}` is not a flag of `gantry {command}` ({flags:?})"
            );
        }
    }

    // The files as they are, but for the addresses and directories of this machine (the
    // environment beats the file).
    let [port, agent_port] = free_ports(2)[..] else {
        unreachable!()
    };
    let addr = format!("127.0.0.1:{port}");
    let server = Command::new(GANTRY)
        .args([
            "server",
            "--config",
            &format!("{REPO}/deploy/systemd/server.yaml"),
        ])
        .env("GANTRY_LISTEN", &addr)
        .env("GANTRY_ADVERTISE", &addr)
        .env("GANTRY_INITIAL_CLUSTER", format!("1={addr}"))
        .env("GANTRY_DATA_DIR", dir.path().join("server"))
        // In place of the unit's --cluster-secret-file.
        .env("GANTRY_CLUSTER_SECRET", "config-test-cluster-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gantry server");
    let _server = Running(server);
    let api = Api::default();
    let st = wait_until(
        "the manager from server.yaml to lead",
        LEADER_TIMEOUT,
        || async {
            let st = api.status(&addr).await?;
            if st.role == "leader" {
                Ok(st)
            } else {
                Err(format!("role {}", st.role))
            }
        },
    )
    .await;
    assert_eq!(st.id, 1, "id from server.yaml");

    // server.yaml turns ACL on: bootstrap it, and pick the join token.
    let token = "config-test-management-token";
    let join_token = "config-test-join-token";
    let bootstrap = api
        .request(
            &addr,
            reqwest::Method::POST,
            "/v1/acl/bootstrap",
            Some(support::Body::Json(json!({ "secret": token }))),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bootstrap.status,
        201,
        "ACL bootstrap: {}",
        bootstrap.describe()
    );
    let rotate = api
        .with_token(Some(token))
        .request(
            &addr,
            reqwest::Method::POST,
            "/v1/acl/join-token/rotate",
            Some(support::Body::Json(json!({ "join_token": join_token }))),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rotate.is_success(), "join token: {}", rotate.describe());

    let agent = Command::new(GANTRY)
        .args([
            "agent",
            "--config",
            &format!("{REPO}/deploy/systemd/agent.yaml"),
        ])
        .env("GANTRY_MANAGERS", &addr)
        .env("GANTRY_NAME", "config-test-node")
        .env("GANTRY_DRIVER", "process")
        .env("GANTRY_ADDRESS", "127.0.0.1")
        .env("GANTRY_LISTEN", format!("127.0.0.1:{agent_port}"))
        .env("GANTRY_DATA_DIR", dir.path().join("agent"))
        // What gantry-agent.service reads from /etc/gantry/agent.env.
        .env("GANTRY_JOIN_TOKEN", join_token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gantry agent");
    let _agent = Running(agent);
    let client = Client::with_options(
        [addr.as_str()],
        Some(token.to_string()),
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
        },
    )
    .expect("client");
    let node = wait_until(
        "the agent from agent.yaml to register",
        LEADER_TIMEOUT,
        || async {
            let nodes = nodes(&client).await?;
            nodes
                .into_iter()
                .find(|n| n.name == "config-test-node" && n.status == NodeStatus::Ready)
                .ok_or_else(|| "not registered yet".to_string())
        },
    )
    .await;
    assert_eq!(
        node.labels.get("zone").map(String::as_str),
        Some("a"),
        "labels from agent.yaml: {node:?}"
    );

    // The units, with the binary under test in place of /usr/local/bin/gantry.
    let verify = Command::new("systemd-analyze").arg("--version").output();
    if verify.map(|o| o.status.success()).unwrap_or(false) {
        let mut units = Vec::new();
        for unit in ["gantry-server.service", "gantry-agent.service"] {
            let text = std::fs::read_to_string(format!("{REPO}/deploy/systemd/{unit}"))
                .expect("read unit");
            let path = dir.path().join(unit);
            std::fs::write(&path, text.replace("/usr/local/bin/gantry", GANTRY))
                .expect("write unit");
            units.push(path);
        }
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .args(&units)
            .output()
            .expect("systemd-analyze verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify: {}; {stderr}",
            out.status
        );
        eprintln!("[systemd] systemd-analyze verify: both units clean");
    } else {
        eprintln!("[systemd] systemd-analyze is not installed: the unit files were not verified");
    }
}

/// A YAML mapping as JSON (the config files are flat mappings of scalars and lists).
fn serde_yaml_to_json(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("not a mapping: {other}")),
    }
}
