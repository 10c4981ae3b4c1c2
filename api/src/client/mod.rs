//! A typed client for the managers' HTTP API, shared by the CLI, the agent
//! and the load tester.
//!
//! Any manager can answer (followers forward writes to the leader), so the
//! client is given them all and only needs one that is up: when a manager
//! refuses the connection it moves on to the next, and stays with the one
//! that answered. It fails over only when the connection could not be made,
//! never after a request was sent, so a write is never sent twice. One
//! `reqwest::Client` (a connection pool) serves every call; `Client` is
//! cheap to clone and clones share the pool.

mod acl;
mod agent;
mod deployments;
mod error;
mod events;
mod logs;
mod operator;
mod scheduling;
mod services;
mod snapshot;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::deployments::DeploymentAction;
pub use agent::Session;
pub use error::{ClientError, Unreachable};
pub use events::{EventStream, SseMessage, SseParser, StreamMessage};
pub use logs::LogsQuery;
pub use operator::TransferLeaderRequest;
pub use scheduling::AllocationFilter;
pub use snapshot::{SnapshotFile, SnapshotRestored, SNAPSHOT_FORMAT};

use crate::headers::INDEX_HEADER;
use crate::job::JobSpec;
use crate::jobs::{
    Job, JobDeleted, JobRegistered, JobSummary, JobVersion, RevertRequest, ScaleRequest,
};
use crate::status::{AddPeerRequest, MembersResponse, RaftInfo, StatusResponse};

/// A response together with the Raft index it reflects (`X-Gantry-Index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed<T> {
    pub index: u64,
    pub value: T,
}

/// Timeouts of a [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Per manager: how long to wait for a TCP connection before trying the
    /// next one.
    pub connect_timeout: Duration,
    /// A whole call, from sending the request to reading the last byte.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A client for one Gantry cluster.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    managers: Vec<Url>,
    token: Option<String>,
    /// The manager tried first: the last one that answered.
    current: AtomicUsize,
}

/// One API call, before it is sent to a particular manager.
struct Call<'a> {
    method: Method,
    path: &'a [&'a str],
    query: &'a [(&'a str, &'a str)],
    body: Option<(Vec<u8>, &'a str)>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a [&'a str]) -> Self {
        Call {
            method,
            path,
            query: &[],
            body: None,
        }
    }

    fn get(path: &'a [&'a str]) -> Self {
        Call::new(Method::GET, path)
    }

    fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    fn body(mut self, body: Vec<u8>, content_type: &'a str) -> Self {
        self.body = Some((body, content_type));
        self
    }

    fn json(self, value: &impl Serialize) -> Result<Self, ClientError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ClientError::Decode(format!("cannot encode the request: {e}")))?;
        Ok(self.body(body, "application/json"))
    }
}

/// A 2xx answer.
struct Answer {
    index: Option<u64>,
    body: Bytes,
}

impl Answer {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            ClientError::Decode(format!("at {path}: {}", e.into_inner()))
        })
    }

    fn index(&self) -> Result<u64, ClientError> {
        self.index
            .ok_or_else(|| ClientError::Decode(format!("no valid {INDEX_HEADER} header")))
    }

    fn indexed<T: DeserializeOwned>(&self) -> Result<Indexed<T>, ClientError> {
        Ok(Indexed {
            index: self.index()?,
            value: self.decode()?,
        })
    }
}

