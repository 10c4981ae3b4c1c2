//! `gantry service ...`: service discovery, where each named port's healthy instances
//! can be reached.

use clap::{Args, Subcommand};

use super::connect::{ClientArgs, Ctx};
use super::failure::{or_not_found, CmdResult, Needs};
use crate::cells;
use crate::output::{print_json, Table};

#[derive(Args, Debug)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Every service, with how many endpoints it has, the jobs serving it and its tags.
    List,
    /// A service's endpoints: node address and host port of each running, healthy
    /// allocation.
    Show {
        /// The service's name (`<job>-<port>` unless the port names its service).
        name: String,
    },
}

pub fn needs(_: &ServiceCommand) -> Needs {
    Needs::Read
}

pub async fn run(ctx: &Ctx, command: ServiceCommand) -> CmdResult {
    match command {
        ServiceCommand::List => list(ctx).await,
        ServiceCommand::Show { name } => show(ctx, &name).await,
    }
}

async fn list(ctx: &Ctx) -> CmdResult {
    let services = ctx.client.list_services(ctx.stale).await?.value;
    if ctx.json {
        print_json(&services);
        return Ok(());
    }
    if services.is_empty() {
        println!("no services — a job's named ports become services once its allocations run");
        return Ok(());
    }
    let mut table = Table::new(["NAME", "ENDPOINTS", "JOBS", "TAGS"]);
    for s in &services {
        table.row(cells![
            s.name.as_str(),
            s.endpoints.to_string(),
            s.jobs.join(","),
            s.tags.join(",")
        ]);
    }
    table.print(&ctx.style);
    Ok(())
}

async fn show(ctx: &Ctx, name: &str) -> CmdResult {
    let endpoints = ctx
        .client
        .get_service(name, ctx.stale)
        .await
        .map_err(|e| {
            or_not_found(e, || {
                format!("no service `{name}` — `gantry service list` shows the services")
            })
        })?
        .value;
    if ctx.json {
        print_json(&endpoints);
        return Ok(());
    }
    if endpoints.is_empty() {
        println!("service `{name}` has no healthy endpoint now");
        return Ok(());
    }
    let mut table = Table::new(["ADDRESS", "ALLOCATION", "JOB", "NODE", "TAGS"]);
    for e in &endpoints {
        table.row(cells![
            e.socket_addr(),
            e.alloc_id.as_str(),
            e.job_id.as_str(),
            e.node_id.as_str(),
            e.tags.join(",")
        ]);
    }
    table.print(&ctx.style);
    Ok(())
}
