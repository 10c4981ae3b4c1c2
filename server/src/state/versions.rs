//! What a new job version means for its deployment, and what ending one means for the
//! job: the glue between `jobs` and `deployments`, applied in the state machine.
//!
//! - A version whose **tasks differ** from the running version's (or a job's first
//!   version) starts a deployment of it; one that changes **nothing that runs**
//!   (replicas, priority, the update block) keeps the active deployment going as its
//!   own, or — with none active — inherits the previous version's stability. Only
//!   service jobs roll out through deployments.
//! - A **successful** deployment makes its version stable.
//! - A **failed** deployment with `auto_revert` registers the newest stable version's
//!   spec again as a new version (which starts its own deployment), unless that spec
//!   runs the very tasks that just failed (a revert would fail the same way, forever).

use super::command::Outcome;
use super::deployments::{DeploymentAction, DeploymentUpdate};
use super::jobs::Jobs;
use super::machine::State;
use gantry_api::{Deployment, DeploymentStatus, JobType};
use gantry_raft_store::Writes;

impl State {
    /// Applies a command that may make a new version of `job_id` (register, scale,
    /// revert) and starts, retargets or reports its deployment.
    pub(super) fn register_version(
        &mut self,
        index: u64,
        job_id: &str,
        now_ms: u64,
        register: impl FnOnce(&mut Jobs, &mut Writes) -> Outcome,
        writes: &mut Writes,
    ) -> Outcome {
        let previous = self
            .jobs
            .current
            .get(job_id)
            .map(|job| (job.version, job.spec.tasks.clone()));
        let mut outcome = register(&mut self.jobs, writes);
        let Outcome::JobRegistered {
            id,
            version,
            changed,
            deployment_id,
        } = &mut outcome
        else {
            return outcome;
        };
        if !*changed {
            *deployment_id = self.deployments.active(id).map(|d| d.id.clone());
            return outcome;
        }
        let spec = &self.jobs.current[id.as_str()].spec;
        if spec.kind != JobType::Service {
            let reason = format!("version {version} is not a service");
            self.deployments.cancel(index, id, &reason, now_ms, writes);
            return outcome;
        }
        let tasks_changed = previous
            .as_ref()
            .is_none_or(|(_, tasks)| *tasks != spec.tasks);
        if tasks_changed {
            let started = self
                .deployments
                .start(index, spec, *version, now_ms, writes);
            *deployment_id = Some(started);
            return outcome;
        }
        *deployment_id = self.deployments.retarget(index, spec, *version, writes);
        if deployment_id.is_none() {
            let previous_version = previous.map(|(v, _)| v).unwrap_or_default();
            if self.jobs.is_stable(id, previous_version) {
                self.jobs.mark_stable(id, *version, writes);
            }
        }
        outcome
    }

    /// The scheduler's conclusions about deployments, sent in a plan.
    pub(super) fn update_deployments(
        &mut self,
        index: u64,
        updates: Vec<DeploymentUpdate>,
        now_ms: u64,
        writes: &mut Writes,
    ) {
        for update in updates {
            if let Some(ended) = self.deployments.update(index, update, now_ms, writes) {
                self.deployment_ended(index, ended, now_ms, writes);
            }
        }
    }

    /// An operator's promote, pause, resume or fail.
    pub(super) fn act_on_deployment(
        &mut self,
        index: u64,
        id: &str,
        action: DeploymentAction,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        match self.deployments.act(index, id, action, now_ms, writes) {
            Ok(deployment) => {
                if deployment.status == DeploymentStatus::Failed {
                    self.deployment_ended(index, deployment, now_ms, writes);
                }
                let deployment = self.deployments.by_id[id].clone();
                Outcome::Deployment {
                    deployment: Box::new(deployment),
                }
            }
            Err(rejected) => rejected,
        }
    }

    fn deployment_ended(
        &mut self,
        index: u64,
        ended: Deployment,
        now_ms: u64,
        writes: &mut Writes,
    ) {
        match ended.status {
            DeploymentStatus::Successful => {
                self.jobs
                    .mark_stable(&ended.job_id, ended.job_version, writes);
            }
            DeploymentStatus::Failed if ended.strategy.auto_revert => {
                self.revert_failed(index, &ended, now_ms, writes);
            }
            _ => {}
        }
    }

    fn revert_failed(&mut self, index: u64, failed: &Deployment, now_ms: u64, writes: &mut Writes) {
        let job_id = failed.job_id.clone();
        let Some(job) = self.jobs.current.get(&job_id) else {
            return;
        };
        if job.version != failed.job_version {
            // A newer version took over already.
            return;
        }
        let stable = self.jobs.versions.get(&job_id).and_then(|history| {
            history
                .values()
                .rev()
                .find(|v| v.stable && v.version != failed.job_version)
        });
        let Some(stable) = stable else {
            self.deployments
                .note(&failed.id, "no stable version to revert to", writes);
            return;
        };
        if stable.spec.tasks == job.spec.tasks {
            let note = format!(
                "not reverted: stable version {} runs the same tasks",
                stable.version
            );
            self.deployments.note(&failed.id, &note, writes);
            return;
        }
        let target = stable.version;
        let outcome = self.register_version(
            index,
            &job_id,
            now_ms,
            |jobs, writes| jobs.revert(index, job_id.clone(), target, now_ms, writes),
            writes,
        );
        if let Outcome::JobRegistered { version, .. } = outcome {
            self.deployments
                .set_reverted_to(&failed.id, version, writes);
            let note = format!("reverted to version {target} as version {version}");
            self.deployments.note(&failed.id, &note, writes);
        }
    }
}