impl Client {
    /// A client for the managers at `addrs` (`host:port`, or a URL such as
    /// `http://host:port`; an entry may also be a comma-separated list),
    /// sending `token` as a bearer token when given.
    pub fn new<I, S>(addrs: I, token: Option<String>) -> Result<Client, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Client::with_options(addrs, token, ClientOptions::default())
    }

    pub fn with_options<I, S>(
        addrs: I,
        token: Option<String>,
        options: ClientOptions,
    ) -> Result<Client, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut managers = Vec::new();
        for entry in addrs {
            for addr in entry.as_ref().split(',').map(str::trim) {
                if !addr.is_empty() {
                    managers.push(manager_url(addr)?);
                }
            }
        }
        if managers.is_empty() {
            return Err(ClientError::Config("no manager addresses".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(error_chain(&e)))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                managers,
                token,
                current: AtomicUsize::new(0),
            }),
        })
    }

    /// The same managers (and connection pool) with another bearer token: an agent
    /// registers with the join token, then calls with its node's own secret.
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                managers: self.inner.managers.clone(),
                token,
                current: AtomicUsize::new(self.inner.current.load(Ordering::Relaxed)),
            }),
        }
    }

    /// The managers' base URLs, in the order given.
    pub fn managers(&self) -> &[Url] {
        &self.inner.managers
    }

    /// `GET /v1/status` of whichever manager answers.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.call(Call::get(&["v1", "status"])).await?.decode()
    }

    /// `GET /v1/operator/raft`.
    pub async fn raft_info(&self) -> Result<RaftInfo, ClientError> {
        self.call(Call::get(&["v1", "operator", "raft"]))
            .await?
            .decode()
    }

    /// `POST /v1/operator/raft/peers`: add manager `id` at `addr`. Returns
    /// the membership afterwards.
    pub async fn add_peer(&self, id: u64, addr: &str) -> Result<MembersResponse, ClientError> {
        let request = AddPeerRequest {
            id,
            addr: addr.to_string(),
        };
        let call = Call::new(Method::POST, &["v1", "operator", "raft", "peers"]).json(&request)?;
        self.call(call).await?.decode()
    }

    /// `DELETE /v1/operator/raft/peers/{id}`. Returns the membership
    /// afterwards.
    pub async fn remove_peer(&self, id: u64) -> Result<MembersResponse, ClientError> {
        let id = id.to_string();
        let path = ["v1", "operator", "raft", "peers", &id];
        self.call(Call::new(Method::DELETE, &path)).await?.decode()
    }

    /// `POST /v1/jobs` with the spec as JSON. Returns once it is committed.
    pub async fn register_job(&self, spec: &JobSpec) -> Result<JobRegistered, ClientError> {
        let call = Call::new(Method::POST, &["v1", "jobs"]).json(spec)?;
        self.call(call).await?.decode()
    }

    /// `POST /v1/jobs` with a body sent as is: YAML, or deliberately bad
    /// input in tests.
    pub async fn register_job_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<JobRegistered, ClientError> {
        let call = Call::new(Method::POST, &["v1", "jobs"]).body(body, content_type);
        self.call(call).await?.decode()
    }

    /// `GET /v1/jobs/{id}`; `stale` answers from the manager's own replica.
    pub async fn get_job(&self, id: &str, stale: bool) -> Result<Indexed<Job>, ClientError> {
        let path = ["v1", "jobs", id];
        let call = Call::get(&path).query(stale_query(stale));
        self.call(call).await?.indexed()
    }

    /// `GET /v1/jobs`.
    pub async fn list_jobs(&self, stale: bool) -> Result<Indexed<Vec<JobSummary>>, ClientError> {
        let call = Call::get(&["v1", "jobs"]).query(stale_query(stale));
        self.call(call).await?.indexed()
    }

    /// `DELETE /v1/jobs/{id}`: stop and remove the job.
    pub async fn delete_job(&self, id: &str) -> Result<JobDeleted, ClientError> {
        self.call(Call::new(Method::DELETE, &["v1", "jobs", id]))
            .await?
            .decode()
    }

    /// `POST /v1/jobs/{id}/scale`: a new version with `replicas`.
    pub async fn scale_job(&self, id: &str, replicas: u32) -> Result<JobRegistered, ClientError> {
        let path = ["v1", "jobs", id, "scale"];
        let call = Call::new(Method::POST, &path).json(&ScaleRequest { replicas })?;
        self.call(call).await?.decode()
    }

    /// `POST /v1/jobs/{id}/revert`: a new version with `version`'s spec.
    pub async fn revert_job(&self, id: &str, version: u64) -> Result<JobRegistered, ClientError> {
        let path = ["v1", "jobs", id, "revert"];
        let call = Call::new(Method::POST, &path).json(&RevertRequest { version })?;
        self.call(call).await?.decode()
    }

    /// `GET /v1/jobs/{id}/versions`.
    pub async fn job_versions(&self, id: &str) -> Result<Vec<JobVersion>, ClientError> {
        self.call(Call::get(&["v1", "jobs", id, "versions"]))
            .await?
            .decode()
    }

    /// Sends `call` to the current manager, moving on to the next while
    /// connections are refused; maps non-2xx answers to `ClientError::Api`.
    async fn call(&self, call: Call<'_>) -> Result<Answer, ClientError> {
        let (base, response) = self.send(&call, None).await?;
        let status = response.status();
        let index = response
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(format!("{base}: {}", error_chain(&e))))?;
        if !status.is_success() {
            return Err(error::api_error(status.as_u16(), &body));
        }
        Ok(Answer { index, body })
    }

    /// Sends `call` to the managers in turn, from the one that answered last, moving on
    /// only while connections are refused. The answer (any status) with the manager
    /// that gave it.
    async fn send(
        &self,
        call: &Call<'_>,
        timeout: Option<Duration>,
    ) -> Result<(&Url, reqwest::Response), ClientError> {
        let inner = &self.inner;
        let count = inner.managers.len();
        let start = inner.current.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for attempt in 0..count {
            let i = (start + attempt) % count;
            let base = &inner.managers[i];
            let mut request = inner.http.request(call.method.clone(), url(base, call));
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
            match request.send().await {
                Ok(response) => {
                    inner.current.store(i, Ordering::Relaxed);
                    return Ok((base, response));
                }
                Err(e) if e.is_connect() => {
                    let failure = Unreachable::new(base, &e);
                    tracing::debug!(manager = %base, reason = %failure.reason, "manager unreachable, trying the next");
                    failures.push(failure);
                }
                Err(e) => {
                    return Err(ClientError::Transport(format!(
                        "{base}: {}",
                        error_chain(&e)
                    )))
                }
            }
        }
        Err(ClientError::Unreachable(failures))
    }
}

fn stale_query(stale: bool) -> &'static [(&'static str, &'static str)] {
    if stale {
        &[("stale", "true")]
    } else {
        &[]
    }
}

/// The base URL of a manager given as `host:port` or `http(s)://host:port`.
fn manager_url(addr: &str) -> Result<Url, ClientError> {
    let text = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let url = Url::parse(&text)
        .map_err(|e| ClientError::Config(format!("invalid manager address {addr:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ClientError::Config(format!(
            "invalid manager address {addr:?}: not an http URL"
        )));
    }
    Ok(url)
}

/// `base` + the call's path segments (percent-encoded) and query.
fn url(base: &Url, call: &Call<'_>) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("manager URLs are checked to be bases")
        .pop_if_empty()
        .extend(call.path);
    if !call.query.is_empty() {
        url.query_pairs_mut().extend_pairs(call.query);
    }
    url
}

/// An error and its causes, `a: b: c`; reqwest's own message alone rarely
/// says what happened ("error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
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
mod tests;
