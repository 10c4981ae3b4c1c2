//! Node classes: nodes with the same capacity, labels and drivers, indexed by free room.
//!
//! Two reasons to group nodes this way:
//!
//! - Within a class every node has the same capacity, so "fills this node best" is the
//!   same order as "has the least free", which a [`CapacityTree`] keeps sorted. Across
//!   classes the order depends on the ask, so each class is searched and the few winners
//!   are compared exactly.
//! - Drivers and label/driver constraints are the same for every node of a class: they are
//!   decided once per class and ask, and a class that fails them costs O(1).
//!
//! Bin-pack keeps two trees per class: by (free cpu, free memory, id) and by (free memory,
//! free cpu, id). The node maximising the cpu fill after placing is the first one in the
//! first tree from `cpu >= need` that also has the memory (and passes the per-node
//! checks); likewise for memory in the second. The best dominant fill over the class is the
//! larger of those two nodes' fills, since `max_n max(cpu_n, mem_n) = max(max_n cpu_n,
//! max_n mem_n)`; on a tie the ranking prefers the fuller other resource, then the smaller
//! id. Spread keeps one tree by (dominant fill now, id) and takes the first node that fits.
//!
//! Only schedulable nodes are in the trees; `members` counts every node of the class.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::capacity_tree::{CapacityTree, Free};
use super::constraints::SharedAttributes;
use super::node_info::NodeInfo;
use super::node_state::NodeState;
use super::ranking::{Algorithm, Fill, Frac};

/// What makes two nodes interchangeable for ranking and for class-scoped filters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    cpu: u64,
    mem: u64,
    labels: BTreeMap<String, String>,
    /// Sorted, without duplicates.
    drivers: Vec<String>,
}

impl ClassKey {
    pub fn of(info: &NodeInfo) -> ClassKey {
        let mut drivers = info.drivers.clone();
        drivers.sort();
        drivers.dedup();
        ClassKey {
            cpu: info.capacity.cpu_millis,
            mem: info.capacity.memory_mb,
            labels: info.labels.clone(),
            drivers,
        }
    }

    pub fn attributes(&self) -> SharedAttributes<'_> {
        SharedAttributes {
            labels: &self.labels,
            drivers: &self.drivers,
        }
    }
}

type FreeKey = (u64, u64, Arc<str>);
type LoadKey = (Frac, Arc<str>);

