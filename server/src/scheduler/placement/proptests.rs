//! Property tests: random clusters and random streams of asks, releases and node changes,
//! checked against a brute-force scan that shares none of the indexes.
//!
//! After every step: no node holds more than its capacity, no host port twice on a node,
//! and the indexes match the reservations. On every placement: it fails only when the
//! brute force finds no node either, the chosen node is one the brute force accepts, and
//! (bin-pack) its dominant fill equals the brute-force best, (spread) its load equals the
//! brute-force least. Preemption evicts only lower priorities and fails only when evicting
//! every lower priority everywhere would not make room. `check_fit` agrees with a
//! recomputation from the reservations. Case counts are bounded so the suite stays fast.

use std::collections::BTreeSet;

use gantry_api::{Constraint, ConstraintOperator, PortRange, Resources};
use proptest::prelude::*;
use proptest::sample::select;

use super::constraints::CompiledConstraint;
use super::ranking::Frac;
use super::*;

const CASES: u32 = 128;

#[derive(Clone, Debug)]
struct NodeSpec {
    cpu: u64,
    mem: u64,
    zone: Option<&'static str>,
    disk: Option<&'static str>,
    features: Option<&'static str>,
    drivers: Vec<&'static str>,
    schedulable: bool,
    /// Size of the dynamic port range, starting at 100.
    ports: u16,
}

/// Mostly nodes of three common shapes (so classes hold several nodes and the indexes
/// matter), some random ones.
fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let template = |cpu, mem, zone, disk, features, drivers: Vec<&'static str>| NodeSpec {
        cpu,
        mem,
        zone,
        disk,
        features,
        drivers,
        schedulable: true,
        ports: 0,
    };
    let common = select(vec![
        template(4000, 8192, Some("a"), None, None, vec!["docker"]),
        template(4000, 8192, Some("b"), Some("ssd"), None, vec!["docker"]),
        template(
            1000,
            2048,
            Some("a"),
            None,
            Some("x,y"),
            vec!["docker", "process"],
        ),
    ]);
    let random = (
        select(vec![1000u64, 1000, 4000]),
        select(vec![2048u64, 8192, 8192]),
        proptest::option::of(select(vec!["a", "b", "c"])),
        proptest::option::weighted(0.3, select(vec!["ssd", "hdd"])),
        proptest::option::weighted(0.3, select(vec!["x", "x,y", "y,z"])),
        select(vec![
            vec!["docker"],
            vec!["docker", "process"],
            vec!["process"],
        ]),
    )
        .prop_map(move |(cpu, mem, zone, disk, features, drivers)| {
            template(cpu, mem, zone, disk, features, drivers)
        });
    (
        prop_oneof![3 => common, 1 => random],
        proptest::bool::weighted(0.85),
        select(vec![0u16, 2, 4, 8, 8]),
    )
        .prop_map(|(spec, schedulable, ports)| NodeSpec {
            schedulable,
            ports,
            ..spec
        })
}

fn node_info(i: usize, spec: &NodeSpec) -> NodeInfo {
    let mut labels = std::collections::BTreeMap::new();
    for (key, value) in [
        ("zone", spec.zone),
        ("disk", spec.disk),
        ("features", spec.features),
    ] {
        if let Some(value) = value {
            labels.insert(key.to_string(), value.to_string());
        }
    }
    NodeInfo {
        id: format!("n{i}"),
        name: format!("node-{i}"),
        address: format!("10.0.0.{i}"),
        capacity: Resources {
            cpu_millis: spec.cpu,
            memory_mb: spec.mem,
        },
        // An empty range when `ports` is 0.
        port_range: PortRange {
            start: 100,
            end: 100 + spec.ports - 1,
        },
        labels,
        drivers: spec.drivers.iter().map(|d| d.to_string()).collect(),
        schedulable: spec.schedulable,
    }
}

