//! The agent wire protocol: how an agent registers its node, keeps it alive,
//! reports allocation status, and learns what its node must run.
//!
//! All JSON over HTTP, on the managers' one listen address:
//!
//! | method | path | where | body → answer |
//! |---|---|---|---|
//! | POST | `/v1/agent/register` | any manager (a follower forwards) | [`NodeRegistration`] → [`Registered`] |
//! | POST | `/v1/agent/heartbeat` | leader only | [`Heartbeat`] → [`HeartbeatAck`] |
//! | GET | `/v1/agent/session?node=ID` | leader only | a stream of [`SessionMessage`]s |
//!
//! **The session** is one long-lived HTTP response body of newline-delimited
//! JSON (`application/x-ndjson`), one [`SessionMessage`] per line: first a
//! `complete` set of the node's allocations at index N, then an `increment`
//! whenever they change, and a `keepalive` every [`KEEPALIVE_INTERVAL_MS`]
//! while nothing else is sent. An agent that hears nothing for
//! [`SESSION_IDLE_TIMEOUT_MS`] treats the session as dead and opens a new one,
//! which starts with a fresh complete set. The leader ends the stream when it
//! stops leading.
//!
//! **The node's set** is every allocation on the node that is not yet
//! terminal: desired `run` (the agent runs it) and desired `stop` (the agent
//! must stop it and report). An allocation leaves the set (a `removals`
//! entry) once it is terminal (failed, complete, lost), or is gone; the agent
//! then removes what is left of it. Each message also carries the specs of
//! the job versions its allocations run (`jobs`), each sent once per session.
//!
//! **Heartbeats** prove the agent is alive; sending one every
//! `heartbeat_ttl_ms / 3` keeps the node `ready`. A node that misses its TTL
//! is marked `down` and its allocations `lost`. The TTL grows with the number
//! of nodes (see the manager's `dispatcher::liveness`), so use the value of
//! the last answer. A heartbeat may carry status `updates`; it is answered
//! once they are committed (the leader batches every agent's updates into
//! one Raft entry about every 50 ms), so an error means "send them again".
//! The leader waits at most a second for that commit and then answers `503`:
//! the beat itself has counted, and the agent sends the updates again soon.
//!
//! **Not the leader**: a follower answers the leader-only routes with
//! `421 Misdirected Request`, the error body with code `not_leader` plus a
//! top-level `leader` ({`id`, `addr`}, see [`NotLeaderBody`]) and the
//! [`LEADER_HEADER`] header naming the leader's `host:port`. Without a known
//! leader (an election) it answers `503` with code `no_quorum`: retry soon.
//! A heartbeat for a node the leader does not know answers `404`: register
//! again.
//!
//! **Auth** (managers started with `--acl`): registration needs the cluster's
//! join token as the bearer token, and answers a `node_secret`; heartbeats and
//! the session need that node secret as the bearer token. A refused token is
//! `401` with code `unauthorized`; for a heartbeat or a session that means
//! "register again".

use serde::{Deserialize, Serialize};

use crate::allocation::{Allocation, ClientState, Health};
use crate::error::ErrorDetail;
use crate::job::JobSpec;
use crate::status::LeaderRef;

pub const REGISTER_PATH: &str = "/v1/agent/register";
pub const HEARTBEAT_PATH: &str = "/v1/agent/heartbeat";
pub const SESSION_PATH: &str = "/v1/agent/session";

/// Names the leader's `host:port` on a `421` answer.
pub const LEADER_HEADER: &str = "x-gantry-leader";
pub const NDJSON: &str = "application/x-ndjson";

/// How often the leader writes a keepalive on an otherwise quiet session.
pub const KEEPALIVE_INTERVAL_MS: u64 = 5_000;
/// How long an agent waits for any message before it gives up on a session.
pub const SESSION_IDLE_TIMEOUT_MS: u64 = 3 * KEEPALIVE_INTERVAL_MS;

/// The answer to `POST /v1/agent/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The node's id (derived from its name) for heartbeats and the session.
    pub node_id: String,
    pub heartbeat_ttl_ms: u64,
    /// With ACL on: this node's own secret, the bearer token of its heartbeats and
    /// session from now on (registering again replaces it). Absent with ACL off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_secret: Option<String>,
}

/// `POST /v1/agent/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub node_id: String,
    /// Status changes since the last acknowledged heartbeat.
    #[serde(default)]
    pub updates: Vec<AllocationReport>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The node is marked down if no heartbeat arrives within this long.
    pub heartbeat_ttl_ms: u64,
}

/// What an agent reports about one allocation on its node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationReport {
    pub id: String,
    pub client_state: ClientState,
    pub health: Health,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub message: String,
}

/// One line of the session stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionMessage {
    /// Everything the node must know about, as of Raft index `index`.
    /// Replaces whatever the agent had.
    Complete {
        index: u64,
        allocations: Vec<Allocation>,
        /// The job versions the allocations run (their specs: tasks, restart policy).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        jobs: Vec<JobVersionSpec>,
    },
    /// Changes since the previous message: new or modified allocations in
    /// full, and the ids of those that left the node's set.
    Increment {
        index: u64,
        upserts: Vec<Allocation>,
        removals: Vec<String>,
        /// Job versions the upserts run that this session has not sent before.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        jobs: Vec<JobVersionSpec>,
    },
    /// Nothing changed; the session is alive.
    Keepalive,
}

/// One version of a job's spec, as a session sends it: an agent keeps each version it
/// was sent for the session's lifetime and looks allocations' specs up by
/// (`job_id`, `job_version`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobVersionSpec {
    pub version: u64,
    pub spec: JobSpec,
}

/// The body of a `421` answer: the usual error plus where the leader is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotLeaderBody {
    pub error: ErrorDetail,
    pub leader: Option<LeaderRef>,
}

/// Does this allocation belong in the node's session set? Everything not yet terminal:
/// what must run, and what must be stopped and reported. A terminal allocation needs
/// nothing more from the agent, which removes what is left of it.
pub fn matters_to_agent(allocation: &Allocation) -> bool {
    !allocation.client_state.is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_by_type() {
        let text = serde_json::to_string(&SessionMessage::Keepalive).unwrap();
        assert_eq!(text, r#"{"type":"keepalive"}"#);
        let increment: SessionMessage = serde_json::from_str(
            r#"{"type":"increment","index":7,"upserts":[],"removals":["a1"]}"#,
        )
        .unwrap();
        assert_eq!(
            increment,
            SessionMessage::Increment {
                index: 7,
                upserts: vec![],
                removals: vec!["a1".into()],
                jobs: vec![],
            }
        );
    }
}
