//! The scheduler's metrics, recorded by its loop (`scheduler::worker`).
//!
//! Placement latency is measured per placement, from the moment the scheduler takes up
//! the change that made the job need it (the job or one of its nodes changed, a backoff
//! ended) to the commit of the plan that places it: queueing behind other jobs, the
//! evaluation, a retry after a rejection and the Raft commit all count.

use super::names;
use crate::scheduler::placement::Explanation;
use crate::scheduler::reconcile::UnplacedSlot;
use crate::state::plan::PlanResult;
use std::collections::HashMap;
use std::time::Instant;

/// `n` jobs were evaluated.
pub fn evaluated(n: usize) {
    if n > 0 {
        metrics::counter!(names::SCHEDULER_EVALUATIONS).increment(n as u64);
    }
}

/// An evaluation left these instances unplaced.
pub fn unplaced(slots: &[UnplacedSlot]) {
    for slot in slots {
        let reason = failure_reason(slot.explanation.as_ref());
        metrics::counter!(names::SCHEDULER_FAILED_PLACEMENTS, "reason" => reason).increment(1);
    }
}

/// A plan was committed. `job_of` maps its allocations to their jobs, `since` the jobs
/// to when the scheduler took them up.
pub fn plan_applied(
    result: &PlanResult,
    job_of: &HashMap<String, String>,
    since: &HashMap<String, Instant>,
) {
    metrics::counter!(names::SCHEDULER_PLACEMENTS).increment(result.placed.len() as u64);
    if !result.rejected.is_empty() {
        metrics::counter!(names::SCHEDULER_PLAN_REJECTIONS).increment(result.rejected.len() as u64);
    }
    let histogram = metrics::histogram!(names::SCHEDULER_PLACEMENT_SECONDS);
    for alloc in &result.placed {
        if let Some(at) = job_of.get(alloc).and_then(|job| since.get(job)) {
            histogram.record(at.elapsed().as_secs_f64());
        }
    }
}

/// The main reason an instance fits nowhere, as one of [`names::FAILURE_REASONS`]: the
/// resource most nodes ran out of, else the filter that turned most nodes away.
pub fn failure_reason(explanation: Option<&Explanation>) -> &'static str {
    let Some(why) = explanation else {
        // Only a job its spec makes unplaceable has no per-node explanation.
        return "invalid_job";
    };
    if why.nodes_evaluated == 0 {
        return "no_nodes";
    }
    let most = |map: &std::collections::BTreeMap<String, usize>| {
        map.iter()
            .max_by_key(|(_, n)| **n)
            .map(|(key, _)| key.clone())
    };
    if let Some(dimension) = most(&why.exhausted) {
        return match dimension.as_str() {
            "cpu" => "cpu",
            "memory" => "memory",
            "ports" => "ports",
            d if d.starts_with("port ") => "port",
            _ => "other",
        };
    }
    match most(&why.filtered) {
        Some(key) if key == "not ready/eligible" => "not_schedulable",
        Some(key) if key.starts_with("missing driver") => "missing_driver",
        Some(key) if key.starts_with("filtered by constraint") => "constraint",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn why(filtered: &[(&str, usize)], exhausted: &[(&str, usize)]) -> Explanation {
        let map = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
            pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        Explanation {
            nodes_evaluated: 5,
            nodes_fit: 0,
            filtered: map(filtered),
            exhausted: map(exhausted),
        }
    }

    #[test]
    fn reasons_come_from_the_explanation() {
        assert_eq!(failure_reason(None), "invalid_job");
        assert_eq!(failure_reason(Some(&Explanation::default())), "no_nodes");
        let cases = [
            (
                why(&[("not ready/eligible", 4)], &[("memory", 1)]),
                "memory",
            ),
            (why(&[], &[("cpu", 3), ("memory", 2)]), "cpu"),
            (why(&[], &[("port 8080", 5)]), "port"),
            (why(&[], &[("ports", 5)]), "ports"),
            (why(&[("not ready/eligible", 5)], &[]), "not_schedulable"),
            (why(&[("missing driver docker", 5)], &[]), "missing_driver"),
            (
                why(
                    &[
                        ("filtered by constraint label.zone = a", 3),
                        ("not ready/eligible", 2),
                    ],
                    &[],
                ),
                "constraint",
            ),
            (
                why(&[("refused: allocation x is already placed", 5)], &[]),
                "other",
            ),
        ];
        for (explanation, reason) in cases {
            assert_eq!(
                failure_reason(Some(&explanation)),
                reason,
                "{explanation:?}"
            );
            assert!(names::FAILURE_REASONS.contains(&reason));
        }
    }
}
