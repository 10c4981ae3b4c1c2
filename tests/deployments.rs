//! Rolling updates (deployments) with three real managers and real agents on Docker.
//!
//! What it shows, each scenario on a cluster of its own, while a client thread looks the
//! service up every 50 ms (`GET /v1/services/web-http?stale=true`, any manager) and calls
//! one of its endpoints (round robin, 1 s timeout), checking the page it gets:
//! - **rolling update**: 4 httpd replicas serving "v1" are replaced one at a time by "v2"
//!   (`max_parallel: 1`, `min_healthy: 1s`); the deployment succeeds, the 4 live
//!   allocations are version 2, and not one call failed while both versions answered;
//! - **failing health → automatic revert**: a version 2 whose health check asks for a
//!   missing page never becomes healthy; its deployment fails past `healthy_deadline`,
//!   `auto_revert` registers version 1's tasks again as version 3 and rolls back to it;
//!   no call failed, and version 2 never answered one;
//! - **canary**: `canary: 1` starts one version-2 instance beside the 4 old ones and
//!   changes nothing else (for seconds) until it is promoted through the API; then the
//!   canary keeps its place and the others roll;
//! - **leader killed mid-deployment**: the deployment is replicated state; killed once an
//!   instance counts as healthy, the leader's successor carries the deployment through;
//! - **DNS**: managers started with `--dns-listen` answer `SRV` for
//!   `web-http.service.gantry` with exactly the endpoints `GET /v1/services/web-http`
//!   lists (one unhealthy instance and one stopped instance left out), and `A` with the
//!   node address, asked with a real DNS client (hickory).
//!
//! Skipped (with a message) when no Docker engine answers, except with `CI=true`.
//! Durations and request counts are printed; only generous bounds are asserted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

use gantry_api::client::DeploymentAction;
use gantry_api::{
    Allocation, Client, Deployment, DeploymentStatus, DesiredState, Health, ServiceEndpoint,
    TaskSpec,
};
use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use serde_json::{json, Value};
use support::agent::{
    client, client_for, docker, node_containers, require_docker, running_container,
    wait_nodes_ready, AgentProcess, Cleanup,
};
use support::rollout::{
    deployment_of, describe_allocs_v, describe_deployment, is_healthy, live_allocations, register,
    version_tasks, versions, wait_deployment, wait_deployment_of_version, wait_deployment_where,
    wait_healthy, web_job, ProbeStats, ServiceProbe,
};
use support::{free_ports, wait_until, Cluster, Options};
use tokio::sync::MutexGuard;

/// The job every scenario rolls, and its service.
const JOB: &str = "web";
const SERVICE: &str = "web-http";
const REPLICAS: usize = 4;
/// Bounds (generous: a busy 2-core machine pulls nothing but starts containers slowly).
const NODES_READY: Duration = Duration::from_secs(60);
const PLACED_HEALTHY: Duration = Duration::from_secs(120);
const ROLLOUT: Duration = Duration::from_secs(240);
/// The probe stops by itself after this long.
const PROBE_MAX_RUN: Duration = Duration::from_secs(900);

/// A cluster of three managers and `agents` Docker agents. Fields drop in order: the
/// agents first, then the managers, then every container the test's nodes ran.
struct Setup {
    agents: Vec<AgentProcess>,
    cluster: Cluster,
    /// What the test reads and writes through: every manager, or only the survivors once
    /// a scenario killed the leader.
    client: Client,
    _cleanup: Cleanup,
    /// The tests' turn (one cluster at a time), held to the end.
    _serial: MutexGuard<'static, ()>,
}

impl Setup {
    /// Starts the cluster, in the turn `serial` (of [`support::SERIAL`]).
    async fn start(
        test: &str,
        agents: usize,
        opts: Options,
        serial: MutexGuard<'static, ()>,
    ) -> Setup {
        let cleanup = Cleanup::new(test);
        let cluster = Cluster::start_with(3, opts).await;
        let client = client(&cluster);
        let agents: Vec<AgentProcess> = (0..agents)
            .map(|i| {
                let name = cleanup.node(&((b'a' + i as u8) as char).to_string());
                AgentProcess::start(&cluster, &name, "docker", &[])
            })
            .collect();
        let t = Instant::now();
        let refs: Vec<&AgentProcess> = agents.iter().collect();
        let ids = wait_nodes_ready(&client, &refs, NODES_READY).await;
        cluster.log(&format!(
            "{} agent(s) ready in {:?}: {ids:?}",
            agents.len(),
            t.elapsed()
        ));
        Setup {
            agents,
            cluster,
            client,
            _cleanup: cleanup,
            _serial: serial,
        }
    }

