//! What the recorded operations and the final state say about safety: no
//! acknowledged write lost, nothing that was never written, and a
//! linearizable history per key.
//!
//! Why it exists: "every acknowledged write is present" is only precise once
//! later writes to the same key are accounted for. Here an acknowledged write
//! W counts as *lost* when the final state is neither what W set nor what
//! some other write that may have taken effect after W set — one that was
//! acknowledged or unknown and did not complete before W was invoked. The
//! linearizability check (`crate::linearizability`, Wing–Gong per key) is
//! the precise form over the whole run; the final reads are part of its
//! history, so a lost write also shows there.
//!
//! The register of a key is the nonce of the job's current spec (`None` when
//! absent): registers write it, deletes clear it, reads observe it. Scales
//! keep the nonce and are left out of that history; the lost-write check
//! covers them (replicas and version).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::linearizability::{self, Action, Budget, CheckReport, CheckResult, History, Operation};

use super::workload::{JobSeen, OpKind, OpRecord, Outcome};

/// An acknowledged write the final state does not account for.
#[derive(Clone, Debug, Serialize)]
pub struct LostWrite {
    pub op: OpRecord,
    pub final_state: Option<JobSeen>,
}

/// The final state of every key (None: absent), read after healing.
pub type FinalState = BTreeMap<String, Option<JobSeen>>;

pub fn lost_writes(records: &[OpRecord], finals: &FinalState) -> Vec<LostWrite> {
    let mut by_key: HashMap<&str, Vec<&OpRecord>> = HashMap::new();
    for r in records.iter().filter(|r| may_have_applied(r)) {
        by_key.entry(&r.key).or_default().push(r);
    }
    let mut lost = Vec::new();
    for (key, writes) in &by_key {
        let final_state = finals.get(*key).copied().flatten();
        for w in writes.iter().filter(|w| is_acknowledged(w)) {
            if sets(w, final_state) {
                continue;
            }
            let explained = writes.iter().any(|s| {
                !std::ptr::eq(*s, *w) && !completed_before(s, w) && explains(s, final_state)
            });
            if !explained {
                lost.push(LostWrite {
                    op: (*w).clone(),
                    final_state,
                });
            }
        }
    }
    lost.sort_by_key(|l| l.op.invoke_ns);
    lost
}

/// A write that may be in the state: acknowledged, unknown, or a delete
/// answered 404 (which took effect on an absent job).
fn may_have_applied(r: &OpRecord) -> bool {
    r.kind != OpKind::Read && (r.outcome != Outcome::Failed || r.is_absent_delete())
}

fn is_acknowledged(r: &OpRecord) -> bool {
    r.outcome == Outcome::Ok || r.is_absent_delete()
}

/// `s` answered before `w` was sent: it cannot have taken effect after `w`.
fn completed_before(s: &OpRecord, w: &OpRecord) -> bool {
    s.outcome != Outcome::Unknown && s.complete_ns < w.invoke_ns
}

/// The final state is exactly what acknowledged write `w` left.
fn sets(w: &OpRecord, fin: Option<JobSeen>) -> bool {
    match (w.kind, fin) {
        (OpKind::Delete, None) => true,
        (OpKind::Register, Some(f)) => f.nonce == w.nonce && f.version >= w.version,
        (OpKind::Scale, Some(f)) => f.replicas == w.replicas && f.version >= w.version,
        _ => false,
    }
}

/// Write `s`, if it took effect last, could have produced the final state.
fn explains(s: &OpRecord, fin: Option<JobSeen>) -> bool {
    match (s.kind, fin) {
        (OpKind::Delete, None) => true,
        (OpKind::Register, Some(f)) => f.nonce == s.nonce,
        (OpKind::Scale, Some(f)) => f.replicas == s.replicas,
        _ => false,
    }
}

/// Something observed that no client wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Phantom {
    pub what: String,
    pub op: Option<OpRecord>,
}

/// Job ids in the final list that no register targeted, final or read
/// nonces that no register of that key carried.
pub fn phantoms(records: &[OpRecord], listed_ids: &BTreeSet<String>) -> Vec<Phantom> {
    let mut written: HashMap<&str, BTreeSet<u64>> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.kind == OpKind::Register && r.outcome != Outcome::Failed)
    {
        written.entry(&r.key).or_default().extend(r.nonce);
    }
    let mut found = Vec::new();
    for id in listed_ids
        .iter()
        .filter(|id| !written.contains_key(id.as_str()))
    {
        found.push(Phantom {
            what: format!("job {id} is in the state but no register targeted it"),
            op: None,
        });
    }
    for r in records.iter().filter(|r| r.kind == OpKind::Read && r.found) {
        let known = r
            .nonce
            .is_some_and(|n| written.get(r.key.as_str()).is_some_and(|w| w.contains(&n)));
        if !known {
            found.push(Phantom {
                what: format!(
                    "read of {} saw nonce {:?}, which no register of it carried",
                    r.key, r.nonce
                ),
                op: Some(r.clone()),
            });
        }
    }
    found
}

