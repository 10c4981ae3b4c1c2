//! Service discovery as a read model of the replicated state: which allocations serve
//! which named ports, and where.
//!
//! Nothing is stored for it: every answer is derived from the jobs, nodes and allocations
//! the state already holds, under one read of the state, so it is exactly as fresh as
//! the read (linearizable, or stale on request) and every manager gives the same answer
//! at the same index.
//!
//! - **Names.** A task's port `http` of job `web` is the service `web-http`, unless the
//!   port says `service: NAME` (a DNS label, checked when the job is submitted). Ports of
//!   several jobs may share a name: one service, several jobs.
//! - **Endpoints.** An allocation serves its ports while it is meant to run (desired
//!   `run`), its agent reports it `running`, and it is healthy — `healthy`, or, when none
//!   of its tasks has a health check, anything but `unhealthy` — on a node that is not
//!   `down`. Its endpoint is the node's `address` (what its agent registered as the
//!   address other machines reach its published ports at; not `agent_addr`, the agent's
//!   own HTTP endpoint) and the host port the allocation holds for the port.
//! - **Which spec.** The names and tags come from the spec of the version the allocation
//!   runs; when that version is no longer kept, from the job's current spec; when the
//!   port is in neither (the job is gone), the default name and no tags.
//! - **The list.** Every service some job's current spec declares is listed, with no
//!   endpoints when none of its instances serves; a service only older versions declare
//!   is listed while it has endpoints. Unknown names are `None` (a 404 on the API).
//!
//! Cost: one pass over the allocations (those without ports are skipped at once) and the
//! current specs, per request.

use std::collections::{BTreeMap, BTreeSet};

use gantry_api::job::{JobSpec, PortSpec};
use gantry_api::{Allocation, ClientState, DesiredState, Health, NodeStatus};
use gantry_api::{ServiceEndpoint, ServiceSummary};

use crate::state::State;

/// The service a port of job `job_id` belongs to.
pub fn service_name(job_id: &str, port: &PortSpec) -> String {
    port.service
        .clone()
        .unwrap_or_else(|| default_name(job_id, &port.name))
}

/// `<job id>-<port name>`.
pub fn default_name(job_id: &str, port_name: &str) -> String {
    format!("{job_id}-{port_name}")
}

/// Every service: declared by a current spec, or with endpoints. Sorted by name.
pub fn summaries(state: &State) -> Vec<ServiceSummary> {
    let mut by_name: BTreeMap<String, Summary> = BTreeMap::new();
    for job in state.jobs.current.values() {
        for (_, port) in ports_of(&job.spec) {
            let summary = by_name.entry(service_name(&job.spec.id, port)).or_default();
            summary.jobs.insert(job.spec.id.clone());
            summary.tags.extend(port.tags.iter().cloned());
        }
    }
    for endpoint in endpoints(state) {
        let summary = by_name.entry(endpoint.service.clone()).or_default();
        summary.endpoints += 1;
        summary.jobs.insert(endpoint.job_id);
        summary.tags.extend(endpoint.tags);
    }
    by_name
        .into_iter()
        .map(|(name, s)| ServiceSummary {
            name,
            endpoints: s.endpoints,
            jobs: s.jobs.into_iter().collect(),
            tags: s.tags.into_iter().collect(),
        })
        .collect()
}

/// The endpoints of one service, sorted; `None` when no job declares it and nothing
/// serves it.
pub fn service(state: &State, name: &str) -> Option<Vec<ServiceEndpoint>> {
    let found: Vec<ServiceEndpoint> = endpoints(state)
        .into_iter()
        .filter(|e| e.service == name)
        .collect();
    let declared = || {
        state.jobs.current.values().any(|job| {
            ports_of(&job.spec).any(|(_, port)| service_name(&job.spec.id, port) == name)
        })
    };
    (!found.is_empty() || declared()).then_some(found)
}

