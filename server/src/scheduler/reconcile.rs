//! Reconcile: one job's desired instances against what the state says runs, as a plan.
//!
//! Pure and synchronous like placement: the job (or its absence), its allocations, the
//! nodes and a [`ClusterView`] go in; stops, placements and the slots that fit nowhere
//! (with why) come out. The view is updated as it goes (placements reserved, stops
//! released) so the next job of the same round sees the room this one took. Time and
//! randomness (allocation ids) are parameters, so a test replays exactly what the leader
//! would do.
//!
//! The rules, by job type:
//!
//! - **service** keeps slots `0..replicas` each with one live allocation (desired `run`,
//!   not terminal): a missing slot is placed, a lost one replaced at once, a failed one
//!   replaced after a backoff derived from the slot's recent failures (so a crash loop
//!   does not hot-loop, and a new leader keeps the same pace); slots `>= replicas` are
//!   stopped, from the fullest nodes first;
//! - **batch** is a service whose `complete` slots are done and never placed again;
//! - **global** runs one allocation on every schedulable node that passes the job's
//!   drivers and constraints, and stops those on nodes that left that set (gone,
//!   ineligible, draining, no longer matching);
//! - a **deleted** job has every live allocation stopped;
//! - **new versions** (see `rollout`): an allocation whose version runs the current
//!   tasks is moved to the current version in place; an *outdated* one (other tasks) is
//!   replaced only by the job's running deployment — canaries first (beside the old
//!   ones, until promoted), then `max_parallel` slots at a time, stop-first (the old one
//!   stopped and the new one placed in the same plan) or start-first (the new one placed
//!   beside it, the old one stopped once the new one is ready). A global job replaces
//!   its outdated allocations stop-first, `max_parallel` nodes at a time. A batch job's
//!   outdated allocations run to their end;
//! - **drain**: an allocation on a draining node gets a replacement elsewhere
//!   (`replaces` names it, so the applier lets both hold the slot); the old one is stopped
//!   once the replacement is `running`, `max_parallel` slots at a time;
//! - **preemption**: a placement that fits nowhere may evict reservations of strictly
//!   lower priorities (lowest priority, then fewest victims, first; see
//!   `placement::preemption`). The victims are stopped in the same plan, each with a
//!   `preempted by job ...` reason, and the placement's reason says what it preempted.
//!   The view releases them at once, so a victim that the view no longer holds is not
//!   live for its own job in the rest of the round ([`holds_slot`]): its slot is missing,
//!   and stays unplaced (with why) while there is no room.

use std::collections::{BTreeMap, BTreeSet};

use gantry_api::{
    Allocation, ClientState, Constraint, ConstraintOperator, Deployment, DeploymentStatus,
    DesiredState, JobSpec, JobType, Node, PortAssignment, UpdateOrder, UpdateStrategy,
};
use rand::RngCore;
use serde::Serialize;

use super::placement::{Ask, ClusterView, CompiledConstraint, Eviction, Explanation, Placement};
use super::rollout::{self, Observed};
use crate::state::deployments::DeploymentUpdate;
use crate::state::plan::{AllocationStop, PlannedAllocation, VersionUpdate};

/// The first wait before a failed slot is placed again; doubled per recent failure.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// The longest wait between replacements of a failing slot.
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// Failures older than this no longer lengthen the backoff.
pub const FAILURE_WINDOW_MS: u64 = 10 * 60_000;

/// One job as the reconciler sees it.
pub struct JobInput<'a> {
    pub job_id: &'a str,
    /// The current spec and version; `None` once the job is deleted.
    pub job: Option<(&'a JobSpec, u64)>,
    /// Every allocation of the job the state holds, live or not.
    pub allocations: &'a [Allocation],
    /// The versions whose tasks are the current version's (see
    /// `rollout::versions_with_tasks`); an allocation of any other version is outdated.
    pub current_tasks: &'a BTreeSet<u64>,
    /// The job's running or paused deployment.
    pub deployment: Option<&'a Deployment>,
}

/// What reconciling one job decided.
#[derive(Debug, Default, Clone)]
pub struct Reconciled {
    pub stops: Vec<AllocationStop>,
    pub placements: Vec<PlannedAllocation>,
    pub version_updates: Vec<VersionUpdate>,
    pub deployment_update: Option<DeploymentUpdate>,
    pub unplaced: Vec<UnplacedSlot>,
    /// A failed slot waits for its backoff until then: evaluate the job again at that time.
    pub retry_at_ms: Option<u64>,
}

