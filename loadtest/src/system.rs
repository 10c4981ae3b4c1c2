//! One face over the two systems a scenario can drive: Gantry and etcd.
//!
//! Why it exists: a comparison is only fair if both sides get exactly the same
//! load shape and the same kill loop. Scenarios are written once against
//! [`System`]; the differences (paths, bodies, how a leader is named) stay in
//! `cluster.rs` and `etcd.rs`. The generic cluster moves — wait until a
//! leader is agreed, find the leader, wait for a new one after a kill, wait
//! until a restarted node has caught up — live here, once, on top of each
//! system's `status`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use crate::cluster::{job_json, GantryCluster};
use crate::etcd::{put_body, EtcdCluster};
use crate::process::find_binary;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Gantry,
    Etcd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gantry => "gantry",
            Kind::Etcd => "etcd",
        }
    }
}

/// What a node says about itself and the cluster, in one shape for both.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub role: String,
    pub is_leader: bool,
    /// The leader this node believes in, as a node index (0-based).
    pub leader: Option<usize>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

/// A JSON number, or a decimal string (etcd's gateway writes uint64 so).
pub fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Where the binaries are and whether to keep temp dirs; from global flags.
#[derive(Debug, Clone)]
pub struct Setup {
    pub gantry_bin: Option<PathBuf>,
    pub etcd_bin: Option<PathBuf>,
    pub keep: bool,
    pub startup_timeout: Duration,
}

enum Inner {
    Gantry(GantryCluster),
    Etcd(EtcdCluster),
}

pub struct System {
    kind: Kind,
    // Field order is drop order: processes die before their dirs are removed.
    inner: Inner,
    alive: Vec<bool>,
    dir: TempDir,
}

impl System {
    /// Start an `n`-node cluster of `kind` and wait until it has a leader
    /// that every node agrees on.
    pub async fn start(kind: Kind, n: usize, setup: &Setup) -> Result<System> {
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("gantry-lt-{}-", kind.name()))
            .tempdir()
            .context("creating a temp dir")?;
        if setup.keep {
            dir.disable_cleanup(true);
        }
        let inner = match kind {
            Kind::Gantry => {
                let bin = find_binary(setup.gantry_bin.as_ref(), "gantry")
                    .context("looking for the gantry binary (--gantry-bin)")?;
                Inner::Gantry(GantryCluster::start(&bin, n, dir.path())?)
            }
            Kind::Etcd => {
                let bin = find_binary(setup.etcd_bin.as_ref(), "etcd").context(
                    "looking for etcd (Debian: apt-get install etcd-server; or --etcd-bin)",
                )?;
                Inner::Etcd(EtcdCluster::start(&bin, n, dir.path())?)
            }
        };
        let mut sys = System {
            kind,
            inner,
            alive: vec![true; n],
            dir,
        };
        eprintln!(
            "[{}] started {n} nodes under {}",
            kind.name(),
            sys.dir.path().display()
        );
        let t0 = Instant::now();
        let leader = sys.wait_ready(setup.startup_timeout).await?;
        eprintln!(
            "[{}] leader is node {} after {:.1}s",
            kind.name(),
            leader + 1,
            t0.elapsed().as_secs_f64()
        );
        Ok(sys)
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn len(&self) -> usize {
        self.alive.len()
    }

    pub fn urls(&self) -> Vec<String> {
        match &self.inner {
            Inner::Gantry(c) => c.urls(),
            Inner::Etcd(c) => c.urls(),
        }
    }

    /// What the write tasks need: the URLs to write to and the body shape.
    pub fn endpoints(&self, nodes: &[usize]) -> Endpoints {
        let urls = self.urls();
        Endpoints {
            kind: self.kind,
            urls: nodes.iter().map(|&i| urls[i].clone()).collect(),
        }
    }

    pub async fn status(&self, i: usize) -> Result<NodeStatus> {
        match &self.inner {
            Inner::Gantry(c) => c.status(i).await,
            Inner::Etcd(c) => c.status(i).await,
        }
    }

    /// Status of every node we believe is running (None: no answer).
    pub async fn statuses(&self) -> Vec<Option<NodeStatus>> {
        let polls = (0..self.len()).map(|i| async move {
            if self.alive[i] {
                self.status(i).await.ok()
            } else {
                None
            }
        });
        futures::future::join_all(polls).await
    }

