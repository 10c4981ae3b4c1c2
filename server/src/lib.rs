//! The Gantry manager.
//!
//! A manager is one Raft peer. It owns the replicated cluster state (`state`), the Raft
//! node and its peer transport (`raft`), the path a write takes to the log (`write`),
//! the admin HTTP API (`api`) and, when asked, the DNS interface (`dns`). `manager` wires
//! them together and runs them.

pub mod acl;
pub mod api;
pub mod config;
pub mod dispatcher;
pub mod dns;
pub mod events;
pub mod manager;
pub mod metrics;
pub mod raft;
pub mod scheduler;
pub mod services;
pub mod state;
pub mod write;

pub use config::ServerConfig;
pub use manager::run;
