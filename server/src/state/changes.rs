//! Which jobs and nodes each applied command touched, for the leader's scheduler.
//!
//! The scheduler re-evaluates what changed since its last pass; scanning the whole state
//! for that would cost O(state) per pass. Instead, applying a command records the ids it
//! touches here (derived from the command and the state just before it), and the
//! scheduler takes them. Only ids are kept, deduplicated; past a bound the record
//! collapses to "everything", so a follower, where nobody takes them, holds little.

use super::command::Command;
use super::machine::State;
use std::collections::BTreeSet;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Past this many ids, "everything changed" is cheaper to keep.
const MAX_IDS: usize = 100_000;

#[derive(Default)]
pub struct Changes {
    pending: Mutex<Touched>,
    notify: Notify,
}

/// Ids touched since the last [`Changes::take`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The whole state was replaced (startup, snapshot) or too much changed to list.
    pub all: bool,
    pub jobs: BTreeSet<String>,
    pub nodes: BTreeSet<String>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        !self.all && self.jobs.is_empty() && self.nodes.is_empty()
    }
}

impl Changes {
    /// Takes what was touched since the last call.
    pub fn take(&self) -> Touched {
        std::mem::take(&mut *self.pending.lock().expect("changes lock poisoned"))
    }

    /// Resolves after something is recorded (at once if something was since the last
    /// wait).
    pub async fn changed(&self) {
        self.notify.notified().await
    }

    pub(crate) fn everything(&self) {
        let mut pending = self.pending.lock().expect("changes lock poisoned");
        *pending = Touched {
            all: true,
            ..Touched::default()
        };
        drop(pending);
        self.notify.notify_one();
    }

    /// Records what `command` is about to touch in `state`.
    pub(crate) fn record(&self, state: &State, command: &Command) {
        let mut pending = self.pending.lock().expect("changes lock poisoned");
        if pending.all {
            return;
        }
        let job = |pending: &mut Touched, id: &str| {
            pending.jobs.insert(id.to_string());
        };
        match command {
            Command::RegisterJob { spec, .. } => job(&mut pending, &spec.id),
            Command::ScaleJob { id, .. }
            | Command::DeleteJob { id }
            | Command::RevertJob { id, .. } => job(&mut pending, id),
            Command::RegisterNode { registration, .. } => {
                pending.nodes.insert(registration.name.clone());
            }
            Command::SetNodeStatus { node_id, .. }
            | Command::SetNodeEligibility { node_id, .. }
            | Command::SetNodeDrain { node_id, .. } => {
                pending.nodes.insert(node_id.clone());
            }
            Command::ApplyPlan { plan, .. } => {
                for p in &plan.placements {
                    job(&mut pending, &p.allocation.job_id);
                }
                let moved = plan.version_updates.iter().map(|u| &u.id);
                for id in plan.stops.iter().map(|s| &s.id).chain(moved) {
                    if let Some(a) = state.allocations.by_id.get(id) {
                        job(&mut pending, &a.job_id);
                    }
                }
                for update in &plan.deployment_updates {
                    if let Some(d) = state.deployments.by_id.get(&update.id) {
                        job(&mut pending, &d.job_id);
                    }
                }
            }
            // Written by the scheduler from what it just evaluated: nothing to look at again.
            Command::SetJobPlacement { .. } => {}
            // Access control places nothing.
            Command::Acl(_) => {}
            // A promoted or resumed deployment goes on; a failed one may revert.
            Command::DeploymentAction { id, .. } => {
                if let Some(d) = state.deployments.by_id.get(id) {
                    job(&mut pending, &d.job_id);
                }
            }
            // A stopped allocation frees its slot: the job may need a replacement.
            Command::StopAllocation { id, .. } => {
                if let Some(a) = state.allocations.by_id.get(id) {
                    job(&mut pending, &a.job_id);
                }
            }
            // Restarted in place by the agent: nothing for the scheduler.
            Command::RestartAllocation { .. } => {}
            // Staged records are not state yet; a restore replaces all of it.
            Command::StageRestore { .. } => {}
            Command::RestoreSnapshot { .. } => pending.all = true,
            Command::UpdateAllocations { updates, .. } => {
                for u in updates {
                    match state.allocations.by_id.get(&u.id) {
                        // Health gates deployments, so a change of health is one too.
                        Some(a) if a.client_state != u.client_state || a.health != u.health => {
                            job(&mut pending, &a.job_id)
                        }
                        _ => {}
                    }
                }
            }
        }
        if pending.jobs.len() + pending.nodes.len() > MAX_IDS {
            *pending = Touched {
                all: true,
                ..Touched::default()
            };
        }
        drop(pending);
        self.notify.notify_one();
    }
}
