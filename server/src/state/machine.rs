//! Applies committed commands to the cluster state.
//!
//! The state lives in memory for fast reads and is mirrored, change by change, into the
//! store's key/value pairs (the `Writes` of each apply), which the store makes durable in
//! the same batch as the applied index. On start and after a snapshot is installed the
//! store hands every pair back through `load`, and the memory view is rebuilt from them.

use super::allocations::Allocations;
use super::command::{decode_batch, encode_outcomes, AllocationUpdate, Command, Outcome};
use super::jobs::Jobs;
use super::keys;
use super::nodes::Nodes;
use super::plan::apply_plan;
use gantry_api::error::codes;
use gantry_api::jobs::{Job, JobVersion};
use gantry_api::{Allocation, ClientState, DesiredState, Node, NodeStatus};
use gantry_raft_store::{Application, Writes};
use std::sync::{RwLock, RwLockReadGuard};

pub use super::jobs::VERSIONS_KEPT;

/// Everything the managers agree on.
#[derive(Default)]
pub struct State {
    pub jobs: Jobs,
    pub nodes: Nodes,
    pub allocations: Allocations,
    pub acl: super::acl::Acl,
    pub deployments: super::deployments::Deployments,
    /// A snapshot restore being staged (not part of the state; see `restore`).
    pub restore: super::restore::RestoreStaging,
}

#[derive(Default)]
pub struct ClusterState {
    state: RwLock<State>,
    /// What each apply touched, for the leader's scheduler.
    pub changes: super::changes::Changes,
    /// Every applied change, for `GET /v1/events`.
    pub events: std::sync::Arc<crate::events::EventLog>,
}

impl ClusterState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A consistent view of the whole state, for readers.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("state lock poisoned")
    }
}

impl State {
    fn apply(&mut self, index: u64, command: Command, writes: &mut Writes) -> Outcome {
        match command {
            Command::RegisterJob {
                spec,
                submitted_at_ms,
            } => {
                let id = spec.id.clone();
                self.register_version(
                    index,
                    &id,
                    submitted_at_ms,
                    |jobs, writes| jobs.register(index, spec, submitted_at_ms, writes),
                    writes,
                )
            }
            Command::ScaleJob {
                id,
                replicas,
                submitted_at_ms,
            } => self.register_version(
                index,
                &id.clone(),
                submitted_at_ms,
                |jobs, writes| jobs.scale(index, id, replicas, submitted_at_ms, writes),
                writes,
            ),
            Command::DeleteJob { id } => {
                let outcome = self.jobs.delete(id.clone(), writes);
                if matches!(outcome, Outcome::JobDeleted { .. }) {
                    self.deployments.remove_job(&id, writes);
                }
                outcome
            }
            Command::RevertJob {
                id,
                version,
                submitted_at_ms,
            } => self.register_version(
                index,
                &id.clone(),
                submitted_at_ms,
                |jobs, writes| jobs.revert(index, id, version, submitted_at_ms, writes),
                writes,
            ),
            Command::RegisterNode {
                registration,
                now_ms,
            } => node_outcome(
                Some(self.nodes.register(index, registration, now_ms, writes)),
                "",
            ),
            Command::SetNodeStatus {
                node_id,
                status,
                now_ms,
            } => {
                let node = self
                    .nodes
                    .set_status(index, &node_id, status, now_ms, writes);
                if node.is_some() && status == NodeStatus::Down {
                    self.mark_lost(index, &node_id, now_ms, writes);
                }
                node_outcome(node, &node_id)
            }
            Command::SetNodeEligibility {
                node_id,
                eligibility,
            } => node_outcome(
                self.nodes
                    .set_eligibility(index, &node_id, eligibility, writes),
                &node_id,
            ),
            Command::SetNodeDrain { node_id, drain } => node_outcome(
                self.nodes.set_drain(index, &node_id, drain, writes),
                &node_id,
            ),
            Command::ApplyPlan { mut plan, now_ms } => {
                let deployment_updates = std::mem::take(&mut plan.deployment_updates);
                let result = apply_plan(
                    &self.nodes,
                    &mut self.allocations,
                    index,
                    plan,
                    now_ms,
                    writes,
                );
                self.update_deployments(index, deployment_updates, now_ms, writes);
                Outcome::PlanApplied { result }
            }
            Command::UpdateAllocations { updates, now_ms } => Outcome::AllocationsUpdated {
                applied: self.update_allocations(index, updates, now_ms, writes),
            },
            Command::SetJobPlacement { job_id, unplaced } => {
                let applied = self.jobs.set_placement(&job_id, unplaced, writes);
                Outcome::JobPlacement {
                    id: job_id,
                    applied,
                }
            }
            Command::StopAllocation { id, now_ms } => {
                self.stop_allocation(index, &id, now_ms, writes)
            }
            Command::RestartAllocation { id, task, now_ms } => {
                self.restart_allocation(index, &id, task, now_ms, writes)
            }
            Command::Acl(command) => self.acl.apply(index, command, writes),
            Command::DeploymentAction { id, action, now_ms } => {
                self.act_on_deployment(index, &id, action, now_ms, writes)
            }
            Command::StageRestore {
                restore_id,
                part,
                records,
            } => self.stage_restore(restore_id, part, records, writes),
            Command::RestoreSnapshot {
                restore_id,
                parts,
                records,
            } => self.restore_snapshot(&restore_id, parts, records, writes),
        }
    }

