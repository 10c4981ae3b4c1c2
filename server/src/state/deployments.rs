//! Deployments in the replicated state: one record per rollout of a job version.
//!
//! The leader's scheduler drives a deployment (which allocations to replace, when an
//! instance counts as healthy, when it is done or failed: `scheduler::rollout`) and
//! sends what it concluded as a [`DeploymentUpdate`] inside its plan. Everything that
//! decides what a deployment *is* happens here, in the state machine, so every manager
//! agrees and a new leader carries on from the record: starting one when a version
//! changes the tasks, retargeting the active one when a version changes nothing that
//! runs, cancelling it when the job goes, and the operator's promote, pause, resume and
//! fail. Reverting a failed deployment is the machine's job too (`machine.rs`), because
//! it registers a job version.
//!
//! A job has at most one active (running or paused) deployment. The newest
//! [`KEPT_PER_JOB`] of each job are kept; older finished ones are deleted.

use std::collections::{BTreeMap, BTreeSet};

pub use gantry_api::deployments::DeploymentAction;
use gantry_api::error::codes;
use gantry_api::{Deployment, DeploymentStatus, JobSpec};
use gantry_raft_store::Writes;
use serde::{Deserialize, Serialize};

use super::command::Outcome;
use super::keys::deployment as key;

/// Finished deployments kept per job, for `GET /v1/deployments`.
pub const KEPT_PER_JOB: usize = 10;

/// What the scheduler concluded about an active deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentUpdate {
    pub id: String,
    /// `Successful` or `Failed` to end it; `Running` (or `Paused`) to leave it going.
    pub status: DeploymentStatus,
    pub description: String,
    pub placed: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    /// The canaries were promoted by `auto_promote`.
    pub promoted: bool,
}

#[derive(Default)]
pub struct Deployments {
    pub by_id: BTreeMap<String, Deployment>,
    /// Each job's deployment ids, oldest first (ids end in the creating index).
    by_job: BTreeMap<String, BTreeSet<(u64, String)>>,
    /// The running or paused deployment of each job.
    active: BTreeMap<String, String>,
}

impl Deployments {
    /// The job's running or paused deployment.
    pub fn active(&self, job_id: &str) -> Option<&Deployment> {
        self.by_id.get(self.active.get(job_id)?)
    }

    /// The job's deployments, newest first.
    pub fn of_job(&self, job_id: &str) -> impl Iterator<Item = &Deployment> {
        self.by_job
            .get(job_id)
            .into_iter()
            .flat_map(|ids| ids.iter().rev())
            .filter_map(|(_, id)| self.by_id.get(id))
    }

    /// Adds or replaces a deployment in memory only (startup and snapshot load).
    pub fn load(&mut self, deployment: Deployment) {
        self.by_job
            .entry(deployment.job_id.clone())
            .or_default()
            .insert((deployment.create_index, deployment.id.clone()));
        if deployment.status.is_active() {
            self.active
                .insert(deployment.job_id.clone(), deployment.id.clone());
        } else if self.active.get(&deployment.job_id) == Some(&deployment.id) {
            self.active.remove(&deployment.job_id);
        }
        self.by_id.insert(deployment.id.clone(), deployment);
    }

    fn store(&mut self, deployment: Deployment, writes: &mut Writes) {
        writes.put(
            key(&deployment.id),
            serde_json::to_vec(&deployment).expect("deployments serialise"),
        );
        self.load(deployment);
    }

    /// Starts a deployment of `spec` as `version`, cancelling the job's active one.
    /// Returns its id.
    pub fn start(
        &mut self,
        index: u64,
        spec: &JobSpec,
        version: u64,
        now_ms: u64,
        writes: &mut Writes,
    ) -> String {
        let job_id = spec.id.as_str();
        self.cancel(
            index,
            job_id,
            &format!("superseded by version {version}"),
            now_ms,
            writes,
        );
        let deployment = fresh(spec, version, index, now_ms);
        let id = deployment.id.clone();
        self.store(deployment, writes);
        self.prune(job_id, writes);
        id
    }

    /// A version that changes nothing that runs: the active deployment (if any) goes on
    /// as the deployment of `version`, with its new size and settings.
    pub fn retarget(
        &mut self,
        index: u64,
        spec: &JobSpec,
        version: u64,
        writes: &mut Writes,
    ) -> Option<String> {
        let mut deployment = self.active(&spec.id)?.clone();
        deployment.job_version = version;
        deployment.desired_total = spec.replicas;
        // Canaries already promoted stay promoted.
        deployment.strategy = spec.update.unwrap_or_default();
        deployment.modify_index = index;
        let id = deployment.id.clone();
        self.store(deployment, writes);
        Some(id)
    }

