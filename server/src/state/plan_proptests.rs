//! Property tests for the plan applier: random nodes (some down, ineligible or draining),
//! random allocations placed through earlier plans, agent reports that end some of them,
//! node changes and removals, then random plans (stops of known and unknown ids;
//! placements on present and missing nodes, with clashing sizes, host ports, ids and slots,
//! some replacing a live allocation).
//!
//! Every plan's verdict is compared with a simple sequential model that shares no code with
//! `apply_plan`: placed, stopped and rejected ids must match exactly. After every step the
//! real state must hold the invariants: no node's live reservations exceed its capacity, no
//! host port is held twice on a node, and at most one live allocation per (job, slot) except
//! an accepted `replaces` pair.

use super::*;
use gantry_api::{
    ClientState, Eligibility, NodeRegistration, NodeStatus, PortAssignment, Resources,
};
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeMap;

const CASES: u32 = 128;
/// Placements may name node indexes up to this; nodes are only ever `n0..n4`.
const NODE_REFS: usize = 7;

#[derive(Clone, Debug)]
struct NodeSpec {
    cpu: u64,
    mem: u64,
    status: NodeStatus,
    eligible: bool,
    drain: bool,
}

#[derive(Clone, Debug)]
enum IdRef {
    Fresh,
    /// An id seen before (placed or not), possibly earlier in the same plan.
    Known(usize),
}

#[derive(Clone, Debug)]
enum StopRef {
    Known(usize),
    Unknown(u8),
}

#[derive(Clone, Debug)]
enum ReplacesRef {
    None,
    /// The live allocation of the same job and slot, if there is one.
    SameSlot,
    Known(usize),
    Unknown,
}

#[derive(Clone, Debug)]
struct PlacementSpec {
    id: IdRef,
    job: u8,
    slot: u32,
    node: usize,
    cpu: u64,
    mem: u64,
    ports: Vec<u16>,
    replaces: ReplacesRef,
}

#[derive(Clone, Debug)]
struct PlanSpec {
    stops: Vec<StopRef>,
    placements: Vec<PlacementSpec>,
}

#[derive(Clone, Debug)]
enum Step {
    Plan(PlanSpec),
    /// An agent reports a new client state for a known allocation.
    Report(usize, ClientState),
    /// Sets a node's status, eligibility and drain (registering it again if removed).
    NodeChange(usize, NodeStatus, bool, bool),
    RemoveNode(usize),
}

fn status() -> impl Strategy<Value = NodeStatus> {
    prop_oneof![
        6 => Just(NodeStatus::Ready),
        1 => Just(NodeStatus::Down),
        1 => Just(NodeStatus::Initializing),
    ]
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        select(vec![500u64, 1000, 2000, 4000]),
        select(vec![256u64, 1024, 4096]),
        status(),
        proptest::bool::weighted(0.8),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(cpu, mem, status, eligible, drain)| NodeSpec {
            cpu,
            mem,
            status,
            eligible,
            drain,
        })
}

fn placement() -> impl Strategy<Value = PlacementSpec> {
    let id = prop_oneof![4 => Just(IdRef::Fresh), 1 => any::<usize>().prop_map(IdRef::Known)];
    let replaces = prop_oneof![
        5 => Just(ReplacesRef::None),
        3 => Just(ReplacesRef::SameSlot),
        1 => any::<usize>().prop_map(ReplacesRef::Known),
        1 => Just(ReplacesRef::Unknown),
    ];
    (
        id,
        0u8..3,
        0u32..4,
        0..NODE_REFS,
        select(vec![0u64, 100, 250, 500, 1000, 2000]),
        select(vec![0u64, 64, 256, 1024]),
        proptest::collection::vec(0u16..=6, 0..=3),
        replaces,
    )
        .prop_map(
            |(id, job, slot, node, cpu, mem, ports, replaces)| PlacementSpec {
                id,
                job,
                slot,
                node,
                cpu,
                mem,
                ports,
                replaces,
            },
        )
}

fn plan_spec(max_stops: usize, max_placements: usize) -> impl Strategy<Value = PlanSpec> {
    let stop = prop_oneof![
        3 => any::<usize>().prop_map(StopRef::Known),
        1 => any::<u8>().prop_map(StopRef::Unknown),
    ];
    (
        proptest::collection::vec(stop, 0..=max_stops),
        proptest::collection::vec(placement(), 0..=max_placements),
    )
        .prop_map(|(stops, placements)| PlanSpec { stops, placements })
}

