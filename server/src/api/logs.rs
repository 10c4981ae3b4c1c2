//! `GET /v1/allocations/{id}/logs`: a task's logs, proxied from its node's agent.
//!
//! Logs never enter the replicated state: they stay on the node, and the agent serves
//! them on its own small HTTP endpoint (`agent_addr`, sent when it registers). Any
//! manager can answer: it finds the allocation's node in its local replica (a node's
//! address changes rarely, so a stale read is good enough), forwards the query to that
//! agent and streams the answer back as it comes, without buffering, so `follow=true`
//! works through the manager.

use super::error::ApiError;
use crate::manager::Manager;
use crate::state::State as ClusterView;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gantry_api::error::codes;
use std::sync::Arc;
use std::time::Duration;

/// How long the agent may take to start answering (the body may then stream for as long
/// as the task's logs are followed).
const AGENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The query the agent reads (`agent/src/logs_http.rs`); the manager passes it on as it
/// came, so this type only documents it.
#[allow(dead_code)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Which task of the allocation; needed when it has several.
    task: Option<String>,
    /// Keep the answer open and send new output as it comes.
    #[param(schema_with = super::openapi::flag_schema)]
    follow: Option<String>,
    /// Only the last N lines.
    #[param(minimum = 0)]
    tail: Option<u64>,
    /// Which output stream (default `all`).
    #[param(value_type = Option<String>, pattern = "^(stdout|stderr|all)?$")]
    stream: Option<String>,
}

/// The agent serving an allocation's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentTarget {
    node_id: String,
    /// `host:port` of the agent's endpoint.
    addr: String,
}

/// A task's logs, read from the agent of the allocation's node.
#[utoipa::path(
    get,
    path = "/v1/allocations/{id}/logs",
    operation_id = "allocation_logs",
    tag = "allocations",
    params(("id" = String, Path, description = "The allocation's id"), LogsQuery),
    responses(
        (status = 200, description = "The task's output as plain text, streamed (and followed with `follow=true`)", content_type = "text/plain", body = String),
        (status = 400, description = "A bad query parameter, or no `task` for an allocation of several tasks", body = gantry_api::ErrorBody),
        (status = 404, description = "No such allocation (or task) here or on its node", body = gantry_api::ErrorBody),
        (status = 409, description = "The node's agent serves no logs (it registered without an agent address)", body = gantry_api::ErrorBody),
        (status = 500, description = "The node's driver could not read the logs", body = gantry_api::ErrorBody),
        (status = 502, description = "The node's agent could not be reached (`agent_unreachable`)", body = gantry_api::ErrorBody),
    )
)]
pub async fn get(
    State(manager): State<Arc<Manager>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let agent = agent_of(&manager, &id)?;
    tracing::debug!(alloc_id = %id, node = %agent.node_id, agent = %agent.addr, "proxying task logs");
    proxy(&manager.peer_client, &agent, &id, query.as_deref()).await
}

fn agent_of(manager: &Manager, alloc_id: &str) -> Result<AgentTarget, ApiError> {
    let state = manager.state.read();
    resolve_agent(&state, alloc_id)
}

/// The agent of the node the allocation is placed on.
fn resolve_agent(state: &ClusterView, alloc_id: &str) -> Result<AgentTarget, ApiError> {
    let allocation = state
        .allocations
        .by_id
        .get(alloc_id)
        .ok_or_else(|| ApiError::not_found(format!("no allocation with id `{alloc_id}`")))?;
    let node_id = &allocation.node_id;
    let node = state.nodes.by_id.get(node_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "allocation `{alloc_id}` is placed on node `{node_id}`, which is no longer known"
        ))
    })?;
    let addr = node.agent_addr.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            format!(
                "node `{node_id}` has no agent endpoint (its agent registered without \
                 agent_addr), so the logs of allocation `{alloc_id}` cannot be read through \
                 the managers"
            ),
        )
    })?;
    Ok(AgentTarget {
        node_id: node_id.clone(),
        addr,
    })
}

