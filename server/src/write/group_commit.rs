//! Group commit: many concurrent writes, one Raft entry.
//!
//! openraft writes the leader's log one entry after another, each with its own fsync, so
//! one entry per request would cap writes at the disk's sync rate. Instead, a single task
//! takes every command waiting in the queue, encodes them as one batch and proposes it.
//! A few batches may be in flight at once; while they are, new commands queue up and form
//! the next batch, so the batch size grows with the load and latency stays low when idle.

use crate::raft::{NodeId, Raft};
use crate::state::command::{decode_outcomes, Command, Outcome};
use gantry_raft_store::Command as LogCommand;
use openraft::error::ClientWriteError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Batches proposed but not yet committed; more would only lengthen the queue in openraft.
const MAX_IN_FLIGHT: usize = 3;
/// Upper bounds of one batch.
const MAX_BATCH_COMMANDS: usize = 1024;
const MAX_BATCH_BYTES: usize = 256 * 1024;
const QUEUE_DEPTH: usize = 16 * 1024;

/// A command that was committed and applied, with the log index of its batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeError {
    #[error("this manager is not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("the Raft node has stopped: {0}")]
    Stopped(String),
}

struct Pending {
    encoded: Vec<u8>,
    reply: oneshot::Sender<Result<Applied, ProposeError>>,
}

#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    pub fn start(raft: Raft) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_batches(raft, receiver));
        Self { queue }
    }

    /// Proposes one command through this manager's Raft node, which must be the leader.
    pub async fn propose(&self, command: &Command) -> Result<Applied, ProposeError> {
        let encoded = serde_json::to_vec(command).expect("commands always serialise");
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { encoded, reply })
            .await
            .map_err(|_| ProposeError::Stopped("the group-commit queue is closed".into()))?;
        answer
            .await
            .map_err(|_| ProposeError::Stopped("the batch was dropped".into()))?
    }
}

async fn run_batches(raft: Raft, mut queue: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // Wait for a free slot first: while all are busy, commands pile up in the queue
        // and the next batch takes them all.
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closes");
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut bytes = first.encoded.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.encoded.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("gantry_write_batch_size").record(batch.len() as f64);

        let (payload, replies) = encode(batch);
        match raft.client_write_ff(LogCommand(payload)).await {
            Ok(receiver) => {
                tokio::spawn(async move {
                    let result = receiver.await;
                    drop(permit);
                    deliver(result, replies);
                });
            }
            Err(fatal) => {
                let error = ProposeError::Stopped(fatal.to_string());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Joins the separately encoded commands into one JSON array, the batch format of
/// `state::command`.
fn encode(batch: Vec<Pending>) -> (Vec<u8>, Vec<oneshot::Sender<Result<Applied, ProposeError>>>) {
    let mut payload =
        Vec::with_capacity(batch.iter().map(|p| p.encoded.len() + 1).sum::<usize>() + 2);
    let mut replies = Vec::with_capacity(batch.len());
    payload.push(b'[');
    for (i, pending) in batch.into_iter().enumerate() {
        if i > 0 {
            payload.push(b',');
        }
        payload.extend_from_slice(&pending.encoded);
        replies.push(pending.reply);
    }
    payload.push(b']');
    (payload, replies)
}

type WriteResult = Result<
    openraft::raft::ClientWriteResponse<crate::raft::TypeConfig>,
    ClientWriteError<NodeId, openraft::BasicNode>,
>;

fn deliver(
    result: Result<WriteResult, oneshot::error::RecvError>,
    replies: Vec<oneshot::Sender<Result<Applied, ProposeError>>>,
) {
    let fail_all = |error: ProposeError, replies: Vec<oneshot::Sender<_>>| {
        for reply in replies {
            let _ = reply.send(Err(error.clone()));
        }
    };
    let response = match result {
        Ok(Ok(response)) => response,
        Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
            return fail_all(
                ProposeError::NotLeader {
                    leader: forward.leader_id,
                },
                replies,
            )
        }
        Ok(Err(other)) => return fail_all(ProposeError::Stopped(other.to_string()), replies),
        // openraft drops the responder when leadership is lost before the entry commits.
        Err(_) => return fail_all(ProposeError::NotLeader { leader: None }, replies),
    };
    let index = response.log_id.index;
    let outcomes = match decode_outcomes(&response.data.0) {
        Ok(outcomes) if outcomes.len() == replies.len() => outcomes,
        Ok(outcomes) => {
            let message = format!(
                "batch of {} commands answered with {} outcomes",
                replies.len(),
                outcomes.len()
            );
            return fail_all(ProposeError::Stopped(message), replies);
        }
        Err(e) => return fail_all(ProposeError::Stopped(e.to_string()), replies),
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(Ok(Applied { index, outcome }));
    }
}
