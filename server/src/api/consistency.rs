//! How fresh a read must be.
//!
//! By default a read is linearizable: it reflects every write acknowledged before it
//! started. The leader confirms it still leads (a heartbeat round to a quorum) and reads
//! once its state machine has applied up to its commit index; a follower asks the leader
//! for that index and waits until it has applied it locally. `?stale=true` skips all of
//! this and answers from the local replica. `?index=N&wait=30s` (a blocking query)
//! waits until the local state has passed index N, up to the wait time.

use super::error::ApiError;
use crate::manager::Manager;
use crate::write::forward::read_index_on_leader;
use crate::write::leader_retry::{with_leader, Attempt, LeaderError, Target};
use serde::Deserialize;
use std::time::Duration;

/// The longest a blocking query may wait.
const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// `?stale`, `?index`, `?wait` of every read route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// `true` (or `1`, or the bare `?stale`) answers from this manager's replica without
    /// asking the leader: fast and available without a quorum, possibly behind.
    #[serde(default)]
    #[param(schema_with = super::openapi::flag_schema)]
    pub stale: Option<String>,
    /// A blocking query: answer once this manager has applied a log index above this
    /// one (an `X-Gantry-Index` from an earlier answer), or when `wait` runs out.
    #[serde(default)]
    pub index: Option<u64>,
    /// How long a blocking query may wait (default `60s`, at most `5m`).
    #[serde(default)]
    #[param(schema_with = super::openapi::duration_schema)]
    pub wait: Option<String>,
}

impl ReadParams {
    fn stale(&self) -> Result<bool, ApiError> {
        match self.stale.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("") | Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "stale: expected true or false, got `{other}`"
            ))),
        }
    }

    fn wait(&self) -> Result<Duration, ApiError> {
        match &self.wait {
            None => Ok(DEFAULT_WAIT),
            Some(text) => humantime::parse_duration(text)
                .map(|d| d.min(MAX_WAIT))
                .map_err(|e| {
                    ApiError::bad_request(format!("wait: `{text}` is not a duration ({e})"))
                }),
        }
    }
}

/// Makes the local state fresh enough for the read the parameters ask for.
pub async fn prepare_read(manager: &Manager, params: &ReadParams) -> Result<(), ApiError> {
    let stale = params.stale()?;
    let wait = params.wait()?;
    if !stale {
        linearize(manager).await?;
    }
    if let Some(index) = params.index {
        wait_for_index_above(manager, index, wait).await;
    }
    Ok(())
}

async fn linearize(manager: &Manager) -> Result<(), ApiError> {
    let read_index = with_leader(manager, |target, remaining| async move {
        let index = match target {
            Target::ThisManager => {
                match tokio::time::timeout(remaining, manager.raft.get_read_log_id()).await {
                    Ok(Ok((read, _applied))) => Ok(read.map_or(0, |id| id.index)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the leader could not reach a quorum in time".to_string()),
                }
            }
            Target::Leader(leader) => {
                read_index_on_leader(&manager.peer_client, &leader.addr, remaining)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match index {
            Ok(index) => Attempt::Done(index),
            Err(reason) => Attempt::<u64, ()>::Retry(reason),
        }
    })
    .await
    .map_err(|error| {
        let reason = match error {
            LeaderError::Deadline(reason) => reason,
            LeaderError::Failed(()) => "the Raft node stopped".to_string(),
        };
        ApiError::no_quorum(format!(
            "cannot confirm a linearizable read ({reason}); retry, or read with ?stale=true"
        ))
    })?;

    // Answer once this manager has applied everything up to the read index.
    let mut metrics = manager.raft.metrics();
    let applied = metrics.wait_for(|m| m.last_applied.map_or(0, |id| id.index) >= read_index);
    let caught_up = matches!(
        tokio::time::timeout(manager.config.write_timeout, applied).await,
        Ok(Ok(_))
    );
    if caught_up {
        Ok(())
    } else {
        Err(ApiError::no_quorum(format!(
            "this manager did not apply up to index {read_index} in time; retry, or read with ?stale=true"
        )))
    }
}

async fn wait_for_index_above(manager: &Manager, index: u64, wait: Duration) {
    let mut metrics = manager.raft.metrics();
    let passed = metrics.wait_for(|m| m.last_applied.map_or(0, |id| id.index) > index);
    let _ = tokio::time::timeout(wait, passed).await;
}
