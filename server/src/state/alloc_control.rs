//! An operator's hand on one allocation: stop it, or restart its tasks in place.
//!
//! Both are replicated commands, checked against the state as it is when they apply, so
//! every manager gives the same answer:
//!
//! - **stop** sets desired `stop` (message `stopped by operator`). The agent stops the
//!   tasks when its session brings the change; the scheduler sees the job touched and,
//!   the slot having no live allocation left, places a replacement (as `nomad alloc
//!   stop` does). Refused (`conflict`) when it is already terminal or being stopped.
//! - **restart** bumps the allocation's `restart_requests` counter (and records the task
//!   it names, if any). Nothing is rescheduled: the agent sees the counter grow past the
//!   value it last acted on and restarts the tasks on the node. Refused (`conflict`)
//!   unless the allocation runs and is meant to; an unknown task is a `bad_request`.

use super::command::Outcome;
use super::machine::State;
use gantry_api::error::codes;
use gantry_api::{Allocation, ClientState, DesiredState};
use gantry_raft_store::Writes;

/// The message a stopped allocation carries.
pub const STOPPED_BY_OPERATOR: &str = "stopped by operator";

impl State {
    pub(crate) fn stop_allocation(
        &mut self,
        index: u64,
        id: &str,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        let Some(existing) = self.allocations.by_id.get(id) else {
            return unknown(id);
        };
        if existing.client_state.is_terminal() {
            return conflict(format!(
                "allocation `{id}` is already {}: there is nothing to stop",
                state_name(existing.client_state)
            ));
        }
        if existing.desired == DesiredState::Stop {
            return conflict(format!(
                "allocation `{id}` is already being stopped ({})",
                existing.message
            ));
        }
        let mut allocation = existing.clone();
        allocation.desired = DesiredState::Stop;
        allocation.message = STOPPED_BY_OPERATOR.to_string();
        allocation.modified_at_ms = now_ms;
        allocation.modify_index = index;
        self.allocations.store(allocation.clone(), writes);
        answer(allocation)
    }

    pub(crate) fn restart_allocation(
        &mut self,
        index: u64,
        id: &str,
        task: Option<String>,
        now_ms: u64,
        writes: &mut Writes,
    ) -> Outcome {
        let Some(existing) = self.allocations.by_id.get(id) else {
            return unknown(id);
        };
        if existing.desired != DesiredState::Run {
            return conflict(format!(
                "allocation `{id}` is being stopped ({}): it cannot be restarted",
                existing.message
            ));
        }
        if existing.client_state != ClientState::Running {
            return conflict(format!(
                "allocation `{id}` is {}, not running: only a running allocation can be \
                 restarted",
                state_name(existing.client_state)
            ));
        }
        if let Some(name) = &task {
            // The spec of the version it runs; a version no longer kept cannot be checked
            // here, and the agent (which has it) ignores a task it does not know.
            if let Some(spec) = self.jobs.spec_at(&existing.job_id, existing.job_version) {
                if !spec.tasks.iter().any(|t| &t.name == name) {
                    let names: Vec<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
                    return Outcome::Rejected {
                        code: codes::BAD_REQUEST.to_string(),
                        message: format!(
                            "task: allocation `{id}` has no task `{name}`; its tasks: {}",
                            names.join(", ")
                        ),
                    };
                }
            }
        }
        let mut allocation = existing.clone();
        allocation.restart_requests += 1;
        allocation.restart_task = task;
        allocation.modified_at_ms = now_ms;
        allocation.modify_index = index;
        self.allocations.store(allocation.clone(), writes);
        answer(allocation)
    }
}

fn answer(allocation: Allocation) -> Outcome {
    Outcome::Allocation {
        allocation: Box::new(allocation),
    }
}

fn unknown(id: &str) -> Outcome {
    Outcome::Rejected {
        code: codes::NOT_FOUND.to_string(),
        message: format!("no allocation with id `{id}`"),
    }
}

fn conflict(message: String) -> Outcome {
    Outcome::Rejected {
        code: codes::CONFLICT.to_string(),
        message,
    }
}