const CONSTRAINTS: &[(&str, ConstraintOperator, &str)] = &[
    ("label.zone", ConstraintOperator::Equal, "a"),
    ("label.zone", ConstraintOperator::NotEqual, "b"),
    ("label.zone", ConstraintOperator::Regex, "^(a|c)$"),
    ("label.disk", ConstraintOperator::IsSet, ""),
    ("label.disk", ConstraintOperator::IsNotSet, ""),
    ("label.features", ConstraintOperator::SetContainsAny, "x,z"),
    ("label.features", ConstraintOperator::SetContainsAll, "x,y"),
    ("node.name", ConstraintOperator::Equal, "node-1"),
    ("node.name", ConstraintOperator::Regex, "node-[0-3]$"),
    ("node.id", ConstraintOperator::Equal, "n2"),
    ("driver.process", ConstraintOperator::Equal, "true"),
    ("node.address", ConstraintOperator::NotEqual, "10.0.0.3"),
];

#[derive(Clone, Debug)]
struct AskSpec {
    job: u8,
    priority: u8,
    cpu: u64,
    mem: u64,
    process_driver: bool,
    constraints: Vec<usize>,
    static_ports: Vec<u16>,
    dynamic_ports: usize,
    distinct: bool,
}

fn ask_spec() -> impl Strategy<Value = AskSpec> {
    (
        0u8..4,
        select(vec![10u8, 30, 50, 50, 70, 90]),
        select(vec![0u64, 50, 100, 100, 250, 250, 500, 1000, 3000]),
        select(vec![0u64, 64, 128, 128, 512, 512, 1024, 2048, 6000]),
        proptest::bool::weighted(0.1),
        proptest::option::weighted(0.3, 0..CONSTRAINTS.len()),
        proptest::option::weighted(
            0.2,
            proptest::sample::subsequence(vec![80u16, 81, 100, 101], 1..=2),
        ),
        select(vec![0usize, 0, 0, 1, 2]),
        any::<bool>(),
    )
        .prop_map(
            |(
                job,
                priority,
                cpu,
                mem,
                process_driver,
                constraint,
                static_ports,
                dynamic_ports,
                distinct,
            )| {
                AskSpec {
                    job,
                    priority,
                    cpu,
                    mem,
                    process_driver,
                    constraints: constraint.into_iter().collect(),
                    static_ports: static_ports.unwrap_or_default(),
                    dynamic_ports,
                    distinct,
                }
            },
        )
}

fn ask(spec: &AskSpec) -> Ask {
    let mut ask = Ask::new(
        format!("job-{}", spec.job),
        Resources {
            cpu_millis: spec.cpu,
            memory_mb: spec.mem,
        },
    );
    ask.priority = spec.priority;
    ask.drivers = vec![if spec.process_driver {
        "process"
    } else {
        "docker"
    }
    .to_string()];
    ask.constraints = spec
        .constraints
        .iter()
        .map(|&i| {
            let (attribute, operator, value) = CONSTRAINTS[i];
            CompiledConstraint::new(&Constraint {
                attribute: attribute.into(),
                operator,
                value: value.into(),
            })
            .unwrap()
        })
        .collect();
    ask.static_ports = spec.static_ports.clone();
    ask.dynamic_ports = spec.dynamic_ports;
    ask.distinct_nodes = spec.distinct;
    ask
}

#[derive(Clone, Debug)]
enum Op {
    Place(AskSpec),
    Preempt(AskSpec),
    /// Releases the n-th live allocation (modulo their number).
    Release(usize),
    /// Re-registers a node with schedulability flipped and maybe another zone (a class
    /// change); re-adds it if it was removed.
    Toggle(usize, bool),
    Remove(usize),
    CheckFit(usize, u64, u64, Vec<u16>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => ask_spec().prop_map(Op::Place),
        2 => ask_spec().prop_map(Op::Preempt),
        3 => any::<usize>().prop_map(Op::Release),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(n, relabel)| Op::Toggle(n, relabel)),
        1 => any::<usize>().prop_map(Op::Remove),
        2 => (
            any::<usize>(),
            select(vec![0u64, 100, 1000, 4000, 5000]),
            select(vec![0u64, 512, 2048, 9000]),
            proptest::collection::vec(select(vec![0u16, 80, 81, 100, 102]), 0..=2)
        )
            .prop_map(|(n, cpu, mem, ports)| Op::CheckFit(n, cpu, mem, ports)),
    ]
}

