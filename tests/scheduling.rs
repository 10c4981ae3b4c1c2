//! End-to-end scheduling against three real managers, with agents simulated in this test
//! process (`gantry_api::sim_agent`): they register, hold a session, and report every
//! allocation they are given `running` (or `complete` once told to stop).
//!
//! Scenarios: scale 0→50→10; a dead node's work is replaced elsewhere; a leader failover
//! with 200 agents attached marks no node down and replaces nothing; drain moves
//! everything off a node and then the drain completes (the node left ineligible); a
//! global job follows nodes in and out; lost work with no room is shown unplaced, with
//! why, on every manager until room appears. Durations are printed; only generous bounds
//! are asserted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gantry_api::jobs::job_status;
use gantry_api::sim_agent::SimAgent;
use gantry_api::{
    Allocation, Client, ClientOptions, ClientState, DesiredState, Eligibility, NodeStatus,
};
use serde_json::{json, Value};
use support::agent::{allocations, is_live};
use support::{wait_until, Cluster};

/// A new leader marks nothing down for 2 × TTL (3 s) after its election; scenarios that
/// kill an agent wait this long after the cluster started so they measure the TTL alone.
const GRACE: Duration = Duration::from_secs(7);

fn client(cluster: &Cluster) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(cluster.addrs(), None, options).expect("client")
}

/// A client that talks to one follower only (stale reads answer from its own state).
async fn follower_client(cluster: &Cluster) -> Client {
    let leader = cluster.leader_id().await;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options([cluster.addr(follower)], None, options).expect("client")
}

fn agents(client: &Client, prefix: &str, n: usize) -> Vec<SimAgent> {
    (0..n)
        .map(|i| SimAgent::start(client, &format!("{prefix}-{i:03}"), 4000, 8192))
        .collect()
}

fn service(id: &str, replicas: u32, cpu: u64, mem: u64) -> Value {
    json!({
        "id": id,
        "type": "service",
        "replicas": replicas,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": cpu, "memory_mb": mem}
        }]
    })
}

async fn submit(cluster: &Cluster, spec: &Value) {
    let leader = cluster.leader_id().await;
    cluster
        .client()
        .submit(&cluster.addr(leader), spec)
        .await
        .unwrap_or_else(|e| panic!("submitting {spec}: {e}"));
}

async fn scale(cluster: &Cluster, job: &str, replicas: u32) {
    let leader = cluster.leader_id().await;
    let r = cluster
        .client()
        .request(
            &cluster.addr(leader),
            reqwest::Method::POST,
            &format!("/v1/jobs/{job}/scale"),
            Some(support::Body::Json(json!({ "replicas": replicas }))),
        )
        .await
        .unwrap();
    assert!(
        r.is_success(),
        "scale {job} to {replicas}: {}",
        r.describe()
    );
}

async fn wait_ready(client: &Client, n: usize, timeout: Duration) {
    wait_until(&format!("{n} nodes ready"), timeout, || async {
        let nodes = client.list_nodes(false).await.map_err(|e| e.to_string())?;
        let ready = nodes
            .value
            .iter()
            .filter(|n| n.status == NodeStatus::Ready)
            .count();
        if ready == n {
            Ok(())
        } else {
            Err(format!("{ready} of {} nodes ready", nodes.value.len()))
        }
    })
    .await
}

fn live(all: &[Allocation]) -> Vec<&Allocation> {
    all.iter().filter(|a| is_live(a)).collect()
}

/// Exactly one live allocation per slot `0..n`, all running. Returns them by slot.
fn check_running(all: &[Allocation], n: u32) -> Result<BTreeMap<u32, Allocation>, String> {
    let mut by_slot: BTreeMap<u32, Allocation> = BTreeMap::new();
    let live = live(all);
    for a in &live {
        if by_slot.insert(a.slot, (*a).clone()).is_some() {
            return Err(format!("slot {} has two live allocations", a.slot));
        }
    }
    let slots: BTreeSet<u32> = by_slot.keys().copied().collect();
    let expected: BTreeSet<u32> = (0..n).collect();
    if slots != expected {
        return Err(format!(
            "{} live allocations, slots {slots:?} (expected 0..{n})",
            live.len()
        ));
    }
    let not_running: Vec<String> = by_slot
        .values()
        .filter(|a| a.client_state != ClientState::Running)
        .map(|a| format!("{}={:?}", a.id, a.client_state))
        .collect();
    if !not_running.is_empty() {
        return Err(format!(
            "{} not running yet: {:?}",
            not_running.len(),
            not_running.iter().take(5).collect::<Vec<_>>()
        ));
    }
    Ok(by_slot)
}

