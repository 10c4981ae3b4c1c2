//! How far a submitted job has got: its instances counted by state, whether every one
//! runs, and why the others do not. Pure, so `job run` can be tested without a cluster.

use std::collections::BTreeSet;

use gantry_api::jobs::job_status;
use gantry_api::{Allocation, ClientState, Job, JobType};

/// A job's instances by state, as `job run` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    pub id: String,
    pub version: u64,
    pub kind: JobType,
    /// Instances wanted: `replicas`, or for a global job one per node that takes it
    /// (as far as known: those placed plus those that fit nowhere).
    pub desired: usize,
    /// Slots with a live allocation (wanted to run, not failed, complete or lost).
    pub placed: usize,
    /// Slots whose live allocation runs.
    pub running: usize,
    /// Slots of a batch job that completed.
    pub complete: usize,
    /// Allocations that failed or were lost since the job was submitted.
    pub failed: usize,
    /// Instances that fit nowhere.
    pub unplaced: usize,
    /// The job's status as the managers derive it.
    pub status: String,
}

impl JobProgress {
    /// `since_index`: the index the job was submitted at; failures before it are old.
    pub fn of(job: &Job, allocations: &[Allocation], since_index: u64) -> JobProgress {
        let mut placed = BTreeSet::new();
        let mut running = BTreeSet::new();
        let mut complete = BTreeSet::new();
        let mut failed = 0;
        for a in allocations.iter().filter(|a| a.job_id == job.spec.id) {
            if a.reserves_resources() {
                // A global job's slots are per node; a service's per slot number.
                let key = slot_key(job.spec.kind, a);
                placed.insert(key.clone());
                if a.client_state == ClientState::Running {
                    running.insert(key);
                }
            } else if a.client_state == ClientState::Complete {
                complete.insert(slot_key(job.spec.kind, a));
            } else if matches!(a.client_state, ClientState::Failed | ClientState::Lost)
                && a.modify_index > since_index
            {
                failed += 1;
            }
        }
        let unplaced = job.unplaced.len();
        let desired = match job.spec.kind {
            JobType::Global => placed.len() + unplaced,
            _ => job.spec.replicas as usize,
        };
        JobProgress {
            id: job.spec.id.clone(),
            version: job.version,
            kind: job.spec.kind,
            desired,
            placed: placed.len(),
            running: running.len(),
            complete: complete.difference(&placed).count(),
            failed,
            unplaced,
            status: job.status.clone(),
        }
    }

    /// Every wanted instance runs (or, for a batch job, runs or has completed).
    pub fn is_done(&self) -> bool {
        match self.status.as_str() {
            job_status::STOPPED => self.placed == 0,
            job_status::COMPLETE => true,
            job_status::RUNNING => match self.kind {
                JobType::Batch => self.running + self.complete >= self.desired,
                JobType::Global => self.running == self.placed,
                JobType::Service => self.running >= self.desired,
            },
            _ => false,
        }
    }

    /// `web v3: desired 3, placed 3, running 2, failed 0` (+ `complete`, `unplaced`
    /// when there are any).
    pub fn line(&self) -> String {
        let desired = match self.kind {
            JobType::Global => format!("{} (global)", self.desired),
            _ => self.desired.to_string(),
        };
        let mut line = format!(
            "{} v{}: desired {desired}, placed {}, running {}, failed {}",
            self.id, self.version, self.placed, self.running, self.failed
        );
        if self.complete > 0 {
            line.push_str(&format!(", complete {}", self.complete));
        }
        if self.unplaced > 0 {
            line.push_str(&format!(", unplaced {}", self.unplaced));
        }
        line.push_str(&format!(" [{}]", self.status));
        line
    }
}

fn slot_key(kind: JobType, a: &Allocation) -> String {
    match kind {
        JobType::Global => a.node_id.clone(),
        _ => a.slot.to_string(),
    }
}

/// Why instances are not running: each unplaced instance's explanation, then the
/// allocations that failed since `since_index` with the agent's message.
pub fn why_not(job: &Job, allocations: &[Allocation], since_index: u64) -> Vec<String> {
    let mut reasons = Vec::new();
    for u in &job.unplaced {
        let which = match (&u.slot, &u.node_id) {
            (Some(slot), _) => format!("slot {slot}"),
            (None, Some(node)) => format!("node {node}"),
            (None, None) => "an instance".to_string(),
        };
        reasons.push(format!("{which} fits nowhere: {}", u.message));
    }
    for a in allocations.iter().filter(|a| {
        a.job_id == job.spec.id
            && matches!(a.client_state, ClientState::Failed | ClientState::Lost)
            && a.modify_index > since_index
    }) {
        let state = serde_plain(&a.client_state);
        let message = if a.message.is_empty() {
            String::new()
        } else {
            format!(": {}", a.message)
        };
        reasons.push(format!(
            "allocation {} (slot {}) on node {} {state}{message}",
            a.id, a.slot, a.node_id
        ));
    }
    for a in allocations.iter().filter(|a| {
        a.job_id == job.spec.id && a.reserves_resources() && a.client_state != ClientState::Running
    }) {
        let message = if a.message.is_empty() {
            String::new()
        } else {
            format!(": {}", a.message)
        };
        reasons.push(format!(
            "allocation {} (slot {}) on node {} is still {}{message}",
            a.id,
            a.slot,
            a.node_id,
            serde_plain(&a.client_state)
        ));
    }
    reasons
}

