//! The leader's scheduling loop: evaluations in, one plan per round out.
//!
//! Runs on every manager but works only while it leads. On taking the lead it loads the
//! whole state into a [`ClusterView`] and evaluates every job; after that it follows the
//! ids each applied command touched (`state::changes`): a touched job is re-evaluated, a
//! touched node is refreshed in the view and the jobs on it (plus every global job, and
//! every job with slots that fit nowhere) are re-evaluated. Evaluations of one job
//! coalesce: a job is in the dirty set once however often it changed.
//!
//! A round reconciles the dirty jobs (highest priority first, up to a cap of placements)
//! into ONE plan and commits it through Raft; while it commits, new changes pile up for
//! the next round. The plan's jobs come back as touched, so the next round checks them
//! against what was applied: a rejected placement is simply placed again (after a short,
//! growing delay so a disagreement between view and applier cannot spin). Failed slots
//! wait for their backoff on a timer. Nothing is replicated here: a new leader rebuilds
//! it all from the state.
//!
//! Two results are committed besides plans, each only when it changes so a steady cluster
//! costs no log entries: a job's unplaced instances with their explanations
//! (`SetJobPlacement`, compared by slot and message with what the state, or the command
//! in flight, already says), and the end of a drain — a draining node with no live
//! allocation left becomes ineligible and stops draining, once per node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gantry_api::jobs::Job;
use gantry_api::scheduling::UnplacedSlot as WireUnplaced;
use gantry_api::{Allocation, Deployment, Eligibility, JobType, Node};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::dry_run::to_wire;
use super::placement::{ClusterView, NodeInfo};
use super::reconcile::{is_live, reconcile, JobInput, UnplacedSlot};
use super::rollout;
use super::view;
use crate::manager::Manager;
use crate::state::plan::Plan;
use crate::state::{Command, Outcome, State};

/// Rounds start at most this often: changes arriving meanwhile join the next plan.
const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(5);
/// One plan holds at most this many placements (deployment and version updates count as
/// one each), which keeps its log entry near 128 KiB:
/// small enough to reach the followers within a heartbeat interval on a busy machine.
const MAX_PLACEMENTS_PER_ROUND: usize = 250;
/// After a failed commit (no quorum, lost the lead), wait this long.
const COMMIT_RETRY: Duration = Duration::from_millis(200);
/// First delay before a job whose placements were rejected is evaluated again.
const REJECTED_DELAY_MS: u64 = 20;

/// What the scheduler shares with the API: the slots it could not place, by job.
/// Leader-local (a follower's copy is empty), rebuilt by each new leader.
#[derive(Default, Clone)]
pub struct Shared {
    unplaced: Arc<Mutex<BTreeMap<String, Vec<UnplacedSlot>>>>,
}

