//! openraft's state machine: applies committed entries through the [`Application`] and
//! keeps its data, the last applied log id and the membership in RocksDB.
//!
//! The point of this file is atomicity: all the application's writes of one `apply` call
//! go into one `WriteBatch` together with the new last applied log id and membership, so
//! after a crash the stored data is always exactly the state at the stored applied index
//! (entries after it are re-applied from the log). Installing a snapshot likewise swaps
//! the data, the metadata and the stored snapshot in one synced batch.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, EntryPayload, ErrorSubject, ErrorVerb, Snapshot, SnapshotMeta};
use rocksdb::{IteratorMode, WriteBatch};

use crate::codec;
use crate::db::{blocking, Db, Durability};
use crate::error::{io, StoreError};
use crate::keys::{CF_SM_DATA, CF_SM_META, LAST_APPLIED, LAST_MEMBERSHIP};
use crate::snapshot::{decode_data, Contents, Membership, SnapshotBuilder, Snapshots};
use crate::{Application, Entry, LogId, NodeId, Response, StorageError, TypeConfig, Writes};

/// The replicated state machine. openraft owns it and calls it through `&mut self`, so
/// applies and snapshot installs never overlap; snapshot builds run beside them.
pub struct StateMachineStore {
    db: Arc<Db>,
    app: Arc<dyn Application>,
    snapshots: Arc<Snapshots>,
    last_applied: Option<LogId>,
    last_membership: Membership,
}

impl StateMachineStore {
    /// Reads the applied state and hands the stored data to `app.load`.
    pub(crate) fn open(db: Arc<Db>, app: Arc<dyn Application>) -> Result<Self, StoreError> {
        let last_applied = db.get(CF_SM_META, LAST_APPLIED, "last applied log id")?;
        let last_membership = db
            .get(CF_SM_META, LAST_MEMBERSHIP, "last membership")?
            .unwrap_or_default();
        let snapshots = Arc::new(Snapshots::open(db.clone())?);
        load_app(&db, &*app, last_applied.map(|id: LogId| id.index))?;
        Ok(Self {
            db,
            app,
            snapshots,
            last_applied,
            last_membership,
        })
    }

    /// The log id of the last applied entry (`None` before the first).
    pub fn last_applied(&self) -> Option<LogId> {
        self.last_applied
    }
}

