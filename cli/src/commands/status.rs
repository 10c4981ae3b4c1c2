//! `gantry status`: the cluster at a glance. Who leads, in which term, every manager
//! with its role and how far it has got (each one asked directly, so a manager that is
//! down shows as such), and how many nodes and jobs there are.
//!
//! It answers without a quorum too (each manager's own view, stale counts), and then
//! exits 1 saying how many managers are unreachable.

use clap::Args;
use futures::future::join_all;
use gantry_api::status::{LeaderRef, RaftInfo, StatusResponse};
use gantry_api::{ClientError, NodeStatus};
use serde::Serialize;

use super::connect::{ClientArgs, Ctx};
use super::failure::{fail, CmdResult, Needs};
use super::operator::leader_view;
use crate::output::table::state;
use crate::output::{print_fields, print_heading, print_json, Table};

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn needs() -> Needs {
    Needs::Read
}

/// What `gantry status --json` prints.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// The leader the managers name; `null` when none leads.
    pub leader: Option<LeaderRef>,
    pub term: u64,
    pub commit_index: u64,
    pub members: Vec<ManagerStatus>,
    /// Counted from a manager's own replica (`?stale=true`); `null` when none answered.
    pub nodes: Option<NodeCounts>,
    pub jobs: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ManagerStatus {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// What the manager says it is; `unreachable` when it did not answer.
    pub role: String,
    pub term: Option<u64>,
    pub applied_index: Option<u64>,
    /// How far the leader knows it has replicated to this manager.
    pub matched_index: Option<u64>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NodeCounts {
    pub total: usize,
    pub ready: usize,
    pub down: usize,
}

pub async fn run(ctx: &Ctx) -> CmdResult {
    let first = ctx.client.status().await?;
    let probes = join_all(first.members.iter().map(|m| async move {
        match ctx.probe_client(&m.addr) {
            Some(client) => client.status().await.map_err(|e| match e {
                ClientError::Unreachable(failures) if failures.len() == 1 => {
                    failures[0].reason.clone()
                }
                other => other.to_string(),
            }),
            None => Err(format!("invalid address {}", m.addr)),
        }
    }))
    .await;
    let raft: Option<RaftInfo> = match first.leader {
        Some(_) => leader_view(ctx).await.ok(),
        None => None,
    };
    let leader_progress = raft
        .as_ref()
        .filter(|r| r.leader.as_ref().map(|l| l.id) == Some(r.id));

    let mut members = Vec::new();
    for (m, probe) in first.members.iter().zip(probes) {
        let matched_index = leader_progress
            .and_then(|r| r.members.iter().find(|p| p.id == m.id))
            .and_then(|p| p.matched_index);
        members.push(match probe {
            Ok(s) => ManagerStatus {
                id: m.id,
                addr: m.addr.clone(),
                voter: m.voter,
                role: s.role,
                term: Some(s.term),
                applied_index: Some(s.applied_index),
                matched_index,
                error: None,
            },
            Err(e) => ManagerStatus {
                id: m.id,
                addr: m.addr.clone(),
                voter: m.voter,
                role: "unreachable".into(),
                term: None,
                applied_index: None,
                matched_index,
                error: Some(e),
            },
        });
    }
    let (nodes, jobs) = counts(ctx).await;
    let status = ClusterStatus {
        leader: first.leader.clone(),
        term: first.term,
        commit_index: first.commit_index,
        members,
        nodes,
        jobs,
    };
    if ctx.json {
        print_json(&status);
    } else {
        show(ctx, &first, &status);
    }
    if status.leader.is_none() {
        let voters: Vec<&ManagerStatus> = status.members.iter().filter(|m| m.voter).collect();
        let down = voters.iter().filter(|m| m.error.is_some()).count();
        return fail(format!(
            "no leader: {down} of {} managers unreachable — a majority must be running and \
             reach each other; check each manager's log (and `gantry status --address` of \
             each)",
            voters.len()
        ));
    }
    Ok(())
}

/// Node and job counts from a manager's own replica, so they show without a quorum.
async fn counts(ctx: &Ctx) -> (Option<NodeCounts>, Option<usize>) {
    let nodes = ctx.client.list_nodes(true).await.ok().map(|n| NodeCounts {
        total: n.value.len(),
        ready: n
            .value
            .iter()
            .filter(|n| n.status == NodeStatus::Ready)
            .count(),
        down: n
            .value
            .iter()
            .filter(|n| n.status == NodeStatus::Down)
            .count(),
    });
    let jobs = ctx.client.list_jobs(true).await.ok().map(|j| j.value.len());
    (nodes, jobs)
}

fn show(ctx: &Ctx, first: &StatusResponse, status: &ClusterStatus) {
    let style = &ctx.style;
    let leader = match &status.leader {
        Some(l) => format!("manager {} ({})", l.id, l.addr),
        None => style.state("none"),
    };
    let nodes = match &status.nodes {
        Some(n) => format!("{} ({} ready, {} down)", n.total, n.ready, n.down),
        None => "unknown".into(),
    };
    print_fields(
        style,
        &[
            ("Leader", leader),
            ("Term", status.term.to_string()),
            ("Commit index", status.commit_index.to_string()),
            ("Asked", format!("manager {}", first.id)),
            ("Nodes", nodes),
            (
                "Jobs",
                status.jobs.map_or("unknown".into(), |j| j.to_string()),
            ),
        ],
    );
    print_heading(style, "Managers");
    let mut table = Table::new([
        "ID", "ADDRESS", "ROLE", "VOTER", "TERM", "APPLIED", "MATCHED",
    ]);
    let dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for m in &status.members {
        table.row(vec![
            m.id.to_string().into(),
            m.addr.as_str().into(),
            state(m.role.as_str()),
            if m.voter { "yes" } else { "no" }.into(),
            dash(m.term).into(),
            dash(m.applied_index).into(),
            dash(m.matched_index).into(),
        ]);
    }
    table.print(style);
    for m in status.members.iter().filter(|m| m.error.is_some()) {
        println!(
            "manager {} ({}): {}",
            m.id,
            m.addr,
            m.error.as_deref().unwrap_or_default()
        );
    }
}
