//! Making room for a higher-priority ask by evicting lower-priority reservations.
//!
//! Only when plain placement fails. Every node that passes the filters (schedulable,
//! drivers, constraints) is costed: which reservations of a strictly lower priority would
//! have to go for the ask to fit — the holders of the static ports it needs first, then
//! the lowest priorities, the biggest first within a priority; then any victim whose
//! eviction turns out unnecessary is spared again (latest chosen first). The node whose
//! victims have the lowest highest priority wins, then the one with the fewest victims,
//! then one that holds no allocation of the job yet, then the smallest id.
//!
//! Fewest victims is a heuristic, not a guarantee (the exact minimum is a knapsack
//! problem); the set chosen is irreducible: sparing any one victim would not fit. This is
//! a failure path and scans every node: O(n · r log r) for r reservations per node.

use std::cmp::Reverse;
use std::sync::Arc;

use super::ask::Ask;
use super::cluster_view::{ClusterView, Placement};
use super::explain::Unplaced;
use super::feasibility::check_filters;
use super::node_info::Reservation;
use super::node_state::{sum, NodeState};
use super::ranking::{Fill, Frac};

/// A reservation removed to make room, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eviction {
    pub node_id: String,
    pub alloc_id: String,
    pub job_id: String,
    pub priority: u8,
    /// `preempted by job api (priority 80 > 20) for allocation api-7`.
    pub reason: String,
}

/// The victims that make an ask fit on one node.
struct Victims {
    node: Arc<str>,
    slot: u32,
    alloc_ids: Vec<String>,
    /// Highest priority among them (0 when none).
    worst: u8,
}

impl ClusterView {
    /// Like [`place`](Self::place), but when nothing fits, evicts reservations of a strictly
    /// lower priority (see the module doc) and places there. The evicted reservations are
    /// released from the view; the caller stops their allocations.
    pub fn place_with_preemption(
        &mut self,
        ask: &Ask,
        alloc_id: &str,
    ) -> Result<(Placement, Vec<Eviction>), Unplaced> {
        let unplaced = match self.place(ask, alloc_id) {
            Ok(placement) => return Ok((placement, Vec::new())),
            Err(unplaced) => unplaced,
        };
        if self.node_of(alloc_id).is_some() {
            return Err(unplaced);
        }
        let Some(victims) = self.cheapest_victims(ask) else {
            return Err(unplaced);
        };
        let mut evictions = Vec::with_capacity(victims.alloc_ids.len());
        for victim in &victims.alloc_ids {
            let r = self
                .release(&victims.node, victim)
                .expect("a victim is reserved on its node");
            evictions.push(Eviction {
                node_id: victims.node.to_string(),
                alloc_id: r.alloc_id,
                job_id: r.job_id,
                priority: r.priority,
                reason: format!(
                    "preempted by job {} (priority {} > {}) for allocation {alloc_id}",
                    ask.job_id, ask.priority, r.priority
                ),
            });
        }
        let mut placement = self.commit(ask, alloc_id, victims.slot);
        if !evictions.is_empty() {
            placement.reason = format!(
                "preempting {} allocation(s) of priority <= {}; {}",
                evictions.len(),
                victims.worst,
                placement.reason
            );
        }
        Ok((placement, evictions))
    }

    fn cheapest_victims(&self, ask: &Ask) -> Option<Victims> {
        let mut best: Option<((u8, usize, bool), Victims)> = None;
        for node in self.nodes() {
            if check_filters(ask, node).is_err() {
                continue;
            }
            let Some(chosen) = victims_on(node, ask) else {
                continue;
            };
            let worst = chosen.iter().map(|r| r.priority).max().unwrap_or(0);
            // Nodes come in id order, so on a tie the first (smallest id) stays.
            let cost = (worst, chosen.len(), node.holds_job(&ask.job_id));
            if best.as_ref().is_none_or(|(best_cost, _)| cost < *best_cost) {
                let victims = Victims {
                    node: node.key.clone(),
                    slot: node.slot,
                    alloc_ids: chosen.iter().map(|r| r.alloc_id.clone()).collect(),
                    worst,
                };
                best = Some((cost, victims));
            }
        }
        best.map(|(_, victims)| victims)
    }
}

