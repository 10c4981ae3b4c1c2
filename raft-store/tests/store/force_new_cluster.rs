//! Quorum-loss recovery: a store of a three-member cluster, rewritten to a one-member
//! cluster, makes a real openraft node lead by itself with all its data, and a second
//! rewrite changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_raft_store::{
    force_new_cluster, open, Command, Entry, Forced, LogId, NodeId, TypeConfig,
};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{BasicNode, CommittedLeaderId, Config, EntryPayload, Membership, Vote};

use crate::fake_app::FakeApp;

/// The lost peers: every message to them fails.
struct Nobody;

struct NoConnection;

fn unreachable<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("peer is gone")))
}

impl RaftNetworkFactory<TypeConfig> for Nobody {
    type Network = NoConnection;
    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> NoConnection {
        NoConnection
    }
}

impl RaftNetwork<TypeConfig> for NoConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable())
    }
}

fn log_id(term: u64, leader: NodeId, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
    Entry {
        log_id: log_id(term, 2, index),
        payload,
    }
}

fn command(text: &str) -> EntryPayload<TypeConfig> {
    EntryPayload::Normal(Command(text.as_bytes().to_vec()))
}

fn node(addr: &str) -> BasicNode {
    BasicNode::new(addr)
}

/// Node 1's store: node 2 led term 4 of {1, 2, 3}; entries 0-3 are applied, 4 is only
/// committed, 5 is in the log and was never committed.
async fn member_of_three(dir: &std::path::Path) {
    let app = Arc::new(FakeApp::default());
    let (mut log, mut sm) = open(dir, app).unwrap();
    let members = BTreeMap::from([(1, node("m1")), (2, node("m2")), (3, node("m3"))]);
    let entries = vec![
        entry(
            1,
            0,
            EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], members)),
        ),
        entry(1, 1, command("a")),
        entry(4, 2, command("b")),
        entry(4, 3, command("c")),
        entry(4, 4, command("d")),
        entry(4, 5, command("e")),
    ];
    log.save_vote(&Vote::new_committed(4, 2)).await.unwrap();
    log.blocking_append(entries.clone()).await.unwrap();
    log.save_committed(Some(log_id(4, 2, 4))).await.unwrap();
    sm.apply(entries[..4].to_vec()).await.unwrap();
}

#[tokio::test]
async fn a_rewritten_member_leads_alone_with_all_its_data() {
    let dir = tempfile::tempdir().unwrap();
    member_of_three(dir.path()).await;

    let forced = force_new_cluster(dir.path(), 1, node("m1-new")).unwrap();
    assert_eq!(
        forced,
        Forced::Rewritten {
            previous_voters: vec![BTreeSet::from([1, 2, 3])],
            term: 5,
            index: 6,
        }
    );
    assert_eq!(
        force_new_cluster(dir.path(), 1, node("m1-new")).unwrap(),
        Forced::AlreadyAlone,
        "a second run changes nothing"
    );

    let app = Arc::new(FakeApp::default());
    let (log, sm) = open(dir.path(), app.clone()).unwrap();
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let raft =
        openraft::Raft::<TypeConfig>::new(1, Arc::new(config.validate().unwrap()), Nobody, log, sm)
            .await
            .unwrap();
    let metrics = raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader == Some(1) && m.last_applied.is_some_and(|l| l.index >= 6),
            "node 1 leads and applied the new membership",
        )
        .await
        .unwrap();
    assert_eq!(metrics.current_term, 5);
    let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    assert_eq!(voters, vec![1]);
    assert_eq!(
        metrics.membership_config.membership().get_node(&1),
        Some(&node("m1-new"))
    );
    // Entries that were in the log are kept (and now committed by the only voter).
    let data: Vec<String> = app
        .data()
        .into_keys()
        .map(|k| String::from_utf8(k).unwrap())
        .collect();
    assert_eq!(data, ["a", "b", "c", "d", "e"]);

    // It takes writes alone.
    let written = raft
        .client_write(Command(b"f".to_vec()))
        .await
        .expect("the one-member cluster commits");
    assert!(written.log_id.index > 6);
    assert!(app.data().contains_key(b"f".as_slice()));
    raft.shutdown().await.unwrap();
    drop(raft);

    // A restart (with or without the flag) keeps it a one-member cluster.
    assert_eq!(
        force_new_cluster(dir.path(), 1, node("m1-new")).unwrap(),
        Forced::AlreadyAlone
    );
}

#[test]
fn an_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = force_new_cluster(dir.path(), 1, node("m1")).unwrap_err();
    assert!(error.to_string().contains("no Raft state"), "{error}");
    assert!(
        !dir.path().join("CURRENT").exists(),
        "nothing is created in an empty directory"
    );
}
