//! One node with everything that holds part of it, and the exact "does this fit?" check.
//!
//! The sums here are the truth the indexes are built from: `reserved` is the sum of the
//! reservations, the port book holds exactly their host ports, and the job counts say how
//! many allocations of each job the node holds (for spreading replicas).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gantry_api::Resources;

use super::capacity_tree::{priority_of, Free};
use super::node_info::{NodeInfo, Reservation};
use super::ports::{PortBook, PortShortage};

/// Why a reservation cannot be made (or would not be accepted by the plan applier).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("node {0} is unknown")]
    UnknownNode(String),
    #[error("node {0} does not take new allocations (not ready, ineligible or draining)")]
    NotSchedulable(String),
    #[error("node {node} has {free} {dimension} free, {needed} needed")]
    Exhausted {
        node: String,
        dimension: &'static str,
        needed: u64,
        free: u64,
    },
    #[error("host port {port} is already taken on node {node}")]
    PortTaken { node: String, port: u16 },
    #[error("host port {0} is listed twice")]
    DuplicatePort(u16),
    #[error("host port 0 is not a port")]
    ZeroPort,
    #[error("allocation {0} already holds a reservation")]
    DuplicateAllocation(String),
}

#[derive(Clone, Debug)]
pub(crate) struct NodeState {
    pub info: NodeInfo,
    /// The id, shared with the index keys.
    pub key: Arc<str>,
    /// Treap priority of this node in the class indexes.
    pub priority: u64,
    /// Where the view's node table keeps it (set there).
    pub slot: u32,
    pub class: u32,
    pub reserved: Resources,
    pub reservations: BTreeMap<String, Reservation>,
    pub ports: PortBook,
    /// Job id → how many of the reservations belong to it.
    pub jobs: HashMap<String, u32>,
}

impl NodeState {
    pub fn new(info: NodeInfo, class: u32) -> Self {
        let key: Arc<str> = Arc::from(info.id.as_str());
        NodeState {
            priority: priority_of(&info.id),
            ports: PortBook::new(info.port_range),
            key,
            info,
            slot: 0,
            class,
            reserved: Resources {
                cpu_millis: 0,
                memory_mb: 0,
            },
            reservations: BTreeMap::new(),
            jobs: HashMap::new(),
        }
    }

    /// What is left; zero (never negative) when the node holds more than its capacity,
    /// which only [`restore`](super::ClusterView::restore) allows.
    pub fn free(&self) -> Free {
        Free {
            cpu: self
                .info
                .capacity
                .cpu_millis
                .saturating_sub(self.reserved.cpu_millis),
            mem: self
                .info
                .capacity
                .memory_mb
                .saturating_sub(self.reserved.memory_mb),
        }
    }

    pub fn holds_job(&self, job_id: &str) -> bool {
        self.jobs.contains_key(job_id)
    }

    /// Do `resources` fit in what is free, and are `host_ports` valid, distinct and free?
    /// Schedulability is the caller's business (existing allocations are loaded onto
    /// nodes that take no new work).
    pub fn check_fit(&self, resources: Resources, host_ports: &[u16]) -> Result<(), FitError> {
        let free = self.free();
        let exhausted = |dimension, needed, free| FitError::Exhausted {
            node: self.info.id.clone(),
            dimension,
            needed,
            free,
        };
        if resources.cpu_millis > free.cpu {
            return Err(exhausted("cpu", resources.cpu_millis, free.cpu));
        }
        if resources.memory_mb > free.mem {
            return Err(exhausted("memory", resources.memory_mb, free.mem));
        }
        for (i, &port) in host_ports.iter().enumerate() {
            if port == 0 {
                return Err(FitError::ZeroPort);
            }
            if host_ports[..i].contains(&port) {
                return Err(FitError::DuplicatePort(port));
            }
            if !self.ports.is_free(port) {
                return Err(FitError::PortTaken {
                    node: self.info.id.clone(),
                    port,
                });
            }
        }
        Ok(())
    }

    /// Ports an ask would get here, or why there are not enough.
    pub fn check_ports(&self, static_ports: &[u16], dynamic: usize) -> Result<(), PortShortage> {
        self.ports.check(static_ports, dynamic)
    }

