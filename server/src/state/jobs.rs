//! Jobs in the replicated state: the current spec of each job and its recent versions.

use super::command::Outcome;
use super::keys;
use gantry_api::error::codes;
use gantry_api::job::JobSpec;
use gantry_api::jobs::{job_status, Job, JobVersion};
use gantry_api::scheduling::UnplacedSlot;
use gantry_api::{Allocation, ClientState, JobType};
use gantry_raft_store::Writes;
use std::collections::BTreeMap;

/// How many versions of a job are kept for `history` and `revert`.
pub const VERSIONS_KEPT: usize = 10;

#[derive(Default)]
pub struct Jobs {
    pub current: BTreeMap<String, Job>,
    pub versions: BTreeMap<String, BTreeMap<u64, JobVersion>>,
}

impl Jobs {
    /// The spec of one kept version of a job.
    pub fn spec_at(&self, id: &str, version: u64) -> Option<&JobSpec> {
        self.versions
            .get(id)?
            .get(&version)
            .map(|record| &record.spec)
    }

    /// Registers a job, or a new version of it if the spec changed.
    pub fn register(
        &mut self,
        index: u64,
        spec: JobSpec,
        submitted_at_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        let id = spec.id.clone();
        let previous = self.current.get(&id);
        if let Some(job) = previous {
            if job.spec == spec {
                return Outcome::JobRegistered {
                    id,
                    version: job.version,
                    changed: false,
                    deployment_id: None,
                };
            }
        }
        let version = previous.map_or(1, |job| job.version + 1);
        let create_index = previous.map_or(index, |job| job.create_index);
        let job = Job {
            spec: spec.clone(),
            version,
            status: job_status::PENDING.to_string(),
            submitted_at_ms,
            create_index,
            modify_index: index,
            // What did not fit stays shown until the scheduler has looked at the new version.
            unplaced: previous.map(|job| job.unplaced.clone()).unwrap_or_default(),
        };
        let record = JobVersion {
            version,
            spec,
            submitted_at_ms,
            index,
            stable: false,
        };
        writes.put(keys::job(&id), to_json(&job));
        writes.put(keys::job_version(&id, version), to_json(&record));
        self.current.insert(id.clone(), job);

        let history = self.versions.entry(id.clone()).or_default();
        history.insert(version, record);
        while history.len() > VERSIONS_KEPT {
            let (oldest, _) = history.pop_first().expect("history is not empty");
            writes.delete(keys::job_version(&id, oldest));
        }
        Outcome::JobRegistered {
            id,
            version,
            changed: true,
            deployment_id: None,
        }
    }

    pub fn scale(
        &mut self,
        index: u64,
        id: String,
        replicas: u32,
        submitted_at_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        let Some(job) = self.current.get(&id) else {
            return not_found(&id);
        };
        let mut spec = job.spec.clone();
        spec.replicas = replicas;
        self.register(index, spec, submitted_at_ms, writes)
    }

    pub fn delete(&mut self, id: String, writes: &mut Writes) -> Outcome {
        if self.current.remove(&id).is_none() {
            return not_found(&id);
        }
        writes.delete(keys::job(&id));
        for version in self.versions.remove(&id).unwrap_or_default().into_keys() {
            writes.delete(keys::job_version(&id, version));
        }
        Outcome::JobDeleted { id }
    }

    /// Registers an earlier version's spec as the newest version.
    pub fn revert(
        &mut self,
        index: u64,
        id: String,
        version: u64,
        submitted_at_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        if !self.current.contains_key(&id) {
            return not_found(&id);
        }
        let Some(record) = self.versions.get(&id).and_then(|h| h.get(&version)) else {
            return Outcome::Rejected {
                code: codes::NOT_FOUND.to_string(),
                message: format!(
                    "job `{id}` has no version {version} (only the last {VERSIONS_KEPT} are kept)"
                ),
            };
        };
        let spec = record.spec.clone();
        self.register(index, spec, submitted_at_ms, writes)
    }
}

impl Jobs {
    pub fn is_stable(&self, id: &str, version: u64) -> bool {
        self.versions
            .get(id)
            .and_then(|h| h.get(&version))
            .is_some_and(|v| v.stable)
    }

    /// A deployment of the version succeeded: `auto_revert` may go back to it.
    pub fn mark_stable(&mut self, id: &str, version: u64, writes: &mut Writes) {
        let Some(record) = self.versions.get_mut(id).and_then(|h| h.get_mut(&version)) else {
            return;
        };
        if !record.stable {
            record.stable = true;
            writes.put(keys::job_version(id, version), to_json(&*record));
        }
    }

    /// Records the scheduler's unplaced instances of a job. False for an unknown job
    /// (deleted meanwhile): nothing is written. Not a spec change: the indexes stay.
    pub fn set_placement(
        &mut self,
        id: &str,
        unplaced: Vec<UnplacedSlot>,
        writes: &mut Writes,
    ) -> bool {
        let Some(job) = self.current.get_mut(id) else {
            return false;
        };
        if job.unplaced != unplaced {
            job.unplaced = unplaced;
            writes.put(keys::job(id), to_json(&*job));
        }
        true
    }
}

/// A job's status (one of [`job_status`]) from its unplaced instances and allocations.
pub fn status<'a>(job: &Job, allocations: impl Iterator<Item = &'a Allocation>) -> &'static str {
    let mut live = std::collections::BTreeSet::new();
    let mut complete = std::collections::BTreeSet::new();
    for a in allocations {
        if a.reserves_resources() {
            live.insert(a.slot);
        } else if a.client_state == ClientState::Complete {
            complete.insert(a.slot);
        }
    }
    if !job.unplaced.is_empty() {
        return if live.is_empty() {
            job_status::BLOCKED
        } else {
            job_status::DEGRADED
        };
    }
    let replicas = job.spec.replicas;
    match job.spec.kind {
        JobType::Global if live.is_empty() => job_status::PENDING,
        JobType::Global => job_status::RUNNING,
        _ if replicas == 0 => job_status::STOPPED,
        JobType::Batch if (0..replicas).all(|s| complete.contains(&s)) => job_status::COMPLETE,
        JobType::Batch if (0..replicas).all(|s| live.contains(&s) || complete.contains(&s)) => {
            job_status::RUNNING
        }
        _ if (0..replicas).all(|s| live.contains(&s)) => job_status::RUNNING,
        _ => job_status::PENDING,
    }
}

pub fn not_found(id: &str) -> Outcome {
    Outcome::Rejected {
        code: codes::NOT_FOUND.to_string(),
        message: format!("no job with id `{id}`"),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records always serialise")
}
