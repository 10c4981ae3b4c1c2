//! Harness for the deployment tests (rolling updates against real agents and Docker).
//!
//! - [`web_job`]: a busybox httpd service whose page says which version serves it, with an
//!   HTTP health check and a `shutdown_delay`, so a rollout can be watched from outside;
//! - [`ServiceProbe`]: a client on a thread of its own that does what a well-behaved user
//!   of service discovery does, every 50 ms: look the service up (`GET
//!   /v1/services/{name}?stale=true`, any manager) and call one of its endpoints (round
//!   robin), counting what answered and what failed;
//! - waits on deployments ([`wait_deployment`]) and on a job's healthy allocations.
//!
//! Every loop is bounded in time and in iterations; durations are printed, not asserted.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gantry_api::{
    Allocation, Client, ClientState, Deployment, DeploymentStatus, Health, JobRegistered, JobSpec,
    JobVersion, ServiceEndpoint, TaskSpec,
};
use serde_json::{json, Value};

use super::agent::{allocations, live, AgentProcess, IMAGE};
use super::Cluster;

/// The poll interval of the waits in this module.
const POLL: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// The job
// ---------------------------------------------------------------------------

/// A service `id` of `replicas` busybox httpd instances serving `text` (plus a newline) at
/// `/` on port `http` (container 8080, dynamic host port; service `<id>-http`), with an
/// HTTP health check on `health_path` every 500 ms, `shutdown_delay: 1s`, 100 millis / 32
/// MB, and `update` as the job's update block (`Value::Null`: none). The page
/// `/health.txt` exists too (for tests that remove it to make one instance unhealthy).
pub fn web_job(id: &str, replicas: u32, text: &str, health_path: &str, update: Value) -> Value {
    let script = format!(
        "mkdir -p /www && echo {text} > /www/index.html && echo ok > /www/health.txt \
         && exec httpd -f -p 8080 -h /www"
    );
    let mut spec = json!({
        "id": id,
        "type": "service",
        "replicas": replicas,
        "tasks": [{
            "name": "main",
            "image": IMAGE,
            "command": ["sh", "-c", script],
            "resources": {"cpu_millis": 100, "memory_mb": 32},
            "ports": [{"name": "http", "container_port": 8080}],
            "health": {"type": "http", "port": "http", "path": health_path,
                       "interval": "500ms", "timeout": "1s"},
            "shutdown_delay": "1s"
        }]
    });
    if !update.is_null() {
        spec["update"] = update;
    }
    spec
}

/// `POST /v1/jobs` through the typed client; panics unless it is accepted.
pub async fn register(client: &Client, spec: &Value) -> JobRegistered {
    let parsed: JobSpec = serde_json::from_value(spec.clone())
        .unwrap_or_else(|e| panic!("the test's spec does not parse as a JobSpec ({e}): {spec}"));
    client
        .register_job(&parsed)
        .await
        .unwrap_or_else(|e| panic!("registering {spec}: {e}"))
}

/// The deployment a registration started; panics (naming the version) when it has none.
pub fn deployment_of(reg: &JobRegistered) -> String {
    reg.deployment_id.clone().unwrap_or_else(|| {
        panic!(
            "registering job {} version {} started no deployment (JobRegistered has no \
             deployment_id): {reg:?}",
            reg.id, reg.version
        )
    })
}

/// The job's kept versions by number (`GET /v1/jobs/{id}/versions`).
pub async fn versions(client: &Client, job: &str) -> Result<BTreeMap<u64, JobVersion>, String> {
    client
        .job_versions(job)
        .await
        .map(|list| list.into_iter().map(|v| (v.version, v)).collect())
        .map_err(|e| format!("GET /v1/jobs/{job}/versions: {e}"))
}

