//! Registering the node with the managers, and registering again when they forget it.
//!
//! Registration goes to any manager (a follower forwards it) and is idempotent: the node
//! id derives from the node's name, so re-registering after an agent restart, or after
//! the leader answered a heartbeat with `404` (a restored snapshot, a removed node), gives
//! back the same node with what it now offers.

use std::time::Duration;

use gantry_api::node::NodeRegistration;
use gantry_api::Client;

use crate::backoff::Backoff;

pub struct Registrar {
    client: Client,
    registration: NodeRegistration,
}

impl Registrar {
    pub fn new(client: Client, registration: NodeRegistration) -> Self {
        Registrar {
            client,
            registration,
        }
    }

    /// Registers, retrying with backoff until a manager accepts; returns the node id and
    /// the heartbeat TTL.
    pub async fn register(&self) -> (String, Duration) {
        let mut backoff = Backoff::from_entropy(Duration::from_millis(100), Duration::from_secs(3));
        loop {
            match self.client.register_node(&self.registration).await {
                Ok(registered) => {
                    tracing::info!(node = %registered.node_id, "node registered");
                    return (
                        registered.node_id,
                        Duration::from_millis(registered.heartbeat_ttl_ms),
                    );
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot register the node");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
