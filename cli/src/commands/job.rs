//! `gantry job ...`: submit, follow, inspect, scale, revert and stop jobs.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use gantry_api::client::AllocationFilter;
use gantry_api::{Allocation, Job, JobRegistered, JobType};

use super::connect::{ClientArgs, Ctx};
use super::failure::{or_not_found, CmdResult, Failure, Needs};
use super::job_progress::{serde_plain, why_not, JobProgress};
use super::spec_file;
use crate::cells;
use crate::output::progress::Progress;
use crate::output::table::state;
use crate::output::time::{ago, duration, now_ms};
use crate::output::{print_fields, print_heading, print_json, Table};

/// How often `job run` looks at the job while it waits.
const POLL: Duration = Duration::from_millis(500);
/// Terminal allocations `job status` shows after the live ones.
const PAST_ALLOCATIONS_SHOWN: usize = 10;

#[derive(Args, Debug)]
pub struct JobArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Submit a job spec (JSON or YAML) and follow its placement until every instance
    /// runs.
    ///
    /// Shows how many instances are placed, running and failed, refreshed until all
    /// run (exit 0) or --deadline passes (exit 3, with why the others are not running:
    /// the instances that fit nowhere and the allocations that failed). The job stays
    /// submitted either way.
    Run(RunArgs),
    /// A job's summary, its versions and its allocations.
    Status {
        /// The job's id.
        id: String,
    },
    /// Every job.
    List,
    /// Stop a job and remove it: its allocations are stopped.
    Stop {
        /// The job's id.
        id: String,
    },
    /// Set a job's replica count (a new version of the job).
    Scale {
        /// The job's id.
        id: String,
        /// Instances to keep running.
        replicas: u32,
    },
    /// Dry run: where a spec's instances would go now, what would stop, and why an
    /// instance would fit nowhere. Changes nothing.
    Plan {
        /// The spec: a JSON or YAML file, or `-` for stdin.
        file: String,
    },
    /// A job's kept versions, newest first.
    History {
        /// The job's id.
        id: String,
    },
    /// Make an earlier version's spec the job's newest version.
    Revert {
        /// The job's id.
        id: String,
        /// The version to go back to (see `gantry job history`).
        version: u64,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The spec: a JSON or YAML file (by extension, else by content), or `-` for stdin.
    pub file: String,

    /// How long to wait for every instance to run (e.g. `90s`, `5m`).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub deadline: Duration,

    /// Return once the job is submitted, without waiting for its placement.
    #[arg(long)]
    pub detach: bool,
}

pub fn needs(command: &JobCommand) -> Needs {
    match command {
        JobCommand::Status { .. } | JobCommand::List | JobCommand::History { .. } => Needs::Read,
        // A plan changes nothing but is a POST, which the managers treat as a write.
        _ => Needs::Write,
    }
}

pub async fn run(ctx: &Ctx, command: JobCommand) -> CmdResult {
    match command {
        JobCommand::Run(args) => run_job(ctx, args).await,
        JobCommand::Status { id } => status(ctx, &id).await,
        JobCommand::List => list(ctx).await,
        JobCommand::Stop { id } => stop(ctx, &id).await,
        JobCommand::Scale { id, replicas } => scale(ctx, &id, replicas).await,
        JobCommand::Plan { file } => plan(ctx, &file).await,
        JobCommand::History { id } => history(ctx, &id).await,
        JobCommand::Revert { id, version } => revert(ctx, &id, version).await,
    }
}

fn no_job(id: &str) -> impl FnOnce() -> String + '_ {
    move || format!("no job `{id}` — `gantry job list` shows the jobs")
}

async fn run_job(ctx: &Ctx, args: RunArgs) -> CmdResult {
    let file = spec_file::read(&args.file)?;
    let registered = ctx
        .client
        .register_job_raw(file.bytes, file.content_type)
        .await?;
    if args.detach {
        if ctx.json {
            print_json(&registered);
        } else {
            println!("{}", registered_line(&registered));
        }
        return Ok(());
    }
    if !ctx.json {
        println!("{}", registered_line(&registered));
    }
    let started = Instant::now();
    let mut progress = Progress::new(ctx.style.tty);
    loop {
        let (job, allocations) = job_and_allocations(ctx, &registered.id).await?;
        let now = JobProgress::of(&job, &allocations, registered.index);
        let waited = started.elapsed();
        if !ctx.json {
            progress.update(&now.line(), &duration(waited));
        }
        if now.is_done() {
            progress.finish();
            if ctx.json {
                print_json(&job);
            } else {
                println!("{}", done_line(&now, waited));
            }
            return Ok(());
        }
        if waited >= args.deadline {
            progress.finish();
            if ctx.json {
                print_json(&job);
            }
            let mut message = format!(
                "job `{}` version {}: {} of {} instances running after {} (--deadline); it \
                 stays submitted",
                now.id,
                now.version,
                now.running + now.complete,
                now.desired,
                duration(args.deadline)
            );
            let reasons = why_not(&job, &allocations, registered.index);
            if !reasons.is_empty() {
                message.push_str(":\n  ");
                message.push_str(&reasons.join("\n  "));
            }
            return Err(Failure::Unfinished(message));
        }
        tokio::time::sleep(POLL.min(args.deadline.saturating_sub(waited))).await;
    }
}

