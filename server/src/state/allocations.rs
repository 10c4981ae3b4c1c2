//! Allocations in the replicated state, indexed by node and by job.
//!
//! The indexes answer the two questions asked most: what must this node run (the agent
//! session's complete set) and what runs for this job (the scheduler's reconcile). A
//! per-node change counter lets an agent session skip a node nothing happened to.

use super::keys;
use gantry_api::{Allocation, Resources};
use gantry_raft_store::Writes;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Default)]
pub struct Allocations {
    pub by_id: BTreeMap<String, Allocation>,
    pub by_node: BTreeMap<String, BTreeSet<String>>,
    pub by_job: BTreeMap<String, BTreeSet<String>>,
    /// Bumped whenever an allocation on the node is stored or removed. In memory only
    /// (not replicated): it is compared within one manager's lifetime.
    changes_by_node: HashMap<String, u64>,
}

/// What a node's live allocations hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    pub reserved: Resources,
    pub host_ports: BTreeSet<u16>,
}

/// No resources: `Resources` has no `Default`, on purpose (a spec must state them).
pub fn zero() -> Resources {
    Resources {
        cpu_millis: 0,
        memory_mb: 0,
    }
}

impl Allocations {
    pub fn store(&mut self, allocation: Allocation, writes: &mut Writes) {
        writes.put(
            keys::allocation(&allocation.id),
            serde_json::to_vec(&allocation).expect("allocations serialise"),
        );
        self.load(allocation);
    }

    /// Adds or replaces an allocation in memory only (startup and snapshot load).
    pub fn load(&mut self, allocation: Allocation) {
        self.touch(&allocation.node_id);
        if let Some(previous) = self.by_id.get(&allocation.id) {
            if previous.node_id != allocation.node_id {
                if let Some(ids) = self.by_node.get_mut(&previous.node_id) {
                    ids.remove(&allocation.id);
                }
            }
        }
        self.by_node
            .entry(allocation.node_id.clone())
            .or_default()
            .insert(allocation.id.clone());
        self.by_job
            .entry(allocation.job_id.clone())
            .or_default()
            .insert(allocation.id.clone());
        self.by_id.insert(allocation.id.clone(), allocation);
    }

    pub fn remove(&mut self, id: &str, writes: &mut Writes) -> Option<Allocation> {
        let allocation = self.by_id.remove(id)?;
        self.touch(&allocation.node_id);
        writes.delete(keys::allocation(id));
        remove_from(&mut self.by_node, &allocation.node_id, id);
        remove_from(&mut self.by_job, &allocation.job_id, id);
        Some(allocation)
    }

    /// How many times the node's allocations changed: equal values mean nothing on the
    /// node changed in between.
    pub fn node_changes(&self, node_id: &str) -> u64 {
        self.changes_by_node.get(node_id).copied().unwrap_or(0)
    }

    /// Carries the change counts on from `before`, the allocations this set replaces
    /// (a reload or a restore): every node's count moves past its old value, so a session
    /// that compared it before sees a change.
    pub fn continue_change_counts(&mut self, before: &Allocations) {
        for (node_id, count) in &before.changes_by_node {
            *self.changes_by_node.entry(node_id.clone()).or_insert(0) += count + 1;
        }
    }

    fn touch(&mut self, node_id: &str) {
        match self.changes_by_node.get_mut(node_id) {
            Some(count) => *count += 1,
            None => {
                self.changes_by_node.insert(node_id.to_string(), 1);
            }
        }
    }

    pub fn on_node(&self, node_id: &str) -> impl Iterator<Item = &Allocation> {
        self.by_node
            .get(node_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }

    pub fn of_job(&self, job_id: &str) -> impl Iterator<Item = &Allocation> {
        self.by_job
            .get(job_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }

    /// The resources and host ports held on a node by allocations that still reserve them.
    pub fn node_usage(&self, node_id: &str) -> NodeUsage {
        let mut usage = NodeUsage {
            reserved: zero(),
            host_ports: BTreeSet::new(),
        };
        for allocation in self.on_node(node_id).filter(|a| a.reserves_resources()) {
            usage.reserved.cpu_millis += allocation.resources.cpu_millis;
            usage.reserved.memory_mb += allocation.resources.memory_mb;
            usage
                .host_ports
                .extend(allocation.ports.iter().map(|p| p.host_port));
        }
        usage
    }
}

fn remove_from(index: &mut BTreeMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}
