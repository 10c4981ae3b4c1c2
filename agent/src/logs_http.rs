//! The agent's own small HTTP endpoint: a task's logs, for the managers.
//!
//! Task output stays on the node (in the engine, or in the allocation's directory); an
//! operator asks any manager (`GET /v1/allocations/{id}/logs`), and that manager proxies
//! the request here, to the agent of the allocation's node. The answer is plain text,
//! streamed chunk by chunk as the driver yields it, so `follow=true` works end to end.
//! Errors use Gantry's usual JSON error body.

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use gantry_api::error::{codes, ErrorBody};
use serde::Deserialize;
use tokio::sync::watch;

use crate::driver::{Driver, DriverError, LogStream, TaskHandle};

/// The route the managers call.
pub const LOGS_ROUTE: &str = "/v1/agent/allocations/{id}/logs";

/// Finds the task whose logs are asked for, among what this agent runs.
pub trait TaskLookup: Send + Sync + 'static {
    /// The driver and handle of `task` of allocation `alloc_id`; `task` may be left out
    /// when the allocation has a single task.
    fn find(
        &self,
        alloc_id: &str,
        task: Option<&str>,
    ) -> Result<(Arc<dyn Driver>, TaskHandle), LookupError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no allocation with this id runs on this node")]
    UnknownAllocation,
    #[error("the allocation has no task named `{0}`")]
    UnknownTask(String),
    #[error("the allocation has several tasks ({}); name one with ?task=", .0.join(", "))]
    TaskRequired(Vec<String>),
}

/// Serves the logs route until `shutdown` resolves. Log streams still open then (a
/// `follow=true` reader) are ended so the server can stop.
pub async fn serve(
    listener: tokio::net::TcpListener,
    lookup: Arc<dyn TaskLookup>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let app = build_router(lookup, stopped);
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
}

/// The logs route alone (streams end only when the driver's stream ends).
pub fn router(lookup: Arc<dyn TaskLookup>) -> Router {
    let (_never_sent, stopped) = watch::channel(false);
    build_router(lookup, stopped)
}

#[derive(Clone)]
struct AppState {
    lookup: Arc<dyn TaskLookup>,
    /// Becomes `true` when the server shuts down.
    stopped: watch::Receiver<bool>,
}

fn build_router(lookup: Arc<dyn TaskLookup>, stopped: watch::Receiver<bool>) -> Router {
    Router::new()
        .route(LOGS_ROUTE, get(logs))
        .with_state(AppState { lookup, stopped })
}

/// `?task=&follow=&tail=&stream=` as sent; checked by [`LogsRequest::parse`].
#[derive(Debug, Default, Deserialize)]
struct RawLogsQuery {
    task: Option<String>,
    follow: Option<String>,
    tail: Option<String>,
    stream: Option<String>,
}

/// Which of the task's output streams to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFilter {
    Stdout,
    Stderr,
    All,
}