fn registered_line(r: &JobRegistered) -> String {
    format!(
        "job `{}` submitted: version {} (index {})",
        r.id, r.version, r.index
    )
}

fn done_line(p: &JobProgress, waited: Duration) -> String {
    let what = match (p.kind, p.desired) {
        (_, 0) => "no instance wanted, none running".to_string(),
        (JobType::Batch, n) if p.complete == n => format!("all {n} instances complete"),
        (_, 1) => "its instance is running".to_string(),
        (_, n) => format!("all {n} instances running"),
    };
    format!(
        "job `{}` version {}: {what} ({})",
        p.id,
        p.version,
        duration(waited)
    )
}

async fn job_and_allocations(ctx: &Ctx, id: &str) -> Result<(Job, Vec<Allocation>), Failure> {
    let job = ctx
        .client
        .get_job(id, ctx.stale)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?
        .value;
    let filter = AllocationFilter {
        job: Some(id.to_string()),
        ..Default::default()
    };
    let allocations = ctx.client.list_allocations(&filter, ctx.stale).await?.value;
    Ok((job, allocations))
}

async fn status(ctx: &Ctx, id: &str) -> CmdResult {
    let (job, mut allocations) = job_and_allocations(ctx, id).await?;
    if ctx.json {
        print_json(&job);
        return Ok(());
    }
    let versions = ctx
        .client
        .job_versions(id)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?;
    let now = now_ms();
    let style = &ctx.style;
    let replicas = match job.spec.kind {
        JobType::Global => "- (one per node)".to_string(),
        _ => job.spec.replicas.to_string(),
    };
    print_fields(
        style,
        &[
            ("ID", job.spec.id.clone()),
            ("Type", serde_plain(&job.spec.kind)),
            ("Status", style.state(&job.status)),
            ("Version", job.version.to_string()),
            ("Replicas", replicas),
            ("Priority", job.spec.priority.to_string()),
            ("Submitted", ago(job.submitted_at_ms, now)),
            ("Modify index", job.modify_index.to_string()),
        ],
    );
    if !job.unplaced.is_empty() {
        print_heading(style, "Unplaced (why instances fit nowhere)");
        for reason in why_not(&job, &[], u64::MAX) {
            println!("  {reason}");
        }
    }
    print_heading(style, "Versions");
    let mut table = Table::new(["VERSION", "SUBMITTED", "INDEX", "REPLICAS", "IMAGES"]);
    for v in &versions {
        let current = if v.version == job.version {
            " (current)"
        } else {
            ""
        };
        table.row(cells![
            format!("{}{current}", v.version),
            ago(v.submitted_at_ms, now),
            v.index.to_string(),
            v.spec.replicas.to_string(),
            images(&v.spec),
        ]);
    }
    table.print(style);

    print_heading(style, "Allocations");
    allocations.sort_by(|a, b| {
        b.reserves_resources()
            .cmp(&a.reserves_resources())
            .then_with(|| match a.reserves_resources() {
                true => a.slot.cmp(&b.slot),
                false => b.modify_index.cmp(&a.modify_index),
            })
    });
    let live = allocations
        .iter()
        .filter(|a| a.reserves_resources())
        .count();
    let hidden = allocations
        .len()
        .saturating_sub(live + PAST_ALLOCATIONS_SHOWN);
    allocations.truncate(live + PAST_ALLOCATIONS_SHOWN);
    if allocations.is_empty() {
        println!("(none)");
    } else {
        allocation_table(&allocations, now, false).print(style);
    }
    if hidden > 0 {
        println!("({hidden} older allocations not shown: `gantry alloc list --job {id}`)");
    }
    Ok(())
}

