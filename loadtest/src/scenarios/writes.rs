//! Scenario `writes`: how many small job registrations per second a 3-manager
//! cluster commits, and how long each takes, under N concurrent clients.
//!
//! Why it exists: every change to the cluster is a Raft write with an fsync
//! on a quorum, so this is the ceiling on how fast anything can happen
//! (submits, scale changes, plans, status batches). The same load against
//! etcd on the same machine says whether that ceiling is where it should be.
//!
//! The shape: each client sends one write at a time (closed loop), a new
//! unique job id each time (`lt-<n>`, `replicas: 0`, so nothing is
//! scheduled). Writes go round-robin over the endpoints (`--target all`,
//! followers forward to the leader) or all to the leader. Only requests that
//! *complete* inside the measured window count, after a warm-up whose
//! requests are sent but not counted.
//!
//! One `reqwest::Client` per simulated client, not one shared pool: each
//! client then owns exactly one keep-alive connection per endpoint, like 64
//! independent operators or agents would, connection reuse does not depend
//! on a shared pool's idle-list bookkeeping, and the two systems get
//! identical client set-ups. (With HTTP/1.1 a shared pool would open about as
//! many connections anyway; the cost of 64 small pools is nothing.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::progress::{Counters, Progress};
use crate::say;
use crate::stats::{fmt_ms, fmt_ratio, ratio_json, round3, ErrorCounts, Latency, Table};
use crate::svg::Chart;
use crate::system::{send_write, Endpoints, Kind, Setup, System};
use crate::timeline::LatencyTimeline;

use super::{systems_to_run, Compare};

/// Write throughput and latency: N clients registering small unique jobs.
///
/// Starts a fresh cluster of real `gantry server` processes (own temp data
/// dirs, fsync on, loopback), lets `--clients` closed-loop clients register
/// jobs for `--warmup` + `--duration`, and reports writes/s, latency
/// percentiles and errors by kind for the measured part. With `--compare
/// etcd` the same load runs afterwards against a 3-node etcd through its
/// JSON gateway (`POST /v3/kv/put` of the same job JSON).
#[derive(clap::Args, Debug, Clone)]
pub struct WritesArgs {
    /// Concurrent clients; each has one write in flight at a time.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to measure, after the warm-up (e.g. 20s, 1m).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load sent before measuring starts (connections opened, caches warm).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Number of managers (and etcd members with --compare etcd).
    #[arg(long, default_value_t = 3)]
    pub managers: usize,
    /// Where writes go: `all` round-robin over every node (followers
    /// forward), or `leader` only.
    #[arg(long, value_enum, default_value_t = TargetMode::All)]
    pub target: TargetMode,
    /// Upper bound on requests sent in all (warm-up included); the run ends
    /// at whichever of this and the duration comes first.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// Per-request timeout; a request that takes longer counts as an error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Run the same load against another system too and print both.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,
    /// Run only this system (e.g. `--only etcd` to check the baseline
    /// before a gantry binary exists).
    #[arg(long, value_enum, hide = true)]
    pub only: Option<Kind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetMode {
    Leader,
    All,
}

/// What one system did under the load.
struct Outcome {
    kind: Kind,
    window: Duration,
    acked: u64,
    latency: Latency,
    errors: ErrorCounts,
    sent: u64,
    capped: bool,
    /// Latency by completion time since measuring began: for the chart.
    timeline: LatencyTimeline,
}

impl Outcome {
    fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.acked as f64 / secs
        } else {
            0.0
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "system": self.kind.name(),
            "window_s": round3(self.window.as_secs_f64()),
            "acked": self.acked,
            "writes_per_s": round3(self.rate()),
            "latency": self.latency.to_json(),
            "errors": self.errors.to_json(),
            "errors_total": self.errors.total(),
            "requests_sent": self.sent,
            "stopped_by_max_requests": self.capped,
        })
    }
}

/// The resolution of the latency chart.
const CHART_BUCKET: Duration = Duration::from_millis(500);

/// What one client task brings back.
struct ClientResult {
    latency: Latency,
    errors: ErrorCounts,
    acked: u64,
    last_done: Option<Instant>,
    timeline: LatencyTimeline,
}

