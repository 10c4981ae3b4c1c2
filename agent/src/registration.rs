//! Registering the node with the managers, and registering again when they forget it.
//!
//! Registration goes to any manager (a follower forwards it) and is idempotent: the node
//! id derives from the node's name, so re-registering after an agent restart, or after
//! the leader answered a heartbeat with `404` (a restored snapshot, a removed node), gives
//! back the same node with what it now offers.
//!
//! With ACL on, registration presents the join token (`--join-token`) and the answer
//! carries a secret of the node's own, which the heartbeat and the session present from
//! then on; registering again replaces it. Both loops share the current registration
//! through the [`Registrar`], so when both find the node forgotten (or its secret
//! refused) the node registers once, not twice. A refused join token is logged with the
//! managers' message and retried with a backoff of up to 30 s (an operator may set the
//! join token to the one this agent holds).

use std::sync::Mutex;
use std::time::Duration;

use gantry_api::node::NodeRegistration;
use gantry_api::Client;
use tokio::time::Instant;

use crate::backoff::Backoff;

/// Registrations are at least this far apart, however often the loops ask.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub struct Registrar {
    /// Presents the join token.
    client: Client,
    registration: NodeRegistration,
    current: Mutex<Option<Registration>>,
    /// One registration at a time.
    registering: tokio::sync::Mutex<()>,
}

/// What a registration gave.
#[derive(Clone)]
pub struct Registration {
    pub node_id: String,
    pub ttl: Duration,
    /// Presents the node's secret (or the join token, with ACL off).
    pub client: Client,
    /// Counts registrations, so a loop can tell whether one happened since it looked.
    pub generation: u64,
    at: Instant,
}

impl Registrar {
    pub fn new(client: Client, registration: NodeRegistration) -> Self {
        Registrar {
            client,
            registration,
            current: Mutex::new(None),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// The current registration, registering first when there is none yet.
    pub async fn current(&self) -> Registration {
        self.refresh(None).await
    }

    /// Registers again because `stale` stopped working (the node was forgotten, or its
    /// secret refused), unless another loop already registered since; returns the
    /// current registration.
    pub async fn refresh(&self, stale: Option<u64>) -> Registration {
        let _one_at_a_time = self.registering.lock().await;
        let last = self.current.lock().expect("registration lock").clone();
        if let Some(last) = &last {
            if Some(last.generation) != stale {
                return last.clone();
            }
            tokio::time::sleep_until(last.at + MIN_INTERVAL).await;
        }
        let generation = last.map_or(1, |last| last.generation + 1);
        let fresh = self.register(generation).await;
        *self.current.lock().expect("registration lock") = Some(fresh.clone());
        fresh
    }

    /// Registers, retrying with backoff until a manager accepts.
    async fn register(&self, generation: u64) -> Registration {
        let mut backoff = Backoff::from_entropy(Duration::from_millis(100), Duration::from_secs(3));
        let mut refused = Backoff::from_entropy(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            match self.client.register_node(&self.registration).await {
                Ok(registered) => {
                    tracing::info!(node = %registered.node_id, "node registered");
                    let client = match registered.node_secret {
                        Some(secret) => self.client.with_token(Some(secret)),
                        None => self.client.clone(),
                    };
                    return Registration {
                        node_id: registered.node_id,
                        ttl: Duration::from_millis(registered.heartbeat_ttl_ms),
                        client,
                        generation,
                        at: Instant::now(),
                    };
                }
                Err(e) if e.status() == Some(401) => {
                    let delay = refused.next_delay();
                    tracing::error!(retry_in = ?delay, "the managers refused to register this node: {e}");
                    tokio::time::sleep(delay).await;
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
