//! `gantry operator ...`: the managers themselves: Raft membership and snapshots of the
//! whole state.

use std::io::{Read as _, Write as _};

use bytes::Bytes;
use clap::{Args, Subcommand};
use gantry_api::client::SnapshotFile;
use gantry_api::status::{MembersResponse, RaftInfo};

use super::connect::{ClientArgs, Ctx};
use super::failure::{fail, CmdResult, Failure, Needs};
use crate::cells;
use crate::output::table::state;
use crate::output::time::{ago, now_ms};
use crate::output::{print_json, Table};

#[derive(Args, Debug)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// The managers' Raft group: members, leadership.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Save or restore a consistent copy of the whole cluster state.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Subcommand, Debug)]
pub enum RaftCommand {
    /// The managers: role, voter or learner, and how far each has replicated the log.
    ListPeers,
    /// Add a manager, started with `gantry server --join` or to be started at ADDR: it
    /// joins as a learner and becomes a voter once it has caught up.
    AddPeer {
        /// The new manager's id (never used before in this cluster).
        id: u64,
        /// Its --listen (or --advertise) address, `host:port`.
        addr: String,
    },
    /// Remove a manager from the Raft group.
    RemovePeer {
        /// The manager's id.
        id: u64,
    },
    /// Ask the leader to hand leadership to another manager.
    ///
    /// Not supported yet: the Raft library the managers use (openraft 0.9) cannot
    /// transfer leadership, so the managers answer `501 not_supported` and nothing
    /// changes. To move leadership, restart the leader: the others elect a new one
    /// within about a second.
    TransferLeader {
        /// The manager that should lead.
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Download a consistent snapshot of the whole state (taken at or after the
    /// leader's commit index) to FILE, or `-` for stdout.
    Save {
        /// Where to write it.
        file: String,
    },
    /// Replace the whole cluster state with a snapshot's, on every manager (one
    /// replicated command). What is not in the snapshot is gone.
    Restore {
        /// A file written by `gantry operator snapshot save`, or `-` for stdin.
        file: String,
    },
}

pub fn needs(command: &OperatorCommand) -> Needs {
    match command {
        OperatorCommand::Raft(RaftCommand::ListPeers) => Needs::Read,
        // The snapshot holds everything (token hashes too): the managers ask for write.
        _ => Needs::Write,
    }
}

pub async fn run(ctx: &Ctx, command: OperatorCommand) -> CmdResult {
    match command {
        OperatorCommand::Raft(RaftCommand::ListPeers) => list_peers(ctx).await,
        OperatorCommand::Raft(RaftCommand::AddPeer { id, addr }) => {
            let members = ctx.client.add_peer(id, &addr).await?;
            show_members(
                ctx,
                &members,
                &format!(
                    "manager {id} ({addr}) added: a learner until it has caught up, then a voter"
                ),
            );
            Ok(())
        }
        OperatorCommand::Raft(RaftCommand::RemovePeer { id }) => {
            let members = ctx
                .client
                .remove_peer(id)
                .await
                .map_err(|e| super::failure::or_not_found(e, || format!(
                    "no manager {id} in the Raft group — `gantry operator raft list-peers` shows them"
                )))?;
            show_members(ctx, &members, &format!("manager {id} removed"));
            Ok(())
        }
        OperatorCommand::Raft(RaftCommand::TransferLeader { id }) => {
            let answer = ctx.client.transfer_leader(id).await?;
            if ctx.json {
                print_json(&answer);
            } else {
                println!("leadership transfer to manager {id} requested");
            }
            Ok(())
        }
        OperatorCommand::Snapshot(SnapshotCommand::Save { file }) => save(ctx, &file).await,
        OperatorCommand::Snapshot(SnapshotCommand::Restore { file }) => restore(ctx, &file).await,
    }
}

/// The Raft view with replication progress: the leader's, when it can be reached.
pub async fn leader_view(ctx: &Ctx) -> Result<RaftInfo, Failure> {
    let info = ctx.client.raft_info().await?;
    if let Some(leader) = &info.leader {
        if leader.id != info.id {
            if let Some(client) = ctx.probe_client(&leader.addr) {
                if let Ok(from_leader) = client.raft_info().await {
                    return Ok(from_leader);
                }
            }
        }
    }
    Ok(info)
}

async fn list_peers(ctx: &Ctx) -> CmdResult {
    let info = leader_view(ctx).await?;
    if ctx.json {
        print_json(&info);
        return Ok(());
    }
    let leader = info.leader.as_ref().map(|l| l.id);
    let from_leader = leader == Some(info.id);
    let mut table = Table::new(["ID", "ADDRESS", "ROLE", "VOTER", "MATCHED", "BEHIND"]);
    for m in &info.members {
        let role = if Some(m.id) == leader {
            "leader"
        } else if m.voter {
            "follower"
        } else {
            "learner"
        };
        let (matched, behind) = match m.matched_index {
            Some(matched) => (
                matched.to_string(),
                info.last_log_index.saturating_sub(matched).to_string(),
            ),
            None => ("-".into(), "-".into()),
        };
        table.row(vec![
            m.id.to_string().into(),
            m.addr.as_str().into(),
            state(role),
            if m.voter { "yes" } else { "no" }.into(),
            matched.into(),
            behind.into(),
        ]);
    }
    table.print(&ctx.style);
    match leader {
        None => println!("no leader known: replication progress is unknown"),
        Some(_) if !from_leader => {
            println!("(the leader could not be reached: replication progress is unknown)")
        }
        Some(_) => println!(
            "term {}, last log index {}, commit index {}",
            info.term, info.last_log_index, info.commit_index
        ),
    }
    Ok(())
}

fn show_members(ctx: &Ctx, members: &MembersResponse, headline: &str) {
    if ctx.json {
        print_json(members);
        return;
    }
    println!("{headline}");
    let mut table = Table::new(["ID", "ADDRESS", "VOTER"]);
    for m in &members.members {
        table.row(cells![
            m.id.to_string(),
            m.addr.as_str(),
            if m.voter { "yes" } else { "no (learner)" }
        ]);
    }
    table.print(&ctx.style);
}

/// What `snapshot save --json` prints.
#[derive(serde::Serialize)]
struct Saved<'a> {
    file: &'a str,
    format: &'a str,
    index: u64,
    taken_at_ms: u64,
    records: usize,
    bytes: usize,
}

async fn save(ctx: &Ctx, path: &str) -> CmdResult {
    let snapshot = ctx.client.save_snapshot().await?;
    if path == "-" {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&snapshot.bytes).and_then(|()| out.flush()) {
            return fail(format!("cannot write the snapshot to stdout: {e}"));
        }
    } else {
        write_atomically(path, &snapshot.bytes)?;
    }
    let saved = Saved {
        file: path,
        format: &snapshot.format,
        index: snapshot.index,
        taken_at_ms: snapshot.taken_at_ms,
        records: snapshot.records,
        bytes: snapshot.bytes.len(),
    };
    // With `-` the snapshot is stdout: the summary goes to stderr.
    let summary = format!(
        "saved the state at index {} ({}, taken {}) to {}",
        saved.index,
        records_and_bytes(saved.records, saved.bytes),
        ago(saved.taken_at_ms, now_ms()),
        if path == "-" { "stdout" } else { path }
    );
    match (path == "-", ctx.json) {
        (true, _) => eprintln!("{summary}"),
        (false, true) => print_json(&saved),
        (false, false) => println!("{summary}"),
    }
    Ok(())
}

