//! `gantry node ...`: the worker nodes, their eligibility, and draining them.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use gantry_api::{Eligibility, Node};

use super::connect::{ClientArgs, Ctx};
use super::failure::{or_not_found, CmdResult, Failure, Needs};
use super::job::allocation_table;
use super::job_progress::serde_plain;
use crate::output::progress::Progress;
use crate::output::table::state;
use crate::output::time::{ago, duration, now_ms};
use crate::output::{print_fields, print_heading, print_json, resources, Table};

/// How often `node drain` looks at the node while it waits.
const POLL: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: NodeCommand,
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Every node with its status, eligibility and resources.
    List,
    /// One node: resources (total, reserved, free), labels, and its allocations.
    Status {
        /// The node's id (its agent's --name).
        id: String,
    },
    /// Drain a node: no new work, and what runs there moves elsewhere (new before old).
    ///
    /// Follows the drain until no allocation is left on the node (exit 0; the node is
    /// then left ineligible) or --deadline passes (exit 3). The deadline only ends the
    /// wait: the drain itself goes on until the node is empty or --disable cancels it.
    Drain(DrainArgs),
    /// Allow or forbid new work on a node (what runs there stays).
    Eligibility {
        /// The node's id.
        id: String,
        #[arg(value_enum)]
        eligibility: EligibilityArg,
    },
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    /// The node's id.
    pub id: String,
    /// Cancel the node's drain instead (what already moved stays where it is).
    #[arg(long)]
    pub disable: bool,
    /// How long to follow the drain (e.g. `90s`, `10m`).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Return once the drain is started, without following it.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EligibilityArg {
    Eligible,
    Ineligible,
}

pub fn needs(command: &NodeCommand) -> Needs {
    match command {
        NodeCommand::List | NodeCommand::Status { .. } => Needs::Read,
        _ => Needs::Write,
    }
}

pub async fn run(ctx: &Ctx, command: NodeCommand) -> CmdResult {
    match command {
        NodeCommand::List => list(ctx).await,
        NodeCommand::Status { id } => status(ctx, &id).await,
        NodeCommand::Drain(args) => drain(ctx, args).await,
        NodeCommand::Eligibility { id, eligibility } => {
            let eligibility = match eligibility {
                EligibilityArg::Eligible => Eligibility::Eligible,
                EligibilityArg::Ineligible => Eligibility::Ineligible,
            };
            set_eligibility(ctx, &id, eligibility).await
        }
    }
}

fn no_node(id: &str) -> impl FnOnce() -> String + '_ {
    move || format!("no node `{id}` — `gantry node list` shows the nodes")
}

async fn list(ctx: &Ctx) -> CmdResult {
    let nodes = ctx.client.list_nodes(ctx.stale).await?.value;
    if ctx.json {
        print_json(&nodes);
        return Ok(());
    }
    if nodes.is_empty() {
        println!("no nodes — start an agent with `gantry agent --managers ...`");
        return Ok(());
    }
    let now = now_ms();
    let mut table = Table::new([
        "ID",
        "ADDRESS",
        "STATUS",
        "ELIGIBILITY",
        "DRAIN",
        "CPU",
        "MEMORY",
        "DRIVERS",
        "SINCE",
    ]);
    for n in &nodes {
        table.row(vec![
            n.id.as_str().into(),
            n.address.as_str().into(),
            state(serde_plain(&n.status)),
            state(serde_plain(&n.eligibility)),
            if n.drain {
                state("draining")
            } else {
                "no".into()
            },
            format!("{}m", n.resources.cpu_millis).into(),
            format!("{} MB", n.resources.memory_mb).into(),
            n.drivers.join(",").into(),
            ago(n.status_changed_at_ms, now).into(),
        ]);
    }
    table.print(&ctx.style);
    Ok(())
}

