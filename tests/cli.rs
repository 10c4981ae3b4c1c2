//! The operator commands (`gantry job|deployment|node|alloc|service|operator|status|events|
//! acl|completion`) against live clusters: three real managers, nodes simulated in this test
//! process (`gantry_api::sim_agent`) or a real `gantry agent --driver process`, and the
//! real binary run as an operator would, with `--json` parsed.
//!
//! Scenarios:
//! - jobs, nodes, allocations and services: every command of those groups, the human
//!   tables and relative times, a job that fits nowhere (exit 3 with why), unknown ids;
//! - the managers: raft peers (a fourth manager added and removed, the refused leadership
//!   transfer), snapshot save → job removed → restore, events, then a lost quorum as
//!   `gantry status` and a write tell it;
//! - ACL: bootstrap, tokens of each kind, 401 and 403 told plainly, revoke, join token;
//! - logs of a real agent's task, and restart in place;
//! - deployments with a real agent (process driver): `job run` following a canary
//!   deployment to its promotion, `deployment list|status|promote|pause|resume|fail`,
//!   id prefixes, the revert to the last stable version, and `job run` told of a failed
//!   deployment;
//! - no manager at all, usage errors, `--help` and completion scripts.
//!
//! Durations are printed, never asserted.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gantry_api::sim_agent::SimAgent;
use gantry_api::{Client, ClientOptions};
use serde_json::Value;
use support::agent::AgentProcess;
use support::cli::GantryCli;
use support::{free_ports, wait_until, Cluster, Options, GANTRY};

/// How long a scenario's step may take to show (placement, drain, replacement).
const SETTLE: Duration = Duration::from_secs(60);

fn client(cluster: &Cluster) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(cluster.addrs(), None, options).expect("client")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write spec");
    path.display().to_string()
}

const WEB_YAML: &str = "\
id: web
replicas: 3
tasks:
  - name: main
    image: gantry/busybox:latest
    command: [\"sleep\", \"3600\"]
    resources: {cpu_millis: 500, memory_mb: 256}
    ports:
      - name: http
        container_port: 8080
";

/// More cpu than any node has: fits nowhere.
const HUGE_JSON: &str = r#"{
  "id": "huge",
  "replicas": 1,
  "tasks": [{"name": "main", "image": "gantry/busybox:latest", "command": ["sleep", "1"],
             "resources": {"cpu_millis": 100000, "memory_mb": 64}}]
}"#;

/// The live allocations (desired run, not terminal) in `alloc list --json` output.
fn live(allocations: &Value) -> Vec<Value> {
    allocations
        .as_array()
        .expect("an array")
        .iter()
        .filter(|a| a["desired"] == "run" && !ended(a))
        .cloned()
        .collect()
}

/// An allocation (of `alloc list --json`) whose task ended: complete, failed or lost.
fn ended(a: &Value) -> bool {
    matches!(
        a["client_state"].as_str(),
        Some("complete" | "failed" | "lost")
    )
}

/// Waits until job `id` has exactly `n` live allocations, all running.
async fn wait_job_running(cli: &GantryCli, id: &str, n: usize) -> Vec<Value> {
    wait_until(&format!("{id}: {n} running"), SETTLE, || async {
        let run = cli.run(&["alloc", "list", "--job", id, "--json"]).await;
        if run.code != Some(0) {
            return Err(run.describe());
        }
        let live = live(&run.json());
        let running = live
            .iter()
            .filter(|a| a["client_state"] == "running")
            .count();
        if live.len() == n && running == n {
            Ok(live)
        } else {
            Err(format!("{} live, {running} running", live.len()))
        }
    })
    .await
}

/// A relative time as people read it: `just now` or `<n>s|m|h|d ago`.
fn has_relative_time(text: &str) -> bool {
    if text.contains("just now") {
        return true;
    }
    text.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| {
            w[1] == "ago"
                && w[0].len() >= 2
                && w[0][..w[0].len() - 1].chars().all(|c| c.is_ascii_digit())
                && matches!(w[0].chars().last(), Some('s' | 'm' | 'h' | 'd'))
        })
}

