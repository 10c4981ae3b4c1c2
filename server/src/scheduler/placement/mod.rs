//! Placement: which node takes an allocation, and why (or why none can).
//!
//! Pure and synchronous: a [`ClusterView`] holds the nodes and what already holds them;
//! [`ClusterView::place`] filters, ranks, chooses and reserves in one call. No Raft, no
//! I/O, no clock and no randomness: the same view and ask always give the same placement,
//! so the leader can compute plans on a clone and tests can replay them.
//!
//! The pipeline, in the spirit of Nomad's scheduler (feasibility, then ranking):
//!
//! - **filters** (`feasibility`): schedulable, drivers, constraints (`constraints`), cpu
//!   and memory, host ports (`ports`);
//! - **ranking** (`ranking`): bin-packing (the node the allocation fills best on the
//!   dominant resource, over *all* feasible nodes) or spread (least loaded first); replicas
//!   of a job avoid sharing a node unless nothing else fits;
//! - **index** (`node_class`, `capacity_tree`, `node_table`): nodes grouped by capacity,
//!   labels and drivers, each group ordered by free room with per-branch maxima, so the
//!   best node is found in about O(log n) rather than by scanning — see `cluster_view` for
//!   the costs and the honest worst cases;
//! - **failure paths**: [`ClusterView::explain`] counts every node under the first filter it
//!   failed (`explain`); [`ClusterView::place_with_preemption`] evicts lower-priority
//!   reservations when nothing fits (`preemption`).
//!
//! Golden scenarios (`testdata/*.txt`, run by `scenarios`) show the behaviour as text;
//! `proptests` checks it against a brute-force scan.
//!
//! The plan applier's re-check is [`ClusterView::check_fit`]; existing allocations are
//! loaded with [`ClusterView::restore`] (or the checked [`ClusterView::reserve`]).

mod ask;
mod capacity_tree;
mod cluster_view;
mod constraints;
mod explain;
mod feasibility;
mod node_class;
mod node_info;
mod node_state;
mod node_table;
mod ports;
mod preemption;
mod ranking;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod scenarios;

pub use ask::{Ask, AskError};
pub use cluster_view::{ClusterView, Placement};
pub use constraints::{CompiledConstraint, InvalidConstraint};
pub use explain::{Explanation, Unplaced};
pub use node_info::{NodeInfo, Reservation};
pub use node_state::FitError;
pub use preemption::Eviction;
pub use ranking::Algorithm;
