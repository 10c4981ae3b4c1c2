//! The agent routes (protocol: `gantry_api::session`): register on any manager,
//! heartbeat and session on the leader only; a follower answers those with `421` and
//! where the leader is. With ACL on, registering needs the join token and answers the
//! node's own secret, which heartbeats and the session need (`crate::acl::agents`).

use super::{now_ms, Dispatcher};
use crate::acl::agents as acl;
use crate::api::body::json;
use crate::api::ApiError;
use crate::manager::Manager;
use crate::state::command::AllocationUpdate;
use crate::state::{Command, Outcome};
use crate::write::submit;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use gantry_api::error::{codes, ErrorDetail};
use gantry_api::session::{
    Heartbeat, HeartbeatAck, NotLeaderBody, Registered, HEARTBEAT_PATH, LEADER_HEADER,
    REGISTER_PATH, SESSION_PATH,
};
use gantry_api::{LeaderRef, NodeRegistration};
use serde::Deserialize;
use std::sync::Arc;
use tokio::time::Instant;

/// The longest a heartbeat waits for its reports to commit. The heartbeat itself has
/// already counted (the node is alive); an agent whose reports did not make it in time
/// sends them again on its next beat, which keeps beats flowing while Raft is slow.
const REPORT_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn router(dispatcher: Arc<Dispatcher>) -> Router<Arc<Manager>> {
    Router::new()
        .route(REGISTER_PATH, post(register))
        .route(HEARTBEAT_PATH, post(heartbeat))
        .route(SESSION_PATH, get(session))
        .layer(Extension(dispatcher))
}

async fn register(
    Extension(dispatcher): Extension<Arc<Dispatcher>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Registered>, ApiError> {
    acl::check_join_token(&dispatcher.manager, &headers).await?;
    let registration: NodeRegistration = json(body)?;
    check_name(&registration.name)?;
    let command = Command::RegisterNode {
        registration,
        now_ms: now_ms(),
    };
    let applied = submit(&dispatcher.manager, command).await?;
    match applied.outcome {
        Outcome::Node { node } => Ok(Json(Registered {
            node_secret: acl::issue_node_secret(&dispatcher.manager, &node.id).await?,
            node_id: node.id,
            heartbeat_ttl_ms: dispatcher.ttl().as_millis() as u64,
        })),
        Outcome::Rejected { code, message } => Err(ApiError::rejected(&code, message)),
        other => Err(ApiError::internal(format!(
            "registering a node answered {other:?}"
        ))),
    }
}

async fn heartbeat(
    Extension(dispatcher): Extension<Arc<Dispatcher>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HeartbeatAck>, Response> {
    dispatcher
        .require_leader()
        .map_err(IntoResponse::into_response)?;
    let heartbeat: Heartbeat = json(body).map_err(IntoResponse::into_response)?;
    acl::check_node_secret(&dispatcher.manager, &headers, &heartbeat.node_id)
        .await
        .map_err(IntoResponse::into_response)?;
    let (status, updates) = {
        let state = dispatcher.manager.state.read();
        let Some(node) = state.nodes.by_id.get(&heartbeat.node_id) else {
            return Err(unknown_node(&heartbeat.node_id));
        };
        // Reports about allocations of other nodes (or gone) are dropped.
        let updates: Vec<AllocationUpdate> = heartbeat
            .updates
            .into_iter()
            .filter(|u| {
                state
                    .allocations
                    .by_id
                    .get(&u.id)
                    .is_some_and(|a| a.node_id == node.id)
            })
            .map(|u| AllocationUpdate {
                id: u.id,
                client_state: u.client_state,
                health: u.health,
                restart_count: u.restart_count,
                message: u.message,
            })
            .collect();
        (node.status, updates)
    };
    let ttl = dispatcher.heard_from(&heartbeat.node_id, status, Instant::now());
    if !updates.is_empty() {
        let unavailable = |message: String| ApiError::no_quorum(message).into_response();
        let answer = dispatcher.reports.enqueue(updates).map_err(unavailable)?;
        match tokio::time::timeout(REPORT_COMMIT_WAIT, answer).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(reason))) => {
                return Err(unavailable(format!(
                    "the status updates were not committed ({reason}); send them again"
                )))
            }
            Ok(Err(_)) => return Err(unavailable("the status batcher stopped".into())),
            Err(_) => {
                return Err(unavailable(format!(
                    "the status updates were not committed within {REPORT_COMMIT_WAIT:?}; \
                     send them again"
                )))
            }
        }
    }
    Ok(Json(HeartbeatAck {
        heartbeat_ttl_ms: ttl.as_millis() as u64,
    }))
}

#[derive(Deserialize)]
struct SessionQuery {
    node: String,
}

async fn session(
    Extension(dispatcher): Extension<Arc<Dispatcher>>,
    headers: HeaderMap,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Response {
    let term = match dispatcher.require_leader() {
        Ok(term) => term,
        Err(not_leader) => return not_leader.into_response(),
    };
    let node_id = match query {
        Ok(Query(query)) => query.node,
        Err(e) => return ApiError::bad_request(format!("expected ?node=ID: {e}")).into_response(),
    };
    if let Err(refused) = acl::check_node_secret(&dispatcher.manager, &headers, &node_id).await {
        return refused.into_response();
    }
    let status = match dispatcher.manager.state.read().nodes.by_id.get(&node_id) {
        Some(node) => node.status,
        None => return unknown_node(&node_id),
    };
    dispatcher.heard_from(&node_id, status, Instant::now());
    super::session::open(dispatcher, node_id, term)
}

impl Dispatcher {
    /// This manager's term while it leads; else why not.
    fn require_leader(&self) -> Result<u64, NotLeader> {
        if let Some(term) = *self.leading.borrow() {
            return Ok(term);
        }
        match self.manager.leader() {
            Some(leader) if leader.id != self.manager.id => Err(NotLeader::Elsewhere(leader)),
            _ => Err(NotLeader::Unknown),
        }
    }
}

/// A leader-only route reached another manager.
enum NotLeader {
    Elsewhere(LeaderRef),
    /// No leader is known (an election).
    Unknown,
}

/// `421` naming the leader (body and header), or `503` while no leader is known.
impl IntoResponse for NotLeader {
    fn into_response(self) -> Response {
        let leader = match self {
            NotLeader::Elsewhere(leader) => leader,
            NotLeader::Unknown => {
                return ApiError::no_quorum(
                    "no leader is known (an election is under way?); retry shortly",
                )
                .into_response()
            }
        };
        let addr = HeaderValue::from_str(&leader.addr).ok();
        let body = NotLeaderBody {
            error: ErrorDetail {
                code: codes::NOT_LEADER.to_string(),
                message: format!(
                    "this manager is not the leader; agents talk to manager {} at {}",
                    leader.id, leader.addr
                ),
                field: None,
            },
            leader: Some(leader),
        };
        let mut response = (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response();
        if let Some(addr) = addr {
            response.headers_mut().insert(LEADER_HEADER, addr);
        }
        response
    }
}

fn unknown_node(id: &str) -> Response {
    ApiError::not_found(format!("no node with id `{id}`; register it first")).into_response()
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        let mut error = ApiError::bad_request(format!(
            "name: `{name}` must be 1-253 characters of letters, digits, `-`, `_` or `.`"
        ));
        error.field = Some("name".into());
        Err(error)
    }
}
