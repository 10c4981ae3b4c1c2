//! `POST /v1/operator/raft/peers` and `DELETE /v1/operator/raft/peers/{id}`: growing and
//! shrinking the set of managers.
//!
//! A new manager is first added as a learner and receives the log (or a snapshot) until it
//! has caught up; only then is it made a voter, so adding a manager never stalls commits
//! while it catches up. Both changes run on the leader; other managers forward them.

use super::body;
use super::error::ApiError;
use super::leader::{await_leader, forward};
use crate::manager::Manager;
use crate::raft::{status, NodeId};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_api::error::codes;
use gantry_api::status::{AddPeerRequest, MembersResponse};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a new manager may take to catch up before it is made a voter.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
const PEERS_PATH: &str = "/v1/operator/raft/peers";

/// Adds a manager: first as a learner that receives the log, then, once it has caught
/// up, as a voter. Runs on the leader (forwarded there).
#[utoipa::path(
    post,
    path = "/v1/operator/raft/peers",
    operation_id = "add_peer",
    tag = "operator",
    request_body = gantry_api::AddPeerRequest,
    responses(
        (status = 200, description = "The membership afterwards", body = gantry_api::status::MembersResponse),
        (status = 400, description = "A malformed body, a zero id or an address that is not HOST:PORT", body = gantry_api::ErrorBody),
        (status = 409, description = "The id is a member at another address, or a membership change is in progress", body = gantry_api::ErrorBody),
        (status = 500, description = "The Raft node stopped", body = gantry_api::ErrorBody),
        (status = 503, description = "No leader, or leadership moved during the change; retry", body = gantry_api::ErrorBody),
        (status = 504, description = "The new manager did not catch up in time; it stays a learner", body = gantry_api::ErrorBody),
    )
)]
pub async fn add_peer(
    State(manager): State<Arc<Manager>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body::bytes(raw)?;
    let request: AddPeerRequest = body::json(Ok(bytes.clone()))?;
    if request.id == 0 {
        return Err(field_error("id", "manager ids start at 1"));
    }
    if request
        .addr
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(field_error(
            "addr",
            format!("`{}` is not HOST:PORT", request.addr),
        ));
    }
    let leader = await_leader(&manager).await?;
    if leader.id != manager.id {
        return forward(
            &manager,
            &leader,
            Method::POST,
            PEERS_PATH,
            bytes.to_vec(),
            CATCH_UP_TIMEOUT + Duration::from_secs(10),
        )
        .await;
    }

    let members = status::members(&manager.raft.metrics().borrow());
    if let Some(existing) = members.iter().find(|m| m.id == request.id) {
        if existing.addr != request.addr {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                format!(
                    "manager {} is already a member at {}; remove it first to change its address",
                    existing.id, existing.addr
                ),
            ));
        }
        if existing.voter {
            return Ok(members_response(&manager).into_response());
        }
    }

    tracing::info!(id = request.id, addr = %request.addr, "adding a manager as a learner");
    let added = manager
        .raft
        .add_learner(request.id, BasicNode::new(&request.addr), true);
    match tokio::time::timeout(CATCH_UP_TIMEOUT, added).await {
        Ok(result) => result.map_err(membership_error)?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                codes::NO_QUORUM,
                format!(
                    "manager {} did not catch up within {CATCH_UP_TIMEOUT:?}; it stays a learner — check that it is reachable at {}",
                    request.id, request.addr
                ),
            ))
        }
    };
    tracing::info!(id = request.id, "promoting the caught-up learner to voter");
    manager
        .raft
        .change_membership(
            ChangeMembers::AddVoterIds(BTreeSet::from([request.id])),
            false,
        )
        .await
        .map_err(membership_error)?;
    Ok(members_response(&manager).into_response())
}

/// Removes a manager from the membership. Runs on the leader (forwarded there).
#[utoipa::path(
    delete,
    path = "/v1/operator/raft/peers/{id}",
    operation_id = "remove_peer",
    tag = "operator",
    params(("id" = u64, Path, description = "The manager's Raft node id")),
    responses(
        (status = 200, description = "The membership afterwards", body = gantry_api::status::MembersResponse),
        (status = 400, description = "Not a numeric id, or the last voter", body = gantry_api::ErrorBody),
        (status = 404, description = "Not a member", body = gantry_api::ErrorBody),
        (status = 409, description = "A membership change is in progress", body = gantry_api::ErrorBody),
        (status = 500, description = "The Raft node stopped", body = gantry_api::ErrorBody),
        (status = 503, description = "No leader, or leadership moved during the change; retry", body = gantry_api::ErrorBody),
    )
)]
pub async fn remove_peer(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: NodeId = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a numeric manager id")))?;
    let leader = await_leader(&manager).await?;
    if leader.id != manager.id {
        let path = format!("{PEERS_PATH}/{id}");
        return forward(
            &manager,
            &leader,
            Method::DELETE,
            &path,
            Vec::new(),
            Duration::from_secs(30),
        )
        .await;
    }
    let members = status::members(&manager.raft.metrics().borrow());
    let Some(member) = members.iter().find(|m| m.id == id) else {
        return Err(ApiError::not_found(format!(
            "manager {id} is not a member of the cluster"
        )));
    };
    let change = if member.voter {
        if members.iter().filter(|m| m.voter).count() == 1 {
            return Err(ApiError::bad_request(format!(
                "manager {id} is the last voter; a cluster cannot remove its last voter"
            )));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    tracing::info!(id, "removing a manager");
    manager
        .raft
        .change_membership(change, false)
        .await
        .map_err(membership_error)?;
    Ok(members_response(&manager).into_response())
}

fn members_response(manager: &Manager) -> Json<MembersResponse> {
    Json(MembersResponse {
        members: status::members(&manager.raft.metrics().borrow()),
    })
}

fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    let mut error = ApiError::bad_request(format!("{field}: {}", message.into()));
    error.field = Some(field.to_string());
    error
}

fn membership_error(error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> ApiError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            ApiError::no_quorum("leadership moved while changing the membership; retry the request")
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, e.to_string())
        }
        RaftError::Fatal(e) => ApiError::internal(format!("the Raft node stopped: {e}")),
    }
}
