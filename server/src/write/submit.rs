//! `submit`: put one command in the log from whichever manager received it.

use super::forward::{propose_on_leader, ForwardError};
use super::group_commit::{Applied, ProposeError};
use super::leader_retry::{with_leader, Attempt, LeaderError, Target};
use crate::manager::Manager;
use crate::state::Command;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No leader could take the write before the deadline. The write may still have been
    /// committed if the leader fell silent after receiving it.
    #[error("{0}")]
    NoQuorum(String),
    #[error("{0}")]
    Stopped(String),
}

pub async fn submit(manager: &Manager, command: Command) -> Result<Applied, WriteError> {
    let command = &command;
    let result = with_leader(manager, |target, remaining| async move {
        let outcome = match target {
            Target::ThisManager => {
                match tokio::time::timeout(remaining, manager.group_commit.propose(command)).await {
                    Ok(result) => result.map_err(ForwardError::from),
                    Err(_) => Err(ForwardError::Unreachable(
                        "this leader could not commit in time (no quorum?)".into(),
                    )),
                }
            }
            Target::Leader(leader) => {
                propose_on_leader(&manager.peer_client, &leader.addr, command, remaining).await
            }
        };
        match outcome {
            Ok(applied) => Attempt::Done(applied),
            Err(ForwardError::Propose(ProposeError::Stopped(message))) => Attempt::Fail(message),
            Err(problem) => Attempt::Retry(problem.to_string()),
        }
    })
    .await;
    result.map_err(|error| match error {
        LeaderError::Failed(message) => WriteError::Stopped(message),
        LeaderError::Deadline(reason) => WriteError::NoQuorum(format!(
            "no leader accepted the write within {:?} ({reason}); it may or may not have been \
             applied — check the cluster with `gantry status` and retry",
            manager.config.write_timeout
        )),
    })
}
