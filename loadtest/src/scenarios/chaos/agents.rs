//! Simulated agents for the chaos scenario: nodes that accept every
//! placement and report it running, so that jobs turn into live allocations
//! and the checks have capacity, ports and slots to look at.
//!
//! Why simulated: real agents would start containers; the point here is the
//! managers' replicated bookkeeping under faults, and `gantry_api`'s
//! `SimAgent` speaks the real session protocol from inside this process.
//! Being in-process, their traffic is never cut by a partition (which drops
//! only traffic between managers).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use gantry_api::sim_agent::SimAgent;
use gantry_api::{Client, ClientOptions};

/// What each simulated node offers.
pub const NODE_CPU_MILLIS: u64 = 4000;
pub const NODE_MEMORY_MB: u64 = 8192;

/// Start `count` agents against every manager.
pub fn start(urls: &[String], count: usize) -> Result<Vec<SimAgent>> {
    let options = ClientOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(3),
    };
    let client = Client::with_options(urls, None, options)?;
    let pid = std::process::id();
    Ok((0..count)
        .map(|i| {
            SimAgent::start(
                &client,
                &format!("chaos-{pid}-{i:03}"),
                NODE_CPU_MILLIS,
                NODE_MEMORY_MB,
            )
        })
        .collect())
}

/// Wait until every agent has registered and opened a session.
pub async fn wait_registered(agents: &[SimAgent], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let ready = agents
            .iter()
            .filter(|a| a.node_id().is_some() && a.completes() > 0)
            .count();
        if ready == agents.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {} simulated agents registered within {timeout:?}",
                agents.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
