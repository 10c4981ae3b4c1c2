//! What an operator watches: `/metrics`, `/v1/events` and the JSON logs, against real
//! managers with agents simulated in this process (`gantry_api::sim_agent`).
//!
//! One cluster runs a workload: a fourth manager joins, agents register, jobs are placed
//! and run, one job fits nowhere. Then:
//! - the leader's `/metrics` has every documented name, and its figures agree with the
//!   state (placements, ready nodes, running allocations, connected agents); a follower's
//!   has its own Raft gauges;
//! - the event stream from index 0 shows the membership change and the workload's node,
//!   job, job version and allocation changes; resuming from a middle index gives exactly
//!   the tail of that first read, and a follower's stream the same events;
//! - a restarted manager answers an index from before its restart with `truncated`;
//!   bad parameters get `400`.
//!
//! Reading a live stream needs a known end: two jobs are written after the workload
//! (`sentinel-a`, then `sentinel-b`); once a stream has shown `sentinel-b`, it has shown
//! every change up to `sentinel-a`'s index, which is what the reads compare.
//!
//! A second scenario runs `gantry server --log-format json` and parses its log lines.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use gantry_api::client::{EventStream, StreamMessage};
use gantry_api::events::{Event, EventType, MembershipObject, Topic, Truncated};
use gantry_api::sim_agent::SimAgent;
use gantry_api::{Allocation, Client, ClientOptions, ClientState, DesiredState, Node, NodeStatus};
use serde_json::{json, Value};
use support::agent::allocations;
use support::{wait_until, Cluster, CATCH_UP_TIMEOUT};

const AGENTS: usize = 4;
/// How long any one stream read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Every metric name the README documents.
const METRIC_NAMES: &[&str] = &[
    "gantry_raft_term",
    "gantry_raft_is_leader",
    "gantry_raft_role",
    "gantry_raft_commit_index",
    "gantry_raft_applied_index",
    "gantry_raft_apply_lag",
    "gantry_raft_last_log_index",
    "gantry_raft_snapshot_index",
    "gantry_raft_log_entries",
    "gantry_raft_voters",
    "gantry_nodes",
    "gantry_allocations",
    "gantry_jobs",
    "gantry_events_held",
    "gantry_events_oldest_index",
    "gantry_scheduler_evaluations_total",
    "gantry_scheduler_placements_total",
    "gantry_scheduler_placement_seconds",
    "gantry_scheduler_failed_placements_total",
    "gantry_scheduler_plan_rejections_total",
    "gantry_agents_connected",
    "gantry_heartbeats_missed_total",
    "gantry_node_status_changes_total",
    "gantry_dispatcher_report_batch",
    "gantry_write_batch_size",
    "gantry_http_request_duration_seconds",
];

fn client_for(addrs: &[String]) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(addrs, None, options).expect("client")
}

fn service(id: &str, replicas: u32, cpu: u64) -> Value {
    json!({
        "id": id,
        "type": "service",
        "replicas": replicas,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": cpu, "memory_mb": 64}
        }]
    })
}

/// Submits through the leader; returns the commit index.
async fn submit(cluster: &Cluster, spec: &Value) -> u64 {
    let leader = cluster.leader_id().await;
    cluster
        .client()
        .submit(&cluster.addr(leader), spec)
        .await
        .unwrap_or_else(|e| panic!("submitting {spec}: {e}"))
        .index
}

/// Waits until `job` has `n` live allocations, all running.
async fn wait_running(client: &Client, job: &str, n: usize) -> Vec<Allocation> {
    wait_until(&format!("{job}: {n} running"), CATCH_UP_TIMEOUT, || async {
        let all = allocations(client, job).await?;
        let live: Vec<Allocation> = all
            .into_iter()
            .filter(|a| a.desired == DesiredState::Run && !a.client_state.is_terminal())
            .collect();
        let running = live
            .iter()
            .filter(|a| a.client_state == ClientState::Running)
            .count();
        if live.len() == n && running == n {
            Ok(live)
        } else {
            Err(format!("{} live, {running} running", live.len()))
        }
    })
    .await
}

// ---------------------------------------------------------------------------
// Metrics text
// ---------------------------------------------------------------------------

