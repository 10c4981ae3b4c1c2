//! Nodes: the worker machines agents run on, as the managers record them.
//!
//! An agent registers what its node offers (resources, a range of host ports for dynamic
//! assignment, labels, the drivers that work there); the managers add what they decide
//! (status, eligibility, drain). Placement reads all of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Resources;

/// Host ports a node hands out for ports without a static `host_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortRange {
    pub start: u16,
    /// Inclusive.
    pub end: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        Self {
            start: 20_000,
            end: 32_000,
        }
    }
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Registered; not yet heartbeating on a session.
    Initializing,
    Ready,
    /// Missed its heartbeat TTL: its allocations are lost and replaced.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    Eligible,
    Ineligible,
}

/// What an agent tells the managers about its node when it registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// Unique, stable name of the node (the agent's `--name`); the node id derives from it.
    pub name: String,
    /// Address other machines use to reach this node's published ports.
    pub address: String,
    pub resources: Resources,
    #[serde(default)]
    pub port_range: PortRange,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Drivers that work on this node, e.g. `docker`, `process`.
    #[serde(default)]
    pub drivers: Vec<String>,
    /// `host:port` of the agent's own HTTP endpoint (task logs), if it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_addr: Option<String>,
}

/// A node as the cluster state holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub address: String,
    pub resources: Resources,
    pub port_range: PortRange,
    pub labels: BTreeMap<String, String>,
    pub drivers: Vec<String>,
    /// Where the managers reach the agent's HTTP endpoint (task logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_addr: Option<String>,
    pub status: NodeStatus,
    pub eligibility: Eligibility,
    /// Draining: no new work, and what runs here is moved elsewhere.
    pub drain: bool,
    pub registered_at_ms: u64,
    pub status_changed_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// Can new allocations be placed here at all (before resources and constraints)?
    pub fn schedulable(&self) -> bool {
        self.status == NodeStatus::Ready && self.eligibility == Eligibility::Eligible && !self.drain
    }
}

/// `POST /v1/nodes/{id}/drain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    pub enable: bool,
}

/// `POST /v1/nodes/{id}/eligibility`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRequest {
    pub eligibility: Eligibility,
}
