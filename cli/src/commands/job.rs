//! `gantry job ...`: submit, follow, inspect, scale, revert and stop jobs.
//!
//! `job run` follows what the submission started: the job's placement, or, when the
//! managers answer with a deployment (a service job's new or changed tasks, rolled out
//! by the managers), that deployment.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use gantry_api::client::AllocationFilter;
use gantry_api::{Allocation, Deployment, Job, JobRegistered, JobType, JobVersion};

use super::connect::{ClientArgs, Ctx};
use super::deployment_progress::{self, Ending};
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
    /// runs, or its deployment until it is rolled out.
    ///
    /// Shows how many instances are placed, running and failed, refreshed until all
    /// run (exit 0) or --deadline passes (exit 3, with why the others are not running:
    /// the instances that fit nowhere and the allocations that failed). The job stays
    /// submitted either way.
    ///
    /// When the managers answer with a deployment (a service job whose tasks are new or
    /// changed: the rollout that places or replaces its instances), it follows the
    /// deployment instead (instances healthy of those wanted) until it is successful
    /// (exit 0), failed (exit 1, with why and the version `auto_revert` registered) or
    /// cancelled (exit 1), or its canaries are healthy and await `gantry deployment
    /// promote` (exit 0), or --deadline passes (exit 3; the deployment goes on).
    Run(RunArgs),
    /// A job's summary, its latest deployment, its versions and its allocations.
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
    /// A job's kept versions, newest first, and which are stable (a deployment of them
    /// succeeded: `auto_revert` goes back to the newest such).
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

    /// How long to wait for every instance to run, or the deployment to roll out
    /// (e.g. `90s`, `5m`).
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
    if let Some(deployment_id) = registered.deployment_id.as_deref() {
        return follow_deployment(ctx, &registered, deployment_id, args.deadline).await;
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

/// `job run` after a submission answered with a deployment: its progress until it
/// finishes, waits on the operator, or `deadline` passes. With `--json`, the job is
/// printed at the end, as without a deployment.
async fn follow_deployment(
    ctx: &Ctx,
    registered: &JobRegistered,
    id: &str,
    deadline: Duration,
) -> CmdResult {
    let started = Instant::now();
    let mut progress = Progress::new(ctx.style.tty);
    let mut seen = false;
    loop {
        let deployment = match ctx.client.get_deployment(id, ctx.stale).await {
            Ok(found) => Some(found.value),
            // Deployments go with their job.
            Err(e) if e.is_not_found() && seen => {
                progress.finish();
                return Err(Failure::Message(format!(
                    "deployment {id} is gone: job `{}` was stopped and removed",
                    registered.id
                )));
            }
            // A stale read may not hold it yet: wait for it like for progress.
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        seen |= deployment.is_some();
        let waited = started.elapsed();
        if !ctx.json {
            let line = match &deployment {
                Some(d) => deployment_progress::line(d),
                None => format!("deployment {id}: not visible yet"),
            };
            progress.update(&line, &duration(waited));
        }
        let ended = deployment.as_ref().and_then(|d| Some((d, Ending::of(d)?)));
        if let Some((d, ending)) = ended {
            progress.finish();
            if ctx.json {
                print_json(&job_now(ctx, &registered.id).await?);
            }
            return match ending {
                Ending::Successful => {
                    if !ctx.json {
                        println!(
                            "{} ({})",
                            deployment_progress::success_message(d),
                            duration(waited)
                        );
                    }
                    Ok(())
                }
                Ending::AwaitsPromotion => {
                    if !ctx.json {
                        println!("{}", deployment_progress::awaiting_promotion_message(d));
                    }
                    Ok(())
                }
                Ending::Failed => Err(Failure::Message(deployment_progress::failure_message(d))),
                Ending::Cancelled => {
                    Err(Failure::Message(deployment_progress::cancelled_message(d)))
                }
            };
        }
        if waited >= deadline {
            progress.finish();
            // Why instances do not run: those that fit nowhere, those that failed.
            let (job, allocations) = job_and_allocations(ctx, &registered.id).await?;
            if ctx.json {
                print_json(&job);
            }
            let reasons = why_not(&job, &allocations, registered.index);
            return Err(Failure::Unfinished(
                deployment_progress::unfinished_message(
                    id,
                    registered,
                    deployment.as_ref(),
                    &duration(deadline),
                    &reasons,
                ),
            ));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_sub(waited))).await;
    }
}

async fn job_now(ctx: &Ctx, id: &str) -> Result<Job, Failure> {
    Ok(ctx
        .client
        .get_job(id, ctx.stale)
        .await
        .map_err(|e| or_not_found(e, no_job(id)))?
        .value)
}

fn registered_line(r: &JobRegistered) -> String {
    let mut line = format!(
        "job `{}` submitted: version {} (index {})",
        r.id, r.version, r.index
    );
    if let Some(deployment) = &r.deployment_id {
        line.push_str(&format!(", rolled out by deployment {deployment}"));
    }
    line
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
    let latest = latest_deployment(
        ctx.client
            .list_deployments(Some(id), ctx.stale)
            .await?
            .value,
    );
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
            (
                "Deployment",
                latest
                    .as_ref()
                    .map(deployment_progress::summary)
                    .unwrap_or_else(|| "-".into()),
            ),
        ],
    );
    if !job.unplaced.is_empty() {
        print_heading(style, "Unplaced (why instances fit nowhere)");
        for reason in why_not(&job, &[], u64::MAX) {
            println!("  {reason}");
        }
    }
    print_heading(style, "Versions");
    versions_table(&versions, Some(job.version), now).print(style);

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

