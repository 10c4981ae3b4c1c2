//! `gantry deployment ...`: rollouts of new job versions: list them, inspect one with
//! its allocations, and the operator's say over a running one (promote its canaries,
//! fail it, pause and resume it).
//!
//! A deployment may be named by a unique prefix of its id (`web-v2` for
//! `web-v2-1234`), as long as no other deployment starts the same way.

use clap::{Args, Subcommand};
use gantry_api::client::{AllocationFilter, DeploymentAction};
use gantry_api::{Allocation, Deployment, DesiredState};

use super::connect::{ClientArgs, Ctx};
use super::deployment_progress::{canaries_cell, healthy_cell, reverted_as};
use super::failure::{fail, or_not_found, CmdResult, Failure, Needs};
use super::job_progress::serde_plain;
use crate::output::table::state;
use crate::output::time::{ago, now_ms};
use crate::output::{print_fields, print_heading, print_json, Style, Table};

#[derive(Args, Debug)]
pub struct DeploymentArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: DeploymentCommand,
}

#[derive(Subcommand, Debug)]
pub enum DeploymentCommand {
    /// Deployments, newest first, optionally only a job's.
    List {
        /// Only this job's.
        #[arg(long)]
        job: Option<String>,
    },
    /// One deployment: its progress, its update strategy, and the allocations it
    /// placed.
    Status {
        /// The deployment's id (or a unique prefix).
        id: String,
    },
    /// Promote a deployment's canaries: the rest of the job's instances are then
    /// replaced by the new version.
    Promote {
        /// The deployment's id (or a unique prefix).
        id: String,
    },
    /// Fail a running deployment now; with `auto_revert` the job goes back to its last
    /// stable version.
    Fail {
        /// The deployment's id (or a unique prefix).
        id: String,
    },
    /// Hold a deployment: nothing more is replaced until it is resumed.
    Pause {
        /// The deployment's id (or a unique prefix).
        id: String,
    },
    /// Let a paused deployment go on.
    Resume {
        /// The deployment's id (or a unique prefix).
        id: String,
    },
}

pub fn needs(command: &DeploymentCommand) -> Needs {
    match command {
        DeploymentCommand::List { .. } | DeploymentCommand::Status { .. } => Needs::Read,
        _ => Needs::Write,
    }
}

pub async fn run(ctx: &Ctx, command: DeploymentCommand) -> CmdResult {
    match command {
        DeploymentCommand::List { job } => list(ctx, job.as_deref()).await,
        DeploymentCommand::Status { id } => show(ctx, &id).await,
        DeploymentCommand::Promote { id } => act(ctx, &id, DeploymentAction::Promote).await,
        DeploymentCommand::Fail { id } => act(ctx, &id, DeploymentAction::Fail).await,
        DeploymentCommand::Pause { id } => act(ctx, &id, DeploymentAction::Pause).await,
        DeploymentCommand::Resume { id } => act(ctx, &id, DeploymentAction::Resume).await,
    }
}

fn no_deployment(id: &str) -> String {
    format!("no deployment `{id}` — `gantry deployment list` shows the deployments")
}

