//! `POST /v1/operator/raft/transfer-leader`: asking the leader to hand over leadership.
//!
//! openraft 0.9, the Raft library this version is built on, has no leadership transfer,
//! so the route answers `501 not_supported` (after checking that the manager named is a
//! member, `404` otherwise) and says what to do instead.

use super::body;
use super::error::ApiError;
use crate::manager::Manager;
use crate::raft::status;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use gantry_api::client::TransferLeaderRequest;
use gantry_api::error::codes;
use std::sync::Arc;

pub const PATH: &str = "/v1/operator/raft/transfer-leader";

pub const NOT_SUPPORTED: &str = "leadership transfer is not supported: openraft 0.9, the Raft \
    library of this version, cannot hand leadership to a chosen manager. To move leadership \
    away from the current leader, restart its process: the other managers elect a new \
    leader within about a second.";

/// Hands leadership to a chosen manager: not supported by openraft 0.9, so this answers
/// `501` (after checking the manager is a member) and says what to do instead.
#[utoipa::path(
    post,
    path = "/v1/operator/raft/transfer-leader",
    operation_id = "transfer_leader",
    tag = "operator",
    request_body = gantry_api::client::TransferLeaderRequest,
    responses(
        (status = 400, description = "A malformed body", body = gantry_api::ErrorBody),
        (status = 404, description = "No such manager in the membership", body = gantry_api::ErrorBody),
        (status = 501, description = "Leadership transfer is not supported (`not_supported`); restart the leader's process instead", body = gantry_api::ErrorBody),
    )
)]
pub async fn transfer_leader(
    State(manager): State<Arc<Manager>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(), ApiError> {
    let request: TransferLeaderRequest = body::json(raw)?;
    let known = status::members(&manager.raft.metrics().borrow())
        .iter()
        .any(|member| member.id == request.id);
    if !known {
        let mut error = ApiError::not_found(format!(
            "no manager with id {} in the membership",
            request.id
        ));
        error.field = Some("id".into());
        return Err(error);
    }
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        codes::NOT_SUPPORTED,
        NOT_SUPPORTED,
    ))
}