async fn status(ctx: &Ctx, id: &str) -> CmdResult {
    let detail = ctx
        .client
        .get_node(id, ctx.stale)
        .await
        .map_err(|e| or_not_found(e, no_node(id)))?
        .value;
    if ctx.json {
        print_json(&detail);
        return Ok(());
    }
    let style = &ctx.style;
    let now = now_ms();
    let n = &detail.node;
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    print_fields(
        style,
        &[
            ("ID", n.id.clone()),
            ("Address", n.address.clone()),
            (
                "Status",
                format!(
                    "{} ({})",
                    style.state(&serde_plain(&n.status)),
                    ago(n.status_changed_at_ms, now)
                ),
            ),
            ("Eligibility", style.state(&serde_plain(&n.eligibility))),
            ("Drain", if n.drain { "yes".into() } else { "no".into() }),
            ("Drivers", n.drivers.join(", ")),
            (
                "Labels",
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels
                },
            ),
            (
                "Agent endpoint",
                n.agent_addr.clone().unwrap_or_else(|| "-".into()),
            ),
            (
                "Port range",
                format!("{}-{}", n.port_range.start, n.port_range.end),
            ),
            ("Registered", ago(n.registered_at_ms, now)),
            ("Resources", resources(&n.resources)),
            ("Reserved", resources(&detail.reserved)),
            ("Free", resources(&detail.free)),
        ],
    );
    print_heading(style, "Allocations");
    let mut allocations = detail.allocations.clone();
    allocations.sort_by(|a, b| {
        b.reserves_resources()
            .cmp(&a.reserves_resources())
            .then_with(|| b.modify_index.cmp(&a.modify_index))
    });
    if allocations.is_empty() {
        println!("(none)");
    } else {
        allocation_table(&allocations, now, true).print(style);
    }
    Ok(())
}

async fn drain(ctx: &Ctx, args: DrainArgs) -> CmdResult {
    let id = args.id.as_str();
    let node = ctx
        .client
        .drain_node(id, !args.disable)
        .await
        .map_err(|e| or_not_found(e, no_node(id)))?;
    if args.disable || args.detach {
        if ctx.json {
            print_json(&node);
        } else if args.disable {
            let hint = match node.eligibility {
                Eligibility::Eligible => "it takes new work".to_string(),
                Eligibility::Ineligible => format!(
                    "it is ineligible: `gantry node eligibility {id} eligible` lets it take \
                     new work"
                ),
            };
            println!("drain of node `{id}` cancelled; {hint}");
        } else {
            println!("node `{id}` is draining — `gantry node status {id}` follows it");
        }
        return Ok(());
    }
    let started = Instant::now();
    let mut progress = Progress::new(ctx.style.tty);
    let mut initial = None;
    loop {
        let detail = ctx
            .client
            .get_node(id, ctx.stale)
            .await
            .map_err(|e| or_not_found(e, no_node(id)))?
            .value;
        let left: Vec<_> = detail
            .allocations
            .iter()
            .filter(|a| a.reserves_resources())
            .collect();
        let initial = *initial.get_or_insert(left.len());
        let waited = started.elapsed();
        if !ctx.json {
            progress.update(
                &format!("node {id}: {} of {initial} allocations left", left.len()),
                &duration(waited),
            );
        }
        if left.is_empty() {
            progress.finish();
            if ctx.json {
                print_json(&detail);
            } else {
                println!(
                    "node `{id}` drained: no allocation left ({}); it is {} and takes no new \
                     work until `gantry node eligibility {id} eligible`",
                    duration(waited),
                    serde_plain(&detail.node.eligibility)
                );
            }
            return Ok(());
        }
        if waited >= args.deadline {
            progress.finish();
            if ctx.json {
                print_json(&detail);
            }
            let remaining = left
                .iter()
                .map(|a| format!("{} ({}, {})", a.id, a.job_id, serde_plain(&a.client_state)))
                .collect::<Vec<_>>()
                .join("\n  ");
            return Err(Failure::Unfinished(format!(
                "node `{id}` still holds {} allocations after {} (--deadline); the drain goes \
                 on (`gantry node status {id}`):\n  {remaining}",
                left.len(),
                duration(args.deadline)
            )));
        }
        tokio::time::sleep(POLL.min(args.deadline.saturating_sub(waited))).await;
    }
}

async fn set_eligibility(ctx: &Ctx, id: &str, eligibility: Eligibility) -> CmdResult {
    let node: Node = ctx
        .client
        .set_node_eligibility(id, eligibility)
        .await
        .map_err(|e| or_not_found(e, no_node(id)))?;
    if ctx.json {
        print_json(&node);
    } else {
        let what = match node.eligibility {
            Eligibility::Eligible => "takes new work",
            Eligibility::Ineligible => "takes no new work (what runs there stays)",
        };
        println!(
            "node `{id}` is {}: it {what}",
            serde_plain(&node.eligibility)
        );
    }
    Ok(())
}
