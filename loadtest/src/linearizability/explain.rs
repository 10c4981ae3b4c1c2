//! A person-readable account of why a key's history is not linearizable.
//!
//! The search reports the operation it could not get past: the one whose
//! return was reached latest in time while no order of the operations before
//! it left room for it. The explanation shows that operation inside a small
//! window of operations that cannot be ordered even on their own (see
//! `minimize`), each marked by how it relates in time to the culprit.

use std::fmt;

use super::history::{Action, History, OpId, Operation};
use super::search::State;

/// How a window operation relates in time to the culprit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Completed before the culprit was invoked.
    CompletedBefore,
    /// Overlaps the culprit (unknown-outcome writes invoked before the
    /// culprit returned always do).
    Concurrent,
    /// Invoked after the culprit returned.
    InvokedAfter,
    /// The operation that cannot be placed.
    Culprit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowOp {
    pub id: OpId,
    pub operation: Operation,
    pub relation: Relation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The operation no linearization can place.
    pub culprit: OpId,
    /// Register states in which the culprit was tried and refused (at most a
    /// few; empty for a write, which the register never refuses).
    pub states_tried: Vec<Option<u64>>,
    /// The culprit and operations around it that cannot be ordered even on
    /// their own (every write of a value they read is among them), sorted by
    /// invocation.
    pub window: Vec<WindowOp>,
}

/// At most this many window operations are printed.
const WINDOW_LINES_SHOWN: usize = 40;

/// Build the explanation for `culprit`, shown inside `window` (operations
/// of `history`, the culprit among them).
pub(super) fn explain(
    history: &History,
    window: &[OpId],
    culprit: OpId,
    states_tried: Vec<State>,
) -> Explanation {
    let culprit_op = history.get(culprit).expect("the culprit is in the history");
    let mut window: Vec<WindowOp> = window
        .iter()
        .map(|&id| {
            let operation = history
                .get(id)
                .expect("window operations are in the history");
            WindowOp {
                id,
                operation: operation.clone(),
                relation: relation(id, operation, culprit, culprit_op),
            }
        })
        .collect();
    window.sort_by_key(|w| (w.operation.invoke, w.id));
    let mut states_tried = states_tried;
    states_tried.sort();
    Explanation {
        culprit,
        states_tried,
        window,
    }
}

fn relation(id: OpId, op: &Operation, culprit: OpId, culprit_op: &Operation) -> Relation {
    if id == culprit {
        Relation::Culprit
    } else if op.complete.is_some_and(|end| end < culprit_op.invoke) {
        Relation::CompletedBefore
    } else if culprit_op.complete.is_some_and(|end| end < op.invoke) {
        Relation::InvokedAfter
    } else {
        Relation::Concurrent
    }
}

impl Explanation {
    fn culprit_op(&self) -> &Operation {
        &self
            .window
            .iter()
            .find(|w| w.relation == Relation::Culprit)
            .expect("the window holds the culprit")
            .operation
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let culprit = self.culprit_op();
        writeln!(
            f,
            "no order of the operations can place {} ({}).",
            self.culprit,
            describe(culprit)
        )?;
        self.write_reason(f, culprit)?;
        let origin = self.window.first().map_or(0, |w| w.operation.invoke);
        writeln!(
            f,
            "These {} operations cannot be ordered even on their own \
             (times relative to {origin} ns):",
            self.window.len()
        )?;
        for w in self.window.iter().take(WINDOW_LINES_SHOWN) {
            writeln!(f, "  {}", window_line(w, origin))?;
        }
        if self.window.len() > WINDOW_LINES_SHOWN {
            writeln!(
                f,
                "  ... and {} more",
                self.window.len() - WINDOW_LINES_SHOWN
            )?;
        }
        Ok(())
    }
}

impl Explanation {
    fn write_reason(&self, f: &mut fmt::Formatter<'_>, culprit: &Operation) -> fmt::Result {
        match &culprit.action {
            Action::Read { observed, .. } if !self.states_tried.is_empty() => writeln!(
                f,
                "It saw {}, but wherever it could take effect, every order of the \
                 operations before and around it leaves the register at {}.",
                show_value(*observed),
                list_states(&self.states_tried)
            ),
            _ => writeln!(
                f,
                "Every order of the operations before its return was explored; \
                 none leaves room for it."
            ),
        }
    }
}

fn window_line(w: &WindowOp, origin: u64) -> String {
    let marker = match w.relation {
        Relation::Culprit => "=> ",
        Relation::CompletedBefore => "   ",
        Relation::Concurrent => " ~ ",
        Relation::InvokedAfter => "   ",
    };
    let note = match w.relation {
        Relation::Culprit => "  <- cannot be placed",
        Relation::CompletedBefore => "  (completed before it was invoked)",
        Relation::Concurrent => "  (concurrent)",
        Relation::InvokedAfter => "  (invoked after it returned)",
    };
    format!(
        "{marker}{:<6} {} {}{note}",
        w.id.to_string(),
        interval(&w.operation, origin),
        describe(&w.operation)
    )
}

fn interval(op: &Operation, origin: u64) -> String {
    let start = micros(op.invoke - origin);
    match op.complete {
        Some(end) => format!("[+{start} .. +{}]", micros(end - origin)),
        None => format!("[+{start} .. unknown outcome]"),
    }
}

fn micros(nanos: u64) -> String {
    format!("{}.{:03} us", nanos / 1000, nanos % 1000)
}

fn describe(op: &Operation) -> String {
    match &op.action {
        Action::Write { value: None, .. } => format!("client {} delete", op.client),
        Action::Write { value, .. } => format!("client {} write {}", op.client, show_value(*value)),
        Action::Read { observed, .. } => {
            format!("client {} read saw {}", op.client, show_value(*observed))
        }
    }
}

/// "absent or versions 3, 4 and 9" (`states` sorted, `None` first).
fn list_states(states: &[State]) -> String {
    let versions: Vec<String> = states.iter().flatten().map(u64::to_string).collect();
    let versions = match versions.as_slice() {
        [] => None,
        [one] => Some(format!("version {one}")),
        [init @ .., last] => Some(format!("versions {} and {last}", init.join(", "))),
    };
    let absent = states.contains(&None).then(|| "absent".to_string());
    [absent, versions]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" or ")
}

/// "version 7" or "absent".
pub(super) fn show_value(state: State) -> String {
    match state {
        Some(version) => format!("version {version}"),
        None => "absent".to_string(),
    }
}
