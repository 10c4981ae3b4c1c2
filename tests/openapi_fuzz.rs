//! Property-based fuzzing of the admin API against its own OpenAPI document.
//!
//! A live cluster of three managers, with simulated agents holding nodes and a few jobs
//! placed on them (so the node, allocation and service routes answer with real data),
//! is handed to schemathesis (from PyPI; `scripts/install-schemathesis` puts the pinned
//! version in a venv). It reads `GET /v1/openapi.json` from a follower (so writes go
//! through forwarding to the leader), generates valid and invalid requests for every
//! operation, and checks each answer:
//! - `not_a_server_error`: no 5xx at all;
//! - `status_code_conformance`: the status is one the document lists for the operation;
//! - `content_type_conformance`: the content type is one the document lists;
//! - `response_schema_conformance`: the body matches the documented schema.
//!
//! The run must end with exit status 0. Left out (tests/openapi_fuzz/schemathesis.toml),
//! and why:
//! - `GET /v1/events`: a server-sent event stream that follows the log and never ends;
//! - `PUT /v1/operator/snapshot`: replaces the whole state with the body, wiping the
//!   data the rest of the run exercises (its error answers are tested in
//!   tests/snapshot_restore.rs);
//! - `DELETE /v1/operator/raft/peers/{id}`: would remove the managers under test;
//! - `POST /v1/operator/raft/peers`: adds a manager at a generated address and waits up
//!   to two minutes for it to catch up (answering `504` when it does not);
//! - `POST /v1/operator/raft/transfer-leader`: answers `501 not_supported` by design
//!   (openraft 0.9 cannot transfer leadership), which is a 5xx.
//!
//! Without schemathesis the test is skipped with a message, except in CI (`CI=true`),
//! where that is a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gantry_api::sim_agent::SimAgent;
use gantry_api::{Client, ClientOptions};
use serde_json::{json, Value};
use support::{wait_until, Cluster};

/// `schemathesis==X.Y.Z`, the version `scripts/install-schemathesis` installs.
const REQUIREMENT: &str = include_str!("openapi_fuzz/requirements.txt");
/// The schemathesis settings of this run: the operations left out, each with its reason.
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/openapi_fuzz/schemathesis.toml"
);

/// Test cases per operation and phase; with ~30 operations the run takes about 90 s on
/// a small machine (some 3,500 requests).
const MAX_EXAMPLES: u32 = 30;
/// The whole schemathesis run is killed after this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The schemathesis executable: `$GANTRY_SCHEMATHESIS`, else the venv that
/// `scripts/install-schemathesis` makes. `None` (after saying why) when there is none.
fn schemathesis() -> Option<PathBuf> {
    let pinned = REQUIREMENT
        .lines()
        .find_map(|line| line.trim().strip_prefix("schemathesis=="))
        .expect("requirements.txt pins schemathesis")
        .trim();
    let path = match std::env::var_os("GANTRY_SCHEMATHESIS") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/gantry/schemathesis-venv/bin/schemathesis")
        }
    };
    let version = Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let reason = match version {
        Some(version) if version.ends_with(pinned) => {
            eprintln!("[fuzz] {} ({version})", path.display());
            return Some(path);
        }
        Some(version) => format!("{} is {version}, not {pinned}", path.display()),
        None => format!("no schemathesis at {}", path.display()),
    };
    let hint = "run scripts/install-schemathesis (or set GANTRY_SCHEMATHESIS)";
    if in_ci() {
        panic!("{reason}; {hint}");
    }
    eprintln!("[fuzz] SKIPPED: {reason}; {hint}");
    None
}

fn client(addrs: &[String]) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(addrs, None, options).expect("client")
}