/// `running`, `failed`, ... as the API spells it.
fn state_name(state: ClientState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{state:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::{decode_outcomes, encode_batch, AllocationUpdate, Command};
    use crate::state::plan::{Plan, PlannedAllocation};
    use crate::state::ClusterState;
    use gantry_api::job::parse_job_spec;
    use gantry_api::{Health, NodeRegistration, NodeStatus, Resources};
    use gantry_raft_store::Application;

    fn apply(state: &ClusterState, index: u64, command: Command) -> Outcome {
        let mut writes = Writes::default();
        let response = state.apply(index, &encode_batch(&[command]), &mut writes);
        decode_outcomes(&response).unwrap().remove(0)
    }

    /// A node `n1` running allocation `a1` of job `web` (tasks `main` and `sidecar`).
    fn running_cluster() -> ClusterState {
        let state = ClusterState::new();
        let spec = parse_job_spec(
            br#"{"id":"web","tasks":[
                {"name":"main","image":"i","resources":{"cpu_millis":100,"memory_mb":32}},
                {"name":"sidecar","image":"i","resources":{"cpu_millis":100,"memory_mb":32}}]}"#,
            None,
        )
        .unwrap();
        apply(
            &state,
            1,
            Command::RegisterJob {
                spec,
                submitted_at_ms: 1,
            },
        );
        apply(
            &state,
            2,
            Command::RegisterNode {
                registration: NodeRegistration {
                    name: "n1".into(),
                    address: "10.0.0.1".into(),
                    resources: Resources {
                        cpu_millis: 1000,
                        memory_mb: 1024,
                    },
                    port_range: Default::default(),
                    labels: Default::default(),
                    drivers: vec!["docker".into()],
                    agent_addr: None,
                },
                now_ms: 2,
            },
        );
        apply(
            &state,
            3,
            Command::SetNodeStatus {
                node_id: "n1".into(),
                status: NodeStatus::Ready,
                now_ms: 3,
            },
        );
        let resources = gantry_api::Resources {
            cpu_millis: 200,
            memory_mb: 64,
        };
        let allocation = Allocation::new("a1", "web", 1, 0, "n1", resources);
        apply(
            &state,
            4,
            Command::ApplyPlan {
                plan: Plan {
                    stops: vec![],
                    placements: vec![PlannedAllocation {
                        allocation,
                        replaces: None,
                    }],
                    ..Default::default()
                },
                now_ms: 4,
            },
        );
        report(&state, 5, ClientState::Running);
        state
    }

    fn report(state: &ClusterState, index: u64, client_state: ClientState) {
        apply(
            state,
            index,
            Command::UpdateAllocations {
                updates: vec![AllocationUpdate {
                    id: "a1".into(),
                    client_state,
                    health: Health::Healthy,
                    restart_count: 0,
                    message: String::new(),
                }],
                now_ms: index,
            },
        );
    }

    fn rejected_code(outcome: &Outcome) -> &str {
        match outcome {
            Outcome::Rejected { code, .. } => code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn allocation(outcome: Outcome) -> Allocation {
        match outcome {
            Outcome::Allocation { allocation } => *allocation,
            other => panic!("expected an allocation, got {other:?}"),
        }
    }

    fn restart(task: Option<&str>) -> Command {
        Command::RestartAllocation {
            id: "a1".into(),
            task: task.map(str::to_string),
            now_ms: 9,
        }
    }

    fn stop(id: &str) -> Command {
        Command::StopAllocation {
            id: id.into(),
            now_ms: 9,
        }
    }

    #[test]
    fn stop_marks_it_desired_stop_once_and_tells_the_scheduler() {
        let state = running_cluster();
        assert_eq!(rejected_code(&apply(&state, 6, stop("nope"))), "not_found");
        state.changes.take();
        let stopped = allocation(apply(&state, 7, stop("a1")));
        assert_eq!(stopped.desired, DesiredState::Stop);
        assert_eq!(stopped.message, STOPPED_BY_OPERATOR);
        assert_eq!(stopped.modify_index, 7);
        assert_eq!(state.read().allocations.by_id["a1"], stopped);
        assert!(
            state.changes.take().jobs.contains("web"),
            "the job is evaluated again (its slot is free)"
        );
        assert_eq!(
            state
                .read()
                .allocations
                .node_usage("n1")
                .reserved
                .cpu_millis,
            0
        );

        let again = apply(&state, 8, stop("a1"));
        assert_eq!(rejected_code(&again), "conflict");
        report(&state, 9, ClientState::Complete);
        let Outcome::Rejected { message, .. } = apply(&state, 10, stop("a1")) else {
            panic!("a terminal allocation cannot be stopped");
        };
        assert!(message.contains("already complete"), "{message}");
    }

    #[test]
    fn restart_counts_requests_on_a_running_allocation_only() {
        let state = running_cluster();
        let first = allocation(apply(&state, 6, restart(None)));
        assert_eq!(
            (first.restart_requests, first.restart_task.as_deref()),
            (1, None)
        );
        assert_eq!(first.desired, DesiredState::Run);
        assert_eq!(
            first.restart_count, 0,
            "not counted against the restart policy"
        );
        let second = allocation(apply(&state, 7, restart(Some("sidecar"))));
        assert_eq!(
            (second.restart_requests, second.restart_task.as_deref()),
            (2, Some("sidecar"))
        );
        assert_eq!(second.modify_index, 7, "the session sends it to the agent");

        // An agent report keeps the counter.
        report(&state, 8, ClientState::Running);
        assert_eq!(state.read().allocations.by_id["a1"].restart_requests, 2);

        let Outcome::Rejected { code, message } = apply(&state, 9, restart(Some("db"))) else {
            panic!("an unknown task is refused");
        };
        assert_eq!(code, "bad_request");
        assert!(message.contains("main, sidecar"), "{message}");

        report(&state, 10, ClientState::Starting);
        assert_eq!(rejected_code(&apply(&state, 11, restart(None))), "conflict");
        report(&state, 12, ClientState::Running);
        apply(&state, 13, stop("a1"));
        assert_eq!(rejected_code(&apply(&state, 14, restart(None))), "conflict");
        assert_eq!(state.read().allocations.by_id["a1"].restart_requests, 2);
        assert_eq!(
            rejected_code(&apply(
                &state,
                15,
                Command::RestartAllocation {
                    id: "nope".into(),
                    task: None,
                    now_ms: 15
                }
            )),
            "not_found"
        );
    }

    #[test]
    fn restart_does_not_wake_the_scheduler() {
        let state = running_cluster();
        state.changes.take();
        allocation(apply(&state, 6, restart(None)));
        assert!(state.changes.take().is_empty());
    }
}
