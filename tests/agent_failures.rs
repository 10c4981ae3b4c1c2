//! `gantry agent` and real Docker containers through failures, with three real managers.
//!
//! What it shows:
//! - an agent SIGKILLed and kept down past its heartbeat TTL: its node goes `down`, its
//!   allocations are replaced and run on the other node; when it comes back, its stale
//!   containers (of the replaced allocations) are removed;
//! - all three managers down for 30 s: the containers keep running the whole time, and
//!   when the managers return nothing is restarted or replaced (same containers, same
//!   restart counts, no new allocations) for a while after the agent reconnected;
//! - a failing HTTP health check restarts the task (restart_count grows) until the
//!   allocation fails and is replaced; an image that does not exist fails the allocation
//!   with a message naming the image.
//!
//! Skipped (with a message) when no Docker engine answers, except with `CI=true`.
//! Durations are printed; only generous bounds are asserted.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gantry_api::{ClientState, Health, NodeStatus};
use serde_json::json;
use support::agent::{
    agents_of, alloc_containers, allocation, allocations, check_running, describe_allocs,
    describe_containers, host_port, httpd_job, is_live, live, node_containers, running_container,
    submit, wait_http_200, wait_job_running, wait_node_status, wait_nodes_ready, DockerTest,
    Snapshot, IMAGE,
};
use support::wait_until;

