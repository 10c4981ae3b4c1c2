//! Bodies of the node, allocation and dry-run plan routes.
//!
//! `GET /v1/nodes/{id}` adds what the node holds to the node itself; `POST
//! /v1/jobs/{id}/plan` answers where each instance of a spec would go and, for those
//! that fit nowhere, why (every node counted under the first filter it failed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::allocation::Allocation;
use crate::job::Resources;
use crate::node::Node;

/// `GET /v1/nodes/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeDetail {
    #[serde(flatten)]
    pub node: Node,
    /// Held by the allocations that still reserve resources here.
    pub reserved: Resources,
    /// `resources - reserved` (zero when over-committed).
    pub free: Resources,
    /// Every allocation on the node, live or not, oldest first.
    pub allocations: Vec<Allocation>,
}

/// Why an instance fits nowhere: nodes counted by the first filter they failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlacementExplanation {
    pub nodes_evaluated: usize,
    pub nodes_fit: usize,
    /// `not ready/eligible`, `missing driver docker`, `filtered by constraint ...`.
    pub filtered: BTreeMap<String, usize>,
    /// `cpu`, `memory`, `ports`, `port 8080`.
    pub exhausted: BTreeMap<String, usize>,
}

/// One instance a plan would place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedSlot {
    pub slot: u32,
    pub node_id: String,
    pub host_ports: Vec<u16>,
    /// Why this node (`bin-pack: cpu to 75% on node-3`).
    pub reason: String,
    /// The allocation it would replace (a migration off a draining node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// One instance that fits nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnplacedSlot {
    pub slot: Option<u32>,
    /// The node a global job's instance was meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The explanation as one line (`0 of 3 nodes fit: 3 exhausted cpu`).
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<PlacementExplanation>,
}

/// An allocation a plan would stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedStop {
    pub id: String,
    pub reason: String,
}

/// `POST /v1/jobs/{id}/plan`: what submitting the spec would do now. Nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPlan {
    pub job_id: String,
    /// The version the spec would become (the current one if it is unchanged).
    pub version: u64,
    pub placements: Vec<PlannedSlot>,
    pub stops: Vec<PlannedStop>,
    pub unplaced: Vec<UnplacedSlot>,
}
