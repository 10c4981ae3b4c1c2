//! openraft's storage test suite, run against a fresh store in a temporary directory.

use std::sync::Arc;

use gantry_raft_store::{open, LogStore, StateMachineStore, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::fake_app::FakeApp;

/// Builds each store in its own temporary directory, removed when the guard drops.
struct TempStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (log, state_machine) =
            open(dir.path(), Arc::new(FakeApp::default())).expect("open store");
        Ok((dir, log, state_machine))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(TempStoreBuilder).expect("openraft storage suite");
}