fn step() -> impl Strategy<Value = Step> {
    let client_state = select(vec![
        ClientState::Running,
        ClientState::Failed,
        ClientState::Complete,
        ClientState::Lost,
    ]);
    prop_oneof![
        8 => plan_spec(3, 8).prop_map(Step::Plan),
        2 => (any::<usize>(), client_state).prop_map(|(i, s)| Step::Report(i, s)),
        1 => (0..5usize, status(), proptest::bool::weighted(0.8), proptest::bool::weighted(0.2))
            .prop_map(|(n, s, e, d)| Step::NodeChange(n, s, e, d)),
        1 => (0..5usize).prop_map(Step::RemoveNode),
    ]
}

// ---- the model ----

#[derive(Clone, Debug)]
struct ModelNode {
    cpu: u64,
    mem: u64,
    status: NodeStatus,
    eligible: bool,
    drain: bool,
}

impl ModelNode {
    fn takes_work(&self) -> bool {
        self.status == NodeStatus::Ready && self.eligible && !self.drain
    }
}

#[derive(Clone, Debug)]
struct ModelAlloc {
    job: String,
    slot: u32,
    node: String,
    cpu: u64,
    mem: u64,
    ports: Vec<u16>,
    run: bool,
    ended: bool,
}

impl ModelAlloc {
    fn live(&self) -> bool {
        self.run && !self.ended
    }
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, ModelNode>,
    allocs: BTreeMap<String, ModelAlloc>,
}

/// A placement as both the model and the real applier see it.
struct Concrete {
    id: String,
    job: String,
    slot: u32,
    node: String,
    cpu: u64,
    mem: u64,
    ports: Vec<u16>,
    replaces: Option<String>,
}

impl Model {
    /// Applies a plan the plain way; returns (placed, stopped, rejected) ids.
    fn apply(
        &mut self,
        stops: &[String],
        placements: &[Concrete],
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut placed, mut stopped, mut rejected) = (vec![], vec![], vec![]);
        for id in stops {
            match self.allocs.get_mut(id) {
                Some(alloc) => {
                    alloc.run = false;
                    stopped.push(id.clone());
                }
                None => rejected.push(id.clone()),
            }
        }
        for p in placements {
            if self.accepts(p) {
                self.allocs.insert(
                    p.id.clone(),
                    ModelAlloc {
                        job: p.job.clone(),
                        slot: p.slot,
                        node: p.node.clone(),
                        cpu: p.cpu,
                        mem: p.mem,
                        ports: p.ports.clone(),
                        run: true,
                        ended: false,
                    },
                );
                placed.push(p.id.clone());
            } else {
                rejected.push(p.id.clone());
            }
        }
        (placed, stopped, rejected)
    }

    fn accepts(&self, p: &Concrete) -> bool {
        let Some(node) = self.nodes.get(&p.node) else {
            return false;
        };
        if !node.takes_work() || self.allocs.contains_key(&p.id) {
            return false;
        }
        let live: Vec<(&String, &ModelAlloc)> =
            self.allocs.iter().filter(|(_, a)| a.live()).collect();
        if live.iter().any(|(id, a)| {
            a.job == p.job && a.slot == p.slot && Some(id.as_str()) != p.replaces.as_deref()
        }) {
            return false;
        }
        let on_node = || live.iter().filter(|(_, a)| a.node == p.node);
        let cpu: u64 = on_node().map(|(_, a)| a.cpu).sum();
        let mem: u64 = on_node().map(|(_, a)| a.mem).sum();
        if cpu + p.cpu > node.cpu || mem + p.mem > node.mem {
            return false;
        }
        let used: Vec<u16> = on_node().flat_map(|(_, a)| a.ports.clone()).collect();
        for (i, port) in p.ports.iter().enumerate() {
            if *port == 0 || used.contains(port) || p.ports[..i].contains(port) {
                return false;
            }
        }
        true
    }
}

// ---- the real state ----

struct World {
    specs: Vec<NodeSpec>,
    nodes: Nodes,
    allocations: Allocations,
    model: Model,
    /// Every id a plan has named, placed or not, in order of first mention.
    seen: Vec<String>,
    next_id: u64,
    /// Accepted (new, replaced) pairs: the only way two allocations share a live slot.
    replaced: BTreeSet<(String, String)>,
    index: u64,
}

