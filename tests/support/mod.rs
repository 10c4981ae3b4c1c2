//! Process-level test harness for Gantry's replicated core.
//!
//! A [`Cluster`] runs real `gantry server` processes on loopback ports, one
//! temporary directory per manager (its RocksDB data dir and its log file),
//! and talks to them only through the public HTTP contract (shared/API.md).
//! Nothing here links against the server: these tests see what an operator
//! sees.
//!
//! Conventions every scenario relies on:
//! - every wait is bounded in time *and* in iterations ([`wait_until`]);
//! - a manager that dies when it should be running fails the test at once,
//!   with its exit status and the tail of its log;
//! - when a test panics, dropping the [`Cluster`] prints the tail of every
//!   manager's log, keeps the temp dirs (their paths are printed) and kills
//!   every child with SIGKILL;
//! - durations are measured and printed, never asserted.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

pub mod agent;
pub mod cli;
pub mod rollout;

/// The binary under test, built by cargo for this test target.
pub const GANTRY: &str = env!("CARGO_BIN_EXE_gantry");

/// How long a cluster may take to elect a leader that everyone agrees on.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a manager may take to catch up after a restart or a join.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval of every wait loop.
pub const POLL: Duration = Duration::from_millis(100);
/// Lines of each manager's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;

// ---------------------------------------------------------------------------
// Wire types (the fields of the contract the tests look at; extra fields are
// ignored so the server may add to them).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LeaderRef {
    pub id: u64,
    pub addr: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// `GET /v1/status`
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub id: u64,
    pub role: String,
    pub leader: Option<LeaderRef>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<Member>,
}

impl Status {
    pub fn voters(&self) -> BTreeSet<u64> {
        self.members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect()
    }
    pub fn member_ids(&self) -> BTreeSet<u64> {
        self.members.iter().map(|m| m.id).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RaftMember {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    #[serde(default)]
    pub matched_index: Option<u64>,
}

/// `GET /v1/operator/raft`
#[derive(Debug, Clone, Deserialize)]
pub struct RaftInfo {
    pub id: u64,
    /// The contract does not pin its shape (an id or {id, addr}); kept raw.
    #[serde(default)]
    pub leader: Value,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    /// null (or absent) before the first snapshot / purge.
    #[serde(default)]
    pub snapshot_index: Option<u64>,
    #[serde(default)]
    pub purged_index: Option<u64>,
    pub members: Vec<RaftMember>,
}

/// One entry of `GET /v1/jobs`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSummary {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Value,
    #[serde(default)]
    pub replicas: Value,
    pub version: u64,
    #[serde(default)]
    pub status: Value,
    pub modify_index: u64,
}

/// `GET /v1/jobs/{id}`
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub spec: Value,
    pub version: u64,
    #[serde(default)]
    pub status: Value,
    pub submitted_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The 201 body of `POST /v1/jobs`.
#[derive(Debug, Clone, Deserialize)]
pub struct Ack {
    pub id: String,
    pub version: u64,
    pub index: u64,
}

/// Tests in one file run on parallel threads by default; scenarios that each
/// start their own cluster take this lock so that only one cluster runs at a
/// time on a small machine. (tokio's Mutex does not poison on a panic.)
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A minimal valid job (replicas 0: nothing gets scheduled, no agent needed).
pub fn job(id: &str) -> Value {
    json!({
        "id": id,
        "replicas": 0,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": 100, "memory_mb": 32}
        }]
    })
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A request body.
pub enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// A response as the tests see it: status, parsed JSON (Null when the body
/// is empty or not JSON), the raw text, and the `X-Gantry-Index` header.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub index: Option<u64>,
    pub has_index_header: bool,
}

impl Resp {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `error.code` of a contract error body, if the body has that shape.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }

    /// `error.message` of a contract error body, if the body has that shape.
    pub fn error_message(&self) -> Option<&str> {
        self.body.get("error")?.get("message")?.as_str()
    }

    /// True when the body is `{"error": {"code": "...", "message": "..."}}`.
    pub fn has_error_body(&self) -> bool {
        self.error_code().is_some() && self.error_message().is_some()
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 500 {
            text.truncate(500);
            text.push_str("...");
        }
        format!("HTTP {} body={text}", self.status)
    }
}

