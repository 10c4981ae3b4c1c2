//! The service routes: `GET /v1/services` (every service with its endpoint count, jobs
//! and tags) and `GET /v1/services/{name}` (its endpoints). Read like every other list:
//! linearizable by default, `?stale=true` from the local replica, `?index=N&wait=D` to
//! block until the state passes index N. What counts as an endpoint is the read model's
//! business (`crate::services`).

use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use axum::extract::{Path, Query, State};
use axum::Json;
use gantry_api::{ServiceEndpoint, ServiceSummary};
use std::sync::Arc;

/// Every service: its endpoint count, the jobs serving it and their tags.
#[utoipa::path(
    get,
    path = "/v1/services",
    operation_id = "list_services",
    tag = "services",
    params(super::consistency::ReadParams),
    responses(
        (status = 200, description = "Every service", body = Vec<gantry_api::ServiceSummary>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
    )
)]
pub async fn list(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<ServiceSummary>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    Ok(Json(crate::services::summaries(&state)))
}

/// The endpoints of one service: every running, healthy instance of its port.
#[utoipa::path(
    get,
    path = "/v1/services/{name}",
    operation_id = "get_service",
    tag = "services",
    params(("name" = String, Path, description = "The service's name"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "Its endpoints (none while no instance is healthy)", body = Vec<gantry_api::ServiceEndpoint>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No job declares the service", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<ServiceEndpoint>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    crate::services::service(&state, &name)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no service named `{name}`: no job declares it and nothing serves it \
                 (see GET /v1/services)"
            ))
        })
}
