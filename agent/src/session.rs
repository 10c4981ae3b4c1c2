//! The session with the leader: the one source of what this node must run.
//!
//! It opens `GET /v1/agent/session` (the client follows a follower's hint to the leader),
//! passes every complete set and increment to the reconcile loop, and when the session
//! breaks — the leader died, stepped down, or went quiet past the idle timeout — opens a
//! new one with any manager after a jittered backoff, which starts with a fresh complete
//! set. While no manager answers, nothing is passed on, so the reconcile loop leaves
//! every task running as it is.

use std::sync::Arc;
use std::time::Duration;

use gantry_api::session::SessionMessage;
use gantry_api::Client;
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::registration::Registrar;

pub struct SessionLoop {
    pub client: Client,
    pub registrar: Arc<Registrar>,
    pub node_id: String,
    /// Complete sets and increments, in order, for the reconcile loop.
    pub out: mpsc::Sender<SessionMessage>,
}

impl SessionLoop {
    /// Holds a session until the reconcile loop goes away.
    pub async fn run(mut self) {
        let mut backoff = Backoff::from_entropy(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match self.client.open_session(&self.node_id).await {
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
                Err(e) if e.is_not_found() => {
                    tracing::warn!("the leader does not know this node: registering again");
                    self.node_id = self.registrar.register().await.0;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "cannot open a session"),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
