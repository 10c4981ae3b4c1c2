//! What the store tells the application besides commands: the applied index its data was
//! loaded at (on open and when a snapshot is installed), and each membership change in
//! log order with the commands around it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use gantry_raft_store::{open, Application, Command, Entry, LogId, Writes};
use openraft::storage::{RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership};

/// Records every call, in order.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}

impl Application for Recorder {
    fn load(&self, data: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        let pairs = data.count();
        self.calls.lock().unwrap().push(format!("load {pairs}"));
        Ok(())
    }

    fn apply(&self, index: u64, command: &[u8], writes: &mut Writes) -> Vec<u8> {
        writes.put(command, index.to_string());
        self.calls.lock().unwrap().push(format!("apply {index}"));
        Vec::new()
    }

    fn loaded_at(&self, index: Option<u64>) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("loaded at {index:?}"));
    }

    fn membership_applied(&self, index: u64, membership: &Membership<u64, BasicNode>) {
        let voters: Vec<u64> = membership.voter_ids().collect();
        self.calls
            .lock()
            .unwrap()
            .push(format!("membership {index} {voters:?}"));
    }
}

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn command(index: u64, text: &str) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Command(text.as_bytes().to_vec())),
    }
}

fn membership(index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
    }
}

#[tokio::test]
async fn the_application_hears_load_indexes_and_memberships_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(Recorder::default());
    let (mut log, mut sm) = open(dir.path(), app.clone()).unwrap();
    assert_eq!(app.take(), vec!["load 0", "loaded at None"]);

    let entries = vec![command(1, "a"), membership(2, &[1, 2]), command(3, "b")];
    log.blocking_append(entries.clone()).await.unwrap();
    sm.apply(entries).await.unwrap();
    assert_eq!(
        app.take(),
        vec!["apply 1", "membership 2 [1, 2]", "apply 3"]
    );
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    drop((log, sm));

    let (_, _) = open(dir.path(), app.clone()).unwrap();
    assert_eq!(app.take(), vec!["load 2", "loaded at Some(3)"]);

    let other = tempfile::tempdir().unwrap();
    let follower = Arc::new(Recorder::default());
    let (_log, mut sm) = open(other.path(), follower.clone()).unwrap();
    follower.take();
    let mut receiving = sm.begin_receiving_snapshot().await.unwrap();
    receiving
        .get_mut()
        .extend_from_slice(snapshot.snapshot.get_ref());
    sm.install_snapshot(&snapshot.meta, receiving)
        .await
        .unwrap();
    assert_eq!(follower.take(), vec!["load 2", "loaded at Some(3)"]);
}
