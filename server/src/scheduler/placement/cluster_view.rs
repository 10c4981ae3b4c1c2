//! The cluster as placement sees it: nodes, what holds them, and the indexes over both.
//!
//! The leader builds one from the replicated state (`upsert_node` for every node, then
//! `restore` for every allocation that holds resources), keeps it current as plans are
//! applied, and asks it where to put things. Every method is synchronous and pure: no
//! I/O, no clock, no randomness, so a test (or a dry run on a clone) sees exactly what
//! the scheduler would do.
//!
//! Cost of `place` / `try_place` with n nodes in k classes (see `node_class`):
//!
//! - O(k): each class is checked once — an O(1) bound on its free room, then drivers and
//!   label/driver constraints;
//! - O(log n) for each class that passes: two searches of its capacity trees (bin-pack) or
//!   one (spread) that never walk past nodes too small for the ask;
//! - O(log n) more for each candidate a per-node check rejects (`node.*` constraints, a
//!   taken static port or a full dynamic range, a node that already holds the job while
//!   replicas should spread), and a second pass when every fitting node holds the job.
//!
//! Typical clusters have a handful of classes and few rejections: O(log n). The benchmark
//! (`benches/placement.rs`) measures a few µs per placement at 10,000 nodes in 24 classes,
//! about 1.4 times the cost at 1,000. Worst cases, honestly:
//!
//! - every node its own class (unique labels or capacities): O(n);
//! - a per-node filter that rejects most nodes (a `node.name` regex matching one node, a
//!   static port taken nearly everywhere, `distinct_nodes` with a replica on most nodes):
//!   O(rejected · log n), up to O(n log n);
//! - `spread` when free cpu and free memory sit on different nodes: its one tree orders by
//!   load, so the per-branch maxima of free cpu and free memory can come from different
//!   nodes and only prune approximately, up to O(n).
//!
//! `node.id = x` and `node.name = x` constraints skip the indexes and check those nodes
//! alone. The failure paths scan every node, O(n): the explanation `place` attaches (use
//! `try_place` to skip it) and preemption.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gantry_api::Resources;

use super::ask::Ask;
use super::explain::{Explanation, Unplaced};
use super::feasibility::{self, check_node, class_admits, node_admits};
use super::node_class::{ClassKey, NodeClass};
use super::node_info::{NodeInfo, Reservation};
use super::node_state::{FitError, NodeState};
use super::node_table::NodeTable;
use super::ranking::{self, Algorithm, Fill};

/// Where an allocation goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub node_id: String,
    /// The ask's static ports, then the dynamic ones picked for it.
    pub host_ports: Vec<u16>,
    /// Why this node (`bin-pack: memory to 75% on node-3`).
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct ClusterView {
    algorithm: Algorithm,
    nodes: NodeTable,
    /// Node name → slots, for `node.name = x` constraints.
    by_name: HashMap<String, BTreeSet<u32>>,
    /// Allocation id → the slot of the node it holds.
    allocations: HashMap<String, u32>,
    /// Slots of classes; `None` once a class has no members left.
    classes: Vec<Option<NodeClass>>,
    class_ids: HashMap<ClassKey, u32>,
    vacant_classes: Vec<u32>,
}

impl Default for ClusterView {
    fn default() -> Self {
        ClusterView::new(Algorithm::default())
    }
}

