//! Agent sessions against three real managers, with agents simulated in this test
//! process through the `gantry-api` client (register, heartbeat, session).
//!
//! The scenario: 20 agents register and hold sessions → every node is `ready`; one
//! agent dies (no more heartbeats) → its node goes `down` within the TTL plus a margin,
//! and no other node does; the leader is SIGKILLed while the other agents stay attached
//! → they reconnect to the new leader (following the `421` hint of the followers) and
//! no node is marked down during or after the failover (the new leader's grace period).
//! Durations are printed; only generous bounds are asserted.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_api::session::{Heartbeat, SessionMessage};
use gantry_api::{Client, ClientOptions, NodeRegistration, Resources};
use support::{wait_until, Cluster};
use tokio::task::JoinHandle;

const AGENTS: usize = 20;

/// What a simulated agent has seen, for the test to look at.
#[derive(Debug, Default)]
struct Seen {
    node_id: Option<String>,
    /// Complete sets received (one per session opened).
    completes: usize,
    /// When the last complete set arrived, and from which manager.
    last_complete: Option<(Instant, String)>,
    heartbeats_ok: usize,
}

struct Agent {
    name: String,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Agent {
    fn start(addrs: &[String], name: String) -> Agent {
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
        };
        let client = Client::with_options(addrs, None, options).expect("client");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let registration = NodeRegistration {
            name: name.clone(),
            address: "127.0.0.1".into(),
            resources: Resources {
                cpu_millis: 4000,
                memory_mb: 8192,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["process".into()],
            agent_addr: None,
        };
        let (registered, _) = tokio::sync::watch::channel(None::<(String, u64)>);
        let registered = Arc::new(registered);
        let heartbeats = tokio::spawn(heartbeat_loop(
            client.clone(),
            registration,
            registered.clone(),
            seen.clone(),
        ));
        let sessions = tokio::spawn(session_loop(client, registered, seen.clone()));
        Agent {
            name,
            seen,
            tasks: vec![heartbeats, sessions],
        }
    }

    /// The agent process dies: no more heartbeats, its session drops.
    fn kill(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Registers (again whenever the leader does not know the node), then heartbeats every
/// TTL/3.
async fn heartbeat_loop(
    client: Client,
    registration: NodeRegistration,
    registered: Arc<tokio::sync::watch::Sender<Option<(String, u64)>>>,
    seen: Arc<Mutex<Seen>>,
) {
    loop {
        let current = registered.borrow().clone();
        let (node_id, ttl_ms) = match current {
            Some(known) => known,
            None => match client.register_node(&registration).await {
                Ok(answer) => {
                    let known = (answer.node_id, answer.heartbeat_ttl_ms);
                    seen.lock().unwrap().node_id = Some(known.0.clone());
                    registered.send_replace(Some(known.clone()));
                    known
                }
                Err(e) => {
                    eprintln!("[agent {}] register: {e}", registration.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let heartbeat = Heartbeat {
            node_id,
            updates: vec![],
        };
        let pause = match client.heartbeat(&heartbeat).await {
            Ok(ack) => {
                seen.lock().unwrap().heartbeats_ok += 1;
                registered.send_modify(|r| {
                    if let Some(r) = r {
                        r.1 = ack.heartbeat_ttl_ms;
                    }
                });
                Duration::from_millis(ttl_ms / 3)
            }
            Err(e) if e.is_not_found() => {
                registered.send_replace(None);
                Duration::ZERO
            }
            Err(_) => Duration::from_millis(200),
        };
        tokio::time::sleep(pause).await;
    }
}

/// Holds a session, opening a new one whenever it ends.
async fn session_loop(
    client: Client,
    registered: Arc<tokio::sync::watch::Sender<Option<(String, u64)>>>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut known = registered.subscribe();
    loop {
        let node_id = match known.wait_for(Option::is_some).await {
            Ok(r) => r.as_ref().map(|(id, _)| id.clone()),
            Err(_) => return,
        };
        let Some(node_id) = node_id else { continue };
        let mut session = match client.open_session(&node_id).await {
            Ok(session) => session,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while let Ok(Some(message)) = session.next().await {
            if let SessionMessage::Complete { .. } = message {
                let mut seen = seen.lock().unwrap();
                seen.completes += 1;
                seen.last_complete = Some((Instant::now(), session.manager().to_string()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node name → status, read from manager `id`.
async fn node_statuses(cluster: &Cluster, id: u64) -> Result<BTreeMap<String, String>, String> {
    let resp = cluster.api.get(&cluster.addr(id), "/v1/nodes").await?;
    if resp.status != 200 {
        return Err(resp.describe());
    }
    let nodes = resp.body.as_array().ok_or("not a list")?;
    Ok(nodes
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn count(statuses: &BTreeMap<String, String>, status: &str) -> usize {
    statuses.values().filter(|s| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_go_ready_a_dead_node_goes_down_and_a_failover_marks_none_down() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader_id().await;

    // --- 20 agents register and hold sessions: every node ready -------------------
    let started = Instant::now();
    let mut agents: Vec<Agent> = (0..AGENTS)
        .map(|i| Agent::start(&cluster.addrs(), format!("node-{i:02}")))
        .collect();
    wait_until(
        "every node to be ready",
        Duration::from_secs(30),
        || async {
            let statuses = node_statuses(&cluster, leader).await?;
            if statuses.len() == AGENTS && count(&statuses, "ready") == AGENTS {
                Ok(())
            } else {
                Err(format!("{statuses:?}"))
            }
        },
    )
    .await;
    cluster.log(&format!(
        "{AGENTS} nodes registered and ready in {:?}",
        started.elapsed()
    ));
    wait_until(
        "every agent to hold a session",
        Duration::from_secs(10),
        || async {
            let without: Vec<&str> = agents
                .iter()
                .filter(|a| a.seen.lock().unwrap().completes == 0)
                .map(|a| a.name.as_str())
                .collect();
            if without.is_empty() {
                Ok(())
            } else {
                Err(format!("no session yet: {without:?}"))
            }
        },
    )
    .await;

    // --- A follower names the leader: 421 with the leader's address --------------
    let follower = *cluster.ids().iter().find(|id| **id != leader).unwrap();
    let answer = cluster
        .api
        .get(&cluster.addr(follower), "/v1/agent/session?node=node-00")
        .await
        .unwrap();
    assert_eq!(answer.status, 421, "{}", answer.describe());
    assert_eq!(answer.error_code(), Some("not_leader"));
    assert_eq!(
        answer.body["leader"]["addr"].as_str(),
        Some(cluster.addr(leader).as_str()),
        "{}",
        answer.describe()
    );

    // --- One agent dies: its node goes down, no other does -----------------------
    // A new leader marks nothing down during its grace period (2 × TTL from its
    // election), so let that pass first: this measures the TTL alone.
    let grace_left = Duration::from_secs(7).saturating_sub(started.elapsed());
    tokio::time::sleep(grace_left).await;
    let dead = agents[0].name.clone();
    let last_heartbeat_count = agents[0].seen.lock().unwrap().heartbeats_ok;
    agents[0].kill();
    let killed_at = Instant::now();
    let statuses = wait_until(
        &format!("{dead} to be marked down"),
        Duration::from_secs(30),
        || async {
            let statuses = node_statuses(&cluster, leader).await?;
            if statuses.get(&dead).map(String::as_str) == Some("down") {
                Ok(statuses)
            } else {
                Err(format!("{statuses:?}"))
            }
        },
    )
    .await;
    let detection = killed_at.elapsed();
    cluster.log(&format!(
        "{dead} (after {last_heartbeat_count} heartbeats) marked down {detection:?} after its agent died (TTL 3 s)"
    ));
    assert!(
        detection < Duration::from_secs(15),
        "a dead node took {detection:?} to be marked down"
    );
    assert_eq!(
        count(&statuses, "down"),
        1,
        "only the dead node is down: {statuses:?}"
    );

    // --- The leader dies while the agents stay attached ---------------------------
    let before: Vec<usize> = agents
        .iter()
        .map(|a| a.seen.lock().unwrap().completes)
        .collect();
    cluster.kill(leader);
    let failover_at = Instant::now();
    let new_leader = cluster.wait_for_leader().await;
    cluster.log(&format!(
        "manager {new_leader} leads {:?} after the kill",
        failover_at.elapsed()
    ));
    let new_leader_url = format!("http://{}/", cluster.addr(new_leader));
    let reconnects = wait_until(
        "the live agents to reopen their sessions on the new leader",
        Duration::from_secs(30),
        || async {
            let mut times = Vec::new();
            for (agent, before) in agents.iter().zip(&before).skip(1) {
                let seen = agent.seen.lock().unwrap();
                match &seen.last_complete {
                    Some((at, manager))
                        if seen.completes > *before && *manager == new_leader_url =>
                    {
                        times.push(at.duration_since(failover_at))
                    }
                    other => {
                        return Err(format!(
                            "{} has no session on {new_leader_url} yet ({other:?})",
                            agent.name
                        ))
                    }
                }
            }
            Ok(times)
        },
    )
    .await;
    let slowest = reconnects.iter().max().copied().unwrap_or_default();
    cluster.log(&format!(
        "{} agents reconnected to the new leader; slowest {slowest:?} after the kill",
        reconnects.len()
    ));

    // Watch past the new leader's grace period (2 × TTL) and one more TTL: nobody else
    // may go down.
    let watch_until = failover_at + Duration::from_secs(10);
    let mut checks = 0;
    while Instant::now() < watch_until {
        let statuses = node_statuses(&cluster, new_leader)
            .await
            .unwrap_or_else(|e| panic!("reading nodes from manager {new_leader}: {e}"));
        let down: Vec<&String> = statuses
            .iter()
            .filter(|(_, s)| *s == "down")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(down, vec![&dead], "after the failover: {statuses:?}");
        assert_eq!(count(&statuses, "ready"), AGENTS - 1, "{statuses:?}");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cluster.log(&format!(
        "no node marked down in the {:?} after the failover ({checks} checks)",
        failover_at.elapsed()
    ));
    cluster.assert_alive();
}
