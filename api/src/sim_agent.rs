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
//! `complete`. It heartbeats every TTL/3, and [`REPORT_COALESCE`] after the session
//! brought something to report (as the real agent does, so that a burst of increments
//! travels in one heartbeat). [`SimAgent::kill`] stops everything at once: no more
//! heartbeats, the session drops — a dead node.
//!
//! For load tests it keeps a few cheap figures, refreshed whenever its set or its
//! acknowledgements change, so that thousands of agents can be polled often without
//! scanning their allocations: [`SimAgent::counts`] (allocations to run, and of those
//! the ones known running) and the instants of its recent complete sets
//! ([`SimAgent::first_complete_since`]: when it had a session again after a failover).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::{AllocationReport, Heartbeat, SessionMessage};
use crate::{Allocation, Client, ClientState, DesiredState, Health, NodeRegistration, Resources};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Reports due within this long of each other travel in one heartbeat.
pub const REPORT_COALESCE: Duration = Duration::from_millis(25);
/// How many complete sets [`AgentState::recent_completes`] remembers.
const RECENT_COMPLETES: usize = 16;

/// Of a node's set: what it is told to run, and how much of that the managers know
/// is running (recorded so, or reported and acknowledged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AgentCounts {
    pub to_run: usize,
    pub running: usize,
}

impl std::ops::AddAssign for AgentCounts {
    fn add_assign(&mut self, other: AgentCounts) {
        self.to_run += other.to_run;
        self.running += other.running;
    }
}

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
    /// When the last few complete sets arrived, oldest first.
    pub recent_completes: VecDeque<Instant>,
    pub heartbeats_ok: usize,
    pub reports_sent: usize,
    /// The TTL of the last heartbeat answer (0 before the first).
    pub ttl_ms: u64,
    /// [`AgentCounts`] as of the last change of the set or of the acknowledgements.
    pub counts: AgentCounts,
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

    /// Recomputes [`AgentState::counts`]: O(allocations on the node).
    fn refresh_counts(&mut self) {
        let mut counts = AgentCounts::default();
        for a in self.allocations.values() {
            if a.desired != DesiredState::Run || a.client_state.is_terminal() {
                continue;
            }
            counts.to_run += 1;
            if a.client_state == ClientState::Running
                || self.acked.get(&a.id) == Some(&ClientState::Running)
            {
                counts.running += 1;
            }
        }
        self.counts = counts;
    }

    fn record_complete(&mut self, manager: String) {
        let now = Instant::now();
        self.completes += 1;
        self.last_complete = Some((now, manager));
        if self.recent_completes.len() == RECENT_COMPLETES {
            self.recent_completes.pop_front();
        }
        self.recent_completes.push_back(now);
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
        Self::start_registered(client, registration)
    }

    /// Starts an agent that registers its node as `registration` says (address, port
    /// range, labels, ...).
    pub fn start_registered(client: &Client, registration: NodeRegistration) -> SimAgent {
        let name = registration.name.clone();
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
            name,
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

    /// Allocations to run, and of those the ones the managers know are running.
    pub fn counts(&self) -> AgentCounts {
        self.state.lock().unwrap().counts
    }

    /// When the first complete set after `since` arrived (a session was opened and
    /// answered), if one did among the last few.
    pub fn first_complete_since(&self, since: Instant) -> Option<Instant> {
        let s = self.state.lock().unwrap();
        s.recent_completes.iter().copied().find(|t| *t > since)
    }

    /// The heartbeat TTL the managers last announced (0 before the first answer).
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.state.lock().unwrap().ttl_ms)
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
                s.ttl_ms = ack.heartbeat_ttl_ms;
                let reported = !updates.is_empty();
                for u in updates {
                    s.acked.insert(u.id, u.client_state);
                }
                if reported {
                    s.refresh_counts();
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
            _ = wake.notified() => tokio::time::sleep(REPORT_COALESCE).await,
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
                    s.record_complete(session.manager().to_string());
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
                SessionMessage::Keepalive => continue,
            }
            s.refresh_counts();
            let due = !s.due_reports().is_empty();
            drop(s);
            if due {
                wake.notify_one();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
