//! A simulated agent — a fake, for process-level tests and the load tester — speaking
//! the real session protocol through this crate's client (see [`crate::session`]).
//! Built only with the `sim-agent` feature.
//!
//! It starts nothing: it stands in for a node so that tests and benchmarks can attach
//! hundreds or thousands of nodes to real managers from one process.
//!
//! It registers its node, holds one session (reopening it whenever it ends), applies the
//! complete sets and increments it receives, and reports through its heartbeats every
//! allocation it was given: desired `run` → `running`/healthy, desired `stop` →
//! `complete`. It heartbeats every TTL/3, and at once when the session brought something
//! to report. [`SimAgent::kill`] stops everything at once: no more heartbeats, the session
//! drops — a dead node.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::{AllocationReport, Heartbeat, SessionMessage};
use crate::{Allocation, Client, ClientState, DesiredState, Health, NodeRegistration, Resources};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What a simulated agent holds and has seen, for the test to look at.
#[derive(Debug, Default)]
pub struct AgentState {
    pub node_id: Option<String>,
    /// The node's set as the managers last described it.
    pub allocations: BTreeMap<String, Allocation>,
    /// Reports acknowledged (committed) since the last complete set: id → state.
    acked: HashMap<String, ClientState>,
    /// Complete sets received (one per session opened), and from which manager the last.
    pub completes: usize,
    pub last_complete: Option<(Instant, String)>,
    pub heartbeats_ok: usize,
    pub reports_sent: usize,
}

impl AgentState {
    /// What the agent has to report now: every allocation whose recorded state is not
    /// what this agent makes of it, unless that report was already acknowledged.
    fn due_reports(&self) -> Vec<AllocationReport> {
        self.allocations
            .values()
            .filter_map(|a| {
                let (state, health) = match a.desired {
                    DesiredState::Run => (ClientState::Running, Health::Healthy),
                    DesiredState::Stop => (ClientState::Complete, Health::Unknown),
                };
                let recorded = a.client_state == state && a.health == health;
                let acked = self.acked.get(&a.id) == Some(&state);
                (!recorded && !acked && !a.client_state.is_terminal()).then(|| AllocationReport {
                    id: a.id.clone(),
                    client_state: state,
                    health,
                    restart_count: 0,
                    message: String::new(),
                })
            })
            .collect()
    }
}

pub struct SimAgent {
    pub name: String,
    pub state: Arc<Mutex<AgentState>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Registered node id and the TTL of the last answer.
type Registered = Arc<watch::Sender<Option<(String, u64)>>>;

impl SimAgent {
    /// Starts an agent offering `cpu_millis`/`memory_mb`, with drivers docker and process.
    pub fn start(client: &Client, name: &str, cpu_millis: u64, memory_mb: u64) -> SimAgent {
        let registration = NodeRegistration {
            name: name.to_string(),
            address: "127.0.0.1".into(),
            resources: Resources {
                cpu_millis,
                memory_mb,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["docker".into(), "process".into()],
            agent_addr: None,
        };
        let state = Arc::new(Mutex::new(AgentState::default()));
        let registered: Registered = Arc::new(watch::channel(None).0);
        let wake = Arc::new(Notify::new());
        let heartbeats = tokio::spawn(heartbeat_loop(
            client.clone(),
            registration,
            registered.clone(),
            state.clone(),
            wake.clone(),
        ));
        let sessions = tokio::spawn(session_loop(
            client.clone(),
            registered,
            state.clone(),
            wake,
        ));
        SimAgent {
            name: name.to_string(),
            state,
            tasks: vec![heartbeats, sessions],
        }
    }

    pub fn node_id(&self) -> Option<String> {
        self.state.lock().unwrap().node_id.clone()
    }

    pub fn completes(&self) -> usize {
        self.state.lock().unwrap().completes
    }

    pub fn is_alive(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The agent dies: no more heartbeats, its session drops.
    pub fn kill(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn heartbeat_loop(
    client: Client,
    registration: NodeRegistration,
    registered: Registered,
    state: Arc<Mutex<AgentState>>,
    wake: Arc<Notify>,
) {
    loop {
        let current = registered.borrow().clone();
        let (node_id, ttl_ms) = match current {
            Some(known) => known,
            None => match client.register_node(&registration).await {
                Ok(answer) => {
                    let known = (answer.node_id, answer.heartbeat_ttl_ms);
                    state.lock().unwrap().node_id = Some(known.0.clone());
                    registered.send_replace(Some(known.clone()));
                    known
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let updates = state.lock().unwrap().due_reports();
        let heartbeat = Heartbeat {
            node_id,
            updates: updates.clone(),
        };
        let pause = match client.heartbeat(&heartbeat).await {
            Ok(ack) => {
                let mut s = state.lock().unwrap();
                s.heartbeats_ok += 1;
                s.reports_sent += updates.len();
                for u in updates {
                    s.acked.insert(u.id, u.client_state);
                }
                drop(s);
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
        // Heartbeat on schedule, or sooner when the session brought work to report.
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
        }
    }
}

async fn session_loop(
    client: Client,
    registered: Registered,
    state: Arc<Mutex<AgentState>>,
    wake: Arc<Notify>,
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
            let mut s = state.lock().unwrap();
            match message {
                SessionMessage::Complete { allocations, .. } => {
                    s.completes += 1;
                    s.last_complete = Some((Instant::now(), session.manager().to_string()));
                    s.acked.clear();
                    s.allocations = allocations.into_iter().map(|a| (a.id.clone(), a)).collect();
                }
                SessionMessage::Increment {
                    upserts, removals, ..
                } => {
                    for a in upserts {
                        s.allocations.insert(a.id.clone(), a);
                    }
                    for id in removals {
                        s.allocations.remove(&id);
                        s.acked.remove(&id);
                    }
                }
                SessionMessage::Keepalive => {}
            }
            let due = !s.due_reports().is_empty();
            drop(s);
            if due {
                wake.notify_one();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
