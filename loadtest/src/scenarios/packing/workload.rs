//! The workload `packing` places: a seeded mix of job shapes, sized to fill a cluster.
//!
//! Why it exists: every policy must see exactly the same items in the same order, and a
//! run must repeat with the same seed. So the workload is generated once, up front, from
//! a tiny deterministic generator, and handed to each policy as a plain list.
//!
//! The mix follows the published summaries of production traces (Google's Borg traces,
//! Alibaba's cluster traces): most tasks are small, fewer are medium, a few are large,
//! and the cpu : memory ratio varies, so some shapes are cpu-heavy and some memory-heavy
//! next to the node's own ratio (4,000 millicpu : 16,384 MB by default).

use anyhow::{ensure, Result};

pub use crate::rng::Rng;

/// Cpu (millicpu) and memory (MB): what an item needs, or what a node has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub cpu: u64,
    pub mem: u64,
}

impl Demand {
    pub fn fits_in(self, room: Demand) -> bool {
        self.cpu <= room.cpu && self.mem <= room.mem
    }

    pub fn plus(self, other: Demand) -> Demand {
        Demand {
            cpu: self.cpu + other.cpu,
            mem: self.mem + other.mem,
        }
    }

    /// What is left of `self` (a capacity) once `used` is taken; 0 when over.
    pub fn minus(self, used: Demand) -> Demand {
        Demand {
            cpu: self.cpu.saturating_sub(used.cpu),
            mem: self.mem.saturating_sub(used.mem),
        }
    }

    pub fn get(self, dim: Dim) -> u64 {
        match dim {
            Dim::Cpu => self.cpu,
            Dim::Mem => self.mem,
        }
    }

    /// The larger of the two fractions of `capacity` this takes.
    pub fn dominant_share(self, capacity: Demand) -> f64 {
        let cpu = self.cpu as f64 / capacity.cpu as f64;
        let mem = self.mem as f64 / capacity.mem as f64;
        cpu.max(mem)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Cpu,
    Mem,
}

impl Dim {
    pub fn name(self) -> &'static str {
        match self {
            Dim::Cpu => "cpu",
            Dim::Mem => "memory",
        }
    }
}

/// One kind of job: what each replica needs, how common it is, how many replicas.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub demand: Demand,
    /// Out of the sum of all weights (100).
    pub weight: u64,
    /// A job of this shape has 1..=max_replicas replicas, uniformly.
    pub max_replicas: u64,
}

const fn shape(name: &'static str, cpu: u64, mem: u64, weight: u64, max_replicas: u64) -> Shape {
    Shape {
        name,
        demand: Demand { cpu, mem },
        weight,
        max_replicas,
    }
}

/// Many small jobs with many replicas, fewer medium ones, a few large ones with few
/// replicas; `-cpu` and `-mem` shapes lean away from the node's 1 : 4 ratio.
pub const SHAPES: [Shape; 10] = [
    shape("tiny", 100, 256, 24, 10),
    shape("small", 250, 1024, 22, 8),
    shape("small-cpu", 500, 512, 8, 8),
    shape("small-mem", 250, 2048, 8, 6),
    shape("medium", 500, 2048, 16, 5),
    shape("medium-cpu", 1500, 2048, 7, 4),
    shape("medium-mem", 500, 6144, 7, 4),
    shape("large", 2000, 8192, 4, 3),
    shape("large-cpu", 3000, 4096, 2, 2),
    shape("large-mem", 1000, 12288, 2, 2),
];

/// One replica of one job: the unit every policy places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub job: u32,
    pub replica: u32,
    pub shape: usize,
    pub demand: Demand,
}

/// The cluster and the items, in submission order (a job's replicas one after another).
#[derive(Clone, Debug)]
pub struct Workload {
    pub nodes: usize,
    pub node_capacity: Demand,
    pub items: Vec<Item>,
    pub jobs: u32,
}

impl Workload {
    /// Jobs drawn from [`SHAPES`] until the total demand reaches `fill` of the cluster on
    /// its fuller dimension; the last job may lose its last replicas to stop there.
    pub fn generate(nodes: usize, node_capacity: Demand, fill: f64, seed: u64) -> Result<Workload> {
        ensure!(nodes > 0, "--nodes must be at least 1");
        ensure!(
            fill > 0.0 && fill <= 2.0,
            "--fill must be in (0, 2], got {fill}"
        );
        for s in &SHAPES {
            ensure!(
                s.demand.fits_in(node_capacity),
                "shape {} ({} millicpu, {} MB) does not fit an empty node of {} millicpu, {} MB",
                s.name,
                s.demand.cpu,
                s.demand.mem,
                node_capacity.cpu,
                node_capacity.mem
            );
        }
        let cluster = Demand {
            cpu: node_capacity.cpu * nodes as u64,
            mem: node_capacity.mem * nodes as u64,
        };
        let mut rng = Rng::new(seed);
        let mut items = Vec::new();
        let mut total = Demand::default();
        let mut job = 0u32;
        'jobs: loop {
            let shape = pick_shape(&mut rng);
            let replicas = 1 + rng.below(SHAPES[shape].max_replicas);
            for replica in 0..replicas {
                if total.dominant_share(cluster) >= fill {
                    break 'jobs;
                }
                let demand = SHAPES[shape].demand;
                total = total.plus(demand);
                items.push(Item {
                    job,
                    replica: replica as u32,
                    shape,
                    demand,
                });
            }
            job += 1;
        }
        let jobs = items.last().map_or(0, |i| i.job + 1);
        Ok(Workload {
            nodes,
            node_capacity,
            items,
            jobs,
        })
    }

    /// Everything the workload asks for.
    pub fn total_demand(&self) -> Demand {
        self.items
            .iter()
            .fold(Demand::default(), |sum, i| sum.plus(i.demand))
    }

    /// The dimension the workload fills more of: the one `--fill` is measured on.
    pub fn dominant_dim(&self) -> Dim {
        let total = self.total_demand();
        let cpu = total.cpu as f64 / self.node_capacity.cpu as f64;
        let mem = total.mem as f64 / self.node_capacity.mem as f64;
        if cpu >= mem {
            Dim::Cpu
        } else {
            Dim::Mem
        }
    }

    /// The shape of the workload that takes the least of a node (on its fuller
    /// dimension): where even it does not fit, free room is stranded.
    pub fn smallest_demand(&self) -> Demand {
        let mut used: Vec<usize> = self.items.iter().map(|i| i.shape).collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter()
            .map(|s| SHAPES[s].demand)
            .min_by(|a, b| {
                a.dominant_share(self.node_capacity)
                    .total_cmp(&b.dominant_share(self.node_capacity))
            })
            .unwrap_or_default()
    }

    /// How many items of each shape, in [`SHAPES`] order.
    pub fn items_per_shape(&self) -> Vec<usize> {
        let mut counts = vec![0; SHAPES.len()];
        for i in &self.items {
            counts[i.shape] += 1;
        }
        counts
    }
}

/// A shape index, drawn by weight.
fn pick_shape(rng: &mut Rng) -> usize {
    let total: u64 = SHAPES.iter().map(|s| s.weight).sum();
    let mut x = rng.below(total);
    for (i, s) in SHAPES.iter().enumerate() {
        if x < s.weight {
            return i;
        }
        x -= s.weight;
    }
    unreachable!("x < total weight")
}