    /// A node went down: what it was running is lost, to be replaced elsewhere.
    fn mark_lost(&mut self, index: u64, node_id: &str, now_ms: u64, writes: &mut Writes) {
        let lost: Vec<Allocation> = self
            .allocations
            .on_node(node_id)
            .filter(|a| a.reserves_resources())
            .cloned()
            .collect();
        for mut allocation in lost {
            allocation.client_state = ClientState::Lost;
            allocation.desired = DesiredState::Stop;
            allocation.message = format!("node {node_id} is down");
            allocation.modified_at_ms = now_ms;
            allocation.modify_index = index;
            self.allocations.store(allocation, writes);
        }
    }

    fn update_allocations(
        &mut self,
        index: u64,
        updates: Vec<AllocationUpdate>,
        now_ms: u64,
        writes: &mut Writes,
    ) -> usize {
        let mut applied = 0;
        for update in updates {
            let Some(existing) = self.allocations.by_id.get(&update.id) else {
                continue;
            };
            // A lost allocation stays lost: its node was declared down, and its slot may
            // already run elsewhere.
            if existing.client_state == ClientState::Lost {
                continue;
            }
            let mut allocation = existing.clone();
            let healthy = update.client_state == ClientState::Running
                && update.health == gantry_api::Health::Healthy;
            allocation.healthy_since_ms = if healthy {
                existing.healthy_since_ms.or(Some(now_ms))
            } else {
                None
            };
            allocation.client_state = update.client_state;
            allocation.health = update.health;
            allocation.restart_count = update.restart_count;
            allocation.message = update.message;
            allocation.modified_at_ms = now_ms;
            allocation.modify_index = index;
            self.allocations.store(allocation, writes);
            applied += 1;
        }
        applied
    }
}

fn node_outcome(node: Option<Node>, id: &str) -> Outcome {
    match node {
        Some(node) => Outcome::Node {
            node: Box::new(node),
        },
        None => Outcome::Rejected {
            code: codes::NOT_FOUND.to_string(),
            message: format!("no node with id `{id}`"),
        },
    }
}

impl State {
    /// Rebuilds a state from stored pairs (as `Application::load` gets them, or a
    /// snapshot file's records). Fails on an unknown key or a record that does not decode.
    pub fn from_records(
        data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, String> {
        let mut fresh = State::default();
        for (key, value) in data {
            let key = String::from_utf8(key).map_err(|e| format!("non-UTF-8 state key: {e}"))?;
            let corrupt = |e: serde_json::Error| format!("corrupt record `{key}`: {e}");
            if key.starts_with(keys::JOB_VERSION_PREFIX) {
                let record: JobVersion = serde_json::from_slice(&value).map_err(corrupt)?;
                fresh
                    .jobs
                    .versions
                    .entry(record.spec.id.clone())
                    .or_default()
                    .insert(record.version, record);
            } else if key.starts_with(keys::JOB_PREFIX) {
                let job: Job = serde_json::from_slice(&value).map_err(corrupt)?;
                fresh.jobs.current.insert(job.spec.id.clone(), job);
            } else if key.starts_with(keys::NODE_PREFIX) {
                fresh
                    .nodes
                    .load(serde_json::from_slice(&value).map_err(corrupt)?);
            } else if key.starts_with(keys::ALLOCATION_PREFIX) {
                fresh
                    .allocations
                    .load(serde_json::from_slice(&value).map_err(corrupt)?);
            } else if key.starts_with(super::acl::PREFIX) {
                fresh.acl.load(&key, &value)?;
            } else if key.starts_with(keys::DEPLOYMENT_PREFIX) {
                fresh
                    .deployments
                    .load(serde_json::from_slice(&value).map_err(corrupt)?);
            } else if key.starts_with(keys::RESTORE_PREFIX) {
                fresh.restore.load(&key, &value)?;
            } else {
                return Err(format!("unknown state key `{key}`"));
            }
        }
        Ok(fresh)
    }
}

impl Application for ClusterState {
    fn load(&self, data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        let mut fresh = State::from_records(data)?;
        let mut state = self.state.write().expect("state lock poisoned");
        fresh.allocations.continue_change_counts(&state.allocations);
        *state = fresh;
        drop(state);
        self.changes.everything();
        Ok(())
    }

