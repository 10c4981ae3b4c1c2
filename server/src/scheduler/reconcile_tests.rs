//! Scenarios of `reconcile` run against the real state machine: commands are applied as
//! the log would apply them, each round builds a view from the state, reconciles every
//! job into one plan and applies it (with the applier's re-check), and agents are played
//! by status reports.

use std::collections::BTreeSet;

use gantry_api::job::parse_job_spec;
use gantry_api::{
    Allocation, ClientState, DesiredState, Eligibility, Health, NodeRegistration, NodeStatus,
    Resources,
};
use gantry_raft_store::{Application, Writes};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::reconcile::{reconcile, JobInput, UnplacedSlot};
use super::view;
use crate::state::command::{decode_outcomes, encode_batch, AllocationUpdate};
use crate::state::plan::{Plan, PlanResult};
use crate::state::{ClusterState, Command, Outcome};

pub(super) struct Sim {
    pub(super) state: ClusterState,
    pub(super) index: u64,
    pub(super) now: u64,
    pub(super) rng: StdRng,
    pub(super) unplaced: Vec<UnplacedSlot>,
    pub(super) retry_at: Option<u64>,
}

impl Sim {
    pub(super) fn new() -> Self {
        Sim {
            state: ClusterState::new(),
            index: 0,
            now: 1_000_000,
            rng: StdRng::seed_from_u64(7),
            unplaced: Vec::new(),
            retry_at: None,
        }
    }

