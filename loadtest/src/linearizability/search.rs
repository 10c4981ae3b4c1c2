//! The Wing–Gong search with Lowe's cache, for one key's register.
//!
//! Entries (one per call, one per return) sit in a doubly linked list sorted
//! by time. Walking from the head, a call may be linearized ("lifted" out of
//! the list with its return) if the register allows it in the current state
//! and the resulting (set of linearized operations, state) has not been
//! explored before; the walk then restarts from the head. Reaching a return
//! means its operation should already have taken effect: undo the last lift
//! and try the next candidate after it. Success when no return is left:
//! unknown-outcome writes have no return, so they may stay unlinearized.

use std::collections::HashSet;
use std::time::Instant;

use super::history::OpId;

/// The register's value: `None` = absent.
pub(super) type State = Option<u64>;

/// What one operation does to the register.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// A write: the register becomes this value.
    Set(State),
    /// A read: legal only if the register holds this value.
    Expect(State),
}

impl Effect {
    /// The state after this operation, or `None` if it cannot happen in `state`.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Effect::Set(value) => Some(value),
            Effect::Expect(value) if value == state => Some(state),
            Effect::Expect(_) => None,
        }
    }
}

/// One operation of the key, as the search needs it.
#[derive(Copy, Clone, Debug)]
pub(super) struct KeyOp {
    pub id: OpId,
    pub invoke: u64,
    /// `None` = unknown outcome (optional, return at +infinity).
    pub complete: Option<u64>,
    pub effect: Effect,
}

/// How many states the search may explore, and until when (shared by all keys).
#[derive(Debug)]
pub(super) struct BudgetMeter {
    max_states: Option<u64>,
    deadline: Option<Instant>,
    pub states: u64,
    steps_until_clock_check: u64,
}

/// How often the deadline is compared with the clock, in search steps.
const STEPS_PER_CLOCK_CHECK: u64 = 4096;

impl BudgetMeter {
    pub fn new(max_states: Option<u64>, deadline: Option<Instant>) -> Self {
        Self {
            max_states,
            deadline,
            states: 0,
            steps_until_clock_check: STEPS_PER_CLOCK_CHECK,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Count one newly explored state; false once the budget is spent.
    fn charge_state(&mut self) -> bool {
        self.states += 1;
        self.max_states.is_none_or(|max| self.states <= max)
    }

    /// Count one search step; false once the deadline has passed.
    fn tick(&mut self) -> bool {
        self.steps_until_clock_check -= 1;
        if self.steps_until_clock_check > 0 {
            return true;
        }
        self.steps_until_clock_check = STEPS_PER_CLOCK_CHECK;
        self.deadline
            .is_none_or(|deadline| Instant::now() < deadline)
    }
}

/// The furthest point the search reached before it had to give up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stuck {
    /// Index (into the key's ops) of the operation whose return was reached
    /// latest in time without it being linearizable.
    pub op: usize,
    /// Register states in which that operation was tried and refused.
    pub states_tried: Vec<State>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SearchOutcome {
    Linearizable,
    NotLinearizable(Stuck),
    OutOfBudget,
}

/// Is this key's history linearizable?
pub(super) fn search(ops: &[KeyOp], meter: &mut BudgetMeter) -> SearchOutcome {
    Search::new(ops).run(meter)
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum EntryKind {
    Call,
    Return,
}

/// A call or return, at `time`, of the key's op number `op`.
#[derive(Copy, Clone, Debug)]
struct Entry {
    time: u64,
    kind: EntryKind,
    op: usize,
}

/// Entries sorted by time (calls before returns at equal times, so
/// operations that touch are treated as concurrent), in a circular doubly
/// linked list whose sentinel is the index `entries.len()`.
struct EntryList {
    entries: Vec<Entry>,
    /// For each op, the index of its return entry, if it completed.
    return_entry: Vec<Option<usize>>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    fn new(ops: &[KeyOp]) -> Self {
        let entries = sorted_entries(ops);
        let mut return_entry = vec![None; ops.len()];
        for (index, entry) in entries.iter().enumerate() {
            if entry.kind == EntryKind::Return {
                return_entry[entry.op] = Some(index);
            }
        }
        let nodes = entries.len() + 1;
        let next = (0..nodes).map(|i| (i + 1) % nodes).collect();
        let prev = (0..nodes).map(|i| (i + nodes - 1) % nodes).collect();
        Self {
            entries,
            return_entry,
            next,
            prev,
        }
    }

    fn sentinel(&self) -> usize {
        self.entries.len()
    }

    fn first(&self) -> usize {
        self.next[self.sentinel()]
    }

    fn unlink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = after;
        self.prev[after] = before;
    }

    fn relink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = node;
        self.prev[after] = node;
    }

    /// Take a call and its return (if any) out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.return_entry[self.entries[call].op] {
            self.unlink(ret);
        }
    }

    /// Undo `lift` (must be the most recent lift not yet undone).
    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.return_entry[self.entries[call].op] {
            self.relink(ret);
        }
        self.relink(call);
    }
}

