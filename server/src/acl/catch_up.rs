//! Catching up before saying "unknown token".
//!
//! Tokens are checked against this manager's own replica. A token created a moment ago
//! through another manager may not have reached it yet, and refusing it would make a
//! fresh token fail at random depending on which manager a client asks. So before a
//! follower refuses a secret it does not know, it asks the leader for its commit index
//! and waits (briefly) until it has applied that far, then looks again. The leader has
//! applied every change it acknowledged and looks only once. A revoked token can still
//! pass on a follower for the moment the revocation takes to reach it.

use crate::manager::Manager;
use crate::write::forward::read_index_on_leader;
use std::time::Duration;

/// The longest a refusal waits for this manager to catch up.
const BOUND: Duration = Duration::from_secs(2);

/// Brings this manager's replica up to the leader's commit index, if that can be done
/// quickly. Returns whether it may have learned something (it is worth looking again).
pub async fn catch_up(manager: &Manager) -> bool {
    let Some(leader) = manager.leader() else {
        return false;
    };
    if leader.id == manager.id {
        return false;
    }
    let Ok(index) = read_index_on_leader(&manager.peer_client, &leader.addr, BOUND).await else {
        return false;
    };
    if manager.applied_index() >= index {
        return false;
    }
    let mut metrics = manager.raft.metrics();
    let applied = metrics.wait_for(|m| m.last_applied.map_or(0, |id| id.index) >= index);
    let caught_up = matches!(tokio::time::timeout(BOUND, applied).await, Ok(Ok(_)));
    caught_up
}