/// What a node holds, recomputed from its reservations.
struct Held {
    used: Resources,
    ports: BTreeSet<u16>,
    jobs: BTreeSet<String>,
}

fn held(view: &ClusterView, id: &str, min_priority: u8) -> Held {
    let mut h = Held {
        used: Resources {
            cpu_millis: 0,
            memory_mb: 0,
        },
        ports: BTreeSet::new(),
        jobs: BTreeSet::new(),
    };
    for r in view.reservations(id).unwrap().values() {
        if r.priority < min_priority {
            continue;
        }
        h.used.cpu_millis += r.resources.cpu_millis;
        h.used.memory_mb += r.resources.memory_mb;
        h.ports.extend(r.host_ports.iter().copied());
        h.jobs.insert(r.job_id.clone());
    }
    h
}

/// Brute force: could `ask` go on node `id` if only reservations of at least
/// `min_priority` were kept (0: all of them)?
fn brute_fits(
    view: &ClusterView,
    id: &str,
    ask: &Ask,
    without_job: bool,
    min_priority: u8,
) -> bool {
    let info = view.node(id).unwrap();
    let h = held(view, id, min_priority);
    let range = info.port_range;
    let free_dynamic = (range.start..=range.end)
        .filter(|p| !h.ports.contains(p) && !ask.static_ports.contains(p))
        .count();
    info.schedulable
        && ask.drivers.iter().all(|d| info.drivers.contains(d))
        && ask.constraints.iter().all(|c| c.admits(info))
        && h.used.cpu_millis + ask.resources.cpu_millis <= info.capacity.cpu_millis
        && h.used.memory_mb + ask.resources.memory_mb <= info.capacity.memory_mb
        && ask.static_ports.iter().all(|p| !h.ports.contains(p))
        && free_dynamic >= ask.dynamic_ports
        && !(without_job && h.jobs.contains(&ask.job_id))
}

/// Bin-pack: the dominant fill after placing. Spread: the dominant fill now.
fn score(view: &ClusterView, id: &str, ask: &Ask, algorithm: Algorithm) -> Frac {
    let info = view.node(id).unwrap();
    let h = held(view, id, 0);
    let (cpu, mem) = match algorithm {
        Algorithm::BinPack => (
            h.used.cpu_millis + ask.resources.cpu_millis,
            h.used.memory_mb + ask.resources.memory_mb,
        ),
        Algorithm::Spread => (h.used.cpu_millis, h.used.memory_mb),
    };
    Frac::new(cpu, info.capacity.cpu_millis).max(Frac::new(mem, info.capacity.memory_mb))
}

fn check_capacity_and_ports(view: &ClusterView, ids: &[String]) -> Result<(), TestCaseError> {
    for id in ids {
        let Some(info) = view.node(id) else { continue };
        let h = held(view, id, 0);
        prop_assert!(
            h.used.cpu_millis <= info.capacity.cpu_millis,
            "{id} over cpu"
        );
        prop_assert!(
            h.used.memory_mb <= info.capacity.memory_mb,
            "{id} over memory"
        );
        let count: usize = view
            .reservations(id)
            .unwrap()
            .values()
            .map(|r| r.host_ports.len())
            .sum();
        prop_assert_eq!(count, h.ports.len(), "a host port twice on {}", id);
        let (reserved, capacity) = view.node_usage(id).unwrap();
        prop_assert_eq!(reserved, h.used);
        prop_assert_eq!(capacity, info.capacity);
    }
    view.check_invariants();
    Ok(())
}