#[derive(Clone, Debug)]
enum ClassIndex {
    BinPack {
        by_cpu: CapacityTree<FreeKey>,
        by_mem: CapacityTree<FreeKey>,
    },
    Spread {
        by_load: CapacityTree<LoadKey>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct NodeClass {
    pub key: ClassKey,
    /// Nodes of this class, schedulable or not.
    pub members: usize,
    index: ClassIndex,
    /// The smallest id, for searching from "free >= x, any id".
    floor: Arc<str>,
}

impl NodeClass {
    pub fn new(key: ClassKey, algorithm: Algorithm) -> NodeClass {
        let index = match algorithm {
            Algorithm::BinPack => ClassIndex::BinPack {
                by_cpu: CapacityTree::new(),
                by_mem: CapacityTree::new(),
            },
            Algorithm::Spread => ClassIndex::Spread {
                by_load: CapacityTree::new(),
            },
        };
        NodeClass {
            key,
            members: 0,
            index,
            floor: Arc::from(""),
        }
    }

    /// Adds a schedulable node to the index, at its current free room.
    pub fn index(&mut self, node: &NodeState) {
        let free = node.free();
        let id = node.key.clone();
        match &mut self.index {
            ClassIndex::BinPack { by_cpu, by_mem } => {
                by_cpu.insert(
                    (free.cpu, free.mem, id.clone()),
                    node.slot,
                    node.priority,
                    free,
                );
                by_mem.insert((free.mem, free.cpu, id), node.slot, node.priority, free);
            }
            ClassIndex::Spread { by_load } => {
                by_load.insert((load(node, free), id), node.slot, node.priority, free);
            }
        }
    }

    /// Takes a node out of the index; its free room must not have changed since `index`.
    pub fn unindex(&mut self, node: &NodeState) {
        let free = node.free();
        let id = node.key.clone();
        let found = match &mut self.index {
            ClassIndex::BinPack { by_cpu, by_mem } => {
                let a = by_cpu.remove(&(free.cpu, free.mem, id.clone()));
                let b = by_mem.remove(&(free.mem, free.cpu, id));
                a && b
            }
            ClassIndex::Spread { by_load } => by_load.remove(&(load(node, free), id)),
        };
        debug_assert!(found, "node {} was not indexed as it is", node.key);
    }

    /// Indexed (schedulable) nodes.
    pub fn indexed(&self) -> usize {
        match &self.index {
            ClassIndex::BinPack { by_cpu, .. } => by_cpu.len(),
            ClassIndex::Spread { by_load } => by_load.len(),
        }
    }

    /// Could any indexed node have `need` free? (O(1); false means certainly not.)
    pub fn may_fit(&self, need: Free) -> bool {
        let max = match &self.index {
            ClassIndex::BinPack { by_cpu, .. } => by_cpu.max_free(),
            ClassIndex::Spread { by_load } => by_load.max_free(),
        };
        self.indexed() > 0 && max.covers(need)
    }

    /// The slots of the nodes of this class one of which is the best for an ask needing
    /// `need`, among those `accept` takes (see the module doc): up to two for bin-pack, one
    /// for spread.
    pub fn candidates(&self, need: Free, mut accept: impl FnMut(u32) -> bool, out: &mut Vec<u32>) {
        match &self.index {
            ClassIndex::BinPack { by_cpu, by_mem } => {
                let from = (need.cpu, 0, self.floor.clone());
                out.extend(first_accepted(
                    by_cpu,
                    Bound::Included(&from),
                    need,
                    &mut accept,
                ));
                let from = (need.mem, 0, self.floor.clone());
                if let Some(slot) =
                    first_accepted(by_mem, Bound::Included(&from), need, &mut accept)
                {
                    if !out.contains(&slot) {
                        out.push(slot);
                    }
                }
            }
            ClassIndex::Spread { by_load } => {
                out.extend(first_accepted(by_load, Bound::Unbounded, need, &mut accept));
            }
        }
    }

    /// The index's view of every indexed node: (id, free) in tree order (tests).
    #[cfg(test)]
    pub fn indexed_nodes(&self) -> Vec<(Arc<str>, Free)> {
        match &self.index {
            ClassIndex::BinPack { by_cpu, by_mem } => {
                by_cpu.check();
                by_mem.check();
                let mut a: Vec<_> = by_cpu
                    .entries()
                    .into_iter()
                    .map(|(k, f)| (k.2, f))
                    .collect();
                let mut b: Vec<_> = by_mem
                    .entries()
                    .into_iter()
                    .map(|(k, f)| (k.2, f))
                    .collect();
                a.sort();
                b.sort();
                assert_eq!(a, b, "the two bin-pack trees disagree");
                a
            }
            ClassIndex::Spread { by_load } => {
                by_load.check();
                by_load
                    .entries()
                    .into_iter()
                    .map(|(k, f)| (k.1, f))
                    .collect()
            }
        }
    }
}

fn load(node: &NodeState, free: Free) -> Frac {
    Fill::now(node.info.capacity, free).dominant().0
}

/// The first entry from `from` with `need` free that `accept` takes, as its node's slot.
/// Each rejected candidate costs one more O(log n) search.
fn first_accepted<K: Ord + Clone>(
    tree: &CapacityTree<K>,
    from: Bound<&K>,
    need: Free,
    accept: &mut impl FnMut(u32) -> bool,
) -> Option<u32> {
    let (mut key, mut slot) = tree.first_fit(from, need)?;
    loop {
        if accept(slot) {
            return Some(slot);
        }
        (key, slot) = tree.first_fit(Bound::Excluded(key), need)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{PortRange, Resources};

    fn node(id: &str, cpu_used: u64, mem_used: u64) -> NodeState {
        let mut n = NodeState::new(
            NodeInfo {
                id: id.into(),
                name: id.into(),
                address: String::new(),
                capacity: Resources {
                    cpu_millis: 1000,
                    memory_mb: 1000,
                },
                port_range: PortRange::default(),
                labels: Default::default(),
                drivers: vec!["docker".into()],
                schedulable: true,
            },
            0,
        );
        n.add(crate::scheduler::placement::Reservation {
            alloc_id: format!("{id}-a"),
            job_id: "j".into(),
            priority: 50,
            resources: Resources {
                cpu_millis: cpu_used,
                memory_mb: mem_used,
            },
            host_ports: vec![],
        });
        n
    }

    /// Indexes `nodes` with their position as the slot.
    fn class(algorithm: Algorithm, nodes: &mut [NodeState]) -> NodeClass {
        let mut c = NodeClass::new(ClassKey::of(&nodes[0].info), algorithm);
        for (slot, n) in nodes.iter_mut().enumerate() {
            n.slot = slot as u32;
            c.index(n);
        }
        c
    }

    fn best(
        c: &NodeClass,
        nodes: &[NodeState],
        cpu: u64,
        mem: u64,
        reject: &[&str],
    ) -> Vec<String> {
        let mut out = vec![];
        let id = |slot: u32| nodes[slot as usize].info.id.as_str();
        c.candidates(
            Free { cpu, mem },
            |slot| !reject.contains(&id(slot)),
            &mut out,
        );
        out.into_iter().map(|slot| id(slot).to_string()).collect()
    }

    #[test]
    fn bin_pack_offers_the_tightest_node_in_each_dimension() {
        let mut nodes = [
            node("a", 900, 100),
            node("b", 100, 900),
            node("c", 500, 500),
        ];
        let c = class(Algorithm::BinPack, &mut nodes);
        assert_eq!(best(&c, &nodes, 50, 50, &[]), vec!["a", "b"]);
        // Only c has room for both.
        assert_eq!(best(&c, &nodes, 200, 200, &[]), vec!["c"]);
        assert_eq!(best(&c, &nodes, 50, 50, &["a"]), vec!["c", "b"]);
        assert!(best(&c, &nodes, 600, 600, &[]).is_empty());
        assert!(c.may_fit(Free { cpu: 900, mem: 900 }), "a hint: two nodes");
        assert!(!c.may_fit(Free { cpu: 901, mem: 0 }));
    }

    #[test]
    fn spread_offers_the_least_loaded_node_that_fits() {
        let mut nodes = [node("a", 100, 100), node("b", 200, 50), node("c", 0, 700)];
        let c = class(Algorithm::Spread, &mut nodes);
        assert_eq!(best(&c, &nodes, 1, 1, &[]), vec!["a"]);
        assert_eq!(best(&c, &nodes, 1, 1, &["a"]), vec!["b"]);
        assert_eq!(best(&c, &nodes, 1000, 0, &[]), vec!["c"]);
    }

    #[test]
    fn unindex_removes_from_every_tree() {
        let mut nodes = [node("a", 900, 100), node("b", 100, 900)];
        for algorithm in [Algorithm::BinPack, Algorithm::Spread] {
            let mut c = class(algorithm, &mut nodes);
            c.unindex(&nodes[0]);
            assert_eq!(c.indexed(), 1);
            assert_eq!(c.indexed_nodes()[0].0.as_ref(), "b");
        }
    }

    #[test]
    fn classes_ignore_driver_order() {
        let mut a = node("a", 0, 0).info;
        let mut b = a.clone();
        a.drivers = vec!["process".into(), "docker".into()];
        b.drivers = vec!["docker".into(), "process".into(), "docker".into()];
        assert_eq!(ClassKey::of(&a), ClassKey::of(&b));
    }
}