impl StreamFilter {
    fn admits(self, stream: LogStream) -> bool {
        match self {
            StreamFilter::All => true,
            StreamFilter::Stdout => stream == LogStream::Stdout,
            StreamFilter::Stderr => stream == LogStream::Stderr,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct LogsRequest {
    task: Option<String>,
    follow: bool,
    tail: Option<usize>,
    stream: StreamFilter,
}

impl LogsRequest {
    fn parse(raw: RawLogsQuery) -> Result<Self, LogsError> {
        let follow = match raw.follow.as_deref() {
            None | Some("false") | Some("0") => false,
            Some("") | Some("true") | Some("1") => true,
            Some(other) => {
                return Err(LogsError::BadQuery(format!(
                    "follow: expected true or false, got `{other}`"
                )))
            }
        };
        let tail = match raw.tail.as_deref() {
            None | Some("") => None,
            Some(text) => Some(text.parse::<usize>().map_err(|_| {
                LogsError::BadQuery(format!("tail: expected a number of lines, got `{text}`"))
            })?),
        };
        let stream = match raw.stream.as_deref() {
            None | Some("") | Some("all") => StreamFilter::All,
            Some("stdout") => StreamFilter::Stdout,
            Some("stderr") => StreamFilter::Stderr,
            Some(other) => {
                return Err(LogsError::BadQuery(format!(
                    "stream: expected stdout, stderr or all, got `{other}`"
                )))
            }
        };
        let task = raw.task.filter(|t| !t.is_empty());
        Ok(LogsRequest {
            task,
            follow,
            tail,
            stream,
        })
    }
}

/// Why a logs request was refused.
#[derive(Debug, thiserror::Error)]
enum LogsError {
    #[error("{0}")]
    BadQuery(String),
    #[error("allocation `{id}`: {source}")]
    Lookup { id: String, source: LookupError },
    #[error("allocation `{id}`: cannot read the task's logs: {source}")]
    Driver { id: String, source: DriverError },
}

impl LogsError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            LogsError::BadQuery(_)
            | LogsError::Lookup {
                source: LookupError::TaskRequired(_),
                ..
            } => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            LogsError::Lookup { .. }
            | LogsError::Driver {
                source: DriverError::NotFound(_),
                ..
            } => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            LogsError::Driver { .. } => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl IntoResponse for LogsError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

async fn logs(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<RawLogsQuery>, QueryRejection>,
) -> Result<Response, LogsError> {
    let Query(raw) = query.map_err(|e| LogsError::BadQuery(e.body_text()))?;
    let request = LogsRequest::parse(raw)?;
    let (driver, handle) = app
        .lookup
        .find(&id, request.task.as_deref())
        .map_err(|source| LogsError::Lookup {
            id: id.clone(),
            source,
        })?;
    let chunks = driver
        .logs(&handle, request.follow, request.tail)
        .await
        .map_err(|source| LogsError::Driver {
            id: id.clone(),
            source,
        })?;
    tracing::debug!(alloc_id = %id, task = ?request.task, follow = request.follow, "streaming task logs");
    let body = filtered(chunks, request.stream, id).take_until(stopped(app.stopped));
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response())
}

/// The chunks of the streams asked for. A driver error ends the body abruptly (the
/// reader sees a cut-off answer, not an error text mixed into the logs).
fn filtered(
    chunks: crate::driver::LogChunks,
    filter: StreamFilter,
    alloc_id: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    chunks.filter_map(move |chunk| {
        let item = match chunk {
            Ok((stream, bytes)) => filter.admits(stream).then_some(Ok(bytes)),
            Err(e) => {
                tracing::warn!(%alloc_id, error = %e, "task log stream failed");
                Some(Err(std::io::Error::other(e.to_string())))
            }
        };
        futures::future::ready(item)
    })
}

/// Resolves once the server shuts down; never if it is not asked to.
async fn stopped(mut stopped: watch::Receiver<bool>) {
    if stopped.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{Exit, FoundTask, LogChunks, TaskLaunch};
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::sync::oneshot;

    const BOUND: Duration = Duration::from_secs(10);

    /// A driver whose logs are a fixed list of chunks; with `follow`, the stream then
    /// stays open (a task still running). Records what it was asked.
    struct FakeLogDriver {
        chunks: Vec<(LogStream, &'static str)>,
        asked: Mutex<Vec<(bool, Option<usize>)>>,
    }

    #[async_trait::async_trait]
    impl Driver for FakeLogDriver {
        fn name(&self) -> &'static str {
            "fake"
        }
        async fn available(&self) -> bool {
            true
        }
        async fn start(&self, _: &TaskLaunch) -> Result<TaskHandle, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
        async fn wait(&self, _: &TaskHandle) -> Result<Exit, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
        async fn stop(&self, _: &TaskHandle, _: Duration) -> Result<(), DriverError> {
            Ok(())
        }
        async fn remove(&self, _: &TaskHandle) -> Result<(), DriverError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<FoundTask>, DriverError> {
            Ok(vec![])
        }
        async fn exec(
            &self,
            _: &TaskHandle,
            _: &[String],
            _: Duration,
        ) -> Result<i64, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
        async fn logs(
            &self,
            handle: &TaskHandle,
            follow: bool,
            tail: Option<usize>,
        ) -> Result<LogChunks, DriverError> {
            if handle.id == "gone" {
                return Err(DriverError::NotFound(handle.id.clone()));
            }
            self.asked.lock().unwrap().push((follow, tail));
            let chunks: Vec<_> = self
                .chunks
                .iter()
                .map(|(stream, text)| Ok((*stream, Bytes::from_static(text.as_bytes()))))
                .collect();
            let written = futures::stream::iter(chunks);
            if follow {
                Ok(Box::pin(written.chain(futures::stream::pending())))
            } else {
                Ok(Box::pin(written))
            }
        }
    }

    /// Allocation `a1` has one task (`web`), `a2` has two, `a3`'s task is gone from the
    /// engine.
    struct FakeLookup {
        driver: Arc<FakeLogDriver>,
    }

    impl TaskLookup for FakeLookup {
        fn find(
            &self,
            alloc_id: &str,
            task: Option<&str>,
        ) -> Result<(Arc<dyn Driver>, TaskHandle), LookupError> {
            let (tasks, id): (&[&str], &str) = match alloc_id {
                "a1" => (&["web"], "c1"),
                "a2" => (&["web", "sidecar"], "c2"),
                "a3" => (&["web"], "gone"),
                _ => return Err(LookupError::UnknownAllocation),
            };
            let task = match task {
                Some(name) if tasks.contains(&name) => name,
                Some(name) => return Err(LookupError::UnknownTask(name.to_string())),
                None if tasks.len() == 1 => tasks[0],
                None => {
                    return Err(LookupError::TaskRequired(
                        tasks.iter().map(|t| t.to_string()).collect(),
                    ))
                }
            };
            let id = if id == "gone" {
                id.to_string()
            } else {
                format!("{id}-{task}")
            };
            let handle = TaskHandle { driver: "fake", id };
            let driver: Arc<dyn Driver> = self.driver.clone();
            Ok((driver, handle))
        }
    }

    struct Agent {
        base: String,
        driver: Arc<FakeLogDriver>,
        stop: Option<oneshot::Sender<()>>,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start_agent() -> Agent {
        let driver = Arc::new(FakeLogDriver {
            chunks: vec![
                (LogStream::Stdout, "hello\n"),
                (LogStream::Stderr, "oops\n"),
                (LogStream::Stdout, "bye\n"),
            ],
            asked: Mutex::new(vec![]),
        });
        let lookup = Arc::new(FakeLookup {
            driver: driver.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, lookup, async {
            let _ = stopped.await;
        }));
        Agent {
            base,
            driver,
            stop: Some(stop),
            server,
        }
    }

    async fn get(agent: &Agent, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}{path_and_query}", agent.base);
        tokio::time::timeout(BOUND, reqwest::get(&url))
            .await
            .expect("an answer in time")
            .expect("the agent answers")
    }

    async fn text(response: reqwest::Response) -> String {
        tokio::time::timeout(BOUND, response.text())
            .await
            .expect("the whole body in time")
            .unwrap()
    }

    async fn error_code(response: reqwest::Response) -> (u16, String, String) {
        let status = response.status().as_u16();
        let body: ErrorBody = serde_json::from_str(&text(response).await).unwrap();
        (status, body.error.code, body.error.message)
    }

    #[tokio::test]
    async fn streams_every_chunk_as_plain_text() {
        let agent = start_agent().await;
        let response = get(&agent, "/v1/agent/allocations/a1/logs?tail=10").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE.as_str()],
            "text/plain; charset=utf-8"
        );
        assert_eq!(text(response).await, "hello\noops\nbye\n");
        assert_eq!(*agent.driver.asked.lock().unwrap(), vec![(false, Some(10))]);
    }