/// An enum's wire name (`running`, `ineligible`).
pub fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::scheduling::UnplacedSlot;
    use gantry_api::{DesiredState, JobSpec, Resources};

    fn job(kind: JobType, replicas: u32, status: &str) -> Job {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "id": "web", "type": kind, "replicas": replicas,
            "tasks": [{"name": "main", "image": "x", "resources": {"cpu_millis": 1, "memory_mb": 1}}]
        }))
        .unwrap();
        Job {
            spec,
            version: 2,
            status: status.into(),
            submitted_at_ms: 1,
            create_index: 1,
            modify_index: 10,
            unplaced: vec![],
        }
    }

    fn alloc(
        slot: u32,
        node: &str,
        desired: DesiredState,
        state: ClientState,
        index: u64,
    ) -> Allocation {
        let resources = Resources {
            cpu_millis: 1,
            memory_mb: 1,
        };
        Allocation {
            desired,
            client_state: state,
            message: "exit 1".into(),
            create_index: index,
            modify_index: index,
            ..Allocation::new(
                format!("web-{slot}-{index}"),
                "web",
                2,
                slot,
                node,
                resources,
            )
        }
    }

    use ClientState::*;
    use DesiredState::*;

    #[test]
    fn a_service_is_done_when_every_slot_runs() {
        let allocs = vec![
            alloc(0, "n1", Run, Running, 11),
            alloc(1, "n2", Run, Pending, 11),
            alloc(2, "n1", Run, Failed, 12),
            alloc(2, "n3", Run, Running, 13),
            alloc(1, "n3", Run, Failed, 5),
        ];
        let progress = JobProgress::of(&job(JobType::Service, 3, "running"), &allocs, 10);
        assert_eq!(
            (
                progress.desired,
                progress.placed,
                progress.running,
                progress.failed
            ),
            (3, 3, 2, 1),
            "the failure before the submission is not counted"
        );
        assert!(!progress.is_done());
        assert_eq!(
            progress.line(),
            "web v2: desired 3, placed 3, running 2, failed 1 [running]"
        );
        let mut allocs = allocs;
        allocs[1].client_state = Running;
        assert!(JobProgress::of(&job(JobType::Service, 3, "running"), &allocs, 10).is_done());
        assert!(
            !JobProgress::of(&job(JobType::Service, 3, "pending"), &allocs, 10).is_done(),
            "the managers' status must agree"
        );
    }

    #[test]
    fn a_stopped_job_is_done_once_nothing_is_live() {
        let allocs = vec![alloc(0, "n1", Stop, Running, 11)];
        let progress = JobProgress::of(&job(JobType::Service, 0, "stopped"), &allocs, 10);
        assert!(
            progress.is_done(),
            "desired stop does not reserve: {progress:?}"
        );
    }

    #[test]
    fn a_batch_job_counts_completed_slots() {
        let allocs = vec![
            alloc(0, "n1", Run, Complete, 11),
            alloc(1, "n1", Run, Running, 11),
        ];
        let progress = JobProgress::of(&job(JobType::Batch, 2, "running"), &allocs, 10);
        assert_eq!((progress.complete, progress.running), (1, 1));
        assert!(progress.is_done());
    }

    #[test]
    fn unplaced_instances_explain_themselves() {
        let mut j = job(JobType::Service, 2, "degraded");
        j.unplaced = vec![UnplacedSlot {
            slot: Some(1),
            node_id: None,
            replaces: None,
            message: "0 of 3 nodes fit: 3 exhausted cpu".into(),
            explanation: None,
        }];
        let allocs = vec![
            alloc(0, "n1", Run, Running, 11),
            alloc(1, "n2", Run, Failed, 12),
        ];
        let progress = JobProgress::of(&j, &allocs, 10);
        assert_eq!(progress.unplaced, 1);
        assert!(!progress.is_done());
        assert_eq!(
            why_not(&j, &allocs, 10),
            vec![
                "slot 1 fits nowhere: 0 of 3 nodes fit: 3 exhausted cpu".to_string(),
                "allocation web-1-12 (slot 1) on node n2 failed: exit 1".to_string(),
            ]
        );
    }

    #[test]
    fn a_global_job_wants_what_is_placed_and_unplaced() {
        let allocs = vec![
            alloc(0, "n1", Run, Running, 11),
            alloc(0, "n2", Run, Running, 11),
        ];
        let progress = JobProgress::of(&job(JobType::Global, 1, "running"), &allocs, 10);
        assert_eq!(
            (progress.desired, progress.placed, progress.running),
            (2, 2, 2)
        );
        assert!(progress.is_done());
    }
}