/// A cheap, cloneable HTTP client for the contract; writer tasks hold one.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer <token>` on every request (clusters with `--acl`).
    token: Option<String>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Api {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("build reqwest client");
        Self {
            client,
            token: None,
        }
    }

    /// The same client (and pool), sending `token` as the bearer token (`None`: none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            client: self.client.clone(),
            token: token.map(str::to_string),
        }
    }

    /// Sends one request to `addr` (host:port). Transport errors (refused,
    /// reset, timeout) come back as `Err` with a readable reason.
    pub async fn request(
        &self,
        addr: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Resp, String> {
        let url = format!("http://{addr}{path}");
        let mut req = self.client.request(method.clone(), &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        match body {
            None => {}
            Some(Body::Json(v)) => req = req.json(&v),
            Some(Body::Raw {
                content_type,
                bytes,
            }) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes)
            }
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {}", error_chain(&e)))?;
        let status = resp.status().as_u16();
        let header = resp.headers().get("x-gantry-index").cloned();
        let has_index_header = header.is_some();
        let index = header
            .and_then(|h| h.to_str().ok().map(str::to_owned))
            .and_then(|s| s.trim().parse::<u64>().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| format!("{method} {url}: reading body: {}", error_chain(&e)))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            body,
            text,
            index,
            has_index_header,
        })
    }

    /// The underlying reqwest client (10 s request timeout, 2 s connect
    /// timeout, no proxy), for requests the helpers do not cover.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn get(&self, addr: &str, path: &str) -> Result<Resp, String> {
        self.request(addr, reqwest::Method::GET, path, None).await
    }

    /// GET and decode a 200 JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
    ) -> Result<T, String> {
        let r = self.get(addr, path).await?;
        if r.status != 200 {
            return Err(format!("GET {addr}{path}: {}", r.describe()));
        }
        serde_json::from_value(r.body.clone())
            .map_err(|e| format!("GET {addr}{path}: cannot decode ({e}): {}", r.describe()))
    }

    pub async fn status(&self, addr: &str) -> Result<Status, String> {
        self.get_json(addr, "/v1/status").await
    }

    pub async fn raft(&self, addr: &str) -> Result<RaftInfo, String> {
        self.get_json(addr, "/v1/operator/raft").await
    }

    pub async fn list_jobs(&self, addr: &str, stale: bool) -> Result<Vec<JobSummary>, String> {
        let path = if stale {
            "/v1/jobs?stale=true"
        } else {
            "/v1/jobs"
        };
        self.get_json(addr, path).await
    }

    pub async fn get_job(&self, addr: &str, id: &str, stale: bool) -> Result<Job, String> {
        let path = if stale {
            format!("/v1/jobs/{id}?stale=true")
        } else {
            format!("/v1/jobs/{id}")
        };
        self.get_json(addr, &path).await
    }

    pub async fn post_job(&self, addr: &str, spec: &Value) -> Result<Resp, String> {
        self.request(
            addr,
            reqwest::Method::POST,
            "/v1/jobs",
            Some(Body::Json(spec.clone())),
        )
        .await
    }

    /// POST a job and require 201 with a decodable `{id, version, index}`.
    pub async fn submit(&self, addr: &str, spec: &Value) -> Result<Ack, String> {
        let r = self.post_job(addr, spec).await?;
        decode_ack(addr, &r)
    }
}