/// The tasks of version `version` of `job`.
pub async fn version_tasks(client: &Client, job: &str, version: u64) -> Vec<TaskSpec> {
    let all = versions(client, job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    all.get(&version)
        .unwrap_or_else(|| {
            panic!(
                "job {job} has no version {version}; kept: {:?}",
                all.keys().collect::<Vec<_>>()
            )
        })
        .spec
        .tasks
        .clone()
}

// ---------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------

/// Live (desired run, not terminal) allocations of `job`, sorted by id.
pub async fn live_allocations(client: &Client, job: &str) -> Result<Vec<Allocation>, String> {
    let mut list = live(&allocations(client, job).await?);
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

/// Running and reported healthy.
pub fn is_healthy(a: &Allocation) -> bool {
    a.client_state == ClientState::Running && a.health == Health::Healthy
}

/// `Ok(live)` when `job` has exactly `n` live allocations, each running and healthy and
/// passing `accept` (e.g. a version check).
pub fn check_healthy(
    all: &[Allocation],
    n: usize,
    accept: impl Fn(&Allocation) -> bool,
) -> Result<Vec<Allocation>, String> {
    let live = live(all);
    if live.len() == n && live.iter().all(|a| is_healthy(a) && accept(a)) {
        Ok(live)
    } else {
        Err(format!(
            "want {n} live, running, healthy (and accepted) allocations; have: {}",
            describe_allocs_v(all)
        ))
    }
}

/// Waits until `job` has exactly `n` live allocations, all running, healthy and accepted.
pub async fn wait_healthy(
    cluster: &Cluster,
    client: &Client,
    agents: &[&AgentProcess],
    job: &str,
    n: usize,
    timeout: Duration,
    accept: impl Fn(&Allocation) -> bool,
) -> Vec<Allocation> {
    let t = Instant::now();
    let max_polls = timeout.as_millis() / POLL.as_millis() + 10;
    let mut last = String::from("(never polled)");
    for _ in 0..max_polls {
        cluster.assert_alive();
        for a in agents {
            a.assert_alive();
        }
        match allocations(client, job).await {
            Ok(all) => match check_healthy(&all, n, &accept) {
                Ok(live) => return live,
                Err(e) => last = e,
            },
            Err(e) => last = e,
        }
        if t.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!(
        "timed out after {timeout:?} waiting for job {job}: {n} healthy allocations; last: {last}"
    )
}

/// Like `agent::describe_allocs`, with each allocation's version, deployment and canary flag.
pub fn describe_allocs_v(all: &[Allocation]) -> String {
    if all.is_empty() {
        return "(none)".into();
    }
    let detail: Vec<String> = all
        .iter()
        .map(|a| {
            format!(
                "\n  {} v{} slot={} node={} port(s)={:?} desired={:?} state={:?} health={:?} \
                 restarts={} deployment={:?} canary={} healthy_since_ms={:?} msg={:?}",
                a.id,
                a.job_version,
                a.slot,
                a.node_id,
                a.ports.iter().map(|p| p.host_port).collect::<Vec<_>>(),
                a.desired,
                a.client_state,
                a.health,
                a.restart_count,
                a.deployment_id,
                a.canary,
                a.healthy_since_ms,
                a.message
            )
        })
        .collect();
    detail.concat()
}

// ---------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------

/// One line for logs.
pub fn describe_deployment(d: &Deployment) -> String {
    format!(
        "{} v{} {} placed={} healthy={} unhealthy={} desired_total={} promoted={} \
         reverted_to={:?}: {}",
        d.id,
        d.job_version,
        d.status.as_str(),
        d.placed,
        d.healthy,
        d.unhealthy,
        d.desired_total,
        d.promoted,
        d.reverted_to,
        d.description
    )
}

/// Polls deployment `id` until `done` says yes. Prints every change of its progress. A
/// deployment that ends (not running or paused) without satisfying `done` fails the test
/// at once with its state and the job's allocations; so does an agent or manager that
/// exited. Errors of the reads (an election under way) are retried until `timeout`.
pub async fn wait_deployment_where(
    cluster: &Cluster,
    client: &Client,
    agents: &[&AgentProcess],
    id: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Deployment) -> bool,
) -> Deployment {
    let t = Instant::now();
    let max_polls = timeout.as_millis() / POLL.as_millis() + 10;
    let mut last = String::from("(never polled)");
    let mut last_line = String::new();
    for _ in 0..max_polls {
        cluster.assert_alive();
        for a in agents {
            a.assert_alive();
        }
        match client.get_deployment(id, false).await {
            Ok(d) => {
                let d = d.value;
                let line = describe_deployment(&d);
                if line != last_line {
                    cluster.log(&format!("deployment: {line}"));
                    last_line = line.clone();
                }
                if done(&d) {
                    return d;
                }
                if !d.status.is_active() {
                    let allocs = allocations(client, &d.job_id)
                        .await
                        .map(|all| describe_allocs_v(&all))
                        .unwrap_or_else(|e| e);
                    panic!(
                        "deployment {id} ended as {} while waiting for {what} ({:?} in): {line}\n\
                         allocations of {}: {allocs}",
                        d.status.as_str(),
                        t.elapsed(),
                        d.job_id
                    );
                }
                last = line;
            }
            Err(e) => last = format!("GET /v1/deployments/{id}: {e}"),
        }
        if t.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out after {timeout:?} waiting for {what} of deployment {id}; last: {last}")
}

/// Waits until deployment `id` has status `want` (failing at once if it ends otherwise).
pub async fn wait_deployment(
    cluster: &Cluster,
    client: &Client,
    agents: &[&AgentProcess],
    id: &str,
    want: DeploymentStatus,
    timeout: Duration,
) -> Deployment {
    wait_deployment_where(
        cluster,
        client,
        agents,
        id,
        &format!("status {}", want.as_str()),
        timeout,
        |d| d.status == want,
    )
    .await
}

/// Waits until `job` has a deployment of `version` (listed by `GET /v1/deployments?job=`).
pub async fn wait_deployment_of_version(
    client: &Client,
    job: &str,
    version: u64,
    timeout: Duration,
) -> Deployment {
    super::wait_until(
        &format!("a deployment of job {job} version {version}"),
        timeout,
        || async {
            let list = client
                .list_deployments(Some(job), false)
                .await
                .map_err(|e| format!("GET /v1/deployments?job={job}: {e}"))?
                .value;
            list.iter()
                .find(|d| d.job_version == version)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "deployments of {job}: {:?}",
                        list.iter().map(describe_deployment).collect::<Vec<_>>()
                    )
                })
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// A client of the service
// ---------------------------------------------------------------------------

/// What a [`ServiceProbe`] saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeStats {
    /// Ticks run (one lookup, and one call when there was an endpoint).
    pub ticks: u64,
    /// Calls answered 200 with an expected body.
    pub ok: u64,
    /// Calls that failed: no connection, a timeout, a status other than 200, or an
    /// unexpected body.
    pub failed: u64,
    /// Lookups that listed no endpoint at all (nothing to call).
    pub no_endpoints: u64,
    /// Lookups no manager answered (no call made that tick).
    pub lookup_errors: u64,
    /// Answers by body (trimmed): how many calls each version answered.
    pub by_body: BTreeMap<String, u64>,
    /// Allocations answering, by id: (calls ok, calls failed).
    pub by_alloc: BTreeMap<String, (u64, u64)>,
    /// The first failures, with their time since the probe started.
    pub failures: Vec<String>,
    /// The first lookup errors.
    pub lookup_failures: Vec<String>,
    /// Every allocation id seen among the endpoints.
    pub endpoints_seen: BTreeSet<String>,
    /// How long it ran.
    pub ran_for: Duration,
}

impl ProbeStats {
    pub fn answered(&self, body: &str) -> u64 {
        self.by_body.get(body).copied().unwrap_or(0)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} ticks in {:.1}s: {} ok, {} failed, {} with no endpoint, {} lookups unanswered; \
             bodies {:?}; {} allocations answered",
            self.ticks,
            self.ran_for.as_secs_f64(),
            self.ok,
            self.failed,
            self.no_endpoints,
            self.lookup_errors,
            self.by_body,
            self.by_alloc.len()
        )
    }
}

