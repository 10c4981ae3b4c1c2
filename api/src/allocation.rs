//! Allocations: one placed instance (slot) of a job version on a node.
//!
//! The managers decide where an allocation runs and whether it should (`desired`); the
//! agent reports what actually happens (`client_state`, `health`, restarts).

use serde::{Deserialize, Serialize};

use crate::job::Resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    Run,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

/// A host port reserved for one named port of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortAssignment {
    pub task: String,
    pub name: String,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Restarts of its tasks by the agent's restart policy (a task that exited or failed
    /// its health check). Restarts asked for by an operator are not counted here and do
    /// not use up the policy's attempts: see `restart_requests`.
    pub restart_count: u32,
    /// How many in-place restarts an operator asked for (`POST
    /// /v1/allocations/{id}/restart`). The agent restarts the tasks whenever it sees this
    /// grow past what it last acted on; an agent that (re)starts takes the value it first
    /// sees as already done.
    #[serde(default)]
    pub restart_requests: u64,
    /// The task the last restart request named; `None` restarts every task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_task: Option<String>,
    /// The deployment that placed it (a new version's instance); None otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// A canary of its deployment: it runs beside the old instances until promoted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    /// Since when it has been running and healthy, by the managers' clock (set as the
    /// agent's report is applied); None while it is not. A deployment counts an instance
    /// once it has been healthy for `min_healthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since_ms: Option<u64>,
    /// The agent's last word on it (e.g. why it failed).
    pub message: String,
    /// Why it was placed where it is (e.g. `bin-pack: fills cpu to 75%`).
    pub placement_reason: String,
    pub created_at_ms: u64,
    pub modified_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `POST /v1/allocations/{id}/restart` (the body is optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartRequest {
    /// Restart only this task of the allocation; every task when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

impl Allocation {
    /// A new allocation of `job_id` at `job_version` for `slot` on `node_id`, as a plan
    /// places it: meant to run, pending, nothing reported yet, no ports. The state
    /// machine sets the times and indexes when it applies the plan.
    pub fn new(
        id: impl Into<String>,
        job_id: impl Into<String>,
        job_version: u64,
        slot: u32,
        node_id: impl Into<String>,
        resources: Resources,
    ) -> Allocation {
        Allocation {
            id: id.into(),
            job_id: job_id.into(),
            job_version,
            slot,
            node_id: node_id.into(),
            resources,
            ports: Vec::new(),
            desired: DesiredState::Run,
            client_state: ClientState::Pending,
            health: Health::Unknown,
            restart_count: 0,
            restart_requests: 0,
            restart_task: None,
            deployment_id: None,
            canary: false,
            healthy_since_ms: None,
            message: String::new(),
            placement_reason: String::new(),
            created_at_ms: 0,
            modified_at_ms: 0,
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Does it still hold its node's resources and ports?
    pub fn reserves_resources(&self) -> bool {
        self.desired == DesiredState::Run && !self.client_state.is_terminal()
    }
}