    fn apply(&self, index: u64, command: &[u8], writes: &mut Writes) -> Vec<u8> {
        let commands = match decode_batch(command) {
            Ok(commands) => commands,
            Err(e) => {
                // Only a manager of another version could propose this; answer, don't fail.
                tracing::error!(index, error = %e, "undecodable command batch in the log");
                return encode_outcomes(&[]);
            }
        };
        let mark = crate::events::EventLog::mark(writes);
        let mut state = self.state.write().expect("state lock poisoned");
        let outcomes: Vec<Outcome> = commands
            .into_iter()
            .map(|command| {
                self.changes.record(&state, &command);
                state.apply(index, command, writes)
            })
            .collect();
        drop(state);
        self.events.record_writes(index, writes, mark);
        encode_outcomes(&outcomes)
    }

    fn loaded_at(&self, index: Option<u64>) {
        self.events.replaced(index.unwrap_or(0));
    }

    fn membership_applied(
        &self,
        index: u64,
        membership: &openraft::Membership<u64, openraft::BasicNode>,
    ) {
        self.events.record_membership(index, membership);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{decode_outcomes, encode_batch, AllocationUpdate};
    use gantry_api::job::{parse_job_spec, JobSpec};
    use gantry_api::{ClientState, DesiredState, NodeStatus};
    use std::collections::BTreeMap;

    fn spec(id: &str, replicas: u32) -> JobSpec {
        let json = format!(
            r#"{{"id":"{id}","replicas":{replicas},"tasks":[{{"name":"main","image":"busybox",
            "resources":{{"cpu_millis":100,"memory_mb":32}}}}]}}"#
        );
        parse_job_spec(json.as_bytes(), None).unwrap()
    }

    fn apply(state: &ClusterState, index: u64, commands: Vec<Command>) -> (Vec<Outcome>, Writes) {
        let mut writes = Writes::default();
        let response = state.apply(index, &encode_batch(&commands), &mut writes);
        (decode_outcomes(&response).unwrap(), writes)
    }

    fn register(id: &str, replicas: u32) -> Command {
        Command::RegisterJob {
            spec: spec(id, replicas),
            submitted_at_ms: 1,
        }
    }

    #[test]
    fn a_batch_answers_each_command_in_order() {
        let state = ClusterState::new();
        let (outcomes, _) = apply(
            &state,
            5,
            vec![
                register("a", 1),
                register("b", 1),
                Command::DeleteJob { id: "zz".into() },
            ],
        );
        assert_eq!(outcomes.len(), 3);
        assert!(
            matches!(&outcomes[0], Outcome::JobRegistered { id, version: 1, changed: true, .. } if id == "a")
        );
        assert!(matches!(&outcomes[1], Outcome::JobRegistered { id, version: 1, .. } if id == "b"));
        assert!(matches!(&outcomes[2], Outcome::Rejected { code, .. } if code == "not_found"));
        assert_eq!(state.read().jobs.current["a"].create_index, 5);
    }

    #[test]
    fn only_a_changed_spec_makes_a_new_version() {
        let state = ClusterState::new();
        apply(&state, 1, vec![register("a", 1)]);
        let (same, writes) = apply(&state, 2, vec![register("a", 1)]);
        assert!(matches!(
            same[0],
            Outcome::JobRegistered {
                version: 1,
                changed: false,
                ..
            }
        ));
        assert!(writes.is_empty(), "an unchanged spec writes nothing");
        let (changed, _) = apply(&state, 3, vec![register("a", 2)]);
        assert!(matches!(
            changed[0],
            Outcome::JobRegistered {
                version: 2,
                changed: true,
                ..
            }
        ));
        let state = state.read();
        let jobs = &state.jobs;
        assert_eq!(jobs.current["a"].modify_index, 3);
        assert_eq!(jobs.current["a"].create_index, 1);
        assert_eq!(jobs.versions["a"].len(), 2);
    }

    #[test]
    fn history_keeps_the_newest_versions_and_revert_restores_one() {
        let state = ClusterState::new();
        for (i, replicas) in (1..=12).enumerate() {
            apply(&state, i as u64 + 1, vec![register("a", replicas)]);
        }
        assert_eq!(state.read().jobs.versions["a"].len(), VERSIONS_KEPT);
        assert!(!state.read().jobs.versions["a"].contains_key(&1));
        let revert = |version| Command::RevertJob {
            id: "a".into(),
            version,
            submitted_at_ms: 2,
        };
        let (gone, _) = apply(&state, 20, vec![revert(1)]);
        assert!(matches!(&gone[0], Outcome::Rejected { code, .. } if code == "not_found"));
        let (back, _) = apply(&state, 21, vec![revert(5)]);
        assert!(matches!(
            back[0],
            Outcome::JobRegistered {
                version: 13,
                changed: true,
                ..
            }
        ));
        assert_eq!(state.read().jobs.current["a"].spec.replicas, 5);
    }

    #[test]
    fn scale_and_delete() {
        let state = ClusterState::new();
        apply(&state, 1, vec![register("a", 1)]);
        let scale = Command::ScaleJob {
            id: "a".into(),
            replicas: 0,
            submitted_at_ms: 3,
        };
        let (scaled, _) = apply(&state, 2, vec![scale]);
        assert!(matches!(
            scaled[0],
            Outcome::JobRegistered { version: 2, .. }
        ));
        let (deleted, writes) = apply(&state, 3, vec![Command::DeleteJob { id: "a".into() }]);
        assert!(matches!(&deleted[0], Outcome::JobDeleted { id } if id == "a"));
        assert_eq!(
            writes.ops().len(),
            4,
            "the job record, both versions and its deployment are deleted"
        );
        assert!(state.read().jobs.current.is_empty());
        assert!(state.read().jobs.versions.is_empty());
    }

    #[test]
    fn load_rebuilds_what_apply_wrote() {
        let state = ClusterState::new();
        let mut stored = BTreeMap::new();
        for (index, command) in [register("a", 1), register("b", 2), register("a", 3)]
            .into_iter()
            .enumerate()
        {
            let (_, writes) = apply(&state, index as u64 + 1, vec![command]);
            for (key, value) in writes.ops().iter().cloned() {
                match value {
                    Some(value) => stored.insert(key, value),
                    None => stored.remove(&key),
                };
            }
        }
        let reloaded = ClusterState::new();
        reloaded.load(&mut stored.into_iter()).unwrap();
        let (before, after) = (state.read(), reloaded.read());
        let (before, after) = (&before.jobs, &after.jobs);
        assert_eq!(before.current, after.current);
        assert_eq!(before.versions, after.versions);
    }

    #[test]
    fn an_undecodable_batch_is_answered_not_fatal() {
        let state = ClusterState::new();
        let mut writes = Writes::default();
        let response = state.apply(1, b"not json", &mut writes);
        assert_eq!(decode_outcomes(&response).unwrap(), vec![]);
        assert!(writes.is_empty());
    }

    fn registration(name: &str) -> gantry_api::NodeRegistration {
        gantry_api::NodeRegistration {
            name: name.into(),
            address: "10.0.0.9".into(),
            resources: gantry_api::Resources {
                cpu_millis: 2000,
                memory_mb: 2048,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["docker".into()],
            agent_addr: None,
        }
    }

    fn placed(id: &str, node: &str) -> crate::state::plan::PlannedAllocation {
        let json = format!(
            r#"{{"id":"{id}","job_id":"web","job_version":1,"slot":0,"node_id":"{node}",
            "resources":{{"cpu_millis":500,"memory_mb":256}},"ports":[],"desired":"run",
            "client_state":"pending","health":"unknown","restart_count":0,"message":"",
            "placement_reason":"test","created_at_ms":0,"modified_at_ms":0,
            "create_index":0,"modify_index":0}}"#
        );
        crate::state::plan::PlannedAllocation {
            allocation: serde_json::from_str(&json).unwrap(),
            replaces: None,
        }
    }

    #[test]
    fn a_down_node_loses_its_allocations_and_reports_cannot_revive_them() {
        let state = ClusterState::new();
        let node_up = vec![
            Command::RegisterNode {
                registration: registration("n1"),
                now_ms: 1,
            },
            Command::SetNodeStatus {
                node_id: "n1".into(),
                status: NodeStatus::Ready,
                now_ms: 1,
            },
            Command::ApplyPlan {
                plan: crate::state::plan::Plan {
                    stops: vec![],
                    placements: vec![placed("a1", "n1")],
                    ..Default::default()
                },
                now_ms: 2,
            },
        ];
        let (outcomes, _) = apply(&state, 1, node_up);
        assert!(
            matches!(&outcomes[2], Outcome::PlanApplied { result } if result.placed == vec!["a1"])
        );

        let running = AllocationUpdate {
            id: "a1".into(),
            client_state: ClientState::Running,
            health: gantry_api::Health::Healthy,
            restart_count: 0,
            message: String::new(),
        };
        let (outcomes, _) = apply(
            &state,
            2,
            vec![Command::UpdateAllocations {
                updates: vec![running.clone()],
                now_ms: 3,
            }],
        );
        assert!(matches!(
            outcomes[0],
            Outcome::AllocationsUpdated { applied: 1 }
        ));
        assert_eq!(
            state
                .read()
                .allocations
                .node_usage("n1")
                .reserved
                .cpu_millis,
            500
        );

        apply(
            &state,
            3,
            vec![Command::SetNodeStatus {
                node_id: "n1".into(),
                status: NodeStatus::Down,
                now_ms: 4,
            }],
        );
        {
            let read = state.read();
            let lost = &read.allocations.by_id["a1"];
            assert_eq!(lost.client_state, ClientState::Lost);
            assert_eq!(lost.desired, DesiredState::Stop);
            assert_eq!(read.allocations.node_usage("n1").reserved.cpu_millis, 0);
        }
        // A late report from the node's agent does not bring it back.
        let (outcomes, _) = apply(
            &state,
            4,
            vec![Command::UpdateAllocations {
                updates: vec![running],
                now_ms: 5,
            }],
        );
        assert!(matches!(
            outcomes[0],
            Outcome::AllocationsUpdated { applied: 0 }
        ));
        assert_eq!(
            state.read().allocations.by_id["a1"].client_state,
            ClientState::Lost
        );
    }

    fn unplaced(slot: u32, message: &str) -> gantry_api::scheduling::UnplacedSlot {
        gantry_api::scheduling::UnplacedSlot {
            slot: Some(slot),
            node_id: None,
            replaces: None,
            message: message.into(),
            explanation: Some(gantry_api::scheduling::PlacementExplanation {
                nodes_evaluated: 2,
                nodes_fit: 0,
                filtered: BTreeMap::new(),
                exhausted: BTreeMap::from([("cpu".to_string(), 2)]),
            }),
        }
    }

    fn set_placement(job: &str, slots: Vec<gantry_api::scheduling::UnplacedSlot>) -> Command {
        Command::SetJobPlacement {
            job_id: job.into(),
            unplaced: slots,
        }
    }

    #[test]
    fn job_placement_is_recorded_replicated_and_survives_a_new_version() {
        let state = ClusterState::new();
        apply(&state, 1, vec![register("web", 4)]);
        let why = vec![
            unplaced(2, "0 of 2 nodes fit: 2 exhausted cpu"),
            unplaced(3, "0 of 2 nodes fit: 2 exhausted cpu"),
        ];
        let (outcomes, writes) = apply(&state, 2, vec![set_placement("web", why.clone())]);
        assert_eq!(
            outcomes,
            vec![Outcome::JobPlacement {
                id: "web".into(),
                applied: true
            }]
        );
        assert_eq!(writes.ops().len(), 1, "the job record is rewritten");
        {
            let read = state.read();
            let job = &read.jobs.current["web"];
            assert_eq!(job.unplaced, why);
            assert_eq!(job.modify_index, 1, "not a spec change");
            assert_eq!(job.version, 1);
        }
        // The same set again writes nothing.
        let (_, writes) = apply(&state, 3, vec![set_placement("web", why.clone())]);
        assert!(writes.is_empty());

        // A follower loading the stored pairs (restart, snapshot) sees it too.
        let mut stored = BTreeMap::new();
        let replay = ClusterState::new();
        for (index, command) in [register("web", 4), set_placement("web", why.clone())]
            .into_iter()
            .enumerate()
        {
            let (_, writes) = apply(&replay, index as u64 + 1, vec![command]);
            for (key, value) in writes.ops().iter().cloned() {
                match value {
                    Some(value) => stored.insert(key, value),
                    None => stored.remove(&key),
                };
            }
        }
        let reloaded = ClusterState::new();
        reloaded.load(&mut stored.into_iter()).unwrap();
        assert_eq!(reloaded.read().jobs.current["web"].unplaced, why);

        // A new version keeps it until the scheduler says otherwise; an empty set clears.
        apply(&state, 4, vec![register("web", 5)]);
        assert_eq!(state.read().jobs.current["web"].unplaced, why);
        apply(&state, 5, vec![set_placement("web", vec![])]);
        assert!(state.read().jobs.current["web"].unplaced.is_empty());
    }

    #[test]
    fn job_placement_for_an_unknown_job_is_ignored() {
        let state = ClusterState::new();
        let (outcomes, writes) = apply(
            &state,
            1,
            vec![set_placement("gone", vec![unplaced(0, "x")])],
        );
        assert_eq!(
            outcomes,
            vec![Outcome::JobPlacement {
                id: "gone".into(),
                applied: false
            }]
        );
        assert!(writes.is_empty());
        assert!(state.read().jobs.current.is_empty());
        // Nothing for the scheduler to look at again.
        state.changes.take();
        apply(&state, 2, vec![register("web", 1)]);
        state.changes.take();
        apply(
            &state,
            3,
            vec![set_placement("web", vec![unplaced(0, "x")])],
        );
        assert!(state.changes.take().is_empty());
    }

    #[test]
    fn job_status_follows_allocations_and_unplaced_slots() {
        use crate::state::jobs::status;
        use gantry_api::jobs::job_status;
        let state = ClusterState::new();
        apply(
            &state,
            1,
            vec![
                register("web", 2),
                Command::RegisterNode {
                    registration: registration("n1"),
                    now_ms: 1,
                },
                Command::SetNodeStatus {
                    node_id: "n1".into(),
                    status: NodeStatus::Ready,
                    now_ms: 1,
                },
            ],
        );
        let current = |state: &ClusterState| {
            let read = state.read();
            status(&read.jobs.current["web"], read.allocations.of_job("web"))
        };
        assert_eq!(current(&state), job_status::PENDING);
        apply(
            &state,
            2,
            vec![
                Command::ApplyPlan {
                    plan: crate::state::plan::Plan {
                        stops: vec![],
                        placements: vec![placed("a0", "n1")],
                        ..Default::default()
                    },
                    now_ms: 2,
                },
                set_placement("web", vec![unplaced(1, "0 of 1 nodes fit")]),
            ],
        );
        assert_eq!(current(&state), job_status::DEGRADED);
        apply(
            &state,
            3,
            vec![Command::SetNodeStatus {
                node_id: "n1".into(),
                status: NodeStatus::Down,
                now_ms: 3,
            }],
        );
        assert_eq!(current(&state), job_status::BLOCKED);
        apply(&state, 4, vec![set_placement("web", vec![])]);
        assert_eq!(current(&state), job_status::PENDING);
        apply(&state, 5, vec![register("web", 0)]);
        assert_eq!(current(&state), job_status::STOPPED);
        apply(&state, 6, vec![register("web", 1)]);
        apply(
            &state,
            7,
            vec![
                Command::SetNodeStatus {
                    node_id: "n1".into(),
                    status: NodeStatus::Ready,
                    now_ms: 7,
                },
                Command::ApplyPlan {
                    plan: crate::state::plan::Plan {
                        stops: vec![],
                        placements: vec![placed("b0", "n1")],
                        ..Default::default()
                    },
                    now_ms: 7,
                },
            ],
        );
        assert_eq!(current(&state), job_status::RUNNING);
    }

    #[test]
    fn re_registering_keeps_the_managers_decisions() {
        let state = ClusterState::new();
        apply(
            &state,
            1,
            vec![
                Command::RegisterNode {
                    registration: registration("n1"),
                    now_ms: 1,
                },
                Command::SetNodeDrain {
                    node_id: "n1".into(),
                    drain: true,
                },
            ],
        );
        let mut bigger = registration("n1");
        bigger.resources.cpu_millis = 8000;
        apply(
            &state,
            2,
            vec![Command::RegisterNode {
                registration: bigger,
                now_ms: 2,
            }],
        );
        let read = state.read();
        let node = &read.nodes.by_id["n1"];
        assert!(node.drain);
        assert_eq!(node.resources.cpu_millis, 8000);
        assert_eq!(node.create_index, 1);
        assert_eq!(node.modify_index, 2);
    }
}
