//! Three managers started from `--initial-cluster` form one cluster: exactly
//! one leader, every manager names the same leader (id and address), and each
//! one's member list is the three voters with their listen addresses.

mod support;

use std::collections::BTreeMap;

use support::{Cluster, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_managers_agree_on_one_leader_and_three_voters() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let leader_addr = cluster.addr(leader);

    let expected_members: Vec<Member> = cluster
        .ids()
        .into_iter()
        .map(|id| Member {
            id,
            addr: cluster.addr(id),
            voter: true,
        })
        .collect();

    let mut roles = BTreeMap::new();
    for id in cluster.ids() {
        let resp = cluster
            .api
            .get(&cluster.addr(id), "/v1/status")
            .await
            .unwrap_or_else(|e| panic!("manager {id}: GET /v1/status: {e}"));
        assert_eq!(
            resp.status,
            200,
            "manager {id}: GET /v1/status: {}",
            resp.describe()
        );
        assert!(
            resp.has_index_header,
            "manager {id}: GET /v1/status has no X-Gantry-Index header"
        );
        let st = cluster
            .status(id)
            .await
            .unwrap_or_else(|e| panic!("manager {id}: status: {e}"));
        cluster.log(&format!(
            "manager {id}: role={} leader={:?} term={} commit={} applied={}",
            st.role, st.leader, st.term, st.commit_index, st.applied_index
        ));
        assert_eq!(st.id, id, "manager {id} reports id {}", st.id);
        let named = st
            .leader
            .as_ref()
            .unwrap_or_else(|| panic!("manager {id} reports no leader, expected {leader}"));
        assert_eq!(
            named.id, leader,
            "manager {id} names leader {}, expected {leader}",
            named.id
        );
        assert_eq!(
            named.addr, leader_addr,
            "manager {id} gives the leader's addr as {}, expected {leader_addr}",
            named.addr
        );
        let mut members = st.members.clone();
        members.sort_by_key(|m| m.id);
        assert_eq!(
            members, expected_members,
            "manager {id}: members differ from the three voters it was started with"
        );
        assert_eq!(st.voters().len(), 3, "manager {id}: expected 3 voters");
        roles.insert(id, st.role.clone());

        // The operator view answers too and agrees on the members.
        let raft = cluster
            .raft(id)
            .await
            .unwrap_or_else(|e| panic!("manager {id}: GET /v1/operator/raft: {e}"));
        assert_eq!(
            raft.id, id,
            "manager {id}: /v1/operator/raft reports id {}",
            raft.id
        );
        let mut raft_ids: Vec<u64> = raft.members.iter().map(|m| m.id).collect();
        raft_ids.sort();
        assert_eq!(
            raft_ids,
            vec![1, 2, 3],
            "manager {id}: /v1/operator/raft members"
        );
        assert!(
            raft.members.iter().all(|m| m.voter),
            "manager {id}: /v1/operator/raft says not every member is a voter: {:?}",
            raft.members
        );
    }

    let leaders: Vec<u64> = roles
        .iter()
        .filter(|(_, r)| *r == "leader")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        leaders,
        vec![leader],
        "expected exactly one manager with role=leader; roles: {roles:?}"
    );
    for (id, role) in &roles {
        if *id != leader {
            assert_eq!(
                role, "follower",
                "manager {id}: role {role}, expected follower"
            );
        }
    }
}
