//! `gantry server`: run one manager.

use clap::Args;
use gantry_server::acl::ClusterSecret;
use gantry_server::config::{parse_initial_cluster, RaftTiming};
use gantry_server::scheduler::placement::Algorithm;
use gantry_server::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// This manager's id: a positive number, unique in the cluster, never reused.
    #[arg(long, env = "GANTRY_ID")]
    pub id: u64,

    /// Address for the API, agent sessions and peer (Raft) traffic.
    #[arg(long, env = "GANTRY_LISTEN", default_value = "127.0.0.1:4646")]
    pub listen: SocketAddr,

    /// Address the other managers and clients should use, if not --listen (e.g. behind NAT
    /// or when listening on 0.0.0.0).
    #[arg(long, env = "GANTRY_ADVERTISE")]
    pub advertise: Option<String>,

    /// Where this manager keeps its Raft log, state and snapshots.
    #[arg(long, env = "GANTRY_DATA_DIR")]
    pub data_dir: PathBuf,

    /// The first voters, as ID=HOST:PORT,... (the same list on every initial manager).
    /// Ignored once the data dir holds state.
    #[arg(long, env = "GANTRY_INITIAL_CLUSTER", conflicts_with = "join")]
    pub initial_cluster: Option<String>,

    /// Join an existing cluster through this manager (HOST:PORT): added as a learner,
    /// made a voter once caught up.
    #[arg(long, env = "GANTRY_JOIN")]
    pub join: Option<String>,

    /// Recovery from quorum loss, on the last surviving manager only: before starting,
    /// rewrite its stored membership to itself alone (all data kept), so it leads a
    /// one-member cluster. Then add new managers with --join, and restart this one
    /// without the flag. Never start the lost managers again with their old data.
    #[arg(long, env = "GANTRY_FORCE_NEW_CLUSTER", conflicts_with = "join")]
    pub force_new_cluster: bool,

    /// Snapshot the state (and purge the log behind it) every this many log entries.
    #[arg(long, env = "GANTRY_SNAPSHOT_EVERY", default_value_t = 20_000)]
    pub snapshot_every: u64,

    /// Largest piece of a snapshot sent to a lagging manager in one request.
    #[arg(long, env = "GANTRY_SNAPSHOT_CHUNK_BYTES", default_value_t = 1 << 20)]
    pub snapshot_chunk_bytes: u64,

    /// Raft heartbeat interval. openraft also checks election timers every 1.5 of these,
    /// and waits this long for an append to be answered before sending it again.
    #[arg(long, env = "GANTRY_HEARTBEAT_INTERVAL", default_value = "50ms", value_parser = humantime_duration)]
    pub heartbeat_interval: Duration,

    /// Election timeout: each manager draws its own between this and twice this. A
    /// follower that has seen a leader stands for election after the leader's lease (twice
    /// this) plus its own timeout without a heartbeat: 450–600 ms with the default.
    #[arg(long, env = "GANTRY_ELECTION_TIMEOUT", default_value = "150ms", value_parser = humantime_duration)]
    pub election_timeout: Duration,

    /// How long a write waits for a leader during an election before failing with
    /// `503 no_quorum`.
    #[arg(long, env = "GANTRY_WRITE_TIMEOUT", default_value = "5s", value_parser = humantime_duration)]
    pub write_timeout: Duration,

    /// How the scheduler ranks the nodes an allocation fits on: `bin-pack` fills the
    /// fullest node that fits (fewest nodes used), `spread` the least loaded one.
    #[arg(long, env = "GANTRY_SCHEDULER_ALGORITHM", value_enum, default_value_t = SchedulerAlgorithm::BinPack)]
    pub scheduler_algorithm: SchedulerAlgorithm,

    /// Largest accepted API request body, in bytes (larger ones get `413`).
    #[arg(long, env = "GANTRY_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Answer DNS questions about services on this address, UDP and TCP (e.g.
    /// 127.0.0.1:8600): A/AAAA and SRV records of `<service>.service.gantry`, SRV of
    /// `_<service>._tcp.service.gantry`, A/AAAA of `<node>.node.gantry`; TTL 0, read
    /// from this manager's replica. Off unless given.
    #[arg(long, env = "GANTRY_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,

    /// Require tokens: every API call but `GET /v1/status` and `POST /v1/acl/bootstrap`
    /// needs a bearer token, and agents need the join token. Give every manager the same
    /// setting and a cluster secret. Bootstrap once with `gantry acl bootstrap`.
    #[arg(long, env = "GANTRY_ACL")]
    pub acl: bool,

    /// A file holding the secret every manager of the cluster shares (at least 16
    /// characters, e.g. `openssl rand -hex 32 > FILE`). Peer (Raft) requests carry it, and
    /// are refused without it. Required with --acl unless GANTRY_CLUSTER_SECRET is set.
    #[arg(
        long,
        env = "GANTRY_CLUSTER_SECRET_FILE",
        conflicts_with = "cluster_secret"
    )]
    pub cluster_secret_file: Option<PathBuf>,

    /// The cluster secret itself. Prefer the GANTRY_CLUSTER_SECRET environment variable or
    /// --cluster-secret-file: other users of this machine can see a command line.
    #[arg(long, env = "GANTRY_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SchedulerAlgorithm {
    BinPack,
    Spread,
}