/// The deployment named by `id`: exactly, or by a unique prefix.
async fn resolve(ctx: &Ctx, id: &str) -> Result<Deployment, Failure> {
    match ctx.client.get_deployment(id, ctx.stale).await {
        Ok(found) => return Ok(found.value),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let all = ctx.client.list_deployments(None, ctx.stale).await?.value;
    by_prefix(id, all)
}

/// The one deployment whose id starts with `prefix`; none or several is an error that
/// says so (naming up to ten of them).
fn by_prefix(prefix: &str, all: Vec<Deployment>) -> Result<Deployment, Failure> {
    let mut matching: Vec<Deployment> = all
        .into_iter()
        .filter(|d| d.id.starts_with(prefix))
        .collect();
    match matching.len() {
        0 => fail(no_deployment(prefix)),
        1 => Ok(matching.remove(0)),
        n => {
            let mut ids: Vec<&str> = matching.iter().map(|d| d.id.as_str()).collect();
            ids.sort();
            ids.truncate(10);
            fail(format!(
                "`{prefix}` names {n} deployments ({}{}): give more of the id",
                ids.join(", "),
                if n > 10 { ", ..." } else { "" }
            ))
        }
    }
}

async fn list(ctx: &Ctx, job: Option<&str>) -> CmdResult {
    let mut deployments = ctx.client.list_deployments(job, ctx.stale).await?.value;
    if ctx.json {
        print_json(&deployments);
        return Ok(());
    }
    if deployments.is_empty() {
        match job {
            Some(job) => println!("no deployments of job `{job}`"),
            None => {
                println!("no deployments — a new version of a job whose tasks changed starts one")
            }
        }
        return Ok(());
    }
    deployments.sort_by_key(|d| std::cmp::Reverse(d.create_index));
    deployment_table(&deployments, now_ms()).print(&ctx.style);
    Ok(())
}

/// ID, JOB, VERSION, STATUS, HEALTHY, CANARIES, UPDATED, DESCRIPTION.
pub fn deployment_table(deployments: &[Deployment], now: u64) -> Table {
    let mut table = Table::new([
        "ID",
        "JOB",
        "VERSION",
        "STATUS",
        "HEALTHY",
        "CANARIES",
        "UPDATED",
        "DESCRIPTION",
    ]);
    for d in deployments {
        table.row(vec![
            d.id.as_str().into(),
            d.job_id.as_str().into(),
            d.job_version.to_string().into(),
            state(d.status.as_str()),
            healthy_cell(d).into(),
            canaries_cell(d).into(),
            ago(d.modified_at_ms, now).into(),
            d.description.as_str().into(),
        ]);
    }
    table
}

/// The allocations a deployment placed: ID, NODE, SLOT, CANARY, STATUS, HEALTH,
/// HEALTHY SINCE.
pub fn deployment_allocation_table(allocations: &[Allocation], now: u64) -> Table {
    let mut table = Table::new([
        "ID",
        "NODE",
        "SLOT",
        "CANARY",
        "STATUS",
        "HEALTH",
        "HEALTHY SINCE",
    ]);
    for a in allocations {
        // Told to stop but not yet reported gone: say it is on its way out.
        let status = if a.desired == DesiredState::Stop && !a.client_state.is_terminal() {
            format!("{} (stopping)", serde_plain(&a.client_state))
        } else {
            serde_plain(&a.client_state)
        };
        table.row(vec![
            a.id.as_str().into(),
            a.node_id.as_str().into(),
            a.slot.to_string().into(),
            if a.canary { "yes" } else { "-" }.into(),
            state(status),
            state(serde_plain(&a.health)),
            a.healthy_since_ms
                .map(|at| ago(at, now))
                .unwrap_or_else(|| "-".into())
                .into(),
        ]);
    }
    table
}

async fn show(ctx: &Ctx, id: &str) -> CmdResult {
    let d = resolve(ctx, id).await?;
    if ctx.json {
        print_json(&d);
        return Ok(());
    }
    let filter = AllocationFilter {
        job: Some(d.job_id.clone()),
        ..Default::default()
    };
    let mut allocations: Vec<Allocation> = ctx
        .client
        .list_allocations(&filter, ctx.stale)
        .await?
        .value
        .into_iter()
        .filter(|a| a.deployment_id.as_deref() == Some(d.id.as_str()))
        .collect();
    allocations.sort_by(|a, b| {
        b.reserves_resources()
            .cmp(&a.reserves_resources())
            .then_with(|| (a.slot, a.create_index).cmp(&(b.slot, b.create_index)))
    });
    let style = &ctx.style;
    let now = now_ms();
    print_fields(style, &fields(style, &d, now));
    print_heading(style, "Update strategy");
    print_fields(style, &strategy_fields(&d));
    print_heading(style, "Allocations");
    if allocations.is_empty() {
        println!("(none yet)");
    } else {
        deployment_allocation_table(&allocations, now).print(style);
    }
    if d.awaits_promotion() && d.status.is_active() {
        println!();
        println!(
            "the canaries wait for promotion: `gantry deployment promote {}` rolls out the \
             rest",
            d.id
        );
    }
    Ok(())
}

/// The deployment's own fields, as `deployment status` shows them.
fn fields(style: &Style, d: &Deployment, now: u64) -> Vec<(&'static str, String)> {
    let healthy = if d.unhealthy > 0 {
        format!("{} ({} unhealthy)", healthy_cell(d), d.unhealthy)
    } else {
        healthy_cell(d)
    };
    vec![
        ("ID", d.id.clone()),
        ("Job", format!("{} (version {})", d.job_id, d.job_version)),
        ("Status", style.state(d.status.as_str())),
        (
            "Description",
            if d.description.is_empty() {
                "-".into()
            } else {
                d.description.clone()
            },
        ),
        ("Healthy", healthy),
        ("Placed", d.placed.to_string()),
        ("Canaries", canaries_cell(d)),
        (
            "Reverted to",
            d.reverted_to
                .map(|v| format!("version {v} (the last stable version's spec)"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("Created", ago(d.created_at_ms, now)),
        ("Updated", ago(d.modified_at_ms, now)),
        ("Modify index", d.modify_index.to_string()),
    ]
}

/// The strategy it runs with (the job's `update` block, or the defaults).
fn strategy_fields(d: &Deployment) -> Vec<(&'static str, String)> {
    let s = &d.strategy;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    vec![
        ("Max parallel", s.max_parallel.to_string()),
        ("Min healthy", s.min_healthy.to_string()),
        ("Healthy deadline", s.healthy_deadline.to_string()),
        ("Canaries", s.canary.to_string()),
        ("Auto promote", yes_no(s.auto_promote)),
        ("Auto revert", yes_no(s.auto_revert)),
        ("Order", serde_plain(&s.order)),
    ]
}

async fn act(ctx: &Ctx, id: &str, action: DeploymentAction) -> CmdResult {
    let d = resolve(ctx, id).await?;
    let changed = ctx
        .client
        .deployment_action(&d.id, action)
        .await
        .map_err(|e| or_not_found(e, || no_deployment(&d.id)))?;
    if ctx.json {
        print_json(&changed);
    } else {
        println!(
            "{}",
            action_message(action, &changed.deployment, changed.index)
        );
    }
    Ok(())
}

/// What an operator's action did, in a sentence that says what comes next.
fn action_message(action: DeploymentAction, d: &Deployment, index: u64) -> String {
    let id = &d.id;
    let follow = format!("`gantry deployment status {id}` follows it");
    match action {
        DeploymentAction::Promote => format!(
            "deployment {id} promoted (index {index}): the rest of job `{}` is replaced by \
             version {} — {follow}",
            d.job_id, d.job_version
        ),
        DeploymentAction::Fail => match d.reverted_to {
            Some(version) => format!(
                "deployment {id} failed (index {index}); job `{}` {} — `gantry job status {}` \
                 follows it",
                d.job_id,
                reverted_as(version),
                d.job_id
            ),
            None => format!("deployment {id} failed (index {index})"),
        },
        DeploymentAction::Pause => format!(
            "deployment {id} paused (index {index}): nothing more is replaced until \
             `gantry deployment resume {id}`"
        ),
        DeploymentAction::Resume => format!("deployment {id} resumed (index {index}) — {follow}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::deployment_progress::tests::{deployment, v2_and_v3, NOW, PLAIN};
    use super::*;
    use gantry_api::{ClientState, DeploymentStatus, Health, Resources};

    #[test]
    fn the_list_shows_progress_canaries_and_relative_times() {
        let mut canary = deployment(1);
        canary.placed = 1;
        canary.healthy = 1;
        canary.modified_at_ms = NOW - 3_000;
        canary.description = "1 canary healthy, awaiting promotion".into();
        let mut done = deployment(0);
        done.id = "web-v1-3".into();
        done.job_version = 1;
        done.status = DeploymentStatus::Successful;
        done.healthy = 4;
        done.placed = 4;
        done.modified_at_ms = NOW - 120_000;
        done.description = "4 of 4 instances healthy".into();
        assert_eq!(
            deployment_table(&[canary, done], NOW).render(&PLAIN),
            vec![
                "ID         JOB  VERSION  STATUS      HEALTHY  CANARIES                UPDATED  \
                 DESCRIPTION",
                "web-v2-12  web  2        running     1/4      1 (awaiting promotion)  3s ago   \
                 1 canary healthy, awaiting promotion",
                "web-v1-3   web  1        successful  4/4      -                       2m ago   \
                 4 of 4 instances healthy",
            ]
        );
    }

    fn alloc(id: &str, slot: u32, canary: bool, healthy_since_ms: Option<u64>) -> Allocation {
        Allocation {
            id: id.into(),
            job_id: "web".into(),
            job_version: 2,
            slot,
            node_id: "n1".into(),
            resources: Resources {
                cpu_millis: 1,
                memory_mb: 1,
            },
            ports: vec![],
            desired: DesiredState::Run,
            client_state: ClientState::Running,
            health: if healthy_since_ms.is_some() {
                Health::Healthy
            } else {
                Health::Unknown
            },
            restart_count: 0,
            restart_requests: 0,
            restart_task: None,
            deployment_id: Some("web-v2-12".into()),
            canary,
            healthy_since_ms,
            message: String::new(),
            placement_reason: String::new(),
            created_at_ms: 0,
            modified_at_ms: 0,
            create_index: 1,
            modify_index: 1,
        }
    }

    #[test]
    fn the_allocations_of_a_deployment_show_canaries_and_health() {
        let mut stopping = alloc("web-1-bb", 1, false, None);
        stopping.desired = DesiredState::Stop;
        let rows = deployment_allocation_table(
            &[alloc("web-4-aa", 4, true, Some(NOW - 65_000)), stopping],
            NOW,
        )
        .render(&PLAIN);
        assert_eq!(
            rows,
            vec![
                "ID        NODE  SLOT  CANARY  STATUS              HEALTH   HEALTHY SINCE",
                "web-4-aa  n1    4     yes     running             healthy  1m ago",
                "web-1-bb  n1    1     -       running (stopping)  unknown  -",
            ]
        );
    }

    #[test]
    fn a_prefix_names_one_deployment_or_says_which_it_could_be() {
        let (a, b) = v2_and_v3();
        let all = || vec![a.clone(), b.clone()];
        assert_eq!(by_prefix("web-v3", all()).unwrap().id, "web-v3-40");
        match by_prefix("web-v", all()) {
            Err(Failure::Message(m)) => assert_eq!(
                m,
                "`web-v` names 2 deployments (web-v2-12, web-v3-40): give more of the id"
            ),
            other => panic!("{other:?}"),
        }
        match by_prefix("db", all()) {
            Err(Failure::Message(m)) => assert!(m.starts_with("no deployment `db`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_and_strategy() {
        let mut d = deployment(1);
        d.strategy.auto_revert = true;
        d.status = DeploymentStatus::Failed;
        d.unhealthy = 1;
        d.reverted_to = Some(1);
        let shown = fields(&PLAIN, &d, NOW);
        let get = |key: &str| {
            shown
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("Healthy"), "0/4 (1 unhealthy)");
        assert_eq!(
            get("Reverted to"),
            "version 1 (the last stable version's spec)"
        );
        assert_eq!(get("Canaries"), "1");
        assert_eq!(get("Description"), "-");
        let strategy = strategy_fields(&d);
        assert!(strategy.contains(&("Min healthy", "10s".to_string())));
        assert!(strategy.contains(&("Healthy deadline", "5m".to_string())));
        assert!(strategy.contains(&("Order", "stop-first".to_string())));
        assert!(strategy.contains(&("Auto revert", "yes".to_string())));
    }

    #[test]
    fn actions_say_what_comes_next() {
        let mut d = deployment(1);
        d.promoted = true;
        assert_eq!(
            action_message(DeploymentAction::Promote, &d, 40),
            "deployment web-v2-12 promoted (index 40): the rest of job `web` is replaced by \
             version 2 — `gantry deployment status web-v2-12` follows it"
        );
        d.status = DeploymentStatus::Failed;
        assert_eq!(
            action_message(DeploymentAction::Fail, &d, 41),
            "deployment web-v2-12 failed (index 41)"
        );
        d.reverted_to = Some(1);
        assert_eq!(
            action_message(DeploymentAction::Fail, &d, 41),
            "deployment web-v2-12 failed (index 41); job `web` reverted to the last stable \
             version's spec as version 1 — `gantry job status web` follows it"
        );
        d.status = DeploymentStatus::Paused;
        assert!(action_message(DeploymentAction::Pause, &d, 42)
            .contains("until `gantry deployment resume web-v2-12`"));
    }
}