/// Places `ask` and checks the outcome against the brute force.
fn place_and_check(
    view: &mut ClusterView,
    ids: &[String],
    ask: &Ask,
    alloc_id: &str,
) -> Result<Option<String>, TestCaseError> {
    let present: Vec<&String> = ids.iter().filter(|id| view.node(id).is_some()).collect();
    let fits: Vec<&String> = present
        .iter()
        .copied()
        .filter(|id| brute_fits(view, id, ask, false, 0))
        .collect();
    let spread_fits: Vec<&String> = fits
        .iter()
        .copied()
        .filter(|id| brute_fits(view, id, ask, true, 0))
        .collect();
    let eligible = if ask.distinct_nodes && !spread_fits.is_empty() {
        &spread_fits
    } else {
        &fits
    };
    let algorithm = view.algorithm();
    let scores: std::collections::BTreeMap<&String, Frac> = eligible
        .iter()
        .map(|id| (*id, score(view, id, ask, algorithm)))
        .collect();
    let expected_score = scores.values().copied().reduce(|a, b| match algorithm {
        Algorithm::BinPack => a.max(b),
        Algorithm::Spread => a.min(b),
    });
    let mut twin = view.clone();
    let result = view.place(ask, alloc_id);
    prop_assert_eq!(&result, &twin.place(ask, alloc_id), "not deterministic");
    match result {
        Ok(placement) => {
            eprintln!("STAT ok eligible={}", eligible.len());
            let node = placement.node_id.clone();
            prop_assert!(
                eligible.contains(&&node),
                "placed on {} outside {:?}",
                node,
                eligible
            );
            let got = scores.get(&node).copied();
            prop_assert_eq!(got, expected_score, "not the best node: {}", node);
            prop_assert_eq!(
                &placement.host_ports[..ask.static_ports.len()],
                &ask.static_ports[..]
            );
            prop_assert_eq!(
                placement.host_ports.len(),
                ask.static_ports.len() + ask.dynamic_ports
            );
            Ok(Some(node))
        }
        Err(unplaced) => {
            eprintln!("STAT fail {}", unplaced);
            prop_assert!(fits.is_empty(), "unplaced but {:?} fit: {}", fits, unplaced);
            let e = &unplaced.explanation;
            prop_assert_eq!(e.nodes_evaluated, present.len());
            prop_assert_eq!(e.nodes_fit, 0);
            let counted: usize = e.filtered.values().chain(e.exhausted.values()).sum();
            prop_assert_eq!(counted, present.len());
            Ok(None)
        }
    }
}