impl From<SchedulerAlgorithm> for Algorithm {
    fn from(choice: SchedulerAlgorithm) -> Self {
        match choice {
            SchedulerAlgorithm::BinPack => Algorithm::BinPack,
            SchedulerAlgorithm::Spread => Algorithm::Spread,
        }
    }
}

pub fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration: {e}"))
}

impl ServerArgs {
    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        if self.id == 0 {
            anyhow::bail!("--id must be a positive number");
        }
        if self.heartbeat_interval >= self.election_timeout {
            anyhow::bail!(
                "--election-timeout ({:?}) must be longer than --heartbeat-interval ({:?})",
                self.election_timeout,
                self.heartbeat_interval
            );
        }
        let mut config = ServerConfig::new(self.id, self.listen, self.data_dir);
        config.advertise = self.advertise;
        if let Some(text) = &self.initial_cluster {
            config.initial_cluster = parse_initial_cluster(text)
                .map_err(|e| anyhow::anyhow!("--initial-cluster: {e}"))?;
        }
        if config.initial_cluster.is_empty() && self.join.is_none() && !has_state(&config) {
            anyhow::bail!(
                "a new manager needs --initial-cluster (to form a cluster) or --join (to join one)"
            );
        }
        config.join = self.join;
        config.snapshot_every = self.snapshot_every.max(1);
        config.snapshot_chunk_bytes = self.snapshot_chunk_bytes.max(1024);
        config.timing = RaftTiming {
            heartbeat: self.heartbeat_interval,
            election_timeout_min: self.election_timeout,
            election_timeout_max: self.election_timeout * 2,
        };
        config.write_timeout = self.write_timeout;
        config.max_body_bytes = self.max_body_bytes;
        config.dns_listen = self.dns_listen;
        config.scheduler_algorithm = self.scheduler_algorithm.into();
        config.force_new_cluster = self.force_new_cluster;
        config.acl = self.acl;
        config.cluster_secret = match (&self.cluster_secret_file, &self.cluster_secret) {
            (Some(path), _) => Some(
                ClusterSecret::from_file(path)
                    .map_err(|e| anyhow::anyhow!("--cluster-secret-file: {e}"))?,
            ),
            (None, Some(text)) => Some(
                ClusterSecret::new(text)
                    .map_err(|e| anyhow::anyhow!("GANTRY_CLUSTER_SECRET: {e}"))?,
            ),
            (None, None) => None,
        };
        Ok(config)
    }
}

fn has_state(config: &ServerConfig) -> bool {
    config.data_dir.join("raft").exists()
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    gantry_server::run(config, super::shutdown::signal()).await
}
