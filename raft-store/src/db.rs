//! The one RocksDB instance behind both stores, and the few primitives they share:
//! typed reads, batch writes with an explicit durability, and running blocking work off
//! the async runtime.
//!
//! Durability rule: a write acknowledged to Raft (vote, log entries, truncation, purge,
//! an installed snapshot) is written with `sync = true`, i.e. the WAL is fsynced before
//! the call returns. State-machine writes may skip the fsync: the WAL is shared by all
//! column families and replayed as a prefix after a crash, so the next synced write makes
//! every earlier write durable too, and anything lost is re-applied from the (synced) log.

use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamily, DBWithThreadMode, IteratorMode, Options, SingleThreaded, WriteBatch, WriteOptions,
};
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::StoreError;
use crate::keys::ALL_CFS;

/// The RocksDB handle type. Spelled out (rather than `rocksdb::DB`) so that another crate
/// turning on rocksdb's `multi-threaded-cf` feature does not change our types.
pub(crate) type Rocks = DBWithThreadMode<SingleThreaded>;

/// Whether a write must be on disk before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync the WAL before returning.
    Synced,
    /// Written to the WAL without fsync; made durable by the next synced write.
    Buffered,
}

pub(crate) struct Db {
    rocks: Rocks,
    dir: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database in `dir` with all column families.
    pub(crate) fn open(dir: &Path) -> Result<Self, rocksdb::Error> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Column families that are rarely written (vote, snapshot) would otherwise keep
        // old WAL files alive until their memtable fills; cap the WAL so they get flushed.
        opts.set_max_total_wal_size(128 << 20);
        // RocksDB's own info log: keep a few, not the default thousand.
        opts.set_keep_log_file_num(4);
        let rocks = Rocks::open_cf(&opts, dir, ALL_CFS)?;
        Ok(Self {
            rocks,
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn rocks(&self) -> &Rocks {
        &self.rocks
    }

    /// The handle of a column family from [`crate::keys`].
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.rocks
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} is opened by Db::open"))
    }

    /// Reads and decodes the value at `key` in `cf`; `what` names it in errors.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        cf: &str,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        match self.rocks.get_pinned_cf(self.cf(cf), key)? {
            Some(bytes) => Ok(Some(codec::decode(what, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `batch` atomically.
    pub(crate) fn write(
        &self,
        batch: WriteBatch,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Synced);
        self.rocks.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Adds to `batch` the deletion of every key in `cf`. Keys are arbitrary bytes, so
    /// there is no fixed upper bound: delete the range up to the current last key, then
    /// that key. The caller must keep other writers of `cf` out until `batch` is written.
    pub(crate) fn clear_cf(&self, batch: &mut WriteBatch, cf: &str) -> Result<(), StoreError> {
        let handle = self.cf(cf);
        if let Some(last) = self.rocks.iterator_cf(handle, IteratorMode::End).next() {
            let (last, _) = last?;
            batch.delete_range_cf(handle, &[][..], &last[..]);
            batch.delete_cf(handle, &last[..]);
        }
        Ok(())
    }

    /// Bytes used by the database directory (SST files, WAL, manifest, info logs).
    pub(crate) fn disk_usage_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            // Files can vanish under us (compaction, WAL recycling): skip what fails.
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => walk(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir)
    }
}

/// Runs `f` on tokio's blocking pool, so an fsync or a long scan does not stall the
/// runtime's worker threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}
