//! A consistent copy of the application's stored data, for backups.
//!
//! The application's pairs and the last applied log id are written in one batch (see
//! `state_machine.rs`), so reading both from one RocksDB snapshot gives the data exactly
//! as it was at that log index, without stopping the applies that go on meanwhile.

use rocksdb::IteratorMode;

use crate::codec;
use crate::db::Db;
use crate::error::StoreError;
use crate::keys::{CF_SM_DATA, CF_SM_META, LAST_APPLIED};
use crate::LogId;

/// Every stored pair of the application, in key order, and the log id they reflect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedData {
    /// `None` before the first entry was applied.
    pub last_applied: Option<LogId>,
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) fn read(db: &Db) -> Result<AppliedData, StoreError> {
    let snapshot = db.rocks().snapshot();
    let last_applied = match snapshot.get_cf(db.cf(CF_SM_META), LAST_APPLIED)? {
        Some(bytes) => Some(codec::decode("last applied log id", &bytes)?),
        None => None,
    };
    let mut pairs = Vec::new();
    for item in snapshot.iterator_cf(db.cf(CF_SM_DATA), IteratorMode::Start) {
        let (key, value) = item?;
        pairs.push((key.into_vec(), value.into_vec()));
    }
    Ok(AppliedData {
        last_applied,
        pairs,
    })
}
