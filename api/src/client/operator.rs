//! Operator calls beyond membership: leadership transfer, and allocation control
//! (restart in place, stop and replace).

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Call, Client, ClientError};
use crate::{Allocation, RestartRequest};

/// `POST /v1/operator/raft/transfer-leader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferLeaderRequest {
    pub id: u64,
}

impl Client {
    /// `POST /v1/operator/raft/transfer-leader`: ask the leader to hand leadership to
    /// manager `id`. Returns the manager's answer as it came.
    pub async fn transfer_leader(&self, id: u64) -> Result<serde_json::Value, ClientError> {
        let path = ["v1", "operator", "raft", "transfer-leader"];
        let call = Call::new(Method::POST, &path).json(&TransferLeaderRequest { id })?;
        let answer = self.call(call).await?;
        if answer.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        answer.decode()
    }

    /// `POST /v1/allocations/{id}/restart`: restarts its tasks (or `task`) in place on
    /// the node. Returns the allocation.
    pub async fn restart_allocation(
        &self,
        id: &str,
        task: Option<&str>,
    ) -> Result<Allocation, ClientError> {
        let path = ["v1", "allocations", id, "restart"];
        let request = RestartRequest {
            task: task.map(str::to_string),
        };
        let call = Call::new(Method::POST, &path).json(&request)?;
        self.call(call).await?.decode()
    }

    /// `POST /v1/allocations/{id}/stop`: stops it; the scheduler places a replacement.
    /// Returns the allocation.
    pub async fn stop_allocation(&self, id: &str) -> Result<Allocation, ClientError> {
        let path = ["v1", "allocations", id, "stop"];
        self.call(Call::new(Method::POST, &path)).await?.decode()
    }
}
