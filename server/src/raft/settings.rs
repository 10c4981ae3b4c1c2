//! openraft's configuration, derived from the manager's settings.

use crate::config::ServerConfig;
use openraft::{Config, SnapshotPolicy};

pub fn raft_config(server: &ServerConfig) -> anyhow::Result<Config> {
    let timing = &server.timing;
    let config = Config {
        cluster_name: "gantry".to_string(),
        heartbeat_interval: timing.heartbeat.as_millis() as u64,
        election_timeout_min: timing.election_timeout_min.as_millis() as u64,
        election_timeout_max: timing.election_timeout_max.as_millis() as u64,
        // A chunk must arrive within this time, or the transfer is retried.
        install_snapshot_timeout: 5_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(server.snapshot_every),
        // Keep a tail of the log behind each snapshot, so a follower that is only a little
        // behind catches up from the log instead of needing a whole snapshot.
        max_in_snapshot_log_to_keep: (server.snapshot_every / 10).max(1),
        snapshot_max_chunk_size: server.snapshot_chunk_bytes,
        // Entries per append request, at most; requests are also kept under
        // `network::MAX_APPEND_BYTES` (group commit entries reach 256 KiB), because
        // openraft gives an append one heartbeat interval to be answered.
        max_payload_entries: 64,
        ..Default::default()
    };
    Ok(config.validate()?)
}
