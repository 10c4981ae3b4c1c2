//! Nodes in the replicated state: registration, status, eligibility and drain.
//!
//! A node's id is its name: agents keep no state, so a restarted agent must find its node
//! again from its configuration alone.

use super::keys;
use gantry_api::{Eligibility, Node, NodeRegistration, NodeStatus};
use gantry_raft_store::Writes;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Nodes {
    pub by_id: BTreeMap<String, Node>,
}

impl Nodes {
    /// Registers a node, or refreshes what its agent reports about it. Status, eligibility
    /// and drain are the managers' decisions and survive a re-registration.
    pub fn register(
        &mut self,
        index: u64,
        registration: NodeRegistration,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Node {
        let id = registration.name.clone();
        let node = match self.by_id.get(&id) {
            Some(existing) => Node {
                address: registration.address,
                resources: registration.resources,
                port_range: registration.port_range,
                labels: registration.labels,
                drivers: registration.drivers,
                agent_addr: registration.agent_addr,
                modify_index: index,
                ..existing.clone()
            },
            None => Node {
                id: id.clone(),
                name: registration.name,
                address: registration.address,
                resources: registration.resources,
                port_range: registration.port_range,
                labels: registration.labels,
                drivers: registration.drivers,
                agent_addr: registration.agent_addr,
                status: NodeStatus::Initializing,
                eligibility: Eligibility::Eligible,
                drain: false,
                registered_at_ms: now_ms,
                status_changed_at_ms: now_ms,
                create_index: index,
                modify_index: index,
            },
        };
        self.store(node.clone(), writes);
        node
    }

    /// Changes a node with `change`; `None` if there is no such node.
    pub fn update(
        &mut self,
        index: u64,
        id: &str,
        writes: &mut Writes,
        change: impl FnOnce(&mut Node),
    ) -> Option<Node> {
        let mut node = self.by_id.get(id)?.clone();
        change(&mut node);
        node.modify_index = index;
        self.store(node.clone(), writes);
        Some(node)
    }

    pub fn set_status(
        &mut self,
        index: u64,
        id: &str,
        status: NodeStatus,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Option<Node> {
        self.update(index, id, writes, |node| {
            if node.status != status {
                node.status = status;
                node.status_changed_at_ms = now_ms;
            }
        })
    }

    pub fn set_eligibility(
        &mut self,
        index: u64,
        id: &str,
        eligibility: Eligibility,
        writes: &mut Writes,
    ) -> Option<Node> {
        self.update(index, id, writes, |node| node.eligibility = eligibility)
    }

    pub fn set_drain(
        &mut self,
        index: u64,
        id: &str,
        drain: bool,
        writes: &mut Writes,
    ) -> Option<Node> {
        self.update(index, id, writes, |node| node.drain = drain)
    }

    fn store(&mut self, node: Node, writes: &mut Writes) {
        writes.put(
            keys::node(&node.id),
            serde_json::to_vec(&node).expect("nodes serialise"),
        );
        self.by_id.insert(node.id.clone(), node);
    }

    pub fn load(&mut self, node: Node) {
        self.by_id.insert(node.id.clone(), node);
    }
}