/// Failures and lookup errors kept for the report.
const KEEP_FAILURES: usize = 20;
/// The probe's period.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Timeout of each lookup and of each call.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A client thread that keeps calling a service through discovery (see the module doc).
pub struct ServiceProbe {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ProbeStats>>,
    handle: Option<JoinHandle<()>>,
    service: String,
}

impl ServiceProbe {
    /// Starts calling service `service` of the managers at `managers` (host:port), every
    /// [`PROBE_INTERVAL`], for at most `max_run`. An answer counts as ok when it is a 200
    /// whose trimmed body is one of `bodies`.
    pub fn start(managers: &[String], service: &str, bodies: &[&str], max_run: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ProbeStats::default()));
        let managers = managers.to_vec();
        let service_name = service.to_string();
        let bodies: BTreeSet<String> = bodies.iter().map(|b| b.to_string()).collect();
        let handle = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(format!("probe-{service}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("probe runtime");
                    rt.block_on(probe_loop(
                        managers,
                        service_name,
                        bodies,
                        max_run,
                        stop,
                        stats,
                    ));
                })
                .expect("spawn the probe thread")
        };
        ServiceProbe {
            stop,
            stats,
            handle: Some(handle),
            service: service.to_string(),
        }
    }

    /// What it saw so far.
    pub fn stats(&self) -> ProbeStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True while the thread runs (it stops by itself after `max_run`).
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops it and returns what it saw.
    pub fn stop(mut self) -> ProbeStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                eprintln!("[probe {}] the probe thread panicked", self.service);
            }
        }
    }
}

