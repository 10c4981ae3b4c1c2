//! Recovering from the permanent loss of a quorum with `--force-new-cluster`.
//!
//! Three managers take writes; then two of them (the leader among them) are lost for
//! good: killed, their data deleted. The survivor alone refuses writes (`503
//! no_quorum`). Restarted with `--force-new-cluster` on its data, it leads a one-member
//! cluster with every acknowledged job and takes writes; restarting it with the flag
//! again changes nothing, and so does a plain restart. Two new managers (new ids) join
//! it with `--join`, become voters and receive every job, and the cluster of three keeps
//! taking writes after one of the new ones is lost.

mod support;

use std::collections::BTreeSet;

use support::{job, wait_until, Cluster, CATCH_UP_TIMEOUT, ELECTION_TIMEOUT};

/// Waits until manager `id` leads with exactly `members` as voters (and no learner).
async fn wait_leading(cluster: &Cluster, id: u64, members: &BTreeSet<u64>, what: &str) {
    wait_until(what, ELECTION_TIMEOUT, || async move {
        let st = cluster.status(id).await?;
        if st.role == "leader" && st.member_ids() == *members && st.voters() == *members {
            Ok(())
        } else {
            Err(format!(
                "manager {id}: role {}, leader {:?}, members {:?}",
                st.role, st.leader, st.members
            ))
        }
    })
    .await
}

/// Every job id in `want` is in manager `id`'s own replica.
async fn has_jobs(cluster: &Cluster, id: u64, want: &BTreeSet<String>) -> Result<(), String> {
    let got: BTreeSet<String> = cluster.job_versions(id, true).await?.into_keys().collect();
    let missing: Vec<&String> = want.difference(&got).take(10).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "manager {id} lacks {} of {} jobs (first: {missing:?})",
            want.difference(&got).count(),
            want.len()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_manager_recovers_and_new_managers_join_it() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let acks = cluster.write_jobs("before", 40, 4, &cluster.ids()).await;
    let mut written: BTreeSet<String> = acks.iter().map(|a| a.id.clone()).collect();

    // --- Two managers lost for good, the leader among them. ---
    let survivor = *cluster.ids().iter().find(|id| **id != leader).unwrap();
    let lost: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != survivor)
        .collect();
    for &id in &lost {
        cluster.kill(id);
        cluster.wipe(id);
    }
    let addr = cluster.addr(survivor);
    let refused = cluster
        .api
        .post_job(&addr, &job("no-quorum"))
        .await
        .unwrap();
    assert_eq!(refused.status, 503, "{}", refused.describe());
    assert_eq!(refused.error_code(), Some("no_quorum"));

    // --- The survivor, forced into a cluster of its own. ---
    cluster.kill(survivor);
    cluster.restart_with_args(survivor, &["--force-new-cluster"]);
    let alone = BTreeSet::from([survivor]);
    wait_leading(
        &cluster,
        survivor,
        &alone,
        "the survivor to lead a one-member cluster",
    )
    .await;
    let term = cluster.status(survivor).await.unwrap().term;
    has_jobs(&cluster, survivor, &written).await.unwrap();
    let linearizable: BTreeSet<String> = cluster
        .job_versions(survivor, false)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert!(linearizable.is_superset(&written));
    assert!(
        !linearizable.contains("no-quorum"),
        "the refused write was not applied"
    );
    let acks = cluster.write_jobs("alone", 10, 2, &[survivor]).await;
    written.extend(acks.iter().map(|a| a.id.clone()));

    // --- The flag again, then no flag: nothing changes. ---
    cluster.kill(survivor);
    cluster.restart_with_args(survivor, &["--force-new-cluster"]);
    wait_leading(&cluster, survivor, &alone, "the survivor to lead again").await;
    let st = cluster.status(survivor).await.unwrap();
    assert_eq!(
        st.term, term,
        "a second --force-new-cluster wrote nothing (same term)"
    );
    cluster.kill(survivor);
    cluster.restart(survivor);
    wait_leading(
        &cluster,
        survivor,
        &alone,
        "the survivor to lead after a plain restart",
    )
    .await;
    has_jobs(&cluster, survivor, &written).await.unwrap();

    // --- Two new managers join it. ---
    cluster.start_joining(4, survivor);
    cluster.start_joining(5, survivor);
    let three = BTreeSet::from([survivor, 4, 5]);
    for id in [survivor, 4, 5] {
        let cluster = &cluster;
        let three = &three;
        wait_until(
            &format!("manager {id} to list the new membership"),
            CATCH_UP_TIMEOUT,
            || async move {
                let st = cluster.status(id).await?;
                if st.member_ids() == *three && st.voters() == *three {
                    Ok(())
                } else {
                    Err(format!("manager {id}: members {:?}", st.members))
                }
            },
        )
        .await;
    }
    let acks = cluster.write_jobs("three", 20, 4, &[survivor, 4, 5]).await;
    written.extend(acks.iter().map(|a| a.id.clone()));
    let max = acks.iter().map(|a| a.index).max().unwrap();
    for id in [4, 5] {
        cluster.wait_applied(id, max).await;
        has_jobs(&cluster, id, &written).await.unwrap();
    }

    // --- And it survives losing one of the new managers. ---
    cluster.kill(5);
    let leader = cluster.wait_for_leader().await;
    assert!([survivor, 4].contains(&leader));
    let acks = cluster
        .write_jobs("after-loss", 10, 2, &[survivor, 4])
        .await;
    written.extend(acks.iter().map(|a| a.id.clone()));
    let max = acks.iter().map(|a| a.index).max().unwrap();
    for id in [survivor, 4] {
        cluster.wait_applied(id, max).await;
        has_jobs(&cluster, id, &written).await.unwrap();
    }
    let linearizable: BTreeSet<String> = cluster
        .job_versions(4, false)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(linearizable, written);
}
