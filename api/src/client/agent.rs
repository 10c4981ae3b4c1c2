//! The agent's calls: register the node, heartbeat (with status reports), and
//! open the session that streams the node's allocations.
//!
//! Heartbeats and sessions are served by the leader only. A follower answers
//! `421` and names the leader (see `crate::session`); these calls follow that
//! hint (a few hops at most, in case leadership moves meanwhile) and remember
//! the leader as the manager to try first next time. Registration goes to any
//! manager, like other writes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};

use super::{error, error_chain, manager_url, url, Call, Client, ClientError, Unreachable};
use crate::node::NodeRegistration;
use crate::session::{
    Heartbeat, HeartbeatAck, NotLeaderBody, Registered, SessionMessage, LEADER_HEADER,
    SESSION_IDLE_TIMEOUT_MS,
};

/// How many `421` hints one call follows before giving up.
const MAX_LEADER_HOPS: usize = 3;
/// The whole-request timeout of a session (reqwest counts the body too): long,
/// since a session lives as long as the leader does; liveness is checked by
/// the idle timeout instead.
const SESSION_REQUEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

impl Client {
    /// `POST /v1/agent/register`: add the node, or refresh what it offers.
    pub async fn register_node(
        &self,
        registration: &NodeRegistration,
    ) -> Result<Registered, ClientError> {
        let call = Call::new(Method::POST, &["v1", "agent", "register"]).json(registration)?;
        self.call(call).await?.decode()
    }

