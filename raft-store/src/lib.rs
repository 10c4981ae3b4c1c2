//! Raft storage for Gantry managers: openraft's log store and state machine on RocksDB.
//!
//! This crate knows nothing about containers or jobs. A log entry carries an opaque
//! command (bytes); applying it is delegated to an [`Application`] that the server
//! implements. The application keeps its state as key/value pairs that this crate writes
//! in the same atomic batch as the last-applied log id and the membership, so a crash
//! can never leave the data and the applied index out of step.
//!
//! Start at [`open`], which returns the two halves openraft wants over one RocksDB
//! instance: the [`LogStore`] (vote and log; `log_store.rs`) and the
//! [`StateMachineStore`] (applied state and snapshots; `state_machine.rs`,
//! `snapshot.rs`). The on-disk layout is in `keys.rs`, the durability rule in `db.rs`.
//! [`force_new_cluster`] rewrites a stopped store's membership to recover from the loss
//! of a quorum.

mod applied_data;
mod codec;
mod db;
mod error;
mod force_new_cluster;
mod keys;
mod log_store;
mod open;
mod snapshot;
mod state_machine;
mod types;
mod wal_sync;

pub use applied_data::AppliedData;
pub use force_new_cluster::{force_new_cluster, ForceError, Forced};
pub use log_store::LogStore;
pub use open::{open, OpenError};
pub use snapshot::SnapshotBuilder;
pub use state_machine::StateMachineStore;
pub use types::*;

/// The state-machine side of the application: what a committed command does.
///
/// Implementations must be deterministic: the same commands in the same order give the
/// same writes and the same responses on every manager.
pub trait Application: Send + Sync + 'static {
    /// Forget all state and rebuild it from `data` (every stored key/value pair of the
    /// application, in key order). Called when the store opens and after a snapshot is
    /// installed.
    fn load(&self, data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String>;

    /// Apply one committed command at `index`. Record every change to the stored data in
    /// `writes`; they are made durable together with the applied index. Returns the
    /// response for the client that proposed the command. Must not fail: a command that
    /// cannot be carried out answers with an error *response*.
    fn apply(&self, index: u64, command: &[u8], writes: &mut Writes) -> Vec<u8>;

    /// Called after a successful [`Application::load`] with the log index the loaded
    /// pairs reflect (`None`: nothing applied yet). The changes up to that index were not
    /// applied one by one, so whoever follows them must start over from there.
    fn loaded_at(&self, _index: Option<u64>) {}

    /// Called when a membership change is applied at `index`, in log order with the
    /// commands around it (membership entries never reach [`Application::apply`]).
    fn membership_applied(
        &self,
        _index: u64,
        _membership: &openraft::Membership<NodeId, openraft::BasicNode>,
    ) {
    }
}

/// The key/value changes of one apply call, written atomically by the store.
#[derive(Default, Debug)]
pub struct Writes {
    pub(crate) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Every stored pair is deleted before `ops` are written.
    pub(crate) cleared: bool,
}

impl Writes {
    /// Deletes every stored pair of the application, including those written earlier in
    /// the same batch: the changes recorded after this call are all that remains. For
    /// commands that replace the whole state.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.cleared = true;
    }
    /// Whether [`Writes::clear`] was called: the store is emptied before [`Writes::ops`].
    pub fn clears(&self) -> bool {
        self.cleared
    }
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && !self.cleared
    }
    /// The recorded changes in order: `(key, Some(value))` to put, `(key, None)` to delete.
    pub fn ops(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.ops
    }
}
