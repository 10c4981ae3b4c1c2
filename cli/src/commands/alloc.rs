//! `gantry alloc ...`: allocations (placed instances of jobs): list, inspect, read their
//! tasks' logs, restart them in place, stop them.
//!
//! An allocation may be named by a unique prefix of its id (`web-0` for
//! `web-0-1a2b3c4d`), as long as no other allocation starts the same way.

use std::io::Write as _;

use clap::{Args, Subcommand};
use gantry_api::client::{AllocationFilter, LogsQuery};
use gantry_api::{Allocation, ClientError};

use super::connect::{ClientArgs, Ctx};
use super::failure::{fail, CmdResult, Failure, Needs};
use super::job::allocation_table;
use super::job_progress::serde_plain;
use crate::cells;
use crate::output::time::{ago, now_ms};
use crate::output::{print_fields, print_heading, print_json, resources, Table};

#[derive(Args, Debug)]
pub struct AllocArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AllocCommand,
}

#[derive(Subcommand, Debug)]
pub enum AllocCommand {
    /// Allocations, optionally only a job's, a node's, or those in one state.
    List {
        /// Only this job's.
        #[arg(long)]
        job: Option<String>,
        /// Only this node's.
        #[arg(long)]
        node: Option<String>,
        /// Only those in this state: pending, starting, running, failed, complete, lost.
        #[arg(long)]
        status: Option<String>,
    },
    /// One allocation: where it runs, its state, ports, and the agent's last word.
    Status {
        /// The allocation's id (or a unique prefix).
        id: String,
    },
    /// A task's output (stdout and stderr unless one is asked for), streamed from the
    /// node's agent through a manager.
    Logs {
        /// The allocation's id (or a unique prefix).
        id: String,
        /// Keep following the output until the task exits or Ctrl-C.
        #[arg(short = 'f', long)]
        follow: bool,
        /// The task; may be left out when the allocation has one task.
        #[arg(long)]
        task: Option<String>,
        /// Only the last N lines written so far.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Only standard error.
        #[arg(long, conflicts_with = "stdout")]
        stderr: bool,
        /// Only standard output.
        #[arg(long)]
        stdout: bool,
    },
    /// Restart an allocation's tasks (or one task) in place on its node: same
    /// allocation, same node, no new placement.
    Restart {
        /// The allocation's id (or a unique prefix).
        id: String,
        /// Only this task.
        #[arg(long)]
        task: Option<String>,
    },
    /// Stop an allocation; the scheduler places a replacement if its job still wants
    /// the slot.
    Stop {
        /// The allocation's id (or a unique prefix).
        id: String,
    },
}

pub fn needs(command: &AllocCommand) -> Needs {
    match command {
        AllocCommand::List { .. } | AllocCommand::Status { .. } | AllocCommand::Logs { .. } => {
            Needs::Read
        }
        _ => Needs::Write,
    }
}

pub async fn run(ctx: &Ctx, command: AllocCommand) -> CmdResult {
    match command {
        AllocCommand::List { job, node, status } => {
            list(ctx, AllocationFilter { job, node, status }).await
        }
        AllocCommand::Status { id } => show(ctx, &id).await,
        AllocCommand::Logs {
            id,
            follow,
            task,
            tail,
            stderr,
            stdout,
        } => {
            let stream = match (stderr, stdout) {
                (true, _) => Some("stderr".to_string()),
                (_, true) => Some("stdout".to_string()),
                _ => None,
            };
            let query = LogsQuery {
                task,
                follow,
                tail,
                stream,
            };
            logs(ctx, &id, query).await
        }
        AllocCommand::Restart { id, task } => restart(ctx, &id, task.as_deref()).await,
        AllocCommand::Stop { id } => stop(ctx, &id).await,
    }
}