impl Reconciled {
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
            && self.placements.is_empty()
            && self.version_updates.is_empty()
            && self.deployment_update.is_none()
    }

    fn look_again_at(&mut self, at_ms: u64) {
        self.retry_at_ms = Some(self.retry_at_ms.map_or(at_ms, |t| t.min(at_ms)));
    }
}

/// A slot no node could take, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnplacedSlot {
    pub slot: Option<u32>,
    /// The node a global job's instance was meant for.
    pub node_id: Option<String>,
    /// The allocation that was to be migrated off a draining node.
    pub replaces: Option<String>,
    pub message: String,
    pub explanation: Option<Explanation>,
}

/// Does it hold (or is it about to hold) its slot?
pub fn is_live(a: &Allocation) -> bool {
    a.desired == DesiredState::Run && !a.client_state.is_terminal()
}

/// Is `a` live and still held in the view? A live allocation on a node the view knows
/// but which the view no longer holds was released this round by another job's
/// preemption (its stop is already in the plan): it no longer holds its slot.
pub fn holds_slot(view: &ClusterView, a: &Allocation) -> bool {
    is_live(a) && (view.node(&a.node_id).is_none() || view.node_of(&a.id).is_some())
}

/// Reconciles one job; see the module comment for the rules.
pub fn reconcile(
    input: &JobInput<'_>,
    nodes: &BTreeMap<String, Node>,
    view: &mut ClusterView,
    now_ms: u64,
    rng: &mut impl RngCore,
) -> Reconciled {
    let mut out = Reconciled::default();
    let Some((spec, version)) = input.job else {
        let live: Vec<&Allocation> = input
            .allocations
            .iter()
            .filter(|a| holds_slot(view, a))
            .collect();
        for a in live {
            stop(&mut out, view, a, "job deleted");
        }
        return out;
    };
    let deployment = input
        .deployment
        .filter(|d| d.status.is_active() && d.job_id == input.job_id);
    let mut r = Run {
        spec,
        version,
        current_tasks: input.current_tasks,
        deployment,
        strategy: deployment.map_or_else(|| spec.update.unwrap_or_default(), |d| d.strategy),
        nodes,
        view,
        now_ms,
        rng,
        out,
    };
    match spec.kind {
        JobType::Global => r.global(input.allocations),
        JobType::Service | JobType::Batch => r.counted(input.allocations),
    }
    r.out
}

struct Run<'a, R> {
    spec: &'a JobSpec,
    version: u64,
    current_tasks: &'a BTreeSet<u64>,
    deployment: Option<&'a Deployment>,
    strategy: UpdateStrategy,
    nodes: &'a BTreeMap<String, Node>,
    view: &'a mut ClusterView,
    now_ms: u64,
    rng: &'a mut R,
    out: Reconciled,
}