/// The newest of a job's deployments (the one `job status` shows).
fn latest_deployment(deployments: Vec<Deployment>) -> Option<Deployment> {
    deployments.into_iter().max_by_key(|d| d.create_index)
}

/// The versions table of `job status` and `job history`: VERSION (the current one
/// marked), SUBMITTED, INDEX, REPLICAS, IMAGES, STABLE.
fn versions_table(versions: &[JobVersion], current: Option<u64>, now: u64) -> Table {
    let mut table = Table::new([
        "VERSION",
        "SUBMITTED",
        "INDEX",
        "REPLICAS",
        "IMAGES",
        "STABLE",
    ]);
    for v in versions {
        let marker = if Some(v.version) == current {
            " (current)"
        } else {
            ""
        };
        table.row(cells![
            format!("{}{marker}", v.version),
            ago(v.submitted_at_ms, now),
            v.index.to_string(),
            v.spec.replicas.to_string(),
            images(&v.spec),
            if v.stable { "yes" } else { "no" },
        ]);
    }
    table
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
    versions_table(&versions, None, now_ms()).print(&ctx.style);
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

#[cfg(test)]
mod tests {
    use super::super::deployment_progress::tests::{v2_and_v3, NOW, PLAIN};
    use super::*;

    fn version(version: u64, stable: bool) -> JobVersion {
        let spec: gantry_api::JobSpec = serde_json::from_value(serde_json::json!({
            "id": "web", "replicas": 2,
            "tasks": [{"name": "main", "image": "busybox", "resources": {"cpu_millis": 1, "memory_mb": 1}}]
        }))
        .unwrap();
        JobVersion {
            version,
            spec,
            submitted_at_ms: NOW - version * 60_000,
            index: version * 10,
            stable,
        }
    }

    #[test]
    fn versions_say_which_are_stable() {
        let versions = [version(3, false), version(2, true)];
        assert_eq!(
            versions_table(&versions, Some(3), NOW).render(&PLAIN),
            vec![
                "VERSION      SUBMITTED  INDEX  REPLICAS  IMAGES   STABLE",
                "3 (current)  3m ago     30     2         busybox  no",
                "2            2m ago     20     2         busybox  yes",
            ]
        );
        assert_eq!(
            versions_table(&versions, None, NOW).render(&PLAIN)[1],
            "3        3m ago     30     2         busybox  no"
        );
    }

    #[test]
    fn the_latest_deployment_is_the_newest_created() {
        let (old, new) = v2_and_v3();
        for list in [vec![old.clone(), new.clone()], vec![new, old]] {
            assert_eq!(
                latest_deployment(list).map(|d| d.id),
                Some("web-v3-40".to_string())
            );
        }
        assert_eq!(latest_deployment(vec![]), None);
    }

    #[test]
    fn a_submission_that_starts_a_deployment_says_so() {
        let mut registered = JobRegistered {
            id: "web".into(),
            version: 2,
            index: 12,
            deployment_id: None,
        };
        assert_eq!(
            registered_line(&registered),
            "job `web` submitted: version 2 (index 12)"
        );
        registered.deployment_id = Some("web-v2-12".into());
        assert_eq!(
            registered_line(&registered),
            "job `web` submitted: version 2 (index 12), rolled out by deployment web-v2-12"
        );
    }
}