fn images(spec: &gantry_api::JobSpec) -> String {
    spec.tasks
        .iter()
        .map(|t| t.image.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The allocations table shared by `job status`, `node status` and `alloc list`.
pub fn allocation_table(allocations: &[Allocation], now: u64, with_job: bool) -> Table {
    let mut table = if with_job {
        Table::new([
            "ID", "JOB", "VERSION", "SLOT", "NODE", "DESIRED", "STATUS", "HEALTH", "RESTARTS",
            "CREATED", "MODIFIED",
        ])
    } else {
        Table::new([
            "ID", "NODE", "SLOT", "VERSION", "DESIRED", "STATUS", "HEALTH", "RESTARTS", "CREATED",
            "MODIFIED",
        ])
    };
    for a in allocations {
        let mut row = cells![a.id.as_str()];
        if with_job {
            row.extend(cells![
                a.job_id.as_str(),
                a.job_version.to_string(),
                a.slot.to_string(),
                a.node_id.as_str()
            ]);
        } else {
            row.extend(cells![
                a.node_id.as_str(),
                a.slot.to_string(),
                a.job_version.to_string()
            ]);
        }
        row.extend(vec![
            state(serde_plain(&a.desired)),
            state(serde_plain(&a.client_state)),
            state(serde_plain(&a.health)),
        ]);
        row.extend(cells![
            a.restart_count.to_string(),
            ago(a.created_at_ms, now),
            ago(a.modified_at_ms, now)
        ]);
        table.row(row);
    }
    table
}

async fn list(ctx: &Ctx) -> CmdResult {
    let jobs = ctx.client.list_jobs(ctx.stale).await?.value;
    if ctx.json {
        print_json(&jobs);
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no jobs — submit one with `gantry job run FILE`");
        return Ok(());
    }
    let mut table = Table::new(["ID", "TYPE", "REPLICAS", "VERSION", "STATUS"]);
    for j in &jobs {
        let replicas = match j.kind {
            JobType::Global => "-".to_string(),
            _ => j.replicas.to_string(),
        };
        table.row(vec![
            j.id.as_str().into(),
            serde_plain(&j.kind).into(),
            replicas.into(),
            j.version.to_string().into(),
            state(j.status.as_str()),
        ]);
    }
    table.print(&ctx.style);
    Ok(())
}

async fn stop(ctx: &Ctx, id: &str) -> CmdResult {
    let deleted = ctx
        .client
        .delete_job(id)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?;
    if ctx.json {
        print_json(&deleted);
    } else {
        println!(
            "job `{}` stopped and removed (index {}); its allocations are being stopped",
            deleted.id, deleted.index
        );
    }
    Ok(())
}

async fn scale(ctx: &Ctx, id: &str, replicas: u32) -> CmdResult {
    let registered = ctx
        .client
        .scale_job(id, replicas)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?;
    if ctx.json {
        print_json(&registered);
    } else {
        println!(
            "job `{}` scaled to {replicas}: version {} (index {}) — `gantry job status {}` \
             follows it",
            registered.id, registered.version, registered.index, registered.id
        );
    }
    Ok(())
}

async fn plan(ctx: &Ctx, path: &str) -> CmdResult {
    let file = spec_file::read(path)?;
    let plan = ctx.client.plan_job(&file.spec).await?;
    if ctx.json {
        print_json(&plan);
        return Ok(());
    }
    let style = &ctx.style;
    println!(
        "job `{}` would be version {}: {} to place, {} to stop, {} fitting nowhere (nothing \
         changed)",
        plan.job_id,
        plan.version,
        plan.placements.len(),
        plan.stops.len(),
        plan.unplaced.len()
    );
    if !plan.placements.is_empty() {
        print_heading(style, "Placements");
        let mut table = Table::new(["SLOT", "NODE", "HOST PORTS", "REPLACES", "WHY"]);
        for p in &plan.placements {
            let ports = p
                .host_ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",");
            table.row(cells![
                p.slot.to_string(),
                p.node_id.as_str(),
                ports,
                p.replaces.clone().unwrap_or_default(),
                p.reason.as_str()
            ]);
        }
        table.print(style);
    }
    if !plan.stops.is_empty() {
        print_heading(style, "Stops");
        let mut table = Table::new(["ALLOCATION", "WHY"]);
        for s in &plan.stops {
            table.row(cells![s.id.as_str(), s.reason.as_str()]);
        }
        table.print(style);
    }
    if !plan.unplaced.is_empty() {
        print_heading(style, "Fits nowhere");
        let mut table = Table::new(["SLOT", "WHY"]);
        for u in &plan.unplaced {
            let slot = match (&u.slot, &u.node_id) {
                (Some(slot), _) => slot.to_string(),
                (None, Some(node)) => format!("node {node}"),
                (None, None) => "-".to_string(),
            };
            table.row(cells![slot, u.message.as_str()]);
        }
        table.print(style);
    }
    Ok(())
}

async fn history(ctx: &Ctx, id: &str) -> CmdResult {
    let versions = ctx
        .client
        .job_versions(id)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?;
    if ctx.json {
        print_json(&versions);
        return Ok(());
    }
    let now = now_ms();
    let mut table = Table::new(["VERSION", "SUBMITTED", "INDEX", "REPLICAS", "IMAGES"]);
    for v in &versions {
        table.row(cells![
            v.version.to_string(),
            ago(v.submitted_at_ms, now),
            v.index.to_string(),
            v.spec.replicas.to_string(),
            images(&v.spec)
        ]);
    }
    table.print(&ctx.style);
    Ok(())
}

async fn revert(ctx: &Ctx, id: &str, version: u64) -> CmdResult {
    // The managers' 404 says which is missing: the job, or the version.
    let registered = ctx.client.revert_job(id, version).await?;
    if ctx.json {
        print_json(&registered);
    } else {
        println!(
            "job `{}` reverted to version {version}'s spec: now version {} (index {})",
            registered.id, registered.version, registered.index
        );
    }
    Ok(())
}
