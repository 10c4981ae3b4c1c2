//! The reconcile loop: makes what runs on this node match the managers' set.
//!
//! It owns one runner per allocation of the set. A complete set replaces everything the
//! loop knew: runners of allocations not in it are removed, new ones are started, and
//! any task found in the engine that no runner owns is removed (a leftover of an
//! allocation that was lost or stopped while the agent was away). An increment adds,
//! updates and removes runners one by one.
//!
//! Statelessness: when the agent starts it lists the engine's tasks (by label) before it
//! has heard from the managers, and touches nothing until the first complete set. Then
//! the tasks of allocations in the set are adopted by their runners — no restart — and
//! the rest removed. While no manager is reachable, no set arrives, and everything keeps
//! running as it is.

use std::collections::HashMap;
use std::sync::Arc;

use gantry_api::job::JobSpec;
use gantry_api::session::{AllocationReport, JobVersionSpec, SessionMessage};
use gantry_api::{Allocation, DesiredState};
use tokio::sync::mpsc;

use crate::driver::FoundTask;
use crate::runner::{self, Order, RunnerContext, RunnerHandle};

pub struct Reconciler {
    context: Arc<RunnerContext>,
    runners: HashMap<String, RunnerHandle>,
    /// Job specs by (job id, version), as the session sent them.
    specs: HashMap<(String, u64), Arc<JobSpec>>,
    /// The engine's tasks when the agent started, until the first complete set.
    found_at_start: Option<Vec<FoundTask>>,
}

impl Reconciler {
    pub fn new(context: Arc<RunnerContext>, found_at_start: Vec<FoundTask>) -> Self {
        Reconciler {
            context,
            runners: HashMap::new(),
            specs: HashMap::new(),
            found_at_start: Some(found_at_start),
        }
    }

    /// Applies session messages until the session loop goes away.
    pub async fn run(&mut self, mut messages: mpsc::Receiver<SessionMessage>) {
        while let Some(message) = messages.recv().await {
            self.apply(message).await;
        }
    }

    pub async fn apply(&mut self, message: SessionMessage) {
        match message {
            SessionMessage::Complete {
                index,
                allocations,
                jobs,
            } => {
                tracing::info!(index, allocations = allocations.len(), "complete set");
                self.specs.clear();
                self.learn(jobs);
                self.complete(allocations).await;
            }
            SessionMessage::Increment {
                index,
                upserts,
                removals,
                jobs,
            } => {
                tracing::debug!(
                    index,
                    upserts = upserts.len(),
                    removals = removals.len(),
                    "increment"
                );
                self.learn(jobs);
                let leaving: Vec<RunnerHandle> = removals
                    .iter()
                    .filter_map(|id| self.runners.remove(id))
                    .collect();
                tokio::spawn(remove_runners(leaving));
                for allocation in upserts {
                    self.upsert(allocation, &mut Vec::new());
                }
            }
            SessionMessage::Keepalive => {}
        }
    }

    fn learn(&mut self, jobs: Vec<JobVersionSpec>) {
        for job in jobs {
            self.specs
                .insert((job.spec.id.clone(), job.version), Arc::new(job.spec));
        }
    }

    async fn complete(&mut self, allocations: Vec<Allocation>) {
        let mut found = match self.found_at_start.take() {
            Some(found) => found,
            None => self.list_engines().await,
        };
        let wanted: HashMap<&str, &Allocation> =
            allocations.iter().map(|a| (a.id.as_str(), a)).collect();
        let gone: Vec<String> = self
            .runners
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .cloned()
            .collect();
        let leaving = gone
            .iter()
            .filter_map(|id| self.runners.remove(id))
            .collect();
        tokio::spawn(remove_runners(leaving));
        for allocation in allocations {
            self.upsert(allocation, &mut found);
        }
        self.remove_unowned(found);
    }

    /// A new or changed allocation: start its runner, or pass the news to it.
    /// `found` holds engine tasks not yet claimed; this allocation's are taken from it.
    fn upsert(&mut self, allocation: Allocation, found: &mut Vec<FoundTask>) {
        let mine: Vec<FoundTask> = {
            let (mine, rest) = std::mem::take(found)
                .into_iter()
                .partition(|f| f.alloc_id == allocation.id);
            *found = rest;
            mine
        };
        if let Some(runner) = self.runners.get(&allocation.id) {
            if !runner.is_finished() {
                runner.order(Order::Update(Box::new(allocation)));
                return;
            }
        }
        if allocation.desired == DesiredState::Stop && mine.is_empty() {
            // Nothing of it runs here: it is stopped already.
            self.context.reports.record(AllocationReport {
                id: allocation.id.clone(),
                client_state: gantry_api::ClientState::Complete,
                health: gantry_api::Health::Unknown,
                restart_count: allocation.restart_count,
                message: "stopped (it was not running on the node)".to_string(),
            });
            return;
        }
        let spec = self
            .specs
            .get(&(allocation.job_id.clone(), allocation.job_version))
            .cloned();
        let id = allocation.id.clone();
        let runner = runner::spawn(self.context.clone(), allocation, spec, mine);
        self.runners.insert(id, runner);
    }

    /// Removes engine tasks no runner owns — leftovers of allocations the managers no
    /// longer assign here — all at once and in the background, so that new work is not
    /// held up by their stop grace.
    fn remove_unowned(&self, found: Vec<FoundTask>) {
        let grace = self.context.stop_grace;
        let mut removals = Vec::new();
        for task in found {
            if self.runners.contains_key(&task.alloc_id) {
                continue;
            }
            let Some(driver) = self
                .context
                .drivers
                .iter()
                .find(|d| d.name() == task.handle.driver)
                .cloned()
            else {
                continue;
            };
            tracing::info!(alloc = %task.alloc_id, task = %task.task, id = %task.handle.id,
                "removing a task no longer assigned to this node");
            removals.push(async move {
                if let Err(e) = driver.stop(&task.handle, grace).await {
                    tracing::warn!(id = %task.handle.id, error = %e, "cannot stop a stale task");
                }
                if let Err(e) = driver.remove(&task.handle).await {
                    tracing::warn!(id = %task.handle.id, error = %e, "cannot remove a stale task");
                }
            });
        }
        if !removals.is_empty() {
            tokio::spawn(futures::future::join_all(removals));
        }
    }

    /// Every task the drivers run for this node. An engine that cannot be listed
    /// contributes nothing (so nothing of it is removed).
    async fn list_engines(&self) -> Vec<FoundTask> {
        list_all(&self.context.drivers).await
    }

    /// Removes every runner and what it runs (used by `gantry dev` on exit).
    pub async fn remove_everything(&mut self) {
        remove_runners(self.runners.drain().map(|(_, r)| r).collect()).await;
    }
}

/// Removes runners (and what they run) concurrently. For allocations that left the set
/// it runs in the background: their ids never come back, so nothing waits on them.
async fn remove_runners(runners: Vec<RunnerHandle>) {
    futures::future::join_all(runners.into_iter().map(RunnerHandle::remove)).await;
}

/// Every task the drivers run for this node, logging (and skipping) engines that fail.
pub async fn list_all(drivers: &[Arc<dyn crate::driver::Driver>]) -> Vec<FoundTask> {
    let mut found = Vec::new();
    for driver in drivers {
        match driver.list().await {
            Ok(tasks) => found.extend(tasks),
            Err(e) => tracing::warn!(driver = driver.name(), error = %e, "cannot list tasks"),
        }
    }
    found
}
