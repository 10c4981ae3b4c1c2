//! Shrink a key's failing history to a small set of operations that, on its
//! own, cannot be ordered: the window an explanation shows.
//!
//! A subset is a valid witness only if it is closed under sources: every
//! write of a value one of its reads saw is in it. Then any linearization of
//! the whole history, restricted to the subset, would linearize the subset
//! (each read's last preceding write is still there), so a subset that
//! cannot be linearized proves the whole history cannot either.
//!
//! The shrinking is delta-debugging style: try to drop chunks of operations
//! (a write drags along the reads of its value), keep a drop if the rest is
//! still not linearizable, halve the chunks when nothing more can go. The
//! culprit the search named is never dropped.

use super::search::{self, BudgetMeter, Effect, KeyOp, SearchOutcome, State};

/// Indexes into `ops` of a small, source-closed, non-linearizable subset that
/// contains `culprit`. Stops shrinking (keeping a valid witness) when
/// `meter` runs out.
pub(super) fn minimal_window(ops: &[KeyOp], culprit: usize, meter: &mut BudgetMeter) -> Vec<usize> {
    let mut kept = starting_window(ops, culprit, meter);
    let mut chunk = (count(&kept) / 2).max(1);
    loop {
        let removed_any = drop_chunks(ops, culprit, &mut kept, chunk, meter);
        if !removed_any && chunk == 1 {
            break;
        }
        if !removed_any {
            chunk /= 2;
        }
    }
    members(&kept)
}

/// The operations invoked before the culprit returned, plus their sources,
/// if those already fail; else everything.
fn starting_window(ops: &[KeyOp], culprit: usize, meter: &mut BudgetMeter) -> Vec<bool> {
    let horizon = ops[culprit].complete.unwrap_or(u64::MAX);
    let mut prefix: Vec<bool> = ops.iter().map(|op| op.invoke <= horizon).collect();
    add_sources(ops, &mut prefix);
    if fails(ops, &prefix, meter) {
        prefix
    } else {
        vec![true; ops.len()]
    }
}

/// Add every write of a value some kept read saw.
fn add_sources(ops: &[KeyOp], kept: &mut [bool]) {
    let seen: Vec<State> = members(kept)
        .into_iter()
        .filter_map(|i| match ops[i].effect {
            Effect::Expect(value) => Some(value),
            Effect::Set(_) => None,
        })
        .collect();
    for (i, op) in ops.iter().enumerate() {
        if matches!(op.effect, Effect::Set(value) if seen.contains(&value)) {
            kept[i] = true;
        }
    }
}

/// One pass over the kept operations in chunks of `chunk`; true if any
/// chunk could be dropped.
fn drop_chunks(
    ops: &[KeyOp],
    culprit: usize,
    kept: &mut Vec<bool>,
    chunk: usize,
    meter: &mut BudgetMeter,
) -> bool {
    let mut removed_any = false;
    for candidates in members(kept).chunks(chunk) {
        let Some(trial) = without(ops, kept, candidates, culprit) else {
            continue;
        };
        if fails(ops, &trial, meter) {
            *kept = trial;
            removed_any = true;
        }
    }
    removed_any
}

/// `kept` minus `candidates` and the reads that saw a value one of the
/// dropped writes wrote; `None` if that would drop the culprit or nothing.
fn without(
    ops: &[KeyOp],
    kept: &[bool],
    candidates: &[usize],
    culprit: usize,
) -> Option<Vec<bool>> {
    let mut trial = kept.to_vec();
    for &i in candidates.iter().filter(|&&i| kept[i]) {
        trial[i] = false;
        if let Effect::Set(value) = ops[i].effect {
            drop_reads_of(ops, &mut trial, value);
        }
    }
    let changed = trial != kept;
    (changed && trial[culprit]).then_some(trial)
}

fn drop_reads_of(ops: &[KeyOp], kept: &mut [bool], value: State) {
    for (i, op) in ops.iter().enumerate() {
        if op.effect == Effect::Expect(value) {
            kept[i] = false;
        }
    }
}

/// Is the subset definitely not linearizable? (Out of budget counts as no.)
fn fails(ops: &[KeyOp], kept: &[bool], meter: &mut BudgetMeter) -> bool {
    let subset: Vec<KeyOp> = members(kept).into_iter().map(|i| ops[i]).collect();
    matches!(
        search::search(&subset, meter),
        SearchOutcome::NotLinearizable(_)
    )
}

fn members(kept: &[bool]) -> Vec<usize> {
    (0..kept.len()).filter(|&i| kept[i]).collect()
}

fn count(kept: &[bool]) -> usize {
    kept.iter().filter(|&&k| k).count()
}
