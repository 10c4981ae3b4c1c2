//! What happens after a task stops on its own: the job's restart policy as a pure
//! decision, so the rules can be read and tested apart from the runner's plumbing.
//!
//! - A batch task that exits 0 is done; the allocation completes when all its tasks are.
//! - Any other exit — a failure, or a service task that ended at all — is restarted on
//!   this node after `delay`, up to `attempts` times over the allocation's life; past
//!   that the allocation fails and the managers place a replacement elsewhere.
//! - A failing health check counts as a failure of the task.

use std::time::Duration;

use gantry_api::job::{JobType, RestartPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Start the task again after this delay; it is restart number `attempt`.
    Restart { delay: Duration, attempt: u32 },
    /// The task is done (a batch task that succeeded).
    Done,
    /// The restart attempts are used up: the allocation fails.
    Fail,
}

pub fn after_stop(
    kind: JobType,
    succeeded: bool,
    restarts_used: u32,
    policy: &RestartPolicy,
) -> AfterStop {
    if kind == JobType::Batch && succeeded {
        return AfterStop::Done;
    }
    if restarts_used < policy.attempts {
        AfterStop::Restart {
            delay: policy.delay.as_duration(),
            attempt: restarts_used + 1,
        }
    } else {
        AfterStop::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::GDuration;

    fn policy(attempts: u32) -> RestartPolicy {
        RestartPolicy {
            attempts,
            delay: GDuration::from_secs(1),
        }
    }

    #[test]
    fn failures_restart_until_the_attempts_are_used_up() {
        let p = policy(2);
        assert_eq!(
            after_stop(JobType::Service, false, 0, &p),
            AfterStop::Restart {
                delay: Duration::from_secs(1),
                attempt: 1
            }
        );
        assert!(matches!(
            after_stop(JobType::Service, false, 1, &p),
            AfterStop::Restart { attempt: 2, .. }
        ));
        assert_eq!(after_stop(JobType::Service, false, 2, &p), AfterStop::Fail);
        assert_eq!(
            after_stop(JobType::Batch, false, 0, &policy(0)),
            AfterStop::Fail
        );
    }

    #[test]
    fn a_service_that_exits_cleanly_is_restarted_and_a_batch_task_is_done() {
        let p = policy(3);
        assert!(matches!(
            after_stop(JobType::Service, true, 0, &p),
            AfterStop::Restart { .. }
        ));
        assert!(matches!(
            after_stop(JobType::Global, true, 0, &p),
            AfterStop::Restart { .. }
        ));
        assert_eq!(after_stop(JobType::Batch, true, 3, &p), AfterStop::Done);
    }
}
