//! The recorded history: what each client asked, when, and what it got back.
//!
//! A `History` is only a validated list of `Operation`s; it knows nothing of
//! the checker. Operation ids are their positions in the list, so an
//! explanation can point back at the exact operation the caller recorded.

use std::fmt;

/// What one operation did to (or saw of) one key's register.
///
/// Values are opaque tokens: the job version the server acknowledged, or
/// any token that identifies a write's effect (for instance a nonce carried in
/// the spec). `None` means "absent" (deleted, or never created).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set the register to `value` (`None` = delete).
    Write { key: String, value: Option<u64> },
    /// A linearizable read that returned `observed` (`None` = 404).
    Read { key: String, observed: Option<u64> },
}

impl Action {
    pub fn write(key: impl Into<String>, value: Option<u64>) -> Self {
        Action::Write {
            key: key.into(),
            value,
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Action::write(key, None)
    }

    pub fn read(key: impl Into<String>, observed: Option<u64>) -> Self {
        Action::Read {
            key: key.into(),
            observed,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Action::Write { key, .. } | Action::Read { key, .. } => key,
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(self, Action::Write { .. })
    }
}

/// One operation as a client saw it.
///
/// Times are monotonic nanoseconds from one clock. `complete: None` means the
/// outcome is unknown (timeout, connection reset): the write may take effect
/// at any point after `invoke`, or never. Only writes may be unknown; an
/// operation that definitely failed is simply not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: u32,
    pub invoke: u64,
    pub complete: Option<u64>,
    pub action: Action,
}

/// An operation's position in its `History`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A call that has been sent and not yet answered; hand it back to
/// `History::complete` or `History::complete_unknown`. Dropping it records
/// nothing, which is right for a call that definitely failed.
#[cfg(test)]
#[must_use = "an invocation is recorded only when it is completed"]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub client: u32,
    pub invoke: u64,
}

/// Why an operation was refused by `History::push`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidOperation {
    /// The operation completed before it was invoked.
    CompletedBeforeInvoked { invoke: u64, complete: u64 },
    /// A read without a result: a read has no effect, so an unknown read
    /// must be left out rather than recorded.
    ReadWithUnknownOutcome,
}

impl fmt::Display for InvalidOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidOperation::CompletedBeforeInvoked { invoke, complete } => write!(
                f,
                "operation completed at {complete} ns, before it was invoked at {invoke} ns"
            ),
            InvalidOperation::ReadWithUnknownOutcome => {
                write!(f, "a read needs a result; leave unanswered reads out")
            }
        }
    }
}

impl std::error::Error for InvalidOperation {}

/// Every operation of a run, in the order the caller recorded them.
#[derive(Clone, Debug, Default)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Note that `client` sent a call at `at`.
    #[cfg(test)]
    pub fn invoke(&self, client: u32, at: u64) -> Invocation {
        Invocation { client, invoke: at }
    }

    /// Record a call that was answered at `at` with the effect `action`.
    #[cfg(test)]
    pub fn complete(
        &mut self,
        call: Invocation,
        at: u64,
        action: Action,
    ) -> Result<OpId, InvalidOperation> {
        self.push(Operation {
            client: call.client,
            invoke: call.invoke,
            complete: Some(at),
            action,
        })
    }

    /// Record a write whose outcome is unknown: `value` is what it would
    /// have set.
    #[cfg(test)]
    pub fn complete_unknown(
        &mut self,
        call: Invocation,
        key: impl Into<String>,
        value: Option<u64>,
    ) -> Result<OpId, InvalidOperation> {
        self.push(Operation {
            client: call.client,
            invoke: call.invoke,
            complete: None,
            action: Action::write(key, value),
        })
    }

    /// Record a whole operation.
    pub fn push(&mut self, operation: Operation) -> Result<OpId, InvalidOperation> {
        validate(&operation)?;
        self.operations.push(operation);
        Ok(OpId(self.operations.len() - 1))
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.operations.get(id.0)
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

fn validate(operation: &Operation) -> Result<(), InvalidOperation> {
    match operation.complete {
        Some(complete) if complete < operation.invoke => {
            Err(InvalidOperation::CompletedBeforeInvoked {
                invoke: operation.invoke,
                complete,
            })
        }
        None if !operation.action.is_write() => Err(InvalidOperation::ReadWithUnknownOutcome),
        _ => Ok(()),
    }
}