/// Writes `path` through a temporary file beside it, so a failed download never leaves
/// half a snapshot under the name.
fn write_atomically(path: &str, bytes: &[u8]) -> Result<(), Failure> {
    let target = std::path::Path::new(path);
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(target).map_err(|e| e.error)?;
        Ok(())
    };
    write().or_else(|e| fail(format!("cannot write {path}: {e}")))
}

fn records_and_bytes(records: usize, bytes: usize) -> String {
    format!("{records} records, {bytes} bytes")
}

async fn restore(ctx: &Ctx, path: &str) -> CmdResult {
    let bytes = if path == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
            return fail(format!("cannot read the snapshot from stdin: {e}"));
        }
        bytes
    } else {
        match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => return fail(format!("cannot read {path}: {e}")),
        }
    };
    let size = bytes.len();
    let file = match SnapshotFile::parse(Bytes::from(bytes)) {
        Ok(file) => file,
        Err(e) => return fail(format!("{path}: {e}")),
    };
    let restored = ctx.client.restore_snapshot(&file).await?;
    if ctx.json {
        print_json(&restored);
    } else {
        println!(
            "restored the state saved at index {} ({}): every manager now holds {} records \
             (committed at index {})",
            file.index,
            records_and_bytes(file.records, size),
            restored.records,
            restored.restored_index
        );
    }
    Ok(())
}
