//! The heartbeat: proves the agent is alive and carries its status reports.
//!
//! It runs as its own task so that a slow engine (a big image, a stuck `docker stop`)
//! never delays it: the node is declared down after its TTL without one. It beats every
//! TTL / 3 (the TTL comes back with every answer and grows with the cluster), and sooner
//! when reports are waiting — at most one beat per [`REPORT_COALESCE`], which lets a
//! burst of state changes travel in one request. The leader answers once the reports
//! are committed; a failed beat leaves them pending for the next one. A `404` means the
//! managers do not know the node (any more), a `401` that they refuse its secret (ACL):
//! either way it registers again.

use std::sync::Arc;
use std::time::Duration;

use gantry_api::session::Heartbeat;
use tokio::time::Instant;

use crate::registration::{Registrar, Registration};
use crate::reports::Reports;

/// Reports recorded within this long of each other travel together.
const REPORT_COALESCE: Duration = Duration::from_millis(25);
/// Wait after a failed beat before the next try (the TTL allows several).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(250);

pub struct HeartbeatLoop {
    pub registrar: Arc<Registrar>,
    pub reports: Reports,
    /// The node's id and the client that presents its secret.
    pub node: Registration,
    pub ttl: Duration,
    /// Beats failed in a row (only the first of a run is logged as a warning).
    pub failures: u32,
}

impl HeartbeatLoop {
    /// Beats until the task is dropped.
    pub async fn run(mut self) {
        let mut next_beat = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_beat) => {}
                _ = self.reports.recorded() => {
                    tokio::time::sleep(REPORT_COALESCE).await;
                }
            }
            next_beat = Instant::now() + self.beat().await;
        }
    }

    /// Sends one heartbeat with the pending reports; returns how long until the next.
    async fn beat(&mut self) -> Duration {
        let batch = self.reports.take_batch();
        let heartbeat = Heartbeat {
            node_id: self.node.node_id.clone(),
            updates: batch.reports.clone(),
        };
        match self.node.client.heartbeat(&heartbeat).await {
            Ok(ack) => {
                if self.failures > 0 {
                    tracing::info!(failed = self.failures, "heartbeats answered again");
                    self.failures = 0;
                }
                self.reports.acknowledge(&batch);
                self.ttl = Duration::from_millis(ack.heartbeat_ttl_ms);
                if !batch.reports.is_empty() {
                    tracing::debug!(reports = batch.reports.len(), "reports committed");
                }
                if self.reports.is_empty() {
                    self.ttl / 3
                } else {
                    REPORT_COALESCE
                }
            }
            Err(e) if e.is_not_found() || e.status() == Some(401) => {
                if e.is_not_found() {
                    tracing::warn!("the managers do not know this node: registering again");
                } else {
                    tracing::warn!(error = %e, "the managers refused this node's secret: registering again");
                }
                self.node = self.registrar.refresh(Some(self.node.generation)).await;
                self.ttl = self.node.ttl;
                Duration::ZERO
            }
            Err(e) => {
                self.failures += 1;
                if self.failures == 1 {
                    tracing::warn!(error = %e, "heartbeat failed; retrying");
                } else {
                    tracing::debug!(error = %e, failures = self.failures, "heartbeat failed");
                }
                RETRY_AFTER_FAILURE.min(self.ttl / 3)
            }
        }
    }
}
