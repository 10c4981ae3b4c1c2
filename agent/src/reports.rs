//! Status reports waiting to reach the managers.
//!
//! Runners record every change of an allocation's state here; the heartbeat takes the
//! pending reports, sends them, and acknowledges them once the leader has committed them.
//! Only the newest report per allocation is kept: the managers need the current state,
//! not its history. A report recorded while an older one for the same allocation is in
//! flight supersedes it and is sent on the next heartbeat, so an acknowledgement never
//! drops a newer report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gantry_api::session::AllocationReport;
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Reports {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<Pending>,
    recorded: Notify,
}

#[derive(Default)]
struct Pending {
    /// Allocation id → (the newest report, the sequence number it was recorded at).
    by_id: HashMap<String, (AllocationReport, u64)>,
    next_sequence: u64,
}

/// Reports taken for one heartbeat, to acknowledge once it is answered.
#[derive(Debug, Default)]
pub struct Batch {
    pub reports: Vec<AllocationReport>,
    sequences: Vec<(String, u64)>,
}

impl Reports {
    /// Records the newest state of an allocation and wakes the heartbeat.
    pub fn record(&self, report: AllocationReport) {
        {
            let mut pending = self.inner.pending.lock().expect("reports lock");
            pending.next_sequence += 1;
            let sequence = pending.next_sequence;
            pending.by_id.insert(report.id.clone(), (report, sequence));
        }
        self.inner.recorded.notify_one();
    }

    /// Every pending report, left pending until [`Reports::acknowledge`].
    pub fn take_batch(&self) -> Batch {
        let pending = self.inner.pending.lock().expect("reports lock");
        let mut batch = Batch::default();
        for (id, (report, sequence)) in &pending.by_id {
            batch.reports.push(report.clone());
            batch.sequences.push((id.clone(), *sequence));
        }
        batch
    }

    /// Drops the reports of `batch` that were not superseded meanwhile.
    pub fn acknowledge(&self, batch: &Batch) {
        let mut pending = self.inner.pending.lock().expect("reports lock");
        for (id, sequence) in &batch.sequences {
            if pending.by_id.get(id).is_some_and(|(_, s)| s == sequence) {
                pending.by_id.remove(id);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inner
            .pending
            .lock()
            .expect("reports lock")
            .by_id
            .is_empty()
    }

    /// Resolves after the next `record` (or at once if one happened since the last wait).
    pub async fn recorded(&self) {
        self.inner.recorded.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{ClientState, Health};

    fn report(id: &str, state: ClientState) -> AllocationReport {
        AllocationReport {
            id: id.into(),
            client_state: state,
            health: Health::Unknown,
            restart_count: 0,
            message: String::new(),
        }
    }

    #[test]
    fn only_the_newest_report_per_allocation_is_kept() {
        let reports = Reports::default();
        reports.record(report("a", ClientState::Starting));
        reports.record(report("a", ClientState::Running));
        reports.record(report("b", ClientState::Starting));
        let batch = reports.take_batch();
        assert_eq!(batch.reports.len(), 2);
        let a = batch.reports.iter().find(|r| r.id == "a").unwrap();
        assert_eq!(a.client_state, ClientState::Running);
        reports.acknowledge(&batch);
        assert!(reports.is_empty());
    }

    #[test]
    fn a_report_recorded_in_flight_survives_the_acknowledgement() {
        let reports = Reports::default();
        reports.record(report("a", ClientState::Starting));
        let batch = reports.take_batch();
        reports.record(report("a", ClientState::Running));
        reports.acknowledge(&batch);
        let left = reports.take_batch();
        assert_eq!(left.reports.len(), 1);
        assert_eq!(left.reports[0].client_state, ClientState::Running);
    }
}
