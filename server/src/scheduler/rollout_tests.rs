//! Scenarios of rolling updates, run like `reconcile_tests` against the real state
//! machine: versions registered as the log applies them, scheduler rounds applied as
//! plans, agents played by status reports, and the clock moved by hand.

use gantry_api::job::parse_job_spec;
use gantry_api::{Allocation, ClientState, Deployment, DeploymentStatus, Health};

use super::reconcile_tests::{slots, Sim};
use crate::state::command::AllocationUpdate;
use crate::state::deployments::DeploymentAction;
use crate::state::{Command, Outcome};

/// A service of `replicas` whose task prints `text`; `update` is the update block's JSON.
fn register(sim: &mut Sim, replicas: u32, text: &str, update: &str) -> Outcome {
    let json = format!(
        r#"{{"id":"web","replicas":{replicas},"update":{update},
        "tasks":[{{"name":"main","image":"busybox","command":["echo","{text}"],
        "resources":{{"cpu_millis":100,"memory_mb":32}},
        "ports":[{{"name":"http","container_port":80}}]}}]}}"#
    );
    let spec = parse_job_spec(json.as_bytes(), None).unwrap();
    sim.apply(vec![Command::RegisterJob {
        spec,
        submitted_at_ms: sim.now,
    }])
    .remove(0)
}

const ROLLING: &str = r#"{"max_parallel":1,"min_healthy":"5s","healthy_deadline":"1m"}"#;

/// The agents report these allocations running, healthy or not.
fn report(sim: &mut Sim, ids: &[String], health: Health) {
    let updates = ids
        .iter()
        .map(|id| AllocationUpdate {
            id: id.clone(),
            client_state: ClientState::Running,
            health,
            restart_count: 0,
            message: String::new(),
        })
        .collect();
    sim.apply(vec![Command::UpdateAllocations {
        updates,
        now_ms: sim.now,
    }]);
}

/// Every live allocation not yet healthy runs and is healthy from now on.
fn all_healthy(sim: &mut Sim) {
    let ids: Vec<String> = sim
        .live("web")
        .into_iter()
        .filter(|a| a.health != Health::Healthy)
        .map(|a| a.id)
        .collect();
    report(sim, &ids, Health::Healthy);
}

fn deployment(sim: &Sim, id: &str) -> Deployment {
    sim.state.read().deployments.by_id[id].clone()
}

fn deployment_id(outcome: &Outcome) -> String {
    match outcome {
        Outcome::JobRegistered {
            deployment_id: Some(id),
            ..
        } => id.clone(),
        other => panic!("no deployment started: {other:?}"),
    }
}

fn versions(live: &[Allocation]) -> Vec<u64> {
    let mut versions: Vec<u64> = live.iter().map(|a| a.job_version).collect();
    versions.sort();
    versions
}

/// Version 1 of `web` placed, healthy for `min_healthy`, its deployment successful.
fn stable_v1(sim: &mut Sim, replicas: u32, update: &str) {
    for n in ["n1", "n2", "n3"] {
        sim.node(n, 4000);
    }
    let first = deployment_id(&register(sim, replicas, "v1", update));
    sim.round();
    all_healthy(sim);
    sim.now += 5_000;
    sim.round();
    assert_eq!(deployment(sim, &first).status, DeploymentStatus::Successful);
    assert!(sim.state.read().jobs.is_stable("web", 1));
}

