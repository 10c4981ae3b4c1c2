//! The event log: every committed change this manager applied, kept for a while, for
//! `GET /v1/events` (`api::events`).
//!
//! Every manager applies every committed entry, and each apply already records what it
//! changed as key/value writes (`state::keys`); the state machine hands those writes here
//! (`record_writes`), with the entry's index, and membership changes likewise
//! (`record_membership`). They become events (`convert`) held in a bounded buffer
//! (`ring`, the newest [`EVENTS_KEPT`]) that readers follow. Loading the state wholesale
//! (at start, when a snapshot is installed, when a restore replaces everything) makes no
//! per-change events: the buffer starts over at that index (`replaced`), and a reader that
//! needed older changes is told it was truncated.
//!
//! The events come from this manager's own replica, in log order. They are committed
//! changes, but a follower may show them a little after the leader does: a stream is not
//! linearizable, and needs no quorum.
//!
//! Memory is bounded by the buffer, whatever the readers do: a reader is handed what the
//! buffer holds as fast as it takes it, and one that falls behind the buffer's oldest
//! change is truncated and its stream ends.

mod convert;
mod ring;

use gantry_api::events::Topic;
use gantry_raft_store::Writes;
use openraft::{BasicNode, Membership};
use ring::{Cursor, Ring};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

pub use ring::{Gone, Held};

/// How many changes a manager keeps for readers that resume from an index.
pub const EVENTS_KEPT: usize = 20_000;

/// At most this many changes are handed to a reader at a time.
const BATCH: usize = 256;

/// The buffer of recent changes, and the signals its readers wait on.
pub struct EventLog {
    ring: Mutex<Ring>,
    /// Bumped after every change to the buffer.
    changed: watch::Sender<u64>,
    /// Set when the manager shuts down: every stream ends.
    closing: watch::Sender<bool>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::with_capacity(EVENTS_KEPT)
    }
}

/// Where the writes of one entry begin in the apply's [`Writes`] (shared by the entries
/// of one batch), taken before the entry is applied.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    start: usize,
    cleared: bool,
}

