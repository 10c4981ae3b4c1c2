//! What a session must send next: the node's set against what the agent already has.
//!
//! The state machine does not publish change notifications, so a session remembers, per
//! allocation it sent, the `modify_index` it sent, and after the state moves on compares
//! the node's current set with that. An allocation whose index differs (or is new) is an
//! upsert; one that left the set is a removal. The cost is O(allocations on the node) per
//! comparison, made at most once per applied-index notice (see `signals`).

use gantry_api::job::JobSpec;
use gantry_api::session::{matters_to_agent, JobVersionSpec};
use gantry_api::Allocation;
use std::collections::{HashMap, HashSet};

/// What the agent holds: allocation id → the `modify_index` it was sent at, and the job
/// versions whose specs it was sent.
#[derive(Debug, Default)]
pub struct Sent {
    by_id: HashMap<String, u64>,
    job_versions: HashSet<(String, u64)>,
}

/// The changes between what was sent and the node's current set.
#[derive(Debug, PartialEq)]
pub struct Changes {
    pub upserts: Vec<Allocation>,
    pub removals: Vec<String>,
}

impl Sent {
    /// The complete set to open a session with, remembering it as sent.
    pub fn complete<'a>(
        &mut self,
        on_node: impl IntoIterator<Item = &'a Allocation>,
    ) -> Vec<Allocation> {
        self.by_id.clear();
        self.job_versions.clear();
        let set: Vec<Allocation> = on_node
            .into_iter()
            .filter(|a| matters_to_agent(a))
            .cloned()
            .collect();
        for allocation in &set {
            self.by_id
                .insert(allocation.id.clone(), allocation.modify_index);
        }
        set
    }

    /// The specs of the job versions `allocations` run that were not sent yet (found
    /// with `spec_of`; a version no longer kept is left out), remembering them as sent.
    pub fn new_job_versions<'a>(
        &mut self,
        allocations: &[Allocation],
        spec_of: impl Fn(&str, u64) -> Option<&'a JobSpec>,
    ) -> Vec<JobVersionSpec> {
        let mut jobs = Vec::new();
        for allocation in allocations {
            let key = (allocation.job_id.clone(), allocation.job_version);
            if self.job_versions.contains(&key) {
                continue;
            }
            if let Some(spec) = spec_of(&key.0, key.1) {
                jobs.push(JobVersionSpec {
                    version: key.1,
                    spec: spec.clone(),
                });
                self.job_versions.insert(key);
            }
        }
        jobs
    }

    /// The changes since the last call (or `complete`), or `None` if there are none;
    /// remembers the current set as sent.
    pub fn changes<'a>(
        &mut self,
        on_node: impl IntoIterator<Item = &'a Allocation>,
    ) -> Option<Changes> {
        let mut now = HashMap::with_capacity(self.by_id.len());
        let mut upserts = Vec::new();
        for allocation in on_node.into_iter().filter(|a| matters_to_agent(a)) {
            if self.by_id.remove(&allocation.id) != Some(allocation.modify_index) {
                upserts.push(allocation.clone());
            }
            now.insert(allocation.id.clone(), allocation.modify_index);
        }
        // What is left was sent before and is no longer in the set.
        let mut removals: Vec<String> = std::mem::replace(&mut self.by_id, now)
            .into_keys()
            .collect();
        removals.sort();
        if upserts.is_empty() && removals.is_empty() {
            None
        } else {
            Some(Changes { upserts, removals })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{ClientState, DesiredState};

    fn alloc(id: &str, modify_index: u64, desired: DesiredState, state: ClientState) -> Allocation {
        let json = format!(
            r#"{{"id":"{id}","job_id":"web","job_version":1,"slot":0,"node_id":"n1",
            "resources":{{"cpu_millis":100,"memory_mb":32}},"ports":[],"desired":"run",
            "client_state":"pending","health":"unknown","restart_count":0,"message":"",
            "placement_reason":"test","created_at_ms":0,"modified_at_ms":0,
            "create_index":1,"modify_index":{modify_index}}}"#
        );
        let mut allocation: Allocation = serde_json::from_str(&json).unwrap();
        allocation.desired = desired;
        allocation.client_state = state;
        allocation
    }

    fn run(id: &str, index: u64) -> Allocation {
        alloc(id, index, DesiredState::Run, ClientState::Running)
    }

    fn ids(allocations: &[Allocation]) -> Vec<&str> {
        allocations.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn the_complete_set_leaves_out_what_needs_no_action() {
        let node = [
            run("a", 1),
            alloc("stopping", 2, DesiredState::Stop, ClientState::Running),
            alloc("stopped", 3, DesiredState::Stop, ClientState::Complete),
            alloc("lost", 4, DesiredState::Stop, ClientState::Lost),
            alloc("failed-run", 5, DesiredState::Run, ClientState::Failed),
        ];
        let mut sent = Sent::default();
        let set = sent.complete(&node);
        assert_eq!(ids(&set), vec!["a", "stopping"]);
        assert_eq!(sent.changes(&node), None, "nothing changed since");
    }

    #[test]
    fn changed_new_and_departed_allocations_make_an_increment() {
        let mut sent = Sent::default();
        sent.complete(&[run("a", 1), run("b", 1), run("c", 1)]);
        let now = [
            run("a", 1),                                             // untouched
            alloc("b", 7, DesiredState::Stop, ClientState::Running), // told to stop
            run("d", 7),                                             // placed
                                                                     // "c" removed from the state
        ];
        let changes = sent.changes(&now).unwrap();
        assert_eq!(ids(&changes.upserts), vec!["b", "d"]);
        assert_eq!(changes.removals, vec!["c"]);

        // The agent stopped "b" and reported it: it leaves the set.
        let later = [
            run("a", 1),
            alloc("b", 9, DesiredState::Stop, ClientState::Complete),
            run("d", 7),
        ];
        let changes = sent.changes(&later).unwrap();
        assert!(changes.upserts.is_empty());
        assert_eq!(changes.removals, vec!["b"]);
        assert_eq!(sent.changes(&later), None);
    }

    #[test]
    fn each_job_version_is_sent_once_per_session() {
        let spec: JobSpec = serde_json::from_str(
            r#"{"id":"web","tasks":[{"name":"main","image":"i",
            "resources":{"cpu_millis":100,"memory_mb":32}}]}"#,
        )
        .unwrap();
        let spec_of = |id: &str, version: u64| (id == "web" && version == 1).then_some(&spec);
        let mut sent = Sent::default();
        let set = sent.complete(&[run("a", 1), run("b", 1)]);
        let jobs = sent.new_job_versions(&set, spec_of);
        assert_eq!(jobs.len(), 1, "two allocations of one version: one spec");
        assert!(sent.new_job_versions(&[run("c", 2)], spec_of).is_empty());
        let mut other = run("d", 3);
        other.job_version = 7;
        assert!(
            sent.new_job_versions(&[other], spec_of).is_empty(),
            "a version no longer kept is left out"
        );
        sent.complete(&[run("a", 1)]);
        assert_eq!(sent.new_job_versions(&[run("a", 1)], spec_of).len(), 1);
    }

    #[test]
    fn a_status_report_is_echoed_as_an_upsert() {
        // The agent's own report bumps modify_index; the session sends it back so the
        // agent sees what the managers recorded (cheap, and keeps the rule simple).
        let mut sent = Sent::default();
        sent.complete(&[alloc("a", 1, DesiredState::Run, ClientState::Pending)]);
        let changes = sent.changes(&[run("a", 2)]).unwrap();
        assert_eq!(ids(&changes.upserts), vec!["a"]);
    }
}