#[test]
fn stop_first_replaces_one_slot_at_a_time_once_the_last_is_healthy_for_min_healthy() {
    let mut sim = Sim::new();
    stable_v1(&mut sim, 4, ROLLING);
    let v1_ids: Vec<String> = sim.live("web").into_iter().map(|a| a.id).collect();
    let id = deployment_id(&register(&mut sim, 4, "v2", ROLLING));

    for step in 1..=4 {
        let (plan, _) = sim.round();
        assert_eq!(
            plan.stops.len(),
            1,
            "step {step}: stop-first, max_parallel 1"
        );
        assert_eq!(plan.placements.len(), 1);
        let new = &plan.placements[0].allocation;
        assert_eq!(new.job_version, 2);
        assert_eq!(new.deployment_id.as_deref(), Some(id.as_str()));
        assert!(plan.placements[0].replaces.is_none());
        assert!(v1_ids.contains(&plan.stops[0].id));
        assert_eq!(sim.live("web").len(), 4, "never more than one per slot");

        assert!(sim.round().0.stops.is_empty(), "waits for the new one");
        all_healthy(&mut sim);
        sim.now += 4_999;
        assert!(
            sim.round().0.stops.is_empty(),
            "healthy, not for min_healthy yet"
        );
        assert_eq!(
            sim.retry_at,
            Some(sim.now + 1),
            "looks again when it will count"
        );
        sim.now += 1;
        assert_eq!(deployment(&sim, &id).status, DeploymentStatus::Running);
    }
    sim.round();
    let done = deployment(&sim, &id);
    assert_eq!(done.status, DeploymentStatus::Successful, "{done:?}");
    assert_eq!((done.placed, done.healthy), (4, 4));
    assert_eq!(versions(&sim.live("web")), [2, 2, 2, 2]);
    assert_eq!(slots(&sim.live("web")), [0, 1, 2, 3]);
    assert!(sim.state.read().jobs.is_stable("web", 2));
}

#[test]
fn start_first_runs_the_new_one_beside_the_old_until_it_counts() {
    let mut sim = Sim::new();
    let start_first =
        r#"{"max_parallel":2,"min_healthy":"5s","healthy_deadline":"1m","order":"start-first"}"#;
    stable_v1(&mut sim, 3, start_first);
    let id = deployment_id(&register(&mut sim, 3, "v2", start_first));

    let (plan, _) = sim.round();
    assert!(plan.stops.is_empty(), "start-first: nothing stops yet");
    assert_eq!(plan.placements.len(), 2, "max_parallel 2");
    assert!(plan.placements.iter().all(|p| p.replaces.is_some()));
    assert_eq!(sim.live("web").len(), 5);

    all_healthy(&mut sim);
    sim.now += 5_000;
    let (plan, _) = sim.round();
    assert_eq!(
        plan.stops.len(),
        2,
        "the old ones go once the new ones count"
    );
    assert_eq!(plan.placements.len(), 1, "and the last slot starts");
    all_healthy(&mut sim);
    sim.now += 5_000;
    sim.round();
    sim.round();
    assert_eq!(deployment(&sim, &id).status, DeploymentStatus::Successful);
    assert_eq!(versions(&sim.live("web")), [2, 2, 2]);
}

#[test]
fn a_change_that_runs_the_same_tasks_moves_allocations_in_place() {
    let mut sim = Sim::new();
    stable_v1(&mut sim, 2, ROLLING);
    let before: Vec<String> = sim.live("web").into_iter().map(|a| a.id).collect();
    let outcome = sim.apply(vec![Command::ScaleJob {
        id: "web".into(),
        replicas: 3,
        submitted_at_ms: sim.now,
    }]);
    assert!(matches!(
        &outcome[0],
        Outcome::JobRegistered {
            version: 2,
            deployment_id: None,
            ..
        }
    ));
    let (plan, _) = sim.round();
    assert!(plan.stops.is_empty(), "nothing restarts");
    assert_eq!(plan.placements.len(), 1, "the new slot");
    assert_eq!(plan.version_updates.len(), 2);
    let live = sim.live("web");
    assert_eq!(versions(&live), [2, 2, 2]);
    assert!(before.iter().all(|id| live.iter().any(|a| &a.id == id)));
    assert!(
        sim.state.read().jobs.is_stable("web", 2),
        "same tasks as a stable version"
    );
}

