//! The Gantry node agent: makes this node's engine run what the managers assigned to it.
//!
//! It keeps no state of its own. The managers' session says what must run (a complete
//! set, then increments); the engine says what does run (tasks found by label). The
//! reconcile loop makes the second match the first, one runner per allocation applying
//! the restart policy and the health checks, and every change of state is reported back
//! on the heartbeat.

mod agent;
mod backoff;
pub mod config;
pub mod driver;
pub mod health;
mod heartbeat;
pub mod logs_http;
pub mod node_info;
mod reconcile;
mod registration;
mod reports;
mod runner;
mod session;
mod task_table;

pub use agent::{run, OnShutdown};
pub use config::AgentConfig;