    /// Ends the job's active deployment as cancelled (a newer version, or the job's
    /// removal, took over).
    pub fn cancel(
        &mut self,
        index: u64,
        job_id: &str,
        reason: &str,
        now_ms: u64,
        writes: &mut Writes,
    ) {
        if let Some(active) = self.active(job_id) {
            let mut deployment = active.clone();
            deployment.status = DeploymentStatus::Cancelled;
            deployment.description = reason.to_string();
            deployment.modified_at_ms = now_ms;
            deployment.modify_index = index;
            self.store(deployment, writes);
        }
    }

    /// Applies the scheduler's conclusion. Ignored unless the deployment is still active
    /// (a plan computed before an operator's pause or a newer version cannot undo them)
    /// and something changed. Returns the deployment when this update ended it
    /// (successful or failed).
    pub fn update(
        &mut self,
        index: u64,
        update: DeploymentUpdate,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Option<Deployment> {
        let existing = self.by_id.get(&update.id)?;
        if !existing.status.is_active() {
            return None;
        }
        let mut deployment = existing.clone();
        // The scheduler ends a deployment but never pauses or resumes one: an operator's
        // choice stands.
        if matches!(
            update.status,
            DeploymentStatus::Successful | DeploymentStatus::Failed
        ) {
            deployment.status = update.status;
        }
        deployment.description = update.description;
        deployment.placed = update.placed;
        deployment.healthy = update.healthy;
        deployment.unhealthy = update.unhealthy;
        deployment.promoted |= update.promoted;
        if &deployment == existing {
            return None;
        }
        deployment.modified_at_ms = now_ms;
        deployment.modify_index = index;
        let ended = !deployment.status.is_active();
        self.store(deployment.clone(), writes);
        ended.then_some(deployment)
    }

    /// An operator's promote, pause, resume or fail. `Ok` holds the deployment after the
    /// change.
    pub fn act(
        &mut self,
        index: u64,
        id: &str,
        action: DeploymentAction,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Result<Deployment, Outcome> {
        let Some(existing) = self.by_id.get(id) else {
            return Err(Outcome::Rejected {
                code: codes::NOT_FOUND.to_string(),
                message: format!("no deployment with id `{id}`"),
            });
        };
        if !existing.status.is_active() {
            return Err(conflict(format!(
                "deployment `{id}` is {}: only a running or paused deployment can change",
                existing.status.as_str()
            )));
        }
        let mut deployment = existing.clone();
        match action {
            DeploymentAction::Promote => {
                if deployment.strategy.canary == 0 {
                    return Err(conflict(format!(
                        "deployment `{id}` has no canaries to promote"
                    )));
                }
                if deployment.promoted {
                    return Err(conflict(format!("deployment `{id}` is already promoted")));
                }
                deployment.promoted = true;
                deployment.description = "canaries promoted".to_string();
            }
            DeploymentAction::Pause => {
                deployment.status = DeploymentStatus::Paused;
                deployment.description = "paused by an operator".to_string();
            }
            DeploymentAction::Resume => {
                deployment.status = DeploymentStatus::Running;
                deployment.description = "resumed by an operator".to_string();
            }
            DeploymentAction::Fail => {
                deployment.status = DeploymentStatus::Failed;
                deployment.description = "failed by an operator".to_string();
            }
        }
        deployment.modified_at_ms = now_ms;
        deployment.modify_index = index;
        self.store(deployment.clone(), writes);
        Ok(deployment)
    }

    /// Records the version an automatic revert registered.
    pub fn set_reverted_to(&mut self, id: &str, version: u64, writes: &mut Writes) {
        if let Some(existing) = self.by_id.get(id) {
            let mut deployment = existing.clone();
            deployment.reverted_to = Some(version);
            self.store(deployment, writes);
        }
    }

    /// Appends to a deployment's description (why a revert did not happen).
    pub fn note(&mut self, id: &str, note: &str, writes: &mut Writes) {
        if let Some(existing) = self.by_id.get(id) {
            let mut deployment = existing.clone();
            deployment.description = format!("{}; {note}", deployment.description);
            self.store(deployment, writes);
        }
    }

    /// Removes every deployment of a deleted job.
    pub fn remove_job(&mut self, job_id: &str, writes: &mut Writes) {
        self.active.remove(job_id);
        for (_, id) in self.by_job.remove(job_id).unwrap_or_default() {
            self.by_id.remove(&id);
            writes.delete(key(&id));
        }
    }

    /// Keeps the newest [`KEPT_PER_JOB`] of the job's deployments (the active one always).
    fn prune(&mut self, job_id: &str, writes: &mut Writes) {
        let Some(ids) = self.by_job.get_mut(job_id) else {
            return;
        };
        while ids.len() > KEPT_PER_JOB {
            let oldest = ids.pop_first().expect("more than KEPT_PER_JOB ids");
            if self.active.get(job_id) == Some(&oldest.1) {
                ids.insert(oldest);
                break;
            }
            self.by_id.remove(&oldest.1);
            writes.delete(key(&oldest.1));
        }
    }
}

/// The record of a deployment of `spec` as `version` starting at `index`:
/// `<job>-v<version>-<index>`, running, nothing placed yet.
pub fn fresh(spec: &JobSpec, version: u64, index: u64, now_ms: u64) -> Deployment {
    let strategy = spec.update.unwrap_or_default();
    let description = if strategy.canary > 0 {
        format!("placing {} canaries", strategy.canary)
    } else {
        "placing instances of the new version".to_string()
    };
    Deployment {
        id: format!("{}-v{version}-{index}", spec.id),
        job_id: spec.id.clone(),
        job_version: version,
        strategy,
        status: DeploymentStatus::Running,
        description,
        desired_total: spec.replicas,
        placed: 0,
        healthy: 0,
        unhealthy: 0,
        promoted: false,
        reverted_to: None,
        created_at_ms: now_ms,
        modified_at_ms: now_ms,
        create_index: index,
        modify_index: index,
    }
}

fn conflict(message: String) -> Outcome {
    Outcome::Rejected {
        code: codes::CONFLICT.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(deployments: &mut Deployments, index: u64, version: u64) -> String {
        let spec = gantry_api::parse_job_spec(
            br#"{"id":"web","replicas":4,"update":{"canary":1},
            "tasks":[{"name":"main","image":"busybox","resources":{"cpu_millis":1,"memory_mb":1}}]}"#,
            None,
        )
        .unwrap();
        deployments.start(index, &spec, version, 1_000, &mut Writes::default())
    }

    fn update(id: &str, status: DeploymentStatus) -> DeploymentUpdate {
        DeploymentUpdate {
            id: id.to_string(),
            status,
            description: "x".into(),
            placed: 1,
            healthy: 1,
            unhealthy: 0,
            promoted: false,
        }
    }

    #[test]
    fn a_new_version_cancels_the_active_deployment() {
        let mut deployments = Deployments::default();
        let first = started(&mut deployments, 10, 1);
        let second = started(&mut deployments, 20, 2);
        assert_eq!(
            deployments.by_id[&first].status,
            DeploymentStatus::Cancelled
        );
        assert_eq!(
            deployments.by_id[&first].description,
            "superseded by version 2"
        );
        assert_eq!(deployments.active("web").unwrap().id, second);
        let newest_first: Vec<&str> = deployments.of_job("web").map(|d| d.id.as_str()).collect();
        assert_eq!(newest_first, [second.as_str(), first.as_str()]);
    }

    #[test]
    fn a_paused_deployment_stays_paused_and_a_finished_one_ignores_updates() {
        let mut deployments = Deployments::default();
        let id = started(&mut deployments, 10, 1);
        let mut writes = Writes::default();
        deployments
            .act(11, &id, DeploymentAction::Pause, 0, &mut writes)
            .unwrap();
        deployments.update(12, update(&id, DeploymentStatus::Running), 0, &mut writes);
        assert_eq!(deployments.by_id[&id].status, DeploymentStatus::Paused);
        assert_eq!(deployments.by_id[&id].healthy, 1);

        let failed = deployments.update(13, update(&id, DeploymentStatus::Failed), 0, &mut writes);
        assert_eq!(failed.unwrap().status, DeploymentStatus::Failed);
        assert!(deployments.active("web").is_none());
        let ignored = deployments.update(
            14,
            update(&id, DeploymentStatus::Successful),
            0,
            &mut writes,
        );
        assert!(ignored.is_none());
        assert_eq!(deployments.by_id[&id].status, DeploymentStatus::Failed);
    }

    #[test]
    fn operator_actions_are_checked() {
        let mut deployments = Deployments::default();
        let id = started(&mut deployments, 10, 1);
        let mut writes = Writes::default();
        let promoted = deployments
            .act(11, &id, DeploymentAction::Promote, 0, &mut writes)
            .unwrap();
        assert!(promoted.promoted);
        let again = deployments.act(12, &id, DeploymentAction::Promote, 0, &mut writes);
        assert!(matches!(again, Err(Outcome::Rejected { code, .. }) if code == codes::CONFLICT));
        let unknown = deployments.act(12, "nope", DeploymentAction::Fail, 0, &mut writes);
        assert!(matches!(unknown, Err(Outcome::Rejected { code, .. }) if code == codes::NOT_FOUND));
    }

    #[test]
    fn only_the_newest_are_kept() {
        let mut deployments = Deployments::default();
        for version in 1..=(KEPT_PER_JOB as u64 + 3) {
            started(&mut deployments, version * 10, version);
        }
        assert_eq!(deployments.of_job("web").count(), KEPT_PER_JOB);
        assert_eq!(
            deployments.active("web").unwrap().job_version,
            KEPT_PER_JOB as u64 + 3
        );
    }
}
