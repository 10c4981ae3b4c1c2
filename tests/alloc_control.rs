//! An operator's hand on allocations, and service discovery, against three real managers.
//!
//! What it shows:
//! - with simulated agents (`gantry_api::sim_agent`): `POST /v1/allocations/{id}/restart`
//!   counts a request on the allocation that reaches the node's agent through its session,
//!   and places nothing new; `POST /v1/allocations/{id}/stop` (sent to a follower) marks
//!   it desired `stop`, the agent stops it, and the scheduler places a replacement for its
//!   slot; unknown ids are `404`, stopping a stopped allocation or restarting one that does
//!   not run is `409`, an unknown task or a malformed body is `400`;
//! - with a real `gantry agent --driver process` running `sleep`: a restart replaces the
//!   process (a new pid, the same allocation, `restart_count` still 0), one task or all; a
//!   new session after a leader failover and an agent restart (adoption) restart nothing;
//!   a stop ends the processes and the replacement runs new ones;
//! - services: a job with named ports on two simulated nodes is listed with each node's
//!   address and the allocations' host ports; a port's `service` names its service; an
//!   allocation reported unhealthy, or stopped, leaves the list; `?stale=true` on a
//!   follower and a blocking query (`?index=&wait=`) answer too.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_api::session::{AllocationReport, Heartbeat};
use gantry_api::sim_agent::SimAgent;
use gantry_api::{
    Allocation, Client, ClientState, DesiredState, Health, NodeRegistration, Resources,
    ServiceEndpoint, ServiceSummary,
};
use serde_json::{json, Value};
use support::agent::{
    allocation, allocations, check_running, client, describe_allocs, live, submit,
    wait_job_running, wait_nodes_ready, AgentProcess,
};
use support::{wait_until, Body, Cluster, Resp};

const WAIT: Duration = Duration::from_secs(60);

