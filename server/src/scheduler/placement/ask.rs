//! An ask: one allocation of a job, reduced to what placement checks.
//!
//! All tasks of a job run together on one node, so an ask is the sum of its tasks'
//! resources, the union of their drivers and every host port they publish. Building it
//! from a [`JobSpec`] compiles the constraints (regexes once per ask, not per node).

use gantry_api::{JobSpec, Resources};

use super::constraints::{CompiledConstraint, InvalidConstraint};

/// What one allocation needs of a node.
#[derive(Clone, Debug)]
pub struct Ask {
    pub job_id: String,
    /// 1..=100; may preempt allocations of a strictly lower priority.
    pub priority: u8,
    pub constraints: Vec<CompiledConstraint>,
    /// The sum over the job's tasks.
    pub resources: Resources,
    /// Every driver some task uses; the node must offer all of them.
    pub drivers: Vec<String>,
    /// Host ports that must be free on the node, in task and port order.
    pub static_ports: Vec<u16>,
    /// Host ports to pick from the node's dynamic range.
    pub dynamic_ports: usize,
    /// Prefer nodes that hold no allocation of this job yet, so replicas spread; a node
    /// that does is used only when no other fits.
    pub distinct_nodes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    Constraint(#[from] InvalidConstraint),
    #[error("the tasks' resources add up to more than can be counted")]
    ResourceOverflow,
    #[error("host port {0} is published twice")]
    DuplicateHostPort(u16),
    #[error("host port 0 is not a port")]
    ZeroHostPort,
}

impl Ask {
    /// An ask with no constraints, drivers or ports, priority 50, replicas spread.
    pub fn new(job_id: impl Into<String>, resources: Resources) -> Self {
        Ask {
            job_id: job_id.into(),
            priority: 50,
            constraints: Vec::new(),
            resources,
            drivers: Vec::new(),
            static_ports: Vec::new(),
            dynamic_ports: 0,
            distinct_nodes: true,
        }
    }

    /// One allocation of `spec`. The spec has normally been validated already; what would
    /// make placement wrong is checked again here.
    pub fn from_job(spec: &JobSpec) -> Result<Ask, AskError> {
        let mut resources = Resources {
            cpu_millis: 0,
            memory_mb: 0,
        };
        let mut drivers: Vec<String> = Vec::new();
        let mut static_ports = Vec::new();
        let mut dynamic_ports = 0;
        for task in &spec.tasks {
            resources.cpu_millis = resources
                .cpu_millis
                .checked_add(task.resources.cpu_millis)
                .ok_or(AskError::ResourceOverflow)?;
            resources.memory_mb = resources
                .memory_mb
                .checked_add(task.resources.memory_mb)
                .ok_or(AskError::ResourceOverflow)?;
            if !drivers.iter().any(|d| d == task.driver()) {
                drivers.push(task.driver().to_string());
            }
            for port in &task.ports {
                match port.host_port {
                    Some(0) => return Err(AskError::ZeroHostPort),
                    Some(p) if static_ports.contains(&p) => {
                        return Err(AskError::DuplicateHostPort(p))
                    }
                    Some(p) => static_ports.push(p),
                    None => dynamic_ports += 1,
                }
            }
        }
        let constraints = spec
            .constraints
            .iter()
            .map(CompiledConstraint::new)
            .collect::<Result<_, _>>()?;
        Ok(Ask {
            job_id: spec.id.clone(),
            priority: spec.priority,
            constraints,
            resources,
            drivers,
            static_ports,
            dynamic_ports,
            distinct_nodes: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::{Constraint, ConstraintOperator, PortSpec, TaskSpec};

    fn task(
        name: &str,
        driver: Option<&str>,
        cpu: u64,
        mem: u64,
        ports: Vec<PortSpec>,
    ) -> TaskSpec {
        TaskSpec {
            name: name.into(),
            driver: driver.map(String::from),
            image: "img".into(),
            command: vec![],
            env: Default::default(),
            resources: Resources {
                cpu_millis: cpu,
                memory_mb: mem,
            },
            ports,
            health: None,
            shutdown_delay: None,
        }
    }

    fn port(name: &str, host_port: Option<u16>) -> PortSpec {
        PortSpec {
            name: name.into(),
            container_port: 80,
            host_port,
            service: None,
            tags: Vec::new(),
        }
    }

    fn spec(tasks: Vec<TaskSpec>) -> JobSpec {
        JobSpec {
            id: "web".into(),
            kind: Default::default(),
            replicas: 3,
            priority: 70,
            constraints: vec![Constraint {
                attribute: "label.zone".into(),
                operator: ConstraintOperator::Regex,
                value: "^(a|b)$".into(),
            }],
            tasks,
            restart: None,
            update: None,
        }
    }

    #[test]
    fn sums_tasks_and_collects_drivers_and_ports() {
        let ask = Ask::from_job(&spec(vec![
            task(
                "a",
                None,
                250,
                64,
                vec![port("http", Some(8080)), port("x", None)],
            ),
            task(
                "b",
                Some("process"),
                100,
                32,
                vec![port("y", None), port("z", Some(9000))],
            ),
            task("c", Some("docker"), 1, 1, vec![]),
        ]))
        .unwrap();
        assert_eq!(ask.job_id, "web");
        assert_eq!(ask.priority, 70);
        assert_eq!(
            ask.resources,
            Resources {
                cpu_millis: 351,
                memory_mb: 97
            }
        );
        assert_eq!(ask.drivers, vec!["docker", "process"]);
        assert_eq!(ask.static_ports, vec![8080, 9000]);
        assert_eq!(ask.dynamic_ports, 2);
        assert!(ask.distinct_nodes);
        assert_eq!(ask.constraints.len(), 1);
    }

    #[test]
    fn rejects_what_would_break_placement() {
        let dup = spec(vec![
            task("a", None, 1, 1, vec![port("p", Some(80))]),
            task("b", None, 1, 1, vec![port("q", Some(80))]),
        ]);
        assert_eq!(
            Ask::from_job(&dup).unwrap_err(),
            AskError::DuplicateHostPort(80)
        );
        let zero = spec(vec![task("a", None, 1, 1, vec![port("p", Some(0))])]);
        assert_eq!(Ask::from_job(&zero).unwrap_err(), AskError::ZeroHostPort);
        let big = spec(vec![
            task("a", None, u64::MAX, 1, vec![]),
            task("b", None, 1, 1, vec![]),
        ]);
        assert_eq!(Ask::from_job(&big).unwrap_err(), AskError::ResourceOverflow);
        let mut bad_regex = spec(vec![task("a", None, 1, 1, vec![])]);
        bad_regex.constraints[0].value = "(".into();
        assert!(matches!(
            Ask::from_job(&bad_regex),
            Err(AskError::Constraint(_))
        ));
    }
}
