//! A follower's way to the leader: the command (or a read-index request) travels over the
//! peer transport (with the cluster secret), and the leader answers with what its group
//! commit returned.

use super::group_commit::{Applied, ProposeError};
use crate::raft::codec;
use crate::raft::network::PeerClient;
use crate::state::Command;
use std::time::Duration;

pub const PROPOSE_PATH: &str = "/v1/raft/propose";
pub const READ_INDEX_PATH: &str = "/v1/raft/read-index";

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The leader could not be reached or did not answer in time.
    #[error("leader unreachable: {0}")]
    Unreachable(String),
    /// The leader answered, with an error.
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

pub async fn propose_on_leader(
    client: &PeerClient,
    leader_addr: &str,
    command: &Command,
    timeout: Duration,
) -> Result<Applied, ForwardError> {
    let body = serde_json::to_vec(command).expect("commands always serialise");
    let answer: Result<Applied, ProposeError> =
        call(client, leader_addr, PROPOSE_PATH, body, timeout).await?;
    Ok(answer?)
}

/// Asks the leader for the log index a linearizable read must wait for.
pub async fn read_index_on_leader(
    client: &PeerClient,
    leader_addr: &str,
    timeout: Duration,
) -> Result<u64, ForwardError> {
    let answer: Result<u64, ProposeError> =
        call(client, leader_addr, READ_INDEX_PATH, Vec::new(), timeout).await?;
    Ok(answer?)
}

async fn call<T: serde::de::DeserializeOwned>(
    client: &PeerClient,
    leader_addr: &str,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<T, ForwardError> {
    let unreachable =
        |e: &dyn std::fmt::Display| ForwardError::Unreachable(format!("{leader_addr}: {e}"));
    let response = client
        .post(format!("http://{leader_addr}{path}"))
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| unreachable(&e))?;
    if !status.is_success() {
        return Err(unreachable(&format!(
            "answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    codec::decode(&bytes).map_err(|e| unreachable(&e))
}