/// Jobs of every kind, with ports, a health check, constraints, an update strategy and
/// YAML-style lenient values, so the answers carry every part of the schemas.
fn jobs() -> Vec<Value> {
    let task = |name: &str, port: u16| {
        json!({
            "name": name,
            "image": "gantry/busybox:latest",
            "command": ["httpd", "-f", "-p", port.to_string()],
            "env": {"GREETING": "hi", "PORT": port},
            "resources": {"cpu_millis": 100, "memory_mb": 32},
            "ports": [{"name": format!("{name}-http"), "container_port": port, "tags": ["v1"]}],
            "health": {"type": "tcp", "port": format!("{name}-http"), "interval": "2s"}
        })
    };
    vec![
        json!({
            "id": "web",
            "type": "service",
            "replicas": 3,
            "priority": 70,
            "constraints": [{"attribute": "node.name", "operator": "regex", "value": "^fuzz-"}],
            "tasks": [task("main", 8080), task("sidecar", 9090)],
            "restart": {"attempts": 2, "delay": "1s"},
            "update": {"max_parallel": 1, "min_healthy": "1s", "healthy_deadline": "1m", "auto_revert": true}
        }),
        json!({
            "id": "nightly",
            "type": "batch",
            "replicas": 2,
            "tasks": [{"name": "run", "image": "gantry/busybox:latest", "driver": "process",
                       "command": ["true"], "resources": {"cpu_millis": 50, "memory_mb": 16}}]
        }),
        json!({
            "id": "monitor",
            "type": "global",
            "tasks": [{"name": "agent", "image": "gantry/busybox:latest",
                       "resources": {"cpu_millis": 50, "memory_mb": 16}}]
        }),
        json!({
            "id": "too-big",
            "replicas": 1,
            "tasks": [{"name": "main", "image": "gantry/busybox:latest",
                       "resources": {"cpu_millis": 1_000_000, "memory_mb": 16}}]
        }),
    ]
}