/// Sends the logs request to the agent and relays its answer, error answers included
/// (the agent speaks the same JSON error body).
async fn proxy(
    client: &reqwest::Client,
    agent: &AgentTarget,
    alloc_id: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let url = agent_logs_url(agent, alloc_id, query)?;
    let answer = match tokio::time::timeout(AGENT_ANSWER_TIMEOUT, client.get(url).send()).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(agent_unreachable(agent, &error_chain(&e))),
        Err(_) => {
            let reason = format!("no answer within {}s", AGENT_ANSWER_TIMEOUT.as_secs());
            return Err(agent_unreachable(agent, &reason));
        }
    };
    Ok(relay(answer))
}

/// `http://{agent_addr}/v1/agent/allocations/{id}/logs?{query}`, the id percent-encoded.
fn agent_logs_url(
    agent: &AgentTarget,
    alloc_id: &str,
    query: Option<&str>,
) -> Result<reqwest::Url, ApiError> {
    let base = if agent.addr.contains("://") {
        agent.addr.clone()
    } else {
        format!("http://{}", agent.addr)
    };
    let mut url = reqwest::Url::parse(&base)
        .ok()
        .filter(|url| !url.cannot_be_a_base())
        .ok_or_else(|| agent_unreachable(agent, "the node's agent_addr is not a valid address"))?;
    url.path_segments_mut()
        .expect("checked to be a base URL")
        .clear()
        .extend(["v1", "agent", "allocations", alloc_id, "logs"]);
    url.set_query(query.filter(|q| !q.is_empty()));
    Ok(url)
}

/// The agent's status, content type and body, the body streamed chunk by chunk.
fn relay(answer: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok());
    let mut response = (status, Body::from_stream(body_stream(answer))).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// The answer's body as a stream; a failure mid-body cuts the relayed body off too.
fn body_stream(
    answer: reqwest::Response,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(answer))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "the agent's log stream broke off");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    })
}

fn agent_unreachable(agent: &AgentTarget, reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        codes::AGENT_UNREACHABLE,
        format!(
            "cannot reach the agent of node `{}` at {}: {reason}",
            agent.node_id, agent.addr
        ),
    )
}