    /// Fails (with log tails) if a node we did not kill has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let procs: Vec<&mut crate::process::Proc> = match &mut self.inner {
            Inner::Gantry(c) => c.procs_mut().collect(),
            Inner::Etcd(c) => c.procs_mut().collect(),
        };
        let mut dead = Vec::new();
        for (i, p) in procs.into_iter().enumerate() {
            if self.alive[i] {
                if let Some(status) = p.exited() {
                    dead.push(format!("{} exited: {status}", p.name()));
                }
            }
        }
        if !dead.is_empty() {
            return Err(self.fail(dead.join("; ")));
        }
        Ok(())
    }

    /// An error for a run that cannot go on: the message, the tails of the
    /// logs, and the temp dir kept (not removed at the end) as evidence.
    pub fn fail(&mut self, msg: String) -> anyhow::Error {
        self.dir.disable_cleanup(true);
        anyhow::anyhow!(
            "{msg}\n{}(data dirs and full logs kept under {})",
            self.logs(30),
            self.dir.path().display()
        )
    }

    pub fn logs(&self, lines: usize) -> String {
        match &self.inner {
            Inner::Gantry(c) => c.logs(lines),
            Inner::Etcd(c) => c.logs(lines),
        }
    }

    /// Wait until every node answers and names the same leader.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let all = self.statuses().await;
            let leaders: Vec<Option<usize>> = all
                .iter()
                .map(|s| s.as_ref().and_then(|s| s.leader))
                .collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l))
                    && all[*l].as_ref().is_some_and(|s| s.is_leader)
                {
                    return Ok(*l);
                }
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = all
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match s {
                        Some(s) => format!(
                            "node {}: {} (leader {:?}, term {})",
                            i + 1,
                            s.role,
                            s.leader.map(|l| l + 1),
                            s.term
                        ),
                        None => format!("node {}: no answer", i + 1),
                    })
                    .collect();
                return Err(self.fail(format!(
                    "{}: no agreed leader after {timeout:?}; last seen: {}",
                    self.name(),
                    seen.join("; "),
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node that says it is leader (highest term wins if two do).
    pub async fn leader(&mut self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let best = self
                .statuses()
                .await
                .into_iter()
                .enumerate()
                .filter_map(|(i, s)| s.filter(|s| s.is_leader).map(|s| (s.term, i)))
                .max();
            if let Some((_, i)) = best {
                return Ok(i);
            }
            if Instant::now() > deadline {
                return Err(self.fail(format!("{}: no leader after {timeout:?}", self.name())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// After `killed` died: wait until a surviving node reports a leader
    /// other than `killed`. Polls every 20 ms.
    pub async fn wait_new_leader(&mut self, killed: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            for s in self.statuses().await.into_iter().flatten() {
                if let Some(l) = s.leader.filter(|&l| l != killed) {
                    return Ok(l);
                }
            }
            if Instant::now() > deadline {
                return Err(self.fail(format!(
                    "{}: no new leader {timeout:?} after killing node {}",
                    self.name(),
                    killed + 1,
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        self.alive[i] = false;
        match &mut self.inner {
            Inner::Gantry(c) => c.kill(i),
            Inner::Etcd(c) => c.kill(i),
        }
    }

    /// The OS pid of node `i` while it runs.
    pub fn pid(&mut self, i: usize) -> Option<u32> {
        self.proc_mut(i).and_then(|p| p.pid())
    }

    /// Send `signal` to node `i` (SIGSTOP / SIGCONT for the chaos scenario).
    pub fn signal(&mut self, i: usize, signal: libc::c_int) -> Result<()> {
        match self.proc_mut(i) {
            Some(p) => p.signal(signal),
            None => Ok(()),
        }
    }

    fn proc_mut(&mut self, i: usize) -> Option<&mut crate::process::Proc> {
        match &mut self.inner {
            Inner::Gantry(c) => c.procs_mut().nth(i),
            Inner::Etcd(c) => c.procs_mut().nth(i),
        }
    }

    /// Start node `i` again from its data dir.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        match &mut self.inner {
            Inner::Gantry(c) => c.restart(i)?,
            Inner::Etcd(c) => c.restart(i)?,
        }
        self.alive[i] = true;
        Ok(())
    }

    /// Wait until node `i` has applied everything the leader had committed
    /// when we started waiting.
    pub async fn wait_caught_up(&mut self, i: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let leader = self.leader(timeout).await?;
        let target = self.status(leader).await?.commit_index;
        loop {
            self.check_alive()?;
            if let Ok(s) = self.status(i).await {
                if s.applied_index >= target {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(self.fail(format!(
                    "{}: node {} did not catch up to index {target} within {timeout:?}",
                    self.name(),
                    i + 1,
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every id the cluster holds, read from node `i`.
    pub async fn stored_ids(&self, i: usize) -> Result<HashSet<String>> {
        match &self.inner {
            Inner::Gantry(c) => c.stored_ids(i).await,
            Inner::Etcd(c) => c.stored_ids(i).await,
        }
    }

    /// Of `ids`, those node `i` confirms one by one that it does not hold.
    pub async fn confirm_missing(&self, i: usize, ids: &[String]) -> Result<Vec<String>> {
        match &self.inner {
            Inner::Gantry(c) => c.confirm_missing(i, ids).await,
            Inner::Etcd(c) => c.confirm_missing(i, ids).await,
        }
    }
}

/// The write side of a system, cheap to clone into every client task.
#[derive(Clone, Debug)]
pub struct Endpoints {
    kind: Kind,
    urls: Vec<String>,
}

/// Why a write was not acknowledged; `key` groups errors in the report.
#[derive(Debug, Clone)]
pub struct WriteError {
    pub key: String,
    pub detail: String,
}

impl Endpoints {
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// The request that registers job `id` through endpoint `i`: Gantry's
    /// `POST /v1/jobs`, or etcd's `POST /v3/kv/put` of the same job JSON.
    pub fn write(&self, client: &reqwest::Client, i: usize, id: &str) -> reqwest::RequestBuilder {
        let (path, body) = match self.kind {
            Kind::Gantry => ("/v1/jobs", job_json(id)),
            Kind::Etcd => ("/v3/kv/put", put_body(id, &job_json(id))),
        };
        client
            .post(format!("{}{path}", self.urls[i]))
            .header("content-type", "application/json")
            .body(body)
    }
}

/// Send a write and read the whole reply (so the connection is reused).
/// Ok only on a 2xx status.
pub async fn send_write(req: reqwest::RequestBuilder) -> std::result::Result<(), WriteError> {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await;
            if status.is_success() {
                return body.map(|_| ()).map_err(|e| classify(&e));
            }
            let text = body
                .map(|b| String::from_utf8_lossy(&b).chars().take(300).collect())
                .unwrap_or_default();
            Err(WriteError {
                key: format!("HTTP {}", status.as_u16()),
                detail: text,
            })
        }
        Err(e) => Err(classify(&e)),
    }
}

fn classify(e: &reqwest::Error) -> WriteError {
    let key = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "other"
    };
    // The chain of sources says e.g. "connection reset by peer".
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    WriteError {
        key: key.into(),
        detail,
    }
}
