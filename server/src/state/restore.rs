//! Restoring a snapshot file: the whole state replaced by the file's records, on every
//! manager, through the log.
//!
//! A file can be much larger than a log entry may be (an append request must be answered
//! within one heartbeat interval), so its records travel in parts: each `StageRestore`
//! command adds one part to a staging area, and the final `RestoreSnapshot` checks that
//! every part arrived, then replaces the state with them in one apply: every stored pair
//! is deleted (`Writes::clear`), the records are written, and memory is rebuilt from
//! them. Readers see the old state or the new one, never a mix.
//!
//! The staging area is stored under `restore/` like any other record, so a restart or a
//! Raft snapshot keeps it; it is not part of the cluster's state (a snapshot file leaves it
//! out). It belongs to one restore (`restore_id`): a part of another restore discards
//! it, so a restore abandoned half-way is cleaned up by the next one.

use super::command::Outcome;
use super::keys;
use super::machine::State;
use gantry_api::error::codes;
use gantry_raft_store::Writes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The parts of the restore being staged.
#[derive(Default)]
pub struct RestoreStaging {
    id: Option<String>,
    parts: BTreeMap<u32, Vec<(String, String)>>,
}

/// The stored value of one staged part.
#[derive(Serialize, Deserialize)]
struct StagedPart {
    restore_id: String,
    records: Vec<(String, String)>,
}

impl RestoreStaging {
    /// Adds a stored part back (startup, snapshot install).
    pub(crate) fn load(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        let part = key[keys::RESTORE_PREFIX.len()..]
            .parse::<u32>()
            .map_err(|e| format!("bad restore part key `{key}`: {e}"))?;
        let staged: StagedPart =
            serde_json::from_slice(value).map_err(|e| format!("corrupt record `{key}`: {e}"))?;
        match &self.id {
            Some(id) if *id != staged.restore_id => {
                return Err(format!(
                    "restore parts of two restores are stored (`{id}` and `{}`)",
                    staged.restore_id
                ))
            }
            Some(_) => {}
            None => self.id = Some(staged.restore_id),
        }
        self.parts.insert(part, staged.records);
        Ok(())
    }

    /// Drops every staged part, in memory and in the store.
    fn discard(&mut self, writes: &mut Writes) {
        for part in std::mem::take(&mut self.parts).into_keys() {
            writes.delete(keys::restore_part(part));
        }
        self.id = None;
    }
}

impl State {
    pub(crate) fn stage_restore(
        &mut self,
        restore_id: String,
        part: u32,
        records: Vec<(String, String)>,
        writes: &mut Writes,
    ) -> Outcome {
        if self.restore.id.as_deref() != Some(restore_id.as_str()) {
            // A new restore: whatever another one left behind goes.
            self.restore.discard(writes);
            self.restore.id = Some(restore_id.clone());
        }
        let staged = StagedPart {
            restore_id,
            records,
        };
        writes.put(
            keys::restore_part(part),
            serde_json::to_vec(&staged).expect("staged parts serialise"),
        );
        self.restore.parts.insert(part, staged.records);
        Outcome::RestoreStaged { part }
    }

