//! Histories generated from a simulated linearizable register: every one
//! must pass, and one injected stale read must be caught.

use super::*;

use crate::rng::Rng;

#[derive(Copy, Clone, Debug)]
struct Workload {
    clients: u32,
    keys: u64,
    operations: usize,
    /// Of writes: how many are deletes.
    delete_percent: u64,
    /// Of writes: how many time out (and then take effect half the time).
    unknown_percent: u64,
}

/// One simulated operation, with what the register held just before it.
#[derive(Clone, Debug)]
struct SimOp {
    operation: Operation,
    /// The instant it took effect in the simulation.
    at: u64,
    before: Option<u64>,
}

#[derive(Copy, Clone)]
enum Plan {
    Read,
    Write,
    Delete,
}

/// Clients issue operations one after another with random gaps and
/// latencies; each takes effect at a random instant inside its interval
/// (unknown-outcome writes: maybe never). Results come from replaying those
/// instants in order, so the history is linearizable by construction.
fn simulate(seed: u64, workload: Workload) -> Vec<SimOp> {
    let mut rng = Rng::new(seed);
    let clients = workload.clients as usize;
    let mut client_free_at = vec![0u64; clients];
    let mut planned = Vec::with_capacity(workload.operations);
    for _ in 0..workload.operations {
        let client = (0..clients).min_by_key(|&c| client_free_at[c]).unwrap();
        // Distinct instants: times in units of 64 ns, plus the client number.
        let tick = |t: u64| t * 64 + client as u64;
        let invoke = client_free_at[client] + rng.below(30);
        let effect_at = invoke + 1 + rng.below(100);
        let complete = effect_at + 1 + rng.below(100);
        client_free_at[client] = complete;
        let key = format!("job-{}", rng.below(workload.keys));
        let plan = match rng.below(100) {
            0..50 => Plan::Read,
            p if p < 50 + workload.delete_percent => Plan::Delete,
            _ => Plan::Write,
        };
        let unknown = !matches!(plan, Plan::Read) && rng.percent(workload.unknown_percent);
        let takes_effect = !unknown || rng.percent(50);
        planned.push((
            client as u32,
            tick(invoke),
            tick(effect_at),
            (!unknown).then(|| tick(complete)),
            key,
            plan,
            takes_effect,
        ));
    }
    planned.sort_by_key(|p| p.2);
    let mut registers: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut next_version = 1;
    let mut ops = Vec::with_capacity(planned.len());
    for (client, invoke, at, complete, key, plan, takes_effect) in planned {
        let register = registers.entry(key.clone()).or_default();
        let before = *register;
        let action = match plan {
            Plan::Read => Action::read(key, before),
            Plan::Delete => Action::delete(key),
            Plan::Write => {
                next_version += 1;
                Action::write(key, Some(next_version))
            }
        };
        if let (Action::Write { value, .. }, true) = (&action, takes_effect) {
            *register = *value;
        }
        ops.push(SimOp {
            operation: Operation {
                client,
                invoke,
                complete,
                action,
            },
            at,
            before,
        });
    }
    ops.sort_by_key(|op| op.operation.invoke);
    ops
}

fn history_of(ops: &[SimOp]) -> History {
    let mut history = History::new();
    for op in ops {
        history.push(op.operation.clone()).unwrap();
    }
    history
}

/// Make one read (chosen by `seed`) return a value that was definitely
/// overwritten before it began: the value before the last write W that
/// completed before the read was invoked, when that value was set by a
/// completed write that returned before W was invoked. Returns the read's
/// index, or `None` if no read qualifies.
fn inject_stale_read(ops: &mut [SimOp], seed: u64) -> Option<usize> {
    let candidates: Vec<(usize, u64)> = (0..ops.len())
        .filter_map(|read| stale_value_for(ops, read).map(|stale| (read, stale)))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let (read, stale) = candidates[Rng::new(seed ^ 0x5eed).below(candidates.len() as u64) as usize];
    let Action::Read { observed, .. } = &mut ops[read].operation.action else {
        unreachable!("only reads are candidates");
    };
    *observed = Some(stale);
    Some(read)
}

