//! Hand-written histories with known answers.

use super::*;

const KEY: &str = "job-a";

/// A completed write of `value` on `KEY` over [invoke, complete].
fn write(history: &mut History, client: u32, span: (u64, u64), value: Option<u64>) -> OpId {
    let call = history.invoke(client, span.0);
    history
        .complete(call, span.1, Action::write(KEY, value))
        .unwrap()
}

fn read(history: &mut History, client: u32, span: (u64, u64), observed: Option<u64>) -> OpId {
    let call = history.invoke(client, span.0);
    history
        .complete(call, span.1, Action::read(KEY, observed))
        .unwrap()
}

fn unknown_write(history: &mut History, client: u32, invoke: u64, value: Option<u64>) -> OpId {
    let call = history.invoke(client, invoke);
    history.complete_unknown(call, KEY, value).unwrap()
}

fn is_linearizable(history: &History) -> bool {
    match check(history).result {
        CheckResult::Linearizable => true,
        CheckResult::NotLinearizable { .. } => false,
        CheckResult::Unknown { key } => panic!("budget ran out on {key}"),
    }
}

/// The explanation of a history that must not be linearizable.
fn violation(history: &History) -> Explanation {
    match check(history).result {
        CheckResult::NotLinearizable { key, explanation } => {
            assert_eq!(key, KEY);
            explanation
        }
        other => panic!("expected a violation, got {other}"),
    }
}

fn window_ids(explanation: &Explanation) -> Vec<OpId> {
    explanation.window.iter().map(|w| w.id).collect()
}

#[test]
fn empty_history_is_linearizable() {
    let report = check(&History::new());
    assert_eq!(report.result, CheckResult::Linearizable);
    assert_eq!(report.stats.keys, 0);
}

#[test]
fn sequential_history_is_linearizable() {
    let mut h = History::new();
    read(&mut h, 1, (0, 1), None);
    write(&mut h, 1, (2, 3), Some(1));
    read(&mut h, 2, (4, 5), Some(1));
    write(&mut h, 2, (6, 7), Some(2));
    read(&mut h, 1, (8, 9), Some(2));
    assert!(is_linearizable(&h));
}

#[test]
fn read_of_a_never_written_value_is_not_linearizable() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    let bad = read(&mut h, 2, (2, 3), Some(7));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, bad);
    assert_eq!(explanation.states_tried, vec![Some(1)]);
}

#[test]
fn initial_state_is_absent() {
    let mut h = History::new();
    let bad = read(&mut h, 1, (0, 1), Some(1));
    assert_eq!(violation(&h).culprit, bad);
}

#[test]
fn concurrent_write_and_read_allow_both_orders() {
    for observed in [None, Some(1)] {
        let mut h = History::new();
        write(&mut h, 1, (0, 10), Some(1));
        read(&mut h, 2, (2, 5), observed);
        assert!(is_linearizable(&h), "read saw {observed:?}");
    }
}

#[test]
fn read_after_write_must_see_it() {
    let mut h = History::new();
    write(&mut h, 1, (0, 10), Some(1));
    let bad = read(&mut h, 2, (11, 12), None);
    assert_eq!(violation(&h).culprit, bad);
}

#[test]
fn stale_read_after_completed_write_is_named() {
    let mut h = History::new();
    let old = write(&mut h, 1, (0, 10), Some(1));
    let new = write(&mut h, 2, (20, 30), Some(2));
    read(&mut h, 3, (31, 35), Some(2));
    let stale = read(&mut h, 1, (40, 50), Some(1));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, stale);
    assert_eq!(explanation.states_tried, vec![Some(2)]);
    assert_eq!(
        window_ids(&explanation),
        vec![old, new, stale],
        "{explanation}"
    );
    let text = explanation.to_string();
    assert!(
        text.contains("can place #3 (client 1 read saw version 1)"),
        "{text}"
    );
    assert!(text.contains("leaves the register at version 2."), "{text}");
}

#[test]
fn window_is_the_smallest_set_that_cannot_be_ordered() {
    let mut h = History::new();
    let first = write(&mut h, 1, (0, 5), Some(1));
    write(&mut h, 1, (10, 20), Some(2));
    write(&mut h, 2, (12, 25), Some(3));
    let concurrent = write(&mut h, 3, (28, 60), Some(4));
    let stale = read(&mut h, 4, (30, 40), Some(1));
    read(&mut h, 4, (70, 80), Some(4));
    read(&mut h, 5, (75, 85), Some(4));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, stale);
    // The write of the value read, one write that definitely followed it,
    // and the read: the concurrent write and later reads do not matter.
    let ids = window_ids(&explanation);
    assert_eq!(ids.len(), 3, "{explanation}");
    assert_eq!((ids[0], ids[2]), (first, stale), "{explanation}");
    assert!(!ids.contains(&concurrent), "{explanation}");
    let relations: Vec<Relation> = explanation.window.iter().map(|w| w.relation).collect();
    assert_eq!(
        relations,
        vec![
            Relation::CompletedBefore,
            Relation::CompletedBefore,
            Relation::Culprit
        ]
    );
}