/// Feeds every stored key/value pair, in key order, to `app.load`, then tells it the
/// applied index they reflect.
fn load_app(db: &Db, app: &dyn Application, applied: Option<u64>) -> Result<(), StoreError> {
    let mut failure = None;
    let iter = db
        .rocks()
        .iterator_cf(db.cf(CF_SM_DATA), IteratorMode::Start);
    let mut pairs = iter.map_while(|item| match item {
        Ok((key, value)) => Some((key.into_vec(), value.into_vec())),
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let loaded = app.load(&mut pairs);
    drop(pairs);
    if let Some(e) = failure {
        return Err(e.into());
    }
    loaded.map_err(StoreError::Load)?;
    app.loaded_at(applied);
    Ok(())
}

/// The outcome of one apply call.
struct Applied {
    responses: Vec<Response>,
    last_applied: LogId,
    last_membership: Membership,
}

/// Applies `entries` (non-empty, in log order) and writes all their effects in one batch.
/// Blocking: the application runs here too.
fn apply_entries(
    db: &Db,
    app: &dyn Application,
    entries: Vec<Entry>,
    mut last_membership: Membership,
) -> Result<Applied, StoreError> {
    let mut writes = Writes::default();
    let mut responses = Vec::with_capacity(entries.len());
    let mut last_applied = None;
    let mut membership_changed = false;
    for entry in entries {
        let log_id = entry.log_id;
        let response = match entry.payload {
            EntryPayload::Blank => Vec::new(),
            EntryPayload::Normal(command) => app.apply(log_id.index, &command.0, &mut writes),
            EntryPayload::Membership(membership) => {
                app.membership_applied(log_id.index, &membership);
                last_membership = Membership::new(Some(log_id), membership);
                membership_changed = true;
                Vec::new()
            }
        };
        responses.push(Response(response));
        last_applied = Some(log_id);
    }
    let Some(last_applied) = last_applied else {
        unreachable!("apply_entries is called with at least one entry");
    };

    let mut batch = WriteBatch::default();
    if writes.cleared {
        // `clear` dropped the ops recorded before it, so the batch holds none yet and the
        // stored keys are all there is to delete.
        db.clear_cf(&mut batch, CF_SM_DATA)?;
    }
    let data = db.cf(CF_SM_DATA);
    for (key, value) in writes.ops {
        match value {
            Some(value) => batch.put_cf(data, key, value),
            None => batch.delete_cf(data, key),
        }
    }
    let meta = db.cf(CF_SM_META);
    batch.put_cf(
        meta,
        LAST_APPLIED,
        codec::encode("last applied log id", &last_applied)?,
    );
    if membership_changed {
        batch.put_cf(
            meta,
            LAST_MEMBERSHIP,
            codec::encode("last membership", &last_membership)?,
        );
    }
    // Not synced: see the durability rule in db.rs. The entries are in the synced log.
    db.write(batch, Durability::Buffered)?;

    Ok(Applied {
        responses,
        last_applied,
        last_membership,
    })
}

/// Replaces the state machine with snapshot `data` described by `meta`: data, metadata and
/// the stored snapshot in one synced batch, then reloads the application. Blocking.
fn install(
    db: &Db,
    snapshots: &Snapshots,
    app: &dyn Application,
    meta: &SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
) -> Result<(), StoreError> {
    let guard = snapshots.lock();
    let mut batch = WriteBatch::default();
    db.clear_cf(&mut batch, CF_SM_DATA)?;
    let cf_data = db.cf(CF_SM_DATA);
    let mut pairs = 0u64;
    let contents = decode_data(&data, |key, value| {
        batch.put_cf(cf_data, key, value);
        pairs += 1;
    })?;
    let described = Contents {
        last_applied: meta.last_log_id,
        last_membership: meta.last_membership.clone(),
    };
    if contents != described {
        return Err(StoreError::Corrupt(format!(
            "snapshot {} holds {contents:?}, its meta says {described:?}",
            meta.snapshot_id
        )));
    }

    let cf_meta = db.cf(CF_SM_META);
    match meta.last_log_id {
        Some(log_id) => batch.put_cf(
            cf_meta,
            LAST_APPLIED,
            codec::encode("last applied log id", &log_id)?,
        ),
        None => batch.delete_cf(cf_meta, LAST_APPLIED),
    }
    batch.put_cf(
        cf_meta,
        LAST_MEMBERSHIP,
        codec::encode("last membership", &meta.last_membership)?,
    );
    snapshots.put(&mut batch, meta, &data)?;
    db.write(batch, Durability::Synced)?;
    drop(guard);

    tracing::info!(%meta, pairs, bytes = data.len(), "installed a snapshot");
    load_app(db, app, meta.last_log_id.map(|id| id.index))
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.clone();
        let app = self.app.clone();
        let membership = self.last_membership.clone();
        let applied = blocking(move || apply_entries(&db, &*app, entries, membership))
            .await
            .map_err(io(ErrorSubject::StateMachine, ErrorVerb::Write))?;
        self.last_applied = Some(applied.last_applied);
        self.last_membership = applied.last_membership;
        Ok(applied.responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder::new(self.snapshots.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let (db, app, snapshots) = (self.db.clone(), self.app.clone(), self.snapshots.clone());
        let owned_meta = meta.clone();
        blocking(move || install(&db, &snapshots, &*app, &owned_meta, data))
            .await
            .map_err(io(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            ))?;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = self.snapshots.clone();
        blocking(move || snapshots.current())
            .await
            .map_err(io(ErrorSubject::Snapshot(None), ErrorVerb::Read))
    }
}
