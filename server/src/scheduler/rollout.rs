//! Rolling updates, as the reconciler sees them: which allocations run an outdated
//! version, when a new one counts as healthy, and how far the job's deployment has got.
//!
//! Pure, like the rest of reconcile: the deployment record, the job's allocations and
//! the time go in; a [`DeploymentUpdate`] (only when something changed) and the time to
//! look again come out. The state machine applies the update (`state::deployments`),
//! so every manager, and the next leader, agrees on where the rollout is.
//!
//! - An allocation is **outdated** when its version's tasks differ from the current
//!   version's (a version no longer kept counts as different). One whose version only
//!   differs elsewhere (replicas, priority) is moved to the current version in place.
//! - A new allocation is **ready** once it has been running and healthy (the agent's
//!   report; a task without a check is healthy while it runs) for `min_healthy`.
//! - It **fails** the deployment when it fails, or when it is not ready by
//!   `healthy_deadline` after it was placed.
//! - The deployment **succeeds** when every slot holds exactly one allocation, current
//!   and ready, and no canary waits for promotion.

use std::collections::BTreeSet;

use gantry_api::{Allocation, ClientState, Deployment, DeploymentStatus, UpdateStrategy};

use crate::state::deployments::DeploymentUpdate;
use crate::state::State;

/// The versions of a job whose tasks equal `tasks` (their allocations need no
/// replacement), from the versions the state keeps.
pub fn versions_with_tasks(
    state: &State,
    job_id: &str,
    tasks: &[gantry_api::TaskSpec],
) -> BTreeSet<u64> {
    state
        .jobs
        .versions
        .get(job_id)
        .into_iter()
        .flat_map(|history| history.values())
        .filter(|v| v.spec.tasks == tasks)
        .map(|v| v.version)
        .collect()
}

/// Has `a` been running and healthy for `min_healthy` at `now_ms`?
pub fn is_ready(a: &Allocation, strategy: &UpdateStrategy, now_ms: u64) -> bool {
    a.client_state == ClientState::Running
        && a.healthy_since_ms
            .is_some_and(|since| now_ms >= since + min_healthy_ms(strategy))
}

/// When `a`, not ready yet, next needs a look: when it will have been healthy long
/// enough, or its deadline passes.
pub fn next_look(a: &Allocation, strategy: &UpdateStrategy) -> u64 {
    let deadline = a.created_at_ms + deadline_ms(strategy);
    match a.healthy_since_ms {
        Some(since) => (since + min_healthy_ms(strategy)).min(deadline),
        None => deadline,
    }
}

fn min_healthy_ms(strategy: &UpdateStrategy) -> u64 {
    strategy.min_healthy.as_duration().as_millis() as u64
}

fn deadline_ms(strategy: &UpdateStrategy) -> u64 {
    strategy.healthy_deadline.as_duration().as_millis() as u64
}

/// Why `a`, placed by the deployment, fails it; `None` while it may still make it.
pub fn failure(a: &Allocation, strategy: &UpdateStrategy, now_ms: u64) -> Option<String> {
    if a.client_state == ClientState::Failed {
        let why = if a.message.is_empty() {
            String::new()
        } else {
            format!(": {}", a.message)
        };
        return Some(format!("allocation {} failed{why}", a.id));
    }
    let live = crate::scheduler::reconcile::is_live(a);
    if live && !is_ready(a, strategy, now_ms) && now_ms > a.created_at_ms + deadline_ms(strategy) {
        return Some(format!(
            "allocation {} was not healthy for {} within {}",
            a.id, strategy.min_healthy, strategy.healthy_deadline
        ));
    }
    None
}

/// What the reconciler saw of the job this round, for [`progress`].
pub struct Observed<'a> {
    /// Every allocation of the job the state holds.
    pub allocations: &'a [Allocation],
    /// Allocations placed this round for the deployment.
    pub placed_now: u32,
    /// Slots with a ready allocation of the current tasks (placed by the deployment, or
    /// moved to its version in place).
    pub healthy_slots: u32,
    /// Every slot holds one current, ready allocation, and nothing else of the job
    /// runs (after this round's stops and with no placement this round).
    pub complete: bool,
    /// The canaries were promoted this round (`auto_promote`).
    pub promoted_now: bool,
}