/// A new leader marks nothing down for 2 × TTL (3 s) after its election; a scenario that
/// kills an agent waits this long after the cluster started so it measures the TTL alone.
const GRACE: Duration = Duration::from_secs(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_past_its_ttl_is_replaced_and_its_stale_containers_removed() {
    let Some(setup) = DockerTest::start("down", &["a", "b"]).await else {
        return;
    };
    let DockerTest {
        cluster,
        client,
        agents,
        ids,
        ..
    } = setup;
    let [a, b] = agents_of(agents);
    let started = Instant::now();

    submit(&cluster, &httpd_job("web", 4)).await;
    let before = wait_job_running(&client, "web", 4, Duration::from_secs(120), &[&a, &b]).await;
    tokio::time::sleep(GRACE.saturating_sub(started.elapsed())).await;

    // The agent of slot 0's node dies.
    let (victim, survivor) = if before[&0].node_id == ids[&a.name] {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let victim_id = ids[&victim.name].clone();
    let stale: Vec<_> = before
        .values()
        .filter(|x| x.node_id == victim_id)
        .cloned()
        .collect();
    let stale_ids: BTreeSet<String> = stale.iter().map(|x| x.id.clone()).collect();
    let stale_snapshot = Snapshot::take(&stale).unwrap();
    cluster.log(&format!(
        "{} of 4 allocations on {}: {:?}; SIGKILL its agent",
        stale.len(),
        victim.name,
        stale_ids
    ));
    victim.kill();
    let t = Instant::now();
    wait_node_status(
        &client,
        &victim.name,
        NodeStatus::Down,
        Duration::from_secs(60),
    )
    .await;
    cluster.log(&format!(
        "node {} down {:?} after the SIGKILL",
        victim.name,
        t.elapsed()
    ));

    let replaced = wait_until(
        "4 running allocations, none on the dead node",
        Duration::from_secs(120),
        || async {
            survivor.assert_alive();
            let all = allocations(&client, "web").await?;
            let by_slot = check_running(&all, 4)?;
            if by_slot.values().any(|x| x.node_id == victim_id) {
                return Err(format!("still on the dead node: {}", describe_allocs(&all)));
            }
            Ok(by_slot)
        },
    )
    .await;
    cluster.log(&format!(
        "replaced and running on {} {:?} after the SIGKILL",
        survivor.name,
        t.elapsed()
    ));
    for x in replaced.values() {
        running_container(&x.id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            running_container(&x.id).unwrap().label("gantry.node"),
            Some(survivor.name.as_str())
        );
        wait_http_200(host_port(x, "http"), Duration::from_secs(30)).await;
    }
    // The dead agent's containers kept running (the agent is stateless; nothing stops them).
    Snapshot::take(&stale)
        .and_then(|now| stale_snapshot.same_as(&now))
        .unwrap_or_else(|e| panic!("the dead agent's containers changed: {e}"));

    // It comes back: its stale containers go.
    let t = Instant::now();
    victim.restart();
    wait_node_status(
        &client,
        &victim.name,
        NodeStatus::Ready,
        Duration::from_secs(60),
    )
    .await;
    cluster.log(&format!(
        "node {} ready again after {:?}",
        victim.name,
        t.elapsed()
    ));
    let left = wait_until(
        "the returned agent to remove its stale containers",
        Duration::from_secs(60),
        || async {
            victim.assert_alive();
            let all = allocations(&client, "web").await?;
            let placed_here: BTreeSet<String> = all
                .iter()
                .filter(|x| is_live(x) && x.node_id == victim_id)
                .map(|x| x.id.clone())
                .collect();
            let on_node = node_containers(&victim.name)?;
            let unexpected: Vec<_> = on_node
                .iter()
                .filter(|c| !c.alloc_id().is_some_and(|id| placed_here.contains(id)))
                .cloned()
                .collect();
            if unexpected.is_empty() {
                Ok(on_node)
            } else {
                Err(format!(
                    "containers on {} not placed there:\n{}",
                    victim.name,
                    describe_containers(&unexpected)
                ))
            }
        },
    )
    .await;
    cluster.log(&format!(
        "stale containers removed {:?} after the restart; left on {}:\n{}",
        t.elapsed(),
        victim.name,
        describe_containers(&left)
    ));
    for id in &stale_ids {
        assert!(
            alloc_containers(id).unwrap().is_empty(),
            "container of stale allocation {id} still there"
        );
    }
    let all = allocations(&client, "web").await.unwrap();
    check_running(&all, 4).unwrap();
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_survive_30s_without_any_manager_and_nothing_restarts() {
    let Some(setup) = DockerTest::start("outage", &["a"]).await else {
        return;
    };
    let DockerTest {
        mut cluster,
        client,
        agents,
        ..
    } = setup;
    let [a] = agents_of(agents);

    submit(&cluster, &httpd_job("web", 2)).await;
    let by_slot = wait_job_running(&client, "web", 2, Duration::from_secs(120), &[&a]).await;
    let allocs: Vec<_> = by_slot.values().cloned().collect();
    let before = Snapshot::take(&allocs).unwrap();
    let all_before: BTreeSet<String> = allocations(&client, "web")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();

    for id in cluster.ids() {
        cluster.kill(id);
    }
    let t = Instant::now();
    let mut checks = 0;
    while t.elapsed() < Duration::from_secs(30) {
        a.assert_alive();
        let now = Snapshot::take(&allocs)
            .unwrap_or_else(|e| panic!("{:?} into the outage: {e}", t.elapsed()));
        before.same_as(&now).unwrap_or_else(|e| {
            panic!(
                "{:?} into the outage, containers changed:\n{e}",
                t.elapsed()
            )
        });
        checks += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    cluster.log(&format!(
        "30 s without managers: {checks} checks, the 2 containers ran throughout"
    ));

    for id in cluster.ids() {
        cluster.restart(id);
    }
    let t = Instant::now();
    cluster.wait_for_leader().await;
    cluster.log(&format!("managers back, leader after {:?}", t.elapsed()));
    wait_nodes_ready(&client, &[&a], Duration::from_secs(60)).await;
    wait_job_running(&client, "web", 2, Duration::from_secs(60), &[&a]).await;
    cluster.log(&format!(
        "node ready and job running {:?} after the restart",
        t.elapsed()
    ));

    // Past the new leader's grace (2 × TTL) and then some: nothing changes.
    let watch = Instant::now();
    let mut checks = 0;
    while watch.elapsed() < Duration::from_secs(12) {
        a.assert_alive();
        let all = allocations(&client, "web").await.unwrap();
        let ids: BTreeSet<String> = all.iter().map(|x| x.id.clone()).collect();
        assert_eq!(
            ids,
            all_before,
            "new allocations: {}",
            describe_allocs(&all)
        );
        check_running(&all, 2).unwrap_or_else(|e| panic!("after the outage: {e}"));
        let now = Snapshot::take(&live(&all)).unwrap_or_else(|e| panic!("after the outage: {e}"));
        before
            .same_as(&now)
            .unwrap_or_else(|e| panic!("restarted after the outage:\n{e}"));
        let nodes = support::agent::nodes(&client).await.unwrap();
        let node = nodes.iter().find(|n| n.name == a.name).unwrap();
        assert_eq!(node.status, NodeStatus::Ready, "node after the outage");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.log(&format!(
        "after the outage: {checks} checks over {:?}: same allocations, containers, restart counts",
        watch.elapsed()
    ));
    for x in &allocs {
        wait_http_200(host_port(x, "http"), Duration::from_secs(10)).await;
    }
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_restarts_the_task_until_the_allocation_fails() {
    let Some(setup) = DockerTest::start("health", &["a"]).await else {
        return;
    };
    let DockerTest {
        cluster,
        client,
        agents,
        ..
    } = setup;
    let [a] = agents_of(agents);

    // Nothing listens on the port: every check fails.
    let spec = json!({
        "id": "deaf",
        "replicas": 1,
        "tasks": [{
            "name": "main",
            "image": IMAGE,
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": 100, "memory_mb": 32},
            "ports": [{"name": "http", "container_port": 8080}],
            "health": {"type": "http", "port": "http", "path": "/", "interval": "1s",
                       "timeout": "1s", "threshold": 2}
        }],
        "restart": {"attempts": 2, "delay": "1s"}
    });
    submit(&cluster, &spec).await;
    let t = Instant::now();
    let first = wait_until(
        "the allocation to start",
        Duration::from_secs(120),
        || async {
            a.assert_alive();
            let all = allocations(&client, "deaf").await?;
            all.into_iter()
                .find(|x| x.client_state == ClientState::Running)
                .ok_or_else(|| "not running yet".to_string())
        },
    )
    .await;
    cluster.log(&format!(
        "deaf running after {:?}: {}",
        t.elapsed(),
        first.id
    ));

    let seen_unhealthy = AtomicBool::new(false);
    let restarted = wait_until(
        "the health check to restart the task",
        Duration::from_secs(60),
        || async {
            a.assert_alive();
            let now = allocation(&client, &first.id).await?;
            if now.health == Health::Unhealthy {
                seen_unhealthy.store(true, Ordering::SeqCst);
            }
            if now.restart_count >= 1 {
                Ok(now)
            } else {
                Err(describe_allocs(&[now]))
            }
        },
    )
    .await;
    let seen_unhealthy = seen_unhealthy.load(Ordering::SeqCst);
    cluster.log(&format!(
        "first restart by the health check {:?} after submit (unhealthy seen: {seen_unhealthy}): {}",
        t.elapsed(),
        describe_allocs(std::slice::from_ref(&restarted))
    ));
    let failed = wait_until(
        "the allocation to fail past its attempts",
        Duration::from_secs(120),
        || async {
            a.assert_alive();
            let now = allocation(&client, &first.id).await?;
            if now.client_state == ClientState::Failed {
                Ok(now)
            } else {
                Err(describe_allocs(&[now]))
            }
        },
    )
    .await;
    cluster.log(&format!(
        "failed {:?} after submit: restart_count={} health={:?} message={:?}",
        t.elapsed(),
        failed.restart_count,
        failed.health,
        failed.message
    ));
    assert_eq!(failed.restart_count, 2, "attempts: 2");
    let replacement = wait_until(
        "a new allocation to replace the failed one",
        Duration::from_secs(60),
        || async {
            let all = allocations(&client, "deaf").await?;
            live(&all)
                .into_iter()
                .find(|x| x.id != first.id)
                .ok_or_else(|| describe_allocs(&all))
        },
    )
    .await;
    cluster.log(&format!(
        "replacement {} ({:?}) {:?} after submit",
        replacement.id,
        replacement.client_state,
        t.elapsed()
    ));
    a.assert_alive();
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_fails_the_allocation_naming_it() {
    let Some(setup) = DockerTest::start("noimage", &["a"]).await else {
        return;
    };
    let DockerTest {
        cluster,
        client,
        agents,
        ..
    } = setup;
    let [a] = agents_of(agents);

    let missing = "gantry/does-not-exist:1";
    let spec = json!({
        "id": "ghost",
        "replicas": 1,
        "tasks": [{
            "name": "main",
            "image": missing,
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": 100, "memory_mb": 32}
        }]
    });
    submit(&cluster, &spec).await;
    let t = Instant::now();
    let failed = wait_until(
        "the allocation to fail",
        Duration::from_secs(180),
        || async {
            a.assert_alive();
            let all = allocations(&client, "ghost").await?;
            all.iter()
                .find(|x| x.client_state == ClientState::Failed)
                .cloned()
                .ok_or_else(|| describe_allocs(&all))
        },
    )
    .await;
    cluster.log(&format!(
        "failed {:?} after submit: restart_count={} message={:?}",
        t.elapsed(),
        failed.restart_count,
        failed.message
    ));
    assert!(
        failed.message.contains(missing),
        "the message should name the image {missing}: {:?}",
        failed.message
    );
    let containers = node_containers(&a.name).unwrap();
    assert!(
        containers.iter().all(|c| !c.running),
        "running containers for a missing image:\n{}",
        describe_containers(&containers)
    );
    a.assert_alive();
    cluster.assert_alive();
}
