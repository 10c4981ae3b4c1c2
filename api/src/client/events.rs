//! `GET /v1/events`: the cluster's committed changes as a stream of server-sent events.
//!
//! The call hands back an [`EventStream`]; `next()` yields each change as it arrives, or
//! the stream's end. A [`Truncated`] message is always the last: the manager no longer
//! holds the changes the stream needed, and the caller should re-list and start again
//! from the index the listing answers with. The wire format is described in
//! [`crate::events`]; [`SseParser`] reads it (the `text/event-stream` framing: fields,
//! comments, CRLF or LF or CR line ends, messages ended by a blank line).

use std::collections::VecDeque;
use std::time::Duration;

use super::{error_chain, Call, Client, ClientError};
use crate::events::{Event, Topic, Truncated, TRUNCATED};

/// The whole-request timeout of an event stream (reqwest counts the body too): long, since
/// a followed stream lasts until the caller stops reading.
const STREAM_REQUEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// A line longer than this is not something a manager sends: the stream is refused.
const MAX_LINE_BYTES: usize = 64 << 20;

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// One committed change.
    Event(Event),
    /// The manager no longer holds the changes this stream needed; nothing follows.
    Truncated(Truncated),
}

impl Client {
    /// `GET /v1/events?index=&topic=`: the changes after `index` (only new ones when
    /// `None`), of the given topics (all when empty), then the changes as they commit.
    /// A manager answers from its own replica; any manager will do.
    pub async fn events(
        &self,
        index: Option<u64>,
        topics: &[Topic],
    ) -> Result<EventStream, ClientError> {
        let index = index.map(|i| i.to_string());
        let topics = topics
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut query = Vec::new();
        if let Some(index) = &index {
            query.push(("index", index.as_str()));
        }
        if !topics.is_empty() {
            query.push(("topic", topics.as_str()));
        }
        let call = Call::get(&["v1", "events"]).query(&query);
        let response = self.streaming(&call, Some(STREAM_REQUEST_TIMEOUT)).await?;
        Ok(EventStream {
            response,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            done: false,
            last_index: index.and_then(|i| i.parse().ok()),
        })
    }
}

/// An open event stream. Dropping it closes the connection.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    parser: SseParser,
    ready: VecDeque<SseMessage>,
    done: bool,
    last_index: Option<u64>,
}

impl EventStream {
    /// The next message; `None` once the manager ended the stream (after a
    /// [`StreamMessage::Truncated`], or when it shut down). Messages of kinds this client
    /// does not know are skipped.
    pub async fn next(&mut self) -> Option<Result<StreamMessage, ClientError>> {
        loop {
            while let Some(message) = self.ready.pop_front() {
                match decode(message) {
                    Ok(Some(StreamMessage::Event(event))) => {
                        self.last_index = Some(event.index);
                        return Some(Ok(StreamMessage::Event(event)));
                    }
                    Ok(Some(other)) => return Some(Ok(other)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.done {
                return None;
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => match self.parser.feed(&bytes) {
                    Ok(messages) => self.ready.extend(messages),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(ClientError::Decode(e)));
                    }
                },
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ClientError::Transport(format!(
                        "event stream: {}",
                        error_chain(&e)
                    ))));
                }
            }
        }
    }

    /// The index of the last event yielded (or the index the stream started after).
    /// Events of one index arrive together, so after a clean end of the stream this is
    /// where to resume; after a broken connection, resume from one less and skip what was
    /// seen, in case the index's events were cut short.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }
}

/// An SSE message as a stream message; `None` for kinds this client does not know.
fn decode(message: SseMessage) -> Result<Option<StreamMessage>, ClientError> {
    let bad = |e: serde_json::Error| {
        ClientError::Decode(format!("event stream `{}` message: {e}", message.event))
    };
    if message.event == TRUNCATED {
        let truncated = serde_json::from_str(&message.data).map_err(bad)?;
        return Ok(Some(StreamMessage::Truncated(truncated)));
    }
    if message.event.parse::<Topic>().is_err() {
        return Ok(None);
    }
    let event = serde_json::from_str(&message.data).map_err(bad)?;
    Ok(Some(StreamMessage::Event(event)))
}

/// One server-sent event as framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event:` field; `message` when the message has none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` field seen so far in the stream, if any.
    pub id: Option<String>,
}

/// An incremental `text/event-stream` reader: feed it the body's bytes as they come, in
/// chunks cut anywhere, and it hands back each complete message.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous byte was a CR: a LF right after it ends nothing more.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
}

