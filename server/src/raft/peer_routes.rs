//! The server side of peer RPC: Raft messages from other managers, and the writes and
//! read-index requests that followers forward to the leader.

use super::codec;
use super::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use super::TypeConfig;
use crate::manager::Manager;
use crate::state::Command;
use crate::write::forward::{PROPOSE_PATH, READ_INDEX_PATH};
use crate::write::ProposeError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::error::{CheckIsLeaderError, RaftError};
use serde::Serialize;
use std::sync::Arc;

/// Append requests carry batches of entries and snapshot chunks; both are bounded by the
/// Raft settings, well below this.
const PEER_BODY_LIMIT: usize = 256 << 20;

pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(PROPOSE_PATH, post(propose))
        .route(READ_INDEX_PATH, post(read_index))
        .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT))
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
