//! The placement policies `packing` compares: Gantry's own placement code, and reference
//! policies re-implemented here from their public descriptions.
//!
//! Why it exists: the question is how well Gantry packs next to what other schedulers
//! do, so Gantry is run as it is (`gantry_server::scheduler::placement`, the code the
//! leader runs) and the references are each a small function over a plain array of
//! nodes. Every policy gets the same items in the same order and returns the node each
//! item went to (or none); the figures are computed from that alone (`metrics`).
//!
//! The references, as described publicly (written here, not copied):
//!
//! - **first-fit**: the first node, in index order, with room;
//! - **Nomad-style bin-pack**: a random sample of `max(2, ceil(log2 n))` *feasible* nodes
//!   (Nomad's limit for service jobs), each scored after placing by
//!   `20 − (10^free_cpu_fraction + 10^free_mem_fraction)`; the highest wins;
//! - **Kubernetes-style MostAllocated**: a random sample of 10 % of the nodes (at least
//!   [`K8S_MIN_SAMPLE`]) among the feasible ones (like `percentageOfNodesToScore`), each
//!   scored after placing by the mean of its allocated cpu and memory fractions; the
//!   highest wins.
//!
//! Ties go to the earlier node in index order (first-fit) or in sample order. The
//! references place each item on its own: unlike Gantry, they do not try to keep a job's
//! replicas on distinct nodes. So Gantry also runs once with that preference off
//! (`GantryBinPackShared`), to tell its cost from the ranking's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use gantry_api::{PortRange, Resources};
use gantry_server::scheduler::placement::{Algorithm, Ask, ClusterView, NodeInfo};

use super::workload::{Demand, Rng, Workload};

/// The fewest nodes the Kubernetes-style policy scores when 10 % is fewer.
pub const K8S_MIN_SAMPLE: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    GantryBinPack,
    GantrySpread,
    /// Gantry's bin-pack with `distinct_nodes` off: what keeping replicas apart costs.
    GantryBinPackShared,
    FirstFit,
    NomadBinPack,
    K8sMostAllocated,
}

impl Policy {
    /// In report order: Gantry first, then the references.
    pub const ALL: [Policy; 6] = [
        Policy::GantryBinPack,
        Policy::FirstFit,
        Policy::NomadBinPack,
        Policy::K8sMostAllocated,
        Policy::GantrySpread,
        Policy::GantryBinPackShared,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::GantryBinPack => "gantry bin-pack",
            Policy::GantrySpread => "gantry spread",
            Policy::GantryBinPackShared => "gantry bin-pack, replicas may share",
            Policy::FirstFit => "first-fit",
            Policy::NomadBinPack => "nomad-style",
            Policy::K8sMostAllocated => "k8s MostAllocated",
        }
    }
}

/// Where each item went (by node index), and how long placing them all took.
#[derive(Clone, Debug)]
pub struct Placed {
    pub node_of: Vec<Option<u32>>,
    pub took: Duration,
}

/// Places every item of `workload`, in order, with `policy`. `seed` drives the random
/// sampling of the Nomad- and Kubernetes-style policies.
pub fn place(policy: Policy, workload: &Workload, seed: u64) -> Result<Placed> {
    match policy {
        Policy::GantryBinPack => place_with_gantry(workload, Algorithm::BinPack, true),
        Policy::GantrySpread => place_with_gantry(workload, Algorithm::Spread, true),
        Policy::GantryBinPackShared => place_with_gantry(workload, Algorithm::BinPack, false),
        Policy::FirstFit => Ok(place_with_reference(workload, |nodes, d| {
            first_fit(nodes, d)
        })),
        Policy::NomadBinPack => {
            let mut sampler = Sampler::new(workload.nodes, seed);
            let limit = nomad_sample_size(workload.nodes);
            Ok(place_with_reference(workload, move |nodes, d| {
                best_of_sample(nodes, d, &mut sampler, limit, nomad_score)
            }))
        }
        Policy::K8sMostAllocated => {
            let mut sampler = Sampler::new(workload.nodes, seed.wrapping_add(1));
            let limit = k8s_sample_size(workload.nodes);
            Ok(place_with_reference(workload, move |nodes, d| {
                best_of_sample(nodes, d, &mut sampler, limit, most_allocated_score)
            }))
        }
    }
}

