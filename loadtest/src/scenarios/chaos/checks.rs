//! Checks of the cluster's state after the faults have healed: placement
//! invariants, convergence, and agreement between the managers.
//!
//! Why it exists: safety of the job writes (`consistency.rs`) is not the
//! whole promise. The leader's scheduler and the agents' reports must also
//! have kept their bookkeeping sound through kills, pauses and partitions:
//! no node over capacity, no host port handed out twice on a node, no slot
//! of a job running twice, every job back at its desired count, and every
//! manager holding the same state. The server has no state-digest route, so
//! "the same state" is checked by comparing the stale reads of `/v1/jobs`,
//! `/v1/nodes` and `/v1/allocations` of every manager, taken when all report
//! the same applied index (and the reads carry that index in
//! `X-Gantry-Index`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

/// One invariant's verdict for the report.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
    /// Up to a few offending items, as evidence.
    pub violations: Vec<String>,
}

impl Verdict {
    pub fn new(name: &'static str, violations: Vec<String>, ok_detail: String) -> Verdict {
        Verdict {
            name,
            passed: violations.is_empty(),
            detail: if violations.is_empty() {
                ok_detail
            } else {
                format!("{} violation(s)", violations.len())
            },
            violations,
        }
    }

    pub fn failed(name: &'static str, detail: String) -> Verdict {
        Verdict {
            name,
            passed: false,
            detail,
            violations: Vec::new(),
        }
    }
}

/// GETs against one manager, with the index the answer carries.
#[derive(Clone)]
pub struct Reader {
    http: reqwest::Client,
}

impl Reader {
    pub fn new() -> Result<Reader> {
        Ok(Reader {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_millis(500))
                .build()?,
        })
    }

    /// `GET {base}{path}`: the status, the JSON body and `X-Gantry-Index`.
    pub async fn get(&self, base: &str, path: &str) -> Result<(u16, Value, Option<u64>)> {
        let resp = self.http.get(format!("{base}{path}")).send().await?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get(gantry_api::INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp
            .json()
            .await
            .with_context(|| format!("GET {path}: body"))?;
        Ok((status, body, index))
    }

    pub async fn list(&self, base: &str, path: &str) -> Result<(Vec<Value>, Option<u64>)> {
        let (status, body, index) = self.get(base, path).await?;
        match (status, body) {
            (200, Value::Array(items)) => Ok((items, index)),
            (s, b) => bail!("GET {path}: {s}: {b}"),
        }
    }
}

/// Nodes and allocations as read from one manager at one moment.
pub struct Placement {
    pub nodes: Vec<Value>,
    pub allocations: Vec<Value>,
}

impl Placement {
    pub async fn read(reader: &Reader, base: &str) -> Result<Placement> {
        Ok(Placement {
            nodes: reader.list(base, "/v1/nodes").await?.0,
            allocations: reader.list(base, "/v1/allocations").await?.0,
        })
    }

    /// Desired `run` and not in a terminal client state: holds resources.
    fn live(&self) -> impl Iterator<Item = &Value> {
        self.allocations.iter().filter(|a| {
            a["desired"] == "run"
                && !matches!(
                    a["client_state"].as_str(),
                    Some("failed" | "complete" | "lost")
                )
        })
    }

    fn running(&self) -> impl Iterator<Item = &Value> {
        self.allocations
            .iter()
            .filter(|a| a["desired"] == "run" && a["client_state"] == "running")
    }

