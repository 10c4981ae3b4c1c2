//! `gantry agent` against the real Docker engine, with three real managers.
//!
//! What it shows:
//! - a job of 4 busybox httpd replicas (port `http` → 8080, 100 millis / 32 MB) becomes 4
//!   running containers across 2 agents, named `gantry-{job}-{task}-{alloc}`, labelled
//!   with the allocation, job, task and node, with the CPU/memory limits and the host
//!   port bindings of their allocations, and each answers HTTP 200 on its host port;
//! - a container killed with `docker kill` is restarted on its node per the job's restart
//!   policy (restart_count grows, the allocation runs again); killed past its attempts,
//!   the allocation fails and a new allocation replaces it and runs;
//! - an agent stopped by SIGTERM or SIGKILL and started again adopts its running
//!   containers: same container ids, same StartedAt, no restart counted.
//!
//! Skipped (with a message) when no Docker engine answers, except with `CI=true`.
//! Durations are printed; only generous bounds are asserted.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_api::ClientState;
use serde_json::json;
use support::agent::{
    agents_of, alloc_containers, allocation, allocations, check_running, describe_allocs,
    describe_containers, docker_kill, host_port, httpd_job, live, node_containers,
    running_container, submit, wait_http_200, wait_job_running, DockerTest, Snapshot, IMAGE,
};
use support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_become_four_labelled_limited_published_containers() {
    let Some(setup) = DockerTest::start("four", &["a", "b"]).await else {
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
    let name_of: BTreeMap<String, String> =
        ids.iter().map(|(n, id)| (id.clone(), n.clone())).collect();

    submit(&cluster, &httpd_job("web", 4)).await;
    let t = Instant::now();
    let by_slot = wait_job_running(&client, "web", 4, Duration::from_secs(120), &[&a, &b]).await;
    cluster.log(&format!(
        "submit → 4 allocations running: {:?}",
        t.elapsed()
    ));

    for alloc in by_slot.values() {
        let c = running_container(&alloc.id).unwrap_or_else(|e| panic!("{e}"));
        let node = name_of
            .get(&alloc.node_id)
            .unwrap_or_else(|| panic!("allocation {} on unknown node {}", alloc.id, alloc.node_id));
        assert_eq!(
            c.name,
            format!("gantry-web-main-{}", alloc.id),
            "container name"
        );
        assert_eq!(c.label("gantry.alloc_id"), Some(alloc.id.as_str()), "{c:?}");
        assert_eq!(c.label("gantry.job"), Some("web"), "{c:?}");
        assert_eq!(c.label("gantry.task"), Some("main"), "{c:?}");
        assert_eq!(c.label("gantry.node"), Some(node.as_str()), "{c:?}");
        assert_eq!(c.image, IMAGE);
        assert_eq!(c.nano_cpus, 100 * 1_000_000, "NanoCpus of {}", c.name);
        assert_eq!(c.memory, 32 * 1024 * 1024, "Memory of {}", c.name);
        let hp = host_port(alloc, "http");
        assert_eq!(
            c.host_ports(8080),
            vec![hp],
            "port bindings of {}: {:?}",
            c.name,
            c.port_bindings
        );
        assert_eq!(
            c.env_var("GANTRY_ALLOC_ID"),
            Some(alloc.id.as_str()),
            "env {:?}",
            c.env
        );
        assert!(
            c.env_var("GANTRY_PORT_HTTP").is_some(),
            "GANTRY_PORT_HTTP missing from env {:?}",
            c.env
        );
        cluster.log(&format!(
            "slot {} alloc {} on {node}: {} port 8080 → {hp} (GANTRY_PORT_HTTP={})",
            alloc.slot,
            alloc.id,
            c.short(),
            c.env_var("GANTRY_PORT_HTTP").unwrap_or("")
        ));
    }

    // No other containers on either node.
    let total: usize = [&a, &b]
        .iter()
        .map(|ag| node_containers(&ag.name).unwrap().len())
        .sum();
    assert_eq!(
        total,
        4,
        "containers: a:\n{}\nb:\n{}",
        describe_containers(&node_containers(&a.name).unwrap()),
        describe_containers(&node_containers(&b.name).unwrap())
    );

    let t = Instant::now();
    for alloc in by_slot.values() {
        wait_http_200(host_port(alloc, "http"), Duration::from_secs(30)).await;
    }
    cluster.log(&format!(
        "all 4 answer HTTP 200 ({:?} after running)",
        t.elapsed()
    ));
    a.assert_alive();
    b.assert_alive();
    cluster.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_is_restarted_then_replaced_past_its_attempts() {
    let Some(setup) = DockerTest::start("kill", &["a", "b"]).await else {
        return;
    };
    let DockerTest {
        cluster,
        client,
        agents,
        ..
    } = setup;
    let [a, b] = agents_of(agents);

    let mut spec = httpd_job("web", 1);
    spec["restart"] = json!({"attempts": 1, "delay": "1s"});
    submit(&cluster, &spec).await;
    let by_slot = wait_job_running(&client, "web", 1, Duration::from_secs(120), &[&a, &b]).await;
    let first = by_slot[&0].clone();
    let c0 = running_container(&first.id).unwrap();
    cluster.log(&format!("allocation {} runs in {}", first.id, c0.short()));

    // Kill 1: restarted on the same node, same allocation.
    docker_kill(&c0.id);
    let t = Instant::now();
    let (restarted, c1) = wait_until(
        "the killed task to be restarted",
        Duration::from_secs(60),
        || async {
            a.assert_alive();
            b.assert_alive();
            let now = allocation(&client, &first.id).await?;
            if now.restart_count < 1 || now.client_state != ClientState::Running {
                return Err(describe_allocs(&[now]));
            }
            let c = running_container(&first.id)?;
            Ok((now, c))
        },
    )
    .await;
    cluster.log(&format!(
        "docker kill → running again after {:?}: restart_count={}, container {} (first was {})",
        t.elapsed(),
        restarted.restart_count,
        c1.short(),
        &c0.id[..12]
    ));
    assert_eq!(restarted.node_id, first.node_id, "restarted on its node");
    assert_eq!(restarted.restart_count, 1);
    wait_http_200(host_port(&restarted, "http"), Duration::from_secs(30)).await;
    let all = allocations(&client, "web").await.unwrap();
    assert_eq!(
        all.len(),
        1,
        "no replacement for a restart: {}",
        describe_allocs(&all)
    );

    // Kill 2: past the attempts → failed, replaced by a new allocation that runs.
    docker_kill(&c1.id);
    let t = Instant::now();
    let failed = wait_until(
        "the allocation to fail past its attempts",
        Duration::from_secs(60),
        || async {
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
        "second docker kill → allocation failed after {:?}: restart_count={} message={:?}",
        t.elapsed(),
        failed.restart_count,
        failed.message
    ));
    let replacement = wait_until(
        "a new allocation to replace the failed one and run",
        Duration::from_secs(120),
        || async {
            a.assert_alive();
            b.assert_alive();
            let all = allocations(&client, "web").await?;
            let by_slot = check_running(&all, 1)?;
            let r = by_slot[&0].clone();
            if r.id == first.id {
                return Err(format!("slot 0 is still {}", describe_allocs(&all)));
            }
            Ok(r)
        },
    )
    .await;
    cluster.log(&format!(
        "replacement {} running on {} after {:?} (restart_count={})",
        replacement.id,
        replacement.node_id,
        t.elapsed(),
        replacement.restart_count
    ));
    assert_eq!(replacement.restart_count, 0);
    let c2 = running_container(&replacement.id).unwrap();
    wait_http_200(host_port(&replacement, "http"), Duration::from_secs(30)).await;
    cluster.log(&format!(
        "replacement container {}; containers left of the failed allocation: {}",
        c2.short(),
        describe_containers(&alloc_containers(&first.id).unwrap())
    ));
    cluster.assert_alive();
}

/// How the agent goes away before it is started again.
#[derive(Debug, Clone, Copy)]
enum Death {
    Sigterm,
    Sigkill,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_its_running_containers() {
    let Some(setup) = DockerTest::start("adopt", &["a"]).await else {
        return;
    };
    let DockerTest {
        cluster,
        client,
        agents,
        ..
    } = setup;
    let [a] = agents_of(agents);

    submit(&cluster, &httpd_job("web", 3)).await;
    let t = Instant::now();
    let by_slot = wait_job_running(&client, "web", 3, Duration::from_secs(120), &[&a]).await;
    cluster.log(&format!("submit → 3 running: {:?}", t.elapsed()));
    let allocs: Vec<_> = by_slot.values().cloned().collect();
    let before = Snapshot::take(&allocs).unwrap();
    let alloc_ids: Vec<String> = allocs.iter().map(|x| x.id.clone()).collect();

    for death in [Death::Sigterm, Death::Sigkill] {
        match death {
            Death::Sigterm => {
                let status = a.stop();
                cluster.log(&format!("agent stopped by SIGTERM: {status:?}"));
            }
            Death::Sigkill => a.kill(),
        }
        // The containers outlive the agent.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let orphaned =
            Snapshot::take(&allocs).unwrap_or_else(|e| panic!("after {death:?} of the agent: {e}"));
        before
            .same_as(&orphaned)
            .unwrap_or_else(|e| panic!("containers changed after {death:?} of the agent:\n{e}"));

        let t = Instant::now();
        a.restart();
        let up = a.wait_listening(Duration::from_secs(30)).await;
        cluster.log(&format!(
            "after {death:?}: agent restarted, listening after {up:?}"
        ));

        // For 10 s: same allocations, running, no restart; same containers.
        let watch = Instant::now();
        let mut polls = 0;
        while watch.elapsed() < Duration::from_secs(10) {
            a.assert_alive();
            polls += 1;
            let all = allocations(&client, "web").await.unwrap();
            let now_by_slot = check_running(&all, 3)
                .unwrap_or_else(|e| panic!("after {death:?} + restart of the agent: {e}"));
            let now_ids: Vec<String> = now_by_slot.values().map(|x| x.id.clone()).collect();
            assert_eq!(now_ids, alloc_ids, "allocations changed after {death:?}");
            assert_eq!(all.len(), 3, "new allocations: {}", describe_allocs(&all));
            let now_allocs: Vec<_> = now_by_slot.values().cloned().collect();
            let now = Snapshot::take(&now_allocs)
                .unwrap_or_else(|e| panic!("after {death:?} + restart of the agent: {e}"));
            before.same_as(&now).unwrap_or_else(|e| {
                panic!("not adopted as they were after {death:?} + restart:\n{e}")
            });
            let on_node = node_containers(&a.name).unwrap();
            assert_eq!(
                on_node.len(),
                3,
                "containers of the node:\n{}",
                describe_containers(&on_node)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        cluster.log(&format!(
            "after {death:?}: adopted — same 3 containers, no restarts, {polls} checks over {:?}",
            t.elapsed()
        ));
    }
    for x in &allocs {
        wait_http_200(host_port(x, "http"), Duration::from_secs(10)).await;
    }
    let all = allocations(&client, "web").await.unwrap();
    assert_eq!(live(&all).len(), 3);
    cluster.assert_alive();
}
