//! Placement throughput at 1,000 and 10,000 nodes, and how it scales.
//!
//! Fills a cluster of identical-size nodes (4000 millicpu, 8192 MB) with mixed labels and
//! drivers, from empty to about 70 % full, with a deterministic stream of small, medium
//! and large asks: replicas of jobs that spread over nodes, some with a zone constraint,
//! some with dynamic ports. Then, at 70 %, a churn phase: place one, release a random one.
//! Prints placements per second and µs per placement for each size, and the 10k/1k ratio
//! of the cost per placement: an O(log n) index keeps it near 1, a scan would make it 10.
//! For reference it also times one full scan (`explain`), the cost a linear placement
//! would pay every time.
//!
//! `cargo bench -p gantry-server --bench placement` (plain `main`, no harness).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gantry_api::{Constraint, ConstraintOperator, PortRange, Resources};
use gantry_server::scheduler::placement::{
    Algorithm, Ask, ClusterView, CompiledConstraint, NodeInfo,
};

const CPU: u64 = 4000;
const MEM: u64 = 8192;
const TARGET_FILL: f64 = 0.70;

/// splitmix64: a tiny deterministic generator, so every run places the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cluster(nodes: usize, algorithm: Algorithm) -> ClusterView {
    let mut view = ClusterView::new(algorithm);
    let mut rng = Rng(7);
    for i in 0..nodes {
        let mut labels = BTreeMap::new();
        labels.insert("zone".to_string(), ["a", "b", "c", "d"][i % 4].to_string());
        match rng.below(3) {
            0 => {
                labels.insert("disk".into(), "ssd".into());
            }
            1 => {
                labels.insert("disk".into(), "hdd".into());
            }
            _ => {}
        }
        let drivers = if rng.below(4) == 0 {
            vec!["docker".to_string(), "process".to_string()]
        } else {
            vec!["docker".to_string()]
        };
        view.upsert_node(NodeInfo {
            id: format!("node-{i:05}"),
            name: format!("node-{i:05}"),
            address: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            capacity: Resources {
                cpu_millis: CPU,
                memory_mb: MEM,
            },
            port_range: PortRange {
                start: 20_000,
                end: 32_000,
            },
            labels,
            drivers,
            schedulable: true,
        });
    }
    view
}

/// A job's ask: small, medium or large, sometimes constrained to a zone, sometimes with
/// dynamic ports.
fn job_ask(rng: &mut Rng, job: usize) -> Ask {
    let (cpu, mem) = match rng.below(10) {
        0..=4 => (100, 128),
        5..=8 => (500, 1024),
        _ => (2000, 4096),
    };
    let mut ask = Ask::new(
        format!("job-{job}"),
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        },
    );
    ask.drivers = vec!["docker".into()];
    if rng.below(5) == 0 {
        let zone = ["a", "b", "c", "d"][rng.below(4) as usize];
        ask.constraints.push(
            CompiledConstraint::new(&Constraint {
                attribute: "label.zone".into(),
                operator: ConstraintOperator::Equal,
                value: zone.into(),
            })
            .unwrap(),
        );
    }
    if rng.below(3) == 0 {
        ask.dynamic_ports = 1 + rng.below(2) as usize;
    }
    ask.priority = 50;
    ask
}

/// Time spent on successful placements and on attempts that found no node.
#[derive(Default)]
struct Tally {
    placed: usize,
    placed_time: Duration,
    failed: usize,
    failed_time: Duration,
}

impl Tally {
    fn add(&mut self, ok: bool, took: Duration) {
        if ok {
            self.placed += 1;
            self.placed_time += took;
        } else {
            self.failed += 1;
            self.failed_time += took;
        }
    }

    fn micros_per_placement(&self) -> f64 {
        self.placed_time.as_secs_f64() * 1e6 / self.placed as f64
    }

    fn placements_per_second(&self) -> f64 {
        self.placed as f64 / self.placed_time.as_secs_f64()
    }

