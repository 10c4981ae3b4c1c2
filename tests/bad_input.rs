//! Bad input gets a 4xx with a JSON error that says what is wrong, and
//! changes nothing.
//!
//! Each bad submission is sent to every manager (a follower forwards writes,
//! so both paths must reject it): malformed JSON, malformed YAML, a negative
//! `memory_mb`, an unknown field, an empty id, and a 10 MiB body. Each must
//! get a 4xx whose body is `{"error":{"code","message"}}` with a message that
//! names the problem. Afterwards the job list holds only the one valid job
//! written before, none of the bad ids exists, and a valid write still works.
//! An unknown job id is a 404 with the same error body.

mod support;

use std::collections::BTreeSet;

use support::{job, Body, Cluster, Resp};

struct Case {
    name: &'static str,
    /// The id the body would have created, checked to be absent afterwards.
    id: Option<&'static str>,
    content_type: &'static str,
    body: Vec<u8>,
    statuses: &'static [u16],
    /// The error message must contain this (case-insensitive), if set.
    message_names: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let mut neg = job("neg-mem");
    neg["tasks"][0]["resources"]["memory_mb"] = serde_json::json!(-64);
    let mut unknown = job("unknown-field");
    unknown["bogus_field_xyz"] = serde_json::json!(true);
    let empty_id = job("");
    let mut big = job("big");
    big["tasks"][0]["env"] = serde_json::json!({"BIG": "x".repeat(10 * 1024 * 1024)});

    vec![
        Case {
            name: "malformed JSON",
            id: Some("bad-json"),
            content_type: "application/json",
            body: br#"{"id": "bad-json", "replicas": 0, "tasks": [{"name": "main", "#.to_vec(),
            statuses: &[400, 422],
            message_names: None,
        },
        Case {
            name: "malformed YAML",
            id: Some("bad-yaml"),
            content_type: "application/yaml",
            body: b"id: bad-yaml\nreplicas: [0\ntasks: {\n".to_vec(),
            statuses: &[400, 422],
            message_names: None,
        },
        Case {
            name: "negative memory_mb",
            id: Some("neg-mem"),
            content_type: "application/json",
            body: serde_json::to_vec(&neg).unwrap(),
            statuses: &[400, 422],
            message_names: Some("memory_mb"),
        },
        Case {
            name: "unknown field",
            id: Some("unknown-field"),
            content_type: "application/json",
            body: serde_json::to_vec(&unknown).unwrap(),
            statuses: &[400, 422],
            message_names: Some("bogus_field_xyz"),
        },
        Case {
            name: "empty id",
            id: None,
            content_type: "application/json",
            body: serde_json::to_vec(&empty_id).unwrap(),
            statuses: &[400, 422],
            message_names: Some("id"),
        },
        Case {
            name: "10 MiB body",
            id: Some("big"),
            content_type: "application/json",
            body: serde_json::to_vec(&big).unwrap(),
            statuses: &[413],
            message_names: None,
        },
    ]
}

