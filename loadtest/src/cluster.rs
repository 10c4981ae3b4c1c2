//! A cluster of real `gantry server` processes on loopback.
//!
//! Why it exists: every scenario needs the same few moves on a Gantry
//! cluster — start N managers in their own temp data dirs, ask one for its
//! status, SIGKILL one, start it again from the same data dir, read back what
//! was stored. This file knows Gantry's flags and HTTP paths and nothing about
//! load; `system.rs` puts the same face on etcd so scenarios can drive both.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::process::{free_ports, logs_report, Proc, ProcSpec};
use crate::system::{json_u64, NodeStatus};

pub struct GantryCluster {
    // Declared before the data dirs' owner (the scenario's TempDir) is dropped:
    // processes die first, then their directories go.
    nodes: Vec<Proc>,
    ports: Vec<u16>,
    http: reqwest::Client,
}

/// The job every write registers: small, unique by id, `replicas: 0` so the
/// scheduler has nothing to place and the figure is the replicated write.
pub fn job_json(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "replicas": 0,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "1"],
            "resources": {"cpu_millis": 100, "memory_mb": 32}
        }]
    })
    .to_string()
}

impl GantryCluster {
    /// Spawn `n` managers (ids 1..=n) with data dirs under `root`. Returns as
    /// soon as the processes are started; `System::wait_ready` waits for a
    /// leader.
    pub fn start(bin: &Path, n: usize, root: &Path) -> Result<GantryCluster> {
        let ports = free_ports(n)?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect();
        let initial = initial.join(",");
        let mut nodes = Vec::with_capacity(n);
        for (i, port) in ports.iter().enumerate() {
            let id = i + 1;
            let dir = root.join(format!("manager-{id}"));
            let data = dir.join("data");
            std::fs::create_dir_all(&data)
                .with_context(|| format!("creating {}", data.display()))?;
            let spec = ProcSpec {
                name: format!("manager {id}"),
                program: bin.to_owned(),
                args: vec![
                    "server".into(),
                    "--id".into(),
                    id.to_string(),
                    "--listen".into(),
                    format!("127.0.0.1:{port}"),
                    "--data-dir".into(),
                    path_arg(&data),
                    "--initial-cluster".into(),
                    initial.clone(),
                ],
                log: dir.join("server.log"),
            };
            nodes.push(Proc::spawn(spec)?);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        Ok(GantryCluster { nodes, ports, http })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub fn urls(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.url(i)).collect()
    }

    /// `GET /v1/status` on manager `i` (0-based; its id is i + 1).
    pub async fn status(&self, i: usize) -> Result<NodeStatus> {
        let resp = self
            .http
            .get(format!("{}/v1/status", self.url(i)))
            .send()
            .await?;
        let code = resp.status();
        let body: Value = resp.json().await?;
        if !code.is_success() {
            bail!("status {code}: {body}");
        }
        let role = body["role"].as_str().unwrap_or("").to_owned();
        let leader = json_u64(&body["leader"]["id"])
            .and_then(|id| (id as usize).checked_sub(1))
            .filter(|&l| l < self.len());
        Ok(NodeStatus {
            is_leader: role == "leader",
            role,
            leader,
            term: json_u64(&body["term"]).unwrap_or(0),
            commit_index: json_u64(&body["commit_index"]).unwrap_or(0),
            applied_index: json_u64(&body["applied_index"]).unwrap_or(0),
        })
    }

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].restart()
    }

    /// Every job id the cluster holds, read linearizably from manager `i`.
    pub async fn stored_ids(&self, i: usize) -> Result<HashSet<String>> {
        let resp = self
            .http
            .get(format!("{}/v1/jobs?stale=false", self.url(i)))
            .timeout(Duration::from_secs(120))
            .send()
            .await?;
        let code = resp.status();
        let body: Value = resp.json().await.context("GET /v1/jobs: body")?;
        if !code.is_success() {
            bail!("GET /v1/jobs: {code}: {body}");
        }
        // The list's exact shape is the server's to choose: accept a bare
        // array or an object holding one, and items that are the job or wrap
        // it.
        let items = match &body {
            Value::Array(a) => a.clone(),
            Value::Object(o) => o
                .values()
                .find_map(|v| v.as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(items
            .iter()
            .filter_map(|item| {
                [&item["id"], &item["job"]["id"], &item["spec"]["id"]]
                    .into_iter()
                    .find_map(|v| v.as_str().map(str::to_owned))
            })
            .collect())
    }

    /// Of `ids`, those that `GET /v1/jobs/{id}` on manager `i` says do not
    /// exist (404). Used to confirm what the list seemed to miss, in case the
    /// list is paginated or truncated.
    pub async fn confirm_missing(&self, i: usize, ids: &[String]) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for id in ids {
            let resp = self
                .http
                .get(format!("{}/v1/jobs/{id}", self.url(i)))
                .send()
                .await?;
            match resp.status().as_u16() {
                404 => missing.push(id.clone()),
                200..=299 => {}
                other => bail!("GET /v1/jobs/{id}: unexpected {other}"),
            }
        }
        Ok(missing)
    }

    pub fn procs_mut(&mut self) -> impl Iterator<Item = &mut Proc> {
        self.nodes.iter_mut()
    }

    pub fn logs(&self, lines: usize) -> String {
        logs_report(&self.nodes, lines)
    }
}

