//! Doing something on the leader, whichever manager we are, across elections.
//!
//! Writes and linearizable reads both need the leader: run locally if this manager leads,
//! else go to the leader over the peer transport. While there is no leader, or the one we
//! knew stops answering, the attempt is retried with backoff (waking early when a new
//! leader becomes known) until the write timeout runs out.

use crate::manager::Manager;
use gantry_api::status::LeaderRef;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Where one attempt should run.
pub enum Target {
    ThisManager,
    Leader(LeaderRef),
}

/// How one attempt ended.
pub enum Attempt<T, E> {
    Done(T),
    /// Worth trying again (no leader, leader unreachable or deposed); says why.
    Retry(String),
    /// Will not get better by retrying.
    Fail(E),
}

pub enum LeaderError<E> {
    /// The deadline passed; the last reason an attempt gave.
    Deadline(String),
    Failed(E),
}

/// Runs `attempt` against the current leader until it is done, fails, or the manager's
/// write timeout passes. `attempt` gets the target and the time left.
pub async fn with_leader<T, E, F, Fut>(
    manager: &Manager,
    mut attempt: F,
) -> Result<T, LeaderError<E>>
where
    F: FnMut(Target, Duration) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let deadline = Instant::now() + manager.config.write_timeout;
    let mut backoff = FIRST_BACKOFF;
    let mut last_reason = String::from("no leader is known");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(LeaderError::Deadline(last_reason));
        }
        let leader = manager.leader();
        let outcome = match &leader {
            Some(leader) if leader.id == manager.id => {
                attempt(Target::ThisManager, remaining).await
            }
            Some(leader) => attempt(Target::Leader(leader.clone()), remaining).await,
            None => Attempt::Retry("no leader is known".into()),
        };
        match outcome {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(LeaderError::Failed(error)),
            Attempt::Retry(reason) => last_reason = reason,
        }
        // Wait for the leader to change, or the backoff, whichever comes first.
        let seen = leader.map(|l| l.id);
        let mut metrics = manager.raft.metrics();
        let changed = metrics.wait_for(|m| m.current_leader != seen);
        let _ = tokio::time::timeout(backoff.min(remaining), changed).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
