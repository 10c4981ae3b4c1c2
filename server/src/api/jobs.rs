//! The job routes: register or update, read, list, scale, delete, history, revert.

use super::body;
use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use crate::state::{Command, Outcome};
use crate::write::{submit, Applied};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_api::error::codes;
use gantry_api::job::{parse_job_spec, SpecError};
use gantry_api::jobs::{
    Job, JobDeleted, JobRegistered, JobSummary, JobVersion, RevertRequest, ScaleRequest,
};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Registers a job, or a new version of it when the spec changed.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    operation_id = "register_job",
    tag = "jobs",
    request_body(
        description = "The job spec, as JSON or (with `Content-Type: application/yaml`) YAML",
        content(
            (gantry_api::JobSpec = "application/json"),
            (gantry_api::JobSpec = "application/yaml"),
        ),
    ),
    responses(
        (status = 201, description = "Committed (not yet placed)", body = gantry_api::JobRegistered),
        (status = 400, description = "The spec does not parse or validate (`invalid_spec`, with `field`)", body = gantry_api::ErrorBody),
    )
)]
pub async fn register(
    State(manager): State<Arc<Manager>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body::bytes(raw)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let spec = parse_job_spec(&bytes, content_type).map_err(spec_error)?;
    spec.validate().map_err(spec_error)?;
    let applied = submit(
        &manager,
        Command::RegisterJob {
            spec,
            submitted_at_ms: now_ms(),
        },
    )
    .await?;
    registered(applied)
}

/// `POST /v1/jobs/{id}/plan`: a dry run of registering the spec in the body (JSON or
/// YAML, like `POST /v1/jobs`) against the state as it is now. Changes nothing.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/plan",
    operation_id = "plan_job",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"),),
    request_body(
        description = "The job spec, as JSON or (with `Content-Type: application/yaml`) YAML; its `id` must be the one of the URL",
        content(
            (gantry_api::JobSpec = "application/json"),
            (gantry_api::JobSpec = "application/yaml"),
        ),
    ),
    responses(
        (status = 200, description = "What registering the spec would do now", body = gantry_api::scheduling::JobPlan),
        (status = 400, description = "The spec does not parse or validate, or names another job", body = gantry_api::ErrorBody),
        (status = 503, description = "No quorum: the read could not be confirmed by the leader; retry, or read with `?stale=true`", body = gantry_api::ErrorBody),
    )
)]
pub async fn plan(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<gantry_api::scheduling::JobPlan>, ApiError> {
    let bytes = body::bytes(raw)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let spec = parse_job_spec(&bytes, content_type).map_err(spec_error)?;
    spec.validate().map_err(spec_error)?;
    if spec.id != id {
        let mut error = ApiError::bad_request(format!(
            "id: the spec's id `{}` is not the job `{id}` of the URL",
            spec.id
        ));
        error.field = Some("id".into());
        return Err(error);
    }
    prepare_read(&manager, &ReadParams::default()).await?;
    let state = manager.state.read();
    Ok(Json(crate::scheduler::dry_run::plan(
        &state,
        &spec,
        now_ms(),
        manager.config.scheduler_algorithm,
    )))
}

/// Every job, with its status.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    params(super::consistency::ReadParams),
    responses(
        (status = 200, description = "Every job", body = Vec<gantry_api::JobSummary>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
    )
)]
pub async fn list(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<JobSummary>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let jobs = &state.jobs;
    let summaries = jobs
        .current
        .values()
        .map(|job| JobSummary {
            id: job.spec.id.clone(),
            kind: job.spec.kind,
            replicas: job.spec.replicas,
            version: job.version,
            status: crate::state::jobs::status(job, state.allocations.of_job(&job.spec.id))
                .to_string(),
            modify_index: job.modify_index,
        })
        .collect();
    Ok(Json(summaries))
}

/// One job: its current spec, version and status.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "The job", body = gantry_api::Job),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No such job", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Job>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let mut job = state
        .jobs
        .current
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no job with id `{id}`")))?;
    job.status = crate::state::jobs::status(&job, state.allocations.of_job(&id)).to_string();
    Ok(Json(job))
}

