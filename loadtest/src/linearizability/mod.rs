//! Linearizability checker for single-key register histories.
//!
//! Why: the `chaos` scenario kills, pauses and partitions managers while
//! clients write and read jobs over HTTP. Raft promises that every
//! acknowledged write and every read behaves as if it happened atomically at
//! one instant between its call and its answer. This module checks a
//! recorded history against that promise, without trusting the servers.
//!
//! The model: each key (a job id) is an independent register holding a
//! version (`None` = absent). Writes set it, reads must see it. A write whose
//! outcome is unknown (timeout, reset) may take effect at any instant after
//! its call, or never.
//!
//! The algorithm (Wing & Gong's search with Lowe's and porcupine's
//! improvements):
//! - P-compositionality: a history is linearizable iff each key's
//!   sub-history is, so keys are checked one at a time.
//! - Per key, the calls and returns sit in a doubly linked list sorted by
//!   time. A depth-first search repeatedly linearizes a pending call (one
//!   before the first remaining return) that the register allows, removes it
//!   and its return from the list, and backtracks when it meets the return of
//!   an operation it could not linearize ([`search`]).
//! - A cache of (set of linearized operations, register state) prunes
//!   configurations already explored.
//! - Unknown-outcome writes have no return: the search succeeds once every
//!   completed operation is linearized, so they may be left out. Those whose
//!   value no read of the key observed are dropped up front (leaving them
//!   out can never break a linearization).
//!
//! On failure, [`explain`] names the operation the search could not get
//! past, and [`minimize`] shrinks the key's history to a few operations
//! around it that cannot be ordered even on their own. The search is
//! exponential in the worst case, so a [`Budget`] bounds it and the result
//! is then `Unknown`.

mod explain;
mod history;
mod minimize;
mod search;

#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

// Part of the API even where the chaos scenario does not name them.
#[allow(unused_imports)]
pub use explain::{Explanation, Relation, WindowOp};
#[allow(unused_imports)]
pub use history::{Action, History, InvalidOperation, OpId, Operation};

use search::{BudgetMeter, Effect, KeyOp, SearchOutcome};

/// How much work a check may do before it answers `Unknown`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// States explored, summed over all keys.
    pub max_states: Option<u64>,
    pub deadline: Option<Instant>,
}

impl Budget {
    #[cfg(test)]
    pub const UNLIMITED: Budget = Budget {
        max_states: None,
        deadline: None,
    };

    /// At most `max_states` states, no deadline.
    pub fn states(max_states: u64) -> Self {
        Budget {
            max_states: Some(max_states),
            deadline: None,
        }
    }

    /// Stop at `deadline` as well.
    pub fn until(self, deadline: Instant) -> Self {
        Budget {
            deadline: Some(deadline),
            ..self
        }
    }
}

