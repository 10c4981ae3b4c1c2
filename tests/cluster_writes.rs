//! Writes through every manager reach every manager.
//!
//! 1,000 jobs are submitted round-robin through all three managers, 16 in
//! flight; every one must be acknowledged with 201 (no retries: the cluster
//! is healthy, a follower forwards). Then each manager serves all 1,000, both
//! from its local replica (`?stale=true`, once it has applied the highest
//! acknowledged index) and linearizably. Also: an update bumps the version,
//! and a YAML submission works.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use support::{decode_ack, diff_ids, job, write_many, Body, Cluster};

const JOBS: usize = 1000;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_writes_through_every_manager_are_readable_everywhere() {
    let cluster = Cluster::start(3).await;
    let ids = cluster.ids();
    let addrs = cluster.addrs();

    let started = std::time::Instant::now();
    let acks = match write_many(&cluster.api, "w", JOBS, CONCURRENCY, &addrs, 0).await {
        Ok(a) => a,
        Err(e) => {
            cluster.assert_alive();
            panic!("every write must return 201 on a healthy cluster: {e}");
        }
    };
    let took = started.elapsed();
    cluster.log(&format!(
        "{JOBS} writes, {CONCURRENCY} in flight, round-robin over 3 managers: {:.2}s ({:.0} writes/s)",
        took.as_secs_f64(),
        JOBS as f64 / took.as_secs_f64()
    ));
    assert_eq!(acks.len(), JOBS);
    let expected: BTreeSet<String> = acks.iter().map(|a| a.id.clone()).collect();
    assert_eq!(
        expected.len(),
        JOBS,
        "acks name {} distinct ids",
        expected.len()
    );
    let max_index = acks.iter().map(|a| a.index).max().unwrap_or(0);
    let by_id: BTreeMap<String, support::Ack> =
        acks.iter().map(|a| (a.id.clone(), a.clone())).collect();

    for &id in &ids {
        let st = cluster.wait_applied(id, max_index).await;
        cluster.log(&format!(
            "manager {id}: applied_index={} (max acknowledged index {max_index})",
            st.applied_index
        ));
        // Local replica.
        let stale = cluster
            .list_jobs(id, true)
            .await
            .unwrap_or_else(|e| panic!("manager {id}: stale list: {e}"));
        let got: BTreeSet<String> = stale.iter().map(|j| j.id.clone()).collect();
        assert_eq!(
            stale.len(),
            JOBS,
            "manager {id}: GET /v1/jobs?stale=true after applying {max_index}: {}",
            diff_ids(&expected, &got)
        );
        assert_eq!(
            got,
            expected,
            "manager {id}: stale list: {}",
            diff_ids(&expected, &got)
        );
        for s in &stale {
            let ack = &by_id[&s.id];
            assert_eq!(
                s.version, ack.version,
                "manager {id}: job {} listed with version {}, acknowledged version {}",
                s.id, s.version, ack.version
            );
        }

        // Linearizable read, straight after the writes, on every manager.
        let resp = cluster
            .api
            .get(&cluster.addr(id), "/v1/jobs")
            .await
            .unwrap_or_else(|e| panic!("manager {id}: GET /v1/jobs: {e}"));
        assert_eq!(
            resp.status,
            200,
            "manager {id}: GET /v1/jobs: {}",
            resp.describe()
        );
        let header = resp.index.unwrap_or_else(|| {
            panic!("manager {id}: GET /v1/jobs has no numeric X-Gantry-Index header")
        });
        assert!(
            header >= max_index,
            "manager {id}: linearizable GET /v1/jobs answered at index {header} < {max_index}, the highest acknowledged write"
        );
        let lin: Vec<support::JobSummary> = serde_json::from_value(resp.body.clone())
            .unwrap_or_else(|e| {
                panic!("manager {id}: GET /v1/jobs body ({e}): {}", resp.describe())
            });
        let got: BTreeSet<String> = lin.iter().map(|j| j.id.clone()).collect();
        assert_eq!(
            got,
            expected,
            "manager {id}: linearizable list: {}",
            diff_ids(&expected, &got)
        );

        // Spot checks of single jobs, both read modes.
        for n in (0..JOBS).step_by(97) {
            let jid = format!("w-{n}");
            let ack = &by_id[&jid];
            for stale in [false, true] {
                let j = cluster
                    .api
                    .get_job(&cluster.addr(id), &jid, stale)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("manager {id}: GET /v1/jobs/{jid} (stale={stale}): {e}")
                    });
                assert_eq!(
                    j.spec.get("id").and_then(|v| v.as_str()),
                    Some(jid.as_str()),
                    "manager {id}: GET /v1/jobs/{jid} spec.id: {}",
                    j.spec
                );
                assert_eq!(
                    j.spec["tasks"][0]["resources"]["memory_mb"], 32,
                    "manager {id}: job {jid} spec lost its resources: {}",
                    j.spec
                );
                assert_eq!(j.version, ack.version, "manager {id}: job {jid} version");
                assert_eq!(
                    j.create_index, ack.index,
                    "manager {id}: job {jid} create_index {} != index {} returned by its 201",
                    j.create_index, ack.index
                );
                assert_eq!(
                    j.modify_index, ack.index,
                    "manager {id}: job {jid} modify_index {} != index {} returned by its 201 (never updated)",
                    j.modify_index, ack.index
                );
                assert!(
                    j.submitted_at_ms > 0,
                    "manager {id}: job {jid} submitted_at_ms is 0"
                );
            }
        }
    }

    // --- An update bumps the version (submitted through a follower). ---
    let leader = cluster.leader_id().await;
    let follower = *ids.iter().find(|&&i| i != leader).expect("a follower");
    let target = "w-5";
    let before = by_id[target].clone();
    let mut spec = job(target);
    spec["tasks"][0]["command"] = json!(["sleep", "7200"]);
    spec["tasks"][0]["env"] = json!({"REV": "2"});
    let resp = cluster
        .api
        .post_job(&cluster.addr(follower), &spec)
        .await
        .unwrap_or_else(|e| panic!("update via manager {follower}: {e}"));
    let updated = decode_ack(&cluster.addr(follower), &resp)
        .unwrap_or_else(|e| panic!("update via manager {follower}: {e}"));
    assert!(
        updated.version > before.version,
        "updating {target}: version {} -> {}, expected it to grow",
        before.version,
        updated.version
    );
    assert!(
        updated.index > before.index,
        "update's index must be after the create's"
    );
    for &id in &ids {
        cluster.wait_applied(id, updated.index).await;
        for stale in [false, true] {
            let j = cluster
                .api
                .get_job(&cluster.addr(id), target, stale)
                .await
                .unwrap_or_else(|e| panic!("manager {id}: GET {target}: {e}"));
            assert_eq!(
                j.version, updated.version,
                "manager {id} (stale={stale}): version after update"
            );
            assert_eq!(
                j.spec["tasks"][0]["command"],
                json!(["sleep", "7200"]),
                "manager {id} (stale={stale}): spec after update"
            );
            assert_eq!(
                j.create_index, before.index,
                "manager {id}: create_index changed on update"
            );
            assert_eq!(
                j.modify_index, updated.index,
                "manager {id}: modify_index after update"
            );
        }
        let list = cluster.list_jobs(id, true).await.unwrap();
        let s = list
            .iter()
            .find(|s| s.id == target)
            .expect("updated job listed");
        assert_eq!(
            s.version, updated.version,
            "manager {id}: listed version after update"
        );
        assert_eq!(
            list.len(),
            JOBS,
            "manager {id}: an update must not add a job"
        );
    }

    // --- YAML submission (through another follower if there is one). ---
    let via = *ids
        .iter()
        .rev()
        .find(|&&i| i != leader)
        .expect("a follower");
    let yaml = "\
id: yaml-job
type: service
replicas: 0
tasks:
  - name: main
    image: gantry/busybox:latest
    command: [\"sleep\", \"60\"]
    env:
      FROM: yaml
    resources:
      cpu_millis: 150
      memory_mb: 48
";
    let resp = cluster
        .api
        .request(
            &cluster.addr(via),
            reqwest::Method::POST,
            "/v1/jobs",
            Some(Body::Raw {
                content_type: "application/yaml",
                bytes: yaml.as_bytes().to_vec(),
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("YAML submit via manager {via}: {e}"));
    let ack = decode_ack(&cluster.addr(via), &resp)
        .unwrap_or_else(|e| panic!("YAML submit via manager {via}: {e}"));
    assert_eq!(ack.id, "yaml-job");
    let j = cluster
        .api
        .get_job(&cluster.addr(leader), "yaml-job", false)
        .await
        .unwrap_or_else(|e| panic!("GET yaml-job from leader {leader}: {e}"));
    assert_eq!(
        j.spec["tasks"][0]["resources"]["memory_mb"], 48,
        "YAML job spec: {}",
        j.spec
    );
    assert_eq!(
        j.spec["tasks"][0]["env"]["FROM"], "yaml",
        "YAML job spec: {}",
        j.spec
    );
    assert_eq!(
        j.spec["tasks"][0]["command"],
        json!(["sleep", "60"]),
        "YAML job spec: {}",
        j.spec
    );
    assert_eq!(j.version, ack.version);
}
