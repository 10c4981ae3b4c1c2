//! Everything a manager is started with. The CLI fills it from flags, `GANTRY_*`
//! environment variables and the config file; tests fill it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Raft timing. The defaults suit managers on one LAN: a heartbeat every 50 ms, and an
/// election timeout drawn once per manager from 150–300 ms. openraft checks for elections
/// every 1.5 heartbeats, so a short heartbeat also keeps two followers from firing on the
/// same tick and splitting the vote; it also gives each append request one heartbeat
/// interval to be answered, which followers meet by sharing fsyncs (see the store). A follower that has seen a
/// leader also honours that leader's lease (openraft sets it to the maximum election
/// timeout), so it stands for election after 450–600 ms without a heartbeat: a dead leader
/// is replaced in about half a second, while a stall shorter than that (a slow fsync, a
/// busy host) never causes an election.
#[derive(Clone, Debug)]
pub struct RaftTiming {
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This manager's Raft id; unique in the cluster and never reused.
    pub id: u64,
    /// One address for the admin API, agent sessions and peer traffic.
    pub listen: SocketAddr,
    /// The address other managers and clients use to reach this one (defaults to `listen`).
    pub advertise: Option<String>,
    pub data_dir: PathBuf,
    /// `id=host:port` of every initial voter; empty when joining.
    pub initial_cluster: Vec<(u64, String)>,
    /// Address of any existing manager to join through, as a learner then a voter.
    pub join: Option<String>,
    /// Take a snapshot (and purge the log behind it) every this many applied entries.
    pub snapshot_every: u64,
    /// Largest piece of a snapshot sent in one request to a lagging peer.
    pub snapshot_chunk_bytes: u64,
    pub timing: RaftTiming,
    /// How long a write may wait for a leader (during an election) before `503 no_quorum`.
    pub write_timeout: Duration,
    /// Largest accepted API request body.
    pub max_body_bytes: usize,
    /// How the scheduler ranks feasible nodes: bin-packing (fill the fullest node that
    /// fits) or spread (least loaded first).
    pub scheduler_algorithm: crate::scheduler::placement::Algorithm,
    /// Require tokens on the API and the join token from agents (`--acl`).
    pub acl: bool,
    /// Shared by every manager; peer requests without it are refused when it is set.
    pub cluster_secret: Option<crate::acl::ClusterSecret>,
    /// Before starting, rewrite the stored membership to this manager alone (recovery
    /// from the permanent loss of a quorum; `--force-new-cluster`).
    pub force_new_cluster: bool,
    /// Answer DNS questions about services on this address, UDP and TCP
    /// (`--dns-listen`); `None`: no DNS interface.
    pub dns_listen: Option<SocketAddr>,
}

impl ServerConfig {
    pub fn new(id: u64, listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            id,
            listen,
            advertise: None,
            data_dir,
            initial_cluster: Vec::new(),
            join: None,
            snapshot_every: 20_000,
            snapshot_chunk_bytes: 1 << 20,
            timing: RaftTiming::default(),
            write_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            scheduler_algorithm: Default::default(),
            acl: false,
            cluster_secret: None,
            force_new_cluster: false,
            dns_listen: None,
        }
    }

    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

/// Parses `1=127.0.0.1:4646,2=127.0.0.1:4656` into `(id, addr)` pairs.
pub fn parse_initial_cluster(text: &str) -> Result<Vec<(u64, String)>, String> {
    let mut members = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not of the form ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("`{id}` in `{part}` is not a numeric manager id"))?;
        if members.iter().any(|(seen, _)| *seen == id) {
            return Err(format!("manager id {id} appears twice"));
        }
        members.push((id, addr.trim().to_string()));
    }
    if members.is_empty() {
        return Err("the initial cluster lists no managers".into());
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_initial_cluster() {
        let members = parse_initial_cluster("1=127.0.0.1:4646, 2=127.0.0.1:4656").unwrap();
        assert_eq!(
            members,
            vec![(1, "127.0.0.1:4646".into()), (2, "127.0.0.1:4656".into())]
        );
    }

    #[test]
    fn rejects_bad_initial_cluster() {
        assert!(parse_initial_cluster("").is_err());
        assert!(parse_initial_cluster("x=127.0.0.1:1").is_err());
        assert!(parse_initial_cluster("127.0.0.1:1").is_err());
        assert!(parse_initial_cluster("1=a:1,1=b:2").is_err());
    }
}
