//! The commands that change the cluster state, and what applying one answers.
//!
//! Commands travel through the Raft log in batches (group commit): one log entry holds a
//! `Vec<Command>` and its response a `Vec<Outcome>` in the same order. They are encoded as
//! JSON so a log entry can be read by a person when debugging.

use super::plan::{Plan, PlanResult};
use gantry_api::job::JobSpec;
use gantry_api::scheduling::UnplacedSlot;
use gantry_api::{ClientState, Eligibility, Health, Node, NodeRegistration, NodeStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Register a job, or update it to a new version if the spec changed.
    RegisterJob {
        spec: JobSpec,
        /// Wall-clock time at the manager that accepted the request (milliseconds since the
        /// Unix epoch). Carried in the command so applying stays deterministic.
        submitted_at_ms: u64,
    },
    /// Change a job's replica count; a new version, like any other spec change.
    ScaleJob {
        id: String,
        replicas: u32,
        submitted_at_ms: u64,
    },
    /// Stop and remove a job with its version history.
    DeleteJob {
        id: String,
    },
    /// Register an earlier version's spec as the newest version.
    RevertJob {
        id: String,
        version: u64,
        submitted_at_ms: u64,
    },
    /// An agent registers its node (or refreshes what it offers).
    RegisterNode {
        registration: NodeRegistration,
        now_ms: u64,
    },
    /// The leader's verdict on a node's heartbeats. `Down` also marks the node's live
    /// allocations `lost`.
    SetNodeStatus {
        node_id: String,
        status: NodeStatus,
        now_ms: u64,
    },
    SetNodeEligibility {
        node_id: String,
        eligibility: Eligibility,
    },
    SetNodeDrain {
        node_id: String,
        drain: bool,
    },
    /// A scheduler plan: stops and placements, re-checked as they are applied.
    ApplyPlan {
        plan: Plan,
        now_ms: u64,
    },
    /// Status reports from agents, batched by the leader.
    UpdateAllocations {
        updates: Vec<AllocationUpdate>,
        now_ms: u64,
    },
    /// The scheduler's account of a job's instances that fit nowhere (empty: all placed).
    /// Sent by the leader only when the set changed; for an unknown job it is ignored.
    SetJobPlacement {
        job_id: String,
        unplaced: Vec<UnplacedSlot>,
    },
    /// Tokens, the join token and node secrets (hashes only; see `state::acl`).
    Acl(super::acl::AclCommand),
    /// An operator stops an allocation: desired `stop`; the scheduler replaces it if its
    /// job still wants the slot (see `state::alloc_control`).
    StopAllocation {
        id: String,
        now_ms: u64,
    },
    /// An operator restarts an allocation's tasks (one task, or all) in place on its node.
    RestartAllocation {
        id: String,
        #[serde(default)]
        task: Option<String>,
        now_ms: u64,
    },
    /// One part of a snapshot file's records, staged until `RestoreSnapshot` (see
    /// `state::restore`). Values are the records' JSON text.
    StageRestore {
        restore_id: String,
        part: u32,
        records: Vec<(String, String)>,
    },
    /// An operator promotes, pauses, resumes or fails a deployment.
    DeploymentAction {
        id: String,
        action: super::deployments::DeploymentAction,
        now_ms: u64,
    },
    /// Replace the whole state with the staged records of `restore_id`: `parts` parts,
    /// `records` records in all.
    RestoreSnapshot {
        restore_id: String,
        parts: u32,
        records: u64,
    },
}

/// What an agent reports about one allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocationUpdate {
    pub id: String,
    pub client_state: ClientState,
    pub health: Health,
    pub restart_count: u32,
    #[serde(default)]
    pub message: String,
}

/// What applying one command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    JobRegistered {
        id: String,
        version: u64,
        /// False when the spec equals the current version's: nothing changed.
        changed: bool,
        /// The deployment this version started or continues (the active one when
        /// nothing changed).
        #[serde(default)]
        deployment_id: Option<String>,
    },
    JobDeleted {
        id: String,
    },
    Node {
        node: Box<Node>,
    },
    PlanApplied {
        result: PlanResult,
    },
    AllocationsUpdated {
        /// How many of the reported allocations exist (reports for removed ones are dropped).
        applied: usize,
    },
    JobPlacement {
        id: String,
        /// False when the job does not exist (the command was ignored).
        applied: bool,
    },
    /// The allocation as an operator's stop or restart left it.
    Allocation {
        allocation: Box<gantry_api::Allocation>,
    },
    /// A deployment as an operator's action left it.
    Deployment {
        deployment: Box<gantry_api::Deployment>,
    },
    /// What an ACL command did.
    Acl(super::acl::AclOutcome),
    RestoreStaged {
        part: u32,
    },
    /// The state was replaced by a snapshot's `records`.
    Restored {
        records: u64,
    },
    /// The command was valid on the wire but not in the current state (e.g. unknown id).
    Rejected {
        code: String,
        message: String,
    },
}

pub fn encode_batch(commands: &[Command]) -> Vec<u8> {
    serde_json::to_vec(commands).expect("commands always serialise")
}

pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Command>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

pub fn encode_outcomes(outcomes: &[Outcome]) -> Vec<u8> {
    serde_json::to_vec(outcomes).expect("outcomes always serialise")
}

pub fn decode_outcomes(bytes: &[u8]) -> Result<Vec<Outcome>, serde_json::Error> {
    serde_json::from_slice(bytes)
}
