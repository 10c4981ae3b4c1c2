//! Applies committed commands to the cluster state.
//!
//! The state lives in memory for fast reads and is mirrored, change by change, into the
//! store's key/value pairs (the `Writes` of each apply), which the store makes durable in
//! the same batch as the applied index. On start and after a snapshot is installed the
//! store hands every pair back through `load`, and the memory view is rebuilt from them.

use super::command::{decode_batch, encode_outcomes, Command, Outcome};
use super::keys;
use gantry_api::error::codes;
use gantry_api::job::JobSpec;
use gantry_api::jobs::{Job, JobVersion};
use gantry_raft_store::{Application, Writes};
use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard};

/// How many versions of a job are kept for `history` and `revert`.
pub const VERSIONS_KEPT: usize = 10;

/// The job status shown until the scheduler places the job.
const STATUS_PENDING: &str = "pending";

#[derive(Default)]
pub struct Jobs {
    pub current: BTreeMap<String, Job>,
    pub versions: BTreeMap<String, BTreeMap<u64, JobVersion>>,
}

#[derive(Default)]
pub struct ClusterState {
    jobs: RwLock<Jobs>,
}

impl ClusterState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A consistent view of every job, for readers.
    pub fn jobs(&self) -> RwLockReadGuard<'_, Jobs> {
        self.jobs.read().expect("state lock poisoned")
    }

    fn register(
        jobs: &mut Jobs,
        index: u64,
        spec: JobSpec,
        submitted_at_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        let id = spec.id.clone();
        let previous = jobs.current.get(&id);
        if let Some(job) = previous {
            if job.spec == spec {
                return Outcome::JobRegistered {
                    id,
                    version: job.version,
                    changed: false,
                };
            }
        }
        let version = previous.map_or(1, |job| job.version + 1);
        let create_index = previous.map_or(index, |job| job.create_index);
        let job = Job {
            spec: spec.clone(),
            version,
            status: STATUS_PENDING.to_string(),
            submitted_at_ms,
            create_index,
            modify_index: index,
        };
        let record = JobVersion {
            version,
            spec,
            submitted_at_ms,
            index,
        };
        writes.put(keys::job(&id), to_json(&job));
        writes.put(keys::job_version(&id, version), to_json(&record));
        jobs.current.insert(id.clone(), job);

        let history = jobs.versions.entry(id.clone()).or_default();
        history.insert(version, record);
        while history.len() > VERSIONS_KEPT {
            let (oldest, _) = history.pop_first().expect("history is not empty");
            writes.delete(keys::job_version(&id, oldest));
        }
        Outcome::JobRegistered {
            id,
            version,
            changed: true,
        }
    }

    fn delete(jobs: &mut Jobs, id: String, writes: &mut Writes) -> Outcome {
        if jobs.current.remove(&id).is_none() {
            return not_found(&id);
        }
        writes.delete(keys::job(&id));
        for version in jobs.versions.remove(&id).unwrap_or_default().into_keys() {
            writes.delete(keys::job_version(&id, version));
        }
        Outcome::JobDeleted { id }
    }

    fn revert(
        jobs: &mut Jobs,
        index: u64,
        id: String,
        version: u64,
        submitted_at_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        if !jobs.current.contains_key(&id) {
            return not_found(&id);
        }
        let Some(record) = jobs.versions.get(&id).and_then(|h| h.get(&version)) else {
            return Outcome::Rejected {
                code: codes::NOT_FOUND.to_string(),
                message: format!(
                    "job `{id}` has no version {version} (only the last {VERSIONS_KEPT} are kept)"
                ),
            };
        };
        let spec = record.spec.clone();
        Self::register(jobs, index, spec, submitted_at_ms, writes)
    }

    fn apply_one(jobs: &mut Jobs, index: u64, command: Command, writes: &mut Writes) -> Outcome {
        match command {
            Command::RegisterJob {
                spec,
                submitted_at_ms,
            } => Self::register(jobs, index, spec, submitted_at_ms, writes),
            Command::ScaleJob {
                id,
                replicas,
                submitted_at_ms,
            } => {
                let Some(job) = jobs.current.get(&id) else {
                    return not_found(&id);
                };
                let mut spec = job.spec.clone();
                spec.replicas = replicas;
                Self::register(jobs, index, spec, submitted_at_ms, writes)
            }
            Command::DeleteJob { id } => Self::delete(jobs, id, writes),
            Command::RevertJob {
                id,
                version,
                submitted_at_ms,
            } => Self::revert(jobs, index, id, version, submitted_at_ms, writes),
        }
    }
}

impl Application for ClusterState {
    fn load(&self, data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        let mut fresh = Jobs::default();
        for (key, value) in data {
            let key = String::from_utf8(key).map_err(|e| format!("non-UTF-8 state key: {e}"))?;
            if key.starts_with(keys::JOB_PREFIX) {
                let job: Job = serde_json::from_slice(&value)
                    .map_err(|e| format!("corrupt job record `{key}`: {e}"))?;
                fresh.current.insert(job.spec.id.clone(), job);
            } else if key.starts_with(keys::JOB_VERSION_PREFIX) {
                let record: JobVersion = serde_json::from_slice(&value)
                    .map_err(|e| format!("corrupt job version `{key}`: {e}"))?;
                fresh
                    .versions
                    .entry(record.spec.id.clone())
                    .or_default()
                    .insert(record.version, record);
            } else {
                return Err(format!("unknown state key `{key}`"));
            }
        }
        *self.jobs.write().expect("state lock poisoned") = fresh;
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
        let mut jobs = self.jobs.write().expect("state lock poisoned");
        let outcomes: Vec<Outcome> = commands
            .into_iter()
            .map(|command| Self::apply_one(&mut jobs, index, command, writes))
            .collect();
        encode_outcomes(&outcomes)
    }
}

fn not_found(id: &str) -> Outcome {
    Outcome::Rejected {
        code: codes::NOT_FOUND.to_string(),
        message: format!("no job with id `{id}`"),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{decode_outcomes, encode_batch};
    use gantry_api::job::parse_job_spec;

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
            matches!(&outcomes[0], Outcome::JobRegistered { id, version: 1, changed: true } if id == "a")
        );
        assert!(matches!(&outcomes[1], Outcome::JobRegistered { id, version: 1, .. } if id == "b"));
        assert!(matches!(&outcomes[2], Outcome::Rejected { code, .. } if code == "not_found"));
        assert_eq!(state.jobs().current["a"].create_index, 5);
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
        let jobs = state.jobs();
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
        assert_eq!(state.jobs().versions["a"].len(), VERSIONS_KEPT);
        assert!(!state.jobs().versions["a"].contains_key(&1));
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
        assert_eq!(state.jobs().current["a"].spec.replicas, 5);
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
            3,
            "the job record and both versions are deleted"
        );
        assert!(state.jobs().current.is_empty());
        assert!(state.jobs().versions.is_empty());
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
        let (before, after) = (state.jobs(), reloaded.jobs());
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
}
