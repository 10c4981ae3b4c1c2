//! Scenario `packing`: how well placement packs a mixed workload, next to reference
//! policies and the lower bound. A simulation: no servers, no network, no processes.
//!
//! Why it exists: the other scenarios measure how fast Gantry decides; this one measures
//! how good the decisions are. The same seeded workload (`workload`) is placed by
//! Gantry's own placement code and by reference policies written here from their public
//! descriptions (`policies`), and every result is judged by the same arithmetic
//! (`metrics`): nodes used against the least possible, free room left stranded.
//!
//! This scenario is the only reason `gantry-loadtest` depends on `gantry-server`: it
//! calls `gantry_server::scheduler::placement` directly (`ClusterView::try_place`, as the
//! leader does), so the figures are those of the real code, not of a model of it.

mod metrics;
mod policies;
mod workload;

use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};

use crate::say;
use crate::stats::{fmt_ms, fmt_ratio, ratio_json, round3, Table};

use metrics::{lower_bound, Figures};
use policies::{k8s_sample_size, nomad_sample_size, Policy};
use workload::{Demand, Workload, SHAPES};

/// Placement quality: Gantry's placement code vs reference policies, simulated.
///
/// Generates a seeded mix of small, medium and large jobs (a few cpu- or memory-heavy)
/// sized to fill `--fill` of `--nodes` identical nodes on the fuller dimension, and
/// places it, item by item in submission order, with: Gantry's placement code
/// (bin-pack), first-fit, a Nomad-style bin-pack over a random log2(n) sample of
/// feasible nodes, a Kubernetes-style MostAllocated over a random 10 % sample, then for
/// contrast Gantry's spread and Gantry's bin-pack with replicas allowed to share a node.
/// Reports per policy the items placed and not placed, nodes used against the lower
/// bound, free room stranded, and the time taken; exit 1 if any policy overfilled a node.
/// No servers are started; the global options other than --json do not apply. See
/// loadtest/README.md for how each policy is defined.
#[derive(clap::Args, Debug, Clone)]
pub struct PackingArgs {
    /// Cluster size preset: `small` = 100 nodes, `large` = 5,000 nodes (an explicit
    /// --nodes wins). Without either: 200 nodes.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Number of identical nodes.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Cpu of each node, in millicpu.
    #[arg(long, default_value_t = 4000)]
    pub node_cpu_millis: u64,
    /// Memory of each node, in MB.
    #[arg(long, default_value_t = 16384)]
    pub node_memory_mb: u64,
    /// How much of the cluster's total capacity the workload asks for, on its fuller
    /// dimension (0 < fill <= 2; above 1 some items cannot be placed by anyone).
    #[arg(long, default_value_t = 0.8)]
    pub fill: f64,
    /// Seed of the workload and of the references' random sampling: the same seed gives
    /// the same figures (all but the times).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    Small,
    Large,
}

const DEFAULT_NODES: usize = 200;

impl PackingArgs {
    fn node_count(&self) -> usize {
        self.nodes.unwrap_or(match self.preset {
            Some(Preset::Small) => 100,
            Some(Preset::Large) => 5_000,
            None => DEFAULT_NODES,
        })
    }

    fn node_capacity(&self) -> Demand {
        Demand {
            cpu: self.node_cpu_millis,
            mem: self.node_memory_mb,
        }
    }
}

/// One policy's result.
struct Outcome {
    policy: Policy,
    figures: Figures,
}

pub async fn run(args: &PackingArgs) -> Result<(bool, Value)> {
    anyhow::ensure!(
        args.node_cpu_millis > 0 && args.node_memory_mb > 0,
        "--node-cpu-millis and --node-memory-mb must be positive"
    );
    let workload = Arc::new(Workload::generate(
        args.node_count(),
        args.node_capacity(),
        args.fill,
        args.seed,
    )?);
    eprintln!(
        "[packing] {} items in {} jobs on {} nodes (seed {})",
        workload.items.len(),
        workload.jobs,
        workload.nodes,
        args.seed
    );
    let mut outcomes = Vec::new();
    for policy in Policy::ALL {
        eprintln!("[packing] placing with {} ...", policy.name());
        // Off the async thread, so Ctrl-C is noticed between policies.
        let (w, seed) = (workload.clone(), args.seed);
        let figures = tokio::task::spawn_blocking(move || -> Result<Figures> {
            let placed = policies::place(policy, &w, seed)?;
            Ok(metrics::figures(&w, &placed))
        })
        .await??;
        eprintln!(
            "[packing] {}: {} placed, {} nodes used, {} ms",
            policy.name(),
            figures.placed,
            figures.nodes_used,
            fmt_ms(figures.took.as_secs_f64() * 1e3)
        );
        outcomes.push(Outcome { policy, figures });
    }
    print_report(args, &workload, &outcomes);
    let passed = outcomes.iter().all(|o| o.figures.overfilled_nodes == 0);
    Ok((passed, report_json(args, &workload, &outcomes, passed)))
}

