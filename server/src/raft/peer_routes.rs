//! The server side of peer RPC: Raft messages from other managers, and the writes and
//! read-index requests that followers forward to the leader.
//!
//! A manager with a cluster secret answers `401` to any of them that does not carry it,
//! before reading the body: no client can append to its log, vote, or propose.

use super::codec;
use super::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use super::TypeConfig;
use crate::api::ApiError;
use crate::manager::Manager;
use crate::state::Command;
use crate::write::forward::{PROPOSE_PATH, READ_INDEX_PATH};
use crate::write::ProposeError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use gantry_api::acl::CLUSTER_SECRET_HEADER;
use gantry_api::error::codes;
use openraft::error::{CheckIsLeaderError, RaftError};
use serde::Serialize;
use std::sync::Arc;

/// Append requests carry batches of entries and snapshot chunks; both are bounded by the
/// Raft settings, well below this.
const PEER_BODY_LIMIT: usize = 256 << 20;

pub fn routes(manager: Arc<Manager>) -> Router<Arc<Manager>> {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(PROPOSE_PATH, post(propose))
        .route(READ_INDEX_PATH, post(read_index))
        .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(
            manager,
            require_cluster_secret,
        ))
}

async fn require_cluster_secret(
    State(manager): State<Arc<Manager>>,
    request: Request,
    next: Next,
) -> Response {
    match &manager.config.cluster_secret {
        Some(secret) if !secret.presented_in(request.headers()) => {
            tracing::debug!(path = %request.uri().path(), "peer request without the cluster secret refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                format!(
                    "peer routes need the cluster secret in {CLUSTER_SECRET_HEADER}: is the \
                     calling manager started with the same --cluster-secret-file or \
                     GANTRY_CLUSTER_SECRET?"
                ),
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

async fn append(State(manager): State<Arc<Manager>>, body: Bytes) -> Response {
    match codec::decode(&body) {
        Ok(request) => reply(&manager.raft.append_entries(request).await),
        Err(e) => undecodable(e),
    }
}

async fn vote(State(manager): State<Arc<Manager>>, body: Bytes) -> Response {
    match codec::decode(&body) {
        Ok(request) => reply(&manager.raft.vote(request).await),
        Err(e) => undecodable(e),
    }
}

async fn snapshot(State(manager): State<Arc<Manager>>, body: Bytes) -> Response {
    match codec::decode::<openraft::raft::InstallSnapshotRequest<TypeConfig>>(&body) {
        Ok(request) => {
            tracing::debug!(
                snapshot = %request.meta.snapshot_id,
                offset = request.offset,
                bytes = request.data.len(),
                done = request.done,
                "snapshot chunk received"
            );
            reply(&manager.raft.install_snapshot(request).await)
        }
        Err(e) => undecodable(e),
    }
}

async fn propose(State(manager): State<Arc<Manager>>, body: Bytes) -> Response {
    let command: Command = match serde_json::from_slice(&body) {
        Ok(command) => command,
        Err(e) => return undecodable(e),
    };
    let proposed = manager.group_commit.propose(&command);
    let answer = match tokio::time::timeout(manager.config.write_timeout, proposed).await {
        Ok(answer) => answer,
        Err(_) => Err(ProposeError::NotLeader { leader: None }),
    };
    reply(&answer)
}

async fn read_index(State(manager): State<Arc<Manager>>) -> Response {
    let answer: Result<u64, ProposeError> = match manager.raft.get_read_log_id().await {
        Ok((read, _applied)) => Ok(read.map_or(0, |id| id.index)),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
            Err(ProposeError::NotLeader {
                leader: forward.leader_id,
            })
        }
        Err(e) => Err(ProposeError::NotLeader { leader: None })
            .inspect_err(|_| tracing::debug!(error = %e, "read index refused")),
    };
    reply(&answer)
}

fn reply<T: Serialize>(answer: &T) -> Response {
    (
        [(header::CONTENT_TYPE, codec::CONTENT_TYPE)],
        codec::encode(answer),
    )
        .into_response()
}

fn undecodable(error: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("undecodable peer message: {error}"),
    )
        .into_response()
}
