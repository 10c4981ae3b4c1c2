//! openraft's log storage: the vote, the log entries, and the committed and last purged
//! log ids, in the `logs` and `store_meta` column families.
//!
//! Raft may only count a vote or an entry once it is on disk, so every write here that
//! Raft relies on is synced before it is acknowledged: `save_vote`, `truncate` and `purge`
//! return only after the fsync, and `append` calls its callback only after the WAL sync
//! that covers it (see `wal_sync`). One `append` call is one `WriteBatch`, however many
//! entries it carries.
//!
//! openraft issues log writes one at a time through `&mut self` and each one here is in
//! the WAL before its method returns, so writes are applied in the order they were
//! issued, as openraft requires.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader, Vote};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};
use serde::Deserialize;

use crate::codec;
use crate::db::{blocking, Db, Durability};
use crate::error::{io, StoreError};
use crate::keys::{log_index, log_key, CF_LOGS, CF_STORE_META, COMMITTED, LAST_PURGED, VOTE};
use crate::wal_sync::WalSyncer;
use crate::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// The Raft log and vote. Cheap to clone: clones share the database, and a clone is also
/// the log reader handed to replication tasks.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    syncer: WalSyncer,
}

/// The `log_id` field of a stored entry, decoded without the payload.
#[derive(Deserialize)]
struct StoredLogId {
    log_id: LogId,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let syncer = WalSyncer::start(&db);
        Self { db, syncer }
    }

    /// Bytes used on disk by the whole store (log, state machine and snapshot share one
    /// database), for metrics and alerts.
    pub fn disk_usage_bytes(&self) -> u64 {
        self.db.disk_usage_bytes()
    }

    /// A consistent copy of the application's stored pairs with the log id they reflect
    /// (the store is shared, so a clone kept beside the Raft node can read it). Blocking:
    /// it reads every pair.
    pub fn applied_data(&self) -> Result<crate::AppliedData, String> {
        crate::applied_data::read(&self.db).map_err(|e| e.to_string())
    }

    /// The entries with indexes in `[start, end)` (`end = None`: to the last entry).
    fn read_entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, StoreError> {
        let rocks = self.db.rocks();
        let mut opts = ReadOptions::default();
        if let Some(end) = end {
            if end <= start {
                return Ok(Vec::new());
            }
            opts.set_iterate_upper_bound(log_key(end));
        }
        let start_key = log_key(start);
        let iter = rocks.iterator_cf_opt(
            self.db.cf(CF_LOGS),
            opts,
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iter {
            let (key, value) = item?;
            let entry: Entry = codec::decode("log entry", &value)?;
            if log_index(&key) != Some(entry.log_id.index) {
                return Err(StoreError::Corrupt(format!(
                    "log entry {} stored under key {key:?}",
                    entry.log_id
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The log id of the last entry present, ignoring purged entries.
    fn last_present_log_id(&self) -> Result<Option<LogId>, StoreError> {
        let rocks = self.db.rocks();
        match rocks
            .iterator_cf(self.db.cf(CF_LOGS), IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (_, value) = item?;
                let stored: StoredLogId = codec::decode("log entry", &value)?;
                Ok(Some(stored.log_id))
            }
            None => Ok(None),
        }
    }

    fn last_purged(&self) -> Result<Option<LogId>, StoreError> {
        self.db
            .get(CF_STORE_META, LAST_PURGED, "last purged log id")
    }
}

/// Turns any range of indexes into `[start, end)`, `end = None` meaning unbounded.
fn index_range(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => match i.checked_add(1) {
            Some(i) => i,
            None => return (u64::MAX, Some(u64::MAX)), // empty
        },
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        // An inclusive u64::MAX end is the same as no end.
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        self.read_entries(start, end)
            .map_err(io(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let read = || -> Result<_, StoreError> {
            let last_purged_log_id = self.last_purged()?;
            let last_log_id = self.last_present_log_id()?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        };
        read().map_err(io(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let save = async {
            let bytes = codec::encode("vote", vote)?;
            let db = self.db.clone();
            blocking(move || {
                let mut batch = WriteBatch::default();
                batch.put_cf(db.cf(CF_STORE_META), VOTE, bytes);
                db.write(batch, Durability::Synced)
            })
            .await
        };
        save.await.map_err(io(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.db
            .get(CF_STORE_META, VOTE, "vote")
            .map_err(io(ErrorSubject::Vote, ErrorVerb::Read))
    }

    /// Saved without fsync: losing it only means re-applying fewer entries at startup.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let save = || -> Result<(), StoreError> {
            let mut batch = WriteBatch::default();
            let cf = self.db.cf(CF_STORE_META);
            match committed {
                Some(log_id) => batch.put_cf(cf, COMMITTED, codec::encode("committed", &log_id)?),
                None => batch.delete_cf(cf, COMMITTED),
            }
            self.db.write(batch, Durability::Buffered)
        };
        save().map_err(io(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.db
            .get(CF_STORE_META, COMMITTED, "committed log id")
            .map_err(io(ErrorSubject::Store, ErrorVerb::Read))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let write = || -> Result<(), StoreError> {
            let mut batch = WriteBatch::default();
            let cf = self.db.cf(CF_LOGS);
            for entry in entries {
                batch.put_cf(
                    cf,
                    log_key(entry.log_id.index),
                    codec::encode("log entry", &entry)?,
                );
            }
            // Into the WAL without waiting for the disk: readable from here on, and made
            // durable by the sync thread before the callback reports it flushed.
            self.db.write(batch, Durability::Buffered)
        };
        match write() {
            Ok(()) => {
                self.syncer.flushed_after_sync(callback);
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io(ErrorSubject::Logs, ErrorVerb::Write)(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the log");
        let db = self.db.clone();
        blocking(move || {
            let cf = db.cf(CF_LOGS);
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(cf, log_key(log_id.index), log_key(u64::MAX));
            batch.delete_cf(cf, log_key(u64::MAX));
            db.write(batch, Durability::Synced)
        })
        .await
        .map_err(io(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    /// Deletes the entries up to `log_id` and records it as the last purged log id, in one
    /// synced batch.
    ///
    /// openraft purges only entries covered by a snapshot it has built or installed, i.e.
    /// applied ones. The state-machine writes of those applies may still be unsynced, but
    /// they precede this batch in the WAL, and the WAL is recovered as a prefix: once this
    /// synced write returns, they are durable too. So a crash can never leave the purged
    /// log ahead of the applied state.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the log");
        let purge = async {
            let last_purged = codec::encode("last purged log id", &log_id)?;
            let db = self.db.clone();
            blocking(move || {
                let mut batch = WriteBatch::default();
                batch.put_cf(db.cf(CF_STORE_META), LAST_PURGED, last_purged);
                let end = log_id.index.saturating_add(1);
                batch.delete_range_cf(db.cf(CF_LOGS), log_key(0), log_key(end));
                db.write(batch, Durability::Synced)
            })
            .await
        };
        purge
            .await
            .map_err(io(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}

#[cfg(test)]
mod tests {
    use super::index_range;

    #[test]
    fn ranges_become_half_open() {
        assert_eq!(index_range(&(3..7)), (3, Some(7)));
        assert_eq!(index_range(&(3..=7)), (3, Some(8)));
        assert_eq!(index_range(&(3..)), (3, None));
        assert_eq!(index_range(&(..)), (0, None));
        assert_eq!(index_range(&(..=u64::MAX)), (0, None));
        use std::ops::Bound::{Excluded, Unbounded};
        assert_eq!(index_range(&(Excluded(4), Unbounded)), (5, None));
        let (start, end) = index_range(&(Excluded(u64::MAX), Unbounded));
        assert!(end.is_some_and(|end| end <= start));
    }
}
