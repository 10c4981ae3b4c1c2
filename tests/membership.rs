//! Managers can be added and removed while the cluster runs.
//!
//! A fourth manager started with `--join <manager 1>` becomes a voter (every
//! member lists four voters) and receives the jobs; writes through it work.
//! Removing a follower with `DELETE /v1/operator/raft/peers/{id}` leaves
//! three voters that keep taking writes; removing the leader the same way
//! leaves two voters that elect a new leader and keep taking writes.

mod support;

use std::collections::BTreeSet;

use support::{wait_until, Cluster, CATCH_UP_TIMEOUT};

/// Waits until each manager in `on` lists exactly `expected` as members, all
/// of them voters, with the addresses the harness started them on.
async fn wait_members(cluster: &Cluster, on: &[u64], expected: &BTreeSet<u64>, what: &str) {
    wait_until(what, CATCH_UP_TIMEOUT, || async move {
        for &id in on {
            let st = cluster.status(id).await?;
            if st.member_ids() != *expected || st.voters() != *expected {
                return Err(format!(
                    "manager {id} (role {}) lists members {:?}",
                    st.role, st.members
                ));
            }
            for m in &st.members {
                let want = cluster.addr(m.id);
                if m.addr != want {
                    return Err(format!(
                        "manager {id} lists member {} at {}, expected {want}",
                        m.id, m.addr
                    ));
                }
            }
        }
        Ok(())
    })
    .await
}

/// Writes `count` jobs through `via` and waits until every manager in `on`
/// has them in its local replica.
async fn write_and_check(cluster: &Cluster, prefix: &str, count: usize, via: &[u64], on: &[u64]) {
    let acks = cluster.write_jobs(prefix, count, 4, via).await;
    let max = acks.iter().map(|a| a.index).max().unwrap();
    let want: BTreeSet<String> = acks.iter().map(|a| a.id.clone()).collect();
    for &id in on {
        cluster.wait_applied(id, max).await;
        let got: BTreeSet<String> = cluster
            .job_versions(id, true)
            .await
            .unwrap_or_else(|e| panic!("manager {id}: stale list: {e}"))
            .into_keys()
            .collect();
        let missing: Vec<&String> = want.difference(&got).take(10).collect();
        assert!(
            missing.is_empty(),
            "manager {id}: jobs '{prefix}-*' written through {via:?} are missing from its replica (first: {missing:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_a_fourth_manager_then_remove_a_follower_and_the_leader() {
    let mut cluster = Cluster::start(3).await;
    write_and_check(&cluster, "m-pre", 50, &[1, 2, 3], &[1, 2, 3]).await;

    // --- Join. ---
    cluster.start_joining(4, 1);
    let four: BTreeSet<u64> = [1, 2, 3, 4].into();
    wait_members(
        &cluster,
        &[1, 2, 3, 4],
        &four,
        "every manager to list 4 voters after manager 4 joined via manager 1",
    )
    .await;
    let leader = cluster.wait_for_leader().await;
    let st4 = cluster.status(4).await.unwrap();
    assert_eq!(
        st4.role, "follower",
        "manager 4 after promotion: role {}",
        st4.role
    );
    let raft = cluster.raft(leader).await.unwrap();
    cluster.log(&format!(
        "manager 4 joined; leader {leader} replication: {:?}",
        raft.members
            .iter()
            .map(|m| (m.id, m.voter, m.matched_index))
            .collect::<Vec<_>>()
    ));
    assert!(
        raft.members.iter().any(|m| m.id == 4 && m.voter),
        "leader {leader} /v1/operator/raft does not list manager 4 as a voter: {:?}",
        raft.members
    );

    // The joiner got the jobs written before it joined, and new ones,
    // including ones written through it.
    write_and_check(&cluster, "m-four", 100, &[1, 2, 3, 4], &[1, 2, 3, 4]).await;
    let on4 = cluster.job_versions(4, false).await.unwrap();
    assert!(on4.contains_key("m-pre-0") && on4.contains_key("m-pre-49"));
    assert_eq!(on4.len(), 150, "manager 4: linearizable job count");

    // --- Remove a follower (one of the original three). ---
    let victim = *[1u64, 2, 3].iter().find(|&&i| i != leader).unwrap();
    let resp = cluster
        .api
        .request(
            &cluster.addr(leader),
            reqwest::Method::DELETE,
            &format!("/v1/operator/raft/peers/{victim}"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("DELETE peer {victim} on leader {leader}: {e}"));
    assert!(
        resp.is_success(),
        "DELETE /v1/operator/raft/peers/{victim} on leader {leader}: {}",
        resp.describe()
    );
    let remaining: Vec<u64> = [1u64, 2, 3, 4]
        .into_iter()
        .filter(|&i| i != victim)
        .collect();
    let remaining_set: BTreeSet<u64> = remaining.iter().copied().collect();
    wait_members(
        &cluster,
        &remaining,
        &remaining_set,
        &format!("the other managers to list 3 voters after removing manager {victim}"),
    )
    .await;
    cluster.stop(victim);
    let leader = cluster.wait_for_leader().await;
    write_and_check(&cluster, "m-three", 50, &remaining, &remaining).await;
    cluster.log(&format!(
        "removed follower {victim}; members {remaining:?}; leader {leader}; writes go on"
    ));

    // --- Remove the leader. ---
    let resp = cluster
        .api
        .request(
            &cluster.addr(leader),
            reqwest::Method::DELETE,
            &format!("/v1/operator/raft/peers/{leader}"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("DELETE peer {leader} (itself) on leader {leader}: {e}"));
    assert!(
        resp.is_success(),
        "DELETE /v1/operator/raft/peers/{leader} on leader {leader} (removing itself): {}",
        resp.describe()
    );
    let last_two: Vec<u64> = remaining.iter().copied().filter(|&i| i != leader).collect();
    let last_two_set: BTreeSet<u64> = last_two.iter().copied().collect();
    wait_members(
        &cluster,
        &last_two,
        &last_two_set,
        &format!("the other managers to list 2 voters after removing leader {leader}"),
    )
    .await;
    cluster.stop(leader);
    let new_leader = cluster.wait_for_leader().await;
    assert!(last_two.contains(&new_leader));
    write_and_check(&cluster, "m-two", 30, &last_two, &last_two).await;

    // Everything written since the start is still there.
    let all = cluster.job_versions(new_leader, false).await.unwrap();
    assert_eq!(
        all.len(),
        50 + 100 + 50 + 30,
        "jobs on leader {new_leader} at the end"
    );
    println!(
        "membership: joined 4, removed follower {victim}, removed leader {leader}; new leader {new_leader} with members {last_two:?}; {} jobs",
        all.len()
    );
}