    /// Records `r` without checking it (the caller did, or is restoring what exists).
    pub fn add(&mut self, r: Reservation) {
        self.reserved.cpu_millis = self
            .reserved
            .cpu_millis
            .saturating_add(r.resources.cpu_millis);
        self.reserved.memory_mb = self
            .reserved
            .memory_mb
            .saturating_add(r.resources.memory_mb);
        self.ports.take(&r.host_ports);
        *self.jobs.entry(r.job_id.clone()).or_default() += 1;
        self.reservations.insert(r.alloc_id.clone(), r);
    }

    pub fn remove(&mut self, alloc_id: &str) -> Option<Reservation> {
        let r = self.reservations.remove(alloc_id)?;
        // Recomputed rather than subtracted: `add` saturates, so subtracting could drift.
        self.reserved = sum(self.reservations.values());
        self.ports.give_back(&r.host_ports);
        if let Some(count) = self.jobs.get_mut(&r.job_id) {
            *count -= 1;
            if *count == 0 {
                self.jobs.remove(&r.job_id);
            }
        }
        Some(r)
    }
}

/// The sum of the reservations' resources, saturating.
pub(crate) fn sum<'a>(reservations: impl Iterator<Item = &'a Reservation>) -> Resources {
    reservations.fold(
        Resources {
            cpu_millis: 0,
            memory_mb: 0,
        },
        |acc, r| Resources {
            cpu_millis: acc.cpu_millis.saturating_add(r.resources.cpu_millis),
            memory_mb: acc.memory_mb.saturating_add(r.resources.memory_mb),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::PortRange;

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        }
    }

    fn node() -> NodeState {
        NodeState::new(
            NodeInfo {
                id: "n1".into(),
                name: "n1".into(),
                address: "a".into(),
                capacity: res(1000, 2000),
                port_range: PortRange {
                    start: 100,
                    end: 199,
                },
                labels: Default::default(),
                drivers: vec![],
                schedulable: true,
            },
            0,
        )
    }

    fn reservation(id: &str, job: &str, cpu: u64, mem: u64, ports: &[u16]) -> Reservation {
        Reservation {
            alloc_id: id.into(),
            job_id: job.into(),
            priority: 50,
            resources: res(cpu, mem),
            host_ports: ports.to_vec(),
        }
    }

    #[test]
    fn add_and_remove_keep_the_sums() {
        let mut n = node();
        n.add(reservation("a1", "web", 300, 500, &[80, 150]));
        n.add(reservation("a2", "web", 200, 100, &[]));
        assert_eq!(
            n.free(),
            Free {
                cpu: 500,
                mem: 1400
            }
        );
        assert_eq!(n.ports.free_in_range(), 99);
        assert_eq!(n.jobs["web"], 2);
        assert_eq!(n.remove("a1").unwrap().alloc_id, "a1");
        assert!(n.remove("a1").is_none());
        assert_eq!(
            n.free(),
            Free {
                cpu: 800,
                mem: 1900
            }
        );
        assert!(n.ports.is_free(80));
        n.remove("a2");
        assert!(!n.holds_job("web"));
    }

    #[test]
    fn check_fit_names_the_first_problem() {
        let mut n = node();
        n.add(reservation("a1", "web", 900, 500, &[80]));
        assert_eq!(n.check_fit(res(100, 1500), &[81]), Ok(()));
        assert!(matches!(
            n.check_fit(res(101, 0), &[]),
            Err(FitError::Exhausted {
                dimension: "cpu",
                needed: 101,
                free: 100,
                ..
            })
        ));
        assert!(matches!(
            n.check_fit(res(0, 1501), &[]),
            Err(FitError::Exhausted {
                dimension: "memory",
                ..
            })
        ));
        assert!(matches!(
            n.check_fit(res(0, 0), &[80]),
            Err(FitError::PortTaken { port: 80, .. })
        ));
        assert_eq!(
            n.check_fit(res(0, 0), &[81, 81]),
            Err(FitError::DuplicatePort(81))
        );
        assert_eq!(n.check_fit(res(0, 0), &[0]), Err(FitError::ZeroPort));
    }

    #[test]
    fn over_capacity_reads_as_nothing_free() {
        let mut n = node();
        n.add(reservation("a1", "web", 1500, 100, &[]));
        assert_eq!(n.free(), Free { cpu: 0, mem: 1900 });
        assert!(n.check_fit(res(1, 0), &[]).is_err());
        assert!(n.check_fit(res(0, 10), &[]).is_ok());
    }
}