impl Drop for ServiceProbe {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn probe_loop(
    managers: Vec<String>,
    service: String,
    bodies: BTreeSet<String>,
    max_run: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ProbeStats>>,
) {
    // No pooled connections: every call is a new connection, as a client that looked the
    // endpoint up a moment ago would make (and busybox httpd closes after each answer).
    let http = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .expect("probe http client");
    let started = Instant::now();
    let max_ticks = max_run.as_millis() / PROBE_INTERVAL.as_millis() + 10;
    for tick in 0..max_ticks {
        if stop.load(Ordering::SeqCst) || started.elapsed() >= max_run {
            break;
        }
        let tick_start = Instant::now();
        let at = started.elapsed();
        // Look the service up at the next manager first (the others if it does not
        // answer), then call one endpoint, round robin.
        let first_manager = tick as usize % managers.len();
        let outcome = one_tick(&http, &managers, first_manager, &service, &bodies, tick).await;
        {
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            record(&mut s, outcome, at, tick, &service);
            s.ran_for = started.elapsed();
        }
        pace(tick_start).await;
    }
    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
    s.ran_for = started.elapsed();
}

/// What one tick of the probe did.
enum Tick {
    /// No manager answered the lookup: why, for each.
    LookupFailed(Vec<String>),
    /// The service listed no endpoint.
    NoEndpoint,
    /// One endpoint was called.
    Called {
        /// The allocations the lookup listed.
        listed: Vec<String>,
        alloc_id: String,
        url: String,
        /// The body (trimmed) of a good answer, or what went wrong.
        result: Result<String, String>,
    },
}

async fn one_tick(
    http: &reqwest::Client,
    managers: &[String],
    first_manager: usize,
    service: &str,
    bodies: &BTreeSet<String>,
    tick: u128,
) -> Tick {
    let mut endpoints = None;
    let mut why = Vec::new();
    for attempt in 0..managers.len() {
        let addr = &managers[(first_manager + attempt) % managers.len()];
        let url = format!("http://{addr}/v1/services/{service}?stale=true");
        match lookup(http, &url).await {
            Ok(list) => {
                endpoints = Some(list);
                break;
            }
            Err(e) => why.push(e),
        }
    }
    let Some(endpoints) = endpoints else {
        return Tick::LookupFailed(why);
    };
    if endpoints.is_empty() {
        return Tick::NoEndpoint;
    }
    let endpoint = &endpoints[tick as usize % endpoints.len()];
    let url = format!("http://{}/", endpoint.socket_addr());
    let result = match http.get(&url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(text) if status == 200 && bodies.contains(text.trim()) => {
                    Ok(text.trim().to_string())
                }
                Ok(text) => Err(format!("HTTP {status} body {:?}", text.trim())),
                Err(e) => Err(format!("HTTP {status}, reading the body: {e}")),
            }
        }
        Err(e) => Err(error_chain(&e)),
    };
    Tick::Called {
        listed: endpoints.iter().map(|e| e.alloc_id.clone()).collect(),
        alloc_id: endpoint.alloc_id.clone(),
        url,
        result,
    }
}

/// Counts one tick's outcome.
fn record(s: &mut ProbeStats, outcome: Tick, at: Duration, tick: u128, service: &str) {
    let at = at.as_secs_f64();
    s.ticks += 1;
    match outcome {
        Tick::LookupFailed(why) => {
            s.lookup_errors += 1;
            if s.lookup_failures.len() < KEEP_FAILURES {
                s.lookup_failures
                    .push(format!("+{at:.3}s tick {tick}: {}", why.join("; ")));
            }
        }
        Tick::NoEndpoint => {
            s.no_endpoints += 1;
            if s.failures.len() < KEEP_FAILURES {
                s.failures.push(format!(
                    "+{at:.3}s tick {tick}: the service lists no endpoint"
                ));
            }
        }
        Tick::Called {
            listed,
            alloc_id,
            url,
            result,
        } => {
            let count = listed.len();
            s.endpoints_seen.extend(listed);
            let per_alloc = s.by_alloc.entry(alloc_id.clone()).or_default();
            match result {
                Ok(body) => {
                    per_alloc.0 += 1;
                    s.ok += 1;
                    *s.by_body.entry(body).or_default() += 1;
                }
                Err(e) => {
                    per_alloc.1 += 1;
                    s.failed += 1;
                    if s.failures.len() < KEEP_FAILURES {
                        let line = format!(
                            "+{at:.3}s tick {tick}: GET {url} (allocation {alloc_id}, one of \
                             {count} endpoints): {e}"
                        );
                        eprintln!("[probe {service}] FAILED {line}");
                        s.failures.push(line);
                    }
                }
            }
        }
    }
}

/// Sleeps the rest of the tick.
async fn pace(tick_start: Instant) {
    if let Some(rest) = PROBE_INTERVAL.checked_sub(tick_start.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

async fn lookup(http: &reqwest::Client, url: &str) -> Result<Vec<ServiceEndpoint>, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {}", error_chain(&e)))?;
    if status != 200 {
        return Err(format!("GET {url}: HTTP {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: cannot decode ({e}): {text}"))
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