    /// How scenarios 1 to 4 begin: once it is their turn, a cluster of their own with 2
    /// agents, version 1 of the job (`REPLICAS` instances serving "v1", `update` its
    /// update block) deployed, and the client thread calling it. Returns version 1's
    /// allocations too. `None`: no Docker engine (and not in CI), skip the test.
    async fn with_v1(test: &str, update: Value) -> Option<(Setup, Vec<Allocation>, ServiceProbe)> {
        if !require_docker() {
            return None;
        }
        let serial = support::SERIAL.lock().await;
        let s = Setup::start(test, 2, Options::default(), serial).await;
        let v1 = web_job(JOB, REPLICAS as u32, "v1", "/", update);
        let old = s.deploy_first(&v1, REPLICAS).await;
        let probe = s.probe(&["v1", "v2"]).await;
        Some((s, old, probe))
    }

    fn agents(&self) -> Vec<&AgentProcess> {
        self.agents.iter().collect()
    }

    fn log(&self, msg: &str) {
        self.cluster.log(msg);
    }

    /// Registers the job's first version and waits until its `replicas` allocations run
    /// healthy, its deployment succeeded and the version is stable. Returns the live
    /// allocations.
    async fn deploy_first(&self, spec: &Value, replicas: usize) -> Vec<Allocation> {
        let (d1, t) = self.register_version(spec, 1).await;
        let live = self
            .wait_healthy(replicas, PLACED_HEALTHY, |a| a.job_version == 1)
            .await;
        let (dep, _) = self
            .wait_deployment(
                &d1,
                DeploymentStatus::Successful,
                PLACED_HEALTHY,
                t,
                "registering version 1",
            )
            .await;
        assert_eq!(dep.job_version, 1, "{}", describe_deployment(&dep));
        self.wait_stable(1).await;
        self.log(&format!(
            "version 1: {replicas} healthy allocations and deployment {d1} successful after {:?}",
            t.elapsed()
        ));
        live
    }

    /// Registers `spec`, which must become version `version` of the job and start a
    /// deployment. Returns the deployment's id and when the registration was sent.
    async fn register_version(&self, spec: &Value, version: u64) -> (String, Instant) {
        let t = Instant::now();
        let reg = register(&self.client, spec).await;
        assert_eq!(
            reg.version, version,
            "registered as version {version} of {JOB}: {reg:?}"
        );
        (deployment_of(&reg), t)
    }

    /// Waits (up to `timeout`) until deployment `id` has status `want`, failing at once
    /// if it ends otherwise, and logs how long after `since` (when `what` happened) that
    /// was. Returns the deployment and that time.
    async fn wait_deployment(
        &self,
        id: &str,
        want: DeploymentStatus,
        timeout: Duration,
        since: Instant,
        what: &str,
    ) -> (Deployment, Duration) {
        let agents = self.agents();
        let dep = wait_deployment(&self.cluster, &self.client, &agents, id, want, timeout).await;
        let took = since.elapsed();
        self.log(&format!(
            "deployment {id} {} {took:?} after {what}: {}",
            want.as_str(),
            describe_deployment(&dep)
        ));
        (dep, took)
    }

    /// Waits (up to `ROLLOUT`) until deployment `id` succeeded; see
    /// [`Setup::wait_deployment`].
    async fn wait_successful(
        &self,
        id: &str,
        since: Instant,
        what: &str,
    ) -> (Deployment, Duration) {
        self.wait_deployment(id, DeploymentStatus::Successful, ROLLOUT, since, what)
            .await
    }

    /// Waits (up to `timeout`) until the job has exactly `n` live allocations, all running,
    /// healthy and accepted.
    async fn wait_healthy(
        &self,
        n: usize,
        timeout: Duration,
        accept: impl Fn(&Allocation) -> bool,
    ) -> Vec<Allocation> {
        let agents = self.agents();
        wait_healthy(
            &self.cluster,
            &self.client,
            &agents,
            JOB,
            n,
            timeout,
            accept,
        )
        .await
    }

    /// Waits until the job has `total` live allocations, exactly one of them new (not in
    /// `old`) and that one running healthy; returns it.
    async fn wait_one_new_healthy(
        &self,
        old: &BTreeSet<String>,
        total: usize,
        what: &str,
    ) -> Allocation {
        let client = &self.client;
        wait_until(what, PLACED_HEALTHY, || async move {
            let live = live_allocations(client, JOB).await?;
            let new: Vec<&Allocation> = live.iter().filter(|a| !old.contains(&a.id)).collect();
            match new.as_slice() {
                [a] if live.len() == total && is_healthy(a) => Ok((*a).clone()),
                _ => Err(describe_allocs_v(&live)),
            }
        })
        .await
    }

