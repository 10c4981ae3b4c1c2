//! The dry run behind `POST /v1/jobs/{id}/plan`: reconcile a spec against the state as it
//! is, on a throwaway view, and say what would happen. Nothing is committed.

use gantry_api::scheduling::{
    JobPlan, PlacementExplanation, PlannedSlot, PlannedStop, UnplacedSlot,
};
use gantry_api::{Allocation, JobSpec, JobType};

use super::placement::Algorithm;
use super::placement::Explanation;
use super::reconcile::{reconcile, JobInput};
use super::rollout;
use super::view;
use crate::state::{deployments, State};

/// What registering `spec` now would place, stop, and fail to place.
pub fn plan(state: &State, spec: &JobSpec, now_ms: u64, algorithm: Algorithm) -> JobPlan {
    let version = match state.jobs.current.get(&spec.id) {
        Some(job) if job.spec == *spec => job.version,
        Some(job) => job.version + 1,
        None => 1,
    };
    let mut view = view::build(state, algorithm);
    let allocations: Vec<Allocation> = state.allocations.of_job(&spec.id).cloned().collect();
    let mut current_tasks = rollout::versions_with_tasks(state, &spec.id, &spec.tasks);
    current_tasks.insert(version);
    // A version that changes the tasks would start a deployment: show its first step.
    let deployment = match state.jobs.current.get(&spec.id) {
        Some(job) if job.spec.tasks != spec.tasks && spec.kind == JobType::Service => {
            Some(deployments::fresh(spec, version, 0, now_ms))
        }
        _ => state.deployments.active(&spec.id).cloned(),
    };
    let input = JobInput {
        job_id: &spec.id,
        job: Some((spec, version)),
        allocations: &allocations,
        current_tasks: &current_tasks,
        deployment: deployment.as_ref(),
    };
    let out = reconcile(
        &input,
        &state.nodes.by_id,
        &mut view,
        now_ms,
        &mut rand::rng(),
    );
    JobPlan {
        job_id: spec.id.clone(),
        version,
        placements: out
            .placements
            .into_iter()
            .map(|p| PlannedSlot {
                slot: p.allocation.slot,
                node_id: p.allocation.node_id,
                host_ports: p.allocation.ports.iter().map(|p| p.host_port).collect(),
                reason: p.allocation.placement_reason,
                replaces: p.replaces,
            })
            .collect(),
        stops: out
            .stops
            .into_iter()
            .map(|s| PlannedStop {
                id: s.id,
                reason: s.reason,
            })
            .collect(),
        unplaced: out.unplaced.into_iter().map(to_wire).collect(),
    }
}

/// The scheduler's record of an unplaced slot, as the API shows it.
pub fn to_wire(u: super::reconcile::UnplacedSlot) -> UnplacedSlot {
    UnplacedSlot {
        slot: u.slot,
        node_id: u.node_id,
        replaces: u.replaces,
        message: u.message,
        explanation: u.explanation.map(explanation),
    }
}

fn explanation(e: Explanation) -> PlacementExplanation {
    PlacementExplanation {
        nodes_evaluated: e.nodes_evaluated,
        nodes_fit: e.nodes_fit,
        filtered: e.filtered,
        exhausted: e.exhausted,
    }
}