fn sorted_entries(ops: &[KeyOp]) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(ops.len() * 2);
    for (op, key_op) in ops.iter().enumerate() {
        entries.push(Entry {
            time: key_op.invoke,
            kind: EntryKind::Call,
            op,
        });
        if let Some(time) = key_op.complete {
            entries.push(Entry {
                time,
                kind: EntryKind::Return,
                op,
            });
        }
    }
    let kind_rank = |kind: EntryKind| match kind {
        EntryKind::Call => 0,
        EntryKind::Return => 1,
    };
    entries.sort_by_key(|entry| (entry.time, kind_rank(entry.kind), entry.op));
    entries
}

/// A fixed-size set of op indexes, hashable for the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OpSet {
    words: Vec<u64>,
}

impl OpSet {
    fn with_capacity(ops: usize) -> Self {
        Self {
            words: vec![0; ops.div_ceil(64)],
        }
    }

    fn insert(&mut self, op: usize) {
        self.words[op / 64] |= 1 << (op % 64);
    }

    fn remove(&mut self, op: usize) {
        self.words[op / 64] &= !(1 << (op % 64));
    }
}

/// At most this many refused states are kept per operation for explanations.
const STATES_TRIED_KEPT: usize = 8;

/// One linearization step, to undo when backtracking.
struct Lifted {
    call: usize,
    state_before: State,
}

struct Search<'a> {
    ops: &'a [KeyOp],
    list: EntryList,
    state: State,
    linearized: OpSet,
    /// Returns still in the list: the search succeeds when none are left.
    returns_left: usize,
    stack: Vec<Lifted>,
    explored: HashSet<(OpSet, State)>,
    /// Per op, the states in which it was tried and refused.
    refused_in: Vec<Vec<State>>,
    /// The latest return entry at which the search had to backtrack.
    furthest_stuck: Option<usize>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [KeyOp]) -> Self {
        let list = EntryList::new(ops);
        let returns_left = list.return_entry.iter().flatten().count();
        Self {
            ops,
            list,
            state: None,
            linearized: OpSet::with_capacity(ops.len()),
            returns_left,
            stack: Vec::new(),
            explored: HashSet::new(),
            refused_in: vec![Vec::new(); ops.len()],
            furthest_stuck: None,
        }
    }

    fn run(mut self, meter: &mut BudgetMeter) -> SearchOutcome {
        let mut cursor = self.list.first();
        while self.returns_left > 0 {
            if !meter.tick() {
                return SearchOutcome::OutOfBudget;
            }
            let entry = self.list.entries[cursor];
            cursor = match entry.kind {
                EntryKind::Call => match self.try_linearize(cursor, meter) {
                    Step::Linearized => self.list.first(),
                    Step::Skipped => self.list.next[cursor],
                    Step::OutOfBudget => return SearchOutcome::OutOfBudget,
                },
                EntryKind::Return => {
                    self.note_stuck(cursor);
                    match self.backtrack() {
                        Some(next) => next,
                        None => return SearchOutcome::NotLinearizable(self.stuck()),
                    }
                }
            };
        }
        SearchOutcome::Linearizable
    }

    /// Linearize the call at `call` now, if the register allows it and the
    /// resulting configuration is new.
    fn try_linearize(&mut self, call: usize, meter: &mut BudgetMeter) -> Step {
        let op = self.list.entries[call].op;
        let Some(next_state) = self.ops[op].effect.apply(self.state) else {
            self.note_refused(op);
            return Step::Skipped;
        };
        self.linearized.insert(op);
        if !self.explored.insert((self.linearized.clone(), next_state)) {
            self.linearized.remove(op);
            return Step::Skipped;
        }
        if !meter.charge_state() {
            return Step::OutOfBudget;
        }
        self.stack.push(Lifted {
            call,
            state_before: self.state,
        });
        self.state = next_state;
        self.list.lift(call);
        if self.list.return_entry[op].is_some() {
            self.returns_left -= 1;
        }
        Step::Linearized
    }

    /// Undo the last linearization; returns where to resume, or `None` if
    /// there is nothing left to undo.
    fn backtrack(&mut self) -> Option<usize> {
        let Lifted { call, state_before } = self.stack.pop()?;
        let op = self.list.entries[call].op;
        self.list.unlift(call);
        if self.list.return_entry[op].is_some() {
            self.returns_left += 1;
        }
        self.linearized.remove(op);
        self.state = state_before;
        Some(self.list.next[call])
    }

    fn note_refused(&mut self, op: usize) {
        let tried = &mut self.refused_in[op];
        if tried.len() < STATES_TRIED_KEPT && !tried.contains(&self.state) {
            tried.push(self.state);
        }
    }

    fn note_stuck(&mut self, return_entry: usize) {
        if self
            .furthest_stuck
            .is_none_or(|furthest| return_entry > furthest)
        {
            self.furthest_stuck = Some(return_entry);
        }
    }

    fn stuck(&self) -> Stuck {
        let entry = self
            .furthest_stuck
            .expect("a search only fails at a return entry");
        let op = self.list.entries[entry].op;
        Stuck {
            op,
            states_tried: self.refused_in[op].clone(),
        }
    }
}

enum Step {
    Linearized,
    Skipped,
    OutOfBudget,
}
