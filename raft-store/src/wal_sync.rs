//! Group fsync of the log: appends return at once, and one thread makes them durable.
//!
//! openraft's Raft core waits for `append` to return before it does anything else, so an
//! append that waited for its own fsync would stall the core (no replication responses
//! processed, no new proposals taken) for the length of every fsync. Instead `append`
//! writes its entries to the WAL without syncing, which makes them readable at once, and
//! hands its completion callback to this thread. The thread takes every callback waiting
//! at that moment, syncs the WAL once, and only then reports them flushed: one fsync covers
//! all appends that arrived during the previous one. The WAL is written in order, so a
//! sync covers every write made before it.

use std::sync::mpsc;
use std::sync::{Arc, Weak};

use openraft::storage::LogFlushed;

use crate::db::Db;
use crate::TypeConfig;

#[derive(Clone)]
pub(crate) struct WalSyncer {
    pending: mpsc::Sender<LogFlushed<TypeConfig>>,
}

impl WalSyncer {
    /// Starts the sync thread. It holds the database weakly, so dropping the stores closes
    /// the database at once; the thread ends when every `WalSyncer` clone is gone.
    pub(crate) fn start(db: &Arc<Db>) -> Self {
        let (pending, receiver) = mpsc::channel();
        let db = Arc::downgrade(db);
        std::thread::Builder::new()
            .name("raft-wal-sync".into())
            .spawn(move || sync_loop(db, receiver))
            .expect("the WAL sync thread starts");
        Self { pending }
    }

    /// Reports `callback` once everything written to the WAL so far is on disk.
    pub(crate) fn flushed_after_sync(&self, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::SendError(callback)) = self.pending.send(callback) {
            callback.log_io_completed(Err(std::io::Error::other(
                "the WAL sync thread has stopped",
            )));
        }
    }
}

fn sync_loop(db: Weak<Db>, receiver: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        let result = match db.upgrade() {
            Some(db) => db
                .rocks()
                .flush_wal(true)
                .map_err(|e| std::io::Error::other(format!("WAL sync failed: {e}"))),
            None => Err(std::io::Error::other("the store is closed")),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot make appended log entries durable");
        }
        for callback in batch {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            callback.log_io_completed(outcome);
        }
    }
}