async fn wait_running(
    client: &Client,
    job: &str,
    n: u32,
    timeout: Duration,
) -> BTreeMap<u32, Allocation> {
    wait_until(&format!("{job}: {n} slots running"), timeout, || async {
        let all = allocations(client, job).await?;
        check_running(&all, n)
    })
    .await
}

/// Every node's reservations fit its capacity (GET /v1/nodes/{id}).
async fn check_capacity(client: &Client) {
    let nodes = client.list_nodes(false).await.unwrap().value;
    for node in nodes {
        let detail = client.get_node(&node.id, false).await.unwrap().value;
        assert!(
            detail.reserved.cpu_millis <= node.resources.cpu_millis
                && detail.reserved.memory_mb <= node.resources.memory_mb,
            "node {} over capacity: reserved {:?} of {:?}",
            node.name,
            detail.reserved,
            node.resources
        );
    }
}

/// Counts, in every manager's log, the placements the plan applier rejected (the
/// scheduler logs each one) and the nodes marked down.
fn print_rejections(cluster: &Cluster) {
    for id in cluster.ids() {
        let log = cluster.manager(id).log_tail(usize::MAX);
        let rejected = log.matches("scheduler: placement rejected").count();
        let down = log.matches("marked down").count();
        let lead = log.matches("scheduler: leading").count();
        cluster.log(&format!(
            "manager {id}: led {lead} time(s); {rejected} placement(s) rejected by the plan applier; {down} node(s) marked down"
        ));
        for line in log
            .lines()
            .filter(|l| l.contains("scheduler: placement rejected"))
            .take(5)
        {
            cluster.log(&format!("  {line}"));
        }
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_0_to_50_to_10() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let _agents = agents(&client, "scale", 10);
    wait_ready(&client, 10, Duration::from_secs(30)).await;

    submit(&cluster, &service("web", 0, 250, 256)).await;
    let t = Instant::now();
    scale(&cluster, "web", 50).await;
    let placed = wait_until("50 slots placed", Duration::from_secs(30), || async {
        let all = allocations(&client, "web").await?;
        let n = live(&all).len();
        if n >= 50 {
            Ok(t.elapsed())
        } else {
            Err(format!("{n} live"))
        }
    })
    .await;
    let by_slot = wait_running(&client, "web", 50, Duration::from_secs(30)).await;
    cluster.log(&format!(
        "scale 0→50: placed in {placed:?}, running in {:?}",
        t.elapsed()
    ));
    let per_node: BTreeMap<&str, usize> = by_slot.values().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.node_id.as_str()).or_default() += 1;
        m
    });
    cluster.log(&format!("allocations per node: {per_node:?}"));
    assert_eq!(by_slot.len(), 50);
    check_capacity(&client).await;

    let t = Instant::now();
    scale(&cluster, "web", 10).await;
    let remaining = wait_until("10 slots left", Duration::from_secs(30), || async {
        let all = allocations(&client, "web").await?;
        let by_slot = check_running(&all, 10)?;
        // The 40 stopped ones were reported complete by their agents.
        let stopping = all
            .iter()
            .filter(|a| a.desired == DesiredState::Stop && a.client_state != ClientState::Complete)
            .count();
        if stopping > 0 {
            return Err(format!("{stopping} stopped allocations not complete yet"));
        }
        Ok(by_slot)
    })
    .await;
    cluster.log(&format!("scale 50→10 settled in {:?}", t.elapsed()));
    assert_eq!(
        remaining.keys().copied().collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    check_capacity(&client).await;
    print_rejections(&cluster);
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_work_is_replaced_elsewhere() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let started = Instant::now();
    let client = client(&cluster);
    let mut agents = agents(&client, "dead", 5);
    wait_ready(&client, 5, Duration::from_secs(30)).await;
    submit(&cluster, &service("web", 10, 250, 256)).await;
    let before = wait_running(&client, "web", 10, Duration::from_secs(30)).await;
    tokio::time::sleep(GRACE.saturating_sub(started.elapsed())).await;

    // The agent of slot 0's node dies.
    let victim_node = before[&0].node_id.clone();
    let victim = agents
        .iter_mut()
        .find(|a| a.node_id().as_deref() == Some(victim_node.as_str()))
        .expect("the agent of slot 0");
    let lost: BTreeMap<u32, String> = before
        .values()
        .filter(|a| a.node_id == victim_node)
        .map(|a| (a.slot, a.id.clone()))
        .collect();
    cluster.log(&format!(
        "killing agent {} (node {victim_node}) holding slots {:?}",
        victim.name,
        lost.keys().collect::<Vec<_>>()
    ));
    victim.kill();
    let killed = Instant::now();
    // Concurrent load while the node dies: another job scaled up and down every 100 ms,
    // so plans are in flight when the node goes down.
    submit(&cluster, &service("churn", 0, 100, 64)).await;
    let churn = {
        let api = cluster.client();
        let addrs = cluster.addrs();
        tokio::spawn(async move {
            let mut scales = 0u32;
            for i in 0u32.. {
                let replicas = if i % 2 == 0 { 20 } else { 5 };
                let body = support::Body::Json(json!({ "replicas": replicas }));
                let addr = &addrs[i as usize % addrs.len()];
                if let Ok(r) = api
                    .request(
                        addr,
                        reqwest::Method::POST,
                        "/v1/jobs/churn/scale",
                        Some(body),
                    )
                    .await
                {
                    scales += u32::from(r.is_success());
                }
                if killed.elapsed() > Duration::from_secs(8) {
                    return scales;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            scales
        })
    };

    let down = wait_until("the node down", Duration::from_secs(30), || async {
        let node = client
            .get_node(&victim_node, false)
            .await
            .map_err(|e| e.to_string())?
            .value
            .node;
        if node.status == NodeStatus::Down {
            Ok(killed.elapsed())
        } else {
            Err(format!("{:?}", node.status))
        }
    })
    .await;
    let committed = wait_until(
        "replacements committed",
        Duration::from_secs(30),
        || async {
            let all = allocations(&client, "web").await?;
            for (slot, old) in &lost {
                let replaced = all
                    .iter()
                    .any(|a| is_live(a) && a.slot == *slot && a.node_id != victim_node);
                if !replaced {
                    return Err(format!("slot {slot} (was {old}) not replaced yet"));
                }
            }
            Ok(killed.elapsed())
        },
    )
    .await;
    let after = wait_running(&client, "web", 10, Duration::from_secs(30)).await;
    let running = killed.elapsed();
    cluster.log(&format!(
        "agent death → node down {down:?}, → replacements committed {committed:?}, → replacements running {running:?} (TTL 3 s)"
    ));
    let scales = churn.await.unwrap();
    scale(&cluster, "churn", 7).await;
    wait_running(&client, "churn", 7, Duration::from_secs(30)).await;
    cluster.log(&format!(
        "churn job scaled {scales} times meanwhile, settled at 7"
    ));
    let all = allocations(&client, "web").await.unwrap();
    for (slot, old) in &lost {
        let old = all.iter().find(|a| a.id == *old).expect("old allocation");
        assert_eq!(old.client_state, ClientState::Lost, "slot {slot}: {old:?}");
        assert_ne!(after[slot].node_id, victim_node);
    }
    for (slot, a) in &before {
        if a.node_id != victim_node {
            assert_eq!(after[slot].id, a.id, "slot {slot} on a live node was moved");
        }
    }
    assert!(
        committed < Duration::from_secs(15),
        "replacements took {committed:?}"
    );
    check_capacity(&client).await;
    print_rejections(&cluster);
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_failover_with_200_agents_marks_nothing_down() {
    const N: usize = 200;
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let t = Instant::now();
    let agents = agents(&client, "many", N);
    wait_ready(&client, N, Duration::from_secs(60)).await;
    cluster.log(&format!("{N} nodes ready in {:?}", t.elapsed()));
    let t = Instant::now();
    submit(&cluster, &service("web", N as u32, 100, 64)).await;
    let before = wait_running(&client, "web", N as u32, Duration::from_secs(90)).await;
    cluster.log(&format!("{N} replicas running in {:?}", t.elapsed()));
    let ids_before: BTreeSet<String> = before.values().map(|a| a.id.clone()).collect();
    // Past the first leader's own grace period, so the old leader was tracking real
    // heartbeats when it died.
    tokio::time::sleep(GRACE).await;
    let completes_before: Vec<usize> = agents.iter().map(SimAgent::completes).collect();

    let leader = cluster.leader_id().await;
    cluster.kill(leader);
    let killed = Instant::now();
    let new_leader = cluster.wait_for_leader().await;
    let elected = Instant::now();
    cluster.log(&format!(
        "manager {new_leader} leads {:?} after the kill",
        killed.elapsed()
    ));

    let mut checks = 0;
    let mut reconnected_at = None;
    while elected.elapsed() < Duration::from_secs(10) {
        let nodes = client.list_nodes(false).await;
        let all = allocations(&client, "web").await;
        let (Ok(nodes), Ok(all)) = (nodes, all) else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let down: Vec<&str> = nodes
            .value
            .iter()
            .filter(|n| n.status != NodeStatus::Ready)
            .map(|n| n.name.as_str())
            .collect();
        assert!(
            down.is_empty(),
            "nodes not ready after the failover: {down:?}"
        );
        let ids: BTreeSet<String> = live(&all).iter().map(|a| a.id.clone()).collect();
        assert_eq!(
            ids,
            ids_before,
            "live allocations changed after the failover: {}",
            support::diff_ids(&ids_before, &ids)
        );
        if reconnected_at.is_none()
            && agents
                .iter()
                .zip(&completes_before)
                .all(|(a, before)| a.completes() > *before)
        {
            reconnected_at = Some(killed.elapsed());
        }
        checks += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(checks > 10, "only {checks} checks in 10 s");
    cluster.log(&format!(
        "{checks} checks over 10 s after the election: no node down, no allocation replaced; all {N} agents reopened a session {reconnected_at:?} after the kill"
    ));
    assert!(
        reconnected_at.is_some(),
        "not every agent reopened its session"
    );

    // The new leader still notices a dead node and replaces its work.
    let mut agents = agents;
    let victim = agents[0].node_id().unwrap();
    let slots: Vec<u32> = before
        .values()
        .filter(|a| a.node_id == victim)
        .map(|a| a.slot)
        .collect();
    agents[0].kill();
    let t = Instant::now();
    wait_until(
        "the new leader to replace a dead node's work",
        Duration::from_secs(30),
        || async {
            let all = allocations(&client, "web").await?;
            let by_slot = check_running(&all, N as u32)?;
            match slots.iter().find(|s| by_slot[s].node_id == victim) {
                Some(slot) => Err(format!("slot {slot} still on {victim}")),
                None => Ok(()),
            }
        },
    )
    .await;
    cluster.log(&format!(
        "after the failover, a dead node's {} allocation(s) replaced and running {:?} after its agent died",
        slots.len(),
        t.elapsed()
    ));
    print_rejections(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_work_waits_for_room_and_takes_a_new_node() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let started = Instant::now();
    let client = client(&cluster);
    let mut agents: Vec<SimAgent> = (0..2)
        .map(|i| SimAgent::start(&client, &format!("full-{i}"), 1000, 1024))
        .collect();
    wait_ready(&client, 2, Duration::from_secs(30)).await;
    let spec = service("web", 4, 500, 256);
    submit(&cluster, &spec).await;
    let before = wait_running(&client, "web", 4, Duration::from_secs(30)).await;
    tokio::time::sleep(GRACE.saturating_sub(started.elapsed())).await;

    let victim = agents[0].node_id().unwrap();
    agents[0].kill();
    // Two slots lost, no room for them: the dry run says why.
    let why = wait_until(
        "the lost slots unplaced",
        Duration::from_secs(30),
        || async {
            let spec: gantry_api::JobSpec =
                serde_json::from_value(spec.clone()).map_err(|e| e.to_string())?;
            let plan = client.plan_job(&spec).await.map_err(|e| e.to_string())?;
            let all = allocations(&client, "web").await?;
            let lost = all
                .iter()
                .filter(|a| a.client_state == ClientState::Lost)
                .count();
            if lost == 2 && plan.unplaced.len() == 2 {
                Ok(plan.unplaced)
            } else {
                Err(format!("{lost} lost; plan: {plan:?}"))
            }
        },
    )
    .await;
    cluster.log(&format!("unplaced: {:?}", why[0].message));
    assert!(
        why.iter().all(|u| u.explanation.is_some()),
        "every unplaced slot is explained: {why:?}"
    );
    let all = allocations(&client, "web").await.unwrap();
    assert_eq!(live(&all).len(), 2, "no room for more: {all:?}");
    check_capacity(&client).await;

    // The job itself says so, on a follower too (replicated, not leader-local).
    let follower = follower_client(&cluster).await;
    let job = wait_until(
        "the follower showing the unplaced slots",
        Duration::from_secs(10),
        || async {
            let job = follower
                .get_job("web", true)
                .await
                .map_err(|e| e.to_string())?
                .value;
            if job.unplaced.len() == 2 {
                Ok(job)
            } else {
                Err(format!("{job:?}"))
            }
        },
    )
    .await;
    assert_eq!(job.status, job_status::DEGRADED, "{job:?}");
    let lost_slots: BTreeSet<u32> = before
        .values()
        .filter(|a| a.node_id == victim)
        .map(|a| a.slot)
        .collect();
    let shown: BTreeSet<u32> = job.unplaced.iter().filter_map(|u| u.slot).collect();
    assert_eq!(shown, lost_slots, "{job:?}");
    for u in &job.unplaced {
        let e = u.explanation.as_ref().expect("explained");
        assert!(e.nodes_evaluated >= 1 && e.nodes_fit == 0, "{u:?}");
        assert!(!u.message.is_empty(), "{u:?}");
    }
    cluster.log(&format!("follower shows: {:?}", job.unplaced[0].message));

    // Room appears: a new node takes them.
    let t = Instant::now();
    agents.push(SimAgent::start(&client, "full-new", 1000, 1024));
    let after = wait_running(&client, "web", 4, Duration::from_secs(30)).await;
    cluster.log(&format!(
        "lost slots placed on the new node and running {:?} after it started",
        t.elapsed()
    ));
    // ...and the record clears, on the follower too.
    let job = wait_until(
        "the follower showing everything placed",
        Duration::from_secs(10),
        || async {
            let job = follower
                .get_job("web", true)
                .await
                .map_err(|e| e.to_string())?
                .value;
            if job.unplaced.is_empty() && job.status == job_status::RUNNING {
                Ok(job)
            } else {
                Err(format!("{job:?}"))
            }
        },
    )
    .await;
    assert_eq!(job.version, 1, "{job:?}");
    let new_node = agents[2].node_id().unwrap();
    for (slot, a) in &before {
        if a.node_id == victim {
            assert_eq!(after[slot].node_id, new_node, "slot {slot}");
        } else {
            assert_eq!(after[slot].id, a.id, "slot {slot} moved");
        }
    }
    check_capacity(&client).await;
    print_rejections(&cluster);
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_everything_off_a_node() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let _agents = agents(&client, "drain", 4);
    wait_ready(&client, 4, Duration::from_secs(30)).await;
    submit(&cluster, &service("web", 8, 250, 256)).await;
    let before = wait_running(&client, "web", 8, Duration::from_secs(30)).await;

    let drained = before[&0].node_id.clone();
    let moving: BTreeMap<u32, String> = before
        .values()
        .filter(|a| a.node_id == drained)
        .map(|a| (a.slot, a.id.clone()))
        .collect();
    cluster.log(&format!(
        "draining {drained} holding slots {:?}",
        moving.keys().collect::<Vec<_>>()
    ));
    let t = Instant::now();
    let node = client.drain_node(&drained, true).await.unwrap();
    assert!(node.drain, "{node:?}");

    let mut polls = 0;
    wait_until("the node emptied", Duration::from_secs(30), || {
        polls += 1;
        let client = &client;
        let drained = &drained;
        async move {
            let all = allocations(client, "web").await?;
            // New before old: at every poll, every slot has a running allocation that
            // is meant to run.
            for slot in 0..8 {
                assert!(
                    all.iter().any(|a| a.slot == slot
                        && a.desired == DesiredState::Run
                        && a.client_state == ClientState::Running),
                    "slot {slot} has no running allocation during the drain: {:?}",
                    all.iter().filter(|a| a.slot == slot).collect::<Vec<_>>()
                );
            }
            check_running(&all, 8)?;
            let left: Vec<&str> = all
                .iter()
                .filter(|a| a.node_id == *drained && a.client_state != ClientState::Complete)
                .map(|a| a.id.as_str())
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still on the node: {left:?}"))
            }
        }
    })
    .await;
    cluster.log(&format!(
        "{} allocations moved off the drained node in {:?} ({polls} polls, every slot always had a running allocation)",
        moving.len(),
        t.elapsed()
    ));
    let all = allocations(&client, "web").await.unwrap();
    for old in moving.values() {
        let a = all.iter().find(|a| a.id == *old).unwrap();
        assert_eq!(a.desired, DesiredState::Stop, "{a:?}");
    }

    // The drain completes: the node stops draining and stays ineligible.
    let node = wait_until("the drain complete", Duration::from_secs(10), || async {
        let node = client
            .get_node(&drained, false)
            .await
            .map_err(|e| e.to_string())?
            .value
            .node;
        if !node.drain {
            Ok(node)
        } else {
            Err(format!("{node:?}"))
        }
    })
    .await;
    assert_eq!(node.eligibility, Eligibility::Ineligible, "{node:?}");
    cluster.log(&format!("drain complete after {:?}", t.elapsed()));

    // Nothing is placed there afterwards, even with more replicas wanted.
    scale(&cluster, "web", 12).await;
    wait_running(&client, "web", 12, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = allocations(&client, "web").await.unwrap();
    let there: Vec<&str> = all
        .iter()
        .filter(|a| is_live(a) && a.node_id == drained)
        .map(|a| a.id.as_str())
        .collect();
    assert!(there.is_empty(), "placed on the drained node: {there:?}");
    let detail = client.get_node(&drained, false).await.unwrap().value;
    assert_eq!(detail.reserved.cpu_millis, 0, "{:?}", detail.reserved);
    assert!(!detail.node.drain, "{:?}", detail.node);
    assert_eq!(detail.node.eligibility, Eligibility::Ineligible);
    check_capacity(&client).await;
    print_rejections(&cluster);
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_job_follows_nodes_in_and_out() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let started = Instant::now();
    let client = client(&cluster);
    let mut agents = agents(&client, "global", 3);
    wait_ready(&client, 3, Duration::from_secs(30)).await;
    let mut spec = service("monitor", 0, 100, 64);
    spec["type"] = json!("global");
    spec.as_object_mut().unwrap().remove("replicas");
    submit(&cluster, &spec).await;

    let one_per_node = |want: BTreeSet<String>| {
        let client = client.clone();
        move || {
            let client = client.clone();
            let want = want.clone();
            async move {
                let all = allocations(&client, "monitor").await?;
                let live = live(&all);
                let nodes: Vec<&str> = live.iter().map(|a| a.node_id.as_str()).collect();
                let distinct: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
                if nodes.len() != distinct.len() {
                    return Err(format!("two on one node: {nodes:?}"));
                }
                if distinct != want {
                    return Err(format!("on {distinct:?}, want {want:?}"));
                }
                if let Some(a) = live.iter().find(|a| a.client_state != ClientState::Running) {
                    return Err(format!("{} is {:?}", a.id, a.client_state));
                }
                Ok(())
            }
        }
    };
    let node_ids = |agents: &[SimAgent]| -> BTreeSet<String> {
        agents
            .iter()
            .filter(|a| a.is_alive())
            .filter_map(SimAgent::node_id)
            .collect()
    };

    wait_until(
        "one instance per node",
        Duration::from_secs(30),
        one_per_node(node_ids(&agents)),
    )
    .await;

    let t = Instant::now();
    agents.push(SimAgent::start(&client, "global-new", 4000, 8192));
    wait_ready(&client, 4, Duration::from_secs(30)).await;
    wait_until(
        "an instance on the new node",
        Duration::from_secs(30),
        one_per_node(node_ids(&agents)),
    )
    .await;
    cluster.log(&format!(
        "new node running its instance {:?} after it started",
        t.elapsed()
    ));

    tokio::time::sleep(GRACE.saturating_sub(started.elapsed())).await;
    let dead = agents[0].node_id().unwrap();
    agents[0].kill();
    let t = Instant::now();
    wait_until(
        "the dead node's instance gone, no extra elsewhere",
        Duration::from_secs(30),
        one_per_node(node_ids(&agents)),
    )
    .await;
    cluster.log(&format!(
        "dead node's instance gone {:?} after the kill",
        t.elapsed()
    ));
    // And it stays that way: one per live node, the dead one lost.
    tokio::time::sleep(Duration::from_secs(2)).await;
    one_per_node(node_ids(&agents))().await.unwrap();
    let all = allocations(&client, "monitor").await.unwrap();
    assert!(
        all.iter()
            .any(|a| a.node_id == dead && a.client_state == ClientState::Lost),
        "the dead node's instance is lost: {all:?}"
    );
    print_rejections(&cluster);
    cluster.assert_alive();
}