impl Shared {
    pub fn unplaced(&self, job_id: &str) -> Vec<UnplacedSlot> {
        self.lock().get(job_id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<UnplacedSlot>>> {
        self.unplaced.lock().expect("scheduler lock poisoned")
    }
}

/// One job as a round reads it from the state (under the read lock, then used without).
struct Snapshot {
    id: String,
    job: Option<Job>,
    allocations: Vec<Allocation>,
    current_tasks: BTreeSet<u64>,
    deployment: Option<Deployment>,
}

impl Snapshot {
    fn read(state: &State, id: String) -> Snapshot {
        let job = state.jobs.current.get(&id).cloned();
        let current_tasks = job.as_ref().map_or_else(BTreeSet::new, |j| {
            rollout::versions_with_tasks(state, &id, &j.spec.tasks)
        });
        Snapshot {
            allocations: state.allocations.of_job(&id).cloned().collect(),
            deployment: state.deployments.active(&id).cloned(),
            current_tasks,
            job,
            id,
        }
    }
}

/// Starts the loop; it runs until the Raft node shuts down.
pub fn start(manager: Arc<Manager>) {
    tokio::spawn(run(manager));
}

async fn run(manager: Arc<Manager>) {
    let mut metrics = manager.raft.metrics();
    loop {
        let term = {
            let m = metrics.borrow_and_update();
            m.state.is_leader().then_some(m.current_term)
        };
        match term {
            Some(term) => {
                tracing::info!(term, "scheduler: leading, loading the state");
                Worker::new(&manager).lead(term).await;
                manager.scheduler.lock().clear();
                tracing::info!(term, "scheduler: no longer leading");
            }
            None => {
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

struct Worker<'a> {
    manager: &'a Manager,
    view: ClusterView,
    nodes: BTreeMap<String, Node>,
    /// Allocation ids this worker loaded into the view, by job.
    held: HashMap<String, BTreeSet<String>>,
    dirty: BTreeSet<String>,
    globals: BTreeSet<String>,
    /// Jobs with slots that fit nowhere: evaluated again when room may have appeared.
    blocked: BTreeSet<String>,
    /// Jobs to evaluate at a time (failure backoff, rejected placements).
    timers: BTreeMap<String, u64>,
    rejections: HashMap<String, u32>,
    /// The unplaced set proposed for a job while the state may not show it yet.
    placement_sent: HashMap<String, Vec<WireUnplaced>>,
    /// Draining nodes, and those whose drain end is committed but not yet seen applied.
    draining: BTreeSet<String>,
    drains_ending: BTreeSet<String>,
    /// Look at the draining nodes again even without a change (a commit failed).
    drain_check: bool,
    /// When each dirty job was taken up, for the placement latency metric.
    dirty_since: HashMap<String, Instant>,
    rng: StdRng,
}

impl<'a> Worker<'a> {
    fn new(manager: &'a Manager) -> Self {
        Worker {
            manager,
            view: ClusterView::default(),
            nodes: BTreeMap::new(),
            held: HashMap::new(),
            dirty: BTreeSet::new(),
            globals: BTreeSet::new(),
            blocked: BTreeSet::new(),
            timers: BTreeMap::new(),
            rejections: HashMap::new(),
            placement_sent: HashMap::new(),
            draining: BTreeSet::new(),
            drains_ending: BTreeSet::new(),
            drain_check: false,
            dirty_since: HashMap::new(),
            rng: StdRng::from_os_rng(),
        }
    }

    async fn lead(mut self, term: u64) {
        let mut metrics = self.manager.raft.metrics();
        let changes = &self.manager.state.changes;
        changes.take();
        self.load_everything();
        let mut last_round = Instant::now() - MIN_ROUND_INTERVAL;
        loop {
            {
                let m = metrics.borrow_and_update();
                if !m.state.is_leader() || m.current_term != term {
                    return;
                }
            }
            let touched = changes.take();
            let check_drains = !touched.is_empty() || std::mem::take(&mut self.drain_check);
            if touched.all {
                self.load_everything();
            } else {
                self.follow(&touched.nodes);
                taken_up(&mut self.dirty_since, &touched.jobs);
                self.dirty.extend(touched.jobs);
            }
            if check_drains {
                self.end_drains().await;
            }
            let now = now_ms();
            // Jobs whose placements were just rejected wait for their delay.
            let waiting: Vec<String> = self
                .dirty
                .iter()
                .filter(|job| {
                    self.rejections.contains_key(*job)
                        && self.timers.get(*job).is_some_and(|&at| at > now)
                })
                .cloned()
                .collect();
            for job in waiting {
                self.dirty.remove(&job);
            }
            let due: Vec<String> = self
                .timers
                .iter()
                .filter(|(_, &at)| at <= now)
                .map(|(job, _)| job.clone())
                .collect();
            taken_up(&mut self.dirty_since, &due);
            for job in due {
                self.timers.remove(&job);
                self.dirty.insert(job);
            }

            if self.dirty.is_empty() {
                let next_timer = self.timers.values().min().copied();
                let sleep = next_timer.map_or(Duration::from_secs(3600), |at| {
                    Duration::from_millis(at.saturating_sub(now))
                });
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = metrics.changed() => {}
                }
                continue;
            }
            let since = last_round.elapsed();
            if since < MIN_ROUND_INTERVAL {
                tokio::time::sleep(MIN_ROUND_INTERVAL - since).await;
            }
            last_round = Instant::now();
            self.round(now_ms()).await;
        }
    }

    /// Rebuilds the view from the whole state and marks every job dirty.
    fn load_everything(&mut self) {
        let state = self.manager.state.read();
        self.view = view::build(&state, self.manager.config.scheduler_algorithm);
        self.nodes = state.nodes.by_id.clone();
        self.draining = self
            .nodes
            .values()
            .filter(|n| n.drain)
            .map(|n| n.id.clone())
            .collect();
        self.drains_ending.retain(|id| self.draining.contains(id));
        self.held.clear();
        for a in state.allocations.by_id.values() {
            if self.view.node_of(&a.id).is_some() {
                self.held
                    .entry(a.job_id.clone())
                    .or_default()
                    .insert(a.id.clone());
            }
            if a.reserves_resources() {
                self.dirty.insert(a.job_id.clone());
            }
        }
        self.dirty.extend(state.jobs.current.keys().cloned());
        taken_up(&mut self.dirty_since, &self.dirty);
        self.globals = state
            .jobs
            .current
            .values()
            .filter(|j| j.spec.kind == JobType::Global)
            .map(|j| j.spec.id.clone())
            .collect();
    }

    /// Refreshes touched nodes in the view; their jobs, the global jobs and the blocked
    /// ones need a look.
    fn follow(&mut self, touched: &BTreeSet<String>) {
        if touched.is_empty() {
            return;
        }
        let state = self.manager.state.read();
        for id in touched {
            match state.nodes.by_id.get(id) {
                Some(node) => {
                    self.view.upsert_node(NodeInfo::from(node));
                    self.nodes.insert(id.clone(), node.clone());
                    if node.drain {
                        self.draining.insert(id.clone());
                    } else {
                        self.draining.remove(id);
                        self.drains_ending.remove(id);
                    }
                }
                None => {
                    self.view.remove_node(id);
                    self.nodes.remove(id);
                    self.draining.remove(id);
                    self.drains_ending.remove(id);
                }
            }
            let on_node: Vec<String> = state
                .allocations
                .on_node(id)
                .map(|a| a.job_id.clone())
                .collect();
            taken_up(&mut self.dirty_since, &on_node);
            self.dirty.extend(on_node);
        }
        taken_up(
            &mut self.dirty_since,
            self.globals.iter().chain(&self.blocked),
        );
        self.dirty.extend(self.globals.iter().cloned());
        self.dirty.append(&mut self.blocked);
    }

    async fn round(&mut self, now_ms: u64) {
        // What the dirty jobs are now, read under the lock, highest priority first.
        let mut jobs: Vec<Snapshot> = {
            let state = self.manager.state.read();
            std::mem::take(&mut self.dirty)
                .into_iter()
                .map(|id| Snapshot::read(&state, id))
                .collect()
        };
        jobs.sort_by_key(|s| std::cmp::Reverse(s.job.as_ref().map_or(0, |j| j.spec.priority)));

        let mut plan = Plan::default();
        let mut planned_jobs = Vec::new();
        let mut planned_since = HashMap::new();
        let mut evaluated = 0;
        let mut placement_updates = Vec::new();
        let mut freed = false;
        let mut iter = jobs.into_iter();
        for snapshot in iter.by_ref() {
            let Snapshot {
                id,
                job,
                allocations,
                current_tasks,
                deployment,
            } = snapshot;
            freed |= self.sync(&id, job.as_ref(), &allocations);
            match &job {
                Some(j) if j.spec.kind == JobType::Global => self.globals.insert(id.clone()),
                _ => self.globals.remove(&id),
            };
            let input = JobInput {
                job_id: &id,
                job: job.as_ref().map(|j| (&j.spec, j.version)),
                allocations: &allocations,
                current_tasks: &current_tasks,
                deployment: deployment.as_ref(),
            };
            let out = reconcile(&input, &self.nodes, &mut self.view, now_ms, &mut self.rng);
            let nothing_to_commit = out.is_empty();
            evaluated += 1;
            crate::metrics::scheduler::unplaced(&out.unplaced);
            let since = self.dirty_since.remove(&id);
            if let Some(at) = out.retry_at_ms {
                self.timers.insert(id.clone(), at);
            }
            if let Some(update) = self.placement_update(&id, job.as_ref(), &out.unplaced) {
                placement_updates.push(update);
            }
            {
                let mut unplaced = self.manager.scheduler.lock();
                if out.unplaced.is_empty() {
                    self.blocked.remove(&id);
                    unplaced.remove(&id);
                } else {
                    self.blocked.insert(id.clone());
                    unplaced.insert(id.clone(), out.unplaced);
                }
            }
            if nothing_to_commit {
                continue;
            }
            freed |= !out.stops.is_empty();
            let held = self.held.entry(id.clone()).or_default();
            held.extend(out.placements.iter().map(|p| p.allocation.id.clone()));
            plan.stops.extend(out.stops);
            plan.placements.extend(out.placements);
            plan.version_updates.extend(out.version_updates);
            plan.deployment_updates.extend(out.deployment_update);
            if let Some(since) = since {
                planned_since.insert(id.clone(), since);
            }
            planned_jobs.push(id);
            // Deployment and version updates are records of about a placement's size.
            let records =
                plan.placements.len() + plan.deployment_updates.len() + plan.version_updates.len();
            if records >= MAX_PLACEMENTS_PER_ROUND {
                break;
            }
        }
        crate::metrics::scheduler::evaluated(evaluated);
        // Left for the next round.
        self.dirty.extend(iter.map(|s| s.id));
        if freed {
            taken_up(&mut self.dirty_since, &self.blocked);
            self.dirty.append(&mut self.blocked);
        }
        let manager = self.manager;
        let placements = commit_placements(manager, placement_updates);
        let failed = if plan.is_empty() {
            placements.await
        } else {
            let commit = self.commit(plan, planned_jobs, planned_since, now_ms);
            tokio::join!(commit, placements).1
        };
        for job in failed {
            // Proposed again when the job is next evaluated.
            self.placement_sent.remove(&job);
            self.timers
                .entry(job)
                .or_insert(now_ms + COMMIT_RETRY.as_millis() as u64);
        }
    }

    /// The command recording a job's unplaced instances, when they differ (by slot and
    /// message) from what the state says or what was last proposed for it.
    fn placement_update(
        &mut self,
        job_id: &str,
        job: Option<&Job>,
        unplaced: &[UnplacedSlot],
    ) -> Option<Command> {
        let Some(job) = job else {
            self.placement_sent.remove(job_id);
            return None;
        };
        let mut now: Vec<WireUnplaced> = unplaced.iter().cloned().map(to_wire).collect();
        now.sort_by(|a, b| {
            (a.slot, &a.node_id, &a.replaces, &a.message).cmp(&(
                b.slot,
                &b.node_id,
                &b.replaces,
                &b.message,
            ))
        });
        if same_unplaced(&job.unplaced, &now) {
            // The state shows it (again): nothing is in flight that could differ.
            self.placement_sent.remove(job_id);
            return None;
        }
        if self
            .placement_sent
            .get(job_id)
            .is_some_and(|sent| same_unplaced(sent, &now))
        {
            return None;
        }
        self.placement_sent.insert(job_id.to_string(), now.clone());
        Some(Command::SetJobPlacement {
            job_id: job_id.to_string(),
            unplaced: now,
        })
    }

    /// Ends the drain of every draining node with no live allocation left: the node
    /// becomes ineligible (it stays so until the operator says otherwise), then stops
    /// draining. Once per node: not again while that is in flight.
    async fn end_drains(&mut self) {
        let done: Vec<String> = {
            let state = self.manager.state.read();
            self.draining
                .iter()
                .filter(|id| !self.drains_ending.contains(*id))
                .filter(|id| !state.allocations.on_node(id).any(is_live))
                .cloned()
                .collect()
        };
        for node_id in done {
            self.drains_ending.insert(node_id.clone());
            let commands = [
                Command::SetNodeEligibility {
                    node_id: node_id.clone(),
                    eligibility: Eligibility::Ineligible,
                },
                Command::SetNodeDrain {
                    node_id: node_id.clone(),
                    drain: false,
                },
            ];
            for command in &commands {
                if let Err(e) = self.manager.group_commit.propose(command).await {
                    tracing::warn!(error = %e, node = %node_id, "scheduler: drain end not committed; retrying");
                    self.drains_ending.remove(&node_id);
                    self.drain_check = true;
                    tokio::time::sleep(COMMIT_RETRY).await;
                    return;
                }
            }
            tracing::info!(node = %node_id, "scheduler: drain complete; node ineligible");
        }
    }

    /// Brings the view's reservations of one job in line with the state. True when some
    /// were released (room for blocked jobs).
    fn sync(&mut self, job_id: &str, job: Option<&Job>, allocations: &[Allocation]) -> bool {
        let priority = job.map_or(0, |j| j.spec.priority);
        let live: BTreeSet<&str> = allocations
            .iter()
            .filter(|a| a.reserves_resources())
            .map(|a| a.id.as_str())
            .collect();
        let mut released = false;
        let held = self.held.remove(job_id).unwrap_or_default();
        for id in held.iter().filter(|id| !live.contains(id.as_str())) {
            if let Some(node) = self.view.node_of(id).map(str::to_string) {
                released |= self.view.release(&node, id).is_some();
            }
        }
        let mut now_held = BTreeSet::new();
        for a in allocations.iter().filter(|a| a.reserves_resources()) {
            view::restore(&mut self.view, a, priority);
            if self.view.node_of(&a.id).is_some() {
                now_held.insert(a.id.clone());
            }
        }
        if !now_held.is_empty() {
            self.held.insert(job_id.to_string(), now_held);
        }
        released
    }

    async fn commit(
        &mut self,
        plan: Plan,
        jobs: Vec<String>,
        since: HashMap<String, Instant>,
        now_ms: u64,
    ) {
        let placements = plan.placements.len();
        let stops = plan.stops.len();
        let by_alloc: HashMap<String, String> = plan
            .placements
            .iter()
            .map(|p| (p.allocation.id.clone(), p.allocation.job_id.clone()))
            .collect();
        let command = Command::ApplyPlan { plan, now_ms };
        match self.manager.group_commit.propose(&command).await {
            Ok(applied) => match applied.outcome {
                Outcome::PlanApplied { result } => {
                    crate::metrics::scheduler::plan_applied(&result, &by_alloc, &since);
                    tracing::debug!(
                        index = applied.index,
                        placed = result.placed.len(),
                        stopped = result.stopped.len(),
                        rejected = result.rejected.len(),
                        "scheduler: plan applied"
                    );
                    let rejected: BTreeSet<&String> = result
                        .rejected
                        .iter()
                        .filter_map(|r| by_alloc.get(&r.alloc_id))
                        .collect();
                    for r in &result.rejected {
                        tracing::info!(alloc = %r.alloc_id, reason = %r.reason, "scheduler: placement rejected");
                    }
                    for job in &jobs {
                        if rejected.contains(job) {
                            let n = self.rejections.entry(job.clone()).or_default();
                            *n = (*n + 1).min(8);
                            let delay = REJECTED_DELAY_MS << *n;
                            self.timers.insert(job.clone(), now_ms + delay);
                        } else {
                            self.rejections.remove(job);
                        }
                    }
                }
                other => tracing::error!(?other, "scheduler: unexpected answer to a plan"),
            },
            Err(e) => {
                tracing::warn!(error = %e, placements, stops, "scheduler: plan not committed; retrying");
                // Still waiting since then.
                for (job, at) in since {
                    self.dirty_since.entry(job).or_insert(at);
                }
                // The view holds placements that may not exist: reload it all.
                tokio::time::sleep(COMMIT_RETRY).await;
                self.load_everything();
            }
        }
    }
}

/// Proposes the placement records together (group commit batches them); answers the
/// jobs whose record was not committed.
async fn commit_placements(manager: &Manager, updates: Vec<Command>) -> Vec<String> {
    let answers =
        futures::future::join_all(updates.iter().map(|c| manager.group_commit.propose(c))).await;
    let mut failed = Vec::new();
    for (command, answer) in updates.into_iter().zip(answers) {
        if let (Err(e), Command::SetJobPlacement { job_id, .. }) = (answer, command) {
            tracing::warn!(error = %e, job = %job_id, "scheduler: placement record not committed");
            failed.push(job_id);
        }
    }
    failed
}

/// Records now as when `jobs` were taken up (made dirty), for those not already waiting:
/// the start of their placement latency.
fn taken_up<'j>(since: &mut HashMap<String, Instant>, jobs: impl IntoIterator<Item = &'j String>) {
    let now = Instant::now();
    for job in jobs {
        if !since.contains_key(job) {
            since.insert(job.clone(), now);
        }
    }
}

/// Equal as far as an operator can tell: the same slots with the same messages.
fn same_unplaced(a: &[WireUnplaced], b: &[WireUnplaced]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.slot == b.slot
                && a.node_id == b.node_id
                && a.replaces == b.replaces
                && a.message == b.message
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