/// A version that `read` cannot have seen: see `inject_stale_read`.
fn stale_value_for(ops: &[SimOp], read: usize) -> Option<u64> {
    let read_op = &ops[read].operation;
    let Action::Read { key, .. } = &read_op.action else {
        return None;
    };
    let writes_of_key = || {
        ops.iter()
            .filter(move |op| op.operation.action.is_write() && op.operation.action.key() == key)
    };
    let last_write = writes_of_key()
        .filter(|op| completed_before(&op.operation, read_op.invoke))
        .max_by_key(|op| op.at)?;
    let stale = last_write.before?;
    // Versions are unique, so exactly one write set `stale`.
    let stale_write = writes_of_key().find(
        |op| matches!(op.operation.action, Action::Write { value, .. } if value == Some(stale)),
    )?;
    completed_before(&stale_write.operation, last_write.operation.invoke).then_some(stale)
}

fn completed_before(op: &Operation, instant: u64) -> bool {
    op.complete.is_some_and(|end| end < instant)
}

fn assert_linearizable(seed: u64, ops: &[SimOp]) -> Stats {
    let report = check(&history_of(ops));
    assert_eq!(
        report.result,
        CheckResult::Linearizable,
        "seed {seed}: {}",
        report.result
    );
    report.stats
}

const SMALL: Workload = Workload {
    clients: 4,
    keys: 3,
    operations: 200,
    delete_percent: 10,
    unknown_percent: 5,
};

#[test]
fn simulated_linearizable_histories_pass() {
    for seed in 0..200 {
        assert_linearizable(seed, &simulate(seed, SMALL));
    }
}

#[test]
fn simulated_hot_key_histories_pass() {
    let hot = Workload {
        clients: 8,
        keys: 1,
        operations: 1000,
        ..SMALL
    };
    for seed in 0..10 {
        assert_linearizable(seed, &simulate(seed, hot));
    }
}

#[test]
fn injected_stale_read_is_caught() {
    // Seed 1 was verified to produce a detectable stale read.
    let verified_seed = 1;
    let mut ops = simulate(verified_seed, SMALL);
    let stale = inject_stale_read(&mut ops, verified_seed).expect("a read to corrupt");
    match check(&history_of(&ops)).result {
        CheckResult::NotLinearizable { explanation, .. } => {
            assert_eq!(explanation.culprit, OpId(stale), "{explanation}");
        }
        other => panic!("stale read not caught: {other}"),
    }
}

#[test]
fn injected_stale_reads_are_caught_in_every_seed() {
    // The injection only picks values that were definitely overwritten
    // (see `inject_stale_read`), so every one must be caught, and the
    // explanation must name the corrupted read.
    let mut windows = Vec::new();
    for seed in 0..100 {
        let mut ops = simulate(seed, SMALL);
        let stale = inject_stale_read(&mut ops, seed).expect("a read to corrupt");
        match check(&history_of(&ops)).result {
            CheckResult::NotLinearizable { explanation, .. } => {
                assert_eq!(
                    explanation.culprit,
                    OpId(stale),
                    "seed {seed}: {explanation}"
                );
                assert_window_is_a_witness(&explanation);
                windows.push(explanation.window.len());
            }
            other => panic!("seed {seed}: stale read not caught: {other}"),
        }
    }
    // Read of the old value, its write, and one write that followed it.
    windows.sort();
    assert!(windows[windows.len() / 2] <= 4, "window sizes: {windows:?}");
}

/// The window alone is not linearizable, and holds every write of a value
/// its reads saw.
fn assert_window_is_a_witness(explanation: &Explanation) {
    let mut window = History::new();
    for w in &explanation.window {
        window.push(w.operation.clone()).unwrap();
    }
    assert!(
        matches!(check(&window).result, CheckResult::NotLinearizable { .. }),
        "{explanation}"
    );
}

