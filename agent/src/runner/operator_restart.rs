//! Restarts an operator asked for (`POST /v1/allocations/{id}/restart`), as a pure
//! decision on the allocation records the session brings.
//!
//! The managers count the requests on the allocation (`restart_requests`, with the task
//! the last one named in `restart_task`). A runner remembers the count it last acted on
//! and restarts when a record shows more. It starts from the count of the record it was
//! created with, so a runner never acts on requests made before it existed: a new
//! allocation has none, and after an agent restart the tasks are adopted as they run —
//! the agent keeps no state, so it cannot tell a request it already carried out from one
//! it missed while it was down, and it takes them all as done. A replayed record (a new
//! session's complete set, an echo of a status report) carries the same count and
//! restarts nothing.
//!
//! Requests that arrive together (several before the session delivered one) are seen at
//! once with only the last one's task: they restart every task, a superset of what was
//! asked, rather than risk leaving out a task one of them named.
//!
//! Such a restart does not count against the restart policy: `restart_count` is left as
//! it is (it counts the policy's restarts only).

use gantry_api::Allocation;

/// What a newer allocation record asks of a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartAsk {
    /// Restart every task (that has not finished, for batch jobs).
    All,
    /// Restart this task only.
    Task(String),
}

/// The restart `allocation` asks for, given the request count the runner `acted_on`.
pub fn requested(acted_on: u64, allocation: &Allocation) -> Option<RestartAsk> {
    let now = allocation.restart_requests;
    if now <= acted_on {
        // Nothing new (or the count went back, e.g. an older state was restored).
        return None;
    }
    match &allocation.restart_task {
        Some(task) if now - acted_on == 1 => Some(RestartAsk::Task(task.clone())),
        _ => Some(RestartAsk::All),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(requests: u64, task: Option<&str>) -> Allocation {
        let resources = gantry_api::Resources {
            cpu_millis: 100,
            memory_mb: 32,
        };
        Allocation {
            restart_requests: requests,
            restart_task: task.map(str::to_string),
            ..Allocation::new("a1", "web", 1, 0, "n1", resources)
        }
    }

    #[test]
    fn only_a_count_past_the_one_acted_on_restarts() {
        assert_eq!(requested(0, &record(0, None)), None);
        assert_eq!(requested(3, &record(3, Some("main"))), None, "a replay");
        assert_eq!(requested(4, &record(3, None)), None, "an older state");
        assert_eq!(requested(3, &record(4, None)), Some(RestartAsk::All));
        assert_eq!(
            requested(3, &record(4, Some("main"))),
            Some(RestartAsk::Task("main".into()))
        );
    }

    #[test]
    fn requests_seen_together_restart_every_task() {
        assert_eq!(
            requested(1, &record(3, Some("main"))),
            Some(RestartAsk::All)
        );
    }

    #[test]
    fn records_without_the_fields_ask_for_nothing() {
        // A record from a manager that predates the counter.
        let allocation: Allocation = serde_json::from_str(
            r#"{"id":"a1","job_id":"web","job_version":1,"slot":0,"node_id":"n1",
            "resources":{"cpu_millis":100,"memory_mb":32},"ports":[],"desired":"run",
            "client_state":"running","health":"healthy","restart_count":0,"message":"",
            "placement_reason":"test","created_at_ms":0,"modified_at_ms":0,
            "create_index":1,"modify_index":1}"#,
        )
        .unwrap();
        assert_eq!(allocation.restart_requests, 0);
        assert_eq!(requested(0, &allocation), None);
    }
}
