//! Applying a scheduler plan: the re-check that keeps nodes from being over-committed.
//!
//! The leader computes a plan against its view of the state, but the state may have moved
//! on by the time the plan is committed (a node went down, another plan took the room).
//! So every placement is checked again here, in log order, against the state as it is:
//! the node still exists and takes work, its cpu and memory still fit, its host ports are
//! still free, and the job's slot is not already running elsewhere. Parts that fail are
//! rejected (and the scheduler re-evaluates them); the rest is applied. Because this runs
//! in the state machine, every manager reaches the same verdict.

use super::allocations::{Allocations, NodeUsage};
use super::nodes::Nodes;
use gantry_api::{Allocation, DesiredState};
use gantry_raft_store::Writes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Allocations to stop first (freeing their room for the placements).
    pub stops: Vec<AllocationStop>,
    pub placements: Vec<PlannedAllocation>,
    /// Live allocations moved to a newer version of their job in place: it changed
    /// nothing that runs, so nothing restarts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_updates: Vec<VersionUpdate>,
    /// What the scheduler concluded about deployments (applied by the state machine
    /// after the rest of the plan; see `state::deployments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployment_updates: Vec<super::deployments::DeploymentUpdate>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
            && self.placements.is_empty()
            && self.version_updates.is_empty()
            && self.deployment_updates.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionUpdate {
    pub id: String,
    pub job_version: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocationStop {
    pub id: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedAllocation {
    pub allocation: Allocation,
    /// The allocation this one replaces (a migration off a draining node, a rolling
    /// update): both may run for the same slot until the old one is stopped.
    #[serde(default)]
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanResult {
    pub placed: Vec<String>,
    pub stopped: Vec<String>,
    pub rejected: Vec<Rejection>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub alloc_id: String,
    pub reason: String,
}

pub fn apply_plan(
    nodes: &Nodes,
    allocations: &mut Allocations,
    index: u64,
    plan: Plan,
    now_ms: u64,
    writes: &mut Writes,
) -> PlanResult {
    let mut result = PlanResult::default();
    for stop in plan.stops {
        match allocations.by_id.get(&stop.id) {
            Some(existing) => {
                let mut stopped = existing.clone();
                stopped.desired = DesiredState::Stop;
                stopped.message = stop.reason;
                stopped.modified_at_ms = now_ms;
                stopped.modify_index = index;
                allocations.store(stopped, writes);
                result.stopped.push(stop.id);
            }
            None => result.rejected.push(Rejection {
                alloc_id: stop.id,
                reason: "no such allocation to stop".into(),
            }),
        }
    }

    for update in plan.version_updates {
        let Some(existing) = allocations.by_id.get(&update.id) else {
            continue;
        };
        // Only forward, and only what still runs: a stopped allocation keeps its version.
        if existing.job_version >= update.job_version || !existing.reserves_resources() {
            continue;
        }
        let mut moved = existing.clone();
        moved.job_version = update.job_version;
        moved.modified_at_ms = now_ms;
        moved.modify_index = index;
        allocations.store(moved, writes);
    }

    let mut usage: BTreeMap<String, NodeUsage> = BTreeMap::new();
    for planned in plan.placements {
        let mut allocation = planned.allocation;
        if let Err(reason) = check(
            nodes,
            allocations,
            &mut usage,
            &allocation,
            planned.replaces.as_deref(),
        ) {
            result.rejected.push(Rejection {
                alloc_id: allocation.id,
                reason,
            });
            continue;
        }
        allocation.created_at_ms = now_ms;
        allocation.modified_at_ms = now_ms;
        allocation.create_index = index;
        allocation.modify_index = index;
        result.placed.push(allocation.id.clone());
        allocations.store(allocation, writes);
    }
    result
}

/// Does `allocation` still fit where the plan put it? On success its reservation is added
/// to `usage`, so later placements of the same plan see it.
fn check(
    nodes: &Nodes,
    allocations: &Allocations,
    usage: &mut BTreeMap<String, NodeUsage>,
    allocation: &Allocation,
    replaces: Option<&str>,
) -> Result<(), String> {
    let node_id = &allocation.node_id;
    let Some(node) = nodes.by_id.get(node_id) else {
        return Err(format!("node {node_id} no longer exists"));
    };
    if !node.schedulable() {
        return Err(format!(
            "node {node_id} no longer takes work (status {:?}, {:?}, drain {})",
            node.status, node.eligibility, node.drain
        ));
    }
    if allocations.by_id.contains_key(&allocation.id) {
        return Err(format!("allocation id {} already exists", allocation.id));
    }
    let slot_taken = allocations.of_job(&allocation.job_id).any(|other| {
        other.slot == allocation.slot
            && other.desired == DesiredState::Run
            && !other.client_state.is_terminal()
            && Some(other.id.as_str()) != replaces
    });
    if slot_taken {
        return Err(format!(
            "slot {} of job {} is already running",
            allocation.slot, allocation.job_id
        ));
    }

    let held = usage
        .entry(node_id.clone())
        .or_insert_with(|| allocations.node_usage(node_id));
    let capacity = node.resources;
    let cpu = held.reserved.cpu_millis + allocation.resources.cpu_millis;
    if cpu > capacity.cpu_millis {
        return Err(format!(
            "cpu exhausted on node {node_id}: needs {} millicpu, {} of {} free",
            allocation.resources.cpu_millis,
            capacity.cpu_millis.saturating_sub(held.reserved.cpu_millis),
            capacity.cpu_millis
        ));
    }
    let memory = held.reserved.memory_mb + allocation.resources.memory_mb;
    if memory > capacity.memory_mb {
        return Err(format!(
            "memory exhausted on node {node_id}: needs {} MB, {} of {} free",
            allocation.resources.memory_mb,
            capacity.memory_mb.saturating_sub(held.reserved.memory_mb),
            capacity.memory_mb
        ));
    }
    let mut wanted = BTreeSet::new();
    for port in &allocation.ports {
        if port.host_port == 0
            || held.host_ports.contains(&port.host_port)
            || !wanted.insert(port.host_port)
        {
            return Err(format!(
                "host port {} is already taken on node {node_id}",
                port.host_port
            ));
        }
    }
    held.reserved.cpu_millis = cpu;
    held.reserved.memory_mb = memory;
    held.host_ports.extend(wanted);
    Ok(())
}

#[cfg(test)]
#[path = "plan_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{NodeRegistration, NodeStatus, PortAssignment, Resources};

    fn node(nodes: &mut Nodes, name: &str, cpu: u64, memory: u64) {
        let mut writes = Writes::default();
        let registration = NodeRegistration {
            name: name.into(),
            address: "10.0.0.1".into(),
            resources: Resources {
                cpu_millis: cpu,
                memory_mb: memory,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["docker".into()],
            agent_addr: None,
        };
        nodes.register(1, registration, 0, &mut writes);
        nodes.set_status(1, name, NodeStatus::Ready, 0, &mut writes);
    }

    fn alloc(
        id: &str,
        job: &str,
        slot: u32,
        node: &str,
        cpu: u64,
        ports: &[u16],
    ) -> PlannedAllocation {
        let resources = Resources {
            cpu_millis: cpu,
            memory_mb: 64,
        };
        PlannedAllocation {
            allocation: Allocation {
                ports: ports
                    .iter()
                    .map(|&p| PortAssignment {
                        task: "main".into(),
                        name: format!("p{p}"),
                        host_port: p,
                        container_port: 80,
                    })
                    .collect(),
                placement_reason: "test".into(),
                ..Allocation::new(id, job, 1, slot, node, resources)
            },
            replaces: None,
        }
    }

    fn apply(nodes: &Nodes, allocations: &mut Allocations, plan: Plan) -> PlanResult {
        apply_plan(nodes, allocations, 7, plan, 1, &mut Writes::default())
    }

    fn rejected_ids(result: &PlanResult) -> Vec<&str> {
        result
            .rejected
            .iter()
            .map(|r| r.alloc_id.as_str())
            .collect()
    }

    #[test]
    fn rejects_exactly_what_no_longer_fits() {
        let mut nodes = Nodes::default();
        node(&mut nodes, "n1", 1000, 1024);
        let mut allocations = Allocations::default();
        let plan = Plan {
            stops: vec![],
            placements: vec![
                alloc("a", "web", 0, "n1", 600, &[]),
                alloc("b", "web", 1, "n1", 600, &[]), // cpu: 600 + 600 > 1000
                alloc("c", "web", 2, "n1", 400, &[]),
                alloc("d", "web", 3, "gone", 10, &[]),
            ],
            ..Default::default()
        };
        let result = apply(&nodes, &mut allocations, plan);
        assert_eq!(result.placed, vec!["a", "c"]);
        assert_eq!(rejected_ids(&result), vec!["b", "d"]);
        assert!(result.rejected[0].reason.contains("cpu exhausted"));
        assert!(result.rejected[1].reason.contains("no longer exists"));
        assert_eq!(allocations.node_usage("n1").reserved.cpu_millis, 1000);
        assert_eq!(allocations.by_id["a"].create_index, 7);
    }

    #[test]
    fn a_host_port_is_never_given_twice_on_a_node() {
        let mut nodes = Nodes::default();
        node(&mut nodes, "n1", 4000, 4096);
        let mut allocations = Allocations::default();
        let first = Plan {
            stops: vec![],
            placements: vec![alloc("a", "web", 0, "n1", 100, &[8080])],
            ..Default::default()
        };
        apply(&nodes, &mut allocations, first);
        let second = Plan {
            stops: vec![],
            placements: vec![
                alloc("b", "api", 0, "n1", 100, &[8080]),
                alloc("c", "api", 1, "n1", 100, &[9090, 9090]),
                alloc("d", "api", 2, "n1", 100, &[9091]),
            ],
            ..Default::default()
        };
        let result = apply(&nodes, &mut allocations, second);
        assert_eq!(rejected_ids(&result), vec!["b", "c"]);
        assert_eq!(result.placed, vec!["d"]);
    }

    #[test]
    fn stops_free_room_for_the_placements_of_the_same_plan() {
        let mut nodes = Nodes::default();
        node(&mut nodes, "n1", 1000, 1024);
        let mut allocations = Allocations::default();
        apply(
            &nodes,
            &mut allocations,
            Plan {
                stops: vec![],
                placements: vec![alloc("old", "web", 0, "n1", 1000, &[8080])],
                ..Default::default()
            },
        );
        let mut replacement = alloc("new", "web", 0, "n1", 1000, &[8080]);
        replacement.replaces = Some("old".into());
        let result = apply(
            &nodes,
            &mut allocations,
            Plan {
                stops: vec![AllocationStop {
                    id: "old".into(),
                    reason: "updated".into(),
                }],
                placements: vec![replacement],
                ..Default::default()
            },
        );
        assert_eq!(result.stopped, vec!["old"]);
        assert_eq!(result.placed, vec!["new"]);
        assert_eq!(allocations.by_id["old"].desired, DesiredState::Stop);
    }

    #[test]
    fn one_live_allocation_per_slot_unless_it_replaces_one() {
        let mut nodes = Nodes::default();
        node(&mut nodes, "n1", 4000, 4096);
        node(&mut nodes, "n2", 4000, 4096);
        let mut allocations = Allocations::default();
        let first = Plan {
            stops: vec![],
            placements: vec![alloc("a", "web", 0, "n1", 100, &[])],
            ..Default::default()
        };
        apply(&nodes, &mut allocations, first);
        let duplicate = Plan {
            stops: vec![],
            placements: vec![alloc("b", "web", 0, "n2", 100, &[])],
            ..Default::default()
        };
        let result = apply(&nodes, &mut allocations, duplicate);
        assert_eq!(rejected_ids(&result), vec!["b"]);
        assert!(result.rejected[0].reason.contains("slot 0"));

        // A migration (new before old) names the allocation it replaces.
        let mut migration = alloc("c", "web", 0, "n2", 100, &[]);
        migration.replaces = Some("a".into());
        let result = apply(
            &nodes,
            &mut allocations,
            Plan {
                stops: vec![],
                placements: vec![migration],
                ..Default::default()
            },
        );
        assert_eq!(result.placed, vec!["c"]);
    }

    #[test]
    fn unschedulable_nodes_take_no_new_work() {
        let mut nodes = Nodes::default();
        node(&mut nodes, "n1", 4000, 4096);
        let mut writes = Writes::default();
        nodes.set_drain(2, "n1", true, &mut writes);
        let mut allocations = Allocations::default();
        let result = apply(
            &nodes,
            &mut allocations,
            Plan {
                stops: vec![],
                placements: vec![alloc("a", "web", 0, "n1", 100, &[])],
                ..Default::default()
            },
        );
        assert_eq!(rejected_ids(&result), vec!["a"]);
        assert!(result.rejected[0].reason.contains("no longer takes work"));
    }
}