/// Submits the jobs (and a second version of one, for history) and waits until the
/// placeable instances are running on the simulated nodes.
async fn populate(cluster: &Cluster, api: &Client) {
    let leader = cluster.leader_id().await;
    for spec in jobs() {
        cluster
            .client()
            .submit(&cluster.addr(leader), &spec)
            .await
            .unwrap_or_else(|e| panic!("submitting {spec}: {e}"));
    }
    api.scale_job("web", 2).await.expect("scale web");
    wait_until(
        "the jobs' instances to run",
        Duration::from_secs(60),
        || async {
            let allocations = api
                .list_allocations(&Default::default(), false)
                .await
                .map_err(|e| e.to_string())?
                .value;
            let running = allocations
                .iter()
                .filter(|a| a.client_state == gantry_api::ClientState::Running)
                .count();
            // web: 2, monitor: one per node (3); batch instances complete.
            if running >= 5 {
                Ok(running)
            } else {
                Err(format!(
                    "{running} running of {} allocations",
                    allocations.len()
                ))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_answers_as_its_openapi_document_says() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let cluster = Cluster::start(3).await;
    let api = client(&cluster.addrs());
    let _agents: Vec<SimAgent> = (0..3)
        .map(|i| SimAgent::start(&api, &format!("fuzz-{i}"), 4000, 8192))
        .collect();
    populate(&cluster, &api).await;

    let leader = cluster.leader_id().await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let schema_url = cluster.url(follower, "/v1/openapi.json");
    let work_dir = tempfile::tempdir().expect("temp dir");
    let config = work_dir.path().join("schemathesis.toml");
    std::fs::write(&config, config_with_known_ids(&api).await).expect("writing the config");
    let seed = seed();
    let mut outcome = fuzz(
        &cluster,
        &schemathesis,
        &schema_url,
        work_dir.path(),
        seed,
        1,
    );
    if outcome == Outcome::FuzzerErrorsOnly {
        // Seen once: CPython 3.11.7 raised `SystemError: AST constructor recursion depth
        // mismatch` inside hypothesis while it described a strategy. That says nothing
        // of the API (every request had passed), so the run is repeated once with
        // another seed; a check failure is never repeated.
        eprintln!("[fuzz] only errors inside the fuzzer itself: one more run, another seed");
        outcome = fuzz(
            &cluster,
            &schemathesis,
            &schema_url,
            work_dir.path(),
            seed + 1,
            2,
        );
    }
    cluster.assert_alive();
    match outcome {
        Outcome::Passed => {}
        Outcome::FuzzerErrorsOnly => panic!(
            "schemathesis reported errors in two runs and no failed check (see above: a \
             `Schema Error` is this API's document at fault, a `Runtime Error` the fuzzer)"
        ),
        Outcome::Failed => panic!("schemathesis found failures (its report is above)"),
    }
    cluster.log("schemathesis: no failures");
}

/// The settings of tests/openapi_fuzz/schemathesis.toml, plus the ids that exist in the
/// cluster: path parameters are drawn from them half of the time (the other half is
/// generated, mostly unknown ids), so the single-object routes answer with real objects
/// too. A blocking query (`?index=N` above the manager's index) waits up to `?wait`, a
/// minute by default, by design: `wait` is set to `1s` and `index` mostly drawn from
/// indexes already passed, so no request waits long (the coverage phase still sends
/// boundary values such as 2^63).
async fn config_with_known_ids(api: &Client) -> String {
    let quote = |values: Vec<String>| {
        values
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut ids: Vec<String> = jobs()
        .iter()
        .map(|spec| spec["id"].as_str().unwrap().to_string())
        .collect();
    let nodes = api.list_nodes(false).await.expect("nodes").value;
    ids.extend(nodes.into_iter().map(|node| node.id));
    let allocations = api
        .list_allocations(&Default::default(), false)
        .await
        .expect("allocations")
        .value;
    ids.extend(allocations.into_iter().map(|a| a.id));
    let services = api.list_services(false).await.expect("services").value;
    let names: Vec<String> = services.into_iter().map(|s| s.name).collect();
    assert!(!names.is_empty(), "the jobs declare services");
    let settings = std::fs::read_to_string(CONFIG).expect("reading the settings");
    format!(
        "{settings}
[dictionaries.known-ids]
values = [{ids}]

[dictionaries.known-services]
values = [{names}]

[dictionaries.passed-indexes]
values = [0, 1]

[parameters]
\"path.id\" = {{ dictionary = \"known-ids\", probability = 0.5 }}
\"path.name\" = {{ dictionary = \"known-services\", probability = 0.5 }}
\"query.index\" = {{ dictionary = \"passed-indexes\", probability = 1.0 }}
\"query.wait\" = \"1s\"
",
        ids = quote(ids),
        names = quote(names),
    )
}

/// A new seed each run unless `GANTRY_FUZZ_SEED` pins one; printed either way so a
/// failure can be replayed.
/// How one schemathesis run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    /// Some check failed: the API answered outside its document (or with a 5xx).
    Failed,
    /// The run failed, but its report holds errors only (the fuzzer raised, or could not
    /// use part of the document), no failed check.
    FuzzerErrorsOnly,
}

fn fuzz(
    cluster: &Cluster,
    schemathesis: &Path,
    schema_url: &str,
    work_dir: &Path,
    seed: u64,
    attempt: u32,
) -> Outcome {
    let report_dir = work_dir.join(format!("report-{attempt}"));
    let mut command = Command::new(schemathesis);
    command
        .current_dir(work_dir)
        .arg("--config-file")
        .arg(work_dir.join("schemathesis.toml"))
        .args(["run", schema_url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--workers", "2", "--request-timeout", "20", "--no-color"])
        .args(["--generation-database", "none"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report_dir);
    cluster.log(&format!("schemathesis run {schema_url} (seed {seed})"));
    if run_bounded(command, RUN_TIMEOUT, work_dir) {
        return Outcome::Passed;
    }
    let (failures, errors) = junit_counts(&report_dir);
    eprintln!("[fuzz] report: {failures} failed checks, {errors} errors");
    if failures == 0 && errors > 0 {
        Outcome::FuzzerErrorsOnly
    } else {
        Outcome::Failed
    }
}

/// `<failure` and `<error` elements in the JUnit reports of `dir`.
fn junit_counts(dir: &Path) -> (usize, usize) {
    let mut counts = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        counts.0 += text.matches("<failure").count();
        counts.1 += text.matches("<error").count();
    }
    counts
}

fn seed() -> u64 {
    let seed = std::env::var("GANTRY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_000)
        });
    eprintln!("[fuzz] seed {seed} (replay with GANTRY_FUZZ_SEED={seed})");
    seed
}

/// Runs the command with its output passed through; kills it after `timeout`.
/// True when it exited with status 0.
fn run_bounded(mut command: Command, timeout: Duration, dir: &Path) -> bool {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting schemathesis: {e}"));
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for schemathesis") {
            eprintln!(
                "[fuzz] schemathesis exited with {status} after {:.0?} (work dir {})",
                started.elapsed(),
                dir.display()
            );
            return status.success();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("schemathesis did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