    /// Waits (briefly) until version `version` of the job is marked stable.
    async fn wait_stable(&self, version: u64) {
        let client = &self.client;
        wait_until(
            &format!("version {version} of {JOB} to be stable"),
            Duration::from_secs(10),
            || async move {
                let all = versions(client, JOB).await?;
                let kept: Vec<(u64, bool)> = all.values().map(|v| (v.version, v.stable)).collect();
                match all.get(&version) {
                    Some(v) if v.stable => Ok(()),
                    Some(_) => Err(format!(
                        "version {version} is not stable; (version, stable) kept: {kept:?}; \
                         deployments: {:?}",
                        client.list_deployments(Some(JOB), false).await.map(|d| d
                            .value
                            .iter()
                            .map(describe_deployment)
                            .collect::<Vec<_>>())
                    )),
                    None => Err(format!("no version {version}: {kept:?}")),
                }
            },
        )
        .await
    }

    /// Starts the client thread on the service and waits until it has had 20 answers.
    async fn probe(&self, bodies: &[&str]) -> ServiceProbe {
        let probe = ServiceProbe::start(&self.cluster.addrs(), SERVICE, bodies, PROBE_MAX_RUN);
        let p = &probe;
        wait_until(
            "the client thread's first 20 answers",
            Duration::from_secs(30),
            || async move {
                let s = p.stats();
                if s.ok >= 20 {
                    Ok(())
                } else {
                    Err(s.summary())
                }
            },
        )
        .await;
        self.log(&format!(
            "client thread warmed up: {}",
            probe.stats().summary()
        ));
        probe
    }

    /// Lets the client thread call on for 2 s (the last replaced instance is in its
    /// shutdown delay), stops it and prints its figures and first failures. Asserts that
    /// no call failed and that the service never listed no endpoint.
    async fn finish_probe(&self, probe: ServiceProbe, what: &str) -> ProbeStats {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats = probe.stop();
        self.log(&format!("client thread, {what}: {}", stats.summary()));
        for f in &stats.failures {
            self.log(&format!("  failure: {f}"));
        }
        for f in &stats.lookup_failures {
            self.log(&format!("  unanswered lookup: {f}"));
        }
        assert!(
            stats.failed == 0 && stats.no_endpoints == 0,
            "{what}: the client saw {} failed request(s) and {} lookup(s) with no endpoint; \
             {}\nfirst failures:\n  {}",
            stats.failed,
            stats.no_endpoints,
            stats.summary(),
            stats.failures.join("\n  ")
        );
        stats
    }

    /// After deployment `id` rolled version `version` out: the job's allocations (logged)
    /// and its live ones, exactly `REPLICAS`, each of `version`, healthy and placed by the
    /// deployment. Returns (all, live).
    async fn rolled_out(&self, version: u64, id: &str) -> (Vec<Allocation>, Vec<Allocation>) {
        let all = support::agent::allocations(&self.client, JOB)
            .await
            .unwrap();
        self.log(&format!(
            "allocations after the rollout of version {version}: {}",
            describe_allocs_v(&all)
        ));
        let live = live_allocations(&self.client, JOB).await.unwrap();
        assert_eq!(
            live.len(),
            REPLICAS,
            "live allocations after the deployment: {}",
            describe_allocs_v(&all)
        );
        for a in &live {
            assert_eq!(a.job_version, version, "{}", describe_allocs_v(&live));
            assert!(is_healthy(a), "{}", describe_allocs_v(&live));
            assert_eq!(
                a.deployment_id.as_deref(),
                Some(id),
                "placed by the deployment: {}",
                describe_allocs_v(&live)
            );
        }
        (all, live)
    }

    /// The node names of the agents, for container checks.
    fn node_names(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }

    /// Waits until the running containers on the test's nodes are exactly those of `ids`
    /// (one each): the replaced instances' containers were stopped.
    async fn wait_containers_exactly(&self, ids: &BTreeSet<String>) {
        let names = self.node_names();
        let t = Instant::now();
        wait_until(
            "the running containers to be exactly the live allocations'",
            Duration::from_secs(60),
            || async {
                let mut running = Vec::new();
                for n in &names {
                    for c in node_containers(n)? {
                        if c.running {
                            running.push(c.alloc_id().unwrap_or("?").to_string());
                        }
                    }
                }
                running.sort();
                let want: Vec<String> = ids.iter().cloned().collect();
                if running == want {
                    Ok(())
                } else {
                    Err(format!("running containers of {running:?}, want {want:?}"))
                }
            },
        )
        .await;
        self.log(&format!(
            "only the {} live allocations' containers run ({:?} after the check began)",
            ids.len(),
            t.elapsed()
        ));
    }

    /// How scenarios 1 to 4 end: only the `live` allocations' containers run, the
    /// scenario's figures are printed as one `RESULT` line (the client thread's counts,
    /// then `figures`), and every manager not killed on purpose still runs.
    async fn finish(&self, what: &str, live: &[Allocation], stats: &ProbeStats, figures: &str) {
        self.wait_containers_exactly(&ids(live)).await;
        self.log(&format!(
            "RESULT {what}: {} requests ok, {} failed ({} answered by v1, {} by v2, {} lookups \
             unanswered); {figures}",
            stats.ok,
            stats.failed,
            stats.answered("v1"),
            stats.answered("v2"),
            stats.lookup_errors
        ));
        self.cluster.assert_alive();
    }
}