impl World {
    fn new(specs: Vec<NodeSpec>) -> World {
        let mut world = World {
            specs: specs.clone(),
            nodes: Nodes::default(),
            allocations: Allocations::default(),
            model: Model::default(),
            seen: vec![],
            next_id: 0,
            replaced: BTreeSet::new(),
            index: 1,
        };
        for (i, spec) in specs.iter().enumerate() {
            world.set_node(i, spec.status, spec.eligible, spec.drain);
        }
        world
    }

    fn set_node(&mut self, i: usize, status: NodeStatus, eligible: bool, drain: bool) {
        let Some(spec) = self.specs.get(i) else {
            return;
        };
        let name = format!("n{i}");
        let mut writes = Writes::default();
        self.index += 1;
        if !self.nodes.by_id.contains_key(&name) {
            let registration = NodeRegistration {
                name: name.clone(),
                address: "10.0.0.1".into(),
                resources: Resources {
                    cpu_millis: spec.cpu,
                    memory_mb: spec.mem,
                },
                port_range: Default::default(),
                labels: Default::default(),
                drivers: vec!["docker".into()],
                agent_addr: None,
            };
            self.nodes
                .register(self.index, registration, 0, &mut writes);
        }
        self.nodes
            .set_status(self.index, &name, status, 0, &mut writes);
        let eligibility = if eligible {
            Eligibility::Eligible
        } else {
            Eligibility::Ineligible
        };
        self.nodes
            .set_eligibility(self.index, &name, eligibility, &mut writes);
        self.nodes.set_drain(self.index, &name, drain, &mut writes);
        self.model.nodes.insert(
            name,
            ModelNode {
                cpu: spec.cpu,
                mem: spec.mem,
                status,
                eligible,
                drain,
            },
        );
    }