/// One sample line: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (the subset the exporter writes).
fn parse_metrics(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                for pair in split_labels(body) {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    labels.insert(k.to_string(), v.trim_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (samples, types)
}

/// `a="x",b="y,z"` → `a="x"`, `b="y,z"` (commas inside quotes stay).
fn split_labels(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in body.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        parts.push(&body[start..]);
    }
    parts
}

struct Metrics {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Metrics {
    async fn scrape(cluster: &Cluster, id: u64) -> Metrics {
        let r = cluster
            .client()
            .get(&cluster.addr(id), "/metrics")
            .await
            .expect("GET /metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.describe());
        let (samples, types) = parse_metrics(&r.text);
        Metrics { samples, types }
    }

    /// The value of the series `name` with exactly `labels` (among its labels).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// Every family name (a histogram's samples belong to its base name).
    fn has_family(&self, name: &str) -> bool {
        self.types.contains_key(name)
            && self.samples.iter().any(|s| {
                s.name == name
                    || s.name
                        .strip_prefix(name)
                        .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))
            })
    }
}

// ---------------------------------------------------------------------------
// Event streams
// ---------------------------------------------------------------------------

/// Reads `stream` until the event of `until_key` shows; returns every event read.
async fn read_until(stream: &mut EventStream, until_key: &str, what: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let read = async {
        loop {
            match stream.next().await {
                Some(Ok(StreamMessage::Event(event))) => {
                    let done = event.key == until_key;
                    events.push(event);
                    if done {
                        return;
                    }
                }
                Some(Ok(StreamMessage::Truncated(t))) => {
                    panic!("{what}: truncated ({t:?}) after {} events", events.len())
                }
                Some(Err(e)) => panic!("{what}: {e}"),
                None => panic!("{what}: the stream ended after {} events", events.len()),
            }
        }
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        panic!(
            "{what}: no event for {until_key} within {READ_TIMEOUT:?}; read {} events, last {:?}",
            events.len(),
            events.last()
        );
    }
    events
}

fn up_to(events: &[Event], index: u64) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.index <= index)
        .cloned()
        .collect()
}

/// The last event of each key, by key.
fn latest(events: &[Event]) -> BTreeMap<&str, &Event> {
    events.iter().map(|e| (e.key.as_str(), e)).collect()
}