/// `{"max_parallel": 1, "min_healthy": "1s", "healthy_deadline": "60s"}` plus `extra`.
fn update(extra: Value) -> Value {
    let mut u = json!({"max_parallel": 1, "min_healthy": "1s", "healthy_deadline": "60s"});
    if let (Some(u), Some(extra)) = (u.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            u.insert(k.clone(), v.clone());
        }
    }
    u
}

fn ids(list: &[Allocation]) -> BTreeSet<String> {
    list.iter().map(|a| a.id.clone()).collect()
}

/// Both versions answered calls while the rollout went on.
fn assert_both_versions_answered(stats: &ProbeStats) {
    assert!(
        stats.answered("v1") > 0 && stats.answered("v2") > 0,
        "both versions answered during the rollout: {}",
        stats.summary()
    );
}

// ---------------------------------------------------------------------------
// 1. A rolling update, with no failed request
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_replaces_every_instance_without_a_failed_request() {
    let Some((s, old, probe)) = Setup::with_v1("roll", update(json!({}))).await else {
        return;
    };

    let v2 = web_job(JOB, REPLICAS as u32, "v2", "/", update(json!({})));
    let (d2, t) = s.register_version(&v2, 2).await;
    let (dep, rollout) = s
        .wait_successful(&d2, t, "registering version 2 (the rollout)")
        .await;
    let stats = s.finish_probe(probe, "rolling update").await;

    let (all, live) = s.rolled_out(2, &d2).await;
    assert!(
        ids(&old).is_disjoint(&ids(&live)),
        "every version-1 allocation was replaced: {}",
        describe_allocs_v(&all)
    );
    assert_eq!(
        dep.desired_total,
        REPLICAS as u32,
        "{}",
        describe_deployment(&dep)
    );
    assert_eq!(
        dep.healthy,
        REPLICAS as u32,
        "{}",
        describe_deployment(&dep)
    );
    s.wait_stable(2).await;
    assert_both_versions_answered(&stats);
    let figures = format!("rollout {:.1}s", rollout.as_secs_f64());
    s.finish("rolling update", &live, &stats, &figures).await;
}

// ---------------------------------------------------------------------------
// 2. A version that never becomes healthy: the deployment fails and reverts
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_version_fails_its_deployment_and_reverts_to_the_stable_one() {
    let Some((s, _, probe)) = Setup::with_v1("revert", update(json!({}))).await else {
        return;
    };
    let v1_tasks = version_tasks(&s.client, JOB, 1).await;

    // Version 2 serves "v2" at / but its check asks for a page that does not exist (404).
    let v2 = web_job(
        JOB,
        REPLICAS as u32,
        "v2",
        "/missing",
        update(json!({"healthy_deadline": "8s", "auto_revert": true})),
    );
    let (d2, t) = s.register_version(&v2, 2).await;
    let (failed, failed_after) = s
        .wait_deployment(
            &d2,
            DeploymentStatus::Failed,
            ROLLOUT,
            t,
            "registering version 2",
        )
        .await;
    // The revert is recorded on the failed deployment (in the same change or just after).
    let failed = if failed.reverted_to.is_some() {
        failed
    } else {
        let client = &s.client;
        let d2 = &d2;
        wait_until(
            "the failed deployment to name the version it reverted to",
            Duration::from_secs(30),
            || async move {
                let d = client
                    .get_deployment(d2, false)
                    .await
                    .map_err(|e| e.to_string())?
                    .value;
                if d.reverted_to.is_some() {
                    Ok(d)
                } else {
                    Err(describe_deployment(&d))
                }
            },
        )
        .await
    };
    assert_eq!(
        failed.status,
        DeploymentStatus::Failed,
        "{}",
        describe_deployment(&failed)
    );
    assert_eq!(
        failed.reverted_to,
        Some(3),
        "auto_revert registers version 1's spec as version 3: {}",
        describe_deployment(&failed)
    );

    // Version 3 has version 1's tasks (and version 2 does not).
    let kept = versions(&s.client, JOB).await.unwrap();
    let tasks_of = |v: u64| -> Vec<TaskSpec> {
        kept.get(&v)
            .unwrap_or_else(|| panic!("no version {v}: {:?}", kept.keys()))
            .spec
            .tasks
            .clone()
    };
    assert_eq!(
        tasks_of(3),
        v1_tasks,
        "version 3 is version 1's tasks again"
    );
    assert_ne!(tasks_of(2), v1_tasks);
    assert!(!kept[&2].stable, "the failed version 2 is not stable");

    let d3 = wait_deployment_of_version(&s.client, JOB, 3, Duration::from_secs(30)).await;
    let (_, reverted_after) = s
        .wait_successful(
            &d3.id,
            t,
            "registering version 2 (version 3 has version 1's tasks)",
        )
        .await;
    let v1_like: BTreeSet<u64> = kept
        .iter()
        .filter(|(_, v)| v.spec.tasks == v1_tasks)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(v1_like, BTreeSet::from([1, 3]), "versions with v1's tasks");
    let live = s
        .wait_healthy(REPLICAS, PLACED_HEALTHY, |a| {
            v1_like.contains(&a.job_version)
        })
        .await;
    s.wait_stable(3).await;
    let stats = s.finish_probe(probe, "failed deployment and revert").await;
    assert_eq!(
        stats.answered("v2"),
        0,
        "version 2 was never healthy, so never an endpoint: {}",
        stats.summary()
    );
    let figures = format!(
        "v2 failed after {:.1}s, v3 successful after {:.1}s; live versions {:?}",
        failed_after.as_secs_f64(),
        reverted_after.as_secs_f64(),
        live.iter().map(|a| a.job_version).collect::<Vec<_>>()
    );
    s.finish("revert", &live, &stats, &figures).await;
}