/// Requires a 201 `{id, version, index}` response.
pub fn decode_ack(addr: &str, r: &Resp) -> Result<Ack, String> {
    if r.status != 201 {
        return Err(format!(
            "POST {addr}/v1/jobs: expected 201, got {}",
            r.describe()
        ));
    }
    serde_json::from_value(r.body.clone()).map_err(|e| {
        format!(
            "POST {addr}/v1/jobs: 201 body is not {{id, version, index}} ({e}): {}",
            r.describe()
        )
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `f` until it returns `Ok`, at most `timeout` and at most a bounded
/// number of attempts; panics with `what` and the last `Err` reason otherwise.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    match try_wait_until(timeout, &mut f).await {
        Ok(v) => v,
        Err(last) => panic!("timed out after {timeout:?} waiting for {what}; last state: {last}"),
    }
}

/// Like [`wait_until`] but returns the last reason instead of panicking.
pub async fn try_wait_until<T, F, Fut>(timeout: Duration, f: &mut F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    // Each attempt takes at least POLL, so this bound is never the binding
    // one in practice; it keeps the loop finite even with a broken clock.
    let max_attempts = (timeout.as_millis() / POLL.as_millis()) as usize + 10;
    let mut last = String::from("(never polled)");
    for _ in 0..max_attempts {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Err(last)
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Ports handed out by this test process, never handed out twice.
static USED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Picks `n` distinct free loopback ports: binds 127.0.0.1:0 for each (all
/// held at once so they differ), then releases them.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let used = used.get_or_insert_with(HashSet::new);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..(n * 20 + 20) {
        if ports.len() == n {
            break;
        }
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let p = l.local_addr().expect("local_addr").port();
        held.push(l);
        if used.insert(p) {
            ports.push(p);
        }
    }
    assert_eq!(ports.len(), n, "could not find {n} free loopback ports");
    ports
}

// ---------------------------------------------------------------------------
// Managers
// ---------------------------------------------------------------------------

/// How a manager is brought into the cluster.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// `--initial-cluster 1=addr,2=addr,...`
    Initial(String),
    /// `--join addr`
    Join(String),
}

/// One `gantry server` process and its directory.
pub struct Manager {
    pub id: u64,
    pub addr: String,
    pub bootstrap: Bootstrap,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Mutex<Option<Child>>,
    starts: u32,
    extra_args: Vec<String>,
}

impl Manager {
    fn new(id: u64, addr: String, bootstrap: Bootstrap, extra_args: Vec<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gantry-test-m{id}-"))
            .tempdir()
            .expect("create temp dir");
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("manager.log");
        Manager {
            id,
            addr,
            bootstrap,
            data_dir,
            log_path,
            dir: Some(dir),
            child: Mutex::new(None),
            starts: 0,
            extra_args,
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "server".to_string(),
            "--id".to_string(),
            self.id.to_string(),
            "--listen".to_string(),
            self.addr.clone(),
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
        ];
        match &self.bootstrap {
            Bootstrap::Initial(spec) => {
                args.push("--initial-cluster".into());
                args.push(spec.clone());
            }
            Bootstrap::Join(addr) => {
                args.push("--join".into());
                args.push(addr.clone());
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(guard.is_none(), "manager {} is already running", self.id);
        self.starts += 1;
        let args = self.args();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open manager log");
        let _ = writeln!(
            log,
            "===== harness: start #{} of manager {}: {} {} =====",
            self.starts,
            self.id,
            GANTRY,
            args.join(" ")
        );
        let stderr = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(GANTRY);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        // Plain text in the log files (set GANTRY_LOG to change the filter).
        cmd.env("NO_COLOR", "1");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GANTRY} for manager {}: {e}", self.id));
        *guard = Some(child);
    }

    /// SIGKILL and reap. No-op when not running.
    fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
            if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
                let _ = writeln!(log, "===== harness: SIGKILL manager {} =====", self.id);
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// `Err` when the process was started and has exited on its own.
    fn check_alive(&self) -> Result<(), String> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = guard.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                guard.take();
                let tail = self.log_tail(LOG_TAIL_LINES);
                // The harness only ever sends SIGKILL, and reaps what it kills.
                let hint = if tail.contains("stop requested") {
                    "\n(its log says \"stop requested\": it got SIGTERM or SIGINT, which this harness never sends; \
                     was it stopped from outside the test, e.g. by a `pkill`/`killall` of every gantry process on the machine?)"
                } else {
                    ""
                };
                return Err(format!(
                    "manager {} ({}) exited unexpectedly with {status}{hint}\n{tail}",
                    self.id, self.addr,
                ));
            }
        }
        Ok(())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&format!("manager {}", self.id), &self.log_path, lines)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            if let Some(mut dir) = self.dir.take() {
                dir.disable_cleanup(true);
                eprintln!(
                    "[harness] kept manager {} dir for inspection: {}",
                    self.id,
                    dir.path().display()
                );
            }
        }
    }
}

/// Options for [`Cluster::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--snapshot-every N` on every manager.
    pub snapshot_every: Option<u64>,
    /// `--snapshot-chunk-bytes N` on every manager (small values force chunked transfers).
    pub snapshot_chunk_bytes: Option<u64>,
    /// Further flags given to every manager (e.g. `--acl`).
    pub extra_args: Vec<String>,
    /// Further flags for one manager only, by id, after `extra_args` (e.g. `--dns-listen`
    /// with an address of its own).
    pub manager_args: BTreeMap<u64, Vec<String>>,
}

/// A set of `gantry server` processes on this machine.
pub struct Cluster {
    pub managers: BTreeMap<u64, Manager>,
    pub api: Api,
    opts: Options,
    started: Instant,
}

