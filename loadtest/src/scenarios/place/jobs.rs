//! The jobs `place` submits, and the one full count of their allocations at the end.
//!
//! Why it exists: submitting J jobs and counting J × R allocations are the two
//! places where the scenario talks to the API in bulk; both are bounded in
//! concurrency (the managers share the machine's cores with the load tester) and in
//! time, and both go to the leader so nothing is counted from a lagging replica.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::cluster::{AllocationCounts, GantryApi};
use crate::stats::Latency;

/// What every job looks like.
#[derive(Debug, Clone, Copy)]
pub struct JobShape {
    pub replicas: u32,
    pub cpu_millis: u64,
    pub memory_mb: u64,
}

pub fn job_id(n: usize) -> String {
    format!("lt-place-{n:05}")
}

fn spec(id: &str, shape: JobShape) -> Value {
    json!({
        "id": id,
        "type": "service",
        "replicas": shape.replicas,
        "tasks": [{
            "name": "main",
            "image": "gantry/busybox:latest",
            "command": ["sleep", "3600"],
            "resources": {"cpu_millis": shape.cpu_millis, "memory_mb": shape.memory_mb}
        }]
    })
}

/// Submits `jobs` jobs, `concurrency` at a time. Returns the latency of each
/// `POST /v1/jobs` (answered once committed); the first failure ends it.
pub async fn submit_all(
    api: &GantryApi,
    jobs: usize,
    shape: JobShape,
    concurrency: usize,
) -> Result<Latency> {
    let mut latency = Latency::default();
    let mut results = stream::iter(0..jobs)
        .map(|n| async move {
            let id = job_id(n);
            let started = Instant::now();
            api.submit_job(&spec(&id, shape))
                .await
                .with_context(|| format!("submitting {id}"))?;
            Ok::<Duration, anyhow::Error>(started.elapsed())
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        latency.record(result?);
    }
    Ok(latency)
}

/// `GET /v1/allocations?job=ID` (linearizable) for every job, `concurrency` at a
/// time, added up; stops at `deadline` with what it has counted and how many
/// jobs it did.
pub async fn count_all(
    api: &GantryApi,
    jobs: usize,
    concurrency: usize,
    deadline: Instant,
) -> Result<(AllocationCounts, usize)> {
    let mut total = AllocationCounts::default();
    let mut counted = 0;
    let mut results = stream::iter(0..jobs)
        .map(|n| async move { api.allocation_counts(&job_id(n)).await })
        .buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        let counts = result?;
        total.placed += counts.placed;
        total.running += counts.running;
        counted += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok((total, counted))
}

/// Jobs by status (`running`, `pending`, `blocked`...) from `GET /v1/jobs`, stale
/// (the manager's own replica: pass a follower to keep the leader out of it).
pub async fn statuses(client: &gantry_api::Client) -> Result<Vec<(String, usize)>> {
    let jobs = client.list_jobs(true).await.context("GET /v1/jobs")?.value;
    let mut by_status = std::collections::BTreeMap::new();
    for job in jobs.iter().filter(|j| j.id.starts_with("lt-place-")) {
        *by_status.entry(job.status.clone()).or_insert(0) += 1;
    }
    Ok(by_status.into_iter().collect())
}