/// An irreducible set of lower-priority reservations whose eviction lets `ask` fit on
/// `node`, or `None` if evicting all of them would not be enough.
fn victims_on<'a>(node: &'a NodeState, ask: &Ask) -> Option<Vec<&'a Reservation>> {
    // Holders of the static ports the ask needs must go, whatever they hold.
    let mut chosen: Vec<&Reservation> = Vec::new();
    for &port in &ask.static_ports {
        if node.ports.is_free(port) {
            continue;
        }
        let holder = node
            .reservations
            .values()
            .find(|r| r.host_ports.contains(&port))?;
        if holder.priority >= ask.priority {
            return None;
        }
        if !chosen.iter().any(|r| r.alloc_id == holder.alloc_id) {
            chosen.push(holder);
        }
    }
    let forced = chosen.len();

    let share = |r: &Reservation| {
        let fill = Fill::now(
            node.info.capacity,
            super::capacity_tree::Free {
                cpu: node
                    .info
                    .capacity
                    .cpu_millis
                    .saturating_sub(r.resources.cpu_millis),
                mem: node
                    .info
                    .capacity
                    .memory_mb
                    .saturating_sub(r.resources.memory_mb),
            },
        );
        fill.dominant().0
    };
    let mut candidates: Vec<(&Reservation, Frac)> = node
        .reservations
        .values()
        .filter(|r| r.priority < ask.priority && !chosen.iter().any(|c| c.alloc_id == r.alloc_id))
        .map(|r| (r, share(r)))
        .collect();
    candidates.sort_by(|(a, a_share), (b, b_share)| {
        (a.priority, Reverse(a_share), &a.alloc_id).cmp(&(
            b.priority,
            Reverse(b_share),
            &b.alloc_id,
        ))
    });
    let mut candidates = candidates.into_iter().map(|(r, _)| r);
    while !fits_without(node, ask, &chosen) {
        chosen.push(candidates.next()?);
    }
    for i in (forced..chosen.len()).rev() {
        let spared = chosen.remove(i);
        if !fits_without(node, ask, &chosen) {
            chosen.insert(i, spared);
        }
    }
    Some(chosen)
}