pub(crate) fn path_arg(p: &Path) -> String {
    PathBuf::from(p).to_string_lossy().into_owned()
}

/// The job, allocation and node endpoints of one manager, for scenarios that
/// drive workloads rather than raw writes (`engine`).
pub struct GantryApi {
    base: String,
    http: reqwest::Client,
}

/// What `GET /v1/allocations?job=` says about one job.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllocationCounts {
    /// Allocations the managers want running (`desired: run`).
    pub placed: usize,
    /// Of those, the ones the agent reports `running`.
    pub running: usize,
}

impl GantryApi {
    pub fn new(base: String, timeout: Duration) -> Result<GantryApi> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        Ok(GantryApi { base, http })
    }

    /// `POST /v1/jobs`; Ok once the server answers 2xx (the job is committed).
    pub async fn submit_job(&self, spec: &Value) -> Result<()> {
        let resp = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .json(spec)
            .send()
            .await?;
        expect_success(resp, "POST /v1/jobs").await
    }

    /// `DELETE /v1/jobs/{id}`: stop every instance and remove the job.
    pub async fn delete_job(&self, id: &str) -> Result<()> {
        let resp = self
            .http
            .delete(format!("{}/v1/jobs/{id}", self.base))
            .send()
            .await?;
        expect_success(resp, &format!("DELETE /v1/jobs/{id}")).await
    }

    /// How many of job `id`'s allocations are placed and running
    /// (linearizable read).
    pub async fn allocation_counts(&self, id: &str) -> Result<AllocationCounts> {
        let list = self.get_array(&format!("/v1/allocations?job={id}")).await?;
        let placed: Vec<&Value> = list.iter().filter(|a| a["desired"] == "run").collect();
        Ok(AllocationCounts {
            placed: placed.len(),
            running: placed
                .iter()
                .filter(|a| a["client_state"] == "running")
                .count(),
        })
    }

    /// The status (`initializing`, `ready`, `down`) of the node named `name`,
    /// `None` while it is not registered.
    pub async fn node_status(&self, name: &str) -> Result<Option<String>> {
        let nodes = self.get_array("/v1/nodes").await?;
        Ok(nodes
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| n["status"].as_str().unwrap_or("").to_owned()))
    }

    async fn get_array(&self, path: &str) -> Result<Vec<Value>> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        let code = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {path}: body"))?;
        if !code.is_success() {
            bail!("GET {path}: {code}: {body}");
        }
        match body {
            Value::Array(items) => Ok(items),
            other => bail!("GET {path}: expected a list, got {other}"),
        }
    }
}

async fn expect_success(resp: reqwest::Response, what: &str) -> Result<()> {
    let code = resp.status();
    if code.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    bail!(
        "{what}: {code}: {}",
        text.chars().take(500).collect::<String>()
    )
}
