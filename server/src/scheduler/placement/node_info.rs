//! What placement needs to know about a node and about what already runs on it.
//!
//! Placement works on its own small copies rather than on `gantry_api::Node` and
//! `Allocation` so it stays a pure function of what the caller hands it: the leader loads
//! the replicated state into a [`ClusterView`](super::ClusterView) and keeps it current.

use std::collections::BTreeMap;

use gantry_api::{Allocation, Node, PortRange, Resources};

/// A node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    pub address: String,
    pub capacity: Resources,
    /// Where dynamic host ports are picked from.
    pub port_range: PortRange,
    pub labels: BTreeMap<String, String>,
    pub drivers: Vec<String>,
    /// Ready, eligible and not draining: may take new allocations.
    pub schedulable: bool,
}

impl From<&Node> for NodeInfo {
    fn from(node: &Node) -> Self {
        NodeInfo {
            id: node.id.clone(),
            name: node.name.clone(),
            address: node.address.clone(),
            capacity: node.resources,
            port_range: node.port_range,
            labels: node.labels.clone(),
            drivers: node.drivers.clone(),
            schedulable: node.schedulable(),
        }
    }
}

/// Something that holds part of a node: an allocation, or one being placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub alloc_id: String,
    pub job_id: String,
    /// The job's priority: who may preempt it.
    pub priority: u8,
    pub resources: Resources,
    pub host_ports: Vec<u16>,
}

impl Reservation {
    /// The reservation an allocation holds, given its job's priority (the allocation does
    /// not carry it). Only meaningful when `alloc.reserves_resources()`.
    pub fn of_allocation(alloc: &Allocation, priority: u8) -> Self {
        Reservation {
            alloc_id: alloc.id.clone(),
            job_id: alloc.job_id.clone(),
            priority,
            resources: alloc.resources,
            host_ports: alloc.ports.iter().map(|p| p.host_port).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{ClientState, Eligibility, Health, NodeStatus, PortAssignment};

    fn node(status: NodeStatus, eligibility: Eligibility, drain: bool) -> Node {
        Node {
            id: "n1".into(),
            name: "node-1".into(),
            address: "10.0.0.1".into(),
            resources: Resources {
                cpu_millis: 4000,
                memory_mb: 8192,
            },
            port_range: PortRange {
                start: 20_000,
                end: 20_100,
            },
            labels: [("zone".to_string(), "a".to_string())].into(),
            drivers: vec!["docker".into()],
            agent_addr: None,
            status,
            eligibility,
            drain,
            registered_at_ms: 0,
            status_changed_at_ms: 0,
            create_index: 1,
            modify_index: 1,
        }
    }

    #[test]
    fn a_node_is_schedulable_only_when_ready_eligible_and_not_draining() {
        let info = NodeInfo::from(&node(NodeStatus::Ready, Eligibility::Eligible, false));
        assert!(info.schedulable);
        assert_eq!(info.capacity.memory_mb, 8192);
        assert_eq!(info.port_range.end, 20_100);
        assert_eq!(info.labels["zone"], "a");
        for n in [
            node(NodeStatus::Initializing, Eligibility::Eligible, false),
            node(NodeStatus::Down, Eligibility::Eligible, false),
            node(NodeStatus::Ready, Eligibility::Ineligible, false),
            node(NodeStatus::Ready, Eligibility::Eligible, true),
        ] {
            assert!(!NodeInfo::from(&n).schedulable, "{n:?}");
        }
    }

    #[test]
    fn an_allocation_reserves_its_resources_and_host_ports() {
        let alloc = Allocation {
            ports: vec![PortAssignment {
                task: "main".into(),
                name: "http".into(),
                host_port: 20_001,
                container_port: 8080,
            }],
            client_state: ClientState::Running,
            health: Health::Healthy,
            create_index: 1,
            modify_index: 1,
            ..Allocation::new(
                "a1",
                "web",
                1,
                0,
                "n1",
                Resources {
                    cpu_millis: 250,
                    memory_mb: 64,
                },
            )
        };
        let r = Reservation::of_allocation(&alloc, 70);
        assert_eq!(r.alloc_id, "a1");
        assert_eq!(r.job_id, "web");
        assert_eq!(r.priority, 70);
        assert_eq!(r.resources, alloc.resources);
        assert_eq!(r.host_ports, vec![20_001]);
    }
}