    #[tokio::test]
    async fn filters_one_stream() {
        let agent = start_agent().await;
        let stderr = get(
            &agent,
            "/v1/agent/allocations/a2/logs?task=sidecar&stream=stderr",
        )
        .await;
        assert_eq!(text(stderr).await, "oops\n");
        let stdout = get(&agent, "/v1/agent/allocations/a1/logs?stream=stdout").await;
        assert_eq!(text(stdout).await, "hello\nbye\n");
    }

    #[tokio::test]
    async fn unknown_allocations_and_tasks_are_404() {
        let agent = start_agent().await;
        let (status, code, message) =
            error_code(get(&agent, "/v1/agent/allocations/nope/logs").await).await;
        assert_eq!((status, code.as_str()), (404, codes::NOT_FOUND));
        assert!(message.contains("`nope`"), "{message}");

        let (status, code, message) =
            error_code(get(&agent, "/v1/agent/allocations/a1/logs?task=db").await).await;
        assert_eq!((status, code.as_str()), (404, codes::NOT_FOUND));
        assert!(message.contains("no task named `db`"), "{message}");

        let (status, code, _) =
            error_code(get(&agent, "/v1/agent/allocations/a3/logs").await).await;
        assert_eq!((status, code.as_str()), (404, codes::NOT_FOUND));
    }

    #[tokio::test]
    async fn bad_queries_and_ambiguous_tasks_are_400() {
        let agent = start_agent().await;
        let (status, code, message) =
            error_code(get(&agent, "/v1/agent/allocations/a2/logs").await).await;
        assert_eq!((status, code.as_str()), (400, codes::BAD_REQUEST));
        assert!(
            message.contains("several tasks (web, sidecar)"),
            "{message}"
        );

        for (query, expected) in [
            ("tail=many", "tail: expected a number of lines, got `many`"),
            ("follow=yes", "follow: expected true or false, got `yes`"),
            (
                "stream=both",
                "stream: expected stdout, stderr or all, got `both`",
            ),
        ] {
            let response = get(&agent, &format!("/v1/agent/allocations/a1/logs?{query}")).await;
            let (status, code, message) = error_code(response).await;
            assert_eq!(
                (status, code.as_str()),
                (400, codes::BAD_REQUEST),
                "{query}"
            );
            assert_eq!(message, expected);
        }
    }

    #[tokio::test]
    async fn a_followed_stream_ends_when_the_agent_shuts_down() {
        let mut agent = start_agent().await;
        let mut response = get(&agent, "/v1/agent/allocations/a1/logs?follow=true").await;
        let mut received = Vec::new();
        while received.len() < "hello\noops\nbye\n".len() {
            let chunk = tokio::time::timeout(BOUND, response.chunk())
                .await
                .expect("a chunk in time")
                .unwrap()
                .expect("the stream is still open");
            received.extend_from_slice(&chunk);
        }
        assert_eq!(*agent.driver.asked.lock().unwrap(), vec![(true, None)]);

        agent.stop.take().unwrap().send(()).unwrap();
        let rest = tokio::time::timeout(BOUND, response.chunk())
            .await
            .expect("the stream ends in time");
        assert!(matches!(rest, Ok(None)), "{rest:?}");
        tokio::time::timeout(BOUND, agent.server)
            .await
            .expect("the server stops in time")
            .unwrap()
            .unwrap();
    }
}
