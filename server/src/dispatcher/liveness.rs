//! Which nodes have missed their heartbeat TTL: the leader-local bookkeeping behind
//! marking a node `down`.
//!
//! Heartbeats never go through Raft; only the verdict does. This file is pure logic on
//! instants handed in by the caller (the clock is a parameter, so tests drive it without
//! sleeping).
//!
//! **TTL.** An agent heartbeats every TTL/3. The leader sizes the TTL so that all agents
//! together send at most [`HEARTBEAT_BUDGET_PER_SEC`] heartbeats per second:
//! `ttl = max(3 s, 3 × nodes / 1000 s)`. Up to 1,000 nodes the TTL is 3 s, so a dead node
//! is marked down 3–3.5 s after its last heartbeat (TTL plus one check interval plus a
//! commit); at 5,000 nodes it is 15 s.
//!
//! **Grace.** A manager that has just become leader knows nothing of the heartbeats its
//! predecessor received. Every node it tracks first gets a deadline of twice the TTL
//! (and nothing at all expires before twice the TTL after the election), which leaves
//! agents time to find the new leader: a failover must not mark healthy nodes down.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

pub const MIN_TTL: Duration = Duration::from_secs(3);
/// Heartbeats per second the leader is sized to take from all agents together.
pub const HEARTBEAT_BUDGET_PER_SEC: u64 = 1_000;
/// Agents heartbeat this many times per TTL.
pub const HEARTBEATS_PER_TTL: u64 = 3;
/// How often the leader looks for expired nodes.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The heartbeat TTL for a cluster of `nodes` nodes.
pub fn ttl_for(nodes: usize) -> Duration {
    let budgeted =
        Duration::from_millis(nodes as u64 * HEARTBEATS_PER_TTL * 1000 / HEARTBEAT_BUDGET_PER_SEC);
    budgeted.max(MIN_TTL)
}

/// How long a node may go unheard after this manager starts leading (or first sees it).
pub fn grace_for(ttl: Duration) -> Duration {
    ttl * 2
}

#[derive(Debug, Default)]
pub struct Liveness {
    /// When this manager became leader; `None` while it is not leading.
    leading_since: Option<Instant>,
    /// Node id → when it is considered dead unless heard from.
    deadlines: HashMap<String, Instant>,
}

impl Liveness {
    /// Starts a new term of leadership: forget everything, grant everyone grace.
    pub fn became_leader(&mut self, now: Instant) {
        self.leading_since = Some(now);
        self.deadlines.clear();
    }

    pub fn lost_leadership(&mut self) {
        self.leading_since = None;
        self.deadlines.clear();
    }

    pub fn is_leading(&self) -> bool {
        self.leading_since.is_some()
    }

    /// The node's agent was heard from.
    pub fn heartbeat(&mut self, node_id: &str, now: Instant, ttl: Duration) {
        if !self.is_leading() {
            return;
        }
        let deadline = now + ttl;
        match self.deadlines.get_mut(node_id) {
            Some(existing) => *existing = (*existing).max(deadline),
            None => {
                self.deadlines.insert(node_id.to_string(), deadline);
            }
        }
    }