/// Every endpoint of every service, sorted by service, job, allocation and port.
pub fn endpoints(state: &State) -> Vec<ServiceEndpoint> {
    let mut all = Vec::new();
    for allocation in state.allocations.by_id.values() {
        if allocation.ports.is_empty() {
            continue;
        }
        let Some(node) = state.nodes.by_id.get(&allocation.node_id) else {
            continue;
        };
        if node.status == NodeStatus::Down {
            continue;
        }
        let version = state
            .jobs
            .spec_at(&allocation.job_id, allocation.job_version);
        let current = state.jobs.current.get(&allocation.job_id).map(|j| &j.spec);
        if !serves(allocation, version.or(current)) {
            continue;
        }
        for assigned in &allocation.ports {
            let port = [version, current]
                .into_iter()
                .flatten()
                .find_map(|spec| find_port(spec, &assigned.task, &assigned.name));
            let (service, tags) = match port {
                Some(port) => (service_name(&allocation.job_id, port), port.tags.clone()),
                None => (default_name(&allocation.job_id, &assigned.name), Vec::new()),
            };
            all.push(ServiceEndpoint {
                service,
                alloc_id: allocation.id.clone(),
                job_id: allocation.job_id.clone(),
                node_id: node.id.clone(),
                address: node.address.clone(),
                port: assigned.host_port,
                tags,
            });
        }
    }
    all.sort_by(|a, b| {
        (&a.service, &a.job_id, &a.alloc_id, a.port).cmp(&(
            &b.service,
            &b.job_id,
            &b.alloc_id,
            b.port,
        ))
    });
    all
}

/// Does the allocation serve its ports now? `spec` is the one it runs (if known): it says
/// whether any task has a health check.
fn serves(allocation: &Allocation, spec: Option<&JobSpec>) -> bool {
    if allocation.desired != DesiredState::Run || allocation.client_state != ClientState::Running {
        return false;
    }
    match allocation.health {
        Health::Healthy => true,
        Health::Unhealthy => false,
        // Not yet judged: fine only for tasks that are never judged.
        Health::Unknown => spec.is_some_and(|s| s.tasks.iter().all(|t| t.health.is_none())),
    }
}

#[derive(Default)]
struct Summary {
    endpoints: usize,
    jobs: BTreeSet<String>,
    tags: BTreeSet<String>,
}

/// Every (task name, port) of a spec.
fn ports_of(spec: &JobSpec) -> impl Iterator<Item = (&str, &PortSpec)> {
    spec.tasks
        .iter()
        .flat_map(|t| t.ports.iter().map(move |p| (t.name.as_str(), p)))
}

fn find_port<'a>(spec: &'a JobSpec, task: &str, name: &str) -> Option<&'a PortSpec> {
    ports_of(spec)
        .find(|(t, p)| *t == task && p.name == name)
        .map(|(_, p)| p)
}

#[cfg(test)]
pub(crate) mod test_cluster;

#[cfg(test)]
mod tests {
    use super::test_cluster::TestCluster;
    use super::*;
    use crate::state::Command;

    /// The services' test cluster, read through this module.
    struct Cluster(TestCluster);

    impl Cluster {
        fn new(nodes: &[(&str, &str)]) -> Cluster {
            let mut cluster = TestCluster::new();
            for (name, address) in nodes {
                cluster.node(name, address, NodeStatus::Ready);
            }
            Cluster(cluster)
        }

        fn summaries(&self) -> Vec<ServiceSummary> {
            summaries(&self.0.state.read())
        }

        fn service(&self, name: &str) -> Option<Vec<(String, String, u16)>> {
            service(&self.0.state.read(), name).map(|endpoints| {
                endpoints
                    .into_iter()
                    .map(|e| (e.alloc_id, e.address, e.port))
                    .collect()
            })
        }
    }

    impl std::ops::Deref for Cluster {
        type Target = TestCluster;
        fn deref(&self) -> &TestCluster {
            &self.0
        }
    }

    impl std::ops::DerefMut for Cluster {
        fn deref_mut(&mut self) -> &mut TestCluster {
            &mut self.0
        }
    }

