//! Backup and restore of the whole state: save → wipe → restore.
//!
//! A three-manager cluster gets jobs (one with several versions), two nodes (simulated
//! agents) and an allocation; a snapshot is saved from a follower. The cluster is then
//! wiped (every manager killed, its data deleted) and a fresh three-manager cluster
//! started, with a job of its own. Broken files (truncated, wrong format, a record that
//! does not decode, empty) are refused with `400` and change nothing. The saved file is
//! restored through a follower: every manager, read locally (`?stale=true`), then shows
//! exactly the saved jobs, versions and nodes, and not the fresh cluster's job. A larger
//! file (thousands of jobs, megabytes: many log entries' worth) restores the same way,
//! and a snapshot saved after it holds the restored records byte for byte.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use gantry_api::sim_agent::SimAgent;
use gantry_api::Client;
use serde_json::{json, Value};
use support::{job, wait_until, Api, Body, Cluster, CATCH_UP_TIMEOUT};

const SNAPSHOT: &str = "/v1/operator/snapshot";

/// What a snapshot file says about itself.
struct Saved {
    bytes: Vec<u8>,
    index: u64,
    /// key → value, as in the file.
    records: BTreeMap<String, Value>,
}

impl Saved {
    fn parse(bytes: Vec<u8>) -> Saved {
        let file: Value = serde_json::from_slice(&bytes).expect("the snapshot is JSON");
        assert_eq!(file["format"], "gantry-snapshot/1");
        let index = file["index"].as_u64().expect("index");
        assert!(file["taken_at_ms"].as_u64().is_some_and(|t| t > 0));
        let mut records = BTreeMap::new();
        for record in file["records"].as_array().expect("records") {
            let key = record[0].as_str().expect("key").to_string();
            assert!(records.insert(key, record[1].clone()).is_none());
        }
        Saved {
            bytes,
            index,
            records,
        }
    }

    fn ids(&self, prefix: &str) -> BTreeSet<String> {
        self.records
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Job id → current version.
    fn job_versions(&self) -> BTreeMap<String, u64> {
        self.records
            .iter()
            .filter(|(k, _)| k.starts_with("job/"))
            .map(|(_, v)| {
                let id = v["spec"]["id"].as_str().unwrap().to_string();
                (id, v["version"].as_u64().unwrap())
            })
            .collect()
    }

    /// The kept versions of one job.
    fn history(&self, job: &str) -> Vec<u64> {
        let prefix = format!("jobv/{job}/");
        self.records
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v["version"].as_u64().unwrap())
            .collect()
    }
}

async fn save(api: &Api, addr: &str) -> Saved {
    let response = api
        .reqwest()
        .get(format!("http://{addr}{SNAPSHOT}"))
        .send()
        .await
        .expect("GET snapshot");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("snapshot body").to_vec();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["content-type"], "application/octet-stream");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(headers.contains_key("x-gantry-index"));
    Saved::parse(bytes)
}

async fn put(api: &Api, addr: &str, bytes: Vec<u8>) -> support::Resp {
    api.request(
        addr,
        reqwest::Method::PUT,
        SNAPSHOT,
        Some(Body::Raw {
            content_type: "application/octet-stream",
            bytes,
        }),
    )
    .await
    .expect("PUT snapshot")
}

/// Reads `path` with `?stale=true` from manager `id`.
async fn local(cluster: &Cluster, id: u64, path: &str) -> Result<Value, String> {
    let r = cluster
        .api
        .get(&cluster.addr(id), &format!("{path}?stale=true"))
        .await?;
    if r.status != 200 {
        return Err(format!("GET {path} on manager {id}: {}", r.describe()));
    }
    Ok(r.body)
}

