//! What a manager says about itself and the Raft group.
//!
//! `GET /v1/status` answers "who leads, and is this manager caught up?";
//! `GET /v1/operator/raft` adds each peer's replication progress for
//! operators; `POST /v1/operator/raft/peers` takes an [`AddPeerRequest`]
//! and, like `DELETE .../peers/{id}`, answers with the new membership.

use serde::{Deserialize, Serialize};

/// The values of [`StatusResponse::role`].
pub mod roles {
    pub const LEADER: &str = "leader";
    pub const FOLLOWER: &str = "follower";
    pub const CANDIDATE: &str = "candidate";
    pub const LEARNER: &str = "learner";
    pub const SHUTDOWN: &str = "shutdown";
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusResponse {
    /// This manager's Raft node id.
    pub id: u64,
    /// One of [`roles`].
    pub role: String,
    /// The leader this manager knows of; `null` during an election.
    pub leader: Option<LeaderRef>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaderRef {
    pub id: u64,
    /// The leader's `--listen` address (`host:port`).
    pub addr: String,
}

/// A manager in the current membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    /// `false` for a learner that is still catching up.
    pub voter: bool,
}

/// `GET /v1/operator/raft`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RaftInfo {
    pub id: u64,
    pub leader: Option<LeaderRef>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    /// The last log index covered by the latest snapshot.
    pub snapshot_index: u64,
    /// Log entries up to here have been deleted.
    pub purged_index: u64,
    pub members: Vec<MemberProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberProgress {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// The highest log index known to be replicated to this member. Only the
    /// leader knows it; `null` on followers (and for a member not yet heard
    /// from).
    pub matched_index: Option<u64>,
}

/// `POST /v1/operator/raft/peers`: add a manager (as a learner, then a voter
/// once it has caught up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeerRequest {
    pub id: u64,
    pub addr: String,
}

/// Answer to adding or removing a manager: the membership afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembersResponse {
    pub members: Vec<Member>,
}
