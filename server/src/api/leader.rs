//! Leader-only operations that have no command of their own (membership changes): run
//! them here when this manager leads, else pass the HTTP request on to the leader.

use super::error::ApiError;
use crate::manager::Manager;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_api::status::LeaderRef;
use std::time::Duration;
use tokio::time::Instant;

/// The current leader, waiting out an election up to the write timeout.
pub async fn await_leader(manager: &Manager) -> Result<LeaderRef, ApiError> {
    let deadline = Instant::now() + manager.config.write_timeout;
    let mut metrics = manager.raft.metrics();
    let known = metrics.wait_for(|m| m.current_leader.is_some());
    if tokio::time::timeout_at(deadline, known).await.is_err() {
        return Err(ApiError::no_quorum(
            "no leader: an election is under way or a majority of managers is unreachable",
        ));
    }
    manager
        .leader()
        .ok_or_else(|| ApiError::no_quorum("the leader is not in this manager's membership"))
}

/// Sends the same request to the leader and relays its answer.
pub async fn forward(
    manager: &Manager,
    leader: &LeaderRef,
    method: Method,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = manager
        .peer_client
        .request(method, format!("http://{}{path}", leader.addr))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            ApiError::no_quorum(format!(
                "cannot reach the leader {} at {}: {e}",
                leader.id, leader.addr
            ))
        })?;
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| ApiError::no_quorum(format!("the leader's answer was cut off: {e}")))?;
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}