impl<R: RngCore> Run<'_, R> {
    /// Service and batch: slots `0..replicas`.
    fn counted(&mut self, allocations: &[Allocation]) {
        let replicas = self.spec.replicas;
        let held: Vec<&Allocation> = allocations
            .iter()
            .filter(|a| holds_slot(self.view, a))
            .collect();
        let mut live: BTreeMap<u32, Vec<&Allocation>> = BTreeMap::new();
        for a in held {
            if self.nodes.contains_key(&a.node_id) {
                live.entry(a.slot).or_default().push(a);
            } else {
                stop(&mut self.out, self.view, a, "its node is gone");
            }
        }

        // Scale down: whole slots past `replicas`, fullest nodes first.
        let mut excess: Vec<&Allocation> = live
            .range(replicas..)
            .flat_map(|(_, allocs)| allocs.iter().copied())
            .collect();
        excess.sort_by(|a, b| {
            fullness(self.view, &b.node_id)
                .total_cmp(&fullness(self.view, &a.node_id))
                .then(a.slot.cmp(&b.slot))
        });
        for a in excess {
            stop(&mut self.out, self.view, a, "scaled down");
        }

        let mut missing = Vec::new();
        let mut to_migrate = Vec::new();
        let mut migrating = 0u32;
        let mut outdated: Vec<&Allocation> = Vec::new();
        let mut settled = 0u32;
        let mut ready_slots = 0u32;
        let mut in_flight = 0u32;
        let rolling = self.spec.kind == JobType::Service;
        for slot in 0..replicas {
            let holders = live.get(&slot).map(Vec::as_slice).unwrap_or_default();
            self.move_in_place(holders);
            let (current, old): (Vec<&Allocation>, Vec<&Allocation>) =
                holders.iter().partition(|a| self.runs_current_tasks(a));
            ready_slots += u32::from(current.iter().any(|a| self.is_ready(a)));
            match (current.as_slice(), old.as_slice()) {
                ([], []) => {
                    if self.may_place(allocations, |a| a.slot == slot) {
                        missing.push(slot);
                    }
                }
                ([only], []) => {
                    if self.draining(&only.node_id) {
                        to_migrate.push(*only);
                    } else if self.is_ready(only) {
                        settled += 1;
                    } else {
                        in_flight += 1;
                        self.watch(only);
                    }
                }
                (several, []) => {
                    if !self.finish_migration(several) {
                        migrating += 1;
                    }
                }
                ([], [only]) if !rolling || self.draining(&only.node_id) => {
                    if self.draining(&only.node_id) {
                        to_migrate.push(*only);
                    }
                }
                ([], [only]) => outdated.push(*only),
                ([], several) => {
                    if !self.finish_migration(several) {
                        migrating += 1;
                    }
                }
                (current, old) => {
                    if !self.hand_over(current, old) {
                        in_flight += 1;
                    }
                }
            }
        }

        let Some(ask) = self.ask() else { return };
        let mut failed: Option<Explanation> = None;
        for slot in missing {
            if let Some(why) = &failed {
                self.unplaced(Some(slot), None, None, why.clone());
                continue;
            }
            if let Err(why) = self.place(&ask, slot, None) {
                self.unplaced(Some(slot), None, None, why.clone());
                failed = Some(why);
            }
        }

        let max_parallel = self.strategy.max_parallel.max(1);
        let room = max_parallel.saturating_sub(migrating) as usize;
        for old in to_migrate.into_iter().take(room) {
            if let Err(why) = self.place(&ask, old.slot, Some(old.id.clone())) {
                self.unplaced(Some(old.slot), None, Some(old.id.clone()), why);
            }
        }

        if rolling {
            let promoted_now = self.roll(&ask, allocations, &outdated, in_flight);
            let complete = outdated.is_empty()
                && migrating == 0
                && settled == replicas
                && self.out.placements.is_empty();
            self.conclude(allocations, ready_slots, complete, promoted_now);
        }
    }

    /// Replaces outdated slots for the running deployment: its canaries first, then
    /// `max_parallel` slots at a time less those still in flight. True when the
    /// canaries were promoted now (`auto_promote`).
    fn roll(
        &mut self,
        ask: &Ask,
        allocations: &[Allocation],
        outdated: &[&Allocation],
        in_flight: u32,
    ) -> bool {
        let Some(deployment) = self.deployment else {
            return false;
        };
        if deployment.status != DeploymentStatus::Running {
            return false;
        }
        if outdated.is_empty() {
            // Nothing old to try canaries against (a job's first version): there is
            // nothing to promote them over.
            let canaries = allocations
                .iter()
                .any(|a| a.canary && a.deployment_id.as_deref() == Some(deployment.id.as_str()));
            return deployment.awaits_promotion() && !canaries;
        }
        let mut promoted_now = false;
        if deployment.awaits_promotion() {
            let canaries: Vec<&Allocation> = allocations
                .iter()
                .filter(|a| {
                    a.canary
                        && is_live(a)
                        && a.deployment_id.as_deref() == Some(deployment.id.as_str())
                })
                .collect();
            // More canaries than instances would wait forever: at most one per slot.
            let wanted = self.strategy.canary.min(self.spec.replicas) as usize;
            let ready = canaries.iter().filter(|a| self.is_ready(a)).count();
            if self.strategy.auto_promote && canaries.len() >= wanted && ready >= wanted {
                promoted_now = true;
            } else {
                // Canaries take the first outdated slots, beside the old holders.
                let missing = wanted.saturating_sub(canaries.len());
                for old in outdated.iter().take(missing) {
                    self.place_new(ask, old, true);
                }
                return false;
            }
        }
        let room = self.strategy.max_parallel.max(1).saturating_sub(in_flight) as usize;
        for old in outdated.iter().take(room) {
            self.place_new(ask, old, false);
        }
        promoted_now
    }

    /// One new-version allocation for `old`'s slot: beside it (a canary, or start-first),
    /// or in its place (stop-first: `old` is stopped in the same plan).
    fn place_new(&mut self, ask: &Ask, old: &Allocation, canary: bool) {
        let beside = canary || self.strategy.order == UpdateOrder::StartFirst;
        let replaces = if beside {
            Some(old.id.clone())
        } else {
            let reason = format!("replaced by version {}", self.version);
            stop(&mut self.out, self.view, old, &reason);
            None
        };
        let placed = self.out.placements.len();
        if let Err(why) = self.place(ask, old.slot, replaces.clone()) {
            self.unplaced(Some(old.slot), None, replaces, why);
            return;
        }
        if let Some(p) = self.out.placements.get_mut(placed) {
            p.allocation.canary = canary;
        }
    }

    /// A slot held by current and outdated allocations: once the newest current one is
    /// ready (and not a canary waiting for promotion), the others are stopped. True when
    /// the hand-over is over.
    fn hand_over(&mut self, current: &[&Allocation], old: &[&Allocation]) -> bool {
        let newest = current
            .iter()
            .max_by_key(|a| a.create_index)
            .expect("a hand-over has a current allocation");
        let waits_for_promotion = newest.canary
            && self.deployment.is_some_and(|d| {
                d.awaits_promotion() && newest.deployment_id.as_deref() == Some(d.id.as_str())
            });
        let ready = match self.deployment {
            Some(_) => self.is_ready(newest),
            // No deployment drives it (failed, or none): take over once it runs.
            None => newest.client_state == ClientState::Running,
        };
        if waits_for_promotion || !ready {
            self.watch(newest);
            return false;
        }
        let reason = format!("replaced by {}", newest.id);
        for a in current.iter().chain(old).filter(|a| a.id != newest.id) {
            stop(&mut self.out, self.view, a, &reason);
        }
        true
    }

    /// Records the deployment's progress (only when it changed).
    fn conclude(
        &mut self,
        allocations: &[Allocation],
        healthy_slots: u32,
        complete: bool,
        promoted_now: bool,
    ) {
        let Some(deployment) = self.deployment else {
            return;
        };
        let waiting: Vec<&Allocation> = allocations
            .iter()
            .filter(|a| {
                is_live(a)
                    && a.deployment_id.as_deref() == Some(deployment.id.as_str())
                    && !self.is_ready(a)
            })
            .collect();
        for a in waiting {
            self.watch(a);
        }
        let placed_now = self
            .out
            .placements
            .iter()
            .filter(|p| p.allocation.deployment_id.as_deref() == Some(deployment.id.as_str()))
            .count() as u32;
        let seen = Observed {
            allocations,
            placed_now,
            healthy_slots,
            complete,
            promoted_now,
        };
        self.out.deployment_update = rollout::progress(deployment, &seen, self.now_ms);
    }

    /// Does `a` run the current version's tasks (whatever its version number)?
    fn runs_current_tasks(&self, a: &Allocation) -> bool {
        a.job_version == self.version || self.current_tasks.contains(&a.job_version)
    }

    /// Moves allocations of an older version with the current tasks to the current
    /// version, in place.
    fn move_in_place(&mut self, holders: &[&Allocation]) {
        for a in holders {
            if a.job_version < self.version && self.runs_current_tasks(a) {
                self.out.version_updates.push(VersionUpdate {
                    id: a.id.clone(),
                    job_version: self.version,
                });
            }
        }
    }

    fn is_ready(&self, a: &Allocation) -> bool {
        rollout::is_ready(a, &self.strategy, self.now_ms)
    }

    /// Looks at the job again when `a` (of the running deployment) may become ready or
    /// miss its deadline.
    fn watch(&mut self, a: &Allocation) {
        if self.deployment.is_some() && is_live(a) {
            let at = rollout::next_look(a, &self.strategy);
            if at > self.now_ms {
                self.out.look_again_at(at);
            }
        }
    }

    /// Global: one per schedulable node that admits the job.
    fn global(&mut self, allocations: &[Allocation]) {
        let Some(ask) = self.ask() else { return };
        let targets: BTreeSet<&str> = self
            .nodes
            .values()
            .filter(|n| n.schedulable() && admits(&ask, n))
            .map(|n| n.id.as_str())
            .collect();
        let mut held: BTreeSet<&str> = BTreeSet::new();
        let mut used_slots: BTreeSet<u32> = BTreeSet::new();
        let mut live: Vec<&Allocation> = allocations
            .iter()
            .filter(|a| holds_slot(self.view, a))
            .collect();
        live.sort_by_key(|a| (a.create_index, a.slot));
        let mut outdated = Vec::new();
        let mut starting = 0u32;
        for a in live {
            if !targets.contains(a.node_id.as_str()) {
                stop(&mut self.out, self.view, a, "node no longer takes this job");
            } else if !held.insert(&a.node_id) || !used_slots.insert(a.slot) {
                stop(
                    &mut self.out,
                    self.view,
                    a,
                    "duplicate instance on the node",
                );
            } else if !self.runs_current_tasks(a) {
                outdated.push(a);
            } else {
                self.move_in_place(&[a]);
                starting += u32::from(a.client_state != ClientState::Running);
            }
        }
        // A new version: `max_parallel` nodes at a time, each replaced once the previous
        // batch runs (the stopped node's instance is placed again below).
        let room = self.strategy.max_parallel.max(1).saturating_sub(starting);
        for a in outdated.into_iter().take(room as usize) {
            let reason = format!("replaced by version {}", self.version);
            stop(&mut self.out, self.view, a, &reason);
            held.remove(a.node_id.as_str());
        }
        let mut next_slot = 0u32;
        for node_id in targets.difference(&held) {
            if !self.may_place(allocations, |a| a.node_id == *node_id) {
                continue;
            }
            while used_slots.contains(&next_slot) {
                next_slot += 1;
            }
            used_slots.insert(next_slot);
            let mut pinned = ask.clone();
            pinned.distinct_nodes = false;
            let pin = CompiledConstraint::new(&Constraint {
                attribute: "node.id".into(),
                operator: ConstraintOperator::Equal,
                value: (*node_id).to_string(),
            })
            .expect("an equality constraint always compiles");
            pinned.constraints.insert(0, pin);
            let alloc_id = self.alloc_id(next_slot);
            match self.view.place_with_preemption(&pinned, &alloc_id) {
                Ok((p, evicted)) => {
                    self.evict(next_slot, evicted);
                    self.push(&ask, alloc_id, next_slot, p, None);
                }
                Err(_) => {
                    let why = self.view.explain_node(&pinned, node_id);
                    self.unplaced(Some(next_slot), Some(node_id.to_string()), None, why);
                }
            }
        }
    }

    /// Two or more live allocations hold one slot: a migration. Once the newest one off a
    /// draining node runs, the others are stopped. True when the migration is over.
    fn finish_migration(&mut self, holders: &[&Allocation]) -> bool {
        let newest = holders
            .iter()
            .filter(|a| !self.draining(&a.node_id))
            .max_by_key(|a| a.create_index);
        let Some(newest) = newest.filter(|a| a.client_state == ClientState::Running) else {
            return false;
        };
        let reason = format!("replaced by {}", newest.id);
        for a in holders.iter().filter(|a| a.id != newest.id) {
            stop(&mut self.out, self.view, a, &reason);
        }
        true
    }

    /// May a slot with no live allocation be placed now? No when a batch slot completed
    /// (ran to its end while meant to run: one stopped by the managers or an operator did
    /// not finish its work); not yet when it failed recently (backoff; `retry_at_ms` says
    /// when).
    fn may_place(
        &mut self,
        allocations: &[Allocation],
        of_slot: impl Fn(&Allocation) -> bool,
    ) -> bool {
        let history = allocations.iter().filter(|a| of_slot(a));
        let mut failures = 0u32;
        let mut last_failure = 0u64;
        for a in history {
            match a.client_state {
                ClientState::Complete
                    if self.spec.kind == JobType::Batch && a.desired == DesiredState::Run =>
                {
                    return false
                }
                ClientState::Failed if a.modified_at_ms + FAILURE_WINDOW_MS > self.now_ms => {
                    failures += 1;
                    last_failure = last_failure.max(a.modified_at_ms);
                }
                _ => {}
            }
        }
        if failures == 0 {
            return true;
        }
        let due = last_failure.saturating_add(backoff_ms(failures));
        if self.now_ms >= due {
            return true;
        }
        self.out.retry_at_ms = Some(self.out.retry_at_ms.map_or(due, |t| t.min(due)));
        false
    }

    fn draining(&self, node_id: &str) -> bool {
        self.nodes.get(node_id).is_some_and(|n| n.drain)
    }

    /// The job's ask; a spec placement cannot use (e.g. overflowing resources) leaves
    /// every slot unplaced with the reason.
    fn ask(&mut self) -> Option<Ask> {
        match Ask::from_job(self.spec) {
            Ok(ask) => Some(ask),
            Err(e) => {
                self.out.unplaced.push(UnplacedSlot {
                    slot: None,
                    node_id: None,
                    replaces: None,
                    message: format!("the job cannot be placed: {e}"),
                    explanation: None,
                });
                None
            }
        }
    }

    /// Places one allocation of `slot`, preempting lower priorities if nothing fits.
    fn place(&mut self, ask: &Ask, slot: u32, replaces: Option<String>) -> Result<(), Explanation> {
        let alloc_id = self.alloc_id(slot);
        match self.view.place_with_preemption(ask, &alloc_id) {
            Ok((p, evicted)) => {
                self.evict(slot, evicted);
                self.push(ask, alloc_id, slot, p, replaces);
                Ok(())
            }
            Err(unplaced) => Err(unplaced.explanation),
        }
    }

    /// Stops what a placement of `slot` preempted (the view has released it already).
    fn evict(&mut self, slot: u32, evicted: Vec<Eviction>) {
        for e in evicted {
            self.out.stops.push(AllocationStop {
                id: e.alloc_id,
                reason: format!(
                    "preempted by job {} (priority {} > {}) for slot {slot}",
                    self.spec.id, self.spec.priority, e.priority
                ),
            });
        }
    }

    fn push(&mut self, ask: &Ask, id: String, slot: u32, p: Placement, replaces: Option<String>) {
        let allocation = Allocation {
            ports: assign_ports(self.spec, &p.host_ports),
            deployment_id: self.deployment.map(|d| d.id.clone()),
            placement_reason: p.reason,
            created_at_ms: self.now_ms,
            modified_at_ms: self.now_ms,
            ..Allocation::new(
                id,
                &self.spec.id,
                self.version,
                slot,
                p.node_id,
                ask.resources,
            )
        };
        self.out.placements.push(PlannedAllocation {
            allocation,
            replaces,
        });
    }

    fn unplaced(
        &mut self,
        slot: Option<u32>,
        node_id: Option<String>,
        replaces: Option<String>,
        why: Explanation,
    ) {
        self.out.unplaced.push(UnplacedSlot {
            slot,
            node_id,
            replaces,
            message: why.to_string(),
            explanation: Some(why),
        });
    }

    /// `{job}-{slot}-{8 hex digits}`: unique, and readable in logs.
    fn alloc_id(&mut self, slot: u32) -> String {
        format!("{}-{slot}-{:08x}", self.spec.id, self.rng.next_u32())
    }
}

