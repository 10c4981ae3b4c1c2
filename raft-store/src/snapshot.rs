//! Snapshots: the format of a snapshot's data, building one from a point-in-time view of
//! the state machine while applies go on, and keeping the latest one in the `snapshot`
//! column family so that it is still there after a restart.
//!
//! Data format (MessagePack, one value after another):
//! a [`Header`] (format version, last applied log id, last membership), then one
//! `[key, value]` pair (two `bin`s) per stored key/value pair, in key order, up to the end
//! of the data. The header repeats what the snapshot's meta says so that a snapshot can be
//! checked against its meta before it replaces the state machine.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::{
    BasicNode, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StoredMembership,
};
use rocksdb::{IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::db::{blocking, Db, Durability};
use crate::error::{io, StoreError};
use crate::keys::{
    CF_SM_DATA, CF_SM_META, CF_SNAPSHOT, LAST_APPLIED, LAST_MEMBERSHIP, SNAPSHOT_DATA,
    SNAPSHOT_META,
};
use crate::types::serde_bytes_compat;
use crate::{LogId, NodeId, StorageError, TypeConfig};

pub(crate) type Meta = SnapshotMeta<NodeId, BasicNode>;
pub(crate) type Membership = StoredMembership<NodeId, BasicNode>;

/// The version of the data format written by this code.
const FORMAT: u32 = 1;

/// The first value of a snapshot's data.
#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    last_applied: Option<LogId>,
    last_membership: Membership,
}

/// One key/value pair, as written.
#[derive(Serialize)]
struct PairRef<'a>(
    #[serde(serialize_with = "serde_bytes_compat::serialize")] &'a [u8],
    #[serde(serialize_with = "serde_bytes_compat::serialize")] &'a [u8],
);

/// One key/value pair, as read.
#[derive(Deserialize)]
struct Pair(
    #[serde(with = "serde_bytes_compat")] Vec<u8>,
    #[serde(with = "serde_bytes_compat")] Vec<u8>,
);

/// What a snapshot's data says about the state it holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Contents {
    pub(crate) last_applied: Option<LogId>,
    pub(crate) last_membership: Membership,
}

/// Decodes snapshot `data`, handing each key/value pair to `pair` in order.
pub(crate) fn decode_data(
    data: &[u8],
    mut pair: impl FnMut(Vec<u8>, Vec<u8>),
) -> Result<Contents, StoreError> {
    let what = "snapshot data";
    let mut rest = data;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    let header =
        Header::deserialize(&mut de).map_err(|source| StoreError::Decode { what, source })?;
    if header.format != FORMAT {
        return Err(StoreError::Corrupt(format!(
            "snapshot data has format {}, this build reads {FORMAT}",
            header.format
        )));
    }
    while !de.get_ref().is_empty() {
        let Pair(key, value) =
            Pair::deserialize(&mut de).map_err(|source| StoreError::Decode { what, source })?;
        pair(key, value);
    }
    Ok(Contents {
        last_applied: header.last_applied,
        last_membership: header.last_membership,
    })
}

/// The latest snapshot on disk, and the lock and counter around replacing it. Shared by
/// the state machine and its snapshot builders.
pub(crate) struct Snapshots {
    db: Arc<Db>,
    /// Counter for snapshot ids, so two snapshots at the same log id differ.
    next_id: AtomicU64,
    /// Held while the stored snapshot is replaced, so that a slow build cannot overwrite
    /// a newer snapshot stored (built or installed) meanwhile.
    replace: Mutex<()>,
}

impl Snapshots {
    pub(crate) fn open(db: Arc<Db>) -> Result<Self, StoreError> {
        let current: Option<Meta> = db.get(CF_SNAPSHOT, SNAPSHOT_META, "snapshot meta")?;
        // Continue the counter of the stored snapshot's id ("{term}-{index}-{counter}").
        let next_id = current
            .and_then(|meta| meta.snapshot_id.rsplit('-').next()?.parse::<u64>().ok())
            .map_or(1, |n| n + 1);
        Ok(Self {
            db,
            next_id: AtomicU64::new(next_id),
            replace: Mutex::new(()),
        })
    }

    /// Locks out other replacements of the stored snapshot.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.replace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds to `batch` the writes that make `meta` + `data` the stored snapshot. The caller
    /// holds [`Self::lock`] until the batch is written.
    pub(crate) fn put(
        &self,
        batch: &mut WriteBatch,
        meta: &Meta,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let cf = self.db.cf(CF_SNAPSHOT);
        batch.put_cf(cf, SNAPSHOT_META, codec::encode("snapshot meta", meta)?);
        batch.put_cf(cf, SNAPSHOT_DATA, data);
        Ok(())
    }