    /// Replaces the whole state with the staged records of `restore_id`, which must be
    /// `parts` parts holding `records` records in all.
    pub(crate) fn restore_snapshot(
        &mut self,
        restore_id: &str,
        parts: u32,
        records: u64,
        writes: &mut Writes,
    ) -> Outcome {
        if self.restore.id.as_deref() != Some(restore_id) {
            return rejected(
                codes::CONFLICT,
                format!(
                    "restore `{restore_id}` has no staged records: another restore started \
                     meanwhile, or it was already applied"
                ),
            );
        }
        let staged = &self.restore.parts;
        let staged_records: usize = staged.values().map(Vec::len).sum();
        if !staged.keys().copied().eq(0..parts) || staged_records as u64 != records {
            let found = staged.len();
            self.restore.discard(writes);
            return rejected(
                codes::CONFLICT,
                format!(
                    "restore `{restore_id}` is incomplete: {found} of {parts} parts and \
                     {staged_records} of {records} records arrived; nothing was changed"
                ),
            );
        }
        let staged = std::mem::take(&mut self.restore.parts);
        let pairs = staged.values().flatten();
        if let Some((key, _)) = pairs
            .clone()
            .find(|(key, _)| key.starts_with(keys::RESTORE_PREFIX))
        {
            let message = format!("`{key}` is not a record of the cluster state");
            self.restore.parts = staged;
            self.restore.discard(writes);
            return rejected(codes::BAD_REQUEST, message);
        }
        let decoded = State::from_records(
            &mut pairs
                .clone()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        let mut fresh = match decoded {
            Ok(fresh) => fresh,
            Err(message) => {
                self.restore.parts = staged;
                self.restore.discard(writes);
                return rejected(codes::BAD_REQUEST, message);
            }
        };
        writes.clear();
        for (key, value) in staged.into_values().flatten() {
            writes.put(key, value);
        }
        fresh.allocations.continue_change_counts(&self.allocations);
        *self = fresh;
        Outcome::Restored { records }
    }
}

fn rejected(code: &str, message: String) -> Outcome {
    Outcome::Rejected {
        code: code.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use crate::state::command::{
        decode_outcomes, encode_batch, AllocationUpdate, Command, Outcome,
    };
    use crate::state::plan::{Plan, PlannedAllocation};
    use crate::state::ClusterState;
    use gantry_api::{ClientState, Health, NodeStatus};
    use gantry_raft_store::{Application, Writes};
    use std::collections::BTreeMap;

    type Pairs = Vec<(String, Vec<u8>)>;

    /// A store that keeps what the applies wrote, like the real one.
    #[derive(Default)]
    struct Stored(BTreeMap<String, Vec<u8>>);

    impl Stored {
        fn apply(
            &mut self,
            state: &ClusterState,
            index: u64,
            commands: Vec<Command>,
        ) -> Vec<Outcome> {
            let mut writes = Writes::default();
            let answer = state.apply(index, &encode_batch(&commands), &mut writes);
            if writes.clears() {
                self.0.clear();
            }
            for (key, value) in writes.ops().iter().cloned() {
                let key = String::from_utf8(key).unwrap();
                match value {
                    Some(value) => self.0.insert(key, value),
                    None => self.0.remove(&key),
                };
            }
            decode_outcomes(&answer).unwrap()
        }

        fn pairs(&self) -> Pairs {
            self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }

        /// The pairs of the cluster state, without a restore being staged.
        fn state_pairs(&self) -> Pairs {
            let mut pairs = self.pairs();
            pairs.retain(|(k, _)| !k.starts_with("restore/"));
            pairs
        }

        fn load_into(&self, state: &ClusterState) {
            state
                .load(&mut self.pairs().into_iter().map(|(k, v)| (k.into_bytes(), v)))
                .unwrap();
        }
    }

    fn spec(id: &str, replicas: u32) -> gantry_api::JobSpec {
        let json = format!(
            r#"{{"id":"{id}","replicas":{replicas},"tasks":[{{"name":"main","image":"busybox",
            "resources":{{"cpu_millis":100,"memory_mb":32}}}}]}}"#
        );
        gantry_api::parse_job_spec(json.as_bytes(), None).unwrap()
    }

    fn register(id: &str, replicas: u32) -> Command {
        Command::RegisterJob {
            spec: spec(id, replicas),
            submitted_at_ms: 10,
        }
    }

    fn registration(name: &str) -> gantry_api::NodeRegistration {
        serde_json::from_value(serde_json::json!({
            "name": name, "address": "10.0.0.9",
            "resources": {"cpu_millis": 2000, "memory_mb": 2048},
            "drivers": ["docker"],
        }))
        .unwrap()
    }

    fn placed(id: &str, job: &str, node: &str) -> PlannedAllocation {
        let json = format!(
            r#"{{"id":"{id}","job_id":"{job}","job_version":1,"slot":0,"node_id":"{node}",
            "resources":{{"cpu_millis":500,"memory_mb":256}},"ports":[],"desired":"run",
            "client_state":"pending","health":"unknown","restart_count":0,"message":"",
            "placement_reason":"test","created_at_ms":0,"modified_at_ms":0,
            "create_index":0,"modify_index":0}}"#
        );
        PlannedAllocation {
            allocation: serde_json::from_str(&json).unwrap(),
            replaces: None,
        }
    }

    /// Jobs with histories (and one deleted), nodes up and down, allocations placed,
    /// updated and lost.
    fn busy_state() -> (ClusterState, Stored) {
        let state = ClusterState::new();
        let mut stored = Stored::default();
        let mut index = 0;
        let mut apply = |commands: Vec<Command>| {
            index += 1;
            stored.apply(&state, index, commands);
        };
        for replicas in 1..=3 {
            apply(vec![register("web", replicas)]);
        }
        apply(vec![register("web-2", 1), register("gone", 1)]);
        apply(vec![Command::DeleteJob { id: "gone".into() }]);
        for name in ["n1", "n2"] {
            apply(vec![
                Command::RegisterNode {
                    registration: registration(name),
                    now_ms: 20,
                },
                Command::SetNodeStatus {
                    node_id: name.into(),
                    status: NodeStatus::Ready,
                    now_ms: 21,
                },
            ]);
        }
        apply(vec![Command::ApplyPlan {
            plan: Plan {
                stops: vec![],
                placements: vec![placed("a1", "web", "n1"), placed("a2", "web-2", "n2")],
                ..Default::default()
            },
            now_ms: 30,
        }]);
        apply(vec![Command::UpdateAllocations {
            updates: vec![AllocationUpdate {
                id: "a1".into(),
                client_state: ClientState::Running,
                health: Health::Healthy,
                restart_count: 1,
                message: "started".into(),
            }],
            now_ms: 31,
        }]);
        apply(vec![Command::SetNodeStatus {
            node_id: "n2".into(),
            status: NodeStatus::Down,
            now_ms: 40,
        }]);
        (state, stored)
    }

    fn stage(id: &str, part: u32, records: &[(String, Vec<u8>)]) -> Command {
        Command::StageRestore {
            restore_id: id.into(),
            part,
            records: records
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8(v.clone()).unwrap()))
                .collect(),
        }
    }

    fn finish(id: &str, parts: u32, records: usize) -> Command {
        Command::RestoreSnapshot {
            restore_id: id.into(),
            parts,
            records: records as u64,
        }
    }

    fn assert_same_state(a: &ClusterState, b: &ClusterState) {
        let (a, b) = (a.read(), b.read());
        assert_eq!(a.jobs.current, b.jobs.current);
        assert_eq!(a.jobs.versions, b.jobs.versions);
        assert_eq!(a.nodes.by_id, b.nodes.by_id);
        assert_eq!(a.allocations.by_id, b.allocations.by_id);
        assert_eq!(a.allocations.by_node, b.allocations.by_node);
        assert_eq!(a.allocations.by_job, b.allocations.by_job);
    }

    #[test]
    fn a_restore_replaces_the_state_and_the_store_with_the_staged_records() {
        let (source, source_stored) = busy_state();
        let saved = source_stored.pairs();
        let (first, second) = saved.split_at(saved.len() / 2);

        // Another cluster, with a state of its own and a part of an older restore.
        let target = ClusterState::new();
        let mut stored = Stored::default();
        stored.apply(&target, 1, vec![register("other", 1)]);
        let nodes: Pairs = saved
            .iter()
            .filter(|(k, _)| k.starts_with("node/"))
            .cloned()
            .collect();
        stored.apply(&target, 2, vec![stage("older", 0, &nodes)]);
        stored.apply(&target, 3, vec![stage("r1", 1, second)]);
        assert!(
            stored.0.keys().any(|k| k.starts_with("restore/")),
            "parts are stored"
        );
        assert!(target.read().nodes.by_id.is_empty(), "staging is not state");

        // The staged parts survive a reload (restart, Raft snapshot).
        let reloaded = ClusterState::new();
        stored.load_into(&reloaded);
        stored.apply(&reloaded, 4, vec![stage("r1", 0, first)]);
        reloaded.changes.take();
        let answer = stored.apply(&reloaded, 5, vec![finish("r1", 2, saved.len())]);

        assert_eq!(
            answer,
            vec![Outcome::Restored {
                records: saved.len() as u64
            }]
        );
        assert_eq!(stored.pairs(), saved, "the store holds exactly the file");
        assert_same_state(&reloaded, &source);
        assert!(
            reloaded.changes.take().all,
            "the scheduler looks at everything"
        );
    }

    #[test]
    fn an_incomplete_or_replaced_restore_changes_nothing() {
        let (state, mut stored) = busy_state();
        let before = stored.pairs();
        let answers = stored.apply(
            &state,
            100,
            vec![
                stage("r1", 0, &before[..2]),
                finish("r1", 2, before.len()),
                finish("r1", 1, 2),
            ],
        );
        assert!(
            matches!(&answers[1], Outcome::Rejected { code, message }
                if code == "conflict" && message.contains("1 of 2 parts")),
            "{answers:?}"
        );
        assert!(
            matches!(&answers[2], Outcome::Rejected { code, .. } if code == "conflict"),
            "the incomplete restore was discarded: {answers:?}"
        );
        assert_eq!(stored.pairs(), before);

        let answers = stored.apply(
            &state,
            101,
            vec![
                stage("r2", 0, &before[..2]),
                stage("r3", 0, &before[2..]),
                finish("r2", 1, 2),
            ],
        );
        assert!(
            matches!(&answers[2], Outcome::Rejected { code, .. } if code == "conflict"),
            "{answers:?}"
        );
        assert_eq!(stored.state_pairs(), before);
        let unchanged = ClusterState::new();
        Stored(before.into_iter().collect()).load_into(&unchanged);
        assert_same_state(&state, &unchanged);
    }

    #[test]
    fn undecodable_records_are_refused_whole() {
        let (state, mut stored) = busy_state();
        let before = stored.pairs();
        let bad = vec![
            ("job/x".to_string(), b"{\"not\":\"a job\"}".to_vec()),
            ("node/n9".to_string(), before[0].1.clone()),
        ];
        let answers = stored.apply(&state, 100, vec![stage("r", 0, &bad), finish("r", 1, 2)]);
        assert!(
            matches!(&answers[1], Outcome::Rejected { code, message }
                if code == "bad_request" && message.contains("job/x")),
            "{answers:?}"
        );
        assert_eq!(stored.pairs(), before, "the staged part is gone too");
    }
}