fn stop(out: &mut Reconciled, view: &mut ClusterView, a: &Allocation, reason: &str) {
    view.release(&a.node_id, &a.id);
    out.stops.push(AllocationStop {
        id: a.id.clone(),
        reason: reason.to_string(),
    });
}

/// Wait after `failures` recent failures of a slot: 1 s, 2 s, 4 s ... up to a minute.
pub fn backoff_ms(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE_MS << doublings).min(BACKOFF_MAX_MS)
}

/// The node's fill on its dominant resource, 0.0..=1.0 (and above when over-committed).
fn fullness(view: &ClusterView, node_id: &str) -> f64 {
    let Some((reserved, capacity)) = view.node_usage(node_id) else {
        return 0.0;
    };
    let ratio = |used: u64, total: u64| {
        if total == 0 {
            1.0
        } else {
            used as f64 / total as f64
        }
    };
    ratio(reserved.cpu_millis, capacity.cpu_millis)
        .max(ratio(reserved.memory_mb, capacity.memory_mb))
}

/// Do the node's drivers and attributes admit the job (resources aside)?
fn admits(ask: &Ask, node: &Node) -> bool {
    let info = super::placement::NodeInfo::from(node);
    ask.drivers.iter().all(|d| info.drivers.contains(d))
        && ask.constraints.iter().all(|c| c.admits(&info))
}

/// Host ports in the order placement picks them (the tasks' static ports, then the
/// dynamic ones), matched back to the named ports of the tasks.
pub fn assign_ports(spec: &JobSpec, host_ports: &[u16]) -> Vec<PortAssignment> {
    let statics = spec
        .tasks
        .iter()
        .flat_map(|t| t.ports.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.host_port.is_some());
    let dynamics = spec
        .tasks
        .iter()
        .flat_map(|t| t.ports.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.host_port.is_none());
    statics
        .chain(dynamics)
        .zip(host_ports)
        .map(|((task, port), &host_port)| PortAssignment {
            task: task.name.clone(),
            name: port.name.clone(),
            host_port,
            container_port: port.container_port,
        })
        .collect()
}