/// The allocation named by `id`: exactly, or by a unique prefix.
async fn resolve(ctx: &Ctx, id: &str) -> Result<Allocation, Failure> {
    match ctx.client.get_allocation(id, ctx.stale).await {
        Ok(found) => return Ok(found.value),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let all = ctx
        .client
        .list_allocations(&AllocationFilter::default(), ctx.stale)
        .await?
        .value;
    let mut matching: Vec<Allocation> = all.into_iter().filter(|a| a.id.starts_with(id)).collect();
    match matching.len() {
        0 => fail(format!(
            "no allocation `{id}` — `gantry alloc list` shows the allocations"
        )),
        1 => Ok(matching.remove(0)),
        n => {
            let mut ids: Vec<&str> = matching.iter().map(|a| a.id.as_str()).collect();
            ids.sort();
            ids.truncate(10);
            fail(format!(
                "`{id}` names {n} allocations ({}{}): give more of the id",
                ids.join(", "),
                if n > 10 { ", ..." } else { "" }
            ))
        }
    }
}

async fn list(ctx: &Ctx, filter: AllocationFilter) -> CmdResult {
    let mut allocations = ctx.client.list_allocations(&filter, ctx.stale).await?.value;
    if ctx.json {
        print_json(&allocations);
        return Ok(());
    }
    if allocations.is_empty() {
        println!("no allocations");
        return Ok(());
    }
    allocations.sort_by(|a, b| {
        (a.job_id.as_str(), a.slot, a.create_index).cmp(&(
            b.job_id.as_str(),
            b.slot,
            b.create_index,
        ))
    });
    allocation_table(&allocations, now_ms(), true).print(&ctx.style);
    Ok(())
}

async fn show(ctx: &Ctx, id: &str) -> CmdResult {
    let a = resolve(ctx, id).await?;
    if ctx.json {
        print_json(&a);
        return Ok(());
    }
    let style = &ctx.style;
    let now = now_ms();
    print_fields(
        style,
        &[
            ("ID", a.id.clone()),
            ("Job", format!("{} (version {})", a.job_id, a.job_version)),
            ("Slot", a.slot.to_string()),
            ("Node", a.node_id.clone()),
            ("Desired", style.state(&serde_plain(&a.desired))),
            ("Status", style.state(&serde_plain(&a.client_state))),
            ("Health", style.state(&serde_plain(&a.health))),
            ("Restarts", a.restart_count.to_string()),
            ("Resources", resources(&a.resources)),
            ("Placed because", or_dash(&a.placement_reason)),
            ("Message", or_dash(&a.message)),
            ("Created", ago(a.created_at_ms, now)),
            ("Modified", ago(a.modified_at_ms, now)),
        ],
    );
    if !a.ports.is_empty() {
        print_heading(style, "Ports");
        let mut table = Table::new(["TASK", "NAME", "HOST PORT", "CONTAINER PORT"]);
        for p in &a.ports {
            table.row(cells![
                p.task.as_str(),
                p.name.as_str(),
                p.host_port.to_string(),
                p.container_port.to_string()
            ]);
        }
        table.print(style);
    }
    Ok(())
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

async fn logs(ctx: &Ctx, id: &str, query: LogsQuery) -> CmdResult {
    let a = resolve(ctx, id).await?;
    let mut response = ctx.client.allocation_logs(&a.id, &query).await?;
    let mut out = std::io::stdout().lock();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            Failure::Client(ClientError::Transport(format!(
                "the log stream of {} broke: {e}",
                a.id
            )))
        })?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        // A closed pipe (`| head`) ends the command quietly.
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
}

async fn restart(ctx: &Ctx, id: &str, task: Option<&str>) -> CmdResult {
    let a = resolve(ctx, id).await?;
    let after = ctx.client.restart_allocation(&a.id, task).await?;
    if ctx.json {
        print_json(&after);
    } else {
        let what = match task {
            Some(task) => format!("task `{task}` of allocation `{}`", after.id),
            None => format!("the tasks of allocation `{}`", after.id),
        };
        println!(
            "restart of {what} requested: they restart in place on node `{}`",
            after.node_id
        );
    }
    Ok(())
}

async fn stop(ctx: &Ctx, id: &str) -> CmdResult {
    let a = resolve(ctx, id).await?;
    let after = ctx.client.stop_allocation(&a.id).await?;
    if ctx.json {
        print_json(&after);
    } else {
        println!(
            "allocation `{}` of job `{}` is stopping; the scheduler places a replacement if \
             the job still wants slot {}",
            after.id, after.job_id, after.slot
        );
    }
    Ok(())
}
