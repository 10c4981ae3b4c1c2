//! Loading the replicated state into a placement view.
//!
//! The worker does it once per leadership (then keeps the view current by job and by
//! node); the dry-run route does it per request on a throwaway copy.

use super::placement::{Algorithm, ClusterView, NodeInfo, Reservation};
use crate::state::State;
use gantry_api::Allocation;

/// Every node, and every allocation that holds resources on one.
pub fn build(state: &State, algorithm: Algorithm) -> ClusterView {
    let mut view = ClusterView::new(algorithm);
    for node in state.nodes.by_id.values() {
        view.upsert_node(NodeInfo::from(node));
    }
    for a in state.allocations.by_id.values() {
        restore(&mut view, a, priority_of(state, &a.job_id));
    }
    view
}

/// The priority an allocation's reservation carries: its job's, or the lowest once the
/// job is gone.
pub fn priority_of(state: &State, job_id: &str) -> u8 {
    state
        .jobs
        .current
        .get(job_id)
        .map_or(0, |j| j.spec.priority)
}

/// Loads `a` if it holds resources. An allocation on an unknown node is left out (there
/// is nothing to hold); one already loaded is left as it is.
pub fn restore(view: &mut ClusterView, a: &Allocation, priority: u8) {
    if a.reserves_resources() && view.node_of(&a.id).is_none() {
        let _ = view.restore(&a.node_id, Reservation::of_allocation(a, priority));
    }
}