/// The register/delete/read history as the checker wants it, and for each
/// of its operations the index of the record it came from.
pub fn history(records: &[OpRecord]) -> (History, Vec<usize>) {
    let mut history = History::new();
    let mut origin = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(op) = to_operation(r) {
            history
                .push(op)
                .expect("records complete after they are invoked");
            origin.push(i);
        }
    }
    (history, origin)
}

fn to_operation(r: &OpRecord) -> Option<Operation> {
    let complete = match r.outcome {
        Outcome::Ok => Some(r.complete_ns),
        Outcome::Unknown => None,
        Outcome::Failed if r.is_absent_delete() => Some(r.complete_ns),
        Outcome::Failed => return None,
    };
    let action = match r.kind {
        OpKind::Register => Action::write(r.key.clone(), r.nonce),
        OpKind::Delete => Action::delete(r.key.clone()),
        // A found job without a nonce is itself a violation: give it a value
        // no write has, so the checker reports it.
        OpKind::Read if r.found => Action::read(r.key.clone(), Some(r.nonce.unwrap_or(0))),
        OpKind::Read => Action::read(r.key.clone(), None),
        OpKind::Scale => return None,
    };
    Some(Operation {
        client: r.client,
        invoke: r.invoke_ns,
        complete,
        action,
    })
}

/// Run the checker within `budget`.
pub fn check_linearizable(history: &History, budget: Budget) -> CheckReport {
    linearizability::check_within(history, budget)
}

/// The records behind a non-linearizable key's explanation window, for the
/// report (manager, outcome, status and error of each).
pub fn explanation_records<'a>(
    result: &CheckResult,
    origin: &[usize],
    records: &'a [OpRecord],
) -> Vec<&'a OpRecord> {
    match result {
        CheckResult::NotLinearizable { explanation, .. } => explanation
            .window
            .iter()
            .map(|w| &records[origin[w.id.0]])
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, outcome: Outcome, t: (u64, u64), nonce: Option<u64>) -> OpRecord {
        OpRecord {
            client: 0,
            kind,
            key: "k".into(),
            manager: 0,
            invoke_ns: t.0,
            complete_ns: t.1,
            outcome,
            nonce,
            replicas: Some(1),
            version: Some(1),
            found: false,
            status: None,
            error: None,
        }
    }

    fn finals(seen: Option<JobSeen>) -> FinalState {
        [("k".to_string(), seen)].into_iter().collect()
    }

    fn job(nonce: u64, version: u64) -> Option<JobSeen> {
        Some(JobSeen {
            nonce: Some(nonce),
            replicas: Some(1),
            version: Some(version),
        })
    }

    #[test]
    fn an_overwritten_register_is_not_lost_but_a_vanished_one_is() {
        let a = op(OpKind::Register, Outcome::Ok, (0, 10), Some(1));
        let b = op(OpKind::Register, Outcome::Ok, (20, 30), Some(2));
        assert!(lost_writes(&[a.clone(), b.clone()], &finals(job(2, 1))).is_empty());
        // The later write b is gone, the earlier a is back: b is lost.
        let lost = lost_writes(&[a, b], &finals(job(1, 1)));
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].op.nonce, Some(2));
    }

    #[test]
    fn an_unknown_delete_explains_an_absent_job() {
        let a = op(OpKind::Register, Outcome::Ok, (0, 10), Some(1));
        let d = op(OpKind::Delete, Outcome::Unknown, (5, 6), None);
        assert!(lost_writes(&[a.clone(), d], &finals(None)).is_empty());
        assert_eq!(lost_writes(&[a], &finals(None)).len(), 1);
    }

    #[test]
    fn a_lower_version_of_the_same_write_is_lost() {
        let mut a = op(OpKind::Register, Outcome::Ok, (0, 10), Some(1));
        a.version = Some(3);
        assert_eq!(lost_writes(&[a], &finals(job(1, 2))).len(), 1);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught() {
        let w1 = op(OpKind::Register, Outcome::Ok, (0, 10), Some(1));
        let w2 = op(OpKind::Register, Outcome::Ok, (20, 30), Some(2));
        let mut read = op(OpKind::Read, Outcome::Ok, (40, 50), Some(1));
        read.found = true;
        let (h, origin) = history(&[w1, w2, read]);
        let checked = check_linearizable(&h, Budget::default());
        assert!(matches!(
            checked.result,
            CheckResult::NotLinearizable { .. }
        ));
        let records = [
            op(OpKind::Register, Outcome::Ok, (0, 10), Some(1)),
            op(OpKind::Register, Outcome::Ok, (20, 30), Some(2)),
            op(OpKind::Read, Outcome::Ok, (40, 50), Some(1)),
        ];
        assert!(!explanation_records(&checked.result, &origin, &records).is_empty());
    }

    #[test]
    fn history_keeps_unknown_writes_and_drops_failed_ones() {
        let records = [
            op(OpKind::Register, Outcome::Unknown, (0, 10), Some(1)),
            op(OpKind::Register, Outcome::Failed, (0, 10), Some(2)),
            op(OpKind::Scale, Outcome::Ok, (0, 10), None),
        ];
        let (h, origin) = history(&records);
        assert_eq!(h.len(), 1);
        assert_eq!(origin, vec![0]);
        assert_eq!(h.operations()[0].complete, None);
    }
}