/// Would `ask` fit on `node` once `evicted` are gone? (Static ports held by anything but
/// `evicted` have been ruled out already.)
fn fits_without(node: &NodeState, ask: &Ask, evicted: &[&Reservation]) -> bool {
    let freed = sum(evicted.iter().copied());
    let room = |cap: u64, reserved: u64, freed: u64| {
        i128::from(cap) - i128::from(reserved) + i128::from(freed)
    };
    let cpu = room(
        node.info.capacity.cpu_millis,
        node.reserved.cpu_millis,
        freed.cpu_millis,
    );
    let mem = room(
        node.info.capacity.memory_mb,
        node.reserved.memory_mb,
        freed.memory_mb,
    );
    if cpu < i128::from(ask.resources.cpu_millis) || mem < i128::from(ask.resources.memory_mb) {
        return false;
    }
    let freed_in_range = evicted
        .iter()
        .flat_map(|r| &r.host_ports)
        .filter(|&&p| node.ports.in_range(p))
        .count();
    let statics_in_range = ask
        .static_ports
        .iter()
        .filter(|&&p| node.ports.in_range(p))
        .count();
    node.ports.free_in_range() + freed_in_range >= statics_in_range + ask.dynamic_ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::{Algorithm, NodeInfo};
    use gantry_api::{PortRange, Resources};

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        }
    }

    fn view(nodes: &[&str]) -> ClusterView {
        let mut v = ClusterView::new(Algorithm::BinPack);
        for id in nodes {
            v.upsert_node(NodeInfo {
                id: id.to_string(),
                name: id.to_string(),
                address: String::new(),
                capacity: res(1000, 1000),
                port_range: PortRange {
                    start: 100,
                    end: 103,
                },
                labels: Default::default(),
                drivers: vec![],
                schedulable: true,
            });
        }
        v
    }

    fn hold(
        v: &mut ClusterView,
        node: &str,
        id: &str,
        priority: u8,
        used: Resources,
        ports: &[u16],
    ) {
        v.reserve(
            node,
            Reservation {
                alloc_id: id.into(),
                job_id: format!("job-{id}"),
                priority,
                resources: used,
                host_ports: ports.to_vec(),
            },
        )
        .unwrap();
    }

    fn ask(priority: u8, cpu: u64) -> Ask {
        let mut a = Ask::new("big", res(cpu, 100));
        a.priority = priority;
        a
    }

    fn evicted(evictions: &[Eviction]) -> Vec<&str> {
        evictions.iter().map(|e| e.alloc_id.as_str()).collect()
    }

    #[test]
    fn no_eviction_when_the_ask_fits() {
        let mut v = view(&["n1"]);
        hold(&mut v, "n1", "a", 10, res(500, 100), &[]);
        let (p, e) = v.place_with_preemption(&ask(90, 500), "x").unwrap();
        assert_eq!(p.node_id, "n1");
        assert!(e.is_empty());
    }

    #[test]
    fn evicts_the_lowest_priority_first_then_the_fewest() {
        let mut v = view(&["n1", "n2"]);
        // n1: one priority-30 allocation would do; n2: two priority-10 ones are needed.
        hold(&mut v, "n1", "a", 30, res(700, 100), &[]);
        hold(&mut v, "n1", "b", 60, res(300, 100), &[]);
        hold(&mut v, "n2", "c", 10, res(500, 100), &[]);
        hold(&mut v, "n2", "d", 10, res(500, 100), &[]);
        let (p, e) = v.place_with_preemption(&ask(50, 700), "x").unwrap();
        assert_eq!(p.node_id, "n2");
        assert_eq!(evicted(&e), vec!["c", "d"]);
        assert!(p
            .reason
            .starts_with("preempting 2 allocation(s) of priority <= 10; bin-pack"));
        assert_eq!(
            e[0].reason,
            "preempted by job big (priority 50 > 10) for allocation x"
        );
        v.check_invariants();
    }

    #[test]
    fn spares_victims_that_turn_out_unneeded() {
        let mut v = view(&["n1"]);
        // `small` holds most memory so it is tried first, but the ask needs cpu: once
        // `big` is chosen too, `small` is spared again.
        hold(&mut v, "n1", "small", 10, res(100, 900), &[]);
        hold(&mut v, "n1", "big", 10, res(800, 50), &[]);
        hold(&mut v, "n1", "mid", 20, res(100, 50), &[]);
        let mut a = ask(50, 300);
        a.resources.memory_mb = 10;
        let (_, e) = v.place_with_preemption(&a, "x").unwrap();
        assert_eq!(evicted(&e), vec!["big"]);
    }

    #[test]
    fn never_evicts_equal_or_higher_priorities() {
        let mut v = view(&["n1"]);
        hold(&mut v, "n1", "a", 50, res(900, 100), &[]);
        let err = v.place_with_preemption(&ask(50, 500), "x").unwrap_err();
        assert_eq!(err.to_string(), "0 of 1 nodes fit: 1 exhausted cpu");
        assert_eq!(v.reservations("n1").unwrap().len(), 1);
    }

    #[test]
    fn static_ports_evict_their_holder_and_dynamic_ports_count() {
        let mut v = view(&["n1"]);
        hold(&mut v, "n1", "web", 10, res(10, 100), &[80]);
        hold(&mut v, "n1", "p1", 10, res(10, 100), &[100, 101]);
        hold(&mut v, "n1", "p2", 20, res(10, 100), &[102, 103]);
        let mut a = ask(50, 10);
        a.static_ports = vec![80];
        a.dynamic_ports = 2;
        let (p, e) = v.place_with_preemption(&a, "x").unwrap();
        assert_eq!(evicted(&e), vec!["web", "p1"]);
        assert_eq!(p.host_ports, vec![80, 100, 101]);
        // A static port held by an equal priority cannot be freed.
        hold(&mut v, "n1", "pinned", 50, res(10, 100), &[81]);
        let mut b = ask(50, 10);
        b.static_ports = vec![81];
        assert!(v.place_with_preemption(&b, "y").is_err());
        v.check_invariants();
    }
}