    /// Sum of live allocations' resources per node ≤ the node's resources.
    pub fn capacity(&self) -> Verdict {
        let mut used: HashMap<&str, (u64, u64)> = HashMap::new();
        for a in self.live() {
            let entry = used
                .entry(a["node_id"].as_str().unwrap_or("?"))
                .or_default();
            entry.0 += a["resources"]["cpu_millis"].as_u64().unwrap_or(0);
            entry.1 += a["resources"]["memory_mb"].as_u64().unwrap_or(0);
        }
        let mut violations = Vec::new();
        for n in &self.nodes {
            let id = n["id"].as_str().unwrap_or("?");
            let (cpu, mem) = used.get(id).copied().unwrap_or_default();
            let cap_cpu = n["resources"]["cpu_millis"].as_u64().unwrap_or(0);
            let cap_mem = n["resources"]["memory_mb"].as_u64().unwrap_or(0);
            if cpu > cap_cpu || mem > cap_mem {
                violations.push(format!(
                    "node {id}: live allocations hold {cpu} millicpu / {mem} MB of {cap_cpu} / {cap_mem}"
                ));
            }
        }
        let busiest = used.values().map(|u| u.0).max().unwrap_or(0);
        Verdict::new(
            "no node over capacity",
            violations,
            format!(
                "{} nodes, {} live allocations, busiest node {busiest} millicpu",
                self.nodes.len(),
                self.live().count()
            ),
        )
    }

    /// No host port assigned twice among a node's live allocations.
    pub fn host_ports(&self) -> Verdict {
        let mut seen: HashMap<(&str, u64), &str> = HashMap::new();
        let mut violations = Vec::new();
        let mut ports = 0;
        for a in self.live() {
            let node = a["node_id"].as_str().unwrap_or("?");
            let id = a["id"].as_str().unwrap_or("?");
            for p in a["ports"].as_array().into_iter().flatten() {
                let Some(port) = p["host_port"].as_u64() else {
                    continue;
                };
                ports += 1;
                if let Some(other) = seen.insert((node, port), id) {
                    violations.push(format!(
                        "node {node}: host port {port} held by {other} and {id}"
                    ));
                }
            }
        }
        Verdict::new(
            "no host port twice on a node",
            violations,
            format!("{ports} host ports in use"),
        )
    }

    /// No (job, slot) with two running allocations.
    pub fn slots(&self) -> Verdict {
        let mut seen: HashMap<(&str, u64), &str> = HashMap::new();
        let mut violations = Vec::new();
        for a in self.running() {
            let job = a["job_id"].as_str().unwrap_or("?");
            let slot = a["slot"].as_u64().unwrap_or(u64::MAX);
            let id = a["id"].as_str().unwrap_or("?");
            if let Some(other) = seen.insert((job, slot), id) {
                violations.push(format!(
                    "job {job} slot {slot}: running twice ({other} and {id})"
                ));
            }
        }
        Verdict::new(
            "no slot running twice",
            violations,
            format!("{} running allocations", self.running().count()),
        )
    }

    /// Jobs whose running allocations differ from their replicas, and
    /// running allocations of jobs that no longer exist.
    pub fn unconverged(&self, jobs: &[Value]) -> Vec<String> {
        let mut running: BTreeMap<&str, u64> = BTreeMap::new();
        for a in self.running() {
            *running
                .entry(a["job_id"].as_str().unwrap_or("?"))
                .or_default() += 1;
        }
        let mut out = Vec::new();
        let mut known = BTreeSet::new();
        for j in jobs {
            let id = j["id"].as_str().unwrap_or("?");
            known.insert(id);
            let want = j["replicas"].as_u64().unwrap_or(0);
            let have = running.get(id).copied().unwrap_or(0);
            if have != want {
                out.push(format!(
                    "job {id}: {have} running, {want} wanted ({})",
                    j["status"]
                ));
            }
        }
        for (job, n) in running.iter().filter(|(j, _)| !known.contains(*j)) {
            out.push(format!(
                "job {job} is deleted but {n} allocations still run"
            ));
        }
        out
    }
}

