//! `GET /metrics`: the recorded metrics, then this manager's state gauges computed now.
//!
//! The gauges are read from openraft's metrics and the replicated state at each scrape
//! (one pass over nodes and allocations under the state's read lock), which keeps them
//! exact and per manager even when several managers share a process.

use super::names;
use crate::manager::Manager;
use crate::raft::status;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gantry_api::status::roles;
use gantry_api::{ClientState, NodeStatus};
use openraft::ServerState;
use std::fmt::Write as _;
use std::sync::Arc;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of this manager in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
    )
)]
pub async fn render(State(manager): State<Arc<Manager>>) -> Response {
    let mut text = super::install().render();
    let gauges = state_gauges(&manager).await;
    text.push_str(&gauges);
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}

/// One gauge family: `# HELP`, `# TYPE`, and a sample per label set.
struct Gauges {
    text: String,
}

impl Gauges {
    fn one(&mut self, name: &str, value: u64) {
        self.family(name, None, [("", value as f64)]);
    }

    fn family<'a>(
        &mut self,
        name: &str,
        label: Option<&str>,
        samples: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        let text = &mut self.text;
        let _ = writeln!(text, "# HELP {name} {}", names::gauge_help(name));
        let _ = writeln!(text, "# TYPE {name} gauge");
        for (value_label, value) in samples {
            match label {
                Some(label) => {
                    let _ = writeln!(text, "{name}{{{label}=\"{value_label}\"}} {value}");
                }
                None => {
                    let _ = writeln!(text, "{name} {value}");
                }
            }
        }
        text.push('\n');
    }
}

async fn state_gauges(manager: &Manager) -> String {
    let metrics = manager.raft.metrics().borrow().clone();
    let commit = status::commit_index(&manager.raft, &metrics).await;
    let applied = status::applied_index(&metrics);
    let mut g = Gauges {
        text: String::new(),
    };

    g.one(names::RAFT_TERM, metrics.current_term);
    let leading = metrics.state == ServerState::Leader;
    g.one(names::RAFT_IS_LEADER, leading as u64);
    let role = status::role_name(metrics.state);
    g.family(
        names::RAFT_ROLE,
        Some("role"),
        [
            roles::LEADER,
            roles::FOLLOWER,
            roles::CANDIDATE,
            roles::LEARNER,
            roles::SHUTDOWN,
        ]
        .map(|r| (r, (r == role) as u64 as f64)),
    );
    g.one(names::RAFT_COMMIT_INDEX, commit);
    g.one(names::RAFT_APPLIED_INDEX, applied);
    g.one(names::RAFT_APPLY_LAG, commit.saturating_sub(applied));
    let last_log = metrics.last_log_index;
    g.one(names::RAFT_LAST_LOG_INDEX, last_log.unwrap_or(0));
    g.one(
        names::RAFT_SNAPSHOT_INDEX,
        metrics.snapshot.map_or(0, |id| id.index),
    );
    // Log indexes start at 0; the purged index is the last one removed.
    let entries_to = last_log.map_or(0, |i| i + 1);
    let purged_to = metrics.purged.map_or(0, |id| id.index + 1);
    g.one(
        names::RAFT_LOG_ENTRIES,
        entries_to.saturating_sub(purged_to),
    );
    g.one(
        names::RAFT_VOTERS,
        metrics.membership_config.membership().voter_ids().count() as u64,
    );

    let (nodes, allocations, jobs) = {
        let state = manager.state.read();
        let mut nodes = [0u64; 3];
        for node in state.nodes.by_id.values() {
            nodes[node_slot(node.status)] += 1;
        }
        let mut allocations = [0u64; 6];
        for a in state.allocations.by_id.values() {
            allocations[allocation_slot(a.client_state)] += 1;
        }
        (nodes, allocations, state.jobs.current.len())
    };
    g.family(
        names::NODES,
        Some("status"),
        NODE_STATUSES
            .iter()
            .map(|(name, s)| (*name, nodes[node_slot(*s)] as f64)),
    );
    g.family(
        names::ALLOCATIONS,
        Some("client_state"),
        CLIENT_STATES
            .iter()
            .map(|(name, s)| (*name, allocations[allocation_slot(*s)] as f64)),
    );
    g.one(names::JOBS, jobs as u64);
    let (oldest, held) = manager.state.events.extent();
    g.one(names::EVENTS_HELD, held as u64);
    g.one(names::EVENTS_OLDEST_INDEX, oldest);
    g.text
}

const NODE_STATUSES: [(&str, NodeStatus); 3] = [
    ("initializing", NodeStatus::Initializing),
    ("ready", NodeStatus::Ready),
    ("down", NodeStatus::Down),
];

const CLIENT_STATES: [(&str, ClientState); 6] = [
    ("pending", ClientState::Pending),
    ("starting", ClientState::Starting),
    ("running", ClientState::Running),
    ("failed", ClientState::Failed),
    ("complete", ClientState::Complete),
    ("lost", ClientState::Lost),
];

fn node_slot(status: NodeStatus) -> usize {
    match status {
        NodeStatus::Initializing => 0,
        NodeStatus::Ready => 1,
        NodeStatus::Down => 2,
    }
}

fn allocation_slot(state: ClientState) -> usize {
    match state {
        ClientState::Pending => 0,
        ClientState::Starting => 1,
        ClientState::Running => 2,
        ClientState::Failed => 3,
        ClientState::Complete => 4,
        ClientState::Lost => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_render_in_the_text_format() {
        let mut g = Gauges {
            text: String::new(),
        };
        g.one(names::RAFT_TERM, 3);
        g.family(
            names::NODES,
            Some("status"),
            [("ready", 2.0), ("down", 0.0)],
        );
        assert_eq!(
            g.text,
            "# HELP gantry_raft_term Current Raft term of this manager.\n\
             # TYPE gantry_raft_term gauge\n\
             gantry_raft_term 3\n\n\
             # HELP gantry_nodes Registered nodes by status.\n\
             # TYPE gantry_nodes gauge\n\
             gantry_nodes{status=\"ready\"} 2\n\
             gantry_nodes{status=\"down\"} 0\n\n"
        );
    }

    #[test]
    fn every_state_has_its_label() {
        for (i, (_, s)) in NODE_STATUSES.iter().enumerate() {
            assert_eq!(node_slot(*s), i);
        }
        for (i, (name, s)) in CLIENT_STATES.iter().enumerate() {
            assert_eq!(allocation_slot(*s), i);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
    }
}