impl Cluster {
    /// Starts `n` managers with ids 1..=n and waits until they agree on one
    /// leader.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, Options::default()).await
    }

    pub async fn start_with(n: usize, opts: Options) -> Cluster {
        let ports = free_ports(n);
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let spec = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            managers: BTreeMap::new(),
            api: Api::default(),
            opts,
            started: Instant::now(),
        };
        let extra = cluster.extra_args();
        for (i, addr) in addrs.iter().enumerate() {
            let id = i as u64 + 1;
            let mut args = extra.clone();
            if let Some(own) = cluster.opts.manager_args.get(&id) {
                args.extend(own.iter().cloned());
            }
            let m = Manager::new(id, addr.clone(), Bootstrap::Initial(spec.clone()), args);
            cluster.managers.insert(id, m);
        }
        for m in cluster.managers.values_mut() {
            m.spawn();
        }
        cluster.log(&format!("started {n} managers: {spec}"));
        let leader = cluster.wait_for_leader().await;
        cluster.log(&format!("leader elected: manager {leader}"));
        cluster
    }

    fn extra_args(&self) -> Vec<String> {
        let mut extra = Vec::new();
        if let Some(n) = self.opts.snapshot_every {
            extra.push("--snapshot-every".to_string());
            extra.push(n.to_string());
        }
        if let Some(n) = self.opts.snapshot_chunk_bytes {
            extra.push("--snapshot-chunk-bytes".to_string());
            extra.push(n.to_string());
        }
        extra.extend(self.opts.extra_args.iter().cloned());
        extra
    }

    /// Prints a harness line with the time since the cluster started.
    pub fn log(&self, msg: &str) {
        eprintln!(
            "[harness +{:>7.3}s] {msg}",
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn ids(&self) -> Vec<u64> {
        self.managers.keys().copied().collect()
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.managers
            .values()
            .filter(|m| m.is_running())
            .map(|m| m.id)
            .collect()
    }

    pub fn manager(&self, id: u64) -> &Manager {
        self.managers
            .get(&id)
            .unwrap_or_else(|| panic!("no manager {id} in this cluster"))
    }

    pub fn addr(&self, id: u64) -> String {
        self.manager(id).addr.clone()
    }

    /// `http://<addr of manager id><path>`
    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.addr(id))
    }

    /// Addresses of every manager (running or not), in id order.
    pub fn addrs(&self) -> Vec<String> {
        self.managers.values().map(|m| m.addr.clone()).collect()
    }

    pub fn client(&self) -> Api {
        self.api.clone()
    }

    /// Panics (with the log tail) if a manager that should run has exited.
    pub fn assert_alive(&self) {
        if let Err(e) = self.check_alive() {
            panic!("{e}");
        }
    }

    pub fn check_alive(&self) -> Result<(), String> {
        for m in self.managers.values() {
            m.check_alive()?;
        }
        Ok(())
    }

    /// SIGKILL manager `id`.
    pub fn kill(&self, id: u64) {
        self.log(&format!("SIGKILL manager {id}"));
        self.manager(id).kill();
    }

    /// Restarts manager `id` with the same command line and data dir.
    pub fn restart(&mut self, id: u64) {
        self.log(&format!("restart manager {id}"));
        self.managers
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no manager {id}"))
            .spawn();
    }

    /// Stops manager `id` for good (SIGKILL); it stays in the map so its log
    /// is still printed on failure.
    pub fn stop(&self, id: u64) {
        self.kill(id);
    }

    /// Starts a new manager `id` with `--join <addr of manager join_via>`.
    pub fn start_joining(&mut self, id: u64, join_via: u64) {
        let port = free_ports(1)[0];
        let addr = format!("127.0.0.1:{port}");
        let via = self.addr(join_via);
        let mut m = Manager::new(
            id,
            addr.clone(),
            Bootstrap::Join(via.clone()),
            self.extra_args(),
        );
        m.spawn();
        self.managers.insert(id, m);
        self.log(&format!("started manager {id} at {addr} with --join {via}"));
    }

    /// Restarts manager `id` (stopped) with the same data dir and command line, plus
    /// `args` for this start only.
    pub fn restart_with_args(&mut self, id: u64, args: &[&str]) {
        self.log(&format!("restart manager {id} with {args:?}"));
        let m = self
            .managers
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no manager {id}"));
        let usual = m.extra_args.clone();
        m.extra_args.extend(args.iter().map(|a| a.to_string()));
        m.spawn();
        m.extra_args = usual;
    }

    /// Deletes the data dir of manager `id`, which must be stopped: it is lost for good.
    pub fn wipe(&self, id: u64) {
        let m = self.manager(id);
        assert!(!m.is_running(), "manager {id} must be stopped to wipe it");
        self.log(&format!("delete the data dir of manager {id}"));
        std::fs::remove_dir_all(&m.data_dir)
            .unwrap_or_else(|e| panic!("delete {}: {e}", m.data_dir.display()));
    }

    pub async fn status(&self, id: u64) -> Result<Status, String> {
        self.assert_alive();
        self.api
            .status(&self.addr(id))
            .await
            .map_err(|e| format!("manager {id}: {e}"))
    }

    pub async fn raft(&self, id: u64) -> Result<RaftInfo, String> {
        self.assert_alive();
        self.api
            .raft(&self.addr(id))
            .await
            .map_err(|e| format!("manager {id}: {e}"))
    }

    pub async fn list_jobs(&self, id: u64, stale: bool) -> Result<Vec<JobSummary>, String> {
        self.assert_alive();
        self.api
            .list_jobs(&self.addr(id), stale)
            .await
            .map_err(|e| format!("manager {id}: {e}"))
    }

    /// One probe: `Ok(leader)` when every running manager answers, all name
    /// the same leader, that leader is running, says it is the leader, and
    /// its advertised address is its listen address.
    pub async fn agreed_leader(&self) -> Result<u64, String> {
        let running = self.running_ids();
        if running.is_empty() {
            return Err("no manager is running".into());
        }
        let mut seen: BTreeMap<u64, Option<LeaderRef>> = BTreeMap::new();
        let mut statuses = BTreeMap::new();
        for id in &running {
            let st = self.status(*id).await?;
            if st.id != *id {
                return Err(format!(
                    "manager at {} says its id is {}, expected {id}",
                    self.addr(*id),
                    st.id
                ));
            }
            seen.insert(*id, st.leader.clone());
            statuses.insert(*id, st);
        }
        let leaders: BTreeSet<Option<u64>> =
            seen.values().map(|l| l.as_ref().map(|l| l.id)).collect();
        if leaders.len() != 1 {
            return Err(format!("managers disagree on the leader: {seen:?}"));
        }
        let Some(leader) = leaders.into_iter().next().flatten() else {
            return Err(format!("no leader yet: {seen:?}"));
        };
        let Some(st) = statuses.get(&leader) else {
            return Err(format!(
                "leader {leader} is not a running manager: {seen:?}"
            ));
        };
        if st.role != "leader" {
            return Err(format!(
                "everyone names {leader} as leader but it says role={}",
                st.role
            ));
        }
        let expected = self.addr(leader);
        for (id, l) in &seen {
            let l = l.as_ref().expect("checked above");
            if l.addr != expected {
                return Err(format!(
                    "manager {id} gives leader {leader}'s addr as {}, expected {expected}",
                    l.addr
                ));
            }
        }
        let leaders_by_role: Vec<u64> = statuses
            .iter()
            .filter(|(_, s)| s.role == "leader")
            .map(|(id, _)| *id)
            .collect();
        if leaders_by_role != vec![leader] {
            return Err(format!(
                "managers with role=leader: {leaders_by_role:?} (agreed leader {leader})"
            ));
        }
        Ok(leader)
    }

    /// Waits (bounded) until all running managers agree on one leader.
    pub async fn wait_for_leader(&self) -> u64 {
        let this = self;
        wait_until(
            "all running managers to agree on one leader",
            ELECTION_TIMEOUT,
            || async move { this.agreed_leader().await },
        )
        .await
    }

    /// The current leader, once everyone running agrees on one.
    pub async fn leader_id(&self) -> u64 {
        self.wait_for_leader().await
    }

    /// Waits until manager `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) -> Status {
        let this = self;
        wait_until(
            &format!("manager {id} to apply index {index}"),
            CATCH_UP_TIMEOUT,
            || async move {
                let st = this.status(id).await?;
                if st.applied_index >= index {
                    Ok(st)
                } else {
                    Err(format!(
                        "manager {id} applied_index={} commit_index={} role={}",
                        st.applied_index, st.commit_index, st.role
                    ))
                }
            },
        )
        .await
    }

    /// Writes `count` jobs named `{prefix}-{i}` with `concurrency` requests in
    /// flight, round-robin over `via`. Each write is retried (bounded) on a
    /// transport error or a 5xx, for setup writes in tests about something
    /// else; a 4xx fails at once. Returns the acks in id order.
    pub async fn write_jobs(
        &self,
        prefix: &str,
        count: usize,
        concurrency: usize,
        via: &[u64],
    ) -> Vec<Ack> {
        let addrs: Vec<String> = via.iter().map(|id| self.addr(*id)).collect();
        let acks = write_many(&self.api, prefix, count, concurrency, &addrs, 10).await;
        match acks {
            Ok(a) => a,
            Err(e) => {
                self.assert_alive();
                panic!("writing {count} jobs '{prefix}-*': {e}")
            }
        }
    }

    /// Every job id → version, read from manager `id`.
    pub async fn job_versions(
        &self,
        id: u64,
        stale: bool,
    ) -> Result<BTreeMap<String, u64>, String> {
        Ok(self
            .list_jobs(id, stale)
            .await?
            .into_iter()
            .map(|j| (j.id, j.version))
            .collect())
    }

    /// Prints the tail of every manager's log.
    pub fn dump_logs(&self) {
        for m in self.managers.values() {
            eprintln!("{}", m.log_tail(LOG_TAIL_LINES));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("\n[harness] test failed; manager logs follow");
            for m in self.managers.values() {
                let state = if m.is_running() { "running" } else { "stopped" };
                eprintln!(
                    "[harness] manager {} at {} ({state}), started {} time(s), cmd: {} {}",
                    m.id,
                    m.addr,
                    m.starts,
                    GANTRY,
                    m.args().join(" ")
                );
            }
            self.dump_logs();
        }
        for m in self.managers.values() {
            m.kill();
        }
    }
}

