//! Restart scenarios: what was written before the store was dropped is all there after
//! it is reopened from the same directory (vote, log, applied state, application data,
//! snapshot), and what was removed (truncated entries, data replaced by a snapshot)
//! stays gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use gantry_raft_store::{
    open, Command, Entry, LogId, LogStore, OpenError, Response, StateMachineStore,
};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    CommittedLeaderId, EntryPayload, LogState, Membership, RaftLogReader, RaftSnapshotBuilder,
    StoredMembership, Vote,
};

use crate::fake_app::{BrokenApp, FakeApp};

const NODE: u64 = 1;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, NODE), index)
}

fn command(term: u64, index: u64, command: &str) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command(command.as_bytes().to_vec())),
    }
}

fn membership(term: u64, index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
    }
}

fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn response(text: &str) -> Response {
    Response(text.as_bytes().to_vec())
}

struct Store {
    app: Arc<FakeApp>,
    log: LogStore,
    sm: StateMachineStore,
}

fn open_store(dir: &Path) -> Store {
    let app = Arc::new(FakeApp::default());
    let (log, sm) = open(dir, app.clone()).expect("open store");
    assert_eq!(app.loads(), 1, "open loads the application once");
    Store { app, log, sm }
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![
        membership(1, 1, &[1, 2, 3]),
        command(1, 2, "a"),
        command(1, 3, "b"),
        command(1, 4, "a"),
        blank(2, 5),
        command(2, 6, "c"),
        command(2, 7, "del:b"),
        command(2, 8, "d"),
        command(2, 9, "e"),
        command(2, 10, "f"),
    ];

    let (built, app_data) = {
        let mut s = open_store(dir.path());
        assert_eq!(s.app.data(), kv(&[]));
        s.log
            .save_vote(&Vote::new_committed(2, NODE))
            .await
            .unwrap();
        s.log.blocking_append(entries[..4].to_vec()).await.unwrap();
        s.log.blocking_append(entries[4..].to_vec()).await.unwrap();
        s.log.save_committed(Some(log_id(2, 8))).await.unwrap();

        let responses = s.sm.apply(entries[..6].to_vec()).await.unwrap();
        let want = ["", "", "", "2", "", ""].map(response);
        assert_eq!(responses, want);
        let built =
            s.sm.get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(2, 6)));

        let responses = s.sm.apply(entries[6..8].to_vec()).await.unwrap();
        assert_eq!(responses, ["3", ""].map(response));
        s.log.purge(log_id(1, 4)).await.unwrap();

        let app_data = s.app.data();
        assert_eq!(app_data, kv(&[("a", "4"), ("c", "6"), ("d", "8")]));
        (built, app_data)
    };

    let mut s = open_store(dir.path());
    assert_eq!(
        s.app.data(),
        app_data,
        "application data is loaded from disk"
    );
    assert_eq!(
        s.log.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, NODE))
    );
    assert_eq!(s.log.read_committed().await.unwrap(), Some(log_id(2, 8)));
    assert_eq!(
        s.log.get_log_state().await.unwrap(),
        LogState {
            last_purged_log_id: Some(log_id(1, 4)),
            last_log_id: Some(log_id(2, 10)),
        }
    );
    assert_eq!(
        s.log.try_get_log_entries(0..).await.unwrap(),
        entries[4..].to_vec()
    );
    assert_eq!(s.log.try_get_log_entries(..=4).await.unwrap(), vec![]);
    assert_eq!(
        s.log.try_get_log_entries(6..8).await.unwrap(),
        entries[5..7].to_vec()
    );

    let (applied, stored_membership) = s.sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(2, 8)));
    assert_eq!(
        stored_membership,
        StoredMembership::new(
            Some(log_id(1, 1)),
            Membership::new(vec![BTreeSet::from([1, 2, 3])], None)
        )
    );

    let current =
        s.sm.get_current_snapshot()
            .await
            .unwrap()
            .expect("stored snapshot");
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.get_ref(), built.snapshot.get_ref());

    // Applying goes on where it stopped, and a new snapshot gets a new id.
    let responses = s.sm.apply(entries[8..].to_vec()).await.unwrap();
    assert_eq!(responses, ["", ""].map(response));
    let rebuilt =
        s.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    assert_eq!(rebuilt.meta.last_log_id, Some(log_id(2, 10)));
    assert_ne!(rebuilt.meta.snapshot_id, built.meta.snapshot_id);
    let current =
        s.sm.get_current_snapshot()
            .await
            .unwrap()
            .expect("stored snapshot");
    assert_eq!(current.meta, rebuilt.meta);
}

