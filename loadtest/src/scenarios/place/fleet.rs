//! A fleet of simulated agents (fakes: `gantry_api::sim_agent::SimAgent`) living in
//! this process, attached to real managers.
//!
//! Why it exists: `place` needs thousands of nodes and `failover --agents` needs
//! hundreds, far more than real agents (and Docker) on one machine could give. Each
//! simulated agent speaks the real protocol — register, one session, heartbeats with
//! status reports — and starts nothing. This file starts them, adds up their own
//! counters (no API call, no scan of their allocations) and asks the managers which
//! of them are `ready` or `down`. Dropping a [`Fleet`] stops every agent.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gantry_api::sim_agent::{AgentCounts, SimAgent};
use gantry_api::{Client, ClientOptions, NodeStatus};

/// Agents per shared `gantry_api::Client` (one connection pool each).
const AGENTS_PER_CLIENT: usize = 500;

/// How big each simulated node says it is.
#[derive(Debug, Clone, Copy)]
pub struct NodeSize {
    pub cpu_millis: u64,
    pub memory_mb: u64,
}

pub struct Fleet {
    prefix: String,
    agents: Vec<SimAgent>,
    /// For reading nodes; the agents hold clones of the same pools.
    api: Client,
}

/// What the managers say about the fleet's nodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeTally {
    pub registered: usize,
    pub ready: usize,
    pub down: usize,
    /// Nodes whose status changed at or after the instant asked about (wall clock).
    pub changed_since: usize,
}

impl Fleet {
    /// Starts `n` agents named `<prefix>-<i>` against `urls` (every manager).
    pub fn start(urls: &[String], prefix: &str, n: usize, size: NodeSize) -> Result<Fleet> {
        let clients = (0..n.div_ceil(AGENTS_PER_CLIENT).max(1))
            .map(|_| agent_client(urls))
            .collect::<Result<Vec<Client>>>()?;
        let agents = (0..n)
            .map(|i| {
                let client = &clients[i / AGENTS_PER_CLIENT];
                let name = format!("{prefix}-{i:05}");
                SimAgent::start(client, &name, size.cpu_millis, size.memory_mb)
            })
            .collect();
        Ok(Fleet {
            prefix: prefix.to_string(),
            agents,
            api: clients[0].clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Every agent's counts added up: O(agents), one short lock each.
    pub fn counts(&self) -> AgentCounts {
        let mut total = AgentCounts::default();
        for agent in &self.agents {
            total += agent.counts();
        }
        total
    }

    /// The heartbeat TTL the managers announce (the largest any agent has seen).
    pub fn ttl(&self) -> Duration {
        self.agents
            .iter()
            .map(SimAgent::ttl)
            .max()
            .unwrap_or_default()
    }

    /// After `since`: when the last agent got its first complete set (a session
    /// again), and how many have none yet.
    pub fn sessions_back_since(&self, since: Instant) -> (Option<Instant>, usize) {
        let mut last = None;
        let mut missing = 0;
        for agent in &self.agents {
            match agent.first_complete_since(since) {
                Some(t) => last = last.max(Some(t)),
                None => missing += 1,
            }
        }
        (last, missing)
    }

    /// `GET /v1/nodes` (linearizable unless `stale`), counting only this fleet's
    /// nodes; `since_ms` is a wall-clock time in ms for [`NodeTally::changed_since`].
    pub async fn node_tally(&self, stale: bool, since_ms: u64) -> Result<NodeTally> {
        let nodes = self
            .api
            .list_nodes(stale)
            .await
            .context("GET /v1/nodes")?
            .value;
        let mut tally = NodeTally::default();
        let ours = format!("{}-", self.prefix);
        for node in nodes.iter().filter(|n| n.name.starts_with(&ours)) {
            tally.registered += 1;
            match node.status {
                NodeStatus::Ready => tally.ready += 1,
                NodeStatus::Down => tally.down += 1,
                NodeStatus::Initializing => {}
            }
            if node.status_changed_at_ms >= since_ms {
                tally.changed_since += 1;
            }
        }
        Ok(tally)
    }

    /// Polls `GET /v1/nodes` every `every` until every agent's node is `ready`;
    /// `on_poll` sees each tally (for progress). Fails at `deadline`.
    pub async fn wait_ready(
        &self,
        deadline: Instant,
        every: Duration,
        mut on_poll: impl FnMut(&NodeTally),
    ) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            let tally = self.node_tally(true, u64::MAX).await;
            if let Ok(tally) = &tally {
                on_poll(tally);
                if tally.ready == self.len() {
                    return Ok(t0.elapsed());
                }
            }
            if Instant::now() >= deadline {
                let seen = match tally {
                    Ok(t) => format!(
                        "{} registered, {} ready, {} down",
                        t.registered, t.ready, t.down
                    ),
                    Err(e) => format!("{e:#}"),
                };
                anyhow::bail!(
                    "not every one of {} agents was ready after {:.1}s: {seen}",
                    self.len(),
                    t0.elapsed().as_secs_f64()
                );
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// A client for a slice of the fleet: every manager, generous timeouts (a leader
/// under load answers heartbeats late; the TTL, not the client, decides).
fn agent_client(urls: &[String]) -> Result<Client> {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
    };
    Client::with_options(urls, None, options).context("building an agents' client")
}

/// Now, in ms since the Unix epoch (to compare with a node's `status_changed_at_ms`).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