impl ClusterView {
    pub fn new(algorithm: Algorithm) -> Self {
        ClusterView {
            algorithm,
            nodes: NodeTable::default(),
            by_name: HashMap::new(),
            allocations: HashMap::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            vacant_classes: Vec::new(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Switches the ranking; rebuilds the indexes (O(n log n)).
    pub fn set_algorithm(&mut self, algorithm: Algorithm) {
        if algorithm == self.algorithm {
            return;
        }
        self.algorithm = algorithm;
        for class in self.classes.iter_mut().flatten() {
            let members = class.members;
            *class = NodeClass::new(class.key.clone(), algorithm);
            class.members = members;
        }
        for node in self.nodes.iter() {
            if node.info.schedulable {
                self.classes[node.class as usize]
                    .as_mut()
                    .expect("class of a node")
                    .index(node);
            }
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.nodes.get(id).map(|n| &n.info)
    }

    /// The reservations on a node, by allocation id.
    pub fn reservations(&self, node_id: &str) -> Option<&BTreeMap<String, Reservation>> {
        self.nodes.get(node_id).map(|n| &n.reservations)
    }

    /// The node an allocation holds.
    pub fn node_of(&self, alloc_id: &str) -> Option<&str> {
        self.allocations
            .get(alloc_id)
            .map(|&slot| self.nodes.at(slot).info.id.as_str())
    }

    /// (reserved, capacity) of a node.
    pub fn node_usage(&self, node_id: &str) -> Option<(Resources, Resources)> {
        self.nodes
            .get(node_id)
            .map(|n| (n.reserved, n.info.capacity))
    }

    /// Adds a node, or updates one (status, labels, capacity...) keeping its reservations.
    pub fn upsert_node(&mut self, info: NodeInfo) {
        let old = self.take_node(&info.id);
        let class = self.class_for(&info);
        let mut node = NodeState::new(info, class);
        if let Some(old) = old {
            for r in old.reservations.into_values() {
                node.add(r);
            }
        }
        self.attach(node);
    }

    /// Removes a node and every reservation on it.
    pub fn remove_node(&mut self, id: &str) {
        if let Some(node) = self.take_node(id) {
            for alloc_id in node.reservations.keys() {
                self.allocations.remove(alloc_id);
            }
        }
    }

    /// The plan applier's question: could `resources` and `host_ports` be reserved on this
    /// node now? The node must exist and take new work, the resources fit in what is free,
    /// and the ports be valid, distinct and free.
    pub fn check_fit(
        &self,
        node_id: &str,
        resources: Resources,
        host_ports: &[u16],
    ) -> Result<(), FitError> {
        let node = self
            .nodes
            .get(node_id)
            .ok_or_else(|| FitError::UnknownNode(node_id.to_string()))?;
        if !node.info.schedulable {
            return Err(FitError::NotSchedulable(node_id.to_string()));
        }
        node.check_fit(resources, host_ports)
    }

    /// Records a reservation after checking that it fits (resources and ports; a node that
    /// takes no new work still accepts it, for allocations that already run there).
    pub fn reserve(&mut self, node_id: &str, r: Reservation) -> Result<(), FitError> {
        let node = self
            .nodes
            .get(node_id)
            .ok_or_else(|| FitError::UnknownNode(node_id.to_string()))?;
        if self.allocations.contains_key(&r.alloc_id) {
            return Err(FitError::DuplicateAllocation(r.alloc_id));
        }
        node.check_fit(r.resources, &r.host_ports)?;
        self.add(node.slot, r);
        Ok(())
    }

    /// Records what already exists as it is, even past the node's capacity (the node
    /// re-registered smaller) or on a taken port: the view must match the state. A node
    /// over its capacity reads as full. Fails only for an unknown node or a duplicate id.
    pub fn restore(&mut self, node_id: &str, r: Reservation) -> Result<(), FitError> {
        let slot = self
            .nodes
            .slot(node_id)
            .ok_or_else(|| FitError::UnknownNode(node_id.to_string()))?;
        if self.allocations.contains_key(&r.alloc_id) {
            return Err(FitError::DuplicateAllocation(r.alloc_id));
        }
        self.add(slot, r);
        Ok(())
    }

    /// Frees what an allocation held. Unknown ids are ignored (returns `None`).
    pub fn release(&mut self, node_id: &str, alloc_id: &str) -> Option<Reservation> {
        let slot = self.nodes.slot(node_id)?;
        if self.allocations.get(alloc_id) != Some(&slot) {
            return None;
        }
        self.allocations.remove(alloc_id);
        self.update(slot, |node| node.remove(alloc_id))
    }

    /// Chooses a node for `ask` and reserves it there for `alloc_id`. On failure the
    /// explanation costs a scan of every node; [`try_place`](Self::try_place) skips it.
    pub fn place(&mut self, ask: &Ask, alloc_id: &str) -> Result<Placement, Unplaced> {
        if self.allocations.contains_key(alloc_id) {
            return Err(Unplaced::duplicate(alloc_id, self.nodes.len()));
        }
        self.try_place(ask, alloc_id).ok_or_else(|| Unplaced {
            explanation: self.explain(ask),
        })
    }

    /// [`place`](Self::place) without the explanation: `None` when nothing fits (or
    /// `alloc_id` already holds a reservation). For callers that place many copies of an
    /// ask and need the reasons only once.
    pub fn try_place(&mut self, ask: &Ask, alloc_id: &str) -> Option<Placement> {
        if self.allocations.contains_key(alloc_id) {
            return None;
        }
        let (slot, shares_job) = self
            .choose(ask, ask.distinct_nodes)
            .map(|id| (id, false))
            .or_else(|| {
                ask.distinct_nodes
                    .then(|| self.choose(ask, false).map(|id| (id, true)))
                    .flatten()
            })?;
        let mut placement = self.commit(ask, alloc_id, slot);
        if shares_job {
            placement.reason.push_str(&format!(
                "; already runs job {} (no node without it fits)",
                ask.job_id
            ));
        }
        Some(placement)
    }

    /// Dry run: how every node fares against `ask` (a full scan).
    pub fn explain(&self, ask: &Ask) -> Explanation {
        let mut explanation = Explanation {
            nodes_evaluated: self.nodes.len(),
            ..Explanation::default()
        };
        for node in self.nodes.iter() {
            explanation.count(check_node(ask, node));
        }
        explanation
    }

    /// How one node fares against `ask`: the explanation of an ask pinned to it.
    pub fn explain_node(&self, ask: &Ask, node_id: &str) -> Explanation {
        let mut explanation = Explanation::default();
        if let Some(node) = self.nodes.get(node_id) {
            explanation.nodes_evaluated = 1;
            explanation.count(check_node(ask, node));
        }
        explanation
    }

    /// Reserves `ask` on the node at `slot` (chosen by a search, so it fits) and says why
    /// there.
    pub(crate) fn commit(&mut self, ask: &Ask, alloc_id: &str, slot: u32) -> Placement {
        let node = self.nodes.at(slot);
        let need = feasibility::need(ask);
        let before = Fill::now(node.info.capacity, node.free());
        let after = Fill::after(node.info.capacity, node.free(), need);
        let reason = ranking::reason(self.algorithm, &node.info.name, &before, &after);
        let host_ports = node.ports.pick(&ask.static_ports, ask.dynamic_ports);
        debug_assert_eq!(node.check_fit(ask.resources, &host_ports), Ok(()));
        let node_id = node.info.id.clone();
        self.add(
            slot,
            Reservation {
                alloc_id: alloc_id.to_string(),
                job_id: ask.job_id.clone(),
                priority: ask.priority,
                resources: ask.resources,
                host_ports: host_ports.clone(),
            },
        );
        Placement {
            node_id,
            host_ports,
            reason,
        }
    }

    /// The slot of the best node for `ask` (optionally only among nodes without the job).
    fn choose(&self, ask: &Ask, without_job: bool) -> Option<u32> {
        let need = feasibility::need(ask);
        let mut candidates: Vec<u32> = Vec::new();
        if let Some(pinned) = self.pinned(ask) {
            candidates.extend(pinned.into_iter().filter(|&slot| {
                let node = self.nodes.at(slot);
                check_node(ask, node).is_ok() && node_admits(ask, node, without_job)
            }));
        } else {
            for class in self.classes.iter().flatten() {
                if !class.may_fit(need) || !class_admits(ask, &class.key.attributes()) {
                    continue;
                }
                class.candidates(
                    need,
                    |slot| node_admits(ask, self.nodes.at(slot), without_job),
                    &mut candidates,
                );
            }
        }
        self.best_of(ask, candidates)
    }

    /// The best of some feasible nodes, by the view's algorithm.
    fn best_of(&self, ask: &Ask, candidates: Vec<u32>) -> Option<u32> {
        let need = feasibility::need(ask);
        let mut best: Option<(&NodeState, Fill)> = None;
        for slot in candidates {
            let node = self.nodes.at(slot);
            let fill = match self.algorithm {
                Algorithm::BinPack => Fill::after(node.info.capacity, node.free(), need),
                Algorithm::Spread => Fill::now(node.info.capacity, node.free()),
            };
            let wins = best.as_ref().is_none_or(|(best_node, best_fill)| {
                ranking::better(
                    self.algorithm,
                    (&fill, &node.key),
                    (best_fill, &best_node.key),
                )
            });
            if wins {
                best = Some((node, fill));
            }
        }
        best.map(|(node, _)| node.slot)
    }

    /// The only nodes an ask may go to when it pins `node.id` or `node.name` with `=`.
    fn pinned(&self, ask: &Ask) -> Option<Vec<u32>> {
        for c in &ask.constraints {
            if let Some(id) = c.pinned_id() {
                return Some(self.nodes.slot(id).into_iter().collect());
            }
            if let Some(name) = c.pinned_name() {
                return Some(
                    self.by_name
                        .get(name)
                        .map(|slots| slots.iter().copied().collect())
                        .unwrap_or_default(),
                );
            }
        }
        None
    }

    /// Every node, in id order.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter()
    }

    /// Records `r` on the node at `slot`, keeping the index in step.
    fn add(&mut self, slot: u32, r: Reservation) {
        self.allocations.insert(r.alloc_id.clone(), slot);
        self.update(slot, |node| node.add(r));
    }

    /// Changes a node's reservations: out of the index, change, back in.
    fn update<T>(&mut self, slot: u32, change: impl FnOnce(&mut NodeState) -> T) -> T {
        let node = self.nodes.at_mut(slot);
        let class = self.classes[node.class as usize]
            .as_mut()
            .expect("class of a node");
        if node.info.schedulable {
            class.unindex(node);
        }
        let out = change(node);
        if node.info.schedulable {
            class.index(node);
        }
        out
    }

    fn attach(&mut self, node: NodeState) {
        let slot = self.nodes.insert(node);
        let node = self.nodes.at(slot);
        let class = self.classes[node.class as usize]
            .as_mut()
            .expect("class of a node");
        class.members += 1;
        if node.info.schedulable {
            class.index(node);
        }
        self.by_name
            .entry(node.info.name.clone())
            .or_default()
            .insert(slot);
        for alloc_id in node.reservations.keys() {
            self.allocations.insert(alloc_id.clone(), slot);
        }
    }

    /// Takes a node out of the table, its class and the name map (not the allocations).
    fn take_node(&mut self, id: &str) -> Option<NodeState> {
        let node = self.nodes.remove(id)?;
        let slot = &mut self.classes[node.class as usize];
        let class = slot.as_mut().expect("class of a node");
        if node.info.schedulable {
            class.unindex(&node);
        }
        class.members -= 1;
        if class.members == 0 {
            self.class_ids.remove(&class.key);
            *slot = None;
            self.vacant_classes.push(node.class);
        }
        if let Some(slots) = self.by_name.get_mut(&node.info.name) {
            slots.remove(&node.slot);
            if slots.is_empty() {
                self.by_name.remove(&node.info.name);
            }
        }
        Some(node)
    }

    /// The class slot for a node like `info`, created if new.
    fn class_for(&mut self, info: &NodeInfo) -> u32 {
        let key = ClassKey::of(info);
        if let Some(&id) = self.class_ids.get(&key) {
            return id;
        }
        let class = NodeClass::new(key.clone(), self.algorithm);
        let id = match self.vacant_classes.pop() {
            Some(id) => {
                self.classes[id as usize] = Some(class);
                id
            }
            None => {
                self.classes.push(Some(class));
                (self.classes.len() - 1) as u32
            }
        };
        self.class_ids.insert(key, id);
        id
    }

    /// Checks every derived structure against the reservations (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        use super::capacity_tree::Free;
        use super::node_state::sum;
        use std::sync::Arc;
        let mut indexed: Vec<(Arc<str>, Free)> = Vec::new();
        let mut members = 0;
        for class in self.classes.iter().flatten() {
            assert!(class.members > 0, "empty class kept");
            let slot = self.class_ids[&class.key] as usize;
            assert_eq!(
                self.classes[slot].as_ref().map(|c| &c.key),
                Some(&class.key)
            );
            members += class.members;
            indexed.extend(class.indexed_nodes());
        }
        assert_eq!(members, self.nodes.len());
        assert_eq!(self.class_ids.len(), self.classes.iter().flatten().count());
        indexed.sort();
        let mut expected: Vec<(Arc<str>, Free)> = self
            .nodes
            .iter()
            .filter(|n| n.info.schedulable)
            .map(|n| (n.key.clone(), n.free()))
            .collect();
        expected.sort();
        assert_eq!(indexed, expected, "the index does not match the nodes");
        let mut allocations = 0;
        for node in self.nodes.iter() {
            assert_eq!(self.nodes.slot(&node.info.id), Some(node.slot));
            assert!(self.by_name[&node.info.name].contains(&node.slot));
            assert_eq!(node.reserved, sum(node.reservations.values()));
            let class = self.classes[node.class as usize].as_ref().unwrap();
            assert_eq!(ClassKey::of(&node.info), class.key);
            let mut ports = BTreeSet::new();
            for r in node.reservations.values() {
                assert_eq!(self.allocations[&r.alloc_id], node.slot);
                ports.extend(r.host_ports.iter().copied());
            }
            assert_eq!(&ports, node.ports.used());
            allocations += node.reservations.len();
        }
        assert_eq!(allocations, self.allocations.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::CompiledConstraint;
    use gantry_api::{Constraint, ConstraintOperator, PortRange};

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        }
    }

    fn info(id: &str, cpu: u64, mem: u64) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            name: format!("{id}-name"),
            address: String::new(),
            capacity: res(cpu, mem),
            port_range: PortRange {
                start: 100,
                end: 199,
            },
            labels: Default::default(),
            drivers: vec!["docker".into()],
            schedulable: true,
        }
    }