impl Default for Budget {
    /// Two million states: a few hundred MB of cache at worst.
    fn default() -> Self {
        Budget::states(2_000_000)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    Linearizable,
    NotLinearizable {
        key: String,
        explanation: Explanation,
    },
    /// The budget ran out while checking `key` (keys are checked in order;
    /// those before it are linearizable, those after it unchecked).
    Unknown {
        key: String,
    },
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Linearizable => write!(f, "linearizable"),
            CheckResult::NotLinearizable { key, explanation } => {
                write!(f, "key {key:?} is not linearizable: {explanation}")
            }
            CheckResult::Unknown { key } => {
                write!(f, "unknown: the budget ran out while checking key {key:?}")
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    pub operations: usize,
    pub unknown_outcome_writes: usize,
    pub states_explored: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub keys: usize,
    pub operations: usize,
    pub unknown_outcome_writes: usize,
    /// Unknown-outcome writes left out because no read saw their value.
    pub unknown_writes_pruned: usize,
    pub states_explored: u64,
    /// The keys checked (all of them unless the result is not `Linearizable`).
    pub per_key: BTreeMap<String, KeyStats>,
    pub elapsed: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub result: CheckResult,
    pub stats: Stats,
}

/// States the shrinking of a failing key's window may explore (on top of
/// the budget; it stops early, with a larger window, when they run out).
const MINIMIZE_STATES: u64 = 1_000_000;

/// Check `history` with the default budget.
#[cfg(test)]
pub fn check(history: &History) -> CheckReport {
    check_within(history, Budget::default())
}

/// Check `history`, answering `Unknown` once `budget` is spent.
pub fn check_within(history: &History, budget: Budget) -> CheckReport {
    let started = Instant::now();
    let by_key = group_by_key(history);
    let mut meter = BudgetMeter::new(budget.max_states, budget.deadline);
    let mut stats = Stats {
        keys: by_key.len(),
        operations: history.len(),
        ..Stats::default()
    };
    let mut result = CheckResult::Linearizable;
    for (key, key_ops) in &by_key {
        let outcome = check_key(history, key, key_ops, &mut meter, &mut stats);
        if outcome != CheckResult::Linearizable {
            result = outcome;
            break;
        }
    }
    stats.states_explored = meter.states;
    stats.elapsed = started.elapsed();
    CheckReport { result, stats }
}

fn group_by_key(history: &History) -> BTreeMap<&str, Vec<(OpId, &Operation)>> {
    let mut by_key: BTreeMap<&str, Vec<(OpId, &Operation)>> = BTreeMap::new();
    for (index, op) in history.operations().iter().enumerate() {
        by_key
            .entry(op.action.key())
            .or_default()
            .push((OpId(index), op));
    }
    by_key
}

fn check_key(
    history: &History,
    key: &str,
    key_ops: &[(OpId, &Operation)],
    meter: &mut BudgetMeter,
    stats: &mut Stats,
) -> CheckResult {
    let (search_ops, pruned) = search_ops(key_ops);
    let states_before = meter.states;
    let outcome = search::search(&search_ops, meter);
    let unknown = key_ops
        .iter()
        .filter(|(_, op)| op.complete.is_none())
        .count();
    stats.unknown_outcome_writes += unknown;
    stats.unknown_writes_pruned += pruned;
    stats.per_key.insert(
        key.to_string(),
        KeyStats {
            operations: key_ops.len(),
            unknown_outcome_writes: unknown,
            states_explored: meter.states - states_before,
        },
    );
    match outcome {
        SearchOutcome::Linearizable => CheckResult::Linearizable,
        SearchOutcome::OutOfBudget => CheckResult::Unknown {
            key: key.to_string(),
        },
        SearchOutcome::NotLinearizable(stuck) => {
            let mut minimize_meter = BudgetMeter::new(Some(MINIMIZE_STATES), meter.deadline());
            let window: Vec<OpId> =
                minimize::minimal_window(&search_ops, stuck.op, &mut minimize_meter)
                    .into_iter()
                    .map(|i| search_ops[i].id)
                    .collect();
            let culprit = search_ops[stuck.op].id;
            CheckResult::NotLinearizable {
                key: key.to_string(),
                explanation: explain::explain(history, &window, culprit, stuck.states_tried),
            }
        }
    }
}

/// The key's operations as the search sees them, minus the unknown-outcome
/// writes that no read observed (and how many those were).
fn search_ops(key_ops: &[(OpId, &Operation)]) -> (Vec<KeyOp>, usize) {
    let observed: HashSet<Option<u64>> = key_ops
        .iter()
        .filter_map(|(_, op)| match op.action {
            Action::Read { observed, .. } => Some(observed),
            Action::Write { .. } => None,
        })
        .collect();
    let mut pruned = 0;
    let mut ops = Vec::with_capacity(key_ops.len());
    for &(id, op) in key_ops {
        let effect = match op.action {
            Action::Write { value, .. } => Effect::Set(value),
            Action::Read { observed, .. } => Effect::Expect(observed),
        };
        if op.complete.is_none() && !observed.contains(&effect_value(effect)) {
            pruned += 1;
            continue;
        }
        ops.push(KeyOp {
            id,
            invoke: op.invoke,
            complete: op.complete,
            effect,
        });
    }
    (ops, pruned)
}

fn effect_value(effect: Effect) -> Option<u64> {
    match effect {
        Effect::Set(value) | Effect::Expect(value) => value,
    }
}
