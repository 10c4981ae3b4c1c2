//! Deployments: how a new version of a service job replaces the running one.
//!
//! Registering a spec whose tasks differ from the running version's starts a
//! deployment, kept in the replicated state so that a new leader carries it on. It
//! replaces `max_parallel` instances at a time (stop-first or start-first), counts a
//! new instance once it has been healthy for `min_healthy`, and fails when one is not
//! by `healthy_deadline`. With `canary: N` it first starts N new instances beside the
//! old ones and waits to be promoted. A failed deployment with `auto_revert` registers
//! the job's last stable version again (a version is stable once a deployment of it
//! succeeded), which starts a deployment of its own.
//!
//! Routes: `GET /v1/deployments[?job=]`, `GET /v1/deployments/{id}`, and
//! `POST /v1/deployments/{id}/promote|fail|pause|resume`.

use serde::{Deserialize, Serialize};

use crate::job::UpdateStrategy;

/// Where a deployment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Replacing instances (or, with canaries, waiting for them to be promoted).
    Running,
    /// Held by an operator: nothing more is replaced until it is resumed.
    Paused,
    /// Every instance runs the new version and counts as healthy: the version is stable.
    Successful,
    /// An instance missed its deadline, or an operator failed it.
    Failed,
    /// A newer version (or the job's removal) took over before it finished.
    Cancelled,
}

impl DeploymentStatus {
    /// Still in progress (running or paused): the job's one active deployment.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One rollout of one job version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    /// `<job>-v<version>-<index>`: unique, and readable in logs.
    pub id: String,
    pub job_id: String,
    /// The version being rolled out.
    pub job_version: u64,
    /// The settings it runs with (the job's `update` block, or the defaults).
    pub strategy: UpdateStrategy,
    pub status: DeploymentStatus,
    /// Why it is where it is (e.g. "2 of 4 instances healthy", "allocation web-1-… not
    /// healthy within 30s").
    pub description: String,
    /// Instances wanted when it finishes.
    pub desired_total: u32,
    /// Instances of the new version placed so far (canaries included).
    pub placed: u32,
    /// Instances of the new version (placed by it, or moved to its version in place)
    /// that count as healthy.
    pub healthy: u32,
    /// Placed instances that failed or missed their deadline.
    pub unhealthy: u32,
    /// With canaries: whether they were promoted (by an operator or `auto_promote`).
    pub promoted: bool,
    /// The version `auto_revert` registered again after this one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_to: Option<u64>,
    pub created_at_ms: u64,
    pub modified_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Deployment {
    /// Canaries still wait for promotion: nothing but them is replaced yet.
    pub fn awaits_promotion(&self) -> bool {
        self.strategy.canary > 0 && !self.promoted
    }
}

/// What an operator can do to a running or paused deployment
/// (`POST /v1/deployments/{id}/{action}`; the same name in the Raft log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentAction {
    /// Let a deployment waiting on its canaries go on.
    Promote,
    /// Fail it now (and revert, with `auto_revert`).
    Fail,
    /// Replace nothing more until resumed.
    Pause,
    Resume,
}

impl DeploymentAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Fail => "fail",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

/// The answer to `POST /v1/deployments/{id}/promote|fail|pause|resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentChanged {
    pub deployment: Deployment,
    /// The Raft index at which the change was committed.
    pub index: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_and_paused_are_active() {
        use DeploymentStatus::*;
        let active: Vec<_> = [Running, Paused, Successful, Failed, Cancelled]
            .into_iter()
            .filter(DeploymentStatus::is_active)
            .collect();
        assert_eq!(active, [Running, Paused]);
        assert_eq!(serde_json::to_value(Successful).unwrap(), "successful");
    }
}
