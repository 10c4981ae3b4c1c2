//! The session with the leader: the one source of what this node must run.
//!
//! It opens `GET /v1/agent/session` (the client follows a follower's hint to the leader),
//! passes every complete set and increment to the reconcile loop, and when the session
//! breaks — the leader died, stepped down, or went quiet past the idle timeout — opens a
//! new one with any manager after a jittered backoff, which starts with a fresh complete
//! set. While no manager answers, nothing is passed on, so the reconcile loop leaves
//! every task running as it is. A leader that does not know the node (`404`) or refuses
//! its secret (`401`, ACL) makes it register again.

use std::sync::Arc;
use std::time::Duration;

use gantry_api::session::SessionMessage;
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::registration::{Registrar, Registration};

pub struct SessionLoop {
    pub registrar: Arc<Registrar>,
    /// The node's id and the client that presents its secret.
    pub node: Registration,
    /// Complete sets and increments, in order, for the reconcile loop.
    pub out: mpsc::Sender<SessionMessage>,
}

impl SessionLoop {
    /// Holds a session until the reconcile loop goes away.
    pub async fn run(mut self) {
        let mut backoff = Backoff::from_entropy(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match self.node.client.open_session(&self.node.node_id).await {
                Ok(mut session) => {
                    tracing::info!(manager = %session.manager(), "session opened");
                    loop {
                        match session.next().await {
                            Ok(Some(SessionMessage::Keepalive)) => {}
                            Ok(Some(message)) => {
                                if matches!(message, SessionMessage::Complete { .. }) {
                                    backoff.reset();
                                }
                                if self.out.send(message).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => {
                                tracing::info!("the leader ended the session");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "session lost");
                                break;
                            }
                        }
                    }
                }
                Err(e) if e.is_not_found() || e.status() == Some(401) => {
                    if e.is_not_found() {
                        tracing::warn!("the leader does not know this node: registering again");
                    } else {
                        tracing::warn!(error = %e, "the leader refused this node's secret: registering again");
                    }
                    self.node = self.registrar.refresh(Some(self.node.generation)).await;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "cannot open a session"),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