fn ids_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until every manager of `cluster` holds exactly `saved`'s jobs, versions and
/// nodes (and at least its allocations), each read from its own replica.
async fn check_every_manager(cluster: &Cluster, saved: &Saved, restored_index: u64) {
    let jobs = saved.job_versions();
    let nodes = saved.ids("node/");
    let allocations = saved.ids("alloc/");
    for id in cluster.ids() {
        cluster.wait_applied(id, restored_index).await;
        let got = cluster.job_versions(id, true).await.unwrap();
        assert_eq!(
            got, jobs,
            "manager {id}: jobs and versions after the restore"
        );
        for job in jobs.keys().filter(|j| !j.starts_with("bulk-")) {
            let history = local(cluster, id, &format!("/v1/jobs/{job}/versions"))
                .await
                .unwrap();
            let mut versions: Vec<u64> = history
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["version"].as_u64().unwrap())
                .collect();
            versions.sort();
            assert_eq!(
                versions,
                saved.history(job),
                "manager {id}: history of {job}"
            );
        }
        let got_nodes = ids_of(&local(cluster, id, "/v1/nodes").await.unwrap());
        assert_eq!(got_nodes, nodes, "manager {id}: nodes after the restore");
        let got_allocations = ids_of(&local(cluster, id, "/v1/allocations").await.unwrap());
        assert!(
            got_allocations.is_superset(&allocations),
            "manager {id}: allocations {got_allocations:?}, saved {allocations:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_wipe_restore_on_every_manager() {
    // --- A cluster with some state. ---
    let source = Cluster::start(3).await;
    let leader = source.wait_for_leader().await;
    let follower = *source.ids().iter().find(|id| **id != leader).unwrap();
    source.write_jobs("job", 20, 4, &source.ids()).await;
    for sleep in ["10", "20", "30"] {
        let mut spec = job("web");
        spec["tasks"][0]["command"] = json!(["sleep", sleep]);
        source
            .api
            .submit(&source.addr(leader), &spec)
            .await
            .unwrap();
    }
    let client = Client::new(source.addrs(), None).unwrap();
    let mut agents: Vec<SimAgent> = ["node-a", "node-b"]
        .iter()
        .map(|name| SimAgent::start(&client, name, 4000, 8192))
        .collect();
    let mut placed = job("placed");
    placed["replicas"] = json!(1);
    source
        .api
        .submit(&source.addr(leader), &placed)
        .await
        .unwrap();
    let source_ref = &source;
    wait_until(
        "the two nodes and the placed allocation",
        CATCH_UP_TIMEOUT,
        || async move {
            let nodes = local(source_ref, leader, "/v1/nodes").await?;
            let allocations = local(source_ref, leader, "/v1/allocations").await?;
            if ids_of(&nodes).len() == 2 && ids_of(&allocations).len() == 1 {
                Ok(())
            } else {
                Err(format!("nodes {nodes}, allocations {allocations}"))
            }
        },
    )
    .await;

    // --- Save, through a follower. ---
    let saved = save(&source.api, &source.addr(follower)).await;
    source.log(&format!(
        "saved a snapshot at index {} with {} records ({} bytes)",
        saved.index,
        saved.records.len(),
        saved.bytes.len()
    ));
    assert_eq!(saved.job_versions().len(), 22);
    assert_eq!(saved.job_versions()["web"], 3);
    assert_eq!(saved.history("web"), vec![1, 2, 3]);
    assert_eq!(
        saved.ids("node/"),
        BTreeSet::from(["node-a".to_string(), "node-b".to_string()])
    );
    assert_eq!(saved.ids("alloc/").len(), 1);

    // --- Wipe: every manager and its data gone; a fresh cluster. ---
    for agent in &mut agents {
        agent.kill();
    }
    drop(source);
    let target = Cluster::start(3).await;
    let leader = target.wait_for_leader().await;
    let follower = *target.ids().iter().find(|id| **id != leader).unwrap();
    let faddr = target.addr(follower);
    target.api.submit(&faddr, &job("stray")).await.unwrap();
    let before: BTreeSet<String> = target
        .job_versions(leader, false)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(before, BTreeSet::from(["stray".to_string()]));

    // --- Broken files: 400, nothing changes. ---
    let text = String::from_utf8(saved.bytes.clone()).unwrap();
    let mut corrupt: Value = serde_json::from_str(&text).unwrap();
    let web = corrupt["records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r[0] == "job/web")
        .unwrap();
    web[1]["version"] = json!("three");
    let broken: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            saved.bytes[..saved.bytes.len() / 2].to_vec(),
            "not a Gantry snapshot file",
        ),
        ("empty", Vec::new(), "not a Gantry snapshot file"),
        (
            "another format",
            text.replace("gantry-snapshot/1", "gantry-snapshot/0")
                .into_bytes(),
            "gantry-snapshot/0",
        ),
        (
            "a record that does not decode",
            serde_json::to_vec(&corrupt).unwrap(),
            "corrupt record `job/web`",
        ),
    ];
    for (what, bytes, says) in broken {
        let r = put(&target.api, &faddr, bytes).await;
        assert_eq!(r.status, 400, "{what}: {}", r.describe());
        assert_eq!(r.error_code(), Some("bad_request"), "{what}");
        let message = r.error_message().unwrap();
        assert!(message.contains(says), "{what}: {message}");
    }
    let after: BTreeSet<String> = target
        .job_versions(leader, false)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(after, before, "refused files change nothing");

    // --- Restore, through a follower. ---
    let started = Instant::now();
    let r = put(&target.api, &faddr, saved.bytes.clone()).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let restored_index = r.body["restored_index"].as_u64().unwrap();
    assert_eq!(
        r.body["records"].as_u64().unwrap(),
        saved.records.len() as u64
    );
    target.log(&format!(
        "restored {} records at index {restored_index} in {:?}",
        saved.records.len(),
        started.elapsed()
    ));
    check_every_manager(&target, &saved, restored_index).await;

    // --- A larger file: thousands of jobs, many log entries' worth of records. ---
    let mut bulk: Value = serde_json::from_slice(&saved.bytes).unwrap();
    let template = saved.records["job/job-0"].clone();
    let records = bulk["records"].as_array_mut().unwrap();
    for i in 0..3000 {
        let id = format!("bulk-{i:04}");
        let mut record = template.clone();
        record["spec"]["id"] = json!(id);
        record["spec"]["tasks"][0]["env"] = json!({ "PADDING": "x".repeat(400) });
        records.push(json!([format!("job/{id}"), record]));
    }
    records.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
    let bulk_bytes = serde_json::to_vec(&bulk).unwrap();
    let bulk = Saved::parse(bulk_bytes.clone());
    let started = Instant::now();
    let r = put(&target.api, &target.addr(leader), bulk_bytes.clone()).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let restored_index = r.body["restored_index"].as_u64().unwrap();
    target.log(&format!(
        "restored {} records ({} bytes) at index {restored_index} in {:?}",
        bulk.records.len(),
        bulk_bytes.len(),
        started.elapsed()
    ));
    check_every_manager(&target, &bulk, restored_index).await;
    let _ = target.wait_for_leader().await;

    // Saved again, the job versions (which nothing rewrites) are the restored bytes.
    let again = save(&target.api, &target.addr(follower)).await;
    assert!(again.index >= restored_index);
    for (key, value) in bulk.records.iter().filter(|(k, _)| k.starts_with("jobv/")) {
        assert_eq!(again.records.get(key), Some(value), "{key}");
    }
    assert_eq!(again.job_versions(), bulk.job_versions());
}