/// A simulated agent whose node registers at `address`.
fn sim_agent(client: &Client, name: &str, address: &str) -> SimAgent {
    SimAgent::start_registered(
        client,
        NodeRegistration {
            name: name.to_string(),
            address: address.to_string(),
            resources: Resources {
                cpu_millis: 4000,
                memory_mb: 8192,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["docker".into(), "process".into()],
            agent_addr: None,
        },
    )
}

async fn wait_ready(client: &Client, n: usize) {
    wait_until(&format!("{n} nodes ready"), WAIT, || async {
        let nodes = client.list_nodes(false).await.map_err(|e| e.to_string())?;
        let ready = nodes
            .value
            .iter()
            .filter(|n| n.status == gantry_api::NodeStatus::Ready)
            .count();
        if ready == n {
            Ok(())
        } else {
            Err(format!("{ready} of {} nodes ready", nodes.value.len()))
        }
    })
    .await
}

/// Waits until `job` runs one allocation in each slot `0..n`; returns them by slot.
async fn wait_running(client: &Client, job: &str, n: u32) -> BTreeMap<u32, Allocation> {
    wait_until(&format!("job {job}: {n} slots running"), WAIT, || async {
        check_running(&allocations(client, job).await?, n)
    })
    .await
}

async fn post(cluster: &Cluster, addr: &str, path: &str, body: Option<Value>) -> Resp {
    cluster
        .client()
        .request(addr, reqwest::Method::POST, path, body.map(Body::Json))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

async fn post_raw(cluster: &Cluster, addr: &str, path: &str, bytes: &str) -> Resp {
    let body = Body::Raw {
        content_type: "application/json",
        bytes: bytes.as_bytes().to_vec(),
    };
    cluster
        .client()
        .request(addr, reqwest::Method::POST, path, Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

async fn get(cluster: &Cluster, addr: &str, path: &str) -> Resp {
    cluster
        .client()
        .get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn decode<T: serde::de::DeserializeOwned>(r: &Resp) -> T {
    serde_json::from_value(r.body.clone())
        .unwrap_or_else(|e| panic!("cannot decode ({e}): {}", r.describe()))
}

/// The answer is `status` with the error `code` (and the contract's error body).
fn expect_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert_eq!(r.error_code(), Some(code), "{}", r.describe());
}

async fn follower_addr(cluster: &Cluster) -> String {
    let leader = cluster.leader_id().await;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.addr(follower)
}

// ---------------------------------------------------------------------------
// Stop and restart with simulated agents
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_replaces_and_restart_reaches_the_agent_with_simulated_agents() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let agents = [
        sim_agent(&client, "ctl-a", "10.1.0.1"),
        sim_agent(&client, "ctl-b", "10.1.0.2"),
    ];
    wait_ready(&client, 2).await;
    let leader = cluster.addr(cluster.leader_id().await);
    let follower = follower_addr(&cluster).await;

    submit(
        &cluster,
        &json!({
            "id": "web",
            "replicas": 2,
            "tasks": [
                {"name": "main", "image": "gantry/busybox:latest", "command": ["sleep", "600"],
                 "resources": {"cpu_millis": 100, "memory_mb": 32}},
                {"name": "side", "image": "gantry/busybox:latest", "command": ["sleep", "600"],
                 "resources": {"cpu_millis": 100, "memory_mb": 32}}
            ]
        }),
    )
    .await;
    let before = wait_running(&client, "web", 2).await;
    let victim = before[&0].clone();
    let agent_of = |a: &Allocation| {
        agents
            .iter()
            .find(|agent| agent.node_id().as_deref() == Some(a.node_id.as_str()))
            .expect("the allocation's node has a simulated agent")
    };
    let seen_by_agent = |id: &str| {
        agent_of(&victim)
            .state
            .lock()
            .unwrap()
            .allocations
            .get(id)
            .map(|a| (a.restart_requests, a.restart_task.clone()))
    };

    // A restart: counted on the allocation, carried to its agent by the session.
    let path = format!("/v1/allocations/{}/restart", victim.id);
    let r = post(&cluster, &leader, &path, None).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let restarted: Allocation = decode(&r);
    assert_eq!(restarted.id, victim.id);
    assert_eq!(restarted.restart_requests, 1);
    assert_eq!(restarted.restart_task, None);
    assert_eq!(restarted.desired, DesiredState::Run);
    wait_until("the restart request to reach the agent", WAIT, || async {
        match seen_by_agent(&victim.id) {
            Some((1, None)) => Ok(()),
            other => Err(format!("the agent holds {other:?}")),
        }
    })
    .await;

    let r = post(&cluster, &follower, &path, Some(json!({"task": "side"}))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let restarted: Allocation = decode(&r);
    assert_eq!(restarted.restart_requests, 2);
    assert_eq!(restarted.restart_task.as_deref(), Some("side"));
    wait_until("the second request to reach the agent", WAIT, || async {
        match seen_by_agent(&victim.id) {
            Some((2, Some(task))) if task == "side" => Ok(()),
            other => Err(format!("the agent holds {other:?}")),
        }
    })
    .await;

    // Bad restarts change nothing.
    let r = post(&cluster, &leader, &path, Some(json!({"task": "db"}))).await;
    expect_error(&r, 400, "bad_request");
    assert!(
        r.error_message().unwrap().contains("main, side"),
        "the message lists the tasks: {}",
        r.describe()
    );
    assert_eq!(r.body["error"]["field"], "task", "{}", r.describe());
    expect_error(
        &post(&cluster, &leader, &path, Some(json!({"task": ""}))).await,
        400,
        "bad_request",
    );
    expect_error(
        &post(&cluster, &leader, &path, Some(json!({"tusk": "main"}))).await,
        400,
        "bad_request",
    );
    expect_error(
        &post_raw(&cluster, &leader, &path, "{not json").await,
        400,
        "bad_request",
    );
    expect_error(
        &post(&cluster, &leader, "/v1/allocations/nope/restart", None).await,
        404,
        "not_found",
    );
    let now = allocation(&client, &victim.id).await.unwrap();
    assert_eq!(now.restart_requests, 2);
    assert_eq!(
        now.restart_count, 0,
        "an operator's restart is not a policy restart"
    );
    let all = allocations(&client, "web").await.unwrap();
    assert_eq!(
        all.len(),
        2,
        "a restart places nothing: {}",
        describe_allocs(&all)
    );

    // A stop, sent to a follower: desired stop at once, then a replacement for the slot.
    let stop_path = format!("/v1/allocations/{}/stop", victim.id);
    let r = post(&cluster, &follower, &stop_path, None).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let stopped: Allocation = decode(&r);
    assert_eq!(stopped.id, victim.id);
    assert_eq!(stopped.desired, DesiredState::Stop);
    assert_eq!(stopped.message, "stopped by operator");

    let replacement = wait_until("a replacement for slot 0", WAIT, || async {
        let all = allocations(&client, "web").await?;
        let running = check_running(&all, 2)?;
        let old = all
            .iter()
            .find(|a| a.id == victim.id)
            .ok_or("the stopped allocation is gone")?;
        if old.client_state != ClientState::Complete {
            return Err(format!("the old one is still {:?}", old.client_state));
        }
        Ok(running[&0].clone())
    })
    .await;
    assert_ne!(replacement.id, victim.id);
    assert_eq!(replacement.slot, 0);
    assert!(agents
        .iter()
        .any(|agent| agent.node_id().as_deref() == Some(replacement.node_id.as_str())));
    let old = allocation(&client, &victim.id).await.unwrap();
    assert_eq!(old.desired, DesiredState::Stop);
    assert_eq!(
        live(&allocations(&client, "web").await.unwrap()).len(),
        2,
        "one per slot"
    );
    cluster.log(&format!(
        "stopped {} on {}, replaced by {} on {}",
        victim.id, victim.node_id, replacement.id, replacement.node_id
    ));

    // The stopped allocation: stopping again is a conflict, so is a restart.
    let r = post(&cluster, &leader, &stop_path, None).await;
    expect_error(&r, 409, "conflict");
    assert!(
        r.error_message().unwrap().contains("already"),
        "{}",
        r.describe()
    );
    expect_error(&post(&cluster, &leader, &path, None).await, 409, "conflict");
    expect_error(
        &post(&cluster, &leader, "/v1/allocations/nope/stop", None).await,
        404,
        "not_found",
    );
}

// ---------------------------------------------------------------------------
// Restart in place with a real agent (process driver)
// ---------------------------------------------------------------------------

/// The processes a process-driver agent runs for allocation `alloc_id`: task → pids of
/// the task's process group leaders (read from `/proc/<pid>/environ`).
fn task_pids(alloc_id: &str) -> BTreeMap<String, Vec<i32>> {
    let mut found: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (pid, env) in gantry_processes() {
        if env.get("GANTRY_ALLOC_ID").map(String::as_str) != Some(alloc_id) {
            continue;
        }
        let task = env.get("GANTRY_TASK").cloned().unwrap_or_default();
        found.entry(task).or_default().push(pid);
    }
    found
}

/// Every live process group leader carrying `GANTRY_*` variables, with them.
fn gantry_processes() -> Vec<(i32, BTreeMap<String, String>)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, pgrp) = (fields.first().copied(), fields.get(2).copied());
        if state == Some("Z") || pgrp != Some(pid.to_string().as_str()) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let env: BTreeMap<String, String> = environ
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                k.starts_with("GANTRY_")
                    .then(|| (k.to_string(), v.to_string()))
            })
            .collect();
        if env.contains_key("GANTRY_ALLOC_ID") {
            out.push((pid, env));
        }
    }
    out
}

