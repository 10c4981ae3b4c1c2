//! Acknowledged writes survive a restart of every manager.
//!
//! 300 jobs are written (50 of them updated once, so versions differ), all
//! three managers are SIGKILLed at once and restarted from their data dirs
//! with the same command lines. A leader is elected, and every manager serves
//! all 300 jobs with the versions that were acknowledged.

mod support;

use std::collections::BTreeMap;

use serde_json::json;
use support::{job, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_jobs_and_versions_survive_killing_every_manager() {
    let mut cluster = Cluster::start(3).await;
    let ids = cluster.ids();

    let acks = cluster.write_jobs("fr", 300, 8, &ids).await;
    let mut expected: BTreeMap<String, u64> =
        acks.iter().map(|a| (a.id.clone(), a.version)).collect();
    let mut max_index = acks.iter().map(|a| a.index).max().unwrap();

    // Update every sixth job once: its version must move and stay moved.
    for n in (0..300).step_by(6) {
        let id = format!("fr-{n}");
        let mut spec = job(&id);
        spec["tasks"][0]["env"] = json!({"REV": "2"});
        let via = cluster.addr(ids[n % ids.len()]);
        let ack = cluster
            .api
            .submit(&via, &spec)
            .await
            .unwrap_or_else(|e| panic!("update {id} via {via}: {e}"));
        assert!(
            ack.version > expected[&id],
            "update of {id}: version {} -> {}",
            expected[&id],
            ack.version
        );
        expected.insert(id, ack.version);
        max_index = max_index.max(ack.index);
    }
    assert_eq!(expected.len(), 300);

    // Nothing needs to be applied everywhere before the kill: an
    // acknowledged write is committed on a majority, and that is the claim.
    let before: BTreeMap<u64, u64> = {
        let mut m = BTreeMap::new();
        for &id in &ids {
            let st = cluster.status(id).await.unwrap();
            m.insert(id, st.applied_index);
        }
        m
    };
    cluster.log(&format!(
        "before the kill: applied_index per manager {before:?}, max acknowledged index {max_index}"
    ));

    for &id in &ids {
        cluster.kill(id);
    }
    for &id in &ids {
        cluster.restart(id);
    }
    let leader = cluster.wait_for_leader().await;
    cluster.log(&format!("after the full restart, manager {leader} leads"));

    let lin = cluster
        .job_versions(leader, false)
        .await
        .unwrap_or_else(|e| panic!("linearizable list on leader {leader}: {e}"));
    assert_eq!(
        lin,
        expected,
        "leader {leader} after the full restart: {}",
        describe_diff(&expected, &lin)
    );

    for &id in &ids {
        let st = cluster.wait_applied(id, max_index).await;
        let got = cluster
            .job_versions(id, true)
            .await
            .unwrap_or_else(|e| panic!("manager {id}: stale list: {e}"));
        assert_eq!(
            got,
            expected,
            "manager {id} (applied_index {}) after the full restart: {}",
            st.applied_index,
            describe_diff(&expected, &got)
        );
        for probe in ["fr-0", "fr-1", "fr-150", "fr-299"] {
            let j = cluster
                .api
                .get_job(&cluster.addr(id), probe, true)
                .await
                .unwrap_or_else(|e| panic!("manager {id}: GET {probe}: {e}"));
            assert_eq!(j.version, expected[probe], "manager {id}: {probe} version");
            let env = &j.spec["tasks"][0]["env"];
            if probe == "fr-0" || probe == "fr-150" {
                assert_eq!(
                    env["REV"], "2",
                    "manager {id}: {probe} lost its update: {}",
                    j.spec
                );
            }
        }
    }

    // The restarted cluster takes writes.
    let ack = cluster
        .api
        .submit(&cluster.addr(leader), &job("fr-after"))
        .await
        .unwrap_or_else(|e| panic!("write after the full restart: {e}"));
    assert!(
        ack.index > max_index,
        "a write after the restart got index {} <= {max_index}, an index acknowledged before",
        ack.index
    );
    println!(
        "full restart: 300 jobs (50 updated) intact on all 3 managers; new write at index {}",
        ack.index
    );
}

fn describe_diff(expected: &BTreeMap<String, u64>, got: &BTreeMap<String, u64>) -> String {
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(k, v)| match got.get(k) {
            Some(g) if g != v => Some(format!("{k}: v{g} (expected v{v})")),
            _ => None,
        })
        .collect();
    format!(
        "{} jobs, expected {}; missing {} (first: {:?}); unexpected {} (first: {:?}); wrong version {} (first: {:?})",
        got.len(),
        expected.len(),
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(10).collect::<Vec<_>>(),
        wrong.len(),
        wrong.iter().take(10).collect::<Vec<_>>()
    )
}
