//! A cluster state built by applying commands as the log would, for the tests of what
//! is read from it (the service endpoints, the DNS answers): nodes, jobs, allocations
//! placed where a test says and reported as it says.

use std::sync::Arc;

use gantry_api::job::parse_job_spec;
use gantry_api::{
    Allocation, ClientState, Health, NodeRegistration, NodeStatus, PortAssignment, Resources,
};
use gantry_raft_store::{Application, Writes};

use crate::state::command::{decode_outcomes, encode_batch, AllocationUpdate, Command};
use crate::state::plan::{Plan, PlannedAllocation};
use crate::state::{ClusterState, Outcome};

pub(crate) struct TestCluster {
    pub state: Arc<ClusterState>,
    index: u64,
}

impl TestCluster {
    pub fn new() -> TestCluster {
        TestCluster {
            state: Arc::new(ClusterState::new()),
            index: 0,
        }
    }

    pub fn apply(&mut self, command: Command) -> Outcome {
        self.index += 1;
        let mut writes = Writes::default();
        let out = self
            .state
            .apply(self.index, &encode_batch(&[command]), &mut writes);
        decode_outcomes(&out).unwrap().remove(0)
    }

    /// Registers node `name` at `address` with room for every allocation a test places,
    /// then gives it `status`.
    pub fn node(&mut self, name: &str, address: &str, status: NodeStatus) {
        self.apply(Command::RegisterNode {
            registration: NodeRegistration {
                name: name.into(),
                address: address.into(),
                resources: Resources {
                    cpu_millis: 64_000,
                    memory_mb: 65_536,
                },
                port_range: Default::default(),
                labels: Default::default(),
                drivers: vec!["docker".into()],
                agent_addr: Some("127.0.0.1:4647".into()),
            },
            now_ms: 1,
        });
        self.node_status(name, status);
    }

    pub fn node_status(&mut self, node: &str, status: NodeStatus) {
        self.apply(Command::SetNodeStatus {
            node_id: node.into(),
            status,
            now_ms: 1,
        });
    }

    pub fn job(&mut self, json: &str) {
        let spec = parse_job_spec(json.as_bytes(), None).unwrap();
        spec.validate().unwrap();
        self.apply(Command::RegisterJob {
            spec,
            submitted_at_ms: 1,
        });
    }

    /// Places allocation `id` of `job` (version 1, a slot of its own) on `node` with
    /// these host ports (task, port name, host port), pending.
    pub fn place(&mut self, id: &str, job: &str, node: &str, ports: &[(&str, &str, u16)]) {
        let resources = Resources {
            cpu_millis: 100,
            memory_mb: 32,
        };
        let mut allocation = Allocation::new(id, job, 1, self.index as u32, node, resources);
        allocation.ports = ports
            .iter()
            .map(|(task, name, host_port)| PortAssignment {
                task: task.to_string(),
                name: name.to_string(),
                host_port: *host_port,
                container_port: 80,
            })
            .collect();
        let outcome = self.apply(Command::ApplyPlan {
            plan: Plan {
                placements: vec![PlannedAllocation {
                    allocation,
                    replaces: None,
                }],
                ..Default::default()
            },
            now_ms: 1,
        });
        assert!(
            matches!(&outcome, Outcome::PlanApplied { result } if result.rejected.is_empty()),
            "{id}: {outcome:?}"
        );
    }

    /// The agent reports allocation `id`.
    pub fn report(&mut self, id: &str, client_state: ClientState, health: Health) {
        self.apply(Command::UpdateAllocations {
            updates: vec![AllocationUpdate {
                id: id.into(),
                client_state,
                health,
                restart_count: 0,
                message: String::new(),
            }],
            now_ms: 2,
        });
    }
}
