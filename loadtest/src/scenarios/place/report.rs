//! The `place` report: a readable summary on stdout and the same figures (with
//! the per-second curve) as JSON.
//!
//! Why a module of its own: the scenario's steps read better without the
//! formatting, and the text and JSON must carry the same figures.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Outcome, Params, PlaceArgs};
use crate::report::add_chart;
use crate::say;
use crate::stats::{fmt_ms, round3, Table};
use crate::svg::{Chart, Marker, Series};

pub fn statuses_brief(statuses: &[(String, usize)]) -> String {
    if statuses.is_empty() {
        return "not seen".into();
    }
    statuses
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn secs_json(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round3(d.as_secs_f64())))
}

/// Placements per second over `d` (from the first submit).
fn rate(total: usize, d: Option<Duration>) -> Option<f64> {
    d.map(|d| total as f64 / d.as_secs_f64().max(1e-3))
}

/// The best one-second increase of `placed` in the curve.
fn peak_rate(out: &Outcome) -> usize {
    out.curve
        .windows(2)
        .map(|w| w[1].placed.saturating_sub(w[0].placed))
        .max()
        .unwrap_or(0)
}

fn leaders_brief(out: &Outcome) -> String {
    if out.leaders_seen.is_empty() {
        return "-".into();
    }
    out.leaders_seen
        .iter()
        .map(|(l, t)| format!("{}/{t}", l + 1))
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1024.0 * 1024.0))
}

pub fn print(p: &Params, out: &Outcome) {
    let total = p.total();
    say!();
    say!(
        "place: {} simulated agents ({} millicpu / {} MB each), {} jobs x {} replicas = {total} allocations ({} millicpu / {} MB each), {} managers",
        p.agents, p.node.cpu_millis, p.node.memory_mb, p.jobs, p.replicas,
        p.task_cpu_millis, p.task_memory_mb, p.managers
    );
    say!();
    let mut t = Table::new(["", "value"]);
    t.row([
        "agents start -> all nodes ready".into(),
        secs(out.agents_ready_after),
    ]);
    t.row(["submit all jobs".into(), secs(out.submit_took)]);
    if let Some(l) = &out.submit_latency {
        t.row([
            "  POST /v1/jobs p50 / p99 / max ms".into(),
            format!(
                "{} / {} / {}",
                fmt_ms(l.ms_at(0.5)),
                fmt_ms(l.ms_at(0.99)),
                fmt_ms(l.max_ms())
            ),
        ]);
    }
    t.row([
        "first submit -> all placed (agents have them)".into(),
        secs(out.all_placed_after),
    ]);
    t.row([
        "first submit -> all placed (GET /v1/jobs, 2 s polls)".into(),
        secs(out.api_all_placed_after),
    ]);
    t.row([
        "first submit -> all reported running".into(),
        secs(out.all_running_after),
    ]);
    t.row([
        "placements committed / s (all placed)".into(),
        rate(total, out.all_placed_after).map_or("-".into(), |r| format!("{r:.0}")),
    ]);
    t.row([
        "placements / s, best second".into(),
        peak_rate(out).to_string(),
    ]);
    t.row([
        "running reports / s (all running)".into(),
        rate(total, out.all_running_after).map_or("-".into(), |r| format!("{r:.0}")),
    ]);
    t.row([
        "agents' view at the end: placed / running".into(),
        format!("{} / {}", out.last_counts.0, out.last_counts.1),
    ]);
    t.row([
        "API count at the end: placed / running (jobs counted)".into(),
        out.api_count.as_ref().map_or("not done".into(), |(c, n)| {
            format!("{} / {} ({n})", c.placed, c.running)
        }),
    ]);
    t.row([
        "nodes down / changed status after all were ready".into(),
        out.nodes_at_end
            .map_or("?".into(), |n| format!("{} / {}", n.down, n.changed_since)),
    ]);
    say!("{}", t.render().trim_end());
    say!("leaders seen (node/term), in order: {}", leaders_brief(out));
    say!(
        "load tester (agents, sampling) cpu: {:.1} s over the place window",
        out.tester_cpu_s
    );
    say!();
    let window = out.place_window.as_secs_f64().max(1e-3);
    say!(
        "managers (cpu: user+sys from /proc/PID/stat; place window = first submit -> end, {window:.1} s):"
    );
    let mut m = Table::new([
        "manager",
        "role at start",
        "cpu s attaching",
        "cpu s placing",
        "% of a core placing",
        "peak RSS MiB",
        "data dir MiB",
    ]);
    for c in &out.managers {
        if c.gone {
            m.row([c.node.to_string(), "gone from /proc at the end".into()]);
            continue;
        }
        m.row([
            c.node.to_string(),
            if c.leader { "leader" } else { "follower" }.into(),
            format!("{:.1}", c.cpu_attach_s),
            format!("{:.1}", c.cpu_place_s),
            format!("{:.0}", c.cpu_place_s / window * 100.0),
            (c.peak_rss_kb / 1024).to_string(),
            mib(c.data_dir_bytes),
        ]);
    }
    say!("{}", m.render().trim_end());
    if let Some(f) = &out.failure {
        say!("FAILED: {f}");
    }
}