    pub(super) fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        self.index += 1;
        let mut writes = Writes::default();
        let out = self
            .state
            .apply(self.index, &encode_batch(&commands), &mut writes);
        decode_outcomes(&out).unwrap()
    }

    pub(super) fn node(&mut self, name: &str, cpu: u64) {
        let registration = NodeRegistration {
            name: name.into(),
            address: "10.0.0.1".into(),
            resources: Resources {
                cpu_millis: cpu,
                memory_mb: 8192,
            },
            port_range: Default::default(),
            labels: Default::default(),
            drivers: vec!["docker".into()],
            agent_addr: None,
        };
        self.apply(vec![
            Command::RegisterNode {
                registration,
                now_ms: self.now,
            },
            self.status(name, NodeStatus::Ready),
        ]);
    }

    pub(super) fn status(&self, node: &str, status: NodeStatus) -> Command {
        Command::SetNodeStatus {
            node_id: node.into(),
            status,
            now_ms: self.now,
        }
    }

    pub(super) fn job(&mut self, id: &str, kind: &str, replicas: u32, cpu: u64) {
        self.job_with_priority(id, kind, replicas, cpu, 50);
    }

    pub(super) fn job_with_priority(
        &mut self,
        id: &str,
        kind: &str,
        replicas: u32,
        cpu: u64,
        priority: u8,
    ) {
        let json = format!(
            r#"{{"id":"{id}","type":"{kind}","replicas":{replicas},"priority":{priority},"update":{{"max_parallel":1}},
            "tasks":[{{"name":"main","image":"busybox","resources":{{"cpu_millis":{cpu},"memory_mb":32}},
            "ports":[{{"name":"http","container_port":80}}]}}]}}"#
        );
        let spec = parse_job_spec(json.as_bytes(), None).unwrap();
        self.apply(vec![Command::RegisterJob {
            spec,
            submitted_at_ms: self.now,
        }]);
    }

    pub(super) fn scale(&mut self, id: &str, replicas: u32) {
        self.apply(vec![Command::ScaleJob {
            id: id.into(),
            replicas,
            submitted_at_ms: self.now,
        }]);
    }

    /// One scheduler round over every job, highest priority first as the worker does:
    /// one plan, applied.
    pub(super) fn round(&mut self) -> (Plan, PlanResult) {
        let (plan, unplaced, retry_at) = {
            let state = self.state.read();
            let mut v = view::build(&state, Default::default());
            let ids: BTreeSet<String> = state
                .jobs
                .current
                .keys()
                .chain(state.allocations.by_job.keys())
                .cloned()
                .collect();
            let mut ids: Vec<String> = ids.into_iter().collect();
            ids.sort_by_key(|id| {
                std::cmp::Reverse(state.jobs.current.get(id).map_or(0, |j| j.spec.priority))
            });
            let mut plan = Plan::default();
            let mut unplaced = Vec::new();
            let mut retry_at = None;
            for id in ids {
                let job = state.jobs.current.get(&id);
                let allocations: Vec<Allocation> = state.allocations.of_job(&id).cloned().collect();
                let current_tasks = job.map_or_else(Default::default, |j| {
                    super::rollout::versions_with_tasks(&state, &id, &j.spec.tasks)
                });
                let input = JobInput {
                    job_id: &id,
                    job: job.map(|j| (&j.spec, j.version)),
                    allocations: &allocations,
                    current_tasks: &current_tasks,
                    deployment: state.deployments.active(&id),
                };
                let out = reconcile(&input, &state.nodes.by_id, &mut v, self.now, &mut self.rng);
                plan.stops.extend(out.stops);
                plan.placements.extend(out.placements);
                plan.version_updates.extend(out.version_updates);
                plan.deployment_updates.extend(out.deployment_update);
                unplaced.extend(out.unplaced);
                retry_at = retry_at.or(out.retry_at_ms);
            }
            (plan, unplaced, retry_at)
        };
        self.unplaced = unplaced;
        self.retry_at = retry_at;
        let outcomes = self.apply(vec![Command::ApplyPlan {
            plan: plan.clone(),
            now_ms: self.now,
        }]);
        let Outcome::PlanApplied { result } = &outcomes[0] else {
            panic!("{outcomes:?}")
        };
        assert!(result.rejected.is_empty(), "{:?}", result.rejected);
        self.check_capacity();
        // What was placed, moved and stopped; deployments' progress is read from the state.
        let plan = Plan {
            deployment_updates: Vec::new(),
            ..plan
        };
        (plan, result.clone())
    }

    /// The agents report these allocations in `state`.
    pub(super) fn report(&mut self, ids: &[String], state: ClientState) {
        let updates = ids
            .iter()
            .map(|id| AllocationUpdate {
                id: id.clone(),
                client_state: state,
                health: Health::Unknown,
                restart_count: 0,
                message: String::new(),
            })
            .collect();
        self.apply(vec![Command::UpdateAllocations {
            updates,
            now_ms: self.now,
        }]);
    }

    /// Every pending allocation starts running.
    pub(super) fn run_all(&mut self) {
        let pending: Vec<String> = self
            .live_all()
            .into_iter()
            .filter(|a| a.client_state == ClientState::Pending)
            .map(|a| a.id)
            .collect();
        self.report(&pending, ClientState::Running);
    }

    pub(super) fn live_all(&self) -> Vec<Allocation> {
        let state = self.state.read();
        state
            .allocations
            .by_id
            .values()
            .filter(|a| a.reserves_resources())
            .cloned()
            .collect()
    }

    pub(super) fn live(&self, job: &str) -> Vec<Allocation> {
        self.live_all()
            .into_iter()
            .filter(|a| a.job_id == job)
            .collect()
    }

    pub(super) fn check_capacity(&self) {
        let state = self.state.read();
        for node in state.nodes.by_id.values() {
            let usage = state.allocations.node_usage(&node.id);
            assert!(usage.reserved.cpu_millis <= node.resources.cpu_millis);
            assert!(usage.reserved.memory_mb <= node.resources.memory_mb);
        }
    }
}

pub(super) fn slots(allocs: &[Allocation]) -> Vec<u32> {
    let mut slots: Vec<u32> = allocs.iter().map(|a| a.slot).collect();
    slots.sort();
    slots
}

fn on(allocs: &[Allocation], node: &str) -> usize {
    allocs.iter().filter(|a| a.node_id == node).count()
}

