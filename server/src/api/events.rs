//! `GET /v1/events?index=N&topic=a,b`: the committed changes after index N as server-sent
//! events, then the changes as they commit (see `gantry_api::events` for the format and
//! `crate::events` for what is kept).
//!
//! - `index` absent: only changes from now on. `index=N`: every held change with an index
//!   above N first. If N is below the oldest index this manager can serve (it keeps the
//!   newest changes only, and none from before it last loaded its state whole), the only
//!   message is `event: truncated` with `{"oldest_index"}`, and the stream ends.
//! - `topic`: a comma-separated list of topics; an unknown one is `400`.
//! - A reader that falls behind the buffer gets `truncated` too, and its stream ends:
//!   memory stays bounded whatever the readers do.
//! - Answered from this manager's replica (no quorum needed, not linearizable); a
//!   comment line every [`KEEP_ALIVE`] keeps idle connections open through proxies.

use super::error::ApiError;
use crate::events::{Follower, Gone, Held, Next};
use crate::manager::Manager;
use axum::extract::{Query, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use gantry_api::events::{Topic, Truncated, TRUNCATED};
use serde::Deserialize;
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle stream sends a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?index=&topic=`, read as text so a bad value gets the usual JSON error.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Send the held changes after this log index first (absent: from now on).
    #[param(value_type = Option<u64>)]
    pub index: Option<String>,
    /// Comma-separated topics to keep (`job,node`); all when absent.
    pub topic: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "events",
    tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "Server-sent events: `id: <index>`, `event: <topic>`, `data:` an Event; or one `event: truncated` with a Truncated and the end", content_type = "text/event-stream", body = gantry_api::events::Event),
        (status = 400, description = "A bad `index` or an unknown topic", body = gantry_api::ErrorBody),
    )
)]
pub async fn stream(
    State(manager): State<Arc<Manager>>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let index = match query.index.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            field_error(
                "index",
                format!("index: `{text}` is not a log index (a number)"),
            )
        })?),
    };
    let topics = match query.topic.as_deref() {
        None => None,
        Some(text) => {
            let topics = Topic::parse_list(text).map_err(|e| field_error("topic", e))?;
            (!topics.is_empty()).then(|| topics.into_iter().collect::<BTreeSet<_>>())
        }
    };
    Ok(respond(manager.state.events.follow(index, topics)))
}

/// The SSE response of a reader (or of a start that is already truncated).
fn respond(follow: Result<Follower, Gone>) -> Response {
    let messages = match follow {
        Ok(follower) => Messages::Following {
            follower,
            ready: VecDeque::new(),
        },
        Err(Gone(oldest_index)) => Messages::Ending(Some(oldest_index)),
    };
    let stream = futures::stream::unfold(messages, |mut messages| async move {
        let message = messages.next().await?;
        Some((Ok::<_, Infallible>(message), messages))
    });
    let keep_alive = KeepAlive::new().interval(KEEP_ALIVE);
    axum::response::Sse::new(stream)
        .keep_alive(keep_alive)
        .into_response()
}

fn field_error(field: &str, message: String) -> ApiError {
    let mut error = ApiError::bad_request(message);
    error.field = Some(field.to_string());
    error
}

/// The SSE messages of one stream.
enum Messages {
    Following {
        follower: Follower,
        ready: VecDeque<Held>,
    },
    /// A `truncated` message to send (if any), then the end.
    Ending(Option<u64>),
}

impl Messages {
    async fn next(&mut self) -> Option<Sse> {
        loop {
            match self {
                Messages::Ending(oldest) => return oldest.take().map(truncated),
                Messages::Following { follower, ready } => {
                    if let Some(held) = ready.pop_front() {
                        return Some(
                            Sse::default()
                                .id(held.index.to_string())
                                .event(held.topic.as_str())
                                .data(&*held.data),
                        );
                    }
                    match follower.next().await {
                        Next::Changes(changes) => ready.extend(changes),
                        Next::Truncated(oldest) => *self = Messages::Ending(Some(oldest)),
                        Next::Closed => *self = Messages::Ending(None),
                    }
                }
            }
        }
    }
}

fn truncated(oldest_index: u64) -> Sse {
    let data = serde_json::to_string(&Truncated { oldest_index }).expect("serialises");
    Sse::default().event(TRUNCATED).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventLog;
    use gantry_raft_store::Writes;

    fn record(log: &EventLog, index: u64, key: &str) {
        let mut writes = Writes::default();
        let mark = EventLog::mark(&writes);
        writes.put(key, "{}");
        log.record_writes(index, &writes, mark);
    }

    async fn body(response: Response) -> String {
        let bytes = tokio::time::timeout(
            Duration::from_secs(10),
            axum::body::to_bytes(response.into_body(), usize::MAX),
        )
        .await
        .expect("the stream ends")
        .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn held_changes_are_sent_as_sse_messages_until_the_log_closes() {
        let log = Arc::new(EventLog::with_capacity(10));
        record(&log, 1, "job/a");
        record(&log, 2, "node/n");
        let follower = log.follow(Some(0), None).unwrap();
        log.close();
        assert_eq!(
            body(respond(Ok(follower))).await,
            "id: 1\nevent: job\ndata: {\"index\":1,\"topic\":\"job\",\"type\":\"upsert\",\"key\":\"job/a\",\"object\":{}}\n\n\
             id: 2\nevent: node\ndata: {\"index\":2,\"topic\":\"node\",\"type\":\"upsert\",\"key\":\"node/n\",\"object\":{}}\n\n"
        );
    }

    #[tokio::test]
    async fn a_reader_left_behind_gets_truncated_and_its_stream_ends() {
        let log = Arc::new(EventLog::with_capacity(2));
        let slow = log.follow(Some(0), None).unwrap();
        for index in 1..=5 {
            record(&log, index, "job/a");
        }
        assert_eq!(
            body(respond(Ok(slow))).await,
            "event: truncated\ndata: {\"oldest_index\":3}\n\n"
        );
        let too_old = log.follow(Some(1), None).map(|_| ());
        assert_eq!(too_old, Err(Gone(3)));
        assert_eq!(
            body(respond(log.follow(Some(1), None))).await,
            "event: truncated\ndata: {\"oldest_index\":3}\n\n"
        );
    }
}