    fn view(algorithm: Algorithm, nodes: &[(&str, u64, u64)]) -> ClusterView {
        let mut v = ClusterView::new(algorithm);
        for &(id, cpu, mem) in nodes {
            v.upsert_node(info(id, cpu, mem));
        }
        v
    }

    fn hold(v: &mut ClusterView, node: &str, id: &str, job: &str, used: Resources) {
        v.reserve(
            node,
            Reservation {
                alloc_id: id.into(),
                job_id: job.into(),
                priority: 50,
                resources: used,
                host_ports: vec![],
            },
        )
        .unwrap();
    }

    fn constraint(
        attribute: &str,
        operator: ConstraintOperator,
        value: &str,
    ) -> CompiledConstraint {
        CompiledConstraint::new(&Constraint {
            attribute: attribute.into(),
            operator,
            value: value.into(),
        })
        .unwrap()
    }

    #[test]
    fn bin_pack_ranks_on_the_dominant_resource_in_either_dimension() {
        let mut v = view(Algorithm::BinPack, &[("x", 1000, 1000), ("y", 1000, 1000)]);
        // y has the least cpu free, but x ends up fuller: in memory.
        hold(&mut v, "x", "x1", "other", res(500, 900));
        hold(&mut v, "y", "y1", "other", res(600, 100));
        let p = v.place(&Ask::new("web", res(10, 10)), "a").unwrap();
        assert_eq!(p.node_id, "x");
        assert_eq!(p.reason, "bin-pack: memory to 91% on x-name");
        v.check_invariants();
    }