#[test]
fn service_scales_zero_to_fifty_to_ten() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        sim.node(n, 4000);
    }
    sim.job("web", "service", 0, 100);
    let (plan, _) = sim.round();
    assert_eq!(plan, Plan::default());

    sim.scale("web", 50);
    let (_, result) = sim.round();
    assert_eq!(result.placed.len(), 50);
    let live = sim.live("web");
    assert_eq!(slots(&live), (0..50).collect::<Vec<_>>());
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        assert!(on(&live, n) >= 1, "replicas spread before they pack");
    }
    assert!(live
        .iter()
        .all(|a| a.ports.len() == 1 && a.ports[0].name == "http"));
    assert!(live[0].placement_reason.starts_with("bin-pack"));
    sim.run_all();
    assert_eq!(sim.round().0, Plan::default(), "nothing more to do");

    sim.scale("web", 10);
    let (plan, result) = sim.round();
    assert!(plan.placements.is_empty());
    assert_eq!(result.stopped.len(), 40);
    assert_eq!(slots(&sim.live("web")), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_lost_allocation_is_replaced_elsewhere() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3"] {
        sim.node(n, 4000);
    }
    sim.job("web", "service", 3, 100);
    sim.round();
    sim.run_all();
    let before = sim.live("web");
    let on_n1 = before.iter().find(|a| a.node_id == "n1").unwrap().clone();

    let down = sim.status("n1", NodeStatus::Down);
    sim.apply(vec![down]);
    let (plan, _) = sim.round();
    assert_eq!(plan.placements.len(), 1);
    let replacement = &plan.placements[0].allocation;
    assert_eq!(replacement.slot, on_n1.slot);
    assert_ne!(replacement.node_id, "n1");
    assert_eq!(slots(&sim.live("web")), vec![0, 1, 2]);
}

#[test]
fn drain_migrates_max_parallel_at_a_time_new_before_old() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    sim.node("n2", 4000);
    sim.job("web", "service", 4, 100);
    sim.round();
    sim.run_all();
    let on_n1 = on(&sim.live("web"), "n1");
    assert!(on_n1 >= 2, "bin-packing put {on_n1} on n1");

    sim.apply(vec![Command::SetNodeDrain {
        node_id: "n1".into(),
        drain: true,
    }]);
    let (plan, _) = sim.round();
    assert!(
        plan.stops.is_empty(),
        "the old one runs until the new one does"
    );
    assert_eq!(plan.placements.len(), 1, "max_parallel 1");
    assert_eq!(plan.placements[0].allocation.node_id, "n2");
    let mut old = plan.placements[0]
        .replaces
        .clone()
        .expect("a migration names what it replaces");
    assert_eq!(
        sim.round().0,
        Plan::default(),
        "waits for the replacement to run"
    );

    for left in (0..on_n1).rev() {
        sim.run_all();
        let (plan, _) = sim.round();
        assert_eq!(plan.stops.len(), 1);
        assert_eq!(plan.stops[0].id, old);
        if left == 0 {
            assert!(plan.placements.is_empty());
        } else {
            assert_eq!(plan.placements.len(), 1, "the next migration starts");
            old = plan.placements[0].replaces.clone().unwrap();
        }
    }
    let live = sim.live("web");
    assert_eq!(on(&live, "n1"), 0, "the drain is complete");
    assert_eq!(slots(&live), vec![0, 1, 2, 3]);
}

#[test]
fn global_jobs_follow_nodes_in_and_out() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    sim.node("n2", 4000);
    sim.job("agent", "global", 1, 100);
    sim.round();
    let live = sim.live("agent");
    assert_eq!((on(&live, "n1"), on(&live, "n2")), (1, 1));

    sim.node("n3", 4000);
    let (plan, _) = sim.round();
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].allocation.node_id, "n3");

    sim.apply(vec![Command::SetNodeEligibility {
        node_id: "n2".into(),
        eligibility: Eligibility::Ineligible,
    }]);
    let (plan, _) = sim.round();
    assert_eq!(plan.stops.len(), 1);
    let live = sim.live("agent");
    assert_eq!(live.len(), 2);
    assert_eq!(on(&live, "n2"), 0);
    let distinct: BTreeSet<u32> = live.iter().map(|a| a.slot).collect();
    assert_eq!(distinct.len(), 2, "one slot per instance");
    assert_eq!(sim.round().0, Plan::default());
}

#[test]
fn batch_complete_is_done_and_failed_is_retried_with_backoff() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    sim.job("etl", "batch", 2, 100);
    sim.round();
    let live = sim.live("etl");
    let by_slot = |slot| live.iter().find(|a| a.slot == slot).unwrap().id.clone();
    sim.report(&[by_slot(0)], ClientState::Complete);
    sim.report(&[by_slot(1)], ClientState::Failed);

    let (plan, _) = sim.round();
    assert_eq!(plan, Plan::default(), "complete stays done; failed waits");
    assert_eq!(sim.retry_at, Some(sim.now + 1_000));

    sim.now += 1_000;
    let (plan, _) = sim.round();
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].allocation.slot, 1);
    // A second failure doubles the wait.
    let again = plan.placements[0].allocation.id.clone();
    sim.report(&[again], ClientState::Failed);
    sim.round();
    assert_eq!(sim.retry_at, Some(sim.now + 2_000));
}

