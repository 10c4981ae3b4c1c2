//! Can this node take this ask at all? The filters, in pipeline order.
//!
//! 1. schedulable (ready, eligible, not draining)
//! 2. offers every driver of the ask
//! 3. every constraint holds (in the job's order)
//! 4. enough free cpu, then memory
//! 5. the static host ports are free, and the dynamic range has enough free ports
//!
//! [`check_node`] runs them all on one node and names the first that fails: the
//! explanation and the brute-force tests use it. The fast path splits the same checks by
//! how often they must run: [`class_admits`] once per node class (drivers and
//! label/driver constraints), the capacity index for cpu and memory, and [`node_admits`]
//! for what is left on each candidate (`node.*` constraints and ports).

use super::ask::Ask;
use super::capacity_tree::Free;
use super::constraints::{Attributes, Scope};
use super::node_state::NodeState;
use super::ports::PortShortage;

/// The first filter a node failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    NotSchedulable,
    MissingDriver(String),
    /// The constraint as written (`label.zone = a`).
    Constraint(String),
    Exhausted(Dimension),
}

/// What ran out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dimension {
    Cpu,
    Memory,
    /// A static host port the ask needs is taken.
    Port(u16),
    /// Too few free ports in the dynamic range.
    Ports,
}

impl Dimension {
    pub fn name(&self) -> String {
        match self {
            Dimension::Cpu => "cpu".into(),
            Dimension::Memory => "memory".into(),
            Dimension::Port(port) => format!("port {port}"),
            Dimension::Ports => "ports".into(),
        }
    }
}

/// What an ask needs of cpu and memory, in the index's terms.
pub(crate) fn need(ask: &Ask) -> Free {
    Free {
        cpu: ask.resources.cpu_millis,
        mem: ask.resources.memory_mb,
    }
}

/// Every filter, in order, on one node.
pub(crate) fn check_node(ask: &Ask, node: &NodeState) -> Result<(), Rejection> {
    check_filters(ask, node)?;
    check_capacity(ask, node)?;
    check_ports(ask, node)
}

/// The filters that no eviction can change: schedulable, drivers, constraints.
pub(crate) fn check_filters(ask: &Ask, node: &NodeState) -> Result<(), Rejection> {
    if !node.info.schedulable {
        return Err(Rejection::NotSchedulable);
    }
    check_drivers(ask, &node.info)?;
    for c in &ask.constraints {
        if !c.admits(&node.info) {
            return Err(Rejection::Constraint(c.to_string()));
        }
    }
    Ok(())
}

/// Drivers and the constraints on labels and drivers, for every node sharing `attributes`.
pub(crate) fn class_admits(ask: &Ask, attributes: &impl Attributes) -> bool {
    check_drivers(ask, attributes).is_ok()
        && ask
            .constraints
            .iter()
            .filter(|c| c.scope() == Scope::Class)
            .all(|c| c.admits(attributes))
}

/// What the class and the capacity index have not checked: `node.*` constraints, ports,
/// and (when asked to) that the node holds no allocation of the job yet.
pub(crate) fn node_admits(ask: &Ask, node: &NodeState, without_job: bool) -> bool {
    !(without_job && node.holds_job(&ask.job_id))
        && ask
            .constraints
            .iter()
            .filter(|c| c.scope() == Scope::Node)
            .all(|c| c.admits(&node.info))
        && check_ports(ask, node).is_ok()
}

fn check_drivers(ask: &Ask, attributes: &impl Attributes) -> Result<(), Rejection> {
    match ask.drivers.iter().find(|d| !attributes.has_driver(d)) {
        Some(missing) => Err(Rejection::MissingDriver(missing.clone())),
        None => Ok(()),
    }
}

fn check_capacity(ask: &Ask, node: &NodeState) -> Result<(), Rejection> {
    let free = node.free();
    let need = need(ask);
    if need.cpu > free.cpu {
        Err(Rejection::Exhausted(Dimension::Cpu))
    } else if need.mem > free.mem {
        Err(Rejection::Exhausted(Dimension::Memory))
    } else {
        Ok(())
    }
}

