//! The allocation routes: a filtered list, and one allocation.

use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use axum::extract::{Path, Query, State};
use axum::Json;
use gantry_api::{Allocation, ClientState};
use serde::Deserialize;
use std::sync::Arc;

/// `?job=&node=&status=` (status: a client state, e.g. `running`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only the allocations of this job.
    pub job: Option<String>,
    /// Only the allocations on this node.
    pub node: Option<String>,
    /// Only the allocations in this client state.
    #[param(value_type = Option<ClientState>)]
    pub status: Option<String>,
}

/// Allocations, filtered by job, node and client state.
#[utoipa::path(
    get,
    path = "/v1/allocations",
    operation_id = "list_allocations",
    tag = "allocations",
    params(super::consistency::ReadParams, Filter),
    responses(
        (status = 200, description = "The matching allocations", body = Vec<gantry_api::Allocation>),
        (status = 400, description = "A bad filter, or a bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
    )
)]
pub async fn list(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
    Query(filter): Query<Filter>,
) -> Result<Json<Vec<Allocation>>, ApiError> {
    let status: Option<ClientState> = match &filter.status {
        None => None,
        Some(text) => Some(
            serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|_| {
                let mut error = ApiError::bad_request(format!(
                    "status: `{text}` is not one of pending, starting, running, failed, \
                     complete, lost"
                ));
                error.field = Some("status".into());
                error
            })?,
        ),
    };
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let allocations = &state.allocations;
    let candidates: Box<dyn Iterator<Item = &Allocation>> = match (&filter.node, &filter.job) {
        (Some(node), _) => Box::new(allocations.on_node(node)),
        (None, Some(job)) => Box::new(allocations.of_job(job)),
        (None, None) => Box::new(allocations.by_id.values()),
    };
    let list = candidates
        .filter(|a| filter.job.as_ref().is_none_or(|job| &a.job_id == job))
        .filter(|a| filter.node.as_ref().is_none_or(|node| &a.node_id == node))
        .filter(|a| status.is_none_or(|s| a.client_state == s))
        .cloned()
        .collect();
    Ok(Json(list))
}

/// One allocation.
#[utoipa::path(
    get,
    path = "/v1/allocations/{id}",
    operation_id = "get_allocation",
    tag = "allocations",
    params(("id" = String, Path, description = "The allocation's id"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "The allocation", body = gantry_api::Allocation),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No such allocation", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Allocation>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    state
        .allocations
        .by_id
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no allocation with id `{id}`")))
}
