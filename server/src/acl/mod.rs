//! Access control: who may call which route.
//!
//! Off by default; `gantry server --acl` turns it on. Then:
//!
//! - operators and scripts present a bearer token whose kind (`read` < `write` <
//!   `management`) must allow the route (`access` says which kind each route needs;
//!   `middleware` checks it before any handler runs, so a refused request changes
//!   nothing);
//! - agents register with the cluster's join token and get a secret of their own for
//!   their heartbeats and session (`agents`);
//! - managers talk to each other with a cluster secret they all share
//!   (`cluster_secret`), checked by the peer routes whether ACL is on or not.
//!
//! Tokens live in the replicated state (`state::acl`) as hashes only; `issue` makes the
//! secrets and the commands that carry their hashes, and `secret` does the hashing.

pub mod access;
pub mod agents;
mod catch_up;
pub mod cluster_secret;
pub mod issue;
pub mod middleware;
pub mod secret;

pub use cluster_secret::ClusterSecret;
pub use middleware::{authorize, Caller};