/// Writes `count` jobs `{prefix}-{i}` round-robin over `addrs`, `concurrency`
/// at a time; each is retried up to `retries` times on a transport error or
/// 5xx. Returns the acks in id order (i order).
pub async fn write_many(
    api: &Api,
    prefix: &str,
    count: usize,
    concurrency: usize,
    addrs: &[String],
    retries: usize,
) -> Result<Vec<Ack>, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let next = Arc::new(AtomicUsize::new(0));
    let addrs = Arc::new(addrs.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let addrs = addrs.clone();
        let api = api.clone();
        let prefix = prefix.to_string();
        tasks.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return Ok::<_, String>(acks);
                }
                let id = format!("{prefix}-{i}");
                let spec = job(&id);
                let mut attempt = 0;
                loop {
                    let addr = &addrs[(i + attempt) % addrs.len()];
                    let outcome = api.post_job(addr, &spec).await;
                    let retryable = match &outcome {
                        Ok(r) if r.status == 201 => {
                            let ack = decode_ack(addr, r)?;
                            if ack.id != id {
                                return Err(format!(
                                    "POST {id} to {addr}: ack names id {}",
                                    ack.id
                                ));
                            }
                            acks.push((i, ack));
                            break;
                        }
                        Ok(r) => r.status >= 500,
                        Err(_) => true,
                    };
                    let reason = match outcome {
                        Ok(r) => r.describe(),
                        Err(e) => e,
                    };
                    if !retryable || attempt >= retries {
                        return Err(format!(
                            "POST job {id} to {addr} failed after {} attempt(s): {reason}",
                            attempt + 1
                        ));
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(acks)) => all.extend(acks),
            Ok(Err(e)) => {
                tasks.abort_all();
                return Err(e);
            }
            Err(e) => return Err(format!("writer task panicked: {e}")),
        }
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}

