//! Which of the feasible nodes is best, and the sentence that says why.
//!
//! Bin-packing: the node the allocation fills best, measured on the dominant normalised
//! resource after placing — the highest `max(cpu_used / cpu_cap, mem_used / mem_cap)`.
//! Ties go to the node whose other resource ends up fuller, then to the smaller node id.
//!
//! Spread: the least-loaded node, measured as `max(cpu_used / cpu_cap, mem_used / mem_cap)`
//! before placing; ties go to the smaller node id.
//!
//! Fractions are compared exactly (cross-multiplied in 128 bits): no floating point, so
//! the same state always ranks the same way on every machine.

use std::cmp::Ordering;

use gantry_api::Resources;

use super::capacity_tree::Free;

/// How placement ranks nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Fill the fullest node that fits (the default): keeps whole nodes free for big asks.
    #[default]
    BinPack,
    /// Least-loaded node first: spreads load at the cost of fragmentation.
    Spread,
}

/// An exact non-negative fraction; `x/0` counts as infinitely full (a used dimension of
/// zero capacity), `0/0` as empty.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frac {
    num: u64,
    den: u64,
}

impl Frac {
    pub fn new(num: u64, den: u64) -> Frac {
        match (num, den) {
            (0, 0) => Frac { num: 0, den: 1 },
            (_, 0) => Frac { num: 1, den: 0 },
            _ => Frac { num, den },
        }
    }

    pub fn percent(&self) -> f64 {
        if self.den == 0 {
            f64::INFINITY
        } else {
            self.num as f64 * 100.0 / self.den as f64
        }
    }
}

impl Ord for Frac {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Frac {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Frac {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Frac {}

/// How full each dimension of a node is (or would be).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fill {
    pub cpu: Frac,
    pub mem: Frac,
}

impl Fill {
    /// After taking `need` on a node with `capacity` of which `free` is free. Usage is
    /// `capacity - free`, so a node over its capacity counts as exactly full.
    pub fn after(capacity: Resources, free: Free, need: Free) -> Fill {
        let used = |cap: u64, free: u64, need: u64| (cap - free.min(cap)).saturating_add(need);
        Fill {
            cpu: Frac::new(
                used(capacity.cpu_millis, free.cpu, need.cpu),
                capacity.cpu_millis,
            ),
            mem: Frac::new(
                used(capacity.memory_mb, free.mem, need.mem),
                capacity.memory_mb,
            ),
        }
    }

    pub fn now(capacity: Resources, free: Free) -> Fill {
        Fill::after(capacity, free, Free::default())
    }

    /// The fuller dimension and its name (cpu on a tie).
    pub fn dominant(&self) -> (Frac, &'static str) {
        if self.cpu >= self.mem {
            (self.cpu, "cpu")
        } else {
            (self.mem, "memory")
        }
    }

    fn other(&self) -> Frac {
        self.cpu.min(self.mem)
    }

    /// Bin-packing rank: greater is better.
    pub fn pack_rank(&self) -> (Frac, Frac) {
        (self.dominant().0, self.other())
    }
}

/// Is candidate `a` (its fill, its id) better than `b` under `algorithm`? Bin-pack ranks
/// the fill after placing, spread the fill before.
pub(crate) fn better(algorithm: Algorithm, a: (&Fill, &str), b: (&Fill, &str)) -> bool {
    match algorithm {
        Algorithm::BinPack => match a.0.pack_rank().cmp(&b.0.pack_rank()) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => a.1 < b.1,
        },
        Algorithm::Spread => match a.0.dominant().0.cmp(&b.0.dominant().0) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => a.1 < b.1,
        },
    }
}

/// `bin-pack: memory to 75% on node-3`, `spread: node-3 least loaded (cpu at 20%)`.
pub(crate) fn reason(algorithm: Algorithm, node_name: &str, before: &Fill, after: &Fill) -> String {
    match algorithm {
        Algorithm::BinPack => {
            let (fill, dimension) = after.dominant();
            format!(
                "bin-pack: {dimension} to {}% on {node_name}",
                whole_percent(fill)
            )
        }
        Algorithm::Spread => {
            let (fill, dimension) = before.dominant();
            format!(
                "spread: {node_name} least loaded ({dimension} at {}%)",
                whole_percent(fill)
            )
        }
    }
}

/// Rounded down: a node shows 100% only when it is full.
fn whole_percent(fill: Frac) -> f64 {
    fill.percent().floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        }
    }

    fn free(cpu: u64, mem: u64) -> Free {
        Free { cpu, mem }
    }

    #[test]
    fn fractions_compare_exactly() {
        assert_eq!(Frac::new(1, 3), Frac::new(2, 6));
        assert!(Frac::new(1, 3) < Frac::new(334, 1000));
        assert!(Frac::new(u64::MAX, u64::MAX - 1) > Frac::new(1, 1));
        assert!(Frac::new(1, 0) > Frac::new(u64::MAX, 1));
        assert_eq!(Frac::new(0, 0), Frac::new(0, 5));
    }

    #[test]
    fn fill_after_placing_and_the_dominant_dimension() {
        let fill = Fill::after(res(4000, 8192), free(2000, 2048), free(1000, 2048));
        assert_eq!(fill.cpu, Frac::new(3, 4));
        assert_eq!(fill.mem, Frac::new(1, 1));
        assert_eq!(fill.dominant().1, "memory");
        // A node over its capacity counts as full, not more.
        let over = Fill::now(res(1000, 1000), free(0, 500));
        assert_eq!(over.cpu, Frac::new(1, 1));
    }

    #[test]
    fn bin_pack_prefers_the_fuller_node_then_the_smaller_id() {
        let cap = res(1000, 1000);
        let full = Fill::after(cap, free(300, 900), free(200, 100));
        let empty = Fill::after(cap, free(1000, 1000), free(200, 100));
        assert!(better(Algorithm::BinPack, (&full, "b"), (&empty, "a")));
        assert!(!better(Algorithm::BinPack, (&empty, "a"), (&full, "b")));
        assert!(better(Algorithm::BinPack, (&full, "a"), (&full, "b")));
        assert!(better(Algorithm::Spread, (&empty, "b"), (&full, "a")));
    }

    #[test]
    fn reasons_read_well() {
        let cap = res(4000, 8192);
        let before = Fill::now(cap, free(4000, 8192));
        let after = Fill::after(cap, free(4000, 8192), free(1000, 6144));
        assert_eq!(
            reason(Algorithm::BinPack, "node-3", &before, &after),
            "bin-pack: memory to 75% on node-3"
        );
        assert_eq!(
            reason(Algorithm::Spread, "node-3", &before, &after),
            "spread: node-3 least loaded (cpu at 0%)"
        );
    }
}
