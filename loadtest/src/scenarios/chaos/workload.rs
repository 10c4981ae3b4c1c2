//! The chaos scenario's clients: concurrent register / scale / delete / read
//! of jobs over a small key space, each operation recorded for the checks.
//!
//! Why it exists: the checks can only judge what was observed, so every
//! request becomes an [`OpRecord`] with its client, key, invoke and complete
//! times on one monotonic clock, and its outcome — `ok` (with what was
//! acknowledged or read), `failed` (the server definitely did not apply it)
//! or `unknown` (it may or may not have been applied).
//!
//! Each register writes a unique nonce into the job's spec (task env
//! `LT_NONCE`), so a read names exactly the write it observed — even a write
//! whose answer never came back. Versions alone cannot: a deleted job that is
//! registered again starts over at version 1.
//!
//! Classification (see server/src/write/submit.rs): a 2xx is ok; a 4xx is a
//! definite failure (the state machine refused it); a 5xx — `503 no_quorum`
//! included, whose message says the write "may or may not have been applied"
//! — a timeout or a reset connection is unknown. A connection that could not
//! be opened is a definite failure (nothing was sent). A `DELETE` answered
//! 404 is recorded as failed but means "the job was absent when it took
//! effect": the manager retries a write internally when a leader's answer is
//! lost, so our own delete may have removed it first. The checks treat it as
//! a delete that took effect.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::progress::Counters;

use crate::rng::Rng;

/// The env var of the job's task carrying the write's nonce.
pub const NONCE_ENV: &str = "LT_NONCE";

/// Nanoseconds since the start of the run: the one clock of the history.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    pub fn started(&self) -> Instant {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Register,
    Scale,
    Delete,
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Unknown,
}

/// One request as the client saw it.
#[derive(Clone, Debug, Serialize)]
pub struct OpRecord {
    pub client: u32,
    pub kind: OpKind,
    pub key: String,
    /// The manager the request went to (0-based).
    pub manager: usize,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    /// Register: the nonce written. Read: the nonce seen (None when absent).
    pub nonce: Option<u64>,
    /// Register and scale: the replicas asked. Read: the replicas seen.
    pub replicas: Option<u32>,
    /// Acknowledged register or scale: the version in the answer. Read: the
    /// version seen.
    pub version: Option<u64>,
    /// Read: whether the job existed (200) or not (404).
    pub found: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl OpRecord {
    /// A delete answered 404: it took effect on an absent job.
    pub fn is_absent_delete(&self) -> bool {
        self.kind == OpKind::Delete && self.status == Some(404)
    }
}

/// What the clients share.
#[derive(Clone)]
pub struct WorkloadConfig {
    pub urls: Vec<String>,
    pub keys: usize,
    pub request_timeout: Duration,
    pub think: Duration,
    pub seed: u64,
}

pub fn job_id(key: usize) -> String {
    format!("chaos-{key:02}")
}

/// Start `clients` clients; each returns its records when `stop` is set.
pub fn spawn_clients(
    clients: usize,
    config: &WorkloadConfig,
    clock: Clock,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> anyhow::Result<JoinSet<Vec<OpRecord>>> {
    let nonces = Arc::new(AtomicU64::new(1));
    let mut set = JoinSet::new();
    for c in 0..clients {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        let client = Client {
            id: c as u32,
            http,
            config: config.clone(),
            rng: Rng::fork(config.seed, 100 + c as u64),
            clock,
            nonces: nonces.clone(),
        };
        set.spawn(client.run(stop.clone(), counters.clone()));
    }
    Ok(set)
}

struct Client {
    id: u32,
    http: reqwest::Client,
    config: WorkloadConfig,
    rng: Rng,
    clock: Clock,
    nonces: Arc<AtomicU64>,
}

impl Client {
    async fn run(mut self, stop: Arc<AtomicBool>, counters: Arc<Counters>) -> Vec<OpRecord> {
        let mut records = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let record = self.one_operation().await;
            match record.outcome {
                Outcome::Ok => counters.ack(),
                _ => counters.error(),
            }
            records.push(record);
            tokio::time::sleep(self.config.think).await;
        }
        records
    }

    async fn one_operation(&mut self) -> OpRecord {
        let key = self.rng.below(self.config.keys as u64) as usize;
        let manager = self.rng.below(self.config.urls.len() as u64) as usize;
        let base = self.config.urls[manager].clone();
        let id = job_id(key);
        let (kind, request, nonce, replicas) = match self.rng.below(100) {
            0..=34 => {
                let nonce = self.nonces.fetch_add(1, Ordering::Relaxed);
                let replicas = self.pick_replicas();
                let spec = job_spec(key, nonce, replicas);
                let req = self.http.post(format!("{base}/v1/jobs")).json(&spec);
                (OpKind::Register, req, Some(nonce), Some(replicas))
            }
            35..=49 => {
                let replicas = self.pick_replicas();
                let req = self
                    .http
                    .post(format!("{base}/v1/jobs/{id}/scale"))
                    .json(&json!({ "replicas": replicas }));
                (OpKind::Scale, req, None, Some(replicas))
            }
            50..=64 => {
                let req = self.http.delete(format!("{base}/v1/jobs/{id}"));
                (OpKind::Delete, req, None, None)
            }
            _ => {
                let req = self.http.get(format!("{base}/v1/jobs/{id}"));
                (OpKind::Read, req, None, None)
            }
        };
        let mut record = OpRecord {
            client: self.id,
            kind,
            key: id,
            manager,
            invoke_ns: self.clock.ns(),
            complete_ns: 0,
            outcome: Outcome::Unknown,
            nonce,
            replicas,
            version: None,
            found: false,
            status: None,
            error: None,
        };
        let reply = send(request).await;
        record.complete_ns = self.clock.ns();
        apply_reply(&mut record, reply);
        record
    }

    /// 0 to 3 replicas, mostly some: placements are the point.
    fn pick_replicas(&mut self) -> u32 {
        [0, 1, 1, 2, 2, 3][self.rng.below(6) as usize]
    }
}

/// The job registered under `key`: a fixed shape per key (some with a
/// dynamic host port), the write's nonce in the env.
pub fn job_spec(key: usize, nonce: u64, replicas: u32) -> Value {
    let ports = if key.is_multiple_of(2) {
        json!([{ "name": "http", "container_port": 8080 }])
    } else {
        json!([])
    };
    json!({
        "id": job_id(key),
        "type": "service",
        "replicas": replicas,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "3600"],
            "env": { NONCE_ENV: nonce.to_string() },
            "resources": {
                "cpu_millis": 100 * (1 + key as u64 % 3),
                "memory_mb": 32 * (1 + key as u64 % 4),
            },
            "ports": ports,
        }]
    })
}

