//! The figures of one placement: how many nodes it used next to the least possible, and
//! how much of the room it left is still usable.
//!
//! Why it exists: every policy is judged by the same arithmetic on the same kind of
//! result (the node each item went to), so the comparison cannot depend on what a policy
//! reports about itself. It also checks that no policy overfilled a node.

use std::collections::HashSet;
use std::time::Duration;

use super::policies::Placed;
use super::workload::{Demand, Dim, Workload};

/// What one policy achieved.
#[derive(Clone, Debug)]
pub struct Figures {
    pub placed: usize,
    pub not_placed: usize,
    pub nodes_used: usize,
    /// The least nodes that could hold the items this policy placed.
    pub lower_bound: u64,
    /// Mean free fraction of the dominant dimension over the nodes used.
    pub mean_free_dominant: f64,
    /// Of all free room on the dominant dimension (every node), the share on nodes where
    /// the workload's smallest shape no longer fits.
    pub stranded_dominant: f64,
    /// The same for the other dimension.
    pub stranded_other: f64,
    /// Items placed on a node that already held a replica of the same job.
    pub shared_replicas: usize,
    /// Nodes whose placed items add up to more than their capacity (must be 0).
    pub overfilled_nodes: usize,
    pub took: Duration,
}

impl Figures {
    pub fn used_over_bound(&self) -> f64 {
        if self.lower_bound == 0 {
            0.0
        } else {
            self.nodes_used as f64 / self.lower_bound as f64
        }
    }

    pub fn micros_per_item(&self) -> f64 {
        let items = self.placed + self.not_placed;
        if items == 0 {
            0.0
        } else {
            self.took.as_secs_f64() * 1e6 / items as f64
        }
    }
}

/// The least identical nodes that can hold `demands`: no node holds more than its
/// capacity on any dimension, so at least `ceil(total / capacity)` on each.
pub fn lower_bound(demands: impl IntoIterator<Item = Demand>, capacity: Demand) -> u64 {
    let total = demands
        .into_iter()
        .fold(Demand::default(), |sum, d| sum.plus(d));
    total
        .cpu
        .div_ceil(capacity.cpu)
        .max(total.mem.div_ceil(capacity.mem))
}

/// What each node holds once the items go where `node_of` says.
pub fn per_node_sums(workload: &Workload, node_of: &[Option<u32>]) -> Vec<Demand> {
    let mut sums = vec![Demand::default(); workload.nodes];
    for (item, node) in workload.items.iter().zip(node_of) {
        if let Some(n) = node {
            sums[*n as usize] = sums[*n as usize].plus(item.demand);
        }
    }
    sums
}

pub fn figures(workload: &Workload, placed: &Placed) -> Figures {
    let capacity = workload.node_capacity;
    let sums = per_node_sums(workload, &placed.node_of);
    let used: Vec<Demand> = sums
        .iter()
        .copied()
        .filter(|s| *s != Demand::default())
        .collect();
    let placed_demands = workload
        .items
        .iter()
        .zip(&placed.node_of)
        .filter(|(_, n)| n.is_some())
        .map(|(i, _)| i.demand);
    let dominant = workload.dominant_dim();
    let other = match dominant {
        Dim::Cpu => Dim::Mem,
        Dim::Mem => Dim::Cpu,
    };
    let placed_count = placed.node_of.iter().flatten().count();
    Figures {
        placed: placed_count,
        not_placed: placed.node_of.len() - placed_count,
        nodes_used: used.len(),
        lower_bound: lower_bound(placed_demands, capacity),
        mean_free_dominant: mean_free(&used, capacity, dominant),
        stranded_dominant: stranded_share(&sums, capacity, workload.smallest_demand(), dominant),
        stranded_other: stranded_share(&sums, capacity, workload.smallest_demand(), other),
        shared_replicas: shared_replicas(workload, &placed.node_of),
        overfilled_nodes: sums.iter().filter(|s| !s.fits_in(capacity)).count(),
        took: placed.took,
    }
}

/// The mean free fraction of `dim` over `used` nodes (0 when none is used).
fn mean_free(used: &[Demand], capacity: Demand, dim: Dim) -> f64 {
    if used.is_empty() {
        return 0.0;
    }
    let free: f64 = used
        .iter()
        .map(|u| capacity.minus(*u).get(dim) as f64 / capacity.get(dim) as f64)
        .sum();
    free / used.len() as f64
}

/// Of the free `dim` on every node, the share on nodes that can no longer take even
/// `smallest` (0 when nothing is free).
pub fn stranded_share(sums: &[Demand], capacity: Demand, smallest: Demand, dim: Dim) -> f64 {
    let mut free_total = 0u64;
    let mut stranded = 0u64;
    for used in sums {
        let room = capacity.minus(*used);
        free_total += room.get(dim);
        if !smallest.fits_in(room) {
            stranded += room.get(dim);
        }
    }
    if free_total == 0 {
        0.0
    } else {
        stranded as f64 / free_total as f64
    }
}

fn shared_replicas(workload: &Workload, node_of: &[Option<u32>]) -> usize {
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    workload
        .items
        .iter()
        .zip(node_of)
        .filter_map(|(item, node)| node.map(|n| (item.job, n)))
        .filter(|key| !seen.insert(*key))
        .count()
}