fn run(algorithm: Algorithm, specs: Vec<NodeSpec>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut view = ClusterView::new(algorithm);
    let ids: Vec<String> = (0..specs.len()).map(|i| format!("n{i}")).collect();
    let mut current: Vec<NodeInfo> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| node_info(i, s))
        .collect();
    for info in &current {
        view.upsert_node(info.clone());
    }
    let mut live: Vec<(String, String)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let alloc_id = format!("a{step}");
        match op {
            Op::Place(spec) => {
                if let Some(node) = place_and_check(&mut view, &ids, &ask(&spec), &alloc_id)? {
                    live.push((alloc_id, node));
                }
            }
            Op::Preempt(spec) => {
                let ask = ask(&spec);
                let plain = ids
                    .iter()
                    .any(|id| view.node(id).is_some() && brute_fits(&view, id, &ask, false, 0));
                let possible = ids.iter().any(|id| {
                    view.node(id).is_some() && brute_fits(&view, id, &ask, false, ask.priority)
                });
                match view.place_with_preemption(&ask, &alloc_id) {
                    Ok((placement, evictions)) => {
                        prop_assert!(!plain || evictions.is_empty(), "evicted though it fit");
                        for e in &evictions {
                            prop_assert!(e.priority < ask.priority, "evicted {:?}", e);
                            prop_assert_eq!(&e.node_id, &placement.node_id);
                            prop_assert!(view.node_of(&e.alloc_id).is_none());
                            live.retain(|(a, _)| a != &e.alloc_id);
                        }
                        prop_assert_eq!(view.node_of(&alloc_id), Some(placement.node_id.as_str()));
                        live.push((alloc_id, placement.node_id));
                    }
                    Err(_) => prop_assert!(!possible, "preemption missed a node"),
                }
            }
            Op::Release(n) => {
                if !live.is_empty() {
                    let (alloc, node) = live.remove(n % live.len());
                    prop_assert!(view.release(&node, &alloc).is_some());
                    prop_assert!(view.release(&node, &alloc).is_none());
                }
            }
            Op::Toggle(n, relabel) => {
                let i = n % current.len();
                let info = &mut current[i];
                info.schedulable = !info.schedulable;
                if relabel {
                    let zone = match info.labels.get("zone").map(String::as_str) {
                        Some("a") => "b",
                        _ => "a",
                    };
                    info.labels.insert("zone".into(), zone.into());
                }
                view.upsert_node(info.clone());
            }
            Op::Remove(n) => {
                let id = &ids[n % ids.len()];
                view.remove_node(id);
                live.retain(|(alloc, node)| {
                    let gone = node == id;
                    if gone {
                        assert!(view.node_of(alloc).is_none());
                    }
                    !gone
                });
            }
            Op::CheckFit(n, cpu, mem, ports) => {
                // One index past the nodes: an unknown node.
                let id = if n % (ids.len() + 1) == ids.len() {
                    "nope".to_string()
                } else {
                    ids[n % ids.len()].clone()
                };
                let resources = Resources {
                    cpu_millis: cpu,
                    memory_mb: mem,
                };
                let expected = view.node(&id).is_some_and(|info| {
                    let h = held(&view, &id, 0);
                    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
                    info.schedulable
                        && h.used.cpu_millis + cpu <= info.capacity.cpu_millis
                        && h.used.memory_mb + mem <= info.capacity.memory_mb
                        && distinct.len() == ports.len()
                        && !ports.contains(&0)
                        && ports.iter().all(|p| !h.ports.contains(p))
                });
                let got = view.check_fit(&id, resources, &ports);
                prop_assert_eq!(got.is_ok(), expected, "check_fit said {:?}", got);
            }
        }
        check_capacity_and_ports(&view, &ids)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn bin_pack_is_safe_and_finds_the_best_fit(
        specs in proptest::collection::vec(node_spec(), 1..=20),
        ops in proptest::collection::vec(op(), 1..=100),
    ) {
        run(Algorithm::BinPack, specs, ops)?;
    }

    #[test]
    fn spread_is_safe_and_finds_the_least_loaded(
        specs in proptest::collection::vec(node_spec(), 1..=20),
        ops in proptest::collection::vec(op(), 1..=100),
    ) {
        run(Algorithm::Spread, specs, ops)?;
    }

    /// The same nodes and asks give the same placements, whatever order the nodes were
    /// registered in, and switching the algorithm back and forth changes nothing.
    #[test]
    fn placement_does_not_depend_on_registration_order(
        specs in proptest::collection::vec(node_spec(), 1..=20),
        asks in proptest::collection::vec(ask_spec(), 1..=30),
        spread in any::<bool>(),
    ) {
        let algorithm = if spread { Algorithm::Spread } else { Algorithm::BinPack };
        let mut forward = ClusterView::new(algorithm);
        let mut backward = ClusterView::new(algorithm);
        let infos: Vec<NodeInfo> = specs.iter().enumerate().map(|(i, s)| node_info(i, s)).collect();
        for info in &infos {
            forward.upsert_node(info.clone());
        }
        for info in infos.iter().rev() {
            backward.upsert_node(info.clone());
        }
        backward.set_algorithm(match algorithm {
            Algorithm::BinPack => Algorithm::Spread,
            Algorithm::Spread => Algorithm::BinPack,
        });
        backward.set_algorithm(algorithm);
        for (i, spec) in asks.iter().enumerate() {
            let ask = ask(spec);
            let alloc = format!("a{i}");
            prop_assert_eq!(forward.place(&ask, &alloc), backward.place(&ask, &alloc));
        }
        backward.check_invariants();
    }
}