/// Poll the leader until every job runs its replicas (and nothing runs for
/// deleted jobs), or `timeout`. Returns the verdict, the time it took, and
/// the last placement seen (for the other invariants).
pub async fn convergence(
    reader: &Reader,
    base: &str,
    timeout: Duration,
) -> Result<(Verdict, Duration, Placement)> {
    let start = Instant::now();
    loop {
        let jobs = reader.list(base, "/v1/jobs").await;
        let placement = Placement::read(reader, base).await;
        if let (Ok((jobs, _)), Ok(placement)) = (jobs, placement) {
            let behind = placement.unconverged(&jobs);
            if behind.is_empty() || start.elapsed() > timeout {
                let took = start.elapsed();
                let ok = format!(
                    "{} jobs at their desired count after {took:.1?}",
                    jobs.len()
                );
                let mut verdict = Verdict::new("every job converges", behind, ok);
                if !verdict.passed {
                    verdict.detail = format!("{} after {timeout:?}", verdict.detail);
                }
                return Ok((verdict, took, placement));
            }
        } else if start.elapsed() > timeout {
            bail!("the leader did not answer /v1/jobs, /v1/nodes, /v1/allocations");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The same applied index everywhere, then the same stale reads everywhere.
pub async fn agreement(reader: &Reader, urls: &[String], timeout: Duration) -> (Verdict, Verdict) {
    let start = Instant::now();
    let mut last = String::from("no attempt");
    while start.elapsed() < timeout {
        match snapshot_all(reader, urls).await {
            Ok(Some((index, lists))) => {
                let applied = Verdict::new(
                    "same applied index",
                    Vec::new(),
                    format!("all {} managers at applied index {index}", urls.len()),
                );
                return (applied, compare_lists(&lists, index));
            }
            Ok(None) => last = "managers at different indexes".into(),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (
        Verdict::failed(
            "same applied index",
            format!("not within {timeout:?}: {last}"),
        ),
        Verdict::failed("same state on every manager", "not compared".into()),
    )
}

const LISTS: [&str; 3] = ["/v1/jobs", "/v1/nodes", "/v1/allocations"];

/// One stale read of each list from each manager, if every read carried the
/// same index (else None: try again).
async fn snapshot_all(reader: &Reader, urls: &[String]) -> Result<Option<(u64, Vec<Vec<Value>>)>> {
    let mut indexes = BTreeSet::new();
    let mut lists = Vec::new();
    for base in urls {
        let mut per_manager = Vec::new();
        for path in LISTS {
            let (items, index) = reader.list(base, &format!("{path}?stale=true")).await?;
            indexes.insert(index.context("no X-Gantry-Index")?);
            per_manager.push(Value::Array(sorted_by_id(items)));
        }
        lists.push(per_manager);
    }
    Ok((indexes.len() == 1).then(|| (*indexes.first().unwrap(), lists)))
}

fn sorted_by_id(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    items
}

fn compare_lists(lists: &[Vec<Value>], index: u64) -> Verdict {
    let mut violations = Vec::new();
    for (m, per_manager) in lists.iter().enumerate().skip(1) {
        for (l, path) in LISTS.iter().enumerate() {
            if per_manager[l] != lists[0][l] {
                violations.push(format!(
                    "{path}: manager {} differs from manager 1 at index {index}: {}",
                    m + 1,
                    first_difference(&lists[0][l], &per_manager[l])
                ));
            }
        }
    }
    let items: usize = lists[0]
        .iter()
        .map(|l| l.as_array().map_or(0, Vec::len))
        .sum();
    Verdict::new(
        "same state on every manager",
        violations,
        format!(
            "stale reads of {} identical at index {index} ({items} items; no digest route, so the lists are the digest)",
            LISTS.join(", ")
        ),
    )
}

fn first_difference(a: &Value, b: &Value) -> String {
    let (a, b) = (
        a.as_array().cloned().unwrap_or_default(),
        b.as_array().cloned().unwrap_or_default(),
    );
    if a.len() != b.len() {
        return format!("{} vs {} items", a.len(), b.len());
    }
    a.iter()
        .zip(&b)
        .find(|(x, y)| x != y)
        .map(|(x, y)| {
            let x: String = x.to_string().chars().take(400).collect();
            let y: String = y.to_string().chars().take(400).collect();
            format!("{x} vs {y}")
        })
        .unwrap_or_default()
}
