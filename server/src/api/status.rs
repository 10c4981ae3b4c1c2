//! `GET /v1/status` and `GET /v1/operator/raft`: where this manager stands in the cluster.
//! Both answer from local knowledge, so they work without a quorum.

use crate::manager::Manager;
use crate::raft::status;
use axum::extract::State;
use axum::Json;
use gantry_api::status::{MemberProgress, RaftInfo, StatusResponse};
use std::sync::Arc;

/// This manager's id and role, the leader it knows of, and the membership. Answers
/// from local knowledge, so it works without a quorum.
#[utoipa::path(
    get,
    path = "/v1/status",
    operation_id = "status",
    tag = "status",
    responses((status = 200, description = "This manager's view", body = gantry_api::StatusResponse))
)]
pub async fn get_status(State(manager): State<Arc<Manager>>) -> Json<StatusResponse> {
    let metrics = manager.raft.metrics().borrow().clone();
    let commit_index = status::commit_index(&manager.raft, &metrics).await;
    Json(StatusResponse {
        id: manager.id,
        role: status::role_name(metrics.state).to_string(),
        leader: status::leader(&metrics),
        term: metrics.current_term,
        commit_index,
        applied_index: status::applied_index(&metrics),
        members: status::members(&metrics),
    })
}

/// The Raft group as this manager sees it, with each member's replication progress (known
/// on the leader only). Works without a quorum.
#[utoipa::path(
    get,
    path = "/v1/operator/raft",
    operation_id = "raft_info",
    tag = "operator",
    responses((status = 200, description = "The Raft group", body = gantry_api::RaftInfo))
)]
pub async fn get_raft(State(manager): State<Arc<Manager>>) -> Json<RaftInfo> {
    let metrics = manager.raft.metrics().borrow().clone();
    let commit_index = status::commit_index(&manager.raft, &metrics).await;
    let progress = metrics.replication.clone().unwrap_or_default();
    let members = status::members(&metrics)
        .into_iter()
        .map(|member| MemberProgress {
            matched_index: if member.id == manager.id {
                metrics.last_log_index
            } else {
                progress
                    .get(&member.id)
                    .cloned()
                    .flatten()
                    .map(|id| id.index)
            },
            id: member.id,
            addr: member.addr,
            voter: member.voter,
        })
        .collect();
    Json(RaftInfo {
        id: manager.id,
        leader: status::leader(&metrics),
        term: metrics.current_term,
        commit_index,
        applied_index: status::applied_index(&metrics),
        last_log_index: metrics.last_log_index.unwrap_or(0),
        snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
        purged_index: metrics.purged.map_or(0, |id| id.index),
        members,
    })
}
