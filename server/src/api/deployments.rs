//! The deployment routes: `GET /v1/deployments[?job=]` (newest first),
//! `GET /v1/deployments/{id}`, and an operator's `POST /v1/deployments/{id}/{action}`
//! with `promote`, `fail`, `pause` or `resume` (replicated commands;
//! `state::deployments` has the rules). Reads are like every other read: linearizable by default, `?stale=true`,
//! `?index=N&wait=D`.

use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use crate::state::deployments::DeploymentAction;
use crate::state::{Command, Outcome};
use crate::write::submit;
use axum::extract::{Path, Query, State};
use axum::Json;
use gantry_api::{Deployment, DeploymentChanged};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// `?job=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only the deployments of this job.
    pub job: Option<String>,
}

/// Deployments, newest first (each job keeps its last 10).
#[utoipa::path(
    get,
    path = "/v1/deployments",
    operation_id = "list_deployments",
    tag = "deployments",
    params(super::consistency::ReadParams, Filter),
    responses(
        (status = 200, description = "The deployments, newest first", body = Vec<gantry_api::Deployment>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
    )
)]
pub async fn list(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
    Query(filter): Query<Filter>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let deployments = &state.deployments;
    let mut list: Vec<Deployment> = match &filter.job {
        Some(job) => deployments.of_job(job).cloned().collect(),
        None => deployments.by_id.values().cloned().collect(),
    };
    list.sort_by(|a, b| b.create_index.cmp(&a.create_index).then(a.id.cmp(&b.id)));
    Ok(Json(list))
}

/// One deployment.
#[utoipa::path(
    get,
    path = "/v1/deployments/{id}",
    operation_id = "get_deployment",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment's id"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "The deployment", body = gantry_api::Deployment),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No such deployment", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Deployment>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    state
        .deployments
        .by_id
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no deployment with id `{id}`")))
}

/// An operator's hand on a running or paused deployment: `promote` lets one waiting on
/// its canaries replace the rest, `pause` replaces nothing more until `resume`, and
/// `fail` ends it (reverting, with `auto_revert`).
#[utoipa::path(
    post,
    path = "/v1/deployments/{id}/{action}",
    operation_id = "act_on_deployment",
    tag = "deployments",
    params(
        ("id" = String, Path, description = "The deployment's id"),
        ("action" = inline(DeploymentAction), Path, description = "promote, fail, pause or resume"),
    ),
    responses(
        (status = 200, description = "The deployment after the change", body = gantry_api::DeploymentChanged),
        (status = 404, description = "No such deployment", body = gantry_api::ErrorBody),
        (status = 409, description = "The deployment is finished, or (promote) has no canaries or is promoted already", body = gantry_api::ErrorBody),
    )
)]
pub async fn act_on(
    State(manager): State<Arc<Manager>>,
    Path((id, action)): Path<(String, DeploymentAction)>,
) -> Result<Json<DeploymentChanged>, ApiError> {
    act(&manager, id, action).await
}

async fn act(
    manager: &Manager,
    id: String,
    action: DeploymentAction,
) -> Result<Json<DeploymentChanged>, ApiError> {
    let command = Command::DeploymentAction {
        id,
        action,
        now_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let applied = submit(manager, command).await?;
    match applied.outcome {
        Outcome::Deployment { deployment } => Ok(Json(DeploymentChanged {
            deployment: *deployment,
            index: applied.index,
        })),
        Outcome::Rejected { code, message } => Err(ApiError::rejected(&code, message)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}
