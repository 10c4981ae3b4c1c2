//! With a majority of managers gone, the survivor says so clearly instead of hanging:
//! a write fails with `503 no_quorum` once its bounded retry runs out, a linearizable
//! read fails the same way, and a stale read (`?stale=true`) still answers from the
//! local replica. When a second manager returns, writes are acknowledged again and
//! everything acknowledged before the loss is still there.
//!
//! Both survivors are covered: the old leader (which still believes it leads) and a
//! follower (which knows no leader).

mod support;

use std::time::{Duration, Instant};

use support::{job, wait_until, Cluster, SERIAL};

const JOBS_BEFORE: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_leader_alone_refuses_writes_and_serves_stale_reads() {
    let _serial = SERIAL.lock().await;
    lose_quorum_keeping(|leader, _| leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_alone_refuses_writes_and_serves_stale_reads() {
    let _serial = SERIAL.lock().await;
    lose_quorum_keeping(|leader, ids| *ids.iter().find(|&&id| id != leader).unwrap()).await;
}

async fn lose_quorum_keeping(pick_survivor: impl Fn(u64, &[u64]) -> u64) {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    for i in 0..JOBS_BEFORE {
        cluster
            .api
            .submit(&cluster.addr(leader), &job(&format!("before-{i}")))
            .await
            .unwrap_or_else(|e| panic!("write before-{i} through the leader: {e}"));
    }
    let ids = cluster.ids();
    let survivor = pick_survivor(leader, &ids);
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != survivor).collect();
    // Let the survivor apply everything before the others go.
    let survivor_addr = cluster.addr(survivor);
    wait_until(
        &format!("manager {survivor} to hold the {JOBS_BEFORE} jobs"),
        Duration::from_secs(10),
        || async {
            let jobs = cluster.api.list_jobs(&survivor_addr, true).await?;
            if jobs.len() == JOBS_BEFORE {
                Ok(())
            } else {
                Err(format!("{} jobs", jobs.len()))
            }
        },
    )
    .await;
    for &id in &others {
        cluster.kill(id);
    }
    cluster.log(&format!(
        "killed managers {others:?}; manager {survivor} (leader was {leader}) is alone"
    ));

    let started = Instant::now();
    let write = cluster
        .api
        .post_job(&survivor_addr, &job("during-the-loss"))
        .await
        .unwrap_or_else(|e| panic!("manager {survivor} must answer a write, not drop it: {e}"));
    let took = started.elapsed();
    assert_eq!(
        write.status,
        503,
        "write without quorum: {}",
        write.describe()
    );
    assert_eq!(
        write.error_code(),
        Some("no_quorum"),
        "{}",
        write.describe()
    );
    println!(
        "write without quorum on manager {survivor}: 503 no_quorum after {:.2}s: {}",
        took.as_secs_f64(),
        write.error_message().unwrap_or_default()
    );

    let read = cluster
        .api
        .get(&survivor_addr, "/v1/jobs")
        .await
        .unwrap_or_else(|e| panic!("manager {survivor} must answer a read: {e}"));
    assert_eq!(
        read.status,
        503,
        "linearizable read without quorum: {}",
        read.describe()
    );
    assert_eq!(read.error_code(), Some("no_quorum"), "{}", read.describe());

    let stale = cluster
        .api
        .list_jobs(&survivor_addr, true)
        .await
        .unwrap_or_else(|e| panic!("stale read on manager {survivor}: {e}"));
    let before = stale.iter().filter(|j| j.id.starts_with("before-")).count();
    assert_eq!(
        before, JOBS_BEFORE,
        "stale read on manager {survivor} lost jobs"
    );

    // A second manager returns: a quorum again.
    cluster.restart(others[0]);
    wait_until(
        "a write to be acknowledged again after a second manager returned",
        Duration::from_secs(30),
        || async {
            cluster
                .api
                .submit(&survivor_addr, &job("after-the-loss"))
                .await
                .map(|_| ())
        },
    )
    .await;
    let jobs = cluster
        .api
        .list_jobs(&survivor_addr, false)
        .await
        .unwrap_or_else(|e| panic!("linearizable read after recovery: {e}"));
    let before = jobs.iter().filter(|j| j.id.starts_with("before-")).count();
    assert_eq!(before, JOBS_BEFORE, "acknowledged jobs lost: {jobs:?}");
    assert!(jobs.iter().any(|j| j.id == "after-the-loss"));
}
