//! The commands that change the cluster state, and what applying one answers.
//!
//! Commands travel through the Raft log in batches (group commit): one log entry holds a
//! `Vec<Command>` and its response a `Vec<Outcome>` in the same order. They are encoded as
//! JSON so a log entry can be read by a person when debugging.

use gantry_api::job::JobSpec;
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
    DeleteJob { id: String },
    /// Register an earlier version's spec as the newest version.
    RevertJob {
        id: String,
        version: u64,
        submitted_at_ms: u64,
    },
}

/// What applying one command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    JobRegistered {
        id: String,
        version: u64,
        /// False when the spec equals the current version's: nothing changed.
        changed: bool,
    },
    JobDeleted {
        id: String,
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