#[test]
fn an_allocation_stopped_by_an_operator_is_replaced() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    sim.node("n2", 4000);
    sim.job("web", "service", 2, 100);
    sim.job("etl", "batch", 1, 100);
    sim.job("agentd", "global", 0, 100);
    sim.round();
    sim.run_all();
    assert_eq!(sim.round().0, Plan::default());

    let stopped: Vec<Allocation> = ["web", "etl", "agentd"]
        .iter()
        .map(|job| sim.live(job)[0].clone())
        .collect();
    for a in &stopped {
        let outcome = sim.apply(vec![Command::StopAllocation {
            id: a.id.clone(),
            now_ms: sim.now,
        }]);
        assert!(
            matches!(outcome[0], Outcome::Allocation { .. }),
            "{outcome:?}"
        );
    }
    // The agents stop them before the scheduler looks: a batch slot stopped by an
    // operator has not finished its work, so it is placed again like the others.
    let old: Vec<String> = stopped.iter().map(|a| a.id.clone()).collect();
    sim.report(&old, ClientState::Complete);
    let (plan, _) = sim.round();
    assert!(plan.stops.is_empty(), "already stopped: {plan:?}");
    let mut placed: Vec<(String, u32)> = plan
        .placements
        .iter()
        .map(|p| (p.allocation.job_id.clone(), p.allocation.slot))
        .collect();
    placed.sort();
    let mut wanted: Vec<(String, u32)> =
        stopped.iter().map(|a| (a.job_id.clone(), a.slot)).collect();
    wanted.sort();
    assert_eq!(placed, wanted, "one replacement per stopped slot");
    let global = plan
        .placements
        .iter()
        .find(|p| p.allocation.job_id == "agentd")
        .unwrap();
    assert_eq!(global.allocation.node_id, stopped[2].node_id);

    sim.run_all();
    assert_eq!(sim.round().0, Plan::default());
    assert_eq!(sim.live("web").len(), 2);
    assert_eq!(sim.live("etl").len(), 1);
    assert_eq!(sim.live("agentd").len(), 2);
}

#[test]
fn a_deleted_job_is_stopped() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    sim.job("web", "service", 3, 100);
    sim.round();
    sim.apply(vec![Command::DeleteJob { id: "web".into() }]);
    let (_, result) = sim.round();
    assert_eq!(result.stopped.len(), 3);
    assert!(sim.live("web").is_empty());
    let state = sim.state.read();
    assert!(state
        .allocations
        .of_job("web")
        .all(|a| a.desired == DesiredState::Stop));
}

#[test]
fn unplaced_slots_say_why() {
    let mut sim = Sim::new();
    sim.node("n1", 1000);
    sim.node("n2", 1000);
    sim.job("big", "service", 3, 800);
    let (_, result) = sim.round();
    assert_eq!(result.placed.len(), 2);
    assert_eq!(sim.unplaced.len(), 1);
    assert_eq!(sim.unplaced[0].slot, Some(2));
    assert_eq!(sim.unplaced[0].message, "0 of 2 nodes fit: 2 exhausted cpu");
}

/// The ids of `job`'s live allocations on `node`.
fn ids_on(sim: &Sim, job: &str, node: &str) -> BTreeSet<String> {
    sim.live(job)
        .into_iter()
        .filter(|a| a.node_id == node)
        .map(|a| a.id)
        .collect()
}