#[test]
fn window_keeps_the_concurrent_writes_that_matter() {
    // Two concurrent writes, then reads that see 1, 2, 1: the second read of
    // 1 needs both writes and the earlier reads to be impossible.
    let mut h = History::new();
    let w1 = write(&mut h, 1, (0, 100), Some(1));
    let w2 = write(&mut h, 2, (0, 100), Some(2));
    let r1 = read(&mut h, 3, (10, 20), Some(1));
    let r2 = read(&mut h, 3, (30, 40), Some(2));
    let r3 = read(&mut h, 3, (50, 60), Some(1));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, r3);
    assert_eq!(
        window_ids(&explanation),
        vec![w1, w2, r1, r2, r3],
        "{explanation}"
    );
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    for (first_seen, then_seen) in [(Some(1), Some(2)), (Some(2), Some(1))] {
        let mut h = History::new();
        write(&mut h, 1, (0, 10), Some(1));
        write(&mut h, 2, (0, 10), Some(2));
        read(&mut h, 3, (11, 12), then_seen);
        read(&mut h, 3, (5, 6), first_seen);
        assert!(is_linearizable(&h));
    }
}

#[test]
fn unknown_write_may_be_seen_later() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    unknown_write(&mut h, 1, 2, Some(2));
    read(&mut h, 2, (100, 101), Some(2));
    read(&mut h, 2, (102, 103), Some(2));
    assert!(is_linearizable(&h));
}

#[test]
fn unknown_write_may_never_take_effect() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    unknown_write(&mut h, 1, 2, Some(2));
    read(&mut h, 2, (100, 101), Some(1));
    read(&mut h, 2, (1000, 1001), Some(1));
    assert!(is_linearizable(&h));
}

#[test]
fn unknown_write_cannot_be_undone_by_a_later_read() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    let unknown = unknown_write(&mut h, 1, 2, Some(2));
    read(&mut h, 2, (100, 101), Some(2));
    let bad = read(&mut h, 2, (102, 103), Some(1));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, bad);
    assert!(window_ids(&explanation).contains(&unknown), "{explanation}");
    assert!(explanation.to_string().contains("unknown outcome"));
}

#[test]
fn unknown_write_cannot_take_effect_before_its_call() {
    let mut h = History::new();
    let bad = read(&mut h, 2, (0, 1), Some(2));
    unknown_write(&mut h, 1, 2, Some(2));
    assert_eq!(violation(&h).culprit, bad);
}

#[test]
fn unknown_writes_nobody_saw_are_pruned() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    for client in 0..40 {
        unknown_write(
            &mut h,
            client,
            2 + u64::from(client),
            Some(100 + u64::from(client)),
        );
    }
    unknown_write(&mut h, 99, 50, Some(7));
    read(&mut h, 2, (100, 101), Some(7));
    let report = check(&h);
    assert_eq!(report.result, CheckResult::Linearizable);
    assert_eq!(report.stats.unknown_outcome_writes, 41);
    assert_eq!(report.stats.unknown_writes_pruned, 40);
}

#[test]
fn delete_then_recreate() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    read(&mut h, 2, (2, 3), Some(1));
    write(&mut h, 1, (4, 5), None);
    read(&mut h, 2, (6, 7), None);
    write(&mut h, 1, (8, 9), Some(1));
    read(&mut h, 2, (10, 11), Some(1));
    assert!(is_linearizable(&h));
}

#[test]
fn read_after_delete_must_not_see_the_job() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(3));
    write(&mut h, 1, (4, 5), None);
    let bad = read(&mut h, 2, (6, 7), Some(3));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, bad);
    assert_eq!(explanation.states_tried, vec![None]);
    assert!(explanation
        .to_string()
        .contains("leaves the register at absent."));
}

#[test]
fn recreated_job_cannot_vanish_again_without_a_delete() {
    let mut h = History::new();
    write(&mut h, 1, (0, 1), Some(1));
    write(&mut h, 1, (2, 3), None);
    write(&mut h, 1, (4, 5), Some(1));
    let bad = read(&mut h, 2, (6, 7), None);
    assert_eq!(violation(&h).culprit, bad);
}