/// Every version of a job, newest first.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/versions",
    operation_id = "job_versions",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), super::consistency::ReadParams),
    responses(
        (status = 200, description = "The job's versions, newest first", body = Vec<gantry_api::JobVersion>),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 404, description = "No such job", body = gantry_api::ErrorBody),
    )
)]
pub async fn versions(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<JobVersion>>, ApiError> {
    prepare_read(&manager, &params).await?;
    let state = manager.state.read();
    let jobs = &state.jobs;
    if !jobs.current.contains_key(&id) {
        return Err(ApiError::not_found(format!("no job with id `{id}`")));
    }
    let history = jobs
        .versions
        .get(&id)
        .map(|versions| versions.values().rev().cloned().collect())
        .unwrap_or_default();
    Ok(Json(history))
}

/// Stops a job and removes it.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    operation_id = "delete_job",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"),),
    responses(
        (status = 200, description = "Removed", body = gantry_api::JobDeleted),
        (status = 404, description = "No such job", body = gantry_api::ErrorBody),
    )
)]
pub async fn delete(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let applied = submit(&manager, Command::DeleteJob { id }).await?;
    match applied.outcome {
        Outcome::JobDeleted { id } => Ok(Json(JobDeleted {
            id,
            index: applied.index,
        })
        .into_response()),
        other => Err(unexpected(other)),
    }
}

/// Changes a job's replica count (a new version).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/scale",
    operation_id = "scale_job",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"),),
    request_body = gantry_api::ScaleRequest,
    responses(
        (status = 201, description = "Committed as a new version", body = gantry_api::JobRegistered),
        (status = 400, description = "A malformed body, or more replicas than allowed", body = gantry_api::ErrorBody),
        (status = 404, description = "No such job", body = gantry_api::ErrorBody),
    )
)]
pub async fn scale(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: ScaleRequest = body::json(raw)?;
    if request.replicas > gantry_api::job::MAX_REPLICAS {
        let mut error = ApiError::bad_request(format!(
            "replicas: at most {} allowed",
            gantry_api::job::MAX_REPLICAS
        ));
        error.field = Some("replicas".into());
        return Err(error);
    }
    let applied = submit(
        &manager,
        Command::ScaleJob {
            id,
            replicas: request.replicas,
            submitted_at_ms: now_ms(),
        },
    )
    .await?;
    registered(applied)
}

/// Makes an earlier version current again (as a new version with its spec).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/revert",
    operation_id = "revert_job",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"),),
    request_body = gantry_api::RevertRequest,
    responses(
        (status = 201, description = "Committed as a new version", body = gantry_api::JobRegistered),
        (status = 400, description = "A malformed body", body = gantry_api::ErrorBody),
        (status = 404, description = "No such job, or no such version of it", body = gantry_api::ErrorBody),
    )
)]
pub async fn revert(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: RevertRequest = body::json(raw)?;
    let applied = submit(
        &manager,
        Command::RevertJob {
            id,
            version: request.version,
            submitted_at_ms: now_ms(),
        },
    )
    .await?;
    registered(applied)
}

fn registered(applied: Applied) -> Result<Response, ApiError> {
    match applied.outcome {
        Outcome::JobRegistered {
            id,
            version,
            deployment_id,
            ..
        } => Ok((
            StatusCode::CREATED,
            Json(JobRegistered {
                id,
                version,
                index: applied.index,
                deployment_id,
            }),
        )
            .into_response()),
        other => Err(unexpected(other)),
    }
}

fn unexpected(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Rejected { code, message } => ApiError::rejected(&code, message),
        other => ApiError::internal(format!("unexpected outcome {other:?}")),
    }
}

fn spec_error(error: SpecError) -> ApiError {
    let mut api_error = ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_SPEC,
        error.to_string(),
    );
    if !error.field.is_empty() {
        api_error.field = Some(error.field);
    }
    api_error
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