#[test]
fn a_higher_priority_job_preempts_the_lowest_priorities_then_the_fewest() {
    let mut sim = Sim::new();
    // Each node joins alone, so each job fills the one node with room.
    sim.node("n1", 1000);
    sim.job_with_priority("a", "service", 4, 250, 20);
    sim.round();
    sim.node("n2", 1000);
    sim.job_with_priority("b", "service", 2, 500, 20);
    sim.round();
    sim.node("n3", 1000);
    sim.job_with_priority("c", "service", 2, 250, 10);
    sim.job_with_priority("d", "service", 1, 500, 20);
    sim.round();
    sim.run_all();
    assert!(sim.unplaced.is_empty(), "{:?}", sim.unplaced);
    for n in ["n1", "n2", "n3"] {
        let state = sim.state.read();
        assert_eq!(state.allocations.node_usage(n).reserved.cpu_millis, 1000);
    }

    // n2 would need one victim, n1 two; but on n3 the two victims are of priority 10.
    let victims = ids_on(&sim, "c", "n3");
    sim.job_with_priority("web", "service", 1, 500, 80);
    let (plan, result) = sim.round();
    assert_eq!(plan.placements.len(), 1);
    let placed = &plan.placements[0].allocation;
    assert_eq!(
        (placed.job_id.as_str(), placed.node_id.as_str()),
        ("web", "n3")
    );
    assert!(
        placed
            .placement_reason
            .starts_with("preempting 2 allocation(s) of priority <= 10; bin-pack"),
        "{}",
        placed.placement_reason
    );
    // Exactly the two victims are stopped: c, reconciled later in the same round, does
    // not also count them as live (nor stop them twice).
    let stopped: BTreeSet<String> = plan.stops.iter().map(|s| s.id.clone()).collect();
    assert_eq!(stopped, victims);
    assert_eq!(plan.stops.len(), 2);
    for stop in &plan.stops {
        assert_eq!(
            stop.reason,
            "preempted by job web (priority 80 > 10) for slot 0"
        );
    }
    assert_eq!(result.placed, vec![placed.id.clone()]);
    assert!(sim.live("c").is_empty());
    {
        let state = sim.state.read();
        for id in &victims {
            let a = &state.allocations.by_id[id];
            assert_eq!(a.desired, DesiredState::Stop);
            assert_eq!(
                a.message,
                "preempted by job web (priority 80 > 10) for slot 0"
            );
        }
    }
    // c's slots are missing now, and there is no room it may take.
    assert_eq!(sim.unplaced.len(), 2, "{:?}", sim.unplaced);
    assert_eq!(
        sim.unplaced.iter().map(|u| u.slot).collect::<Vec<_>>(),
        vec![Some(0), Some(1)]
    );
    assert_eq!(sim.unplaced[0].message, "0 of 3 nodes fit: 3 exhausted cpu");

    // All priority 20 now: the node with the fewest victims, n2 (one of b's).
    sim.run_all();
    sim.scale("web", 2);
    let (plan, _) = sim.round();
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(plan.placements[0].allocation.node_id, "n2");
    assert_eq!(plan.stops.len(), 1);
    assert!(ids_on(&sim, "web", "n2").contains(&plan.placements[0].allocation.id));
    assert_eq!(
        plan.stops[0].reason,
        "preempted by job web (priority 80 > 20) for slot 1"
    );
    assert_eq!(sim.live("b").len(), 1);
    assert_eq!(sim.live("web").len(), 2);
    let mut unplaced: Vec<Option<u32>> = sim.unplaced.iter().map(|u| u.slot).collect();
    unplaced.sort();
    assert_eq!(unplaced.len(), 3, "b's evicted slot and c's two");

    // The victims stay unplaced, with why; nothing else moves.
    sim.run_all();
    let (plan, _) = sim.round();
    assert_eq!(plan, Plan::default());
    assert_eq!(sim.unplaced.len(), 3);
    assert!(sim
        .unplaced
        .iter()
        .all(|u| u.message == "0 of 3 nodes fit: 3 exhausted cpu" && u.explanation.is_some()));
}

#[test]
fn equal_or_lower_priorities_never_preempt() {
    let mut sim = Sim::new();
    sim.node("n1", 1000);
    sim.job_with_priority("a", "service", 2, 500, 50);
    sim.round();
    sim.run_all();
    sim.job_with_priority("same", "service", 1, 500, 50);
    sim.job_with_priority("lower", "service", 1, 500, 40);
    let (plan, _) = sim.round();
    assert_eq!(plan, Plan::default());
    assert_eq!(sim.live("a").len(), 2);
    assert_eq!(sim.unplaced.len(), 2);
    for u in &sim.unplaced {
        assert_eq!(u.slot, Some(0));
        assert_eq!(u.message, "0 of 1 nodes fit: 1 exhausted cpu");
        assert!(u.explanation.is_some());
    }
}