fn describe(events: &[Event]) -> String {
    let mut counts: BTreeMap<(Topic, String), usize> = BTreeMap::new();
    for e in events {
        *counts
            .entry((e.topic, format!("{:?}", e.kind)))
            .or_default() += 1;
    }
    format!("{} events: {counts:?}", events.len())
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_events_after_a_workload() {
    let _serial = support::SERIAL.lock().await;
    let mut cluster = Cluster::start(3).await;

    // A membership change: a fourth manager joins as a voter.
    cluster.start_joining(4, 1);
    wait_until("4 voters", CATCH_UP_TIMEOUT, || async {
        let st = cluster.status(1).await?;
        if st.voters().len() == 4 {
            Ok(())
        } else {
            Err(format!("voters {:?}", st.voters()))
        }
    })
    .await;

    let client = client_for(&cluster.addrs());
    let agents: Vec<SimAgent> = (0..AGENTS)
        .map(|i| SimAgent::start(&client, &format!("obs-{i}"), 4000, 8192))
        .collect();
    wait_until(
        &format!("{AGENTS} nodes ready"),
        CATCH_UP_TIMEOUT,
        || async {
            let nodes = client.list_nodes(false).await.map_err(|e| e.to_string())?;
            let ready = nodes
                .value
                .iter()
                .filter(|n| n.status == NodeStatus::Ready)
                .count();
            if ready == AGENTS {
                Ok(())
            } else {
                Err(format!("{ready} ready"))
            }
        },
    )
    .await;

    submit(&cluster, &service("web", 6, 250)).await;
    submit(&cluster, &service("api", 3, 500)).await;
    // Fits on no node: a failed placement for want of cpu.
    submit(&cluster, &service("huge", 1, 64_000)).await;
    let web = wait_running(&client, "web", 6).await;
    let api = wait_running(&client, "api", 3).await;
    let placed: Vec<&Allocation> = web.iter().chain(&api).collect();
    wait_until("huge: shown unplaced", CATCH_UP_TIMEOUT, || async {
        let job = client
            .get_job("huge", false)
            .await
            .map_err(|e| e.to_string())?;
        if job.value.unplaced.is_empty() {
            Err("nothing unplaced yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;

    let sentinel_a = submit(&cluster, &support::job("sentinel-a")).await;
    submit(&cluster, &support::job("sentinel-b")).await;
    cluster.log(&format!("workload done; sentinel-a at index {sentinel_a}"));

    // --- Metrics on the leader. ---
    let leader = cluster.leader_id().await;
    let r = cluster
        .client()
        .get(&cluster.addr(leader), "/v1/jobs/web")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let m = wait_until(
        "the leader's metrics to count every agent session",
        CATCH_UP_TIMEOUT,
        || async {
            let m = Metrics::scrape(&cluster, leader).await;
            match m.find("gantry_agents_connected", &[]) {
                Some(n) if n as usize == AGENTS => Ok(m),
                other => Err(format!("gantry_agents_connected = {other:?}")),
            }
        },
    )
    .await;
    let missing: Vec<&&str> = METRIC_NAMES.iter().filter(|n| !m.has_family(n)).collect();
    assert!(
        missing.is_empty(),
        "metrics missing on the leader: {missing:?}"
    );
    for histogram in [
        "gantry_scheduler_placement_seconds",
        "gantry_http_request_duration_seconds",
    ] {
        assert_eq!(
            m.types.get(histogram).map(String::as_str),
            Some("histogram"),
            "{histogram} must be a histogram"
        );
    }
    assert_eq!(m.value("gantry_raft_is_leader", &[]), 1.0);
    assert_eq!(m.value("gantry_raft_role", &[("role", "leader")]), 1.0);
    assert_eq!(m.value("gantry_raft_role", &[("role", "follower")]), 0.0);
    assert!(m.value("gantry_raft_term", &[]) >= 1.0);
    assert_eq!(m.value("gantry_raft_voters", &[]), 4.0);
    let commit = m.value("gantry_raft_commit_index", &[]);
    let applied = m.value("gantry_raft_applied_index", &[]);
    assert!(commit >= sentinel_a as f64 && applied >= sentinel_a as f64);
    assert_eq!(
        m.value("gantry_raft_apply_lag", &[]),
        (commit - applied).max(0.0)
    );
    assert!(m.value("gantry_raft_log_entries", &[]) >= 1.0);
    assert!(
        m.value("gantry_raft_log_entries", &[]) <= m.value("gantry_raft_last_log_index", &[]) + 1.0
    );
    assert_eq!(
        m.value("gantry_nodes", &[("status", "ready")]),
        AGENTS as f64
    );
    assert_eq!(m.value("gantry_nodes", &[("status", "down")]), 0.0);
    assert_eq!(
        m.value("gantry_allocations", &[("client_state", "running")]),
        placed.len() as f64
    );
    assert_eq!(m.value("gantry_jobs", &[]), 5.0);
    let placements = m.value("gantry_scheduler_placements_total", &[]);
    assert!(
        placements >= placed.len() as f64,
        "placements_total {placements} < {} placed",
        placed.len()
    );
    let placement_count = m.value("gantry_scheduler_placement_seconds_count", &[]);
    assert!(placement_count >= 1.0 && placement_count <= placements);
    assert!(m.value("gantry_scheduler_evaluations_total", &[]) >= 3.0);
    assert!(
        m.value(
            "gantry_scheduler_failed_placements_total",
            &[("reason", "cpu")]
        ) >= 1.0,
        "the huge job failed for want of cpu"
    );
    assert_eq!(m.value("gantry_heartbeats_missed_total", &[]), 0.0);
    let jobs_posts = m.value(
        "gantry_http_request_duration_seconds_count",
        &[("route", "/v1/jobs"), ("method", "POST"), ("status", "201")],
    );
    assert!(jobs_posts >= 1.0, "POST /v1/jobs counted under its route");
    assert!(
        m.find(
            "gantry_http_request_duration_seconds_bucket",
            &[("route", "/v1/jobs/{id}"), ("le", "+Inf")]
        )
        .is_some(),
        "routes are labelled by their template"
    );
    assert!(m.sum("gantry_events_held") >= 1.0);
    cluster.log(&format!(
        "leader metrics: {placements} placements, {placement_count} latencies, {} evaluations",
        m.value("gantry_scheduler_evaluations_total", &[])
    ));

    // A follower shows its own Raft gauges.
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != 4)
        .expect("a follower");
    let fm = Metrics::scrape(&cluster, follower).await;
    assert_eq!(fm.value("gantry_raft_is_leader", &[]), 0.0);
    assert_eq!(fm.value("gantry_raft_role", &[("role", "follower")]), 1.0);
    assert_eq!(
        fm.value("gantry_nodes", &[("status", "ready")]),
        AGENTS as f64
    );

    // --- Events from index 0 on the leader. ---
    let leader_client = client_for(&[cluster.addr(leader)]);
    let mut stream = leader_client.events(Some(0), &[]).await.expect("events");
    let first = read_until(&mut stream, "job/sentinel-b", "leader from 0").await;
    drop(stream);
    let first = up_to(&first, sentinel_a);
    cluster.log(&format!("first read: {}", describe(&first)));
    let indexes: Vec<u64> = first.iter().map(|e| e.index).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] <= w[1]),
        "events arrive in log order"
    );
    assert!(first.iter().all(|e| e.index > 0));

    // The membership change: manager 4 became a voter.
    let memberships: Vec<MembershipObject> = first
        .iter()
        .filter(|e| e.topic == Topic::Membership)
        .map(|e| e.decode().expect("an object").expect("a membership"))
        .collect();
    assert!(
        memberships
            .iter()
            .any(|m| m.members.len() == 4 && m.members.iter().all(|m| m.voter)),
        "a membership event with 4 voters: {memberships:?}"
    );
    // Nodes: every agent's node, last seen ready.
    let last = latest(&first);
    let nodes = client.list_nodes(false).await.unwrap().value;
    for node in &nodes {
        let event = last
            .get(format!("node/{}", node.id).as_str())
            .unwrap_or_else(|| panic!("no event for node {}", node.id));
        let seen: Node = event.decode().unwrap().unwrap();
        assert_eq!(seen.status, NodeStatus::Ready, "node {}", node.id);
    }
    // Jobs and their versions.
    for job in ["web", "api", "huge", "sentinel-a"] {
        assert!(
            last.contains_key(format!("job/{job}").as_str()),
            "job/{job}"
        );
        assert!(
            first
                .iter()
                .any(|e| e.topic == Topic::JobVersion && e.key.starts_with(&format!("jobv/{job}/"))),
            "a version of {job}"
        );
    }
    // Allocations: every one placed, last seen running.
    for a in &placed {
        let event = last
            .get(format!("alloc/{}", a.id).as_str())
            .unwrap_or_else(|| panic!("no event for allocation {}", a.id));
        assert_eq!(event.topic, Topic::Allocation);
        assert_eq!(event.kind, EventType::Upsert);
        let seen: Allocation = event.decode().unwrap().unwrap();
        assert_eq!(seen.client_state, ClientState::Running, "{}", a.id);
        assert_eq!(seen.node_id, a.node_id);
    }

    // --- Resume from the middle: exactly the tail. ---
    let k = indexes[indexes.len() / 2];
    let tail: Vec<Event> = first.iter().filter(|e| e.index > k).cloned().collect();
    assert!(!tail.is_empty() && tail.len() < first.len());
    let mut stream = leader_client.events(Some(k), &[]).await.expect("events");
    let resumed = up_to(
        &read_until(&mut stream, "job/sentinel-b", "leader from the middle").await,
        sentinel_a,
    );
    drop(stream);
    assert_eq!(
        resumed, tail,
        "resuming after index {k} gives the first read's tail"
    );
    cluster.log(&format!(
        "resumed after {k}: {} events, as the first read",
        tail.len()
    ));

    // --- Topics filter. ---
    let mut stream = leader_client
        .events(Some(k), &[Topic::Allocation, Topic::Job])
        .await
        .expect("events");
    let filtered = up_to(
        &read_until(&mut stream, "job/sentinel-b", "leader, two topics").await,
        sentinel_a,
    );
    drop(stream);
    let expected: Vec<Event> = tail
        .iter()
        .filter(|e| matches!(e.topic, Topic::Allocation | Topic::Job))
        .cloned()
        .collect();
    assert_eq!(filtered, expected);

    // --- A follower's stream shows the same events. ---
    let follower_client = client_for(&[cluster.addr(follower)]);
    let mut stream = follower_client.events(Some(0), &[]).await.expect("events");
    let on_follower = up_to(
        &read_until(&mut stream, "job/sentinel-b", "follower from 0").await,
        sentinel_a,
    );
    drop(stream);
    assert_eq!(
        on_follower, first,
        "manager {follower} shows the leader's events"
    );

    // --- A live stream gets what commits after it opened. ---
    let mut live = leader_client
        .events(None, &[Topic::Job])
        .await
        .expect("events");
    let later = submit(&cluster, &support::job("later")).await;
    let got = read_until(&mut live, "job/later", "live").await;
    assert_eq!(got.len(), 1, "only the new change: {got:?}");
    assert_eq!(got[0].index, later);

    // --- Bad parameters. ---
    let api = cluster.client();
    for path in [
        "/v1/events?topic=job,nope",
        "/v1/events?index=abc",
        "/v1/events?index=-1",
    ] {
        let r = api.get(&cluster.addr(leader), path).await.unwrap();
        assert_eq!(r.status, 400, "{path}: {}", r.describe());
        assert_eq!(r.error_code(), Some("bad_request"), "{path}");
    }

    // --- An index from before a restart is truncated. ---
    cluster.kill(follower);
    cluster.restart(follower);
    let applied = cluster.wait_applied(follower, later).await.applied_index;
    let r = api
        .get(&cluster.addr(follower), "/v1/events?index=0")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.text.starts_with("event: truncated\ndata: "),
        "a truncated stream: {:?}",
        r.text
    );
    let data = r.text.lines().nth(1).unwrap().trim_start_matches("data: ");
    let truncated: Truncated = serde_json::from_str(data).expect("truncated data");
    assert!(
        truncated.oldest_index > 0 && truncated.oldest_index <= applied,
        "{truncated:?}"
    );
    cluster.log(&format!(
        "manager {follower} after a restart: oldest index {}",
        truncated.oldest_index
    ));
    let restarted = client_for(&[cluster.addr(follower)]);
    let mut stream = restarted
        .events(Some(truncated.oldest_index), &[Topic::Job])
        .await
        .expect("events");
    submit(&cluster, &support::job("after-restart")).await;
    let got = read_until(
        &mut stream,
        "job/after-restart",
        "restarted, from its oldest index",
    )
    .await;
    assert!(got.iter().all(|e| e.index > truncated.oldest_index));

    drop(agents);
}

