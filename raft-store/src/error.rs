//! Errors inside the store, and how they become openraft's `StorageError`.
//!
//! The store's code works with one internal error type, [`StoreError`], that keeps the
//! cause (RocksDB, encoding, a failed task). At the trait boundary each call site says what
//! it was doing (reading the log, writing the vote, ...) with [`io`], which turns the error
//! into the `StorageError` openraft expects; openraft stops the node on any of them.

use openraft::{ErrorSubject, ErrorVerb, StorageIOError};

use crate::{NodeId, StorageError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: rmp_serde::encode::Error,
    },
    #[error("cannot decode {what}: {source}")]
    Decode {
        what: &'static str,
        source: rmp_serde::decode::Error,
    },
    #[error("corrupt {0}")]
    Corrupt(String),
    #[error("the application failed to load its state: {0}")]
    Load(String),
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Returns a converter from [`StoreError`] to openraft's error for an operation that
/// `verb`s `subject`; for use in `map_err`. Logs the error, since openraft will shut down.
pub(crate) fn io(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
) -> impl FnOnce(StoreError) -> StorageError {
    move |e| {
        tracing::error!(error = %e, ?subject, ?verb, "raft storage failed");
        StorageIOError::new(subject, verb, &e).into()
    }
}
