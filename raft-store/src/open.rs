//! Opening the store: the one entry point that turns a directory into the pair of
//! openraft stores, with the application loaded from the stored data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::Db;
use crate::error::StoreError;
use crate::{Application, LogStore, StateMachineStore};

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the store directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the RocksDB store in {}: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("cannot read the stored state in {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("the application failed to load the stored state: {0}")]
    Load(String),
}

/// Opens (or creates) the store in `dir`. Calls `app.load()` with the stored data before
/// returning.
///
/// The two stores share one RocksDB instance, which stays open until both (and every
/// clone of the log store) are dropped.
pub fn open(
    dir: &Path,
    app: Arc<dyn Application>,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    let path = dir.to_path_buf();
    std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
        path: path.clone(),
        source,
    })?;
    let db = Db::open(dir).map_err(|source| OpenError::Db {
        path: path.clone(),
        source,
    })?;
    let db = Arc::new(db);
    let state_machine = StateMachineStore::open(db.clone(), app).map_err(|e| match e {
        StoreError::Load(message) => OpenError::Load(message),
        other => OpenError::Read {
            path: path.clone(),
            message: other.to_string(),
        },
    })?;
    tracing::info!(
        dir = %dir.display(),
        last_applied = ?state_machine.last_applied(),
        "opened the raft store"
    );
    Ok((LogStore::new(db), state_machine))
}