#[test]
fn ten_thousand_operations_over_a_hundred_keys_fit_the_budget() {
    let workload = Workload {
        clients: 8,
        keys: 100,
        operations: 10_000,
        delete_percent: 10,
        unknown_percent: 2,
    };
    let ops = simulate(7, workload);
    let report = check_within(&history_of(&ops), Budget::states(200_000));
    assert_eq!(
        report.result,
        CheckResult::Linearizable,
        "{}",
        report.result
    );
    assert_eq!(report.stats.operations, 10_000);
    assert_eq!(report.stats.keys, 100);
    assert!(report.stats.unknown_outcome_writes > 0);
    // Little concurrency per key: about one state per operation.
    assert!(report.stats.states_explored < 20_000, "{:?}", report.stats);
}

#[test]
fn ten_thousand_operations_on_one_hot_key_fit_the_budget() {
    let workload = Workload {
        clients: 8,
        keys: 1,
        operations: 10_000,
        delete_percent: 10,
        unknown_percent: 10,
    };
    let ops = simulate(3, workload);
    let report = check_within(&history_of(&ops), Budget::states(500_000));
    assert_eq!(
        report.result,
        CheckResult::Linearizable,
        "{}",
        report.result
    );
    assert!(report.stats.unknown_writes_pruned > 0);
}

/// Linearizable by definition: some order of all completed operations and
/// some of the unknown-outcome ones respects real time and the register.
/// Exponential; for histories of a handful of operations.
fn brute_force_linearizable(ops: &[Operation]) -> bool {
    let mut remaining: Vec<&Operation> = ops.iter().collect();
    orders_exist(&mut remaining, None)
}

fn orders_exist(remaining: &mut Vec<&Operation>, state: Option<u64>) -> bool {
    if remaining.iter().all(|op| op.complete.is_none()) {
        return true;
    }
    for index in 0..remaining.len() {
        let op = remaining[index];
        let must_wait = remaining
            .iter()
            .any(|other| other.complete.is_some_and(|end| end < op.invoke));
        let next_state = match op.action {
            Action::Write { value, .. } => Some(value),
            Action::Read { observed, .. } => (observed == state).then_some(state),
        };
        let (false, Some(next_state)) = (must_wait, next_state) else {
            continue;
        };
        remaining.remove(index);
        let found = orders_exist(remaining, next_state);
        remaining.insert(index, op);
        if found {
            return true;
        }
    }
    false
}

/// A random history of a few operations on one key, linearizable or not.
fn random_small_history(seed: u64) -> Vec<Operation> {
    let mut rng = Rng::new(seed);
    let count = 2 + rng.below(6) as usize;
    let random_value = |rng: &mut Rng| match rng.below(4) {
        0 => None,
        v => Some(v),
    };
    (0..count)
        .map(|index| {
            let invoke = rng.below(20);
            let complete = invoke + rng.below(8);
            let is_write = rng.percent(50);
            let unknown = is_write && rng.percent(25);
            let value = random_value(&mut rng);
            Operation {
                client: index as u32,
                invoke,
                complete: (!unknown).then_some(complete),
                action: if is_write {
                    Action::write("job", value)
                } else {
                    Action::read("job", value)
                },
            }
        })
        .collect()
}

#[test]
fn checker_agrees_with_brute_force_on_small_random_histories() {
    let mut verdicts = [0usize; 2];
    for seed in 0..5000 {
        let ops = random_small_history(seed);
        let mut history = History::new();
        for op in &ops {
            history.push(op.clone()).unwrap();
        }
        let expected = brute_force_linearizable(&ops);
        let result = check(&history).result;
        assert_eq!(
            result == CheckResult::Linearizable,
            expected,
            "seed {seed}: {ops:#?}\n{result}"
        );
        verdicts[usize::from(expected)] += 1;
    }
    // Both answers are exercised often.
    assert!(verdicts.iter().all(|&n| n > 1000), "{verdicts:?}");
}
