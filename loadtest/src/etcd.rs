//! A 3-node etcd cluster on loopback: the baseline Gantry is compared with.
//!
//! Why etcd: it is the reference Raft-replicated store with fsync on every
//! commit, so "how far are we from etcd on the same machine, same load shape"
//! is the honest question for a Raft-backed orchestrator. We drive it through
//! its JSON gateway (HTTP/1.1 + JSON, like Gantry's API) so both sides pay
//! for the same kind of client and protocol. Default fsync settings; each
//! member in its own temp data dir.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::cluster::path_arg;
use crate::process::{free_ports, logs_report, Proc, ProcSpec};
use crate::system::{json_u64, NodeStatus};

/// Keys are `jobs/<id>`, so one prefix range reads them all back.
pub const KEY_PREFIX: &str = "jobs/";

pub struct EtcdCluster {
    nodes: Vec<Proc>,
    client_ports: Vec<u16>,
    /// Raft member id of each node, learnt from its own status replies
    /// (etcd picks them; we need them to map `leader` to a node).
    member_ids: Mutex<Vec<Option<u64>>>,
    http: reqwest::Client,
}

pub fn key_for(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// Body of `POST /v3/kv/put` for one write.
pub fn put_body(id: &str, value: &str) -> String {
    json!({"key": B64.encode(key_for(id)), "value": B64.encode(value)}).to_string()
}

impl EtcdCluster {
    pub fn start(bin: &Path, n: usize, root: &Path) -> Result<EtcdCluster> {
        let ports = free_ports(2 * n)?;
        let (client_ports, peer_ports) = ports.split_at(n);
        let initial: Vec<String> = peer_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("n{}=http://127.0.0.1:{p}", i + 1))
            .collect();
        let initial = initial.join(",");
        let token = format!("gantry-lt-{}", std::process::id());
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("n{}", i + 1);
            let dir = root.join(format!("etcd-{name}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let client = format!("http://127.0.0.1:{}", client_ports[i]);
            let peer = format!("http://127.0.0.1:{}", peer_ports[i]);
            let spec = ProcSpec {
                name: format!("etcd {name}"),
                program: bin.to_owned(),
                args: vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", path_arg(&dir.join("data"))),
                    format!("--listen-client-urls={client}"),
                    format!("--advertise-client-urls={client}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-advertise-peer-urls={peer}"),
                    format!("--initial-cluster={initial}"),
                    "--initial-cluster-state=new".into(),
                    format!("--initial-cluster-token={token}"),
                    "--logger=zap".into(),
                    "--log-outputs=stderr".into(),
                ],
                log: dir.join("etcd.log"),
            };
            nodes.push(Proc::spawn(spec)?);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        Ok(EtcdCluster {
            nodes,
            client_ports: client_ports.to_vec(),
            member_ids: Mutex::new(vec![None; n]),
            http,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.client_ports[i])
    }

    pub fn urls(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.url(i)).collect()
    }

    async fn post(&self, i: usize, path: &str, body: Value, timeout: Duration) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.url(i)))
            .timeout(timeout)
            .body(body.to_string())
            .header("content-type", "application/json")
            .send()
            .await?;
        let code = resp.status();
        let body: Value = resp.json().await.with_context(|| format!("{path}: body"))?;
        if !code.is_success() {
            bail!("{path}: {code}: {body}");
        }
        Ok(body)
    }

    /// `POST /v3/maintenance/status` on member `i`. The gateway spells
    /// fields either in proto (snake_case) or JSON (camelCase) style
    /// depending on the version, and omits zero values: accept both.
    pub async fn status(&self, i: usize) -> Result<NodeStatus> {
        let body = self
            .post(
                i,
                "/v3/maintenance/status",
                json!({}),
                Duration::from_secs(2),
            )
            .await?;
        let field = |a: &str, b: &str| json_u64(&body[a]).or_else(|| json_u64(&body[b]));
        let me = json_u64(&body["header"]["member_id"])
            .or_else(|| json_u64(&body["header"]["memberId"]))
            .context("status without header.member_id")?;
        let leader_id = json_u64(&body["leader"]).filter(|&l| l != 0);
        let leader = {
            let mut ids = self.member_ids.lock().unwrap();
            ids[i] = Some(me);
            leader_id.and_then(|l| ids.iter().position(|m| *m == Some(l)))
        };
        let is_leader = leader_id == Some(me);
        Ok(NodeStatus {
            is_leader,
            role: if is_leader { "leader" } else { "follower" }.into(),
            leader,
            term: field("raft_term", "raftTerm").unwrap_or(0),
            commit_index: field("raft_index", "raftIndex").unwrap_or(0),
            applied_index: field("raft_applied_index", "raftAppliedIndex").unwrap_or(0),
        })
    }

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        // With a data dir already present, etcd ignores the --initial-*
        // flags and rejoins as the member it was.
        self.nodes[i].restart()
    }

    /// Every id stored under `jobs/`, read (linearizably) from member `i`,
    /// in pages so no reply is huge.
    pub async fn stored_ids(&self, i: usize) -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        let mut from = KEY_PREFIX.as_bytes().to_vec();
        let mut end = KEY_PREFIX.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1; // "jobs0": the end of the prefix range
        loop {
            let body = self
                .post(
                    i,
                    "/v3/kv/range",
                    json!({"key": B64.encode(&from), "range_end": B64.encode(&end),
                           "keys_only": true, "limit": 10000}),
                    Duration::from_secs(60),
                )
                .await?;
            let kvs = body["kvs"].as_array().cloned().unwrap_or_default();
            let mut last = None;
            for kv in &kvs {
                let key = B64
                    .decode(kv["key"].as_str().unwrap_or(""))
                    .context("range: key is not base64")?;
                let text = String::from_utf8_lossy(&key);
                if let Some(id) = text.strip_prefix(KEY_PREFIX) {
                    ids.insert(id.to_owned());
                }
                last = Some(key);
            }
            let more = body["more"].as_bool().unwrap_or(false);
            match last {
                Some(mut k) if more => {
                    k.push(0);
                    from = k;
                }
                _ => return Ok(ids),
            }
        }
    }

    /// Of `ids`, those whose key member `i` does not hold.
    pub async fn confirm_missing(&self, i: usize, ids: &[String]) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for id in ids {
            let body = self
                .post(
                    i,
                    "/v3/kv/range",
                    json!({"key": B64.encode(key_for(id)), "count_only": true}),
                    Duration::from_secs(5),
                )
                .await?;
            if json_u64(&body["count"]).unwrap_or(0) == 0 {
                missing.push(id.clone());
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