#[tokio::test]
async fn installed_snapshot_replaces_the_data_and_survives_a_reopen() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();

    let mut leader = open_store(leader_dir.path());
    leader
        .sm
        .apply([
            membership(1, 1, &[1, 2]),
            command(1, 2, "a"),
            command(1, 3, "b"),
            command(1, 4, "del:a"),
            command(1, 5, "c"),
        ])
        .await
        .unwrap();
    let snapshot = leader
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let leader_data = leader.app.data();
    assert_eq!(leader_data, kv(&[("b", "3"), ("c", "5")]));

    {
        let mut follower = open_store(follower_dir.path());
        follower
            .sm
            .apply([command(1, 1, "old"), command(1, 2, "zzz")])
            .await
            .unwrap();
        let mut receiving = follower.sm.begin_receiving_snapshot().await.unwrap();
        receiving
            .get_mut()
            .extend_from_slice(snapshot.snapshot.get_ref());
        follower
            .sm
            .install_snapshot(&snapshot.meta, receiving)
            .await
            .unwrap();

        assert_eq!(
            follower.app.data(),
            leader_data,
            "install reloads the application"
        );
        assert_eq!(follower.app.loads(), 2);
        let (applied, _) = follower.sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 5)));
    }

    let mut follower = open_store(follower_dir.path());
    assert_eq!(
        follower.app.data(),
        leader_data,
        "old data is gone after the reopen"
    );
    let (applied, stored_membership) = follower.sm.applied_state().await.unwrap();
    assert_eq!(applied, snapshot.meta.last_log_id);
    assert_eq!(stored_membership, snapshot.meta.last_membership);
    let current = follower
        .sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("stored snapshot");
    assert_eq!(current.meta, snapshot.meta);

    // The follower applies on top of the installed state.
    let responses = follower.sm.apply([command(2, 6, "b")]).await.unwrap();
    assert_eq!(responses, [response("3")]);
}

#[tokio::test]
async fn snapshot_that_does_not_match_its_meta_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    s.sm.apply([command(1, 1, "a"), command(1, 2, "b")])
        .await
        .unwrap();
    let snapshot =
        s.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();

    let mut wrong_meta = snapshot.meta.clone();
    wrong_meta.last_log_id = Some(log_id(1, 7));
    let data = Box::new(std::io::Cursor::new(snapshot.snapshot.get_ref().clone()));
    assert!(s.sm.install_snapshot(&wrong_meta, data).await.is_err());

    let garbage = Box::new(std::io::Cursor::new(b"garbage".to_vec()));
    assert!(s
        .sm
        .install_snapshot(&snapshot.meta, garbage)
        .await
        .is_err());

    // Nothing was replaced.
    assert_eq!(s.app.data(), kv(&[("a", "1"), ("b", "2")]));
    drop(s);
    let mut s = open_store(dir.path());
    assert_eq!(s.app.data(), kv(&[("a", "1"), ("b", "2")]));
    let current =
        s.sm.get_current_snapshot()
            .await
            .unwrap()
            .expect("stored snapshot");
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test]
async fn truncation_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = (1..=10).map(|i| command(1, i, &format!("k{i}"))).collect();
    {
        let mut s = open_store(dir.path());
        s.log.blocking_append(entries.clone()).await.unwrap();
        s.log.truncate(log_id(1, 6)).await.unwrap();
    }
    {
        let mut s = open_store(dir.path());
        assert_eq!(
            s.log.try_get_log_entries(..).await.unwrap(),
            entries[..5].to_vec()
        );
        assert_eq!(
            s.log.get_log_state().await.unwrap(),
            LogState {
                last_purged_log_id: None,
                last_log_id: Some(log_id(1, 5)),
            }
        );
        // A new leader's entries replace the truncated ones.
        s.log.blocking_append([command(2, 6, "new")]).await.unwrap();
    }
    let mut s = open_store(dir.path());
    let mut want = entries[..5].to_vec();
    want.push(command(2, 6, "new"));
    assert_eq!(s.log.try_get_log_entries(..).await.unwrap(), want);
}

#[tokio::test]
async fn purging_everything_keeps_the_last_purged_log_id() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open_store(dir.path());
        s.log
            .blocking_append((1..=3).map(|i| blank(1, i)).collect::<Vec<_>>())
            .await
            .unwrap();
        s.log.purge(log_id(1, 3)).await.unwrap();
    }
    let mut s = open_store(dir.path());
    let state = LogState {
        last_purged_log_id: Some(log_id(1, 3)),
        last_log_id: Some(log_id(1, 3)),
    };
    assert_eq!(s.log.get_log_state().await.unwrap(), state);
    assert_eq!(s.log.try_get_log_entries(..).await.unwrap(), vec![]);
}

#[test]
fn open_reports_an_application_that_cannot_load() {
    let dir = tempfile::tempdir().unwrap();
    let result = open(dir.path(), Arc::new(BrokenApp));
    assert!(matches!(result, Err(OpenError::Load(message)) if message == "broken on purpose"));
}

#[tokio::test]
async fn disk_usage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    s.log.blocking_append([command(1, 1, "a")]).await.unwrap();
    assert!(s.log.disk_usage_bytes() > 0);
}

#[tokio::test]
async fn a_clear_deletes_all_stored_data_even_from_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open_store(dir.path());
        s.sm.apply([command(1, 1, "a"), command(1, 2, "b")])
            .await
            .unwrap();
        // "zzz" sorts after every stored key and is cleared before it reaches the store.
        s.sm.apply([
            command(1, 3, "zzz"),
            command(1, 4, "clear"),
            command(1, 5, "c"),
        ])
        .await
        .unwrap();
        assert_eq!(s.app.data(), kv(&[("c", "5")]));
        let copy = s.log.applied_data().unwrap();
        assert_eq!(copy.last_applied, Some(log_id(1, 5)));
        assert_eq!(
            copy.pairs,
            kv(&[("c", "5")]).into_iter().collect::<Vec<_>>()
        );
    }
    let s = open_store(dir.path());
    assert_eq!(
        s.app.data(),
        kv(&[("c", "5")]),
        "only what followed the clear"
    );
}