/// The deployment's progress as of `now_ms`, when it differs from the record.
pub fn progress(
    deployment: &Deployment,
    seen: &Observed<'_>,
    now_ms: u64,
) -> Option<DeploymentUpdate> {
    let strategy = &deployment.strategy;
    let mine: Vec<&Allocation> = seen
        .allocations
        .iter()
        .filter(|a| a.deployment_id.as_deref() == Some(deployment.id.as_str()))
        .collect();
    let placed = mine.len() as u32 + seen.placed_now;
    let healthy = seen.healthy_slots;
    let failures: Vec<String> = mine
        .iter()
        .filter_map(|a| failure(a, strategy, now_ms))
        .collect();
    let promoted = deployment.promoted || seen.promoted_now;
    let awaits_promotion = strategy.canary > 0 && !promoted;
    let (status, description) = if let Some(first) = failures.first() {
        (DeploymentStatus::Failed, first.clone())
    } else if seen.complete && !awaits_promotion {
        (
            DeploymentStatus::Successful,
            format!(
                "{} of {} instances healthy",
                deployment.desired_total, deployment.desired_total
            ),
        )
    } else if awaits_promotion {
        let canaries = mine
            .iter()
            .filter(|a| a.canary && crate::scheduler::reconcile::is_live(a))
            .count();
        let ready = mine
            .iter()
            .filter(|a| a.canary && is_ready(a, strategy, now_ms))
            .count();
        let waiting = if ready as u32 >= strategy.canary {
            "waiting for promotion"
        } else {
            "waiting for them to be healthy"
        };
        (
            deployment.status,
            format!(
                "{canaries} of {} canaries placed, {ready} healthy: {waiting}",
                strategy.canary
            ),
        )
    } else {
        let verb = if deployment.status == DeploymentStatus::Paused {
            "paused"
        } else {
            "rolling"
        };
        (
            deployment.status,
            format!(
                "{verb}: {healthy} of {} instances healthy",
                deployment.desired_total
            ),
        )
    };
    let update = DeploymentUpdate {
        id: deployment.id.clone(),
        status,
        description,
        placed,
        healthy,
        unhealthy: failures.len() as u32,
        promoted: seen.promoted_now,
    };
    let unchanged = update.status == deployment.status
        && update.description == deployment.description
        && update.placed == deployment.placed
        && update.healthy == deployment.healthy
        && update.unhealthy == deployment.unhealthy
        && !update.promoted;
    (!unchanged).then_some(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{GDuration, Health, Resources};

    fn strategy() -> UpdateStrategy {
        UpdateStrategy {
            min_healthy: GDuration::from_secs(5),
            healthy_deadline: GDuration::from_secs(60),
            ..UpdateStrategy::default()
        }
    }

    fn alloc(id: &str, healthy_since: Option<u64>, created: u64) -> Allocation {
        let resources = Resources {
            cpu_millis: 1,
            memory_mb: 1,
        };
        Allocation {
            client_state: ClientState::Running,
            health: Health::Healthy,
            deployment_id: Some("web-v2-9".into()),
            healthy_since_ms: healthy_since,
            created_at_ms: created,
            modified_at_ms: created,
            ..Allocation::new(id, "web", 2, 0, "n1", resources)
        }
    }

    #[test]
    fn ready_after_min_healthy_and_failed_after_the_deadline() {
        let s = strategy();
        let a = alloc("a", Some(10_000), 9_000);
        assert!(!is_ready(&a, &s, 14_999));
        assert!(is_ready(&a, &s, 15_000));
        assert_eq!(next_look(&a, &s), 15_000);

        let never = alloc("b", None, 9_000);
        assert_eq!(next_look(&never, &s), 69_000);
        assert_eq!(failure(&never, &s, 69_000), None);
        assert_eq!(
            failure(&never, &s, 69_001).unwrap(),
            "allocation b was not healthy for 5s within 1m"
        );
    }
}