impl SseParser {
    /// Reads `bytes`; returns the messages they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseMessage>, String> {
        let mut messages = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.line_done(&line) {
                        messages.push(message);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(format!(
                            "an event stream line longer than {MAX_LINE_BYTES} bytes"
                        ));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(messages)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseMessage> {
        if line.is_empty() {
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseMessage {
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
                id: self.last_id.clone(),
            });
        }
        if line[0] == b':' {
            return None; // a comment (keep-alive)
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use axum::response::IntoResponse;

    fn message(event: &str, data: &str, id: Option<&str>) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn reads_fields_comments_and_blank_line_ends() {
        let mut parser = SseParser::default();
        let text = ": keep-alive\n\nid: 4\nevent: job\ndata: {\"a\":1}\n\ndata:plain\ndata:  two spaces\n\n";
        let got = parser.feed(text.as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![
                message("job", "{\"a\":1}", Some("4")),
                message("message", "plain\n two spaces", Some("4")),
            ]
        );
    }

    #[test]
    fn any_chunking_and_any_line_end_give_the_same_messages() {
        let lf = "id: 1\nevent: node\ndata: x\n\nevent: truncated\ndata: {\"oldest_index\":9}\n\n";
        let expected = SseParser::default().feed(lf.as_bytes()).unwrap();
        assert_eq!(expected.len(), 2);
        for text in [
            lf.to_string(),
            lf.replace('\n', "\r\n"),
            lf.replace('\n', "\r"),
        ] {
            let bytes = text.as_bytes();
            for cut in 0..=bytes.len() {
                for second_cut in cut..=bytes.len() {
                    let mut parser = SseParser::default();
                    let mut got = parser.feed(&bytes[..cut]).unwrap();
                    got.extend(parser.feed(&bytes[cut..second_cut]).unwrap());
                    got.extend(parser.feed(&bytes[second_cut..]).unwrap());
                    assert_eq!(got, expected, "{text:?} cut at {cut} and {second_cut}");
                }
            }
        }
    }

    #[test]
    fn a_message_without_data_is_not_dispatched_and_an_unfinished_one_waits() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"event: job\n\n").unwrap().is_empty());
        assert!(parser.feed(b"data: 1\n").unwrap().is_empty());
        assert_eq!(
            parser.feed(b"\n").unwrap(),
            vec![message("message", "1", None)],
            "the event name of the dropped message does not leak into the next"
        );
    }

    #[test]
    fn decodes_events_and_truncation_and_skips_unknown_kinds() {
        let data = r#"{"index":3,"topic":"job","type":"upsert","key":"job/web","object":{"x":1}}"#;
        let decoded = decode(message("job", data, Some("3"))).unwrap();
        let Some(StreamMessage::Event(event)) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(
            (event.index, event.topic, event.kind),
            (3, Topic::Job, EventType::Upsert)
        );
        assert_eq!(event.object, Some(serde_json::json!({"x": 1})));
        assert_eq!(
            decode(message("truncated", r#"{"oldest_index":12}"#, None)).unwrap(),
            Some(StreamMessage::Truncated(Truncated { oldest_index: 12 }))
        );
        assert_eq!(decode(message("message", "hello", None)).unwrap(), None);
        assert_eq!(decode(message("future_topic", "{}", None)).unwrap(), None);
        assert!(decode(message("job", "not json", None)).is_err());
    }

    /// A manager that answers `/v1/events` with a fixed body, and echoes the query in it.
    async fn manager(body: &'static str) -> String {
        let handler = move |axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
            let echo = format!(": query={}\n\n", query.unwrap_or_default());
            (
                [("content-type", "text/event-stream")],
                format!("{echo}{body}"),
            )
                .into_response()
        };
        let app = axum::Router::new().route("/v1/events", axum::routing::get(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn streams_events_until_the_manager_ends_the_stream() {
        let body = concat!(
            "id: 5\nevent: job\ndata: {\"index\":5,\"topic\":\"job\",\"type\":\"upsert\",\"key\":\"job/a\",\"object\":{}}\n\n",
            ": keep-alive\n\n",
            "id: 6\nevent: node\ndata: {\"index\":6,\"topic\":\"node\",\"type\":\"delete\",\"key\":\"node/n\",\"object\":null}\n\n",
            "event: truncated\ndata: {\"oldest_index\":6}\n\n",
        );
        let client = Client::new([manager(body).await], None).unwrap();
        let mut stream = client
            .events(Some(4), &[Topic::Job, Topic::Node])
            .await
            .unwrap();
        assert_eq!(stream.last_index(), Some(4));
        let mut got = Vec::new();
        let bound = Duration::from_secs(10);
        while let Some(message) = tokio::time::timeout(bound, stream.next()).await.unwrap() {
            got.push(message.unwrap());
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(matches!(&got[0], StreamMessage::Event(e) if e.key == "job/a"));
        assert!(matches!(&got[1], StreamMessage::Event(e) if e.kind == EventType::Delete));
        assert_eq!(
            got[2],
            StreamMessage::Truncated(Truncated { oldest_index: 6 })
        );
        assert_eq!(stream.last_index(), Some(6));
    }

    #[tokio::test]
    async fn sends_index_and_topics_in_the_query() {
        // The echoed query is a comment, which the stream skips; read it with the parser.
        let addr = manager("").await;
        let client = Client::new([addr], None).unwrap();
        let mut stream = client.events(Some(9), &[Topic::JobVersion]).await.unwrap();
        let bytes = stream.response.chunk().await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert_eq!(text, ": query=index=9&topic=job_version\n\n");
        let mut stream = client.events(None, &[]).await.unwrap();
        let bytes = stream.response.chunk().await.unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&bytes), ": query=\n\n");
    }
}
