//! Batching agents' status reports into few Raft commands.
//!
//! Thousands of agents report allocation status; one Raft entry per report would spend
//! the log on bookkeeping. Heartbeats drop their reports in a queue; one task collects
//! everything that arrives within a [`WINDOW`] of the first report, keeps the last
//! report per allocation, and submits it as one `UpdateAllocations` command (split only
//! past [`MAX_UPDATES_PER_COMMAND`]). Each heartbeat is answered once its batch has
//! committed, so an agent whose heartbeat fails knows to report again.

use crate::state::command::AllocationUpdate;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the first report of a batch waits for others.
pub const WINDOW: Duration = Duration::from_millis(50);
pub const MAX_UPDATES_PER_COMMAND: usize = 2_000;
/// Heartbeats with reports waiting for a batch; past this the leader answers 503.
const QUEUE_DEPTH: usize = 64 * 1024;

pub type Outcome = Result<(), String>;

struct Pending {
    updates: Vec<AllocationUpdate>,
    done: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
pub struct Reports {
    queue: mpsc::Sender<Pending>,
}

impl Reports {
    /// Starts the batching task; `submit` commits one command's worth of updates.
    pub fn start<F, Fut>(submit: F) -> Self
    where
        F: Fn(Vec<AllocationUpdate>) -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(receiver, submit));
        Self { queue }
    }

    /// Queues reports; the receiver answers once they are committed (or not).
    pub fn enqueue(
        &self,
        updates: Vec<AllocationUpdate>,
    ) -> Result<oneshot::Receiver<Outcome>, String> {
        let (done, answer) = oneshot::channel();
        self.queue
            .try_send(Pending { updates, done })
            .map_err(|e| format!("the status-report queue is unavailable: {e}"))?;
        Ok(answer)
    }
}

async fn run<F, Fut>(mut queue: mpsc::Receiver<Pending>, submit: F)
where
    F: Fn(Vec<AllocationUpdate>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    while let Some(first) = queue.recv().await {
        tokio::time::sleep(WINDOW).await;
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let updates = coalesce(batch.iter().flat_map(|p| p.updates.iter().cloned()));
        metrics::histogram!("gantry_dispatcher_report_batch").record(updates.len() as f64);
        let mut outcome = Ok(());
        for chunk in updates.chunks(MAX_UPDATES_PER_COMMAND) {
            if let Err(e) = submit(chunk.to_vec()).await {
                outcome = Err(e);
                break;
            }
        }
        for pending in batch {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// The last report per allocation, in order of first appearance.
pub fn coalesce(updates: impl IntoIterator<Item = AllocationUpdate>) -> Vec<AllocationUpdate> {
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<AllocationUpdate> = Vec::new();
    for update in updates {
        match position.get(&update.id) {
            Some(&i) => out[i] = update,
            None => {
                position.insert(update.id.clone(), out.len());
                out.push(update);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{ClientState, Health};
    use std::sync::{Arc, Mutex};

    fn update(id: &str, state: ClientState) -> AllocationUpdate {
        AllocationUpdate {
            id: id.into(),
            client_state: state,
            health: Health::Unknown,
            restart_count: 0,
            message: String::new(),
        }
    }

    type Log = Arc<Mutex<Vec<Vec<AllocationUpdate>>>>;

    fn recording(fail: bool) -> (Reports, Log) {
        let log: Log = Arc::default();
        let seen = log.clone();
        let reports = Reports::start(move |updates| {
            seen.lock().unwrap().push(updates);
            async move {
                if fail {
                    Err("no quorum".to_string())
                } else {
                    Ok(())
                }
            }
        });
        (reports, log)
    }

    #[test]
    fn coalescing_keeps_the_last_report_per_allocation() {
        let merged = coalesce([
            update("a", ClientState::Starting),
            update("b", ClientState::Starting),
            update("a", ClientState::Running),
        ]);
        assert_eq!(
            merged,
            vec![
                update("a", ClientState::Running),
                update("b", ClientState::Starting)
            ]
        );
    }

    // A current-thread runtime: every report below is queued before the batching task
    // first runs, so what forms one batch does not depend on timing.
    #[tokio::test]
    async fn reports_from_many_heartbeats_become_one_command() {
        let (reports, log) = recording(false);
        let answers: Vec<_> = (0..100)
            .map(|i| {
                let updates = vec![update(&format!("alloc-{i}"), ClientState::Running)];
                reports.enqueue(updates).unwrap()
            })
            .collect();
        for answer in answers {
            assert_eq!(answer.await.unwrap(), Ok(()));
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1, "one command for the whole batch");
        assert_eq!(log[0].len(), 100);
    }

    #[tokio::test]
    async fn a_huge_batch_is_split_and_a_failure_reaches_every_heartbeat() {
        let (reports, log) = recording(true);
        let many: Vec<_> = (0..MAX_UPDATES_PER_COMMAND + 1)
            .map(|i| update(&format!("alloc-{i}"), ClientState::Running))
            .collect();
        let first = reports.enqueue(many).unwrap();
        let second = reports
            .enqueue(vec![update("x", ClientState::Failed)])
            .unwrap();
        assert!(first.await.unwrap().is_err());
        assert!(second.await.unwrap().is_err());
        // The first chunk failed, so the rest was not tried.
        assert_eq!(log.lock().unwrap().len(), 1);

        let (reports, log) = recording(false);
        let many: Vec<_> = (0..MAX_UPDATES_PER_COMMAND + 1)
            .map(|i| update(&format!("alloc-{i}"), ClientState::Running))
            .collect();
        reports.enqueue(many).unwrap().await.unwrap().unwrap();
        let sizes: Vec<usize> = log.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_UPDATES_PER_COMMAND, 1]);
    }
}