    fn micros_per_failure(&self) -> f64 {
        if self.failed == 0 {
            0.0
        } else {
            self.failed_time.as_secs_f64() * 1e6 / self.failed as f64
        }
    }
}

struct Run {
    nodes: usize,
    fill: Tally,
    churn: Tally,
    scan_time: Duration,
}

fn run(nodes: usize, algorithm: Algorithm) -> Run {
    let mut view = cluster(nodes, algorithm);
    let mut rng = Rng(42);
    let capacity = (nodes as u64 * MEM) as f64;
    let mut reserved_mem = 0u64;
    let mut live: Vec<(String, String, u64)> = Vec::new();
    let mut job = 0;
    let mut fill = Tally::default();
    let mut asks: Vec<Ask> = Vec::new();
    while (reserved_mem as f64) < capacity * TARGET_FILL {
        // A job of 1 to 8 replicas, placed one after the other. `try_place`: a failure
        // costs no explanation (`place` would scan every node to explain it).
        let ask = job_ask(&mut rng, job);
        let replicas = 1 + rng.below(8);
        job += 1;
        for r in 0..replicas {
            let alloc = format!("{}-{r}", ask.job_id);
            let start = Instant::now();
            let result = view.try_place(black_box(&ask), &alloc);
            fill.add(result.is_some(), start.elapsed());
            if let Some(p) = result {
                reserved_mem += ask.resources.memory_mb;
                live.push((p.node_id, alloc, ask.resources.memory_mb));
            }
        }
        asks.push(ask);
    }

    // Steady state at ~70 %: release a random allocation, place a new one.
    let mut churn = Tally::default();
    for i in 0..20_000 {
        let victim = rng.below(live.len() as u64) as usize;
        let (node, alloc, _) = live.swap_remove(victim);
        let ask = &asks[rng.below(asks.len() as u64) as usize];
        let alloc_new = format!("churn-{i}");
        let start = Instant::now();
        view.release(&node, &alloc);
        let result = view.try_place(black_box(ask), &alloc_new);
        churn.add(result.is_some(), start.elapsed());
        if let Some(p) = result {
            live.push((p.node_id, alloc_new, ask.resources.memory_mb));
        }
    }

    // One full scan per ask: what a linear placement pays every time.
    let scans = 200;
    let start = Instant::now();
    for ask in asks.iter().take(scans) {
        black_box(view.explain(ask));
    }
    let scan_time = start.elapsed() / scans.min(asks.len()) as u32;

    Run {
        nodes,
        fill,
        churn,
        scan_time,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    for algorithm in [Algorithm::BinPack, Algorithm::Spread] {
        println!("placement benchmark, {algorithm:?}: 4000 mcpu / 8192 MB nodes, fill to 70 %");
        let mut costs = Vec::new();
        for nodes in [1_000, 10_000] {
            let r = run(nodes, algorithm);
            println!(
                "  {:>6} nodes  fill: {:>6} placed, {:>9.0} placements/s, {:>6.2} µs each \
                 ({} found no node, {:.2} µs each)",
                r.nodes,
                r.fill.placed,
                r.fill.placements_per_second(),
                r.fill.micros_per_placement(),
                r.fill.failed,
                r.fill.micros_per_failure(),
            );
            println!(
                "                churn at 70 %: {:>6.2} µs per release + place \
                 ({} found no node, {:.2} µs each); one full scan (explain): {:.1} µs",
                r.churn.micros_per_placement(),
                r.churn.failed,
                r.churn.micros_per_failure(),
                r.scan_time.as_secs_f64() * 1e6,
            );
            costs.push((
                r.fill.micros_per_placement(),
                r.churn.micros_per_placement(),
            ));
        }
        println!(
            "  cost per placement, 10k / 1k: fill {:.2}x, churn {:.2}x (linear would be 10x)\n",
            costs[1].0 / costs[0].0,
            costs[1].1 / costs[0].1
        );
    }
}