/// The element of the JSON array `list` whose `field` is `value`.
fn element(list: &Value, field: &str, value: impl Into<Value>) -> Option<Value> {
    let value = value.into();
    list.as_array()
        .expect("an array")
        .iter()
        .find(|v| v[field] == value)
        .cloned()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|v| v[field].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_nodes_allocations_and_services() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let api = client(&cluster);
    let _agents: Vec<SimAgent> = (0..3)
        .map(|i| SimAgent::start(&api, &format!("cli-{i}"), 4000, 8192))
        .collect();
    let cli = GantryCli::new(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let web = write(dir.path(), "web.yaml", WEB_YAML);
    let huge = write(dir.path(), "huge.json", HUGE_JSON);

    // Nodes.
    wait_until("3 nodes ready", SETTLE, || async {
        let nodes = cli.json(&["node", "list"]).await;
        let ready = nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] == "ready")
            .count();
        if ready == 3 {
            Ok(())
        } else {
            Err(format!("{ready} ready: {nodes}"))
        }
    })
    .await;

    // The cluster.
    let status = cli.json(&["status"]).await;
    assert!(status["leader"]["id"].as_u64().is_some(), "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 3, "{status}");
    assert!(
        status["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"] == "leader" || m["role"] == "follower"),
        "{status}"
    );
    assert_eq!(status["nodes"]["total"], 3, "{status}");
    let human = cli.run(&["status"]).await.ok();
    let human = human.stdout_has("Leader").stdout_has("ROLE");
    assert!(human.stdout.contains("leader"), "{}", human.describe());

    // job run: follows the placement until every instance runs.
    let job = cli.json(&["job", "run", &web, "--deadline", "60s"]).await;
    assert_eq!(job["spec"]["id"], "web");
    assert_eq!(job["version"], 1);
    assert_eq!(job["status"], "running", "{job}");
    let allocations = wait_job_running(&cli, "web", 3).await;
    // Human progress: plain lines when stdout is not a terminal, then the outcome.
    let again = cli.run(&["job", "run", &web]).await.ok();
    assert!(
        again
            .stdout
            .contains("web v1: desired 3, placed 3, running 3")
            && again.stdout.contains("all 3 instances running")
            && !again.stdout.contains('\r'),
        "{}",
        again.describe()
    );

    // job list / status, as JSON and as tables.
    let jobs = cli.json(&["job", "list"]).await;
    assert_eq!(ids(&jobs, "id"), vec!["web"]);
    assert_eq!(jobs[0]["status"], "running");
    let table = cli.run(&["job", "list"]).await.ok();
    let header = table.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        header.starts_with("ID") && header.contains("TYPE") && header.contains("STATUS"),
        "{}",
        table.describe()
    );
    let shown = cli.json(&["job", "status", "web"]).await;
    assert_eq!(shown["spec"]["replicas"], 3);
    let human = cli.run(&["job", "status", "web"]).await.ok();
    let human = human.stdout_has("Versions").stdout_has("Allocations");
    assert!(has_relative_time(&human.stdout), "{}", human.describe());

    // job plan: the unchanged spec fits; one that fits nowhere says why.
    let plan = cli.json(&["job", "plan", &web]).await;
    assert_eq!(plan["job_id"], "web");
    assert_eq!(plan["unplaced"].as_array().unwrap().len(), 0, "{plan}");
    let plan = cli.json(&["job", "plan", &huge]).await;
    let unplaced = plan["unplaced"].as_array().unwrap();
    assert_eq!(unplaced.len(), 1, "{plan}");
    assert!(
        unplaced[0]["message"].as_str().unwrap().contains("cpu"),
        "{plan}"
    );
    cli.run(&["job", "plan", &huge])
        .await
        .ok()
        .stdout_has("Fits nowhere");
    // Nothing was submitted by the plan.
    cli.run(&["job", "status", "huge"])
        .await
        .exit(1)
        .stderr_has("no job `huge`");

    // scale, history, revert.
    let scaled = cli.json(&["job", "scale", "web", "4"]).await;
    assert_eq!(scaled["version"], 2);
    wait_job_running(&cli, "web", 4).await;
    let history = cli.json(&["job", "history", "web"]).await;
    let versions: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    let reverted = cli.json(&["job", "revert", "web", "1"]).await;
    assert_eq!(reverted["version"], 3);
    let allocations_after_revert = wait_job_running(&cli, "web", 3).await;
    assert!(!allocations.is_empty());

    // alloc list / status (by a prefix too) / restart / logs / stop.
    let table = cli.run(&["alloc", "list", "--job", "web"]).await.ok();
    assert!(
        table
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with("ID"),
        "{}",
        table.describe()
    );
    assert!(has_relative_time(&table.stdout), "{}", table.describe());
    let target = allocations_after_revert[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = cli.json(&["alloc", "status", &target]).await;
    assert_eq!(shown["id"], target.as_str());
    let prefix = &target[..target.len() - 3];
    let by_prefix = cli.json(&["alloc", "status", prefix]).await;
    assert_eq!(by_prefix["id"], target.as_str());
    cli.run(&["alloc", "status", "web-"])
        .await
        .exit(1)
        .stderr_has("give more of the id");
    cli.run(&["alloc", "status", "nope-0-00000000"])
        .await
        .exit(1)
        .stderr_has("no allocation `nope-0-00000000`");
    let restarted = cli.json(&["alloc", "restart", &target]).await;
    assert_eq!(restarted["id"], target.as_str());
    assert!(
        restarted["restart_requests"].as_u64().unwrap() >= 1,
        "{restarted}"
    );
    // Simulated nodes serve no logs: the managers say so, and the CLI passes it on.
    cli.run(&["alloc", "logs", &target])
        .await
        .exit(1)
        .stderr_has("has no agent endpoint");
    let stopped = cli.json(&["alloc", "stop", &target]).await;
    assert_eq!(stopped["desired"], "stop", "{stopped}");
    let replaced = wait_job_running(&cli, "web", 3).await;
    assert!(
        replaced.iter().all(|a| a["id"] != target.as_str()),
        "the stopped allocation was replaced: {replaced:?}"
    );

    // Services: the job's named port on every running, healthy allocation.
    let service = wait_until("service web-http with 3 endpoints", SETTLE, || async {
        let services = cli.json(&["service", "list"]).await;
        let web = services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "web-http")
            .cloned();
        match web {
            Some(s) if s["endpoints"] == 3 => Ok(s),
            other => Err(format!("{other:?} in {services}")),
        }
    })
    .await;
    assert_eq!(service["jobs"], serde_json::json!(["web"]));
    let endpoints = cli.json(&["service", "show", "web-http"]).await;
    let endpoints = endpoints.as_array().unwrap();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints.iter().all(|e| e["port"].as_u64().unwrap() > 0));
    cli.run(&["service", "show", "web-http"])
        .await
        .ok()
        .stdout_has("ADDRESS");

    // node status / eligibility / drain.
    let node = replaced[0]["node_id"].as_str().unwrap().to_string();
    let detail = cli.json(&["node", "status", &node]).await;
    assert_eq!(detail["id"], node.as_str());
    assert!(!detail["allocations"].as_array().unwrap().is_empty());
    cli.run(&["node", "status", &node])
        .await
        .ok()
        .stdout_has("Reserved");
    let ineligible = cli
        .json(&["node", "eligibility", &node, "ineligible"])
        .await;
    assert_eq!(ineligible["eligibility"], "ineligible");
    let eligible = cli.json(&["node", "eligibility", &node, "eligible"]).await;
    assert_eq!(eligible["eligibility"], "eligible");
    let drained = cli
        .json(&["node", "drain", &node, "--deadline", "60s"])
        .await;
    assert!(
        drained["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["desired"] == "stop" || ended(a)),
        "the node still holds live allocations: {drained}"
    );
    let moved = wait_job_running(&cli, "web", 3).await;
    assert!(
        moved.iter().all(|a| a["node_id"] != node.as_str()),
        "{moved:?}"
    );
    cli.json(&["node", "eligibility", &node, "eligible"]).await;

    // A job that fits nowhere: the wait ends at the deadline with exit 3 and why.
    let blocked = cli
        .run(&["job", "run", &huge, "--deadline", "3s"])
        .await
        .exit(3)
        .stderr_has("fits nowhere");
    assert!(blocked.stderr.contains("cpu"), "{}", blocked.describe());
    let blocked = cli
        .run(&["job", "run", &huge, "--deadline", "1s", "--json"])
        .await
        .exit(3);
    assert_eq!(blocked.json()["spec"]["id"], "huge");
    let detached = cli.json(&["job", "run", &huge, "--detach"]).await;
    assert_eq!(detached["id"], "huge");

    // A spec from stdin, and a bad one.
    let from_stdin = cli
        .run_with_stdin(
            &["job", "run", "-", "--detach", "--json"],
            Some(WEB_YAML.replace("id: web", "id: piped").as_bytes()),
        )
        .await
        .ok();
    assert_eq!(from_stdin.json()["id"], "piped");
    let bad = write(
        dir.path(),
        "bad.yaml",
        &WEB_YAML.replace("memory_mb: 256", "memory_mb: -1"),
    );
    cli.run(&["job", "run", &bad])
        .await
        .exit(1)
        .stderr_has("memory_mb");

    // stop, and unknown jobs.
    for id in ["web", "huge", "piped"] {
        let stopped = cli.json(&["job", "stop", id]).await;
        assert_eq!(stopped["id"], id);
    }
    cli.run(&["job", "status", "web"])
        .await
        .exit(1)
        .stderr_has("no job `web`");
    cli.run(&["job", "scale", "nope", "2"])
        .await
        .exit(1)
        .stderr_has("no job `nope`");
    cli.run(&["node", "status", "nope"])
        .await
        .exit(1)
        .stderr_has("no node `nope`");
    cluster.assert_alive();
}

