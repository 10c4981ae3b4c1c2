//! The dispatcher: the leader's side of the agents.
//!
//! Agents register their node (a Raft command, from any manager), then hold one session
//! with the leader: a streaming response that opens with the node's complete set of
//! allocations and continues with increments (`session`, `diff`). They heartbeat the
//! leader, with allocation status reports riding along (`routes`); heartbeats stay on
//! the leader (`liveness`), reports are batched into few Raft commands (`reports`), and
//! only the verdicts — a node `ready`, a node `down` — go through Raft. The wire protocol
//! is documented in `gantry_api::session`.
//!
//! Everything here is leader-local and rebuilt when a manager becomes leader
//! (`signals`): a new leader starts with no heartbeat history and gives every node a
//! grace period, so a failover does not mark live nodes down.
//!
//! Wiring: `manager::run` creates one `Dispatcher` after the Raft node is up, hands it
//! to `start` (its tasks, and the shutdown signal wrapped so that sessions end before the
//! HTTP server drains its connections) and to `api::router`, which merges `routes`.

mod diff;
pub mod liveness;
mod reports;
mod routes;
mod session;
mod signals;

use crate::manager::Manager;
use crate::state::{Command, Outcome};
use axum::Router;
use gantry_api::NodeStatus;
use liveness::{ttl_for, Liveness};
use reports::Reports;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

pub struct Dispatcher {
    manager: Arc<Manager>,
    liveness: Mutex<Liveness>,
    reports: Reports,
    /// `Some(term)` while this manager leads.
    leading: watch::Sender<Option<u64>>,
    /// The applied index, published at most every 50 ms.
    applied: watch::Sender<u64>,
    /// Set when the manager shuts down: sessions end.
    closing: watch::Sender<bool>,
    /// Nodes with a status change in flight (one at a time per node).
    status_changes: Mutex<HashSet<String>>,
}

/// Starts the dispatcher's tasks. Returns `shutdown`, extended to end every agent
/// session first (open streaming responses would otherwise hold the HTTP server's
/// graceful shutdown forever).
pub fn start(
    dispatcher: &Arc<Dispatcher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    dispatcher.spawn_tasks();
    let dispatcher = dispatcher.clone();
    async move {
        shutdown.await;
        dispatcher.closing.send_replace(true);
    }
}

/// The agent routes, served by `dispatcher`.
pub fn routes(dispatcher: &Arc<Dispatcher>) -> Router<Arc<Manager>> {
    routes::router(dispatcher.clone())
}

impl Dispatcher {
    /// A manager's dispatcher; the manager creates one and hands it to [`start`] and
    /// [`routes`].
    pub fn new(manager: &Arc<Manager>) -> Arc<Self> {
        let submitter = manager.clone();
        Arc::new(Dispatcher {
            manager: manager.clone(),
            liveness: Mutex::new(Liveness::default()),
            reports: Reports::start(move |updates| {
                let manager = submitter.clone();
                async move {
                    let command = Command::UpdateAllocations {
                        updates,
                        now_ms: now_ms(),
                    };
                    crate::write::submit(&manager, command)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            }),
            leading: watch::Sender::new(None),
            applied: watch::Sender::new(0),
            closing: watch::Sender::new(false),
            status_changes: Mutex::new(HashSet::new()),
        })
    }

    fn spawn_tasks(self: &Arc<Self>) {
        tokio::spawn(signals::follow_leadership(self.clone()));
        tokio::spawn(signals::publish_applied(self.clone()));
        tokio::spawn(signals::check_liveness(self.clone()));
    }

    /// The heartbeat TTL for the cluster's current size.
    fn ttl(&self) -> Duration {
        ttl_for(self.manager.state.read().nodes.by_id.len())
    }

    /// The node's agent was heard from (a heartbeat, a session opened): push its
    /// deadline back and make it `ready` if it is not. Returns the TTL to tell it.
    fn heard_from(self: &Arc<Self>, node_id: &str, status: NodeStatus, now: Instant) -> Duration {
        let ttl = self.ttl();
        self.liveness
            .lock()
            .expect("liveness lock")
            .heartbeat(node_id, now, ttl);
        if status != NodeStatus::Ready {
            self.set_status(node_id, NodeStatus::Ready);
        }
        ttl
    }

    /// Commits a node status change, unless one is already in flight for the node. Only
    /// a leader decides: the command goes to this manager's own log, never forwarded, so
    /// a deposed leader's stale verdict is dropped.
    fn set_status(self: &Arc<Self>, node_id: &str, status: NodeStatus) {
        if !self
            .status_changes
            .lock()
            .expect("status lock")
            .insert(node_id.to_string())
        {
            return;
        }
        let dispatcher = self.clone();
        let node_id = node_id.to_string();
        tokio::spawn(async move {
            let command = Command::SetNodeStatus {
                node_id: node_id.clone(),
                status,
                now_ms: now_ms(),
            };
            let timeout = dispatcher.manager.config.write_timeout;
            let proposed =
                tokio::time::timeout(timeout, dispatcher.manager.group_commit.propose(&command))
                    .await;
            match proposed {
                Ok(Ok(applied)) => match applied.outcome {
                    Outcome::Node { .. } => {
                        metrics::counter!(crate::metrics::names::NODE_STATUS_CHANGES, "status" => status_name(status))
                            .increment(1);
                        if status == NodeStatus::Down {
                            metrics::counter!(crate::metrics::names::HEARTBEATS_MISSED)
                                .increment(1);
                            tracing::warn!(node = %node_id, index = applied.index, "node missed its heartbeat TTL: marked down");
                        } else {
                            tracing::info!(node = %node_id, index = applied.index, ?status, "node status changed");
                        }
                    }
                    other => {
                        tracing::warn!(node = %node_id, ?status, outcome = ?other, "node status change rejected")
                    }
                },
                Ok(Err(e)) => {
                    tracing::warn!(node = %node_id, ?status, error = %e, "node status change failed")
                }
                Err(_) => {
                    tracing::warn!(node = %node_id, ?status, "node status change timed out")
                }
            }
            dispatcher
                .status_changes
                .lock()
                .expect("status lock")
                .remove(&node_id);
        });
    }
}

fn status_name(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Initializing => "initializing",
        NodeStatus::Ready => "ready",
        NodeStatus::Down => "down",
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
