//! `GET /v1/allocations/{id}/logs`: a task's logs, streamed through any manager.
//!
//! Unlike the other calls the answer is not JSON and is not read whole: it is plain text
//! that, with `follow`, lasts as long as the task runs. The call hands back the response
//! with its body unread; read it with `chunk()` as it comes.

use std::time::Duration;

use super::{error, error_chain, Call, Client, ClientError};

/// The whole-request timeout of a followed log stream (reqwest counts the body too): long,
/// since it lasts as long as the task runs.
const FOLLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// `?task=&follow=&tail=&stream=` of the logs call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsQuery {
    /// The task; may be left out when the allocation has a single task.
    pub task: Option<String>,
    /// Keep the stream open and send new output until the task exits.
    pub follow: bool,
    /// Only the last N lines of what was written so far.
    pub tail: Option<usize>,
    /// `stdout`, `stderr` or `all` (the default).
    pub stream: Option<String>,
}

impl LogsQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(task) = &self.task {
            pairs.push(("task", task.clone()));
        }
        if self.follow {
            pairs.push(("follow", "true".to_string()));
        }
        if let Some(tail) = self.tail {
            pairs.push(("tail", tail.to_string()));
        }
        if let Some(stream) = &self.stream {
            pairs.push(("stream", stream.clone()));
        }
        pairs
    }
}

impl Client {
    /// `GET /v1/allocations/{id}/logs`: a 2xx response with its body (plain text) unread,
    /// or the manager's (or the agent's) error.
    pub async fn allocation_logs(
        &self,
        id: &str,
        query: &LogsQuery,
    ) -> Result<reqwest::Response, ClientError> {
        let pairs = query.pairs();
        let query_refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = ["v1", "allocations", id, "logs"];
        let call = Call::get(&path).query(&query_refs);
        let timeout = query.follow.then_some(FOLLOW_REQUEST_TIMEOUT);
        self.streaming(&call, timeout).await
    }

    /// Like `call`, moving on to the next manager while connections are refused, but
    /// returns a 2xx response with its body unread.
    pub(super) async fn streaming(
        &self,
        call: &Call<'_>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let (base, response) = self.send(call, timeout).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(format!("{base}: {}", error_chain(&e))))?;
        Err(error::api_error(status.as_u16(), &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{codes, ErrorBody};
    use axum::extract::{Path, RawQuery};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::Json;

    const BOUND: Duration = Duration::from_secs(10);

    /// Echoes the query of `a1`; any other allocation is unknown.
    async fn logs(Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
        if id != "a1" {
            let body = ErrorBody::new(codes::NOT_FOUND, format!("no allocation with id `{id}`"));
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
        format!("query={}\n", query.unwrap_or_default()).into_response()
    }

    async fn manager() -> String {
        let app = axum::Router::new().route("/v1/allocations/{id}/logs", axum::routing::get(logs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn sends_the_query_and_returns_the_unread_body() {
        let client = Client::new([manager().await], None).unwrap();
        let query = LogsQuery {
            task: Some("web".into()),
            follow: true,
            tail: Some(20),
            stream: Some("stderr".into()),
        };
        let response = tokio::time::timeout(BOUND, client.allocation_logs("a1", &query))
            .await
            .unwrap()
            .unwrap();
        let text = tokio::time::timeout(BOUND, response.text())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text, "query=task=web&follow=true&tail=20&stream=stderr\n");

        let response = client
            .allocation_logs("a1", &LogsQuery::default())
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "query=\n");
    }

    #[tokio::test]
    async fn maps_error_answers() {
        let client = Client::new([manager().await], None).unwrap();
        let error =
            tokio::time::timeout(BOUND, client.allocation_logs("nope", &LogsQuery::default()))
                .await
                .unwrap()
                .unwrap_err();
        assert!(error.is_not_found(), "{error}");
        assert_eq!(error.status(), Some(404));
    }
}