// ---------------------------------------------------------------------------
// 3. Canary, then promotion
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_runs_beside_the_old_version_until_promoted() {
    let Some((s, old, probe)) = Setup::with_v1("canary", update(json!({}))).await else {
        return;
    };
    let old = ids(&old);

    let v2 = web_job(
        JOB,
        REPLICAS as u32,
        "v2",
        "/",
        update(json!({"canary": 1})),
    );
    let (d2, t) = s.register_version(&v2, 2).await;

    // The canary: one healthy version-2 allocation beside the 4 old ones.
    let canary = s
        .wait_one_new_healthy(
            &old,
            REPLICAS + 1,
            "a healthy canary beside the 4 version-1 allocations",
        )
        .await;
    s.log(&format!(
        "canary {} healthy {:?} after registering version 2",
        canary.id,
        t.elapsed()
    ));
    let live = live_allocations(&s.client, JOB).await.unwrap();
    assert_eq!(live.len(), REPLICAS + 1, "{}", describe_allocs_v(&live));
    for a in &live {
        if a.id == canary.id {
            assert_eq!(a.job_version, 2, "{}", describe_allocs_v(&live));
            assert!(
                a.canary,
                "the new allocation is a canary: {}",
                describe_allocs_v(&live)
            );
            assert_eq!(a.deployment_id.as_deref(), Some(d2.as_str()));
        } else {
            assert_eq!(a.job_version, 1, "{}", describe_allocs_v(&live));
            assert!(!a.canary, "{}", describe_allocs_v(&live));
        }
    }

    // For 5 s nothing else changes: same 5 live allocations, the deployment waits.
    let mut expected = old.clone();
    expected.insert(canary.id.clone());
    let observe = Duration::from_secs(5);
    let t_obs = Instant::now();
    let mut polls = 0;
    while t_obs.elapsed() < observe && polls < 100 {
        polls += 1;
        s.cluster.assert_alive();
        let live = live_allocations(&s.client, JOB).await.unwrap();
        assert_eq!(
            ids(&live),
            expected,
            "before promotion only the canary is new (after {:?}): {}",
            t_obs.elapsed(),
            describe_allocs_v(&live)
        );
        let d = s.client.get_deployment(&d2, false).await.unwrap().value;
        assert!(
            d.status == DeploymentStatus::Running && d.awaits_promotion(),
            "the deployment waits for promotion: {}",
            describe_deployment(&d)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.log(&format!(
        "{polls} polls over {:?}: nothing but the canary changed; promoting",
        t_obs.elapsed()
    ));

    let t_promote = Instant::now();
    let changed = s
        .client
        .deployment_action(&d2, DeploymentAction::Promote)
        .await
        .unwrap_or_else(|e| panic!("POST /v1/deployments/{d2}/promote: {e}"));
    assert!(
        changed.deployment.promoted,
        "promote answers the promoted deployment: {}",
        describe_deployment(&changed.deployment)
    );
    let (dep, promoted_rollout) = s.wait_successful(&d2, t_promote, "the promotion").await;
    let stats = s.finish_probe(probe, "canary and promotion").await;

    let (all, live) = s.rolled_out(2, &d2).await;
    assert!(
        ids(&live).contains(&canary.id),
        "the canary keeps its slot after promotion: {}",
        describe_allocs_v(&all)
    );
    assert!(dep.promoted, "{}", describe_deployment(&dep));
    assert_both_versions_answered(&stats);
    let figures = format!(
        "promotion → successful in {:.1}s",
        promoted_rollout.as_secs_f64()
    );
    s.finish("canary", &live, &stats, &figures).await;
}

// ---------------------------------------------------------------------------
// 4. The leader killed in the middle of a deployment
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_carries_on_a_deployment_the_old_one_began() {
    let strategy = json!({"max_parallel": 1, "min_healthy": "2s", "healthy_deadline": "60s"});
    let Some((mut s, _, probe)) = Setup::with_v1("failover", strategy.clone()).await else {
        return;
    };

    let v2 = web_job(JOB, REPLICAS as u32, "v2", "/", strategy);
    let (d2, t) = s.register_version(&v2, 2).await;
    let midway = wait_deployment_where(
        &s.cluster,
        &s.client,
        &s.agents(),
        &d2,
        "one healthy instance while still running",
        ROLLOUT,
        |d| d.healthy >= 1 && d.status == DeploymentStatus::Running,
    )
    .await;
    let leader = s.cluster.leader_id().await;
    s.log(&format!(
        "{:?} after registering version 2, killing leader {leader}: {}",
        t.elapsed(),
        describe_deployment(&midway)
    ));
    assert!(
        midway.healthy < REPLICAS as u32,
        "{}",
        describe_deployment(&midway)
    );
    let t_kill = Instant::now();
    s.cluster.kill(leader);
    let survivors: Vec<String> = s
        .cluster
        .running_ids()
        .into_iter()
        .map(|id| s.cluster.addr(id))
        .collect();
    // From here on the test reads from the survivors.
    s.client = client_for(&survivors);
    let new_leader = s.cluster.wait_for_leader().await;
    s.log(&format!(
        "manager {new_leader} leads {:?} after the kill",
        t_kill.elapsed()
    ));
    assert_ne!(new_leader, leader);

    let (_, finished_after_kill) = s
        .wait_successful(&d2, t_kill, "the kill (read from the survivors)")
        .await;
    let live = s
        .wait_healthy(REPLICAS, Duration::from_secs(30), |a| a.job_version == 2)
        .await;
    let stats = s.finish_probe(probe, "leader killed mid-deployment").await;
    let figures = format!(
        "deployment successful {:.1}s after the leader was killed ({:.1}s in all)",
        finished_after_kill.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    s.finish("failover", &live, &stats, &figures).await;
}

// ---------------------------------------------------------------------------
// 5. DNS SRV and A answers agree with the endpoint list
// ---------------------------------------------------------------------------

/// What a manager's DNS server answered for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SrvView {
    /// (target without the final dot, port) of each SRV answer.
    records: BTreeSet<(String, u16)>,
    /// How many SRV answers (to see duplicates).
    count: usize,
    /// (priority, weight) of each.
    priority_weight: BTreeSet<(u16, u16)>,
    /// The additional section's A records: name (without the final dot) → addresses.
    additional_a: BTreeMap<String, BTreeSet<Ipv4Addr>>,
}

/// One DNS query over UDP to `server` with hickory's client.
async fn dns_query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Result<hickory_net::proto::op::Message, String> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(2)))
        .build();
    let (mut dns, background) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
    let background = tokio::spawn(background);
    let name = Name::from_str(name).map_err(|e| format!("bad name {name}: {e}"))?;
    let answer = dns.query(name.clone(), DNSClass::IN, rtype).await;
    background.abort();
    let answer = answer.map_err(|e| format!("{rtype} {name} @{server}: {e}"))?;
    let message = answer.into_message();
    if message.metadata.response_code != ResponseCode::NoError {
        return Err(format!(
            "{rtype} {name} @{server}: {:?}",
            message.metadata.response_code
        ));
    }
    Ok(message)
}