impl EventLog {
    pub fn with_capacity(capacity: usize) -> Self {
        EventLog {
            ring: Mutex::new(Ring::new(capacity)),
            changed: watch::Sender::new(0),
            closing: watch::Sender::new(false),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().expect("event log lock poisoned")
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Taken before an entry is applied; see [`EventLog::record_writes`].
    pub fn mark(writes: &Writes) -> Mark {
        Mark {
            start: writes.ops().len(),
            cleared: writes.clears(),
        }
    }

    /// Records what the entry at `index` wrote to `writes` since `mark`. An entry that
    /// cleared the whole state (a restore) replaced it: the buffer starts over instead.
    pub fn record_writes(&self, index: u64, writes: &Writes, mark: Mark) {
        let ops = writes.ops();
        if writes.clears() && (!mark.cleared || ops.len() < mark.start) {
            self.replaced(index);
            return;
        }
        let changes = convert::changes(index, &ops[mark.start.min(ops.len())..]);
        if changes.is_empty() {
            return;
        }
        {
            let mut ring = self.ring();
            for change in changes {
                ring.push(index, change.topic, change.data);
            }
        }
        self.bump();
    }

    /// A membership change applied at `index`.
    pub fn record_membership(&self, index: u64, membership: &Membership<u64, BasicNode>) {
        let change = convert::membership(index, membership);
        self.ring().push(index, change.topic, change.data);
        self.bump();
    }

    /// The whole state was loaded as of `index`: readers start over from there.
    pub fn replaced(&self, index: u64) {
        self.ring().reset(index);
        self.bump();
        tracing::debug!(index, "event log starts over: the state was loaded whole");
    }

    /// The oldest index a reader can start after, and how many changes are held.
    pub fn extent(&self) -> (u64, usize) {
        let ring = self.ring();
        (ring.floor(), ring.len())
    }

    /// A reader of the changes after `after` (`None`: only new ones) of `topics` (all
    /// when `None`). `Err` when `after` is older than what is held.
    pub fn follow(
        self: &Arc<Self>,
        after: Option<u64>,
        topics: Option<BTreeSet<Topic>>,
    ) -> Result<Follower, Gone> {
        let mut changed = self.changed.subscribe();
        changed.borrow_and_update();
        let cursor = self.ring().cursor(after)?;
        Ok(Follower {
            log: self.clone(),
            cursor,
            topics,
            changed,
            closing: self.closing.subscribe(),
        })
    }

    /// Ends every stream (the manager is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// `shutdown`, extended to end every stream first: open streaming responses would
    /// otherwise hold the HTTP server's graceful shutdown forever.
    pub fn close_on(
        self: &Arc<Self>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let log = self.clone();
        async move {
            shutdown.await;
            log.close();
        }
    }
}

/// What a reader gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Changes, in order (never empty).
    Changes(Vec<Held>),
    /// The changes it needed are gone; carries the oldest index it can start after.
    Truncated(u64),
    /// The manager is shutting down.
    Closed,
}

/// One reader's place in the log.
pub struct Follower {
    log: Arc<EventLog>,
    cursor: Cursor,
    topics: Option<BTreeSet<Topic>>,
    changed: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
}

impl Follower {
    /// The next changes, waiting for some if there are none yet. Once the log is
    /// closing, what is held is still handed out, then `Closed`.
    pub async fn next(&mut self) -> Next {
        loop {
            self.changed.borrow_and_update();
            let read = self
                .log
                .ring()
                .read(&mut self.cursor, self.topics.as_ref(), BATCH);
            match read {
                Err(Gone(floor)) => return Next::Truncated(floor),
                Ok(changes) if !changes.is_empty() => return Next::Changes(changes),
                Ok(_) => {}
            }
            if *self.closing.borrow() {
                return Next::Closed;
            }
            tokio::select! {
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        return Next::Closed;
                    }
                }
                closing = self.closing.changed() => {
                    if closing.is_err() {
                        return Next::Closed;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BOUND: Duration = Duration::from_secs(10);

    fn writes(ops: &[(&str, Option<&str>)]) -> Writes {
        let mut writes = Writes::default();
        for (key, value) in ops {
            match value {
                Some(value) => writes.put(key.as_bytes(), value.as_bytes()),
                None => writes.delete(key.as_bytes()),
            }
        }
        writes
    }

    fn record(log: &EventLog, index: u64, ops: &[(&str, Option<&str>)]) {
        let empty = Writes::default();
        log.record_writes(index, &writes(ops), EventLog::mark(&empty));
    }

    async fn next(follower: &mut Follower) -> Next {
        tokio::time::timeout(BOUND, follower.next())
            .await
            .expect("the follower answers")
    }

    fn indexes(next: Next) -> Vec<u64> {
        match next {
            Next::Changes(changes) => changes.iter().map(|c| c.index).collect(),
            other => panic!("expected changes, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_follower_gets_held_changes_then_live_ones() {
        let log = Arc::new(EventLog::with_capacity(100));
        record(&log, 1, &[("job/a", Some("{}"))]);
        record(&log, 2, &[("node/n", Some("{}")), ("alloc/x", Some("{}"))]);
        let mut follower = log.follow(Some(1), None).unwrap();
        assert_eq!(indexes(next(&mut follower).await), vec![2, 2]);
        let waiting = tokio::spawn(async move {
            let got = next(&mut follower).await;
            (follower, got)
        });
        tokio::task::yield_now().await;
        record(&log, 3, &[("job/a", None)]);
        let (_, got) = waiting.await.unwrap();
        assert_eq!(indexes(got), vec![3]);
    }

    #[tokio::test]
    async fn a_slow_follower_is_truncated_instead_of_buffered() {
        let log = Arc::new(EventLog::with_capacity(4));
        let mut slow = log.follow(Some(0), None).unwrap();
        for index in 1..=10 {
            record(&log, index, &[("job/a", Some("{}"))]);
        }
        assert_eq!(next(&mut slow).await, Next::Truncated(6));
        assert_eq!(log.follow(Some(5), None).err(), Some(Gone(6)));
        let mut ok = log.follow(Some(6), None).unwrap();
        assert_eq!(indexes(next(&mut ok).await), vec![7, 8, 9, 10]);
    }

    #[tokio::test]
    async fn a_clear_in_the_writes_starts_the_log_over() {
        let log = Arc::new(EventLog::with_capacity(100));
        record(&log, 1, &[("job/a", Some("{}"))]);
        let mut follower = log.follow(Some(0), None).unwrap();
        let mut batch = Writes::default();
        let before_restore = EventLog::mark(&batch);
        batch.put("job/b", "{}");
        batch.clear();
        batch.put("job/c", "{}");
        log.record_writes(7, &batch, before_restore);
        let after_restore = EventLog::mark(&batch);
        batch.put("node/n", "{}");
        log.record_writes(8, &batch, after_restore);
        assert_eq!(next(&mut follower).await, Next::Truncated(7));
        let mut fresh = log.follow(Some(7), None).unwrap();
        assert_eq!(indexes(next(&mut fresh).await), vec![8]);
    }

    #[tokio::test]
    async fn topics_filter_and_closing_ends_followers() {
        let log = Arc::new(EventLog::with_capacity(100));
        let mut nodes = log
            .follow(Some(0), Some(BTreeSet::from([Topic::Node])))
            .unwrap();
        record(&log, 1, &[("job/a", Some("{}"))]);
        record(&log, 2, &[("node/n", Some("{}"))]);
        assert_eq!(indexes(next(&mut nodes).await), vec![2]);
        let closing = log.close_on(async {});
        closing.await;
        assert_eq!(next(&mut nodes).await, Next::Closed);
    }
}