#[test]
fn keys_are_independent() {
    let mut h = History::new();
    let call = h.invoke(1, 0);
    h.complete(call, 1, Action::write("job-a", Some(1)))
        .unwrap();
    let call = h.invoke(2, 2);
    h.complete(call, 3, Action::read("job-b", None)).unwrap();
    let call = h.invoke(2, 4);
    h.complete(call, 5, Action::read("job-a", Some(1))).unwrap();
    let report = check(&h);
    assert_eq!(report.result, CheckResult::Linearizable);
    assert_eq!(report.stats.keys, 2);
    assert_eq!(report.stats.per_key["job-a"].operations, 2);
    assert_eq!(report.stats.per_key["job-b"].operations, 1);
}

#[test]
fn violation_is_reported_on_its_own_key() {
    let mut h = History::new();
    let call = h.invoke(1, 0);
    h.complete(call, 1, Action::write("job-a", Some(1)))
        .unwrap();
    let call = h.invoke(1, 2);
    h.complete(call, 3, Action::read("job-z", Some(1))).unwrap();
    match check(&h).result {
        CheckResult::NotLinearizable { key, .. } => assert_eq!(key, "job-z"),
        other => panic!("expected a violation, got {other}"),
    }
}

#[test]
fn operations_touching_in_time_count_as_concurrent() {
    let mut h = History::new();
    write(&mut h, 1, (0, 10), Some(1));
    read(&mut h, 2, (10, 11), None);
    assert!(is_linearizable(&h));
}

#[test]
fn invalid_operations_are_refused() {
    let mut h = History::new();
    let call = h.invoke(1, 10);
    assert_eq!(
        h.complete(call, 5, Action::read(KEY, None)),
        Err(InvalidOperation::CompletedBeforeInvoked {
            invoke: 10,
            complete: 5
        })
    );
    let unknown_read = Operation {
        client: 1,
        invoke: 0,
        complete: None,
        action: Action::read(KEY, None),
    };
    assert_eq!(
        h.push(unknown_read),
        Err(InvalidOperation::ReadWithUnknownOutcome)
    );
    assert!(h.is_empty());
}

#[test]
fn budget_exhaustion_answers_unknown() {
    let mut h = History::new();
    for client in 0..12 {
        write(&mut h, client, (0, 1000), Some(u64::from(client) + 1));
    }
    read(&mut h, 99, (2000, 2001), Some(424242));
    let report = check_within(&h, Budget::states(50));
    assert_eq!(
        report.result,
        CheckResult::Unknown {
            key: KEY.to_string()
        }
    );
    assert!(report.stats.states_explored <= 51);
}

#[test]
fn past_deadline_answers_unknown() {
    let mut h = History::new();
    for client in 0..16 {
        write(&mut h, client, (0, 1000), Some(u64::from(client) + 1));
    }
    read(&mut h, 99, (2000, 2001), Some(424242));
    let budget = Budget::UNLIMITED.until(Instant::now());
    assert!(matches!(
        check_within(&h, budget).result,
        CheckResult::Unknown { .. }
    ));
}

#[test]
fn many_concurrent_writes_and_an_impossible_read_are_refuted() {
    // 12 concurrent writes: the cache keeps this to subsets, not 12! orders.
    let mut h = History::new();
    for client in 0..12 {
        write(&mut h, client, (0, 1000), Some(u64::from(client) + 1));
    }
    let bad = read(&mut h, 99, (2000, 2001), Some(424242));
    let report = check(&h);
    match report.result {
        CheckResult::NotLinearizable { explanation, .. } => {
            assert_eq!(explanation.culprit, bad)
        }
        other => panic!("expected a violation, got {other}"),
    }
    // Subsets of the writes times the last write of each: 12 * 2^11.
    assert!(
        report.stats.states_explored <= 12 << 11,
        "{:?}",
        report.stats
    );
}

#[test]
fn refused_states_are_listed_readably() {
    let mut h = History::new();
    write(&mut h, 1, (0, 10), None);
    write(&mut h, 2, (0, 10), Some(3));
    write(&mut h, 3, (0, 10), Some(4));
    let bad = read(&mut h, 4, (5, 20), Some(9));
    let explanation = violation(&h);
    assert_eq!(explanation.culprit, bad);
    assert_eq!(explanation.states_tried, vec![None, Some(3), Some(4)]);
    let text = explanation.to_string();
    assert!(
        text.contains("leaves the register at absent or versions 3 and 4."),
        "{text}"
    );
}
