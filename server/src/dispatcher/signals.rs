//! The dispatcher's background tasks, driven by openraft's metrics.
//!
//! openraft publishes its metrics on a watch channel that changes on almost every Raft
//! event (each quorum ack, each replication step). Thousands of sessions must not all
//! wake on each of those, so two tasks boil the metrics down:
//! - `follow_leadership` publishes `Some(term)` while this manager leads (`None`
//!   otherwise), and starts or ends the leader-local liveness bookkeeping with it;
//! - `publish_applied` publishes the applied index when it moves, at most once per
//!   [`NOTICE_INTERVAL`], which bounds how often a session re-reads its node's set.
//!
//! A third, `check_liveness`, marks down the nodes that missed their TTL.

use super::liveness::{ttl_for, CHECK_INTERVAL};
use super::Dispatcher;
use crate::raft::status::applied_index;
use gantry_api::NodeStatus;
use openraft::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// The shortest time between two applied-index notices to the sessions.
pub const NOTICE_INTERVAL: Duration = Duration::from_millis(50);

pub async fn follow_leadership(dispatcher: Arc<Dispatcher>) {
    let mut metrics = dispatcher.manager.raft.metrics();
    loop {
        let leading = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader).then_some(m.current_term)
        };
        if leading != *dispatcher.leading.borrow() {
            {
                let mut liveness = dispatcher.liveness.lock().expect("liveness lock");
                match leading {
                    Some(_) => liveness.became_leader(Instant::now()),
                    None => liveness.lost_leadership(),
                }
            }
            match leading {
                Some(term) => tracing::info!(term, "leading: agent sessions open here"),
                None => tracing::info!("not leading: ending agent sessions"),
            }
            dispatcher.leading.send_replace(leading);
        }
        if metrics.changed().await.is_err() {
            // The Raft node has shut down.
            dispatcher.leading.send_replace(None);
            return;
        }
    }
}

pub async fn publish_applied(dispatcher: Arc<Dispatcher>) {
    let mut metrics = dispatcher.manager.raft.metrics();
    let mut last = 0;
    loop {
        if metrics.wait_for(|m| applied_index(m) > last).await.is_err() {
            return;
        }
        last = applied_index(&metrics.borrow());
        dispatcher.applied.send_replace(last);
        tokio::time::sleep(NOTICE_INTERVAL).await;
    }
}

pub async fn check_liveness(dispatcher: Arc<Dispatcher>) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut closing = dispatcher.closing.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = until(&mut closing, |c| *c) => return,
        }
        if dispatcher.leading.borrow().is_none() {
            continue;
        }
        let now = Instant::now();
        let expired = {
            let state = dispatcher.manager.state.read();
            let ttl = ttl_for(state.nodes.by_id.len());
            let live = state
                .nodes
                .by_id
                .values()
                .filter(|n| n.status != NodeStatus::Down)
                .map(|n| n.id.as_str());
            dispatcher
                .liveness
                .lock()
                .expect("liveness lock")
                .expired(live, now, ttl)
        };
        for node_id in expired {
            dispatcher.set_status(&node_id, NodeStatus::Down);
        }
    }
}

/// Waits until the watched value satisfies `ready` (or the sender is gone). Unlike
/// `wait_for` it holds no borrow of the value when done, so it can sit in a `select!`
/// of a task that must be `Send`.
pub async fn until<T>(
    receiver: &mut tokio::sync::watch::Receiver<T>,
    ready: impl FnMut(&T) -> bool,
) {
    let _ = receiver.wait_for(ready).await.is_ok();
}