fn check_ports(ask: &Ask, node: &NodeState) -> Result<(), Rejection> {
    node.check_ports(&ask.static_ports, ask.dynamic_ports)
        .map_err(|shortage| match shortage {
            PortShortage::Taken(port) => Rejection::Exhausted(Dimension::Port(port)),
            PortShortage::RangeExhausted { .. } => Rejection::Exhausted(Dimension::Ports),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::constraints::CompiledConstraint;
    use crate::scheduler::placement::{NodeInfo, Reservation};
    use gantry_api::{Constraint, ConstraintOperator, PortRange, Resources};

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_millis: cpu,
            memory_mb: mem,
        }
    }

    fn node() -> NodeState {
        let mut n = NodeState::new(
            NodeInfo {
                id: "n1".into(),
                name: "web-1".into(),
                address: "10.0.0.1".into(),
                capacity: res(1000, 1000),
                port_range: PortRange {
                    start: 100,
                    end: 101,
                },
                labels: [("zone".to_string(), "a".to_string())].into(),
                drivers: vec!["docker".into()],
                schedulable: true,
            },
            0,
        );
        n.add(Reservation {
            alloc_id: "x".into(),
            job_id: "db".into(),
            priority: 50,
            resources: res(500, 800),
            host_ports: vec![80, 100],
        });
        n
    }

    fn constraint(attribute: &str, value: &str) -> CompiledConstraint {
        CompiledConstraint::new(&Constraint {
            attribute: attribute.into(),
            operator: ConstraintOperator::Equal,
            value: value.into(),
        })
        .unwrap()
    }

    #[test]
    fn names_the_first_failing_filter() {
        let n = node();
        let ask = |f: &dyn Fn(&mut Ask)| {
            let mut a = Ask::new("web", res(100, 100));
            a.drivers = vec!["docker".into()];
            f(&mut a);
            check_node(&a, &n)
        };
        assert_eq!(ask(&|_| {}), Ok(()));
        assert_eq!(
            ask(&|a| a.drivers.push("process".into())),
            Err(Rejection::MissingDriver("process".into()))
        );
        assert_eq!(
            ask(&|a| a.constraints.push(constraint("label.zone", "b"))),
            Err(Rejection::Constraint("label.zone = b".into()))
        );
        assert_eq!(
            ask(&|a| a.resources = res(501, 5000)),
            Err(Rejection::Exhausted(Dimension::Cpu))
        );
        assert_eq!(
            ask(&|a| a.resources = res(500, 201)),
            Err(Rejection::Exhausted(Dimension::Memory))
        );
        assert_eq!(
            ask(&|a| a.static_ports = vec![80]),
            Err(Rejection::Exhausted(Dimension::Port(80)))
        );
        assert_eq!(ask(&|a| a.dynamic_ports = 1), Ok(()));
        assert_eq!(
            ask(&|a| a.dynamic_ports = 2),
            Err(Rejection::Exhausted(Dimension::Ports))
        );
        let mut down = node();
        down.info.schedulable = false;
        assert_eq!(
            check_node(&Ask::new("web", res(1, 1)), &down),
            Err(Rejection::NotSchedulable)
        );
    }

    #[test]
    fn the_split_checks_agree_with_the_whole() {
        let n = node();
        let mut a = Ask::new("web", res(100, 100));
        a.constraints.push(constraint("label.zone", "a"));
        a.constraints.push(constraint("node.name", "web-1"));
        assert!(class_admits(&a, &n.info) && node_admits(&a, &n, true));
        a.constraints.push(constraint("node.address", "elsewhere"));
        assert!(class_admits(&a, &n.info));
        assert!(!node_admits(&a, &n, false));
        let mut db = Ask::new("db", res(1, 1));
        assert!(node_admits(&db, &n, false));
        assert!(!node_admits(&db, &n, true), "the node already holds job db");
        db.drivers = vec!["process".into()];
        assert!(!class_admits(&db, &n.info));
    }
}