    /// `POST /v1/agent/heartbeat` on the leader. Returns once the reported
    /// updates (if any) are committed.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        let body = serde_json::to_vec(heartbeat)
            .map_err(|e| ClientError::Decode(format!("cannot encode the request: {e}")))?;
        let call =
            Call::new(Method::POST, &["v1", "agent", "heartbeat"]).body(body, "application/json");
        let (response, _) = self.on_leader(&call, None).await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET /v1/agent/session?node=ID` on the leader: the node's complete set
    /// of allocations, then increments, as they come.
    pub async fn open_session(&self, node_id: &str) -> Result<Session, ClientError> {
        let query = [("node", node_id)];
        let call = Call::get(&["v1", "agent", "session"]).query(&query);
        let (response, manager) = self.on_leader(&call, Some(SESSION_REQUEST_TIMEOUT)).await?;
        Ok(Session {
            manager,
            response,
            buffer: Vec::new(),
            idle: Duration::from_millis(SESSION_IDLE_TIMEOUT_MS),
        })
    }

    /// Sends `call` to the manager tried first, moving on while connections
    /// are refused and following `421` leader hints. Returns a 2xx response
    /// with its body unread, and the base URL of the manager that gave it.
    async fn on_leader(
        &self,
        call: &Call<'_>,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::Response, Url), ClientError> {
        let inner = &self.inner;
        let count = inner.managers.len();
        let mut next = inner.current.load(Ordering::Relaxed) % count;
        let mut hinted: Option<Url> = None;
        let mut hops = 0;
        let mut failures = Vec::new();
        // Every manager once, plus the hops.
        for _ in 0..count + MAX_LEADER_HOPS {
            let base = match hinted.take() {
                Some(base) => base,
                None => {
                    let base = inner.managers[next].clone();
                    next = (next + 1) % count;
                    base
                }
            };
            let mut request = inner.http.request(call.method.clone(), url(&base, call));
            if let Some(token) = &inner.token {
                request = request.bearer_auth(token);
            }
            if let Some((body, content_type)) = &call.body {
                request = request
                    .header(CONTENT_TYPE, *content_type)
                    .body(body.clone());
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if e.is_connect() => {
                    failures.push(Unreachable::new(&base, &e));
                    continue;
                }
                Err(e) => {
                    return Err(ClientError::Transport(format!(
                        "{base}: {}",
                        error_chain(&e)
                    )))
                }
            };
            let status = response.status();
            if status.is_success() {
                self.remember(&base);
                return Ok((response, base));
            }
            let header_hint = response
                .headers()
                .get(LEADER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .bytes()
                .await
                .map_err(|e| ClientError::Transport(format!("{base}: {}", error_chain(&e))))?;
            if status.as_u16() != 421 {
                return Err(error::api_error(status.as_u16(), &body));
            }
            let hint = header_hint.or_else(|| {
                serde_json::from_slice::<NotLeaderBody>(&body)
                    .ok()
                    .and_then(|b| b.leader)
                    .map(|l| l.addr)
            });
            match hint.map(|addr| manager_url(&addr)) {
                Some(Ok(leader)) if hops < MAX_LEADER_HOPS => {
                    tracing::debug!(from = %base, to = %leader, "following the leader hint");
                    hops += 1;
                    hinted = Some(leader);
                }
                _ => return Err(error::api_error(421, &body)),
            }
        }
        Err(ClientError::Unreachable(failures))
    }

    /// Makes `base` the manager tried first, if it is one of ours.
    fn remember(&self, base: &Url) {
        let same = |m: &Url| m.host_str() == base.host_str() && m.port() == base.port();
        if let Some(i) = self.inner.managers.iter().position(same) {
            self.inner.current.store(i, Ordering::Relaxed);
        }
    }
}

/// An open session: read it with [`Session::next`].
#[derive(Debug)]
pub struct Session {
    manager: Url,
    response: reqwest::Response,
    /// Bytes received but not yet a whole line.
    buffer: Vec<u8>,
    idle: Duration,
}

impl Session {
    /// The base URL of the manager (the leader when it was opened) serving this
    /// session.
    pub fn manager(&self) -> &Url {
        &self.manager
    }

    /// The next message; `Ok(None)` when the leader ended the session
    /// (it stopped leading, or shuts down): open a new one. An error when the
    /// connection broke or nothing arrived within the idle timeout.
    pub async fn next(&mut self) -> Result<Option<SessionMessage>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| ClientError::Decode(format!("session message: {e}")));
            }
            let chunk = tokio::time::timeout(self.idle, self.response.chunk())
                .await
                .map_err(|_| {
                    ClientError::Transport(format!(
                        "{}: no session message for {:?}",
                        self.manager, self.idle
                    ))
                })?
                .map_err(|e| {
                    ClientError::Transport(format!("{}: {}", self.manager, error_chain(&e)))
                })?;
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None if self.buffer.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                None => {
                    return Err(ClientError::Transport(format!(
                        "{}: the session ended mid-message",
                        self.manager
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionMessage;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one request's head; the routes under test have no body.
    async fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    async fn chunk(stream: &mut TcpStream, data: &str) {
        let framed = format!("{:x}\r\n{data}\r\n", data.len());
        stream.write_all(framed.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// A follower that names `leader`, and a leader that streams a session in chunks
    /// that split messages mid-line.
    #[tokio::test]
    async fn a_session_follows_the_leader_hint_and_parses_split_lines() {
        let follower = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let leader = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let follower_addr = follower.local_addr().unwrap().to_string();
        let leader_addr = leader.local_addr().unwrap().to_string();
        let hint = leader_addr.clone();
        tokio::spawn(async move {
            let (mut stream, _) = follower.accept().await.unwrap();
            read_head(&mut stream).await;
            let body = format!(
                r#"{{"error":{{"code":"not_leader","message":"ask {hint}"}},"leader":{{"id":2,"addr":"{hint}"}}}}"#
            );
            let answer = format!(
                "HTTP/1.1 421 Misdirected Request\r\ncontent-type: application/json\r\n\
                 x-gantry-leader: {hint}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
        tokio::spawn(async move {
            let (mut stream, _) = leader.accept().await.unwrap();
            let head = read_head(&mut stream).await;
            assert!(head.starts_with("GET /v1/agent/session?node=n1 "), "{head}");
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\
                      transfer-encoding: chunked\r\n\r\n",
                )
                .await
                .unwrap();
            chunk(&mut stream, r#"{"type":"complete","index":5,"allo"#).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            chunk(&mut stream, "cations\":[]}\n\n{\"type\":\"keepalive\"}\n").await;
            chunk(
                &mut stream,
                r#"{"type":"increment","index":6,"upserts":[],"#,
            )
            .await;
            chunk(&mut stream, "\"removals\":[\"a1\"]}\n").await;
            stream.write_all(b"0\r\n\r\n").await.unwrap();
        });

        let client = Client::new([follower_addr], None).unwrap();
        let mut session = client.open_session("n1").await.unwrap();
        assert_eq!(session.manager().as_str(), format!("http://{leader_addr}/"));
        let mut messages = Vec::new();
        while let Some(message) = session.next().await.unwrap() {
            messages.push(message);
        }
        assert_eq!(
            messages,
            vec![
                SessionMessage::Complete {
                    index: 5,
                    allocations: vec![],
                    jobs: vec![],
                },
                SessionMessage::Keepalive,
                SessionMessage::Increment {
                    index: 6,
                    upserts: vec![],
                    removals: vec!["a1".into()],
                    jobs: vec![],
                },
            ]
        );
    }
}
