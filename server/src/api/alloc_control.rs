//! `POST /v1/allocations/{id}/stop` and `POST /v1/allocations/{id}/restart`: an
//! operator's hand on one allocation. Both are replicated commands (see
//! `state::alloc_control` for the rules) and answer the allocation as they left it.

use super::body;
use super::error::ApiError;
use crate::manager::Manager;
use crate::state::{Command, Outcome};
use crate::write::{submit, Applied};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use gantry_api::{Allocation, RestartRequest};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Stops the allocation; the scheduler places a replacement if its job still wants the
/// slot. `404` for an unknown id, `409` when it is already stopped or being stopped.
#[utoipa::path(
    post,
    path = "/v1/allocations/{id}/stop",
    operation_id = "stop_allocation",
    tag = "allocations",
    params(("id" = String, Path, description = "The allocation's id"),),
    responses(
        (status = 200, description = "The allocation, now to stop", body = gantry_api::Allocation),
        (status = 404, description = "No such allocation", body = gantry_api::ErrorBody),
        (status = 409, description = "It is already stopped or being stopped", body = gantry_api::ErrorBody),
    )
)]
pub async fn stop(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
) -> Result<Json<Allocation>, ApiError> {
    let command = Command::StopAllocation {
        id,
        now_ms: now_ms(),
    };
    answer(submit(&manager, command).await?)
}

/// Restarts the allocation's tasks in place (all, or the one the optional body names).
/// `404` for an unknown id, `409` unless it is running, `400` for an unknown task.
#[utoipa::path(
    post,
    path = "/v1/allocations/{id}/restart",
    operation_id = "restart_allocation",
    tag = "allocations",
    params(("id" = String, Path, description = "The allocation's id"),),
    request_body(content = Option<gantry_api::RestartRequest>, description = "Optional: without a body every task restarts"),
    responses(
        (status = 200, description = "The allocation, with the restart requested", body = gantry_api::Allocation),
        (status = 400, description = "A malformed body, or a task the allocation does not have", body = gantry_api::ErrorBody),
        (status = 404, description = "No such allocation", body = gantry_api::ErrorBody),
        (status = 409, description = "It is not running", body = gantry_api::ErrorBody),
    )
)]
pub async fn restart(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Allocation>, ApiError> {
    let bytes = body::bytes(raw)?;
    let request: RestartRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        RestartRequest::default()
    } else {
        body::json(Ok(bytes))?
    };
    if let Some(task) = &request.task {
        if task.trim().is_empty() {
            let mut error = ApiError::bad_request("task: must not be empty");
            error.field = Some("task".into());
            return Err(error);
        }
    }
    let command = Command::RestartAllocation {
        id,
        task: request.task,
        now_ms: now_ms(),
    };
    answer(submit(&manager, command).await?)
}

fn answer(applied: Applied) -> Result<Json<Allocation>, ApiError> {
    match applied.outcome {
        Outcome::Allocation { allocation } => Ok(Json(*allocation)),
        Outcome::Rejected { code, message } => {
            let mut error = ApiError::rejected(&code, message);
            if error.message.starts_with("task: ") {
                error.field = Some("task".into());
            }
            Err(error)
        }
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