/// One pid per task, for exactly `tasks`.
fn one_pid_per_task(alloc_id: &str, tasks: &[&str]) -> Result<BTreeMap<String, i32>, String> {
    let found = task_pids(alloc_id);
    let mut pids = BTreeMap::new();
    for task in tasks {
        match found.get(*task).map(Vec::as_slice) {
            Some([pid]) => {
                pids.insert(task.to_string(), *pid);
            }
            other => return Err(format!("task {task} of {alloc_id}: processes {other:?}")),
        }
    }
    if found.len() != tasks.len() {
        return Err(format!("unexpected tasks of {alloc_id}: {found:?}"));
    }
    Ok(pids)
}

/// Kills, on drop, the process groups the agents of node `node` left running (the
/// process driver's tasks outlive their agent on purpose). Declared before the agent.
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, env) in gantry_processes() {
            if env.get("GANTRY_NODE") == Some(&self.0) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

/// Lines of the agent's log containing every one of `words`.
fn log_lines(agent: &AgentProcess, words: &[&str]) -> usize {
    agent
        .log_text()
        .lines()
        .filter(|line| words.iter().all(|w| line.contains(w)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_the_processes_in_place_on_a_real_agent() {
    let _serial = support::SERIAL.lock().await;
    let node = format!("ctl-proc-{}", std::process::id());
    let _reaper = Reaper(node.clone());
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let agent = AgentProcess::start(&cluster, &node, "process", &["--stop-grace", "5s"]);
    wait_nodes_ready(&client, &[&agent], WAIT).await;

    let task = |name: &str| {
        json!({"name": name, "driver": "process", "image": "none", "command": ["sleep", "600"],
               "resources": {"cpu_millis": 100, "memory_mb": 32}})
    };
    submit(
        &cluster,
        &json!({"id": "sleeper", "replicas": 1, "tasks": [task("main"), task("side")]}),
    )
    .await;
    let alloc = wait_job_running(&client, "sleeper", 1, WAIT, &[&agent]).await[&0].clone();
    let tasks = ["main", "side"];
    let first = wait_until("one process per task", WAIT, || async {
        one_pid_per_task(&alloc.id, &tasks)
    })
    .await;
    cluster.log(&format!("{} runs {first:?}", alloc.id));

    let leader = cluster.addr(cluster.leader_id().await);
    let path = format!("/v1/allocations/{}/restart", alloc.id);

    // Restart one task: a new process for it, the other untouched.
    let r = post(&cluster, &leader, &path, Some(json!({"task": "main"}))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let second = wait_until("task main restarted", WAIT, || async {
        let pids = one_pid_per_task(&alloc.id, &tasks)?;
        if pids["main"] == first["main"] {
            return Err(format!("main still runs as {}", pids["main"]));
        }
        let a = allocation(&client, &alloc.id).await?;
        if a.client_state != ClientState::Running {
            return Err(format!("the allocation is {:?}", a.client_state));
        }
        Ok(pids)
    })
    .await;
    assert_eq!(
        second["side"], first["side"],
        "side was not asked to restart"
    );
    cluster.log(&format!("after restarting main: {second:?}"));

    // Restart all tasks.
    let r = post(&cluster, &leader, &path, None).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let third = wait_until("both tasks restarted", WAIT, || async {
        let pids = one_pid_per_task(&alloc.id, &tasks)?;
        if pids["main"] == second["main"] || pids["side"] == second["side"] {
            return Err(format!("not both restarted yet: {pids:?}"));
        }
        Ok(pids)
    })
    .await;
    let now = wait_until("the restart reported", WAIT, || async {
        let a = allocation(&client, &alloc.id).await?;
        if a.client_state == ClientState::Running && a.message.contains("restarted by an operator")
        {
            Ok(a)
        } else {
            Err(format!("{:?}: {:?}", a.client_state, a.message))
        }
    })
    .await;
    assert_eq!(now.id, alloc.id);
    assert_eq!(now.node_id, alloc.node_id);
    assert_eq!(now.restart_requests, 2);
    assert_eq!(
        now.restart_count, 0,
        "not counted against the restart policy"
    );
    let all = allocations(&client, "sleeper").await.unwrap();
    assert_eq!(all.len(), 1, "no new allocation: {}", describe_allocs(&all));

    // A new session (the leader is killed; the agent finds the new one) brings the same
    // record again: nothing restarts. A restart of `side` afterwards proves the runner
    // has handled the replayed record first (its orders are handled in turn).
    let sessions = log_lines(&agent, &["complete set"]);
    let old_leader = cluster.leader_id().await;
    cluster.kill(old_leader);
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, old_leader);
    wait_until("the agent's session with the new leader", WAIT, || async {
        let n = log_lines(&agent, &["complete set"]);
        if n > sessions {
            Ok(())
        } else {
            Err(format!("{n} complete sets, {sessions} before the failover"))
        }
    })
    .await;
    let leader = cluster.addr(new_leader);
    let r = post(&cluster, &leader, &path, Some(json!({"task": "side"}))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let fourth = wait_until("side restarted after the failover", WAIT, || async {
        let pids = one_pid_per_task(&alloc.id, &tasks)?;
        if pids["side"] == third["side"] {
            return Err(format!("side still runs as {}", pids["side"]));
        }
        Ok(pids)
    })
    .await;
    assert_eq!(
        fourth["main"], third["main"],
        "a replayed complete set restarted main"
    );

    // The agent restarts: it adopts the processes as they run, and takes the requests
    // made so far as done. A restart of `main` afterwards proves it has.
    agent.restart();
    wait_until("the restarted agent to adopt both tasks", WAIT, || async {
        agent.assert_alive();
        let n = log_lines(&agent, &["adopted", &alloc.id]);
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} tasks adopted"))
        }
    })
    .await;
    assert_eq!(
        one_pid_per_task(&alloc.id, &tasks).unwrap(),
        fourth,
        "adoption restarted nothing"
    );
    let r = post(&cluster, &leader, &path, Some(json!({"task": "main"}))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let fifth = wait_until("main restarted after the agent restart", WAIT, || async {
        agent.assert_alive();
        let pids = one_pid_per_task(&alloc.id, &tasks)?;
        if pids["main"] == fourth["main"] {
            return Err(format!("main still runs as {}", pids["main"]));
        }
        Ok(pids)
    })
    .await;
    assert_eq!(
        fifth["side"], fourth["side"],
        "the adopted side was restarted again"
    );

    // A stop ends its processes; the replacement runs new ones.
    let r = post(
        &cluster,
        &leader,
        &format!("/v1/allocations/{}/stop", alloc.id),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let replacement = wait_until("the stopped allocation replaced", WAIT, || async {
        agent.assert_alive();
        let all = allocations(&client, "sleeper").await?;
        let running = check_running(&all, 1)?;
        let old = all
            .iter()
            .find(|a| a.id == alloc.id)
            .ok_or("old one gone")?;
        if old.client_state != ClientState::Complete {
            return Err(format!("old one is {:?}", old.client_state));
        }
        if !task_pids(&alloc.id).is_empty() {
            return Err(format!(
                "the old allocation still runs: {:?}",
                task_pids(&alloc.id)
            ));
        }
        Ok(running[&0].clone())
    })
    .await;
    assert_ne!(replacement.id, alloc.id);
    let new_pids = wait_until("the replacement's processes", WAIT, || async {
        one_pid_per_task(&replacement.id, &tasks)
    })
    .await;
    cluster.log(&format!(
        "stopped {}, replacement {} runs {new_pids:?}",
        alloc.id, replacement.id
    ));
    agent.stop();
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_healthy_endpoints_at_their_nodes_addresses() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let client = client(&cluster);
    let agents = [
        sim_agent(&client, "svc-a", "10.2.0.1"),
        sim_agent(&client, "svc-b", "10.2.0.2"),
    ];
    wait_ready(&client, 2).await;
    let leader = cluster.addr(cluster.leader_id().await);
    let follower = follower_addr(&cluster).await;
    let address_of: BTreeMap<String, String> = client
        .list_nodes(false)
        .await
        .unwrap()
        .value
        .into_iter()
        .map(|n| (n.id, n.address))
        .collect();

    expect_error(
        &get(&cluster, &leader, "/v1/services/shop-http").await,
        404,
        "not_found",
    );
    submit(
        &cluster,
        &json!({
            "id": "shop",
            "replicas": 2,
            "tasks": [{
                "name": "main", "image": "gantry/busybox:latest", "command": ["sleep", "600"],
                "resources": {"cpu_millis": 100, "memory_mb": 32},
                "ports": [
                    {"name": "http", "container_port": 8080},
                    {"name": "metrics", "container_port": 9100, "service": "shop-prom",
                     "tags": ["scrape", "metrics"]}
                ]
            }]
        }),
    )
    .await;
    let running = wait_running(&client, "shop", 2).await;
    assert_ne!(
        running[&0].node_id, running[&1].node_id,
        "replicas on distinct nodes"
    );
    let host_port = |a: &Allocation, name: &str| {
        a.ports
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{} has no port {name}", a.id))
            .host_port
    };
    let expected = |name: &str, port: &str, tags: &[&str], allocs: &[&Allocation]| {
        let mut list: Vec<ServiceEndpoint> = allocs
            .iter()
            .map(|a| ServiceEndpoint {
                service: name.to_string(),
                alloc_id: a.id.clone(),
                job_id: "shop".into(),
                node_id: a.node_id.clone(),
                address: address_of[&a.node_id].clone(),
                port: host_port(a, port),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            })
            .collect();
        list.sort_by(|a, b| a.alloc_id.cmp(&b.alloc_id));
        list
    };
    let both = [&running[&0], &running[&1]];

    // Every running, healthy allocation is an endpoint at its node's address.
    let http = wait_until("both endpoints of shop-http", WAIT, || async {
        let r = get(&cluster, &leader, "/v1/services/shop-http").await;
        let list: Vec<ServiceEndpoint> = decode(&r);
        if list.len() == 2 {
            Ok(list)
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert_eq!(http, expected("shop-http", "http", &[], &both));
    let addresses: Vec<&str> = http.iter().map(|e| e.address.as_str()).collect();
    assert!(
        addresses.contains(&"10.2.0.1") && addresses.contains(&"10.2.0.2"),
        "{addresses:?}"
    );
    let prom: Vec<ServiceEndpoint> =
        decode(&get(&cluster, &leader, "/v1/services/shop-prom").await);
    assert_eq!(
        prom,
        expected("shop-prom", "metrics", &["scrape", "metrics"], &both)
    );
    expect_error(
        &get(&cluster, &leader, "/v1/services/shop-metrics").await,
        404,
        "not_found",
    );

    let summaries: Vec<ServiceSummary> = decode(&get(&cluster, &leader, "/v1/services").await);
    assert_eq!(
        summaries,
        vec![
            ServiceSummary {
                name: "shop-http".into(),
                endpoints: 2,
                jobs: vec!["shop".into()],
                tags: vec![],
            },
            ServiceSummary {
                name: "shop-prom".into(),
                endpoints: 2,
                jobs: vec!["shop".into()],
                tags: vec!["metrics".into(), "scrape".into()],
            },
        ]
    );
    wait_until(
        "the same answer from a follower's replica",
        WAIT,
        || async {
            let r = get(&cluster, &follower, "/v1/services/shop-http?stale=true").await;
            let list: Vec<ServiceEndpoint> = decode(&r);
            if list == http {
                Ok(())
            } else {
                Err(r.describe())
            }
        },
    )
    .await;

    // Reported unhealthy: no longer an endpoint (of either service).
    let sick = running[&0].clone();
    let well = running[&1].clone();
    let sick_agent = agents
        .iter()
        .find(|a| a.node_id().as_deref() == Some(sick.node_id.as_str()))
        .unwrap();
    // Let any heartbeat in flight (the agent's own report of `healthy`) finish first, so
    // the agent takes the report below as the managers' record and does not answer it.
    let beats = sick_agent.state.lock().unwrap().heartbeats_ok;
    wait_until("one more heartbeat of the agent", WAIT, || async {
        if sick_agent.state.lock().unwrap().heartbeats_ok > beats {
            Ok(())
        } else {
            Err("no heartbeat yet".to_string())
        }
    })
    .await;
    client
        .heartbeat(&Heartbeat {
            node_id: sick.node_id.clone(),
            updates: vec![AllocationReport {
                id: sick.id.clone(),
                client_state: ClientState::Running,
                health: Health::Unhealthy,
                restart_count: 0,
                message: "health check failed (reported by the test)".into(),
            }],
        })
        .await
        .expect("the unhealthy report is accepted");
    let r = get(&cluster, &leader, "/v1/services/shop-http").await;
    let list: Vec<ServiceEndpoint> = decode(&r);
    assert_eq!(list, expected("shop-http", "http", &[], &[&well]));
    let summaries: Vec<ServiceSummary> = decode(&get(&cluster, &leader, "/v1/services").await);
    assert!(summaries.iter().all(|s| s.endpoints == 1), "{summaries:?}");

    // A blocking query on the list answers once something newer than its index applied;
    // the stop of the healthy one is such a change, and it leaves the list.
    let index = r.index.expect("X-Gantry-Index");
    let blocking = {
        let api = cluster.client();
        let addr = follower.clone();
        tokio::spawn(async move {
            api.get(
                &addr,
                &format!("/v1/services/shop-http?index={index}&wait=30s"),
            )
            .await
        })
    };
    let r = post(
        &cluster,
        &leader,
        &format!("/v1/allocations/{}/stop", well.id),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let answered = blocking.await.unwrap().unwrap();
    assert_eq!(answered.status, 200, "{}", answered.describe());
    assert!(
        answered.index.unwrap_or(0) > index,
        "a blocking query answers after index {index}: {}",
        answered.describe()
    );
    let r = get(&cluster, &leader, "/v1/services/shop-http").await;
    let list: Vec<ServiceEndpoint> = decode(&r);
    assert!(
        list.iter()
            .all(|e| e.alloc_id != well.id && e.alloc_id != sick.id),
        "stopped and unhealthy allocations are no endpoints: {list:?}"
    );

    // Its replacement runs and is healthy: it is listed.
    let replacement = wait_until("the replacement listed", WAIT, || async {
        let all = allocations(&client, "shop").await?;
        let running = check_running(&all, 2)?;
        let new = running[&1].clone();
        if new.id == well.id {
            return Err("slot 1 not replaced yet".into());
        }
        let list: Vec<ServiceEndpoint> =
            decode(&get(&cluster, &leader, "/v1/services/shop-http").await);
        if list == expected("shop-http", "http", &[], &[&new]) {
            Ok(new)
        } else {
            Err(format!("{list:?}"))
        }
    })
    .await;
    cluster.log(&format!("{} replaced by {}", well.id, replacement.id));
    expect_error(
        &get(&cluster, &leader, "/v1/services/nothing-here").await,
        404,
        "not_found",
    );
}