/// What is wrong with `resp` for `case`, if anything.
fn check(case: &Case, manager: u64, role: &str, resp: &Resp) -> Option<String> {
    let who = format!("[{}] manager {manager} ({role})", case.name);
    if !case.statuses.contains(&resp.status) {
        return Some(format!(
            "{who}: expected HTTP {:?}, got {}",
            case.statuses,
            resp.describe()
        ));
    }
    if !resp.has_error_body() {
        return Some(format!(
            "{who}: body is not {{\"error\":{{\"code\",\"message\"}}}}: {}",
            resp.describe()
        ));
    }
    let message = resp.error_message().unwrap_or_default();
    if message.trim().is_empty() || resp.error_code().unwrap_or_default().is_empty() {
        return Some(format!(
            "{who}: empty error code or message: {}",
            resp.describe()
        ));
    }
    if let Some(needle) = case.message_names {
        if !message.to_lowercase().contains(&needle.to_lowercase()) {
            return Some(format!(
                "{who}: error message does not name '{needle}': {}",
                resp.describe()
            ));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_submissions_get_a_4xx_that_names_the_problem_and_change_nothing() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader_id().await;

    // One valid job, so "nothing changed" is checked against a non-empty list.
    let good = cluster
        .api
        .submit(&cluster.addr(leader), &job("good-1"))
        .await
        .unwrap_or_else(|e| panic!("valid write on leader {leader}: {e}"));
    for id in cluster.ids() {
        cluster.wait_applied(id, good.index).await;
    }
    let before = cluster.status(leader).await.unwrap();

    let mut problems = Vec::new();
    for case in cases() {
        for id in cluster.ids() {
            let role = if id == leader { "leader" } else { "follower" };
            let mut outcome = Err(String::new());
            // A large body may see its connection closed by the server; one
            // retry, then the transport error itself is the finding.
            for _ in 0..2 {
                outcome = cluster
                    .api
                    .request(
                        &cluster.addr(id),
                        reqwest::Method::POST,
                        "/v1/jobs",
                        Some(Body::Raw {
                            content_type: case.content_type,
                            bytes: case.body.clone(),
                        }),
                    )
                    .await;
                if outcome.is_ok() {
                    break;
                }
            }
            match outcome {
                Ok(resp) => {
                    cluster.log(&format!(
                        "[{}] manager {id} ({role}): HTTP {} code={:?} message={:?}",
                        case.name,
                        resp.status,
                        resp.error_code(),
                        resp.error_message()
                    ));
                    if let Some(p) = check(&case, id, role, &resp) {
                        problems.push(p);
                    }
                }
                Err(e) => problems.push(format!(
                    "[{}] manager {id} ({role}): no HTTP response ({} byte body): {e}",
                    case.name,
                    case.body.len()
                )),
            }
        }
    }
    cluster.assert_alive();

    // Unknown id: 404 with the error body, in both read modes, everywhere.
    for id in cluster.ids() {
        for path in ["/v1/jobs/nope", "/v1/jobs/nope?stale=true"] {
            match cluster.api.get(&cluster.addr(id), path).await {
                Ok(r) if r.status == 404 && r.has_error_body() => {}
                Ok(r) => problems.push(format!(
                    "GET {path} on manager {id}: expected 404 with an error body, got {}",
                    r.describe()
                )),
                Err(e) => problems.push(format!("GET {path} on manager {id}: {e}")),
            }
        }
    }

    // Nothing was written: the list is still just good-1 everywhere, and
    // none of the bad ids exists.
    let after = cluster.status(leader).await.unwrap();
    println!(
        "leader {leader}: commit_index {} before the bad inputs, {} after (Raft no-ops may move it; the job list is the real check)",
        before.commit_index, after.commit_index
    );
    let expected: BTreeSet<String> = ["good-1".to_string()].into();
    for id in cluster.ids() {
        cluster.wait_applied(id, after.commit_index).await;
        for stale in [false, true] {
            match cluster.job_versions(id, stale).await {
                Ok(jobs) => {
                    let got: BTreeSet<String> = jobs.into_keys().collect();
                    if got != expected {
                        problems.push(format!(
                            "manager {id} (stale={stale}): jobs after the bad inputs are {got:?}, expected only {expected:?}"
                        ));
                    }
                }
                Err(e) => problems.push(format!("manager {id}: list: {e}")),
            }
        }
        for case in cases() {
            let Some(bad_id) = case.id else { continue };
            match cluster
                .api
                .get(&cluster.addr(id), &format!("/v1/jobs/{bad_id}"))
                .await
            {
                Ok(r) if r.status == 404 => {}
                Ok(r) => problems.push(format!(
                    "[{}] GET /v1/jobs/{bad_id} on manager {id}: expected 404, got {}",
                    case.name,
                    r.describe()
                )),
                Err(e) => problems.push(format!("GET /v1/jobs/{bad_id} on manager {id}: {e}")),
            }
        }
    }

    // The cluster still takes valid writes, through a follower too.
    let follower = *cluster.ids().iter().find(|&&i| i != leader).unwrap();
    if let Err(e) = cluster
        .api
        .submit(&cluster.addr(follower), &job("good-2"))
        .await
    {
        problems.push(format!(
            "valid write after the bad inputs via manager {follower}: {e}"
        ));
    }

    assert!(
        problems.is_empty(),
        "{} problem(s) with bad input handling:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