    fn known(&self, i: usize) -> Option<String> {
        (!self.seen.is_empty()).then(|| self.seen[i % self.seen.len()].clone())
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Plan(plan) => self.plan(plan)?,
            Step::Report(i, state) => {
                if let Some(id) = self.known(*i) {
                    // A terminal client state is final: agents do not revive an allocation.
                    if let Some(existing) = self.allocations.by_id.get(&id) {
                        if !existing.client_state.is_terminal() {
                            let mut updated = existing.clone();
                            updated.client_state = *state;
                            self.allocations.store(updated, &mut Writes::default());
                            let alloc = self.model.allocs.get_mut(&id).expect("model has it");
                            alloc.ended = state.is_terminal();
                        }
                    }
                }
            }
            Step::NodeChange(i, status, eligible, drain) => {
                self.set_node(*i, *status, *eligible, *drain)
            }
            Step::RemoveNode(i) => {
                let name = format!("n{i}");
                self.nodes.by_id.remove(&name);
                self.model.nodes.remove(&name);
            }
        }
        self.check_invariants()
    }

    fn plan(&mut self, spec: &PlanSpec) -> Result<(), TestCaseError> {
        let stops: Vec<String> = spec
            .stops
            .iter()
            .map(|stop| match stop {
                StopRef::Known(i) => self.known(*i).unwrap_or_else(|| "ghost".into()),
                StopRef::Unknown(n) => format!("ghost{n}"),
            })
            .collect();
        let mut placements = vec![];
        for p in &spec.placements {
            let id = match p.id {
                IdRef::Known(i) if !self.seen.is_empty() => self.known(i).expect("not empty"),
                _ => {
                    self.next_id += 1;
                    format!("a{}", self.next_id)
                }
            };
            if !self.seen.contains(&id) {
                self.seen.push(id.clone());
            }
            let job = format!("job{}", p.job);
            let replaces = match p.replaces {
                ReplacesRef::None => None,
                ReplacesRef::SameSlot => self
                    .model
                    .allocs
                    .iter()
                    .find(|(_, a)| a.live() && a.job == job && a.slot == p.slot)
                    .map(|(id, _)| id.clone()),
                ReplacesRef::Known(i) => self.known(i),
                ReplacesRef::Unknown => Some("ghost".into()),
            };
            placements.push(Concrete {
                id,
                job,
                slot: p.slot,
                node: format!("n{}", p.node),
                cpu: p.cpu,
                mem: p.mem,
                ports: p.ports.clone(),
                replaces,
            });
        }

        let (placed, stopped, rejected) = self.model.apply(&stops, &placements);

        let plan = Plan {
            stops: stops
                .iter()
                .map(|id| AllocationStop {
                    id: id.clone(),
                    reason: "test".into(),
                })
                .collect(),
            placements: placements.iter().map(planned).collect(),
            ..Default::default()
        };
        self.index += 1;
        let result = apply_plan(
            &self.nodes,
            &mut self.allocations,
            self.index,
            plan,
            self.index,
            &mut Writes::default(),
        );
        let real_rejected: Vec<String> =
            result.rejected.iter().map(|r| r.alloc_id.clone()).collect();
        prop_assert_eq!(&result.placed, &placed, "placed differ");
        prop_assert_eq!(&result.stopped, &stopped, "stopped differ");
        prop_assert_eq!(&real_rejected, &rejected, "rejected differ");

        for p in &placements {
            if let Some(old) = &p.replaces {
                if result.placed.contains(&p.id) {
                    self.replaced.insert((p.id.clone(), old.clone()));
                }
            }
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let live: Vec<&Allocation> = self
            .allocations
            .by_id
            .values()
            .filter(|a| a.desired == DesiredState::Run && !a.client_state.is_terminal())
            .collect();

        // The real state holds what the model holds.
        let real_ids: Vec<&String> = self.allocations.by_id.keys().collect();
        let model_ids: Vec<&String> = self.model.allocs.keys().collect();
        prop_assert_eq!(real_ids, model_ids);
        let real_live: Vec<&str> = live.iter().map(|a| a.id.as_str()).collect();
        let model_live: Vec<&str> = self
            .model
            .allocs
            .iter()
            .filter(|(_, a)| a.live())
            .map(|(id, _)| id.as_str())
            .collect();
        prop_assert_eq!(real_live, model_live);

        for (name, node) in &self.nodes.by_id {
            let here: Vec<&&Allocation> = live.iter().filter(|a| &a.node_id == name).collect();
            let cpu: u64 = here.iter().map(|a| a.resources.cpu_millis).sum();
            let mem: u64 = here.iter().map(|a| a.resources.memory_mb).sum();
            prop_assert!(
                cpu <= node.resources.cpu_millis,
                "node {} over-committed on cpu: {} > {}",
                name,
                cpu,
                node.resources.cpu_millis
            );
            prop_assert!(
                mem <= node.resources.memory_mb,
                "node {} over-committed on memory: {} > {}",
                name,
                mem,
                node.resources.memory_mb
            );
            let mut ports = BTreeSet::new();
            for port in here.iter().flat_map(|a| &a.ports) {
                prop_assert!(
                    ports.insert(port.host_port),
                    "host port {} held twice on node {}",
                    port.host_port,
                    name
                );
            }
            let usage = self.allocations.node_usage(name);
            prop_assert_eq!(usage.reserved.cpu_millis, cpu);
            prop_assert_eq!(usage.reserved.memory_mb, mem);
            prop_assert_eq!(usage.host_ports, ports);
        }

        let mut slots: BTreeMap<(&str, u32), Vec<&str>> = BTreeMap::new();
        for a in &live {
            slots
                .entry((a.job_id.as_str(), a.slot))
                .or_default()
                .push(a.id.as_str());
        }
        for ((job, slot), ids) in slots {
            match ids.as_slice() {
                [_] => {}
                [a, b] => {
                    let pair = |x: &str, y: &str| self.replaced.contains(&(x.into(), y.into()));
                    prop_assert!(
                        pair(a, b) || pair(b, a),
                        "slot {} of {} has {} and {} live without a replacement",
                        slot,
                        job,
                        a,
                        b
                    );
                }
                _ => prop_assert!(false, "slot {} of {} live {:?}", slot, job, ids),
            }
        }
        Ok(())
    }
}

fn planned(p: &Concrete) -> PlannedAllocation {
    PlannedAllocation {
        allocation: Allocation {
            ports: p
                .ports
                .iter()
                .enumerate()
                .map(|(i, &host_port)| PortAssignment {
                    task: "main".into(),
                    name: format!("p{i}"),
                    host_port,
                    container_port: 80,
                })
                .collect(),
            placement_reason: "proptest".into(),
            ..Allocation::new(
                p.id.clone(),
                p.job.clone(),
                1,
                p.slot,
                p.node.clone(),
                Resources {
                    cpu_millis: p.cpu,
                    memory_mb: p.mem,
                },
            )
        },
        replaces: p.replaces.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn plan_applier_rejects_exactly_what_no_longer_fits(
        specs in proptest::collection::vec(node_spec(), 1..=5),
        setup in proptest::collection::vec(plan_spec(0, 12), 1..=2),
        steps in proptest::collection::vec(step(), 1..=30),
    ) {
        let mut world = World::new(specs);
        for plan in &setup {
            world.step(&Step::Plan(plan.clone()))?;
        }
        for step in &steps {
            world.step(step)?;
        }
    }
}
