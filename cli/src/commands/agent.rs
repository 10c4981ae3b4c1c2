//! `gantry agent`: run the node agent on this machine.

use clap::Args;
use gantry_agent::{AgentConfig, OnShutdown};
use gantry_api::node::PortRange;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::server::humantime_duration;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Every manager's HOST:PORT, comma-separated; the agent finds the leader among them.
    #[arg(long, env = "GANTRY_MANAGERS", value_delimiter = ',', required = true)]
    pub managers: Vec<String>,

    /// This node's name: unique in the cluster and stable across restarts.
    #[arg(long, env = "GANTRY_NAME")]
    pub name: String,

    /// The cluster's join token, needed when the managers run with --acl (printed by
    /// `gantry acl bootstrap`; a new one by `gantry acl join-token rotate`). The node gets
    /// a secret of its own when it registers.
    #[arg(long, env = "GANTRY_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,

    /// Run tasks with this driver only: `docker` or `process`. Without it the agent offers
    /// every driver that works here (docker when the engine answers, and process).
    #[arg(long, env = "GANTRY_DRIVER", value_parser = ["docker", "process"])]
    pub driver: Option<String>,

    /// A node label for placement constraints, KEY=VALUE; repeat for several.
    #[arg(long = "label", env = "GANTRY_LABEL", value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// CPU to offer, in millicores (default: what the machine has).
    #[arg(long, env = "GANTRY_CPU_MILLIS")]
    pub cpu_millis: Option<u64>,

    /// Memory to offer, in MiB (default: what the machine has).
    #[arg(long, env = "GANTRY_MEMORY_MB")]
    pub memory_mb: Option<u64>,

    /// The address other machines use to reach this node's published ports.
    #[arg(long, env = "GANTRY_ADDRESS", default_value = "127.0.0.1")]
    pub address: String,

    /// Where the agent's own HTTP endpoint (task logs, for the managers) listens.
    #[arg(long, env = "GANTRY_LISTEN", default_value = "127.0.0.1:4647")]
    pub listen: SocketAddr,

    /// The HOST:PORT the managers use to reach that endpoint, if not --listen.
    #[arg(long, env = "GANTRY_ADVERTISE")]
    pub advertise: Option<String>,

    /// Working directories of allocations (the process driver's task output).
    /// Default: gantry-agent-NAME in the system's temp dir.
    #[arg(long, env = "GANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Host ports handed out for ports without a static host port, START-END.
    #[arg(long, env = "GANTRY_PORT_RANGE", default_value = "20000-32000", value_parser = parse_port_range)]
    pub port_range: PortRange,

    /// Time a task gets to stop after SIGTERM before it is killed.
    #[arg(long, env = "GANTRY_STOP_GRACE", default_value = "10s", value_parser = humantime_duration)]
    pub stop_grace: Duration,
}

impl AgentArgs {
    pub fn into_config(self) -> AgentConfig {
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| std::env::temp_dir().join(format!("gantry-agent-{}", self.name)));
        let mut config = AgentConfig::new(self.managers, self.name, data_dir);
        config.join_token = self.join_token;
        config.driver = self.driver;
        config.labels = self.labels.into_iter().collect::<BTreeMap<_, _>>();
        config.cpu_millis = self.cpu_millis;
        config.memory_mb = self.memory_mb;
        config.address = self.address;
        config.listen = self.listen;
        config.advertise_listen = self.advertise;
        config.port_range = self.port_range;
        config.stop_grace = self.stop_grace;
        config
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("`{text}` is not a label: use KEY=VALUE")),
    }
}

fn parse_port_range(text: &str) -> Result<PortRange, String> {
    let bad = || format!("`{text}` is not a port range: use START-END, e.g. 20000-32000");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u16 = start.trim().parse().map_err(|_| bad())?;
    let end: u16 = end.trim().parse().map_err(|_| bad())?;
    if start == 0 || start > end {
        return Err(bad());
    }
    Ok(PortRange { start, end })
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.into_config();
    gantry_agent::run(config, OnShutdown::LeaveRunning, super::shutdown::signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_port_ranges_parse_or_say_why_not() {
        assert_eq!(parse_label("zone=a"), Ok(("zone".into(), "a".into())));
        assert!(parse_label("zone").is_err());
        assert_eq!(
            parse_port_range("20000-20100"),
            Ok(PortRange {
                start: 20000,
                end: 20100
            })
        );
        assert!(parse_port_range("30000-20000").is_err());
        assert!(parse_port_range("http").is_err());
    }
}