    /// Of the `live` nodes (those the state does not already hold down), the ones whose
    /// deadline has passed. Starts tracking live nodes not seen before (with the grace
    /// period) and stops tracking nodes no longer live.
    pub fn expired<'a>(
        &mut self,
        live: impl IntoIterator<Item = &'a str>,
        now: Instant,
        ttl: Duration,
    ) -> Vec<String> {
        let Some(since) = self.leading_since else {
            return Vec::new();
        };
        let grace = grace_for(ttl);
        let mut kept = HashMap::with_capacity(self.deadlines.len());
        let mut expired = Vec::new();
        for id in live {
            let deadline = self.deadlines.remove(id).unwrap_or_else(|| now + grace);
            if now >= deadline && now >= since + grace {
                expired.push(id.to_string());
            }
            kept.insert(id.to_string(), deadline);
        }
        self.deadlines = kept;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn ttl_grows_with_the_node_count_past_the_minimum() {
        assert_eq!(ttl_for(0), MIN_TTL);
        assert_eq!(ttl_for(20), MIN_TTL);
        assert_eq!(ttl_for(1_000), MIN_TTL);
        assert_eq!(ttl_for(2_000), Duration::from_secs(6));
        assert_eq!(ttl_for(5_000), Duration::from_secs(15));
        // The budget holds: nodes × heartbeats per TTL / TTL ≤ budget.
        for nodes in [10usize, 999, 1_001, 7_777, 20_000] {
            let per_sec = nodes as f64 * HEARTBEATS_PER_TTL as f64 / ttl_for(nodes).as_secs_f64();
            assert!(
                per_sec <= HEARTBEAT_BUDGET_PER_SEC as f64 + 1.0,
                "{nodes}: {per_sec}"
            );
        }
    }

    #[test]
    fn a_silent_node_expires_after_its_ttl_and_a_heartbeat_holds_it_off() {
        let t0 = Instant::now();
        let mut live = Liveness::default();
        live.became_leader(t0);
        // Past the grace period; both nodes heard from at 10 s.
        let t = t0 + secs(10.0);
        live.heartbeat("a", t, TTL);
        live.heartbeat("b", t, TTL);
        assert!(live.expired(["a", "b"], t + secs(2.9), TTL).is_empty());
        live.heartbeat("a", t + secs(2.9), TTL);
        assert_eq!(live.expired(["a", "b"], t + secs(3.0), TTL), vec!["b"]);
        // Still expired on the next check (the verdict may not have committed yet).
        assert_eq!(live.expired(["a", "b"], t + secs(3.2), TTL), vec!["b"]);
        // Once the state holds it down it is no longer live, and forgotten.
        assert!(live.expired(["a"], t + secs(3.4), TTL).is_empty());
        assert_eq!(live.expired(["a"], t + secs(6.0), TTL), vec!["a"]);
    }

    #[test]
    fn a_new_leader_grants_every_node_a_grace_period() {
        let t0 = Instant::now();
        let mut live = Liveness::default();
        live.became_leader(t0);
        // Nobody has heartbeated to this leader yet: nothing expires within 2 × TTL.
        for tenths in 0..60 {
            let now = t0 + secs(tenths as f64 / 10.0);
            assert!(live.expired(["a", "b"], now, TTL).is_empty(), "at {now:?}");
        }
        // "a" found the new leader in time; "b" never did.
        live.heartbeat("a", t0 + secs(5.0), TTL);
        let expired = live.expired(["a", "b"], t0 + secs(6.0), TTL);
        assert_eq!(expired, vec!["b"]);
    }

    #[test]
    fn a_heartbeat_just_before_the_election_does_not_shorten_the_grace() {
        let t0 = Instant::now();
        let mut live = Liveness::default();
        live.became_leader(t0);
        // An early heartbeat gives a deadline of t0 + 3 s, but the grace period holds.
        live.heartbeat("a", t0, TTL);
        assert!(live.expired(["a"], t0 + secs(4.0), TTL).is_empty());
        assert_eq!(live.expired(["a"], t0 + secs(6.0), TTL), vec!["a"]);
    }

    #[test]
    fn a_node_first_seen_later_gets_its_own_grace() {
        let t0 = Instant::now();
        let mut live = Liveness::default();
        live.became_leader(t0);
        // Registered long after the election, never heartbeats.
        let seen = t0 + secs(60.0);
        assert!(live.expired(["late"], seen, TTL).is_empty());
        assert!(live.expired(["late"], seen + secs(5.9), TTL).is_empty());
        assert_eq!(live.expired(["late"], seen + secs(6.0), TTL), vec!["late"]);
    }

    #[test]
    fn losing_leadership_forgets_everything_and_expires_nothing() {
        let t0 = Instant::now();
        let mut live = Liveness::default();
        live.became_leader(t0);
        live.heartbeat("a", t0, TTL);
        live.lost_leadership();
        assert!(live.expired(["a"], t0 + secs(100.0), TTL).is_empty());
        live.heartbeat("a", t0 + secs(100.0), TTL);
        assert!(live.deadlines.is_empty(), "followers track nothing");
        // Leading again, later: a fresh grace period, not the old deadline.
        let t1 = t0 + secs(200.0);
        live.became_leader(t1);
        assert!(live.expired(["a"], t1, TTL).is_empty());
        assert!(live.expired(["a"], t1 + secs(5.0), TTL).is_empty());
        assert_eq!(live.expired(["a"], t1 + secs(6.0), TTL), vec!["a"]);
    }
}
