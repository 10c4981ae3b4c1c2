//! One agent's session: a streaming HTTP response of newline-delimited JSON, fed by one
//! task.
//!
//! The task sends the node's complete set, then waits for an applied-index notice (at
//! most one per 50 ms, see `signals`) and sends what changed (`diff`), or a keepalive
//! when nothing did for a while. It ends when the agent goes away (the body is dropped),
//! when this manager stops leading (the agent then finds the new leader), or when the
//! manager shuts down. Cost per session: one task, one small channel and the map of what
//! was sent; per notice, one lookup of the node's change count, and O(allocations on the
//! node) under the state's read lock only when that count moved.

use super::diff::Sent;
use super::Dispatcher;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gantry_api::session::{SessionMessage, KEEPALIVE_INTERVAL_MS, NDJSON};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Messages queued for a slow agent before the task waits for it.
const BUFFER: usize = 8;

/// Starts the session task and returns the response that streams its messages.
pub fn open(dispatcher: Arc<Dispatcher>, node_id: String, term: u64) -> Response {
    let (sender, receiver) = mpsc::channel::<Bytes>(BUFFER);
    tokio::spawn(run(dispatcher, node_id, term, sender));
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let line = receiver.recv().await?;
        Some((Ok::<_, Infallible>(line), receiver))
    });
    (
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Counts open sessions in the `gantry_agents_connected` gauge while alive.
struct Gauge;

impl Gauge {
    fn new() -> Self {
        metrics::gauge!(crate::metrics::names::AGENTS_CONNECTED).increment(1.0);
        Gauge
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::names::AGENTS_CONNECTED).decrement(1.0);
    }
}

async fn run(dispatcher: Arc<Dispatcher>, node_id: String, term: u64, out: mpsc::Sender<Bytes>) {
    let _gauge = Gauge::new();
    let mut leading = dispatcher.leading.subscribe();
    let mut closing = dispatcher.closing.subscribe();
    let mut applied = dispatcher.applied.subscribe();
    applied.borrow_and_update();
    let mut sent = Sent::default();

    // The index is read before the state, so the state is at least that new.
    let index = dispatcher.manager.applied_index();
    // The node's change count when the set was last compared: a notice that finds it
    // unchanged costs one lookup instead of a walk over the node's allocations.
    let mut compared_at;
    let (allocations, jobs) = {
        let state = dispatcher.manager.state.read();
        compared_at = state.allocations.node_changes(&node_id);
        let allocations = sent.complete(state.allocations.on_node(&node_id));
        let jobs = sent.new_job_versions(&allocations, |id, v| state.jobs.spec_at(id, v));
        (allocations, jobs)
    };
    tracing::debug!(node = %node_id, index, count = allocations.len(), "session opened");
    let complete = SessionMessage::Complete {
        index,
        allocations,
        jobs,
    };
    if !send(&out, &complete).await {
        return;
    }

    let period = Duration::from_millis(KEEPALIVE_INTERVAL_MS);
    let mut keepalive = tokio::time::interval_at(Instant::now() + period, period);
    loop {
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
                let index = *applied.borrow_and_update();
                let changes = {
                    let state = dispatcher.manager.state.read();
                    let now = state.allocations.node_changes(&node_id);
                    if now == compared_at {
                        continue;
                    }
                    compared_at = now;
                    sent.changes(state.allocations.on_node(&node_id)).map(|changes| {
                        let jobs = sent
                            .new_job_versions(&changes.upserts, |id, v| state.jobs.spec_at(id, v));
                        (changes, jobs)
                    })
                };
                if let Some((changes, jobs)) = changes {
                    let message = SessionMessage::Increment {
                        index,
                        upserts: changes.upserts,
                        removals: changes.removals,
                        jobs,
                    };
                    if !send(&out, &message).await {
                        return;
                    }
                    keepalive.reset();
                }
            }
            _ = keepalive.tick() => {
                if !send(&out, &SessionMessage::Keepalive).await {
                    return;
                }
            }
            _ = super::signals::until(&mut leading, |now| *now != Some(term)) => {
                tracing::debug!(node = %node_id, "session ended: no longer leading");
                return;
            }
            _ = super::signals::until(&mut closing, |c| *c) => return,
            _ = out.closed() => {
                tracing::debug!(node = %node_id, "session closed by the agent");
                return;
            }
        }
    }
}

/// Writes one line; false once the agent is gone.
async fn send(out: &mpsc::Sender<Bytes>, message: &SessionMessage) -> bool {
    let mut line = serde_json::to_vec(message).expect("session messages serialise");
    line.push(b'\n');
    out.send(Bytes::from(line)).await.is_ok()
}
