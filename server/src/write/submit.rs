//! `submit`: put one command in the log from whichever manager received it.

use super::forward::{propose_on_leader, ForwardError};
use super::group_commit::{Applied, ProposeError};
use crate::manager::Manager;
use crate::state::Command;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No leader could take the write before the deadline. The write may still have been
    /// committed if the leader fell silent after receiving it.
    #[error("{0}")]
    NoQuorum(String),
    #[error("{0}")]
    Stopped(String),
}

/// Backoff between attempts while there is no leader: short at first, since elections
/// usually end within one election timeout.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

pub async fn submit(manager: &Manager, command: Command) -> Result<Applied, WriteError> {
    let deadline = Instant::now() + manager.config.write_timeout;
    let mut backoff = FIRST_BACKOFF;
    let mut last_problem = String::from("no leader is known");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(WriteError::NoQuorum(format!(
                "no leader accepted the write within {:?} ({last_problem}); it may or may not \
                 have been applied — check the cluster with `gantry status` and retry",
                manager.config.write_timeout
            )));
        }
        let leader = manager.leader();
        let attempt = match &leader {
            Some(leader) if leader.id == manager.id => {
                match tokio::time::timeout(remaining, manager.group_commit.propose(&command)).await
                {
                    Ok(result) => result.map_err(ForwardError::from),
                    Err(_) => Err(ForwardError::Unreachable(
                        "this leader could not commit in time (no quorum?)".into(),
                    )),
                }
            }
            Some(leader) => {
                propose_on_leader(&manager.peer_client, &leader.addr, &command, remaining).await
            }
            None => Err(ForwardError::Unreachable("no leader is known".into())),
        };
        match attempt {
            Ok(applied) => return Ok(applied),
            Err(ForwardError::Propose(ProposeError::Stopped(message))) => {
                return Err(WriteError::Stopped(message))
            }
            Err(problem) => last_problem = problem.to_string(),
        }
        // Wait for the leader to change, or the backoff, whichever comes first.
        let seen = leader.map(|l| l.id);
        let mut metrics = manager.raft.metrics();
        let wait = metrics.wait_for(|m| m.current_leader != seen);
        let _ = tokio::time::timeout(backoff.min(remaining), wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
