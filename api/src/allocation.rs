//! Allocations: one placed instance (slot) of a job version on a node.
//!
//! The managers decide where an allocation runs and whether it should (`desired`); the
//! agent reports what actually happens (`client_state`, `health`, restarts).

use serde::{Deserialize, Serialize};

use crate::job::Resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    Run,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientState {
    Pending,
    Starting,
    Running,
    Failed,
    Complete,
    Lost,
}

impl ClientState {
    /// The allocation will not run again by itself.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Failed | Self::Complete | Self::Lost)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

/// A host port reserved for one named port of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAssignment {
    pub task: String,
    pub name: String,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: String,
    pub job_id: String,
    pub job_version: u64,
    /// Which of the job's instances this is: 0..replicas for a service.
    pub slot: u32,
    pub node_id: String,
    /// The sum of the tasks' resources, reserved on the node.
    pub resources: Resources,
    pub ports: Vec<PortAssignment>,
    pub desired: DesiredState,
    pub client_state: ClientState,
    pub health: Health,
    pub restart_count: u32,
    /// The agent's last word on it (e.g. why it failed).
    pub message: String,
    /// Why it was placed where it is (e.g. `bin-pack: fills cpu to 75%`).
    pub placement_reason: String,
    pub created_at_ms: u64,
    pub modified_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Allocation {
    /// Does it still hold its node's resources and ports?
    pub fn reserves_resources(&self) -> bool {
        self.desired == DesiredState::Run && !self.client_state.is_terminal()
    }
}