pub async fn run(args: &WritesArgs, setup: &Setup) -> Result<(bool, Value)> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.managers > 0, "--managers must be at least 1");
    let mut outcomes = Vec::new();
    for kind in systems_to_run(args.only, args.compare) {
        outcomes.push(run_one(kind, args, setup).await?);
    }
    print_report(args, &outcomes);
    add_latency_chart(&outcomes);
    let report = json!({
        "scenario": "writes",
        "params": {
            "clients": args.clients,
            "duration_s": args.duration.as_secs_f64(),
            "warmup_s": args.warmup.as_secs_f64(),
            "managers": args.managers,
            "target": format!("{:?}", args.target).to_lowercase(),
            "max_requests": args.max_requests,
            "timeout_s": args.timeout.as_secs_f64(),
        },
        "results": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        "ratio_gantry_to_etcd": ratios(&outcomes),
    });
    Ok((true, report))
}

async fn run_one(kind: Kind, args: &WritesArgs, setup: &Setup) -> Result<Outcome> {
    let mut sys = System::start(kind, args.managers, setup).await?;
    let nodes: Vec<usize> = match args.target {
        TargetMode::All => (0..sys.len()).collect(),
        TargetMode::Leader => vec![sys.leader(setup.startup_timeout).await?],
    };
    let endpoints = sys.endpoints(&nodes);
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(format!("writes {}", kind.name()), counters.clone());
    progress.phase("warm-up");

    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let sent = Arc::new(AtomicU64::new(0));
    let next_id = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(args.timeout)
            .connect_timeout(Duration::from_secs(1))
            .build()?;
        tasks.spawn(client_loop(
            c,
            client,
            endpoints.clone(),
            counters.clone(),
            sent.clone(),
            next_id.clone(),
            args.max_requests,
            measure_from,
            until,
        ));
    }

    // Wait for the clients, watching that no server dies meanwhile.
    let mut results = Vec::with_capacity(args.clients);
    let mut measuring = false;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(r) => results.push(r?),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                sys.check_alive()?;
                if !measuring && Instant::now() >= measure_from {
                    measuring = true;
                    progress.phase("measuring");
                }
            }
        }
    }
    drop(progress);
    sys.check_alive()?;

    let mut latency = Latency::default();
    let mut errors = ErrorCounts::default();
    let mut acked = 0;
    let mut last_done = measure_from;
    let mut timeline = LatencyTimeline::new(measure_from, CHART_BUCKET);
    for r in &results {
        latency.merge(&r.latency);
        timeline.merge(&r.timeline);
        errors.merge(&r.errors);
        acked += r.acked;
        if let Some(t) = r.last_done {
            last_done = last_done.max(t);
        }
    }
    let sent = sent.load(Ordering::Relaxed).min(args.max_requests);
    let capped = sent >= args.max_requests;
    // Stopped early by --max-requests: the window ends with the last reply.
    let end = if capped { last_done.min(until) } else { until };
    let window = end.saturating_duration_since(measure_from);
    eprintln!(
        "[writes {}] done: {acked} acked in {:.1}s measured",
        kind.name(),
        window.as_secs_f64()
    );
    Ok(Outcome {
        kind,
        window,
        acked,
        latency,
        errors,
        sent,
        capped,
        timeline,
    })
    // `sys` drops here: every process is killed, then its temp dir removed.
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    c: usize,
    client: reqwest::Client,
    endpoints: Endpoints,
    counters: Arc<Counters>,
    sent: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    max_requests: u64,
    measure_from: Instant,
    until: Instant,
) -> ClientResult {
    let mut out = ClientResult {
        latency: Latency::default(),
        errors: ErrorCounts::default(),
        acked: 0,
        last_done: None,
        timeline: LatencyTimeline::new(measure_from, CHART_BUCKET),
    };
    let mut k = c; // round-robin, each client starting at a different node
    while Instant::now() < until && sent.fetch_add(1, Ordering::Relaxed) < max_requests {
        let id = format!("lt-{}", next_id.fetch_add(1, Ordering::Relaxed));
        let t = Instant::now();
        let result = send_write(endpoints.write(&client, k % endpoints.len(), &id)).await;
        let done = Instant::now();
        k += 1;
        let measured = done >= measure_from && done <= until;
        match result {
            Ok(()) => {
                counters.ack();
                if measured {
                    out.latency.record(done - t);
                    out.timeline.record(done, done - t);
                    out.acked += 1;
                    out.last_done = Some(done);
                }
            }
            Err(e) => {
                counters.error();
                if measured {
                    out.errors.add(&e);
                }
                if !e.key.starts_with("HTTP") {
                    // Refused or reset: do not spin at full speed.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    out
}

/// `writes.svg`: each system's mean and max latency per 500 ms of the
/// measured window (both windows start at 0, so the systems share the axis).
fn add_latency_chart(outcomes: &[Outcome]) {
    let series = outcomes
        .iter()
        .flat_map(|o| {
            let system = o.kind.name();
            [
                o.timeline.mean_series(&format!("{system} mean")),
                o.timeline.max_series(&format!("{system} max")),
            ]
        })
        .collect();
    let chart = Chart {
        title: format!(
            "writes: latency per {} ms of the measured window",
            CHART_BUCKET.as_millis()
        ),
        x_label: "seconds since measuring began (by completion time)".into(),
        y_label: "latency ms".into(),
        series,
        markers: Vec::new(),
    };
    crate::report::add_chart("writes", chart);
}

fn ratios(outcomes: &[Outcome]) -> Value {
    let (Some(g), Some(e)) = (
        outcomes.iter().find(|o| o.kind == Kind::Gantry),
        outcomes.iter().find(|o| o.kind == Kind::Etcd),
    ) else {
        return Value::Null;
    };
    let r = ratio_json;
    json!({
        "writes_per_s": r(g.rate(), e.rate()),
        "p50": r(g.latency.ms_at(0.5), e.latency.ms_at(0.5)),
        "p90": r(g.latency.ms_at(0.9), e.latency.ms_at(0.9)),
        "p99": r(g.latency.ms_at(0.99), e.latency.ms_at(0.99)),
        "max": r(g.latency.max_ms(), e.latency.max_ms()),
    })
}

fn print_report(args: &WritesArgs, outcomes: &[Outcome]) {
    say!();
    say!(
        "writes: {} clients, {} measured after {} warm-up, {} nodes, target {}",
        args.clients,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        args.managers,
        format!("{:?}", args.target).to_lowercase(),
    );
    say!();
    let both = outcomes.len() == 2;
    let mut header: Vec<String> = vec![String::new()];
    header.extend(outcomes.iter().map(|o| o.kind.name().to_string()));
    if both {
        header.push("gantry/etcd".into());
    }
    let mut t = Table::new(header);
    type Figure = fn(&Outcome) -> f64;
    type Show = fn(f64) -> String;
    let rows: [(&str, Figure, Show); 8] = [
        ("writes/s", Outcome::rate, |x| format!("{x:.1}")),
        ("acked", |o| o.acked as f64, |x| format!("{x:.0}")),
        ("latency mean ms", |o| o.latency.mean_ms(), fmt_ms),
        ("latency p50 ms", |o| o.latency.ms_at(0.50), fmt_ms),
        ("latency p90 ms", |o| o.latency.ms_at(0.90), fmt_ms),
        ("latency p99 ms", |o| o.latency.ms_at(0.99), fmt_ms),
        ("latency max ms", |o| o.latency.max_ms(), fmt_ms),
        ("errors", |o| o.errors.total() as f64, |x| format!("{x:.0}")),
    ];
    for (name, figure, show) in rows {
        let mut row = vec![name.to_string()];
        row.extend(outcomes.iter().map(|o| show(figure(o))));
        if both {
            let ratio = if name == "errors" || name == "acked" {
                String::new()
            } else {
                fmt_ratio(figure(&outcomes[0]), figure(&outcomes[1]))
            };
            row.push(ratio);
        }
        t.row(row);
    }
    say!("{}", t.render().trim_end());
    for o in outcomes {
        say!();
        say!(
            "{}: {:.1}s measured, {} requests sent in all{}; errors: {}",
            o.kind.name(),
            o.window.as_secs_f64(),
            o.sent,
            if o.capped {
                " (stopped by --max-requests)"
            } else {
                ""
            },
            o.errors.brief()
        );
        for s in o.errors.samples() {
            say!("  {s}");
        }
    }
}
