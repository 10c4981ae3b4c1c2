//! The replicated cluster state: what every manager agrees on.
//!
//! Commands (`command`) are the only way to change it; they are applied in log order by
//! `machine`, which implements the store's `Application` trait. The in-memory view is
//! what the API reads; the key/value pairs written alongside it are what survives a
//! restart and travels in snapshots.

pub mod acl;
pub mod alloc_control;
pub mod allocations;
pub mod changes;
pub mod command;
pub mod deployments;
pub mod jobs;
pub(crate) mod keys;
pub mod machine;
pub mod nodes;
pub mod plan;
pub mod restore;
pub mod snapshot_file;
mod versions;

pub use command::{Command, Outcome};
pub use machine::{ClusterState, State};