/// Median and max of a list of durations (None when empty).
pub fn median_max(durations: &[Duration]) -> Option<(Duration, Duration)> {
    if durations.is_empty() {
        return None;
    }
    let mut d = durations.to_vec();
    d.sort();
    let median = if d.len() % 2 == 1 {
        d[d.len() / 2]
    } else {
        (d[d.len() / 2 - 1] + d[d.len() / 2]) / 2
    };
    Some((median, *d.last().expect("non-empty")))
}

/// Compares the id sets of two listings and describes the difference.
pub fn diff_ids(expected: &BTreeSet<String>, got: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = expected.difference(got).take(10).collect();
    let extra: Vec<&String> = got.difference(expected).take(10).collect();
    format!(
        "expected {} ids, got {}; missing (first 10 of {}): {missing:?}; unexpected (first 10 of {}): {extra:?}",
        expected.len(),
        got.len(),
        expected.difference(got).count(),
        got.difference(expected).count()
    )
}

/// The last `lines` lines of a process' log file, framed for a test's failure message.
pub fn log_tail(whose: &str, path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "----- {whose} log tail ({}, last {} of {} lines) -----\n{}\n----- end of {whose} log -----",
        path.display(),
        all.len() - start,
        all.len(),
        all[start..].join("\n"),
    )
}
