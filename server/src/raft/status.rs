//! Reading this manager's Raft situation (role, leader, members, indexes) from openraft's
//! metrics, for the status routes and for deciding where a request must go.

use super::{NodeId, Raft};
use gantry_api::status::{roles, LeaderRef, Member};
use openraft::BasicNode;
use openraft::{RaftMetrics, ServerState};

pub type Metrics = RaftMetrics<NodeId, BasicNode>;

pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => roles::LEADER,
        ServerState::Follower => roles::FOLLOWER,
        ServerState::Candidate => roles::CANDIDATE,
        ServerState::Learner => roles::LEARNER,
        ServerState::Shutdown => roles::SHUTDOWN,
    }
}

/// The current leader and its address, if this manager knows one.
pub fn leader(metrics: &Metrics) -> Option<LeaderRef> {
    let id = metrics.current_leader?;
    let addr = node_addr(metrics, id)?;
    Some(LeaderRef { id, addr })
}

pub fn node_addr(metrics: &Metrics, id: NodeId) -> Option<String> {
    metrics
        .membership_config
        .membership()
        .get_node(&id)
        .map(|node| node.addr.clone())
}

pub fn members(metrics: &Metrics) -> Vec<Member> {
    let membership = metrics.membership_config.membership();
    let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            addr: node.addr.clone(),
            voter: voters.contains(id),
        })
        .collect()
}

pub fn applied_index(metrics: &Metrics) -> u64 {
    metrics.last_applied.map_or(0, |id| id.index)
}

/// The highest log index this manager knows to be committed (from the Raft core's own
/// state; falls back to the applied index if the core is shutting down).
pub async fn commit_index(raft: &Raft, metrics: &Metrics) -> u64 {
    raft.with_raft_state(|state| state.committed.map(|id| id.index))
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| applied_index(metrics))
}