#[test]
fn a_canary_runs_beside_the_old_ones_until_promoted() {
    let mut sim = Sim::new();
    stable_v1(&mut sim, 4, ROLLING);
    let old: Vec<String> = sim.live("web").into_iter().map(|a| a.id).collect();
    let canary = r#"{"max_parallel":1,"min_healthy":"5s","healthy_deadline":"1m","canary":1}"#;
    let id = deployment_id(&register(&mut sim, 4, "v2", canary));

    let (plan, _) = sim.round();
    assert!(plan.stops.is_empty());
    assert_eq!(plan.placements.len(), 1);
    assert!(plan.placements[0].allocation.canary);
    all_healthy(&mut sim);
    for _ in 0..3 {
        sim.now += 10_000;
        let (plan, _) = sim.round();
        assert!(plan.stops.is_empty() && plan.placements.is_empty());
    }
    let live = sim.live("web");
    assert_eq!(live.len(), 5, "4 old and the canary");
    assert!(old.iter().all(|id| live.iter().any(|a| &a.id == id)));
    let waiting = deployment(&sim, &id);
    assert!(waiting.awaits_promotion());
    assert!(
        waiting.description.ends_with("waiting for promotion"),
        "{waiting:?}"
    );

    let promoted = sim.apply(vec![Command::DeploymentAction {
        id: id.clone(),
        action: DeploymentAction::Promote,
        now_ms: sim.now,
    }]);
    assert!(
        matches!(promoted[0], Outcome::Deployment { .. }),
        "{promoted:?}"
    );
    for _ in 0..8 {
        sim.round();
        all_healthy(&mut sim);
        sim.now += 5_000;
    }
    sim.round();
    assert_eq!(deployment(&sim, &id).status, DeploymentStatus::Successful);
    assert_eq!(versions(&sim.live("web")), [2, 2, 2, 2]);
}

#[test]
fn a_version_that_never_gets_healthy_fails_and_reverts_to_the_last_stable_one() {
    let mut sim = Sim::new();
    let reverting =
        r#"{"max_parallel":1,"min_healthy":"5s","healthy_deadline":"20s","auto_revert":true}"#;
    stable_v1(&mut sim, 3, reverting);
    let id = deployment_id(&register(&mut sim, 3, "broken", reverting));

    let (plan, _) = sim.round();
    let new_id = plan.placements[0].allocation.id.clone();
    report(&mut sim, &[new_id], Health::Unhealthy);
    sim.now += 20_001;
    sim.round();
    let failed = deployment(&sim, &id);
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert_eq!(failed.reverted_to, Some(3), "{failed:?}");
    assert!(failed.description.contains("not healthy"), "{failed:?}");
    let (revert_id, tasks_are_v1) = {
        let state = sim.state.read();
        let job = &state.jobs.current["web"];
        let v1 = &state.jobs.versions["web"][&1].spec.tasks;
        (
            state.deployments.active("web").unwrap().id.clone(),
            job.version == 3 && job.spec.tasks == *v1,
        )
    };
    assert!(tasks_are_v1);

    for _ in 0..4 {
        sim.round();
        all_healthy(&mut sim);
        sim.now += 5_000;
    }
    sim.round();
    assert_eq!(
        deployment(&sim, &revert_id).status,
        DeploymentStatus::Successful
    );
    assert_eq!(versions(&sim.live("web")), [3, 3, 3]);
    assert!(sim.state.read().jobs.is_stable("web", 3));
}

#[test]
fn a_paused_deployment_replaces_nothing_until_resumed() {
    let mut sim = Sim::new();
    stable_v1(&mut sim, 2, ROLLING);
    let id = deployment_id(&register(&mut sim, 2, "v2", ROLLING));
    sim.apply(vec![Command::DeploymentAction {
        id: id.clone(),
        action: DeploymentAction::Pause,
        now_ms: sim.now,
    }]);
    let (plan, _) = sim.round();
    assert!(plan.stops.is_empty() && plan.placements.is_empty());
    assert_eq!(deployment(&sim, &id).status, DeploymentStatus::Paused);

    sim.apply(vec![Command::DeploymentAction {
        id: id.clone(),
        action: DeploymentAction::Resume,
        now_ms: sim.now,
    }]);
    let (plan, _) = sim.round();
    assert_eq!((plan.stops.len(), plan.placements.len()), (1, 1));
}

#[test]
fn a_first_version_with_canaries_has_nothing_to_promote_them_over() {
    let mut sim = Sim::new();
    sim.node("n1", 4000);
    let canary = r#"{"max_parallel":1,"min_healthy":"5s","healthy_deadline":"1m","canary":1}"#;
    let id = deployment_id(&register(&mut sim, 2, "v1", canary));
    let (plan, _) = sim.round();
    assert_eq!(plan.placements.len(), 2);
    assert!(plan.placements.iter().all(|p| !p.allocation.canary));
    all_healthy(&mut sim);
    sim.now += 5_000;
    sim.round();
    let done = deployment(&sim, &id);
    assert_eq!(done.status, DeploymentStatus::Successful, "{done:?}");
    assert!(done.promoted);
}
