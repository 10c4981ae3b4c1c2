//! `--force-new-cluster`: the way back from the permanent loss of a quorum.
//!
//! When most managers are gone for good, the survivors cannot commit anything, not even
//! the membership change that would remove the dead ones. On the last surviving manager,
//! started with the flag, the stored membership is rewritten to this manager alone before
//! the Raft node starts (see `gantry_raft_store::force_new_cluster`); it then leads a
//! one-member cluster with all its data, and new managers join it with `--join`.

use crate::config::ServerConfig;
use anyhow::Context;
use gantry_raft_store::{force_new_cluster, Forced};
use openraft::BasicNode;
use std::path::Path;

/// Rewrites the store in `raft_dir` (not open yet) to a one-member cluster of this manager,
/// saying loudly what was done.
pub fn force_single_member(config: &ServerConfig, raft_dir: &Path) -> anyhow::Result<()> {
    if config.join.is_some() {
        anyhow::bail!(
            "--force-new-cluster makes this manager a cluster of its own; it cannot also \
             --join another one (start it without --join, then join new managers to it)"
        );
    }
    let addr = config.advertise_addr();
    let forced = force_new_cluster(raft_dir, config.id, BasicNode::new(&addr))
        .context("--force-new-cluster failed")?;
    match forced {
        Forced::AlreadyAlone => tracing::warn!(
            id = config.id,
            "--force-new-cluster: this manager is already the only member of its cluster; \
             nothing was changed"
        ),
        Forced::Rewritten {
            previous_voters,
            term,
            index,
        } => tracing::warn!(
            id = config.id,
            ?previous_voters,
            term,
            index,
            "--force-new-cluster: the membership is now this manager alone (it leads term \
             {term}; the change is log entry {index}); all stored data is kept. The other \
             managers are no longer members: never start them again with their old data \
             directories. Add new managers with `gantry server --id NEW_ID --join {addr}`, \
             and restart this one without the flag."
        ),
    }
    Ok(())
}
