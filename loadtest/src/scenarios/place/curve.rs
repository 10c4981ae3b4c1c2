//! The placement curve: once a second, how many allocations the agents have been
//! given and how many the managers know are running, which manager leads (and in
//! which term), and every manager's CPU and memory; every few seconds the same as
//! a progress line on stderr.
//!
//! Why it exists: a single "time to all placed" hides the shape — a steady rate, a
//! slow start, a tail where the last jobs wait behind report batches, a change of
//! leader under load. The points go into the JSON report for a chart. The counts
//! come from the simulated agents' own counters (see `fleet.rs`) and the CPU from
//! /proc; only the leader question costs the managers one `GET /v1/status` each.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::fleet::Fleet;
use super::procstat;

/// One sample; `t` counts from the first job submitted.
#[derive(Debug, Clone)]
pub struct Point {
    pub t: Duration,
    pub placed: usize,
    pub running: usize,
    /// The leader (0-based) and its term, as the managers said; None if none did.
    pub leader: Option<(usize, u64)>,
    /// Each manager's CPU over the last interval, in % of one core.
    pub cpu_pct: Vec<f64>,
    pub rss_kb: Vec<u64>,
}

impl Point {
    pub fn to_json(&self) -> Value {
        json!({
            "t_s": (self.t.as_secs_f64() * 1000.0).round() / 1000.0,
            "placed": self.placed,
            "running": self.running,
            "leader_node": self.leader.map(|(l, _)| l + 1),
            "term": self.leader.map(|(_, t)| t),
            "cpu_pct": self.cpu_pct.iter().map(|c| c.round()).collect::<Vec<_>>(),
            "rss_mb": self.rss_kb.iter().map(|r| r / 1024).collect::<Vec<_>>(),
        })
    }

    /// The leader's CPU %, or the busiest manager's when no leader answered.
    fn leader_cpu(&self) -> f64 {
        match self.leader {
            Some((l, _)) => self.cpu_pct.get(l).copied().unwrap_or(0.0),
            None => self.cpu_pct.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// Every leader a sample saw, in order: (0-based node, term).
pub fn leaders_seen(points: &[Point]) -> Vec<(usize, u64)> {
    let mut seen: Vec<(usize, u64)> = Vec::new();
    for l in points.iter().filter_map(|p| p.leader) {
        if seen.last() != Some(&l) {
            seen.push(l);
        }
    }
    seen
}

/// The sampling task; stops when dropped.
pub struct Curve {
    task: JoinHandle<()>,
    points: Arc<Mutex<Vec<Point>>>,
    phase: Arc<Mutex<String>>,
}

/// Samples per progress line.
const PRINT_EVERY: u64 = 3;
/// Bound on the points kept (a 15-minute run needs 900).
const MAX_POINTS: usize = 24 * 3600;

impl Curve {
    /// Starts sampling `fleet` and the managers (`urls`, `pids`, same order) every
    /// second, with `t0` as time zero; `total` is what "all placed" means.
    pub fn start(
        fleet: Arc<Fleet>,
        urls: Vec<String>,
        pids: Vec<u32>,
        t0: Instant,
        total: usize,
    ) -> Curve {
        let points = Arc::new(Mutex::new(Vec::new()));
        let phase = Arc::new(Mutex::new(String::new()));
        let task = tokio::spawn(sample_loop(
            fleet,
            Managers { urls, pids },
            t0,
            total,
            points.clone(),
            phase.clone(),
        ));
        Curve {
            task,
            points,
            phase,
        }
    }

    /// What the scenario is doing now, shown at the end of the progress line.
    pub fn phase(&self, text: impl Into<String>) {
        *self.phase.lock().unwrap() = text.into();
    }

    pub fn points(&self) -> Vec<Point> {
        self.points.lock().unwrap().clone()
    }
}

impl Drop for Curve {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The managers, to sample: where they answer and their processes.
struct Managers {
    urls: Vec<String>,
    pids: Vec<u32>,
}

impl Managers {
    fn cpu_seconds(&self) -> Vec<Option<procstat::Sample>> {
        self.pids.iter().map(|&p| procstat::sample(p)).collect()
    }

    /// The node that says it leads, with the highest term if two do.
    async fn leader(&self, http: &reqwest::Client) -> Option<(usize, u64)> {
        let asks = self.urls.iter().map(|u| async move {
            let body: Value = http
                .get(format!("{u}/v1/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let term = crate::system::json_u64(&body["term"]).unwrap_or(0);
            (body["role"] == "leader").then_some(term)
        });
        let terms = futures::future::join_all(asks).await;
        terms
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, i)))
            .max()
            .map(|(t, i)| (i, t))
    }
}

async fn sample_loop(
    fleet: Arc<Fleet>,
    managers: Managers,
    t0: Instant,
    total: usize,
    points: Arc<Mutex<Vec<Point>>>,
    phase: Arc<Mutex<String>>,
) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(800))
        .build()
        .expect("a plain HTTP client");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = managers.cpu_seconds();
    let mut last_at = Instant::now();
    let mut last_placed = 0;
    let mut n: u64 = 0;
    tick.tick().await;
    loop {
        tick.tick().await;
        n += 1;
        let counts = fleet.counts();
        let now = Instant::now();
        let samples = managers.cpu_seconds();
        let dt = (now - last_at).as_secs_f64().max(1e-3);
        let cpu_pct = samples
            .iter()
            .zip(&last)
            .map(|(b, a)| match (a, b) {
                (Some(a), Some(b)) => (b.cpu_seconds - a.cpu_seconds) / dt * 100.0,
                _ => 0.0,
            })
            .collect();
        let rss_kb = samples.iter().map(|s| s.map_or(0, |s| s.rss_kb)).collect();
        (last, last_at) = (samples, now);
        let point = Point {
            t: now.saturating_duration_since(t0),
            placed: counts.to_run,
            running: counts.running,
            leader: managers.leader(&http).await,
            cpu_pct,
            rss_kb,
        };
        {
            let mut points = points.lock().unwrap();
            if points.len() < MAX_POINTS {
                points.push(point.clone());
            }
        }
        if n.is_multiple_of(PRINT_EVERY) {
            let rate = (point.placed.saturating_sub(last_placed)) as f64 / PRINT_EVERY as f64;
            last_placed = point.placed;
            let phase = phase.lock().unwrap().clone();
            let leader = point
                .leader
                .map_or("none".into(), |(l, t)| format!("{} (term {t})", l + 1));
            let cpus: Vec<String> = point.cpu_pct.iter().map(|c| format!("{c:.0}")).collect();
            eprintln!(
                "[place] {:>6.1}s  placed {:>8}/{total} ({:>6.0}/s)  running {:>8}  leader {leader} cpu {:.0}%  managers cpu% [{}]  {phase}",
                point.t.as_secs_f64(),
                point.placed,
                rate,
                point.running,
                point.leader_cpu(),
                cpus.join(" "),
            );
        }
    }
}