    /// The stored snapshot, if any.
    pub(crate) fn current(&self) -> Result<Option<Snapshot<TypeConfig>>, StoreError> {
        let rocks = self.db.rocks();
        let cf = self.db.cf(CF_SNAPSHOT);
        // Read meta and data from one point in time: a replacement may be under way.
        let view = rocks.snapshot();
        let Some(meta) = view.get_cf(cf, SNAPSHOT_META)? else {
            return Ok(None);
        };
        let meta: Meta = codec::decode("snapshot meta", &meta)?;
        let Some(data) = view.get_cf(cf, SNAPSHOT_DATA)? else {
            return Err(StoreError::Corrupt(format!(
                "snapshot {} has meta but no data",
                meta.snapshot_id
            )));
        };
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }

    /// Builds a snapshot of the state machine as it is now and stores it unless a newer
    /// one is stored already. Reads a RocksDB point-in-time view, so applies are not held
    /// up while the data is copied. Blocking.
    fn build(&self) -> Result<Snapshot<TypeConfig>, StoreError> {
        let rocks = self.db.rocks();
        let view = rocks.snapshot();

        let last_applied: Option<LogId> = match view.get_cf(self.db.cf(CF_SM_META), LAST_APPLIED)? {
            Some(bytes) => Some(codec::decode("last applied log id", &bytes)?),
            None => None,
        };
        let last_membership: Membership =
            match view.get_cf(self.db.cf(CF_SM_META), LAST_MEMBERSHIP)? {
                Some(bytes) => codec::decode("last membership", &bytes)?,
                None => Membership::default(),
            };

        let what = "snapshot data";
        let encode_err = |source| StoreError::Encode { what, source };
        let mut data = Vec::new();
        let header = Header {
            format: FORMAT,
            last_applied,
            last_membership: last_membership.clone(),
        };
        rmp_serde::encode::write_named(&mut data, &header).map_err(encode_err)?;
        let mut pairs = 0u64;
        for item in view.iterator_cf(self.db.cf(CF_SM_DATA), IteratorMode::Start) {
            let (key, value) = item?;
            rmp_serde::encode::write(&mut data, &PairRef(&key, &value)).map_err(encode_err)?;
            pairs += 1;
        }
        drop(view);

        let counter = self.next_id.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{counter}", id.leader_id.term, id.index),
            None => format!("none-none-{counter}"),
        };
        let meta = Meta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };

        let guard = self.lock();
        let stored: Option<Meta> = self.db.get(CF_SNAPSHOT, SNAPSHOT_META, "snapshot meta")?;
        match stored {
            Some(stored) if stored.last_log_id > meta.last_log_id => {
                tracing::info!(built = %meta, %stored, "kept the newer stored snapshot");
            }
            _ => {
                let mut batch = WriteBatch::default();
                self.put(&mut batch, &meta, &data)?;
                self.db.write(batch, Durability::Synced)?;
                tracing::info!(%meta, pairs, bytes = data.len(), "built a snapshot");
            }
        }
        drop(guard);

        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// openraft's handle for building a snapshot; see [`Snapshots::build`].
pub struct SnapshotBuilder {
    snapshots: Arc<Snapshots>,
}

impl SnapshotBuilder {
    pub(crate) fn new(snapshots: Arc<Snapshots>) -> Self {
        Self { snapshots }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let snapshots = self.snapshots.clone();
        blocking(move || snapshots.build())
            .await
            .map_err(io(ErrorSubject::Snapshot(None), ErrorVerb::Write))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::{CommittedLeaderId, Membership as RaftMembership};

    use super::*;

    fn encode(header: &Header, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut data = rmp_serde::to_vec_named(header).unwrap();
        for (k, v) in pairs {
            rmp_serde::encode::write(&mut data, &PairRef(k, v)).unwrap();
        }
        data
    }

    #[test]
    fn data_round_trips() {
        let log_id = LogId::new(CommittedLeaderId::new(3, 1), 42);
        let members = RaftMembership::new(vec![BTreeSet::from([1, 2, 3])], None);
        let header = Header {
            format: FORMAT,
            last_applied: Some(log_id),
            last_membership: Membership::new(Some(log_id), members),
        };
        let pairs: [(&[u8], &[u8]); 3] =
            [(b"", b"empty key"), (b"a", b""), (b"b\xff", &[0xffu8; 300])];
        let data = encode(&header, &pairs);

        let mut got = Vec::new();
        let contents = decode_data(&data, |k, v| got.push((k, v))).unwrap();
        assert_eq!(contents.last_applied, header.last_applied);
        assert_eq!(contents.last_membership, header.last_membership);
        let want: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, want);
        // Bytes are stored as `bin`, not as arrays of numbers (0xff would take 2 bytes each).
        assert!(data.len() < 600, "{} bytes", data.len());
    }

    #[test]
    fn rejects_truncated_and_foreign_data() {
        let header = Header {
            format: FORMAT,
            last_applied: None,
            last_membership: Membership::default(),
        };
        let data = encode(&header, &[(b"key", b"value")]);
        assert!(decode_data(&data[..data.len() - 1], |_, _| {}).is_err());
        assert!(decode_data(b"not a snapshot", |_, _| {}).is_err());
        let future = Header {
            format: FORMAT + 1,
            ..header
        };
        assert!(decode_data(&encode(&future, &[]), |_, _| {}).is_err());
    }
}