    #[test]
    fn bin_pack_compares_nodes_of_different_sizes_exactly() {
        let mut v = view(
            Algorithm::BinPack,
            &[("small", 1000, 1000), ("big", 10_000, 10_000)],
        );
        hold(&mut v, "small", "s", "other", res(500, 0));
        hold(&mut v, "big", "b", "other", res(9_000, 0));
        // 400 more: small goes to 90%, big to 94%.
        assert_eq!(
            v.place(&Ask::new("w", res(400, 0)), "w0").unwrap().node_id,
            "big"
        );
        // 500 more: small to 100%, big to 99%.
        assert_eq!(
            v.place(&Ask::new("w2", res(500, 0)), "w1").unwrap().node_id,
            "small"
        );
    }

    #[test]
    fn replicas_spread_until_no_other_node_fits() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000), ("b", 1000, 1000)]);
        let ask = Ask::new("web", res(400, 100));
        let nodes: Vec<String> = ["w0", "w1", "w2", "w3"]
            .iter()
            .map(|id| v.place(&ask, id).unwrap().node_id)
            .collect();
        assert_eq!(nodes, vec!["a", "b", "a", "b"]);
        let again = v.place(&ask, "w4").unwrap_err();
        assert_eq!(again.to_string(), "0 of 2 nodes fit: 2 exhausted cpu");
        // Without spreading, bin-packing fills one node first.
        let mut packed = view(Algorithm::BinPack, &[("a", 1000, 1000), ("b", 1000, 1000)]);
        let mut ask = Ask::new("web", res(400, 100));
        ask.distinct_nodes = false;
        let nodes: Vec<String> = ["w0", "w1", "w2"]
            .iter()
            .map(|id| packed.place(&ask, id).unwrap().node_id)
            .collect();
        assert_eq!(nodes, vec!["a", "a", "b"]);
    }

    #[test]
    fn a_shared_node_is_said_so() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000)]);
        let ask = Ask::new("web", res(100, 100));
        v.place(&ask, "w0").unwrap();
        let p = v.place(&ask, "w1").unwrap();
        assert_eq!(
            p.reason,
            "bin-pack: cpu to 20% on a-name; already runs job web (no node without it fits)"
        );
    }

    #[test]
    fn spread_takes_the_least_loaded_node() {
        let mut v = view(
            Algorithm::Spread,
            &[("a", 1000, 1000), ("b", 1000, 1000), ("c", 2000, 2000)],
        );
        hold(&mut v, "a", "a1", "other", res(100, 100));
        hold(&mut v, "c", "c1", "other", res(400, 100));
        let mut ask = Ask::new("web", res(100, 100));
        ask.distinct_nodes = false;
        // b is empty (0%); then a and b tie at 10% (a has the smaller id), c stays at 20%.
        let order: Vec<String> = (0..3)
            .map(|i| v.place(&ask, &format!("w{i}")).unwrap().node_id)
            .collect();
        assert_eq!(order, vec!["b", "a", "b"]);
        v.check_invariants();
    }

    #[test]
    fn pinned_asks_go_to_their_node_only() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000), ("b", 1000, 1000)]);
        hold(&mut v, "a", "a1", "other", res(500, 500));
        let mut ask = Ask::new("web", res(100, 100));
        ask.constraints = vec![constraint("node.id", ConstraintOperator::Equal, "b")];
        assert_eq!(v.place(&ask, "w0").unwrap().node_id, "b");
        ask.constraints = vec![constraint("node.name", ConstraintOperator::Equal, "b-name")];
        assert_eq!(v.place(&ask, "w1").unwrap().node_id, "b");
        ask.constraints = vec![constraint("node.id", ConstraintOperator::Equal, "zz")];
        assert_eq!(
            v.place(&ask, "w2").unwrap_err().to_string(),
            "0 of 2 nodes fit: 2 filtered by constraint node.id = zz"
        );
    }

    #[test]
    fn node_changes_keep_reservations_and_move_classes() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000), ("b", 1000, 1000)]);
        hold(&mut v, "a", "a1", "db", res(300, 300));
        let mut a = info("a", 1000, 1000);
        a.labels.insert("zone".into(), "z".into());
        a.schedulable = false;
        v.upsert_node(a.clone());
        v.check_invariants();
        assert_eq!(v.node_usage("a"), Some((res(300, 300), res(1000, 1000))));
        assert_eq!(v.node_of("a1"), Some("a"));
        let mut ask = Ask::new("web", res(100, 100));
        ask.constraints = vec![constraint("label.zone", ConstraintOperator::Equal, "z")];
        assert_eq!(
            v.place(&ask, "w0").unwrap_err().to_string(),
            "0 of 2 nodes fit: 1 not ready/eligible, 1 filtered by constraint label.zone = z"
        );
        a.schedulable = true;
        v.upsert_node(a);
        assert_eq!(v.place(&ask, "w0").unwrap().node_id, "a");
        v.remove_node("a");
        assert_eq!(v.node_of("a1"), None);
        assert_eq!(v.release("a", "a1"), None);
        v.check_invariants();
    }

    #[test]
    fn check_fit_is_the_plan_appliers_recheck() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000)]);
        v.reserve(
            "a",
            Reservation {
                alloc_id: "x".into(),
                job_id: "j".into(),
                priority: 50,
                resources: res(600, 100),
                host_ports: vec![8080],
            },
        )
        .unwrap();
        assert_eq!(v.check_fit("a", res(400, 900), &[8081]), Ok(()));
        assert!(matches!(
            v.check_fit("a", res(401, 0), &[]),
            Err(FitError::Exhausted { .. })
        ));
        assert!(matches!(
            v.check_fit("a", res(0, 0), &[8080]),
            Err(FitError::PortTaken { .. })
        ));
        assert_eq!(
            v.check_fit("b", res(0, 0), &[]),
            Err(FitError::UnknownNode("b".into()))
        );
        let mut down = info("a", 1000, 1000);
        down.schedulable = false;
        v.upsert_node(down);
        assert_eq!(
            v.check_fit("a", res(0, 0), &[]),
            Err(FitError::NotSchedulable("a".into()))
        );
        // Existing allocations still load onto it.
        assert_eq!(
            v.reserve(
                "a",
                Reservation {
                    alloc_id: "y".into(),
                    job_id: "j".into(),
                    priority: 50,
                    resources: res(100, 100),
                    host_ports: vec![],
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn restore_accepts_what_exists_even_over_capacity() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000), ("b", 1000, 1000)]);
        let r = |id: &str, cpu| Reservation {
            alloc_id: id.into(),
            job_id: "j".into(),
            priority: 50,
            resources: res(cpu, 0),
            host_ports: vec![],
        };
        v.restore("a", r("x", 1500)).unwrap();
        assert_eq!(
            v.restore("a", r("x", 1)),
            Err(FitError::DuplicateAllocation("x".into()))
        );
        assert_eq!(
            v.reserve("b", r("x", 1)),
            Err(FitError::DuplicateAllocation("x".into()))
        );
        assert_eq!(
            v.restore("c", r("y", 1)),
            Err(FitError::UnknownNode("c".into()))
        );
        // Over capacity reads as full: new work goes elsewhere.
        let mut ask = Ask::new("web", res(0, 10));
        ask.distinct_nodes = false;
        assert_eq!(
            v.place(&ask, "w").unwrap().node_id,
            "a",
            "cpu-free asks still fit"
        );
        assert_eq!(
            v.place(&Ask::new("w", res(1, 10)), "w1").unwrap().node_id,
            "b"
        );
        v.check_invariants();
    }

    #[test]
    fn dynamic_ports_follow_the_last_taken_and_are_deterministic() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000)]);
        let mut ask = Ask::new("web", res(1, 1));
        ask.distinct_nodes = false;
        ask.static_ports = vec![80];
        ask.dynamic_ports = 2;
        assert_eq!(v.place(&ask, "w0").unwrap().host_ports, vec![80, 100, 101]);
        ask.static_ports = vec![];
        assert_eq!(v.place(&ask, "w1").unwrap().host_ports, vec![102, 103]);
        v.release("a", "w0");
        // A port just given back is not handed out again at once.
        assert_eq!(v.place(&ask, "w2").unwrap().host_ports, vec![104, 105]);
        ask.static_ports = vec![80];
        let twin = v.clone();
        let p = v.place(&ask, "w3").unwrap();
        assert_eq!(p.host_ports, vec![80, 106, 107]);
        assert_eq!(twin.clone().place(&ask, "w3").unwrap(), p);
    }

    #[test]
    fn a_duplicate_allocation_id_is_refused() {
        let mut v = view(Algorithm::BinPack, &[("a", 1000, 1000)]);
        let ask = Ask::new("web", res(1, 1));
        v.place(&ask, "w0").unwrap();
        let err = v.place(&ask, "w0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "0 of 1 nodes fit: 1 refused: allocation w0 is already placed"
        );
    }
}