// ---------------------------------------------------------------------------

/// A `gantry server` started with neither --initial-cluster nor --join: it waits to be
/// added (`operator raft add-peer`).
struct SpareManager {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl SpareManager {
    fn start(id: u64) -> SpareManager {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
        let log = std::fs::File::create(dir.path().join("manager.log")).unwrap();
        let child = std::process::Command::new(GANTRY)
            .args([
                "server",
                "--id",
                &id.to_string(),
                "--listen",
                &addr,
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .env("NO_COLOR", "1")
            .spawn()
            .expect("spawn a spare manager");
        SpareManager {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for SpareManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_peers_snapshots_events_and_a_lost_quorum() {
    let _serial = support::SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let cli = GantryCli::new(&cluster);
    let dir = tempfile::tempdir().unwrap();

    // list-peers: the leader's view, with replication progress.
    let raft = cli.json(&["operator", "raft", "list-peers"]).await;
    let members = raft["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{raft}");
    assert!(
        members
            .iter()
            .all(|m| m["matched_index"].as_u64().is_some()),
        "progress comes from the leader: {raft}"
    );
    cli.run(&["operator", "raft", "list-peers"])
        .await
        .ok()
        .stdout_has("ROLE")
        .stdout_has("leader");

    // add-peer / remove-peer with a fourth manager.
    let spare = SpareManager::start(4);
    let added = cli
        .json(&["operator", "raft", "add-peer", "4", &spare.addr])
        .await;
    let four = element(&added["members"], "id", 4)
        .unwrap_or_else(|| panic!("manager 4 is not a member: {added}"));
    assert_eq!(four["addr"], spare.addr.as_str());
    let removed = cli.json(&["operator", "raft", "remove-peer", "4"]).await;
    assert!(
        removed["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"] != 4),
        "{removed}"
    );
    drop(spare);

    // Leadership transfer is refused, and said so.
    let refused = cli
        .run(&["operator", "raft", "transfer-leader", "2"])
        .await
        .exit(1);
    assert!(
        refused.stderr.to_lowercase().contains("transfer"),
        "{}",
        refused.describe()
    );

    // snapshot save → the job removed → restore brings it back on every manager.
    let spec = write(
        dir.path(),
        "kept.yaml",
        &WEB_YAML.replace("id: web", "id: kept"),
    );
    cli.json(&["job", "run", &spec, "--detach"]).await;
    // events: what the manager holds after an index, then exit.
    let events = cli
        .run(&["events", "--index", "0", "--topic", "job", "--json"])
        .await
        .ok()
        .json_lines();
    assert!(
        events
            .iter()
            .any(|e| e["topic"] == "job" && e["key"].as_str().unwrap_or_default().contains("kept")),
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["topic"] == "job"), "{events:?}");
    let last = events.last().unwrap()["index"].as_u64().unwrap();
    let after = cli
        .run(&["events", "--index", &last.to_string(), "--json"])
        .await
        .ok()
        .json_lines();
    assert!(
        after.iter().all(|e| e["index"].as_u64().unwrap() > last),
        "{after:?}"
    );
    cli.run(&["events", "--index", "0"])
        .await
        .ok()
        .stdout_has("INDEX");
    // --follow: the changes after an index, then new ones as they commit.
    let from = cli.json(&["status"]).await["commit_index"]
        .as_u64()
        .unwrap();
    let mut follow = cli.spawn(&[
        "events",
        "--follow",
        "--index",
        &from.to_string(),
        "--topic",
        "job",
        "--json",
    ]);
    let followed = write(
        dir.path(),
        "followed.yaml",
        &WEB_YAML
            .replace("id: web", "id: followed")
            .replace("replicas: 3", "replicas: 0"),
    );
    cli.json(&["job", "run", &followed, "--detach"]).await;
    let line = follow
        .line_where(SETTLE, |l| l.contains("\"job/followed\""))
        .await;
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["topic"], "job");
    assert!(event["index"].as_u64().unwrap() > from, "{event}");
    cli.json(&["job", "stop", "followed"]).await;
    let line = follow
        .line_where(SETTLE, |l| {
            l.contains("\"job/followed\"") && l.contains("\"type\":\"delete\"")
        })
        .await;
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "delete", "{event}");
    assert!(follow.is_running(), "--follow keeps streaming");
    drop(follow);

    let file = dir.path().join("state.snap").display().to_string();
    let saved = cli.json(&["operator", "snapshot", "save", &file]).await;
    let records = saved["records"].as_u64().unwrap();
    assert!(records >= 1, "{saved}");
    assert!(saved["index"].as_u64().unwrap() > 0, "{saved}");
    assert_eq!(
        saved["bytes"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    cli.json(&["job", "stop", "kept"]).await;
    cli.run(&["job", "status", "kept"]).await.exit(1);
    let restored = cli.json(&["operator", "snapshot", "restore", &file]).await;
    assert!(
        restored["restored_index"].as_u64().unwrap() > 0,
        "{restored}"
    );
    for id in cluster.ids() {
        let one = GantryCli::at(&cluster.addr(id));
        wait_until(&format!("manager {id} holds the job again"), SETTLE, || {
            let one = one.clone();
            async move {
                let run = one.run(&["job", "list", "--json"]).await;
                if run.code == Some(0) && ids(&run.json(), "id").contains(&"kept".to_string()) {
                    Ok(())
                } else {
                    Err(run.describe())
                }
            }
        })
        .await;
    }
    let human = cli.run(&["operator", "snapshot", "save", &file]).await.ok();
    assert!(human.stdout.contains("records"), "{}", human.describe());
    let not_a_snapshot = write(dir.path(), "spec.yaml", WEB_YAML);
    cli.run(&["operator", "snapshot", "restore", &not_a_snapshot])
        .await
        .exit(1)
        .stderr_has("not a Gantry snapshot file");

    // A lost quorum: the leader and one follower gone.
    let leader = cluster.leader_id().await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.kill(leader);
    cluster.kill(follower);
    // The survivor names no leader once its election timer fires.
    wait_until("`gantry status` to report no leader", SETTLE, || async {
        let status = cli.run(&["status"]).await;
        if status.code == Some(1)
            && status
                .stderr
                .contains("no leader: 2 of 3 managers unreachable")
        {
            Ok(())
        } else {
            Err(status.describe())
        }
    })
    .await;
    // Reads: refused as linearizable, answered from a manager's own copy with --stale.
    cli.run(&["job", "list"])
        .await
        .exit(1)
        .stderr_has("--stale answers reads");
    let stale = cli.json(&["job", "list", "--stale"]).await;
    assert!(ids(&stale, "id").contains(&"kept".to_string()), "{stale}");
    let refused_write = cli.run(&["job", "run", &spec, "--detach"]).await.exit(1);
    assert!(
        refused_write.stderr.contains("no leader")
            && refused_write.stderr.contains("2 of 3 managers unreachable"),
        "{}",
        refused_write.describe()
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_tokens_and_refusals() {
    let _serial = support::SERIAL.lock().await;
    let options = Options {
        extra_args: vec![
            "--acl".into(),
            "--cluster-secret".into(),
            "cli-test-cluster-secret-0123456789".into(),
        ],
        ..Default::default()
    };
    let cluster = Cluster::start_with(3, options).await;
    let anonymous = GantryCli::new(&cluster);

    anonymous
        .run(&["job", "list"])
        .await
        .exit(1)
        .stderr_has("this cluster requires a token: pass --token or set GANTRY_TOKEN");

    let boot = anonymous.json(&["acl", "bootstrap"]).await;
    let root_secret = boot["token"]["secret"].as_str().unwrap().to_string();
    assert_eq!(boot["token"]["kind"], "management");
    assert!(!boot["join_token"].as_str().unwrap().is_empty());
    anonymous.run(&["acl", "bootstrap"]).await.exit(1);

    let root = anonymous.with_token(&root_secret);
    let me = root.json(&["acl", "token", "self"]).await;
    assert_eq!(me["kind"], "management");

    let read = root
        .json(&[
            "acl",
            "token",
            "create",
            "--name",
            "dashboards",
            "--kind",
            "read",
        ])
        .await;
    assert_eq!(read["kind"], "read");
    let reader = anonymous.with_token(read["secret"].as_str().unwrap());
    let operator = root
        .json(&["acl", "token", "create", "--name", "ci", "--kind", "write"])
        .await;
    let writer = anonymous.with_token(operator["secret"].as_str().unwrap());

    let tokens = root.json(&["acl", "token", "list"]).await;
    let names = ids(&tokens, "name");
    assert!(names.contains(&"dashboards".to_string()) && names.contains(&"ci".to_string()));
    assert!(tokens
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("secret").is_none()));
    root.run(&["acl", "token", "list"])
        .await
        .ok()
        .stdout_has("ACCESSOR");

    // A read token reads, and is told what it cannot do.
    assert_eq!(reader.json(&["job", "list"]).await, serde_json::json!([]));
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    reader
        .run(&["job", "run", &spec, "--detach"])
        .await
        .exit(1)
        .stderr_has("your token (kind read) cannot do this (needs write)");
    writer
        .run(&["acl", "token", "list"])
        .await
        .exit(1)
        .stderr_has("your token (kind write) cannot do this (needs management)");
    let submitted = writer.json(&["job", "run", &spec, "--detach"]).await;
    assert_eq!(submitted["id"], "guarded");

    // Revoked: refused as unknown.
    let revoked = root
        .json(&[
            "acl",
            "token",
            "revoke",
            read["accessor_id"].as_str().unwrap(),
        ])
        .await;
    assert_eq!(revoked["name"], "dashboards");
    reader
        .run(&["job", "list"])
        .await
        .exit(1)
        .stderr_has("refused your token");

    let rotated = root.json(&["acl", "join-token", "rotate"]).await;
    assert!(!rotated["join_token"].as_str().unwrap().is_empty());
    assert_ne!(rotated["join_token"], boot["join_token"]);

    // `gantry status` answers without a token (the status route is public).
    anonymous.run(&["status"]).await.ok().stdout_has("Leader");
}

fn write_spec(dir: &Path) -> String {
    write(
        dir,
        "guarded.yaml",
        "id: guarded\nreplicas: 0\ntasks:\n  - name: main\n    image: gantry/busybox:latest\n    \
         resources: {cpu_millis: 100, memory_mb: 32}\n",
    )
}

// ---------------------------------------------------------------------------

/// What the scenarios with a real agent run on: in their turn, three managers, one
/// `gantry agent --driver process` (node `cli-<name>-<pid>`), the CLI pointed at the
/// managers, and a directory for spec files. Fields drop in order: the agent before the
/// managers, the turn last.
struct WithAgent {
    cli: GantryCli,
    agent: AgentProcess,
    cluster: Cluster,
    dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl WithAgent {
    async fn start(name: &str) -> WithAgent {
        let serial = support::SERIAL.lock().await;
        let cluster = Cluster::start(3).await;
        let node = format!("cli-{name}-{}", std::process::id());
        WithAgent {
            cli: GantryCli::new(&cluster),
            agent: AgentProcess::start(&cluster, &node, "process", &[]),
            cluster,
            dir: tempfile::tempdir().unwrap(),
            _serial: serial,
        }
    }

    /// Writes spec file `name`; returns its path.
    fn write(&self, name: &str, text: &str) -> String {
        write(self.dir.path(), name, text)
    }

    /// Stops job `job` and waits until every one of its tasks ended, before the agent
    /// stops (so that no task outlives the test); then stops the agent and checks that
    /// the managers still run.
    async fn finish(self, job: &str) {
        let cli = &self.cli;
        cli.json(&["job", "stop", job]).await;
        wait_until(&format!("the tasks of {job} stopped"), SETTLE, || async {
            let run = cli.run(&["alloc", "list", "--job", job, "--json"]).await;
            if run.code == Some(0) && run.json().as_array().unwrap().iter().all(ended) {
                Ok(())
            } else {
                Err(run.describe())
            }
        })
        .await;
        self.agent.stop();
        self.cluster.assert_alive();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_restart_with_a_real_agent() {
    let t = WithAgent::start("logs").await;
    let cli = &t.cli;
    let spec = t.write(
        "talker.json",
        r#"{"id": "talker", "replicas": 1, "tasks": [{"name": "main",
            "image": "gantry/busybox:latest", "driver": "process",
            "command": ["sh", "-c", "echo hello-from-gantry; echo oops-on-stderr >&2; exec sleep 3600"],
            "resources": {"cpu_millis": 100, "memory_mb": 32}}]}"#,
    );
    let job = cli.json(&["job", "run", &spec, "--deadline", "90s"]).await;
    assert_eq!(job["status"], "running", "{job}");
    let alloc = wait_job_running(cli, "talker", 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let logs = wait_until("the task's output in its logs", SETTLE, || async {
        let run = cli.run(&["alloc", "logs", &alloc]).await;
        if run.code == Some(0) && run.stdout.contains("hello-from-gantry") {
            Ok(run)
        } else {
            Err(run.describe())
        }
    })
    .await;
    assert!(
        logs.stdout.contains("oops-on-stderr"),
        "{}",
        logs.describe()
    );
    let stderr_only = cli
        .run(&["alloc", "logs", &alloc, "--stderr", "--task", "main"])
        .await
        .ok();
    assert!(
        stderr_only.stdout.contains("oops-on-stderr")
            && !stderr_only.stdout.contains("hello-from-gantry"),
        "{}",
        stderr_only.describe()
    );
    let tail = cli
        .run(&["alloc", "logs", &alloc, "--stdout", "--tail", "1"])
        .await
        .ok();
    assert_eq!(
        tail.stdout.trim(),
        "hello-from-gantry",
        "{}",
        tail.describe()
    );

    // -f: what was written, then what comes, until the task exits or Ctrl-C.
    let mut follow = cli.spawn(&["alloc", "logs", &alloc, "-f", "--stdout"]);
    follow
        .line_where(SETTLE, |l| l.contains("hello-from-gantry"))
        .await;
    assert!(follow.is_running(), "-f keeps following");

    // Restart in place: the same allocation runs again, and says so in its logs.
    let restarted = cli.json(&["alloc", "restart", &alloc]).await;
    assert_eq!(restarted["id"], alloc.as_str());
    wait_until(
        "the task printed again after its restart",
        SETTLE,
        || async {
            let run = cli.run(&["alloc", "logs", &alloc, "--stdout"]).await;
            let times = run.stdout.matches("hello-from-gantry").count();
            if times >= 2 {
                Ok(())
            } else {
                Err(run.describe())
            }
        },
    )
    .await;
    // The followed stream shows the restarted task's output too.
    follow
        .line_where(SETTLE, |l| l.contains("hello-from-gantry"))
        .await;
    drop(follow);
    let after = wait_job_running(cli, "talker", 1).await;
    assert_eq!(
        after[0]["id"],
        alloc.as_str(),
        "restarted in place, not replaced"
    );

    t.finish("talker").await;
}

// ---------------------------------------------------------------------------

/// Job `canary`: two instances of a process-driver task (no health check: healthy once
/// running) whose `RELEASE` variable makes each version's tasks differ, rolled out with
/// `canary` canaries first. `command` replaces the task's command (one that fails makes a
/// deployment fail).
fn canary_spec(release: u32, canary: u32, auto_revert: bool, command: &[&str]) -> String {
    serde_json::json!({
        "id": "canary",
        "replicas": 2,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "driver": "process",
            "command": command,
            "env": {"RELEASE": release.to_string()},
            "resources": {"cpu_millis": 100, "memory_mb": 32}
        }],
        "restart": {"attempts": 0, "delay": "1s"},
        "update": {
            "canary": canary,
            "min_healthy": "1s",
            "healthy_deadline": "30s",
            "max_parallel": 1,
            "auto_revert": auto_revert
        }
    })
    .to_string()
}

/// Waits until `deployment status ID --json` satisfies `wanted`, and returns it.
async fn wait_deployment(
    cli: &GantryCli,
    id: &str,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    wait_until(&format!("deployment {id}: {what}"), SETTLE, || async {
        let run = cli.run(&["deployment", "status", id, "--json"]).await;
        if run.code != Some(0) {
            return Err(run.describe());
        }
        let d = run.json();
        if wanted(&d) {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_canaries_promotion_pause_and_revert() {
    let t = WithAgent::start("deploy").await;
    let cli = &t.cli;
    let sleep = ["sleep", "3600"];
    let v1 = t.write("v1.json", &canary_spec(1, 0, false, &sleep));
    let v2 = t.write("v2.json", &canary_spec(2, 1, false, &sleep));
    let v3 = t.write("v3.json", &canary_spec(3, 1, true, &sleep));
    let broken = t.write("broken.json", &canary_spec(5, 1, true, &["false"]));

    // The first version's deployment places its instances; `job run` follows it to the
    // end.
    cli.run(&["job", "run", &v1, "--deadline", "90s"])
        .await
        .ok()
        .stdout_has("rolled out by deployment canary-v1-")
        .stdout_has("successful: 2/2 instances healthy");
    wait_job_running(cli, "canary", 2).await;

    // A changed version: `job run` follows its deployment until the canary is healthy
    // and awaits promotion, then says how to promote it.
    let run = cli
        .run(&["job", "run", &v2, "--deadline", "90s"])
        .await
        .ok()
        .stdout_has("rolled out by deployment canary-v2-")
        .stdout_has("awaits promotion")
        .stdout_has("gantry deployment promote canary-v2-");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("deployment canary-v2-") && l.contains(" healthy, ")),
        "progress lines: {}",
        run.describe()
    );
    let list = cli.json(&["deployment", "list", "--job", "canary"]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "version 1's and version 2's: {list:?}");
    assert_eq!(list[1]["status"], "successful", "{list:?}");
    let d2 = &list[0];
    let d2_id = d2["id"].as_str().unwrap().to_string();
    assert_eq!(d2["job_version"], 2, "{d2}");
    assert_eq!(d2["status"], "running", "{d2}");
    assert_eq!(d2["placed"], 1, "one canary placed: {d2}");
    assert_eq!(d2["promoted"], false, "{d2}");
    assert_eq!(d2["strategy"]["canary"], 1, "{d2}");
    // The table, and one deployment by a prefix of its id.
    let table = cli.run(&["deployment", "list"]).await.ok();
    let header = table.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>().join(" "),
        "ID JOB VERSION STATUS HEALTHY CANARIES UPDATED DESCRIPTION",
        "the columns, in order: {}",
        table.describe()
    );
    let table = table.stdout_has("1 (awaiting promotion)");
    assert!(has_relative_time(&table.stdout), "{}", table.describe());
    let by_prefix = cli.json(&["deployment", "status", "canary-v2"]).await;
    assert_eq!(by_prefix["id"], d2_id.as_str());
    cli.run(&["deployment", "status", "canary-v"])
        .await
        .exit(1)
        .stderr_has("names 2 deployments")
        .stderr_has("give more of the id");
    cli.run(&["deployment", "status", &d2_id])
        .await
        .ok()
        .stdout_has("Update strategy")
        .stdout_has("HEALTHY SINCE")
        .stdout_has("gantry deployment promote");
    let allocations = cli.json(&["alloc", "list", "--job", "canary"]).await;
    let canaries: Vec<&Value> = allocations
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["deployment_id"] == d2_id.as_str())
        .collect();
    assert_eq!(canaries.len(), 1, "{allocations}");
    assert_eq!(canaries[0]["canary"], true, "{allocations}");
    cli.run(&["deployment", "status", "nope"])
        .await
        .exit(1)
        .stderr_has("no deployment `nope`");

    // Promote: the rest rolls out, and the version becomes stable.
    let promoted = cli.json(&["deployment", "promote", &d2_id]).await;
    assert_eq!(promoted["deployment"]["id"], d2_id.as_str());
    assert_eq!(promoted["deployment"]["promoted"], true, "{promoted}");
    assert!(promoted["index"].as_u64().unwrap() > 0, "{promoted}");
    let done = wait_deployment(cli, &d2_id, "successful", |d| d["status"] == "successful").await;
    assert_eq!(done["healthy"], done["desired_total"], "{done}");
    // Nothing left to promote: refused, and said why.
    let again = cli.run(&["deployment", "promote", &d2_id]).await.exit(1);
    assert!(!again.stderr.trim().is_empty(), "{}", again.describe());
    let history = cli.json(&["job", "history", "canary"]).await;
    let v2_entry =
        element(&history, "version", 2).unwrap_or_else(|| panic!("no version 2: {history}"));
    assert_eq!(v2_entry["stable"], true, "{history}");
    cli.run(&["job", "history", "canary"])
        .await
        .ok()
        .stdout_has("STABLE");
    cli.run(&["job", "status", "canary"])
        .await
        .ok()
        .stdout_has("Deployment")
        .stdout_has(&format!(
            "{d2_id} successful, {}/{} healthy",
            done["healthy"], done["desired_total"]
        ));

    // Another version: paused and resumed, then failed by hand and reverted to the
    // last stable version (2).
    let third = cli.json(&["job", "run", &v3, "--detach"]).await;
    let d3_id = third["deployment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a changed version starts a deployment: {third}"))
        .to_string();
    let paused = cli.json(&["deployment", "pause", &d3_id]).await;
    assert_eq!(paused["deployment"]["status"], "paused", "{paused}");
    let listed = cli.json(&["deployment", "list", "--job", "canary"]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0]["id"], d3_id.as_str(), "newest first: {listed:?}");
    assert_eq!(listed[0]["status"], "paused", "{listed:?}");
    cli.run(&["deployment", "list"])
        .await
        .ok()
        .stdout_has("paused");
    let resumed = cli.json(&["deployment", "resume", &d3_id]).await;
    assert_eq!(resumed["deployment"]["status"], "running", "{resumed}");
    let failed = cli.json(&["deployment", "fail", &d3_id]).await;
    assert_eq!(failed["deployment"]["status"], "failed", "{failed}");
    // auto_revert registers the last stable version's spec (version 2's) again, as a
    // new version.
    let reverted = wait_deployment(cli, &d3_id, "reverted", |d| {
        d["reverted_to"].as_u64().is_some()
    })
    .await;
    assert_eq!(reverted["status"], "failed", "{reverted}");
    let revert_version = reverted["reverted_to"].as_u64().unwrap();
    assert!(revert_version > 3, "{reverted}");
    let job = cli.json(&["job", "status", "canary"]).await;
    assert_eq!(job["version"], revert_version, "{job}");
    assert_eq!(
        job["spec"]["tasks"][0]["env"]["RELEASE"], "2",
        "version 2's spec: {job}"
    );
    cli.run(&["deployment", "status", &d3_id])
        .await
        .ok()
        .stdout_has(&format!("version {revert_version}"));

    // A version whose canary cannot run: `job run` says the deployment failed, why,
    // and where it reverted to.
    let broken_run = cli
        .run(&["job", "run", &broken, "--deadline", "90s"])
        .await
        .exit(1)
        .stderr_has("failed")
        .stderr_has("reverted to")
        .stderr_has("`gantry job status canary` follows version");
    assert!(
        broken_run.stdout.contains("deployment canary-v"),
        "progress lines: {}",
        broken_run.describe()
    );

    t.finish("canary").await;
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manager_usage_help_and_completion() {
    let dead = format!("127.0.0.1:{}", free_ports(1)[0]);
    let cli = GantryCli::at(&dead);
    cli.run(&["job", "list"]).await.exit(1).stderr_has(&format!(
        "cannot reach any manager ({dead}: connection refused) — is `gantry server` running? \
         set --address or GANTRY_ADDR"
    ));
    // GANTRY_ADDR is read when --address is not given; --address wins over it.
    let mut from_env = GantryCli::at("");
    from_env.env.push(("GANTRY_ADDR".into(), dead.clone()));
    from_env
        .run(&["node", "list"])
        .await
        .exit(1)
        .stderr_has(&format!("({dead}: connection refused)"));
    let other = format!("127.0.0.1:{}", free_ports(1)[0]);
    from_env
        .run(&["--address", &other, "status"])
        .await
        .exit(1)
        .stderr_has(&format!("({other}: connection refused)"));
    from_env
        .run(&["status", "--address", &other])
        .await
        .exit(1)
        .stderr_has(&format!("({other}: connection refused)"));

    let none = GantryCli::at("");
    none.run(&["job", "frobnicate"]).await.exit(2);
    none.run(&["job", "scale", "web"]).await.exit(2);
    none.run(&["node", "eligibility", "n1", "maybe"])
        .await
        .exit(2);
    let help = none.run(&["--help"]).await.ok();
    let help = help.stdout_has("Exit codes").stdout_has("GANTRY_ADDR");
    for command in [
        "job",
        "deployment",
        "node",
        "alloc",
        "service",
        "operator",
        "status",
        "events",
        "acl",
    ] {
        assert!(
            help.stdout.contains(command),
            "{command}: {}",
            help.describe()
        );
    }
    none.run(&["operator", "raft", "transfer-leader", "--help"])
        .await
        .ok()
        .stdout_has("openraft 0.9");

    let bash = none.run(&["completion", "bash"]).await.ok();
    assert!(bash.stdout.contains("_gantry") && bash.stdout.contains("drain"));
    none.run(&["completion", "zsh"])
        .await
        .ok()
        .stdout_has("#compdef gantry");
    none.run(&["completion", "fish"])
        .await
        .ok()
        .stdout_has("complete -c gantry");
}
