//! The nodes of a view, reachable by slot (fast, for the index) and by id (in id order).
//!
//! The capacity indexes hand back slots: a placement touches dozens of candidate nodes,
//! and a slot is a plain array index where an id would be a string-keyed tree lookup.
//! Slots are reused after a node is removed; nothing outside this view ever sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::node_state::NodeState;

#[derive(Clone, Debug, Default)]
pub(crate) struct NodeTable {
    slots: Vec<Option<NodeState>>,
    by_id: BTreeMap<Arc<str>, u32>,
    vacant: Vec<u32>,
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn slot(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn get(&self, id: &str) -> Option<&NodeState> {
        self.slot(id).map(|slot| self.at(slot))
    }

    pub fn at(&self, slot: u32) -> &NodeState {
        self.slots[slot as usize].as_ref().expect("a live slot")
    }

    pub fn at_mut(&mut self, slot: u32) -> &mut NodeState {
        self.slots[slot as usize].as_mut().expect("a live slot")
    }

    /// Stores a node (whose id is not in the table) and gives it its slot.
    pub fn insert(&mut self, mut node: NodeState) -> u32 {
        let slot = self.vacant.pop().unwrap_or(self.slots.len() as u32);
        node.slot = slot;
        self.by_id.insert(node.key.clone(), slot);
        if slot as usize == self.slots.len() {
            self.slots.push(Some(node));
        } else {
            self.slots[slot as usize] = Some(node);
        }
        slot
    }

    pub fn remove(&mut self, id: &str) -> Option<NodeState> {
        let slot = self.by_id.remove(id)?;
        self.vacant.push(slot);
        self.slots[slot as usize].take()
    }

    /// Every node, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &NodeState> {
        self.by_id.values().map(|&slot| self.at(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::NodeInfo;

    fn node(id: &str) -> NodeState {
        NodeState::new(
            NodeInfo {
                id: id.into(),
                name: id.into(),
                address: String::new(),
                capacity: gantry_api::Resources {
                    cpu_millis: 1,
                    memory_mb: 1,
                },
                port_range: Default::default(),
                labels: Default::default(),
                drivers: vec![],
                schedulable: true,
            },
            0,
        )
    }

    #[test]
    fn slots_are_stable_and_reused() {
        let mut t = NodeTable::default();
        let b = t.insert(node("b"));
        let a = t.insert(node("a"));
        assert_eq!((a, b), (1, 0));
        assert_eq!(t.at(a).key.as_ref(), "a");
        assert_eq!(t.get("b").unwrap().slot, b);
        let ids: Vec<&str> = t.iter().map(|n| n.key.as_ref()).collect();
        assert_eq!(ids, vec!["a", "b"], "id order");
        assert_eq!(t.remove("b").unwrap().slot, b);
        assert!(t.get("b").is_none());
        assert_eq!(t.insert(node("c")), b);
        assert_eq!(t.len(), 2);
    }
}
