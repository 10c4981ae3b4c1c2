//! What a driver is given to start one task of an allocation: the task's spec, the host
//! ports the managers assigned to it, and the environment that tells the task who and
//! where it is (`GANTRY_ALLOC_ID`, `GANTRY_PORT_<NAME>`, ...).

use std::collections::BTreeMap;
use std::path::Path;

use gantry_api::job::TaskSpec;
use gantry_api::Allocation;

use crate::driver::{LaunchPort, TaskLaunch};

pub fn task_launch(
    allocation: &Allocation,
    task: &TaskSpec,
    node_address: &str,
    alloc_dir: &Path,
) -> TaskLaunch {
    let ports = task_ports(allocation, &task.name);
    let mut extra_env = BTreeMap::from([
        ("GANTRY_ALLOC_ID".to_string(), allocation.id.clone()),
        ("GANTRY_JOB".to_string(), allocation.job_id.clone()),
        ("GANTRY_TASK".to_string(), task.name.clone()),
        ("GANTRY_NODE".to_string(), allocation.node_id.clone()),
        ("GANTRY_NODE_ADDRESS".to_string(), node_address.to_string()),
    ]);
    for port in &ports {
        extra_env.insert(
            format!("GANTRY_PORT_{}", env_name(&port.name)),
            port.host_port.to_string(),
        );
    }
    TaskLaunch {
        alloc_id: allocation.id.clone(),
        job_id: allocation.job_id.clone(),
        task: task.clone(),
        ports,
        extra_env,
        alloc_dir: alloc_dir.to_path_buf(),
    }
}

/// The host ports assigned to one task of the allocation.
pub fn task_ports(allocation: &Allocation, task: &str) -> Vec<LaunchPort> {
    allocation
        .ports
        .iter()
        .filter(|p| p.task == task)
        .map(|p| LaunchPort {
            name: p.name.clone(),
            container_port: p.container_port,
            host_port: p.host_port,
        })
        .collect()
}

/// `http-alt` → `HTTP_ALT`: a port name as an environment variable suffix.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_environment_variables() {
        assert_eq!(env_name("http-alt.2"), "HTTP_ALT_2");
    }

    #[test]
    fn a_task_learns_who_and_where_it_is() {
        let resources = gantry_api::Resources {
            cpu_millis: 100,
            memory_mb: 32,
        };
        let port = |task: &str, name: &str, host_port| gantry_api::PortAssignment {
            task: task.into(),
            name: name.into(),
            host_port,
            container_port: 8080,
        };
        let allocation = Allocation {
            ports: vec![
                port("main", "http-alt", 20001),
                port("side", "metrics", 20002),
            ],
            ..Allocation::new("web-0-1a2b", "web", 2, 0, "node-1", resources)
        };
        let task: TaskSpec = serde_json::from_str(
            r#"{"name":"main","image":"busybox","resources":{"cpu_millis":100,"memory_mb":32}}"#,
        )
        .unwrap();
        let launch = task_launch(&allocation, &task, "10.0.0.7", Path::new("/tmp/a"));
        let env: Vec<(&str, &str)> = launch
            .extra_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("GANTRY_ALLOC_ID", "web-0-1a2b"),
                ("GANTRY_JOB", "web"),
                ("GANTRY_NODE", "node-1"),
                ("GANTRY_NODE_ADDRESS", "10.0.0.7"),
                ("GANTRY_PORT_HTTP_ALT", "20001"),
                ("GANTRY_TASK", "main"),
            ],
            "only the task's own ports"
        );
    }
}