fn percent(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

fn print_report(args: &PackingArgs, workload: &Workload, outcomes: &[Outcome]) {
    let dominant = workload.dominant_dim();
    let full_bound = lower_bound(
        workload.items.iter().map(|i| i.demand),
        workload.node_capacity,
    );
    say!();
    say!(
        "packing: {} nodes of {} millicpu / {} MB, fill {} on {} (seed {}): \
         {} items in {} jobs, lower bound for all of them {} nodes",
        workload.nodes,
        workload.node_capacity.cpu,
        workload.node_capacity.mem,
        args.fill,
        dominant.name(),
        args.seed,
        workload.items.len(),
        workload.jobs,
        full_bound,
    );
    say!();
    let mut t = Table::new([
        "policy",
        "placed",
        "not placed",
        "nodes used",
        "lower bound",
        "used/bound",
        &format!("free {} %", dominant.name()),
        "stranded %",
        "shared replicas",
        "time ms",
        "µs/item",
    ]);
    for o in outcomes {
        let f = &o.figures;
        t.row([
            o.policy.name().to_string(),
            f.placed.to_string(),
            f.not_placed.to_string(),
            f.nodes_used.to_string(),
            f.lower_bound.to_string(),
            format!("{:.3}", f.used_over_bound()),
            percent(f.mean_free_dominant),
            percent(f.stranded_dominant),
            f.shared_replicas.to_string(),
            fmt_ms(f.took.as_secs_f64() * 1e3),
            format!("{:.2}", f.micros_per_item()),
        ]);
    }
    say!("{}", t.render().trim_end());
    say!();
    print_ratios(outcomes);
    say!();
    say!(
        "free {d} %: mean free {d} on the nodes used; stranded %: share of all free {d} \
         on nodes where the smallest shape no longer fits; shared replicas: items placed \
         next to another replica of their job. Samples: nomad-style {} feasible nodes, \
         k8s-style {}.",
        nomad_sample_size(workload.nodes),
        k8s_sample_size(workload.nodes).min(workload.nodes),
        d = dominant.name(),
    );
    for o in outcomes.iter().filter(|o| o.figures.overfilled_nodes > 0) {
        say!(
            "FAILED: {} overfilled {} nodes",
            o.policy.name(),
            o.figures.overfilled_nodes
        );
    }
}

/// Gantry bin-pack over each other policy: below 1.00x Gantry used fewer nodes (or left
/// less stranded, or was faster).
fn print_ratios(outcomes: &[Outcome]) {
    let Some((gantry, others)) = outcomes.split_first() else {
        return;
    };
    let g = &gantry.figures;
    let mut t = Table::new([
        format!("{} vs", gantry.policy.name()),
        "nodes used".into(),
        "used/bound".into(),
        "stranded".into(),
        "time".into(),
    ]);
    for o in others {
        let f = &o.figures;
        t.row([
            o.policy.name().to_string(),
            fmt_ratio(g.nodes_used as f64, f.nodes_used as f64),
            fmt_ratio(g.used_over_bound(), f.used_over_bound()),
            fmt_ratio(g.stranded_dominant, f.stranded_dominant),
            fmt_ratio(g.took.as_secs_f64(), f.took.as_secs_f64()),
        ]);
    }
    say!("{}", t.render().trim_end());
}

fn figures_json(o: &Outcome) -> Value {
    let f = &o.figures;
    json!({
        "policy": o.policy.name(),
        "placed": f.placed,
        "not_placed": f.not_placed,
        "nodes_used": f.nodes_used,
        "lower_bound_nodes": f.lower_bound,
        "used_over_bound": round3(f.used_over_bound()),
        "mean_free_dominant_fraction": round3(f.mean_free_dominant),
        "stranded_dominant_fraction": round3(f.stranded_dominant),
        "stranded_other_fraction": round3(f.stranded_other),
        "shared_replicas": f.shared_replicas,
        "overfilled_nodes": f.overfilled_nodes,
        "time_ms": round3(f.took.as_secs_f64() * 1e3),
        "us_per_item": round3(f.micros_per_item()),
    })
}

fn report_json(
    args: &PackingArgs,
    workload: &Workload,
    outcomes: &[Outcome],
    passed: bool,
) -> Value {
    let total = workload.total_demand();
    let shapes: Vec<Value> = SHAPES
        .iter()
        .zip(workload.items_per_shape())
        .map(|(s, n)| json!({"name": s.name, "cpu_millis": s.demand.cpu, "memory_mb": s.demand.mem, "items": n}))
        .collect();
    let ratios: serde_json::Map<String, Value> = outcomes
        .split_first()
        .map(|(g, others)| {
            others
                .iter()
                .map(|o| {
                    let (g, f) = (&g.figures, &o.figures);
                    let r = json!({
                        "nodes_used": ratio_json(g.nodes_used as f64, f.nodes_used as f64),
                        "used_over_bound": ratio_json(g.used_over_bound(), f.used_over_bound()),
                        "stranded": ratio_json(g.stranded_dominant, f.stranded_dominant),
                        "time": ratio_json(g.took.as_secs_f64(), f.took.as_secs_f64()),
                    });
                    (o.policy.name().to_string(), r)
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "scenario": "packing",
        "params": {
            "nodes": workload.nodes,
            "node_cpu_millis": workload.node_capacity.cpu,
            "node_memory_mb": workload.node_capacity.mem,
            "fill": args.fill,
            "seed": args.seed,
            "preset": args.preset.map(|p| format!("{p:?}").to_lowercase()),
        },
        "workload": {
            "items": workload.items.len(),
            "jobs": workload.jobs,
            "cpu_millis": total.cpu,
            "memory_mb": total.mem,
            "dominant": workload.dominant_dim().name(),
            "lower_bound_nodes": lower_bound(workload.items.iter().map(|i| i.demand), workload.node_capacity),
            "shapes": shapes,
        },
        "results": outcomes.iter().map(figures_json).collect::<Vec<_>>(),
        "ratio_gantry_to_reference": ratios,
        "passed": passed,
    })
}

#[cfg(test)]
mod tests;