// ---- Gantry ----------------------------------------------------------------------------

fn node_id(index: usize) -> String {
    format!("node-{index:06}")
}

/// A view of `workload.nodes` identical, schedulable, label-less nodes.
fn gantry_view(workload: &Workload, algorithm: Algorithm) -> ClusterView {
    let mut view = ClusterView::new(algorithm);
    for i in 0..workload.nodes {
        view.upsert_node(NodeInfo {
            id: node_id(i),
            name: node_id(i),
            address: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            capacity: Resources {
                cpu_millis: workload.node_capacity.cpu,
                memory_mb: workload.node_capacity.mem,
            },
            port_range: PortRange {
                start: 20_000,
                end: 32_000,
            },
            labels: Default::default(),
            drivers: vec!["docker".into()],
            schedulable: true,
        });
    }
    view
}

/// Gantry's placement code, as the leader runs it: one ask per job (with `distinct`,
/// replicas go to distinct nodes when they can, the default), `try_place` per replica.
/// Only the placing is timed.
fn place_with_gantry(workload: &Workload, algorithm: Algorithm, distinct: bool) -> Result<Placed> {
    let mut view = gantry_view(workload, algorithm);
    let index_of: HashMap<String, u32> = (0..workload.nodes)
        .map(|i| (node_id(i), i as u32))
        .collect();
    // Replica 0 of every job comes first, so each job's ask is built from it.
    let asks: Vec<Ask> = workload
        .items
        .iter()
        .filter(|i| i.replica == 0)
        .map(|i| {
            let mut ask = Ask::new(
                format!("job-{}", i.job),
                Resources {
                    cpu_millis: i.demand.cpu,
                    memory_mb: i.demand.mem,
                },
            );
            ask.distinct_nodes = distinct;
            ask
        })
        .collect();
    let alloc_ids: Vec<String> = workload
        .items
        .iter()
        .map(|i| format!("job-{}-{}", i.job, i.replica))
        .collect();

    let start = Instant::now();
    let placements: Vec<Option<String>> = workload
        .items
        .iter()
        .zip(&alloc_ids)
        .map(|(item, alloc)| {
            view.try_place(&asks[item.job as usize], alloc)
                .map(|p| p.node_id)
        })
        .collect();
    let took = start.elapsed();

    let node_of = placements
        .into_iter()
        .map(|id| id.map(|id| index_of[&id]))
        .collect();
    let placed = Placed { node_of, took };
    check_view_agrees(&view, workload, &placed)?;
    Ok(placed)
}

/// The view's own per-node usage must match what the placements add up to.
fn check_view_agrees(view: &ClusterView, workload: &Workload, placed: &Placed) -> Result<()> {
    let sums = super::metrics::per_node_sums(workload, &placed.node_of);
    for (i, sum) in sums.iter().enumerate() {
        let Some((reserved, _)) = view.node_usage(&node_id(i)) else {
            bail!("node {} missing from the view", node_id(i));
        };
        if reserved.cpu_millis != sum.cpu || reserved.memory_mb != sum.mem {
            bail!(
                "node {}: the view holds {reserved:?}, the placements add up to {sum:?}",
                node_id(i)
            );
        }
    }
    Ok(())
}

// ---- References ------------------------------------------------------------------------

/// What a reference policy knows of the cluster: identical nodes and what each holds.
pub struct Nodes {
    pub capacity: Demand,
    pub used: Vec<Demand>,
}

impl Nodes {
    pub fn new(count: usize, capacity: Demand) -> Nodes {
        Nodes {
            capacity,
            used: vec![Demand::default(); count],
        }
    }

    pub fn fits(&self, node: usize, demand: Demand) -> bool {
        demand.fits_in(self.capacity.minus(self.used[node]))
    }

