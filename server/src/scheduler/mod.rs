//! The scheduler: deciding where allocations run.
//!
//! `placement` is the pure part — given the cluster as the leader sees it and one
//! allocation to place, which node takes it and why (or why none can).

pub mod placement;