pub fn to_json(p: &Params, args: &PlaceArgs, out: &Outcome, passed: bool) -> Value {
    let total = p.total();
    let window = out.place_window.as_secs_f64().max(1e-3);
    json!({
        "scenario": "place",
        "params": {
            "preset": args.preset.map(|x| format!("{x:?}").to_lowercase()),
            "agents": p.agents,
            "jobs": p.jobs,
            "replicas": p.replicas,
            "allocations": total,
            "node_cpu_millis": p.node.cpu_millis,
            "node_memory_mb": p.node.memory_mb,
            "task_cpu_millis": p.task_cpu_millis,
            "task_memory_mb": p.task_memory_mb,
            "managers": p.managers,
            "submit_concurrency": args.submit_concurrency,
            "timeout_s": p.timeout.as_secs_f64(),
        },
        "results": {
            "agents_ready_s": secs_json(out.agents_ready_after),
            "submit_s": secs_json(out.submit_took),
            "submit_latency": out.submit_latency.as_ref().map(|l| l.to_json()),
            "all_placed_s": secs_json(out.all_placed_after),
            "api_all_placed_s": secs_json(out.api_all_placed_after),
            "all_running_s": secs_json(out.all_running_after),
            "placements_per_s": rate(total, out.all_placed_after).map(|r| r.round()),
            "peak_placements_per_s": peak_rate(out),
            "running_reports_per_s": rate(total, out.all_running_after).map(|r| r.round()),
            "agents_placed_at_end": out.last_counts.0,
            "agents_running_at_end": out.last_counts.1,
            "job_statuses": out.last_job_statuses.iter().map(|(s, n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "api_count": out.api_count.as_ref().map(|(c, n)| json!({
                "placed": c.placed, "running": c.running, "jobs_counted": n,
            })),
            "place_window_s": round3(window),
            "load_tester_cpu_place_s": round3(out.tester_cpu_s),
            "leaders_seen": out.leaders_seen.iter().map(|(l, t)| json!({"node": l + 1, "term": t})).collect::<Vec<_>>(),
            "nodes_down_at_end": out.nodes_at_end.map(|n| n.down),
            "nodes_changed_status_after_ready": out.nodes_at_end.map(|n| n.changed_since),
            "managers": out.managers.iter().map(|c| json!({
                "node": c.node,
                "leader_at_start": c.leader,
                "gone_at_end": c.gone,
                "cpu_attach_s": round3(c.cpu_attach_s),
                "cpu_place_s": round3(c.cpu_place_s),
                "cpu_place_pct_of_core": (c.cpu_place_s / window * 100.0).round(),
                "peak_rss_mb": c.peak_rss_kb / 1024,
                "data_dir_mb": round3(c.data_dir_bytes as f64 / (1024.0 * 1024.0)),
            })).collect::<Vec<_>>(),
            "curve": out.curve.iter().map(|pt| pt.to_json()).collect::<Vec<_>>(),
        },
        "failure": out.failure,
        "passed": passed,
    })
}

/// `place.svg`: allocations placed and reported running over time (the
/// one-second curve, from 0 at the first submit to the moments all were placed
/// and running), with a marker at every change of leader the samples saw.
pub fn chart(p: &Params, out: &Outcome) {
    let total = p.total() as f64;
    let placed = curve_series(
        "placed (agents have them)",
        out,
        |pt| pt.placed,
        out.all_placed_after.map(|d| (d, total)),
    );
    let running = curve_series(
        "reported running",
        out,
        |pt| pt.running,
        out.all_running_after.map(|d| (d, total)),
    );
    add_chart(
        "place",
        Chart {
            title: format!(
                "place: {} jobs x {} replicas on {} nodes",
                p.jobs, p.replicas, p.agents
            ),
            x_label: "seconds since the first submit".into(),
            y_label: "allocations".into(),
            series: vec![placed, running],
            markers: leader_changes(out),
        },
    );
}

/// One count of the curve as a series, starting at (0, 0) and ending with
/// `done` (when all were reached, timed more finely than the curve).
fn curve_series(
    name: &str,
    out: &Outcome,
    count: fn(&super::curve::Point) -> usize,
    done: Option<(Duration, f64)>,
) -> Series {
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        out.curve
            .iter()
            .map(|pt| (pt.t.as_secs_f64(), count(pt) as f64)),
    );
    points.extend(done.map(|(d, n)| (d.as_secs_f64(), n)));
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series {
        name: name.into(),
        points,
    }
}

/// A marker where a sample names a leader (node/term) other than the one
/// before it.
fn leader_changes(out: &Outcome) -> Vec<Marker> {
    let mut markers = Vec::new();
    let mut previous = None;
    for pt in &out.curve {
        if let Some((node, term)) = pt.leader {
            if previous.is_some_and(|l| l != (node, term)) {
                markers.push(Marker {
                    x: pt.t.as_secs_f64(),
                    label: format!("leader {}/{term}", node + 1),
                });
            }
            previous = Some((node, term));
        }
    }
    markers
}
