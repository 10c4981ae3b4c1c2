//! The node routes: list, one node with what it holds, drain and eligibility.
//!
//! Nodes are registered by their agents (the dispatcher's routes); an operator only reads
//! them and decides whether they take work.

use super::body;
use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use crate::state::{Command, Outcome};
use crate::write::{submit, Applied};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use gantry_api::scheduling::NodeDetail;
use gantry_api::{DrainRequest, EligibilityRequest, Node, Resources};
use std::sync::Arc;

/// Every node.
#[utoipa::path(
    get,
    path = "/v1/nodes",
    operation_id = "list_nodes",
    tag = "nodes",
    params(super::consistency::ReadParams),
    responses(
        (status = 200, description = "Every node", body = Vec<gantry_api::Node>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
    )
)]
pub async fn list(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<Node>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    Ok(Json(state.nodes.by_id.values().cloned().collect()))
}

/// One node, with what it holds: reserved and free resources, and its allocations.
#[utoipa::path(
    get,
    path = "/v1/nodes/{id}",
    operation_id = "get_node",
    tag = "nodes",
    params(("id" = String, Path, description = "The node's id"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "The node", body = gantry_api::scheduling::NodeDetail),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No such node", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<NodeDetail>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let node = state
        .nodes
        .by_id
        .get(&id)
        .cloned()
        .ok_or_else(|| unknown(&id))?;
    let usage = state.allocations.node_usage(&id);
    let mut allocations: Vec<_> = state.allocations.on_node(&id).cloned().collect();
    allocations.sort_by_key(|a| (a.create_index, a.slot));
    let free = Resources {
        cpu_millis: node
            .resources
            .cpu_millis
            .saturating_sub(usage.reserved.cpu_millis),
        memory_mb: node
            .resources
            .memory_mb
            .saturating_sub(usage.reserved.memory_mb),
    };
    Ok(Json(NodeDetail {
        node,
        reserved: usage.reserved,
        free,
        allocations,
    }))
}

/// Starts or stops draining a node: no new work, and what runs there moves elsewhere.
#[utoipa::path(
    post,
    path = "/v1/nodes/{id}/drain",
    operation_id = "drain_node",
    tag = "nodes",
    params(("id" = String, Path, description = "The node's id"),),
    request_body = gantry_api::DrainRequest,
    responses(
        (status = 200, description = "The node afterwards", body = gantry_api::Node),
        (status = 400, description = "A malformed body", body = gantry_api::ErrorBody),
        (status = 404, description = "No such node", body = gantry_api::ErrorBody),
    )
)]
pub async fn drain(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Node>, ApiError> {
    let request: DrainRequest = body::json(raw)?;
    let command = Command::SetNodeDrain {
        node_id: id,
        drain: request.enable,
    };
    node_answer(submit(&manager, command).await?)
}

/// Makes a node eligible or ineligible for new work (what runs there stays).
#[utoipa::path(
    post,
    path = "/v1/nodes/{id}/eligibility",
    operation_id = "set_node_eligibility",
    tag = "nodes",
    params(("id" = String, Path, description = "The node's id"),),
    request_body = gantry_api::EligibilityRequest,
    responses(
        (status = 200, description = "The node afterwards", body = gantry_api::Node),
        (status = 400, description = "A malformed body", body = gantry_api::ErrorBody),
        (status = 404, description = "No such node", body = gantry_api::ErrorBody),
    )
)]
pub async fn eligibility(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Node>, ApiError> {
    let request: EligibilityRequest = body::json(raw)?;
    let command = Command::SetNodeEligibility {
        node_id: id,
        eligibility: request.eligibility,
    };
    node_answer(submit(&manager, command).await?)
}

fn node_answer(applied: Applied) -> Result<Json<Node>, ApiError> {
    match applied.outcome {
        Outcome::Node { node } => Ok(Json(*node)),
        Outcome::Rejected { code, message } => Err(ApiError::rejected(&code, message)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no node with id `{id}`"))
}
