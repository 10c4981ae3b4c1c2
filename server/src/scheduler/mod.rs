//! The scheduler: deciding where allocations run.
//!
//! - `placement` is the pure part — given the cluster as the leader sees it and one
//!   allocation to place, which node takes it and why (or why none can);
//! - `reconcile` turns one job (or its absence) and its allocations into stops and
//!   placements, by job type, with drain migration and failure backoff — also pure;
//! - `rollout` is reconcile's view of new versions and deployments: which allocations
//!   are outdated, when a new one counts as healthy, how far a deployment has got;
//! - `dry_run` answers `POST /v1/jobs/{id}/plan` with the same reconcile on a copy;
//! - `view` loads the replicated state into a placement view;
//! - `worker` is the leader's loop: it follows state changes, batches evaluations into one
//!   plan per round and commits it through Raft.

pub mod dry_run;
pub mod placement;
pub mod reconcile;
pub mod rollout;
pub mod view;
mod worker;

#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod rollout_tests;

pub use worker::{start, Shared};