    fn take(&mut self, node: usize, demand: Demand) {
        self.used[node] = self.used[node].plus(demand);
    }
}

/// Runs a reference policy (`choose`: the node for an item, or none) over every item.
fn place_with_reference(
    workload: &Workload,
    mut choose: impl FnMut(&Nodes, Demand) -> Option<usize>,
) -> Placed {
    let mut nodes = Nodes::new(workload.nodes, workload.node_capacity);
    let start = Instant::now();
    let node_of = workload
        .items
        .iter()
        .map(|item| {
            let node = choose(&nodes, item.demand)?;
            nodes.take(node, item.demand);
            Some(node as u32)
        })
        .collect();
    Placed {
        node_of,
        took: start.elapsed(),
    }
}

pub fn first_fit(nodes: &Nodes, demand: Demand) -> Option<usize> {
    (0..nodes.used.len()).find(|&n| nodes.fits(n, demand))
}

/// Nomad's limit on feasible nodes to score for a service job: `max(2, ceil(log2 n))`.
pub fn nomad_sample_size(nodes: usize) -> usize {
    let log2 = (nodes.max(1) as f64).log2().ceil() as usize;
    log2.max(2)
}

/// 10 % of the nodes, at least [`K8S_MIN_SAMPLE`].
pub fn k8s_sample_size(nodes: usize) -> usize {
    nodes.div_ceil(10).max(K8S_MIN_SAMPLE)
}

/// Nomad's bin-packing score of a node once `used` (after placing) is taken of
/// `capacity`: `20 − (10^free_cpu + 10^free_mem)`, free as fractions: 18 when both
/// dimensions are full, 0 when both are empty.
pub fn nomad_score(capacity: Demand, used: Demand) -> f64 {
    let free_cpu = 1.0 - used.cpu as f64 / capacity.cpu as f64;
    let free_mem = 1.0 - used.mem as f64 / capacity.mem as f64;
    20.0 - (10f64.powf(free_cpu) + 10f64.powf(free_mem))
}

/// Kubernetes' MostAllocated score (equal weights), 0..=100: the mean allocated
/// fraction of cpu and memory once `used` (after placing) is taken.
pub fn most_allocated_score(capacity: Demand, used: Demand) -> f64 {
    let cpu = used.cpu as f64 / capacity.cpu as f64;
    let mem = used.mem as f64 / capacity.mem as f64;
    (cpu + mem) / 2.0 * 100.0
}

/// Samples up to `limit` feasible nodes and returns the one `score` (of the node's usage
/// after placing) rates highest; ties go to the earlier in the sample.
fn best_of_sample(
    nodes: &Nodes,
    demand: Demand,
    sampler: &mut Sampler,
    limit: usize,
    score: fn(Demand, Demand) -> f64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    sampler.feasible(nodes, demand, limit, |node| {
        let s = score(nodes.capacity, nodes.used[node].plus(demand));
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((node, s));
        }
    });
    best.map(|(node, _)| node)
}

/// Draws distinct nodes uniformly at random: a partial Fisher–Yates shuffle of a node
/// permutation kept between draws, so a draw costs what it visits, not O(n).
pub struct Sampler {
    order: Vec<u32>,
    rng: Rng,
}

impl Sampler {
    pub fn new(nodes: usize, seed: u64) -> Sampler {
        Sampler {
            order: (0..nodes as u32).collect(),
            rng: Rng::new(seed),
        }
    }

    /// Visits random nodes without repeats until `limit` of them can take `demand` (each
    /// handed to `found`, in draw order) or every node has been seen.
    fn feasible(
        &mut self,
        nodes: &Nodes,
        demand: Demand,
        limit: usize,
        mut found: impl FnMut(usize),
    ) {
        let n = self.order.len();
        let mut hits = 0;
        for i in 0..n {
            let j = i + self.rng.below((n - i) as u64) as usize;
            self.order.swap(i, j);
            let node = self.order[i] as usize;
            if nodes.fits(node, demand) {
                found(node);
                hits += 1;
                if hits == limit {
                    return;
                }
            }
        }
    }
}