fn bare(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

async fn srv_view(server: SocketAddr) -> Result<SrvView, String> {
    let qname = format!("{SERVICE}.service.gantry.");
    let message = dns_query(server, &qname, RecordType::SRV).await?;
    let mut view = SrvView {
        records: BTreeSet::new(),
        count: 0,
        priority_weight: BTreeSet::new(),
        additional_a: BTreeMap::new(),
    };
    for r in &message.answers {
        match &r.data {
            RData::SRV(srv) => {
                if bare(&r.name) != qname.trim_end_matches('.') {
                    return Err(format!("an SRV answer named {}: {r:?}", r.name));
                }
                view.count += 1;
                view.records.insert((bare(&srv.target), srv.port));
                view.priority_weight.insert((srv.priority, srv.weight));
            }
            other => return Err(format!("an answer that is not SRV: {other:?}")),
        }
    }
    for r in &message.additionals {
        if let RData::A(a) = &r.data {
            view.additional_a
                .entry(bare(&r.name))
                .or_default()
                .insert(a.0);
        }
    }
    Ok(view)
}

async fn a_answers(server: SocketAddr) -> Result<BTreeSet<Ipv4Addr>, String> {
    let qname = format!("{SERVICE}.service.gantry.");
    let message = dns_query(server, &qname, RecordType::A).await?;
    let mut out = BTreeSet::new();
    for r in &message.answers {
        match &r.data {
            RData::A(a) => {
                out.insert(a.0);
            }
            other => return Err(format!("an answer to A that is not A: {other:?}")),
        }
    }
    Ok(out)
}

/// The endpoints manager `addr` lists from its own replica, with the index they reflect.
async fn endpoints_at(
    cluster: &Cluster,
    addr: &str,
) -> Result<(u64, Vec<ServiceEndpoint>), String> {
    let r = cluster
        .client()
        .get(addr, &format!("/v1/services/{SERVICE}?stale=true"))
        .await?;
    if r.status != 200 {
        return Err(format!(
            "GET /v1/services/{SERVICE} at {addr}: {}",
            r.describe()
        ));
    }
    let list: Vec<ServiceEndpoint> = serde_json::from_value(r.body.clone())
        .map_err(|e| format!("cannot decode ({e}): {}", r.describe()))?;
    let index = r
        .index
        .ok_or_else(|| format!("no X-Gantry-Index: {}", r.describe()))?;
    Ok((index, list))
}

/// Manager `id`'s DNS answers agree exactly with its endpoint list: the list is read
/// before and after the queries, at the same index (nothing changed in between), and the
/// SRV records are its (node, port) pairs, each once, priority 1 weight 1, with the
/// node's address in the additional section; A answers the nodes' addresses.
async fn dns_agrees(
    cluster: &Cluster,
    id: u64,
    dns: SocketAddr,
    address_of: &BTreeMap<String, String>,
) -> Result<(usize, SrvView), String> {
    let addr = cluster.addr(id);
    let (before, list) = endpoints_at(cluster, &addr).await?;
    let view = srv_view(dns).await?;
    let a = a_answers(dns).await?;
    let (after, _) = endpoints_at(cluster, &addr).await?;
    if before != after {
        return Err(format!(
            "manager {id}'s state moved from index {before} to {after} during the queries"
        ));
    }
    let want: BTreeSet<(String, u16)> = list
        .iter()
        .map(|e| {
            (
                format!("{}.node.gantry", e.node_id.to_ascii_lowercase()),
                e.port,
            )
        })
        .collect();
    let want_a: BTreeSet<Ipv4Addr> = list
        .iter()
        .map(|e| {
            e.address
                .parse()
                .unwrap_or_else(|err| panic!("endpoint address {} ({err})", e.address))
        })
        .collect();
    let mismatch = |what: &str| {
        Err(format!(
            "manager {id} at index {before}: {what}\n  endpoints: {:?}\n  SRV: {view:?}\n  A: {a:?}",
            list.iter()
                .map(|e| format!("{} {}:{} ({})", e.alloc_id, e.address, e.port, e.node_id))
                .collect::<Vec<_>>()
        ))
    };
    if view.records != want || view.count != list.len() {
        return mismatch(&format!("SRV records are not the endpoints {want:?}"));
    }
    if !list.is_empty() && view.priority_weight != BTreeSet::from([(1, 1)]) {
        return mismatch("SRV priority and weight are not 1 and 1");
    }
    for e in &list {
        let target = format!("{}.node.gantry", e.node_id.to_ascii_lowercase());
        let node_addr: Ipv4Addr = address_of[&e.node_id].parse().expect("IPv4 node address");
        if view.additional_a.get(&target) != Some(&BTreeSet::from([node_addr])) {
            return mismatch(&format!(
                "no A {node_addr} for {target} in the additional section"
            ));
        }
    }
    if a != want_a {
        return mismatch(&format!(
            "A answers are not the endpoints' addresses {want_a:?}"
        ));
    }
    Ok((list.len(), view))
}

/// Waits until every manager's DNS answers agree with its endpoint list and it lists
/// `n` endpoints; returns the SRV view of the last manager checked. Counts the checks
/// that disagreed on the way (printed).
async fn wait_dns_agrees(
    s: &Setup,
    dns: &BTreeMap<u64, SocketAddr>,
    address_of: &BTreeMap<String, String>,
    n: usize,
    what: &str,
) -> SrvView {
    let t = Instant::now();
    let mut disagreed = 0u32;
    let mut last_err = String::new();
    let mut result = None;
    for _ in 0..300 {
        if t.elapsed() > Duration::from_secs(60) {
            break;
        }
        s.cluster.assert_alive();
        let mut all_ok = true;
        for (id, server) in dns {
            match dns_agrees(&s.cluster, *id, *server, address_of).await {
                Ok((count, view)) if count == n => result = Some(view),
                Ok((count, _)) => {
                    all_ok = false;
                    last_err = format!("manager {id} lists {count} endpoints, want {n}");
                }
                Err(e) => {
                    all_ok = false;
                    if !e.contains("moved from index") {
                        disagreed += 1;
                    }
                    last_err = e;
                }
            }
        }
        if all_ok {
            s.log(&format!(
                "{what}: the DNS of all {} managers answers exactly the {n} endpoints \
                 ({:?}; {disagreed} check(s) disagreed on the way)",
                dns.len(),
                t.elapsed()
            ));
            return result.expect("a view");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{what}: the DNS answers never agreed with the endpoint lists ({n} endpoints) within \
         {:?} ({disagreed} disagreeing checks); last: {last_err}",
        t.elapsed()
    );
}

/// `n` free loopback ports usable for both TCP and UDP.
fn free_dns_ports(n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..20 {
        for p in free_ports(n) {
            if out.len() < n && UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                out.push(p);
            }
        }
        if out.len() == n {
            return out;
        }
    }
    panic!("no {n} free loopback ports for DNS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_srv_answers_exactly_the_healthy_endpoints() {
    if !require_docker() {
        return;
    }
    let serial = support::SERIAL.lock().await;
    let ports = free_dns_ports(3);
    let dns: BTreeMap<u64, SocketAddr> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64 + 1, SocketAddr::from(([127, 0, 0, 1], *p))))
        .collect();
    let opts = Options {
        manager_args: dns
            .iter()
            .map(|(id, a)| (*id, vec!["--dns-listen".to_string(), a.to_string()]))
            .collect(),
        ..Options::default()
    };
    let s = Setup::start("dns", 2, opts, serial).await;
    s.log(&format!("DNS servers: {dns:?}"));
    let address_of: BTreeMap<String, String> = s
        .client
        .list_nodes(false)
        .await
        .unwrap()
        .value
        .into_iter()
        .map(|n| (n.id, n.address))
        .collect();

    // 3 replicas; a restart delay long enough that an instance made unhealthy stays so.
    let mut spec = web_job(JOB, 3, "v1", "/health.txt", update(json!({})));
    spec["restart"] = json!({"attempts": 3, "delay": "10m"});
    let live = s.deploy_first(&spec, 3).await;
    let view = wait_dns_agrees(&s, &dns, &address_of, 3, "3 healthy").await;
    s.log(&format!("SRV: {:?}", view.records));

    // One instance made unhealthy (its check's page removed): it leaves the answers.
    let sick = live[0].clone();
    let container = running_container(&sick.id).unwrap_or_else(|e| panic!("{e}"));
    docker(&["exec", &container.id, "rm", "/www/health.txt"]).unwrap_or_else(|e| panic!("{e}"));
    let client = &s.client;
    let sick_id = &sick.id;
    wait_until(
        "the instance to be reported unhealthy",
        Duration::from_secs(30),
        || async move {
            let a = support::agent::allocation(client, sick_id).await?;
            if a.health == Health::Unhealthy && a.desired == DesiredState::Run {
                Ok(())
            } else {
                Err(describe_allocs_v(&[a]))
            }
        },
    )
    .await;
    let sick_port = support::agent::host_port(&sick, "http");
    let view = wait_dns_agrees(&s, &dns, &address_of, 2, "one unhealthy").await;
    assert!(
        !view.records.iter().any(|(_, p)| *p == sick_port),
        "the unhealthy instance's port {sick_port} is not answered: {view:?}"
    );
    let now = support::agent::allocation(&s.client, &sick.id)
        .await
        .unwrap();
    assert!(
        now.desired == DesiredState::Run && !now.client_state.is_terminal(),
        "the unhealthy instance is still live (waiting to restart): {}",
        describe_allocs_v(&[now])
    );

    // One instance stopped through the API: it leaves at once; a replacement comes.
    let stopped = live[1].clone();
    let stopped_port = support::agent::host_port(&stopped, "http");
    let t = Instant::now();
    s.client
        .stop_allocation(&stopped.id)
        .await
        .unwrap_or_else(|e| panic!("stop {}: {e}", stopped.id));
    for (id, server) in &dns {
        let server = *server;
        wait_until(
            &format!("manager {id}'s DNS to drop the stopped instance's port {stopped_port}"),
            Duration::from_secs(10),
            || async move {
                let v = srv_view(server).await?;
                if v.records.iter().any(|(_, p)| *p == stopped_port) {
                    Err(format!("{v:?}"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
    }
    s.log(&format!(
        "every manager's DNS dropped the stopped instance {:?} after the stop",
        t.elapsed()
    ));
    // Its replacement becomes healthy: 2 endpoints again (the sick one still excluded).
    let replacement = s
        .wait_one_new_healthy(
            &ids(&live),
            3,
            "a healthy replacement of the stopped instance",
        )
        .await;
    s.log(&format!("replacement {} healthy", replacement.id));
    let view = wait_dns_agrees(&s, &dns, &address_of, 2, "one unhealthy, one replaced").await;
    assert!(
        !view
            .records
            .iter()
            .any(|(_, p)| *p == sick_port || *p == stopped_port),
        "neither the unhealthy nor the stopped instance is answered: {view:?}"
    );
    let third = &live[2];
    assert!(
        view.records
            .iter()
            .any(|(_, p)| *p == support::agent::host_port(third, "http")),
        "the untouched instance {} is answered: {view:?}",
        third.id
    );
    s.log(&format!(
        "RESULT dns: SRV {:?}, additional A {:?}",
        view.records, view.additional_a
    ));
    s.cluster.assert_alive();
}
