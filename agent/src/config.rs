//! What an agent is told at start: where the managers are, who it is, what its node
//! offers and which driver runs tasks. Built from `gantry agent` flags by the CLI.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gantry_api::node::PortRange;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Every manager's `host:port`; the agent finds the leader among them.
    pub managers: Vec<String>,
    /// The node's unique, stable name; its node id derives from it.
    pub name: String,
    /// The cluster's join token (managers with ACL on): presented when the node
    /// registers; heartbeats and the session then present the node's own secret.
    pub join_token: Option<String>,
    /// `docker` or `process`; `None` picks docker when the engine answers, else process.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Override what the agent detects.
    pub cpu_millis: Option<u64>,
    pub memory_mb: Option<u64>,
    /// The address other machines use to reach this node's published ports.
    pub address: String,
    /// Where the agent's own HTTP endpoint (task logs, for the managers) listens.
    pub listen: SocketAddr,
    /// The address the managers use to reach that endpoint, if not `listen`'s.
    pub advertise_listen: Option<String>,
    /// Per-allocation working directories (the process driver's task output).
    pub data_dir: PathBuf,
    pub port_range: PortRange,
    /// How long a task gets between the graceful stop signal and the kill.
    pub stop_grace: Duration,
}

impl AgentConfig {
    /// A config with the defaults for everything but the managers, the name and the data dir.
    pub fn new(managers: Vec<String>, name: impl Into<String>, data_dir: PathBuf) -> Self {
        AgentConfig {
            managers,
            name: name.into(),
            join_token: None,
            driver: None,
            labels: BTreeMap::new(),
            cpu_millis: None,
            memory_mb: None,
            address: "127.0.0.1".to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 4647)),
            advertise_listen: None,
            data_dir,
            port_range: PortRange::default(),
            stop_grace: Duration::from_secs(10),
        }
    }
}