/// `gantry server --log-format json` writes one JSON object per line on stderr, with the
/// level, the message and its fields; at debug, one line per API request with its route,
/// status and latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_lines_with_fields() {
    let _serial = support::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(support::GANTRY)
        .args([
            "server",
            "--id",
            "1",
            "--listen",
            &addr,
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--initial-cluster",
            &format!("1={addr}"),
            "--log-format",
            "json",
            "--log",
            "info,gantry_server::metrics=debug,openraft=warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gantry server");
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });

    let api = support::Api::default();
    let status = wait_until("the server leads", CATCH_UP_TIMEOUT, || async {
        let st = api.status(&addr).await?;
        if st.role == "leader" {
            Ok(st)
        } else {
            Err(format!("role {}", st.role))
        }
    })
    .await;
    assert_eq!(status.id, 1);
    let r = api.get(&addr, "/v1/jobs/nope?stale=true").await.unwrap();
    assert_eq!(r.status, 404);
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.join().unwrap();

    assert!(!lines.is_empty(), "the server logged nothing");
    let mut records = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(record["level"].is_string(), "no level: {line}");
        assert!(record["timestamp"].is_string(), "no timestamp: {line}");
        assert!(
            record["fields"]["message"].is_string(),
            "no message: {line}"
        );
        records.push(record);
    }
    assert!(
        records
            .iter()
            .any(|r| r["fields"]["message"] == "manager serving" && r["fields"]["id"] == 1),
        "the start line carries its fields"
    );
    let request = records
        .iter()
        .find(|r| r["fields"]["message"] == "request" && r["fields"]["route"] == "/v1/jobs/{id}")
        .unwrap_or_else(|| {
            panic!(
                "no request line for /v1/jobs/{{id}} in {} lines",
                records.len()
            )
        });
    assert_eq!(request["level"], "DEBUG");
    assert_eq!(request["fields"]["status"], 404);
    assert_eq!(request["fields"]["method"], "GET");
    assert!(request["fields"]["latency_ms"].is_number());
}

#[test]
fn the_metrics_parser_reads_labels_with_commas() {
    let (samples, types) =
        parse_metrics("# TYPE x histogram\nx_bucket{route=\"/a,b\",le=\"+Inf\"} 3\nx_count 3\n");
    assert_eq!(types["x"], "histogram");
    assert_eq!(samples[0].labels["route"], "/a,b");
    assert_eq!(samples[0].labels["le"], "+Inf");
    assert_eq!(samples[1].value, 3.0);
}