/// How a request ended, before it is judged.
pub enum Reply {
    Answered {
        status: u16,
        body: Value,
    },
    /// No connection: nothing reached the server.
    NotSent(String),
    /// Sent, but no complete answer (timeout, reset).
    Lost(String),
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(bytes) => Reply::Answered {
                    status,
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                },
                Err(e) => Reply::Lost(error_chain(&e)),
            }
        }
        Err(e) if e.is_connect() => Reply::NotSent(error_chain(&e)),
        Err(e) => Reply::Lost(error_chain(&e)),
    }
}

fn apply_reply(record: &mut OpRecord, reply: Reply) {
    match reply {
        Reply::Answered { status, body } => {
            record.status = Some(status);
            match status {
                200..=299 => {
                    record.outcome = Outcome::Ok;
                    read_success_body(record, &body);
                }
                404 if record.kind == OpKind::Read => {
                    record.outcome = Outcome::Ok;
                    record.found = false;
                }
                400..=499 => {
                    record.outcome = Outcome::Failed;
                    record.error = Some(error_text(&body));
                }
                _ => {
                    record.outcome = if record.kind == OpKind::Read {
                        Outcome::Failed
                    } else {
                        Outcome::Unknown
                    };
                    record.error = Some(error_text(&body));
                }
            }
        }
        Reply::NotSent(e) => {
            record.outcome = Outcome::Failed;
            record.error = Some(e);
        }
        Reply::Lost(e) => {
            // A read without an answer has no effect: it is simply failed.
            record.outcome = if record.kind == OpKind::Read {
                Outcome::Failed
            } else {
                Outcome::Unknown
            };
            record.error = Some(e);
        }
    }
}

fn read_success_body(record: &mut OpRecord, body: &Value) {
    match record.kind {
        OpKind::Register | OpKind::Scale => record.version = body["version"].as_u64(),
        OpKind::Delete => {}
        OpKind::Read => {
            let seen = JobSeen::from_job(body);
            record.found = true;
            record.nonce = seen.nonce;
            record.replicas = seen.replicas;
            record.version = seen.version;
        }
    }
}

/// What a `GET /v1/jobs/{id}` body says about the register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobSeen {
    pub nonce: Option<u64>,
    pub replicas: Option<u32>,
    pub version: Option<u64>,
}

impl JobSeen {
    pub fn from_job(job: &Value) -> JobSeen {
        JobSeen {
            nonce: job["spec"]["tasks"][0]["env"][NONCE_ENV]
                .as_str()
                .and_then(|s| s.parse().ok()),
            replicas: job["spec"]["replicas"].as_u64().map(|r| r as u32),
            version: job["version"].as_u64(),
        }
    }
}

fn error_text(body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or("");
    let message = body["error"]["message"].as_str().unwrap_or("");
    let text = format!("{code}: {message}");
    text.chars().take(300).collect()
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
