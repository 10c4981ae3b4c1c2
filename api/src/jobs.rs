//! Bodies of the `/v1/jobs` endpoints other than the spec itself.
//!
//! A registered job is its spec plus what the cluster knows about it: the
//! version (bumped on each change of spec), and the Raft indexes at which it
//! was created and last modified, so a client can wait for later changes.

use serde::{Deserialize, Serialize};

use crate::job::{JobSpec, JobType};
use crate::scheduling::UnplacedSlot;

/// The values of [`Job::status`] and [`JobSummary::status`], derived from the job's
/// allocations and [`Job::unplaced`] when the job is read (the same on every manager).
///
/// An allocation is *live* while its desired state is `run` and its client state is not
/// terminal (`failed`, `complete`, `lost`).
pub mod job_status {
    /// Not every instance has a live allocation yet, and none is known not to fit
    /// (just registered, scaled up, or being replaced).
    pub const PENDING: &str = "pending";
    /// Every instance has a live allocation (a service's every slot, a global job on each
    /// node that takes it, a batch job's every slot that has not completed).
    pub const RUNNING: &str = "running";
    /// Some instances fit nowhere (see [`super::Job::unplaced`]); others are live.
    pub const DEGRADED: &str = "degraded";
    /// Instances fit nowhere (see [`super::Job::unplaced`]) and none is live.
    pub const BLOCKED: &str = "blocked";
    /// A batch job whose every slot completed.
    pub const COMPLETE: &str = "complete";
    /// No instance is wanted (replicas 0).
    pub const STOPPED: &str = "stopped";
}

/// `201` answer to `POST /v1/jobs` (and to `scale` and `revert`, which make
/// a new version): the job is committed, not yet placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRegistered {
    pub id: String,
    /// The job's version after this write (1 for a new job).
    pub version: u64,
    /// The Raft index at which the write was committed.
    pub index: u64,
    /// The deployment this version started (its tasks changed), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

/// Answer to `DELETE /v1/jobs/{id}`: the job is stopped and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDeleted {
    pub id: String,
    /// The Raft index at which the removal was committed.
    pub index: u64,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub spec: JobSpec,
    pub version: u64,
    /// One of [`job_status`].
    pub status: String,
    /// When the current version was submitted, in ms since the Unix epoch.
    pub submitted_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
    /// The instances the scheduler could not place, and why; empty when all fit. Written
    /// by the leader's scheduler through Raft when the set changes, so every manager
    /// shows it.
    #[serde(default)]
    pub unplaced: Vec<UnplacedSlot>,
}

/// One entry of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub replicas: u32,
    pub version: u64,
    pub status: String,
    pub modify_index: u64,
}

/// One entry of `GET /v1/jobs/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobVersion {
    pub version: u64,
    pub spec: JobSpec,
    pub submitted_at_ms: u64,
    /// The Raft index at which this version was committed.
    pub index: u64,
    /// A deployment of it succeeded (or it changed nothing but what runs in place, after
    /// a stable version): `auto_revert` goes back to the newest stable version.
    #[serde(default)]
    pub stable: bool,
}

/// `POST /v1/jobs/{id}/scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// At most 10,000.
    #[schema(maximum = 10_000)]
    pub replicas: u32,
}

/// `POST /v1/jobs/{id}/revert`: make an earlier version current again (as a
/// new version with that spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_type_on_the_wire() {
        let summary = JobSummary {
            id: "web".into(),
            kind: JobType::Batch,
            replicas: 2,
            version: 3,
            status: job_status::RUNNING.into(),
            modify_index: 17,
        };
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["type"], "batch");
        assert_eq!(serde_json::from_value::<JobSummary>(json).unwrap(), summary);
    }
}
