//! A follower that was down catches up when it comes back.
//!
//! (a) From the leader's log: kill a follower, write more, restart it; it
//!     ends with the same jobs and (at least) the leader's applied index.
//! (b) From a snapshot: with `--snapshot-every 100`, kill a follower and write
//!     until the leader has snapshotted and purged its log past the
//!     follower's last entry, so the only way back is installing the leader's
//!     snapshot (sent in 16 KiB chunks, so a multi-chunk transfer is exercised); restart the follower; it ends with the same jobs, and its own
//!     `snapshot_index` shows the snapshot it received.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{wait_until, Cluster, Options, SERIAL};

/// Waits until manager `f` serves (stale) exactly the leader's jobs with the
/// same versions and has applied at least what the leader had applied.
async fn wait_caught_up(cluster: &Cluster, f: u64, timeout: Duration) -> (u64, u64, usize) {
    wait_until(
        &format!("manager {f} to catch up with the leader (same jobs, same applied index)"),
        timeout,
        || async move {
            let leader = cluster.agreed_leader().await?;
            let l = cluster.status(leader).await?;
            let want: BTreeMap<String, u64> = cluster.job_versions(leader, false).await?;
            let fs = cluster.status(f).await?;
            let got: BTreeMap<String, u64> = cluster.job_versions(f, true).await?;
            if got != want {
                let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
                let wrong = want
                    .iter()
                    .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                    .count();
                return Err(format!(
                    "manager {f} has {} jobs, leader {leader} has {} ({missing} missing, {wrong} with another version); follower applied={} leader applied={}",
                    got.len(),
                    want.len(),
                    fs.applied_index,
                    l.applied_index
                ));
            }
            if fs.applied_index < l.applied_index {
                return Err(format!(
                    "same jobs, but manager {f} applied_index={} < leader {leader} applied_index={}",
                    fs.applied_index, l.applied_index
                ));
            }
            Ok((fs.applied_index, l.applied_index, got.len()))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_follower_catches_up_from_the_log() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader_id().await;
    let follower = *cluster.ids().iter().find(|&&i| i != leader).unwrap();
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&i| i != follower)
        .collect();

    let pre = cluster.write_jobs("a-pre", 100, 8, &cluster.ids()).await;
    let pre_max = pre.iter().map(|a| a.index).max().unwrap();
    cluster.wait_applied(follower, pre_max).await;

    cluster.kill(follower);
    let during = cluster.write_jobs("a-down", 300, 8, &others).await;
    let during_max = during.iter().map(|a| a.index).max().unwrap();
    let l = cluster.status(leader).await.unwrap();
    cluster.log(&format!(
        "wrote 300 jobs while manager {follower} was down; leader {leader} commit={} applied={} (max ack index {during_max})",
        l.commit_index, l.applied_index
    ));

    cluster.restart(follower);
    let (f_applied, l_applied, jobs) =
        wait_caught_up(&cluster, follower, Duration::from_secs(60)).await;
    assert_eq!(jobs, 400, "manager {follower}: job count after catching up");
    println!(
        "catch-up from log: manager {follower} has {jobs} jobs, applied_index={f_applied} (leader applied_index={l_applied})"
    );

    // Spot-check a job written while it was down, from its local replica.
    let j = cluster
        .api
        .get_job(&cluster.addr(follower), "a-down-299", true)
        .await
        .unwrap_or_else(|e| panic!("manager {follower}: stale GET a-down-299: {e}"));
    assert_eq!(j.spec["id"], "a-down-299");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_follower_catches_up_from_a_snapshot() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start_with(
        3,
        Options {
            snapshot_every: Some(100),
            // Far smaller than the snapshot (hundreds of KB), so it travels in many chunks.
            snapshot_chunk_bytes: Some(16 * 1024),
            ..Options::default()
        },
    )
    .await;
    let leader = cluster.leader_id().await;
    let follower = *cluster.ids().iter().find(|&&i| i != leader).unwrap();
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&i| i != follower)
        .collect();

    let pre = cluster.write_jobs("b-pre", 50, 8, &cluster.ids()).await;
    let pre_max = pre.iter().map(|a| a.index).max().unwrap();
    cluster.wait_applied(follower, pre_max).await;
    let f_raft = cluster
        .raft(follower)
        .await
        .unwrap_or_else(|e| panic!("manager {follower}: /v1/operator/raft: {e}"));
    let f_last = f_raft.last_log_index;
    cluster.log(&format!(
        "manager {follower} before the kill: last_log_index={} applied={} snapshot_index={:?} purged_index={:?}",
        f_raft.last_log_index, f_raft.applied_index, f_raft.snapshot_index, f_raft.purged_index
    ));

    cluster.kill(follower);

    // Write until the leader has purged its log past the follower's last
    // entry: at least 500 jobs, at most 5,000, in batches of 250.
    let mut written = 50usize;
    let mut batch = 0usize;
    let purged_past = loop {
        cluster
            .write_jobs(&format!("b-down{batch}"), 250, 8, &others)
            .await;
        written += 250;
        batch += 1;
        let lr = cluster
            .raft(leader)
            .await
            .unwrap_or_else(|e| panic!("leader {leader}: /v1/operator/raft: {e}"));
        cluster.log(&format!(
            "{written} jobs written; leader {leader}: last_log_index={} snapshot_index={:?} purged_index={:?}",
            lr.last_log_index, lr.snapshot_index, lr.purged_index
        ));
        let purged = lr.purged_index.unwrap_or(0);
        if written >= 550 && purged > f_last {
            break lr;
        }
        if written >= 5050 {
            panic!(
                "after writing {} jobs with --snapshot-every 100, leader {leader} has snapshot_index={:?} purged_index={:?}; it never purged its log past manager {follower}'s last entry {f_last}, so catch-up by snapshot cannot be tested",
                written, lr.snapshot_index, lr.purged_index
            );
        }
    };
    let leader_snapshot = purged_past.snapshot_index.unwrap_or(0);
    assert!(
        leader_snapshot >= purged_past.purged_index.unwrap_or(0),
        "leader {leader}: purged_index {:?} beyond snapshot_index {:?}",
        purged_past.purged_index,
        purged_past.snapshot_index
    );

    cluster.restart(follower);
    let (f_applied, l_applied, jobs) =
        wait_caught_up(&cluster, follower, Duration::from_secs(90)).await;
    assert_eq!(
        jobs, written,
        "manager {follower}: job count after catching up"
    );
    let fr = cluster
        .raft(follower)
        .await
        .unwrap_or_else(|e| panic!("manager {follower}: /v1/operator/raft: {e}"));
    println!(
        "catch-up by snapshot: leader {leader} snapshot_index={:?} purged_index={:?} (follower's last entry before the kill: {f_last}); manager {follower} after catch-up: {jobs} jobs, applied_index={f_applied} (leader {l_applied}), snapshot_index={:?}, purged_index={:?}",
        purged_past.snapshot_index, purged_past.purged_index, fr.snapshot_index, fr.purged_index
    );
    let f_snap = fr.snapshot_index.unwrap_or(0);
    assert!(
        f_snap > f_last,
        "manager {follower}: snapshot_index={:?} after catching up, expected > {f_last} (its last entry before the kill): the leader purged past that, so it must have installed a snapshot",
        fr.snapshot_index
    );

    // Jobs from before the kill and from the last batch, from its replica.
    for id in [
        "b-pre-0",
        "b-pre-49",
        "b-down0-0",
        &format!("b-down{}-249", batch - 1),
    ] {
        let j = cluster
            .api
            .get_job(&cluster.addr(follower), id, true)
            .await
            .unwrap_or_else(|e| panic!("manager {follower}: stale GET {id}: {e}"));
        assert_eq!(j.spec["id"], id);
    }

    // And it is a working member again: a write through it reaches everyone.
    let ack = cluster
        .api
        .submit(&cluster.addr(follower), &support::job("b-after"))
        .await
        .unwrap_or_else(|e| panic!("write through caught-up manager {follower}: {e}"));
    for id in cluster.ids() {
        cluster.wait_applied(id, ack.index).await;
    }
}