    const WEB: &str = r#"{"id":"web","tasks":[{"name":"main","image":"i",
        "resources":{"cpu_millis":100,"memory_mb":32},
        "ports":[{"name":"http","container_port":80},
                 {"name":"admin","container_port":81,"service":"web-admin-api","tags":["internal"]}],
        "health":{"type":"http","port":"http"}}]}"#;

    const CACHE: &str = r#"{"id":"cache","tasks":[{"name":"redis","image":"i",
        "resources":{"cpu_millis":100,"memory_mb":32},
        "ports":[{"name":"db","container_port":6379,"service":"web-admin-api","tags":["cache"]}]}]}"#;

    fn endpoint(id: &str, address: &str, port: u16) -> (String, String, u16) {
        (id.to_string(), address.to_string(), port)
    }

    #[test]
    fn healthy_running_allocations_are_endpoints_at_the_node_address() {
        let mut c = Cluster::new(&[("n1", "10.0.0.1"), ("n2", "10.0.0.2")]);
        c.job(WEB);
        c.place(
            "web-a",
            "web",
            "n1",
            &[("main", "http", 20001), ("main", "admin", 20002)],
        );
        c.place(
            "web-b",
            "web",
            "n2",
            &[("main", "http", 20001), ("main", "admin", 20005)],
        );
        assert_eq!(
            c.service("web-http"),
            Some(vec![]),
            "declared, nothing serves yet"
        );

        c.report("web-a", ClientState::Running, Health::Healthy);
        c.report("web-b", ClientState::Running, Health::Unknown);
        assert_eq!(
            c.service("web-http"),
            Some(vec![endpoint("web-a", "10.0.0.1", 20001)]),
            "a checked task not yet judged healthy is no endpoint"
        );
        c.report("web-b", ClientState::Running, Health::Healthy);
        assert_eq!(
            c.service("web-http"),
            Some(vec![
                endpoint("web-a", "10.0.0.1", 20001),
                endpoint("web-b", "10.0.0.2", 20001)
            ])
        );
        assert_eq!(
            c.service("web-admin-api"),
            Some(vec![
                endpoint("web-a", "10.0.0.1", 20002),
                endpoint("web-b", "10.0.0.2", 20005)
            ]),
            "the port's `service` names it"
        );
        assert_eq!(
            c.service("web-admin"),
            None,
            "the default name is not used then"
        );
        assert_eq!(c.service("nope"), None);

        // Unhealthy, stopped, failed, or on a node that went down: gone from the list.
        c.report("web-a", ClientState::Running, Health::Unhealthy);
        assert_eq!(c.service("web-http").unwrap().len(), 1);
        c.report("web-a", ClientState::Running, Health::Healthy);
        c.apply(Command::StopAllocation {
            id: "web-a".into(),
            now_ms: 3,
        });
        assert_eq!(
            c.service("web-http"),
            Some(vec![endpoint("web-b", "10.0.0.2", 20001)])
        );
        c.node_status("n2", NodeStatus::Down);
        assert_eq!(c.service("web-http"), Some(vec![]));
    }

    #[test]
    fn tasks_without_checks_serve_while_running_and_summaries_merge_jobs() {
        let mut c = Cluster::new(&[("n1", "10.0.0.1")]);
        c.job(WEB);
        c.job(CACHE);
        c.place("cache-a", "cache", "n1", &[("redis", "db", 20010)]);
        c.place(
            "web-a",
            "web",
            "n1",
            &[("main", "http", 20001), ("main", "admin", 20002)],
        );
        c.report("cache-a", ClientState::Running, Health::Unknown);
        c.report("web-a", ClientState::Running, Health::Healthy);
        assert_eq!(
            c.service("web-admin-api"),
            Some(vec![
                endpoint("cache-a", "10.0.0.1", 20010),
                endpoint("web-a", "10.0.0.1", 20002)
            ]),
            "no health check: running is enough"
        );
        let summaries = c.summaries();
        let names: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["web-admin-api", "web-http"]);
        assert_eq!(
            summaries[0],
            ServiceSummary {
                name: "web-admin-api".into(),
                endpoints: 2,
                jobs: vec!["cache".into(), "web".into()],
                tags: vec!["cache".into(), "internal".into()],
            }
        );
        assert_eq!(summaries[1].endpoints, 1);

        c.report("cache-a", ClientState::Starting, Health::Unknown);
        assert_eq!(c.summaries()[0].endpoints, 1);
        c.report("cache-a", ClientState::Failed, Health::Unknown);
        assert_eq!(c.summaries()[0].endpoints, 1);
    }

    #[test]
    fn a_deleted_job_leaves_only_what_still_serves_under_the_default_name() {
        let mut c = Cluster::new(&[("n1", "10.0.0.1")]);
        c.job(CACHE);
        c.place("cache-a", "cache", "n1", &[("redis", "db", 20010)]);
        c.report("cache-a", ClientState::Running, Health::Healthy);
        c.apply(Command::DeleteJob { id: "cache".into() });
        // Until the scheduler stops it, it still runs: listed, its spec gone.
        let summaries = c.summaries();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].name, "cache-db");
        assert_eq!(summaries[0].endpoints, 1);
        c.apply(Command::StopAllocation {
            id: "cache-a".into(),
            now_ms: 3,
        });
        assert!(c.summaries().is_empty());
        assert_eq!(c.service("cache-db"), None);
    }
}