/// An error and its causes, `a: b: c` (reqwest's own message rarely says what happened).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::RawQuery;
    use futures::StreamExt;
    use gantry_api::{
        Allocation, ClientState, Eligibility, ErrorBody, Node, NodeStatus, PortRange, Resources,
    };
    use tokio::sync::oneshot;

    const BOUND: Duration = Duration::from_secs(10);

    fn node(id: &str, agent_addr: Option<&str>) -> Node {
        Node {
            id: id.into(),
            name: id.into(),
            address: "127.0.0.1".into(),
            resources: Resources {
                cpu_millis: 1000,
                memory_mb: 1024,
            },
            port_range: PortRange::default(),
            labels: Default::default(),
            drivers: vec!["docker".into()],
            agent_addr: agent_addr.map(str::to_string),
            status: NodeStatus::Ready,
            eligibility: Eligibility::Eligible,
            drain: false,
            registered_at_ms: 0,
            status_changed_at_ms: 0,
            create_index: 1,
            modify_index: 1,
        }
    }

    fn allocation(id: &str, node_id: &str) -> Allocation {
        let resources = Resources {
            cpu_millis: 100,
            memory_mb: 64,
        };
        Allocation {
            client_state: ClientState::Running,
            create_index: 2,
            modify_index: 2,
            ..Allocation::new(id, "web", 1, 0, node_id, resources)
        }
    }

    fn state() -> ClusterView {
        let mut state = ClusterView::default();
        for node in [node("n1", Some("10.0.0.1:4647")), node("n2", None)] {
            state.nodes.by_id.insert(node.id.clone(), node);
        }
        for alloc in [
            allocation("a1", "n1"),
            allocation("a2", "n2"),
            allocation("a3", "gone"),
        ] {
            state.allocations.by_id.insert(alloc.id.clone(), alloc);
        }
        state
    }

    fn target(addr: &str) -> AgentTarget {
        AgentTarget {
            node_id: "n1".into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn finds_the_agent_of_the_allocations_node() {
        assert_eq!(
            resolve_agent(&state(), "a1").unwrap(),
            target("10.0.0.1:4647")
        );
    }

    #[test]
    fn unknown_allocation_or_node_is_404_and_no_agent_addr_is_409() {
        let state = state();
        let error = resolve_agent(&state, "nope").unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (StatusCode::NOT_FOUND, codes::NOT_FOUND)
        );

        let error = resolve_agent(&state, "a3").unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (StatusCode::NOT_FOUND, codes::NOT_FOUND)
        );
        assert!(error.message.contains("node `gone`"), "{}", error.message);

        let error = resolve_agent(&state, "a2").unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (StatusCode::CONFLICT, codes::CONFLICT)
        );
        assert!(
            error.message.contains("no agent endpoint"),
            "{}",
            error.message
        );
    }

    #[test]
    fn the_agent_url_carries_the_encoded_id_and_the_query() {
        let url = agent_logs_url(&target("10.0.0.1:4647"), "a/1", Some("task=web&tail=5")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://10.0.0.1:4647/v1/agent/allocations/a%2F1/logs?task=web&tail=5"
        );
        let url = agent_logs_url(&target("http://h:1"), "a1", None).unwrap();
        assert_eq!(url.as_str(), "http://h:1/v1/agent/allocations/a1/logs");
    }

    /// A stand-in agent: `a1` answers its query and path in a first chunk, then waits for
    /// `release` before the last chunk; anything else is the agent's 404.
    async fn fake_agent(release: oneshot::Receiver<()>) -> String {
        use axum::routing::get;
        let release = Arc::new(std::sync::Mutex::new(Some(release)));
        let logs = move |Path(id): Path<String>, RawQuery(query): RawQuery| {
            let release = release.lock().unwrap().take();
            async move {
                if id != "a1" {
                    let body = ErrorBody::new(codes::NOT_FOUND, "no allocation `x` here");
                    return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
                }
                let first = format!("id={id} query={}\n", query.unwrap_or_default());
                let last = futures::stream::once(async move {
                    if let Some(release) = release {
                        let _ = release.await;
                    }
                    Ok::<_, std::io::Error>(Bytes::from_static(b"last line\n"))
                });
                let body = futures::stream::once(async move { Ok(Bytes::from(first)) }).chain(last);
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    Body::from_stream(body),
                )
                    .into_response()
            }
        };
        let app = axum::Router::new().route("/v1/agent/allocations/{id}/logs", get(logs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn next_chunk(body: &mut axum::body::BodyDataStream) -> Option<Bytes> {
        tokio::time::timeout(BOUND, body.next())
            .await
            .expect("a chunk in time")
            .map(|chunk| chunk.unwrap())
    }

    #[tokio::test]
    async fn streams_the_agents_answer_without_waiting_for_its_end() {
        let (release, released) = oneshot::channel();
        let agent = target(&fake_agent(released).await);
        let client = reqwest::Client::new();
        let response = proxy(&client, &agent, "a1", Some("follow=true&stream=stderr"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let mut body = response.into_body().into_data_stream();
        // The first chunk arrives while the agent still holds back the rest.
        assert_eq!(
            next_chunk(&mut body).await.unwrap(),
            "id=a1 query=follow=true&stream=stderr\n"
        );
        release.send(()).unwrap();
        assert_eq!(next_chunk(&mut body).await.unwrap(), "last line\n");
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[tokio::test]
    async fn the_agents_errors_are_relayed() {
        let (_release, released) = oneshot::channel();
        let agent = target(&fake_agent(released).await);
        let response = proxy(&reqwest::Client::new(), &agent, "zz", None)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let mut body = response.into_body().into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = next_chunk(&mut body).await {
            bytes.extend_from_slice(&chunk);
        }
        let error: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error.code(), codes::NOT_FOUND);
    }

    #[tokio::test]
    async fn an_unreachable_agent_is_502() {
        let closed = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let error = tokio::time::timeout(
            BOUND,
            proxy(&reqwest::Client::new(), &target(&closed), "a1", None),
        )
        .await
        .expect("an answer in time")
        .unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (StatusCode::BAD_GATEWAY, codes::AGENT_UNREACHABLE)
        );
        assert!(error.message.contains(&closed), "{}", error.message);
    }
}
