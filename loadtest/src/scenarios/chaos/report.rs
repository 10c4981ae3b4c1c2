//! The chaos scenario's report: operation counts, faults, one PASS/FAIL line
//! per invariant with its evidence, `lost=N`, `violations=N`; the same as
//! JSON; and optionally the full history as JSON.
//!
//! Why a module: the checks produce verdicts of different shapes (lists of
//! lost writes, phantoms, the linearizability checker's explanation, state
//! invariants); this is the one place that turns them into what a person
//! reads and what a machine parses, and decides whether the run passed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::linearizability::{CheckReport, CheckResult};
use crate::report::add_chart;
use crate::say;
use crate::stats::{round3, Table};
use crate::svg::{Chart, Marker, Series};

use super::checks::Verdict;
use super::consistency::{LostWrite, Phantom};
use super::nemesis::{FaultEvent, Nemesis};
use super::workload::{OpKind, OpRecord, Outcome};
use super::ChaosArgs;

/// At most this many offending items are printed per invariant.
const SHOWN: usize = 10;

pub struct Report {
    params: Value,
    partitions_skipped: Option<String>,
    failures: Vec<String>,
    faults: Value,
    verdicts: Vec<Verdict>,
    lost: Option<Vec<LostWrite>>,
    phantoms: Option<Vec<Phantom>>,
    linearizability: Option<Value>,
}

impl Report {
    pub fn new(args: &ChaosArgs, partitions_skipped: Option<String>) -> Report {
        Report {
            params: json!({
                "duration_s": args.duration.as_secs_f64(),
                "managers": args.managers,
                "seed": args.seed,
                "fault_interval_s": args.fault_interval.as_secs_f64(),
                "clients": args.clients,
                "keys": args.keys,
                "agents": args.agents,
                "request_timeout_s": args.request_timeout.as_secs_f64(),
                "think_ms": args.think.as_secs_f64() * 1000.0,
                "converge_timeout_s": args.converge_timeout.as_secs_f64(),
            }),
            partitions_skipped,
            failures: Vec::new(),
            faults: Value::Null,
            verdicts: Vec::new(),
            lost: None,
            phantoms: None,
            linearizability: None,
        }
    }

    /// The run could not go on as planned (a manager died, no leader...).
    pub fn failure(&mut self, message: String) {
        eprintln!("[chaos] FAILURE: {message}");
        self.failures.push(message);
    }

    pub fn faults(&mut self, nemesis: &Nemesis) {
        let applied: BTreeMap<&str, usize> = nemesis
            .applied
            .iter()
            .map(|(f, n)| (f.name(), *n))
            .collect();
        let skipped = nemesis.events.iter().filter(|e| e.phase == "skip").count();
        self.faults = json!({ "applied": applied, "skipped": skipped, "events": nemesis.events });
    }

    pub fn verdict(&mut self, verdict: Verdict) {
        self.verdicts.push(verdict);
    }

    pub fn lost(&mut self, lost: Vec<LostWrite>) {
        let violations = lost.iter().map(describe_lost).collect();
        self.verdicts.push(Verdict::new(
            "no acknowledged write lost",
            violations,
            "every acknowledged write is in the final state or explained by a later one".into(),
        ));
        self.lost = Some(lost);
    }

    pub fn phantoms(&mut self, phantoms: Vec<Phantom>) {
        let violations = phantoms.iter().map(|p| p.what.clone()).collect();
        self.verdicts.push(Verdict::new(
            "nothing that was never written",
            violations,
            "every job and every value seen was written by a client".into(),
        ));
        self.phantoms = Some(phantoms);
    }

    pub fn linearizability(&mut self, checked: &CheckReport, window: Vec<OpRecord>) {
        let s = &checked.stats;
        let summary = format!(
            "{} operations on {} keys ({} unknown-outcome writes, {} of them never observed), {} states, {:.1?}",
            s.operations, s.keys, s.unknown_outcome_writes, s.unknown_writes_pruned, s.states_explored, s.elapsed
        );
        let mut verdict = match &checked.result {
            CheckResult::Linearizable => Verdict::new("history linearizable", Vec::new(), summary),
            other => {
                let mut lines = vec![other.to_string()];
                lines.extend(window.iter().map(describe_op));
                let mut v = Verdict::new("history linearizable", lines, summary);
                v.detail = format!("{}; {}", v.detail, s.operations);
                v
            }
        };
        if let CheckResult::Unknown { key } = &checked.result {
            verdict.detail = format!("budget ran out at key {key}: not proven linearizable");
        }
        self.linearizability = Some(json!({
            "result": checked.result.to_string(),
            "operations": s.operations,
            "keys": s.keys,
            "unknown_outcome_writes": s.unknown_outcome_writes,
            "unknown_writes_pruned": s.unknown_writes_pruned,
            "states_explored": s.states_explored,
            "elapsed_ms": round3(s.elapsed.as_secs_f64() * 1000.0),
            "window": window,
        }));
        self.verdicts.push(verdict);
    }

    /// Print the report; return whether it passed and its JSON.
    pub fn finish(self, records: &[OpRecord]) -> (bool, Value) {
        let counts = op_counts(records);
        let lost = self.lost.as_ref().map(Vec::len);
        let violations: usize = self
            .verdicts
            .iter()
            .filter(|v| !v.passed)
            .map(|v| v.violations.len().max(1))
            .sum::<usize>()
            + self.failures.len();
        let passed = violations == 0 && lost.is_some();
        self.print(&counts, lost, violations, passed);
        let json = json!({
            "scenario": "chaos",
            "params": self.params,
            "partitions_skipped": self.partitions_skipped,
            "operations": counts_json(&counts),
            "faults": self.faults,
            "invariants": self.verdicts,
            "lost": lost,
            "lost_writes": self.lost,
            "phantoms": self.phantoms,
            "linearizability": self.linearizability,
            "failures": self.failures,
            "violations": violations,
            "passed": passed,
        });
        (passed, json)
    }

    fn print(&self, counts: &Counts, lost: Option<usize>, violations: usize, passed: bool) {
        say!();
        say!("chaos: {}", self.params);
        if let Some(why) = &self.partitions_skipped {
            say!("partition faults skipped: {why}");
        }
        say!();
        say!("{}", ops_table(counts).render().trim_end());
        say!();
        say!("faults applied: {}", self.faults["applied"]);
        say!();
        for v in &self.verdicts {
            say!(
                "{} {}: {}",
                if v.passed { "PASS" } else { "FAIL" },
                v.name,
                v.detail
            );
            for line in v.violations.iter().take(SHOWN) {
                say!("     {line}");
            }
            if v.violations.len() > SHOWN {
                say!("     ... {} more", v.violations.len() - SHOWN);
            }
        }
        for f in &self.failures {
            say!("FAIL run: {f}");
        }
        say!();
        say!(
            "lost={} violations={violations} {}",
            lost.map(|n| n.to_string()).unwrap_or("?".into()),
            if passed { "PASSED" } else { "FAILED" }
        );
    }
}

type Counts = BTreeMap<OpKind, BTreeMap<Outcome, usize>>;

fn op_counts(records: &[OpRecord]) -> Counts {
    let mut counts = Counts::new();
    for r in records.iter().filter(|r| r.manager != usize::MAX) {
        *counts
            .entry(r.kind)
            .or_default()
            .entry(r.outcome)
            .or_default() += 1;
    }
    counts
}

fn ops_table(counts: &Counts) -> Table {
    let mut t = Table::new(["operation", "ok", "failed", "unknown", "total"]);
    for (kind, by) in counts {
        let n = |o| by.get(&o).copied().unwrap_or(0);
        let total: usize = by.values().sum();
        t.row([
            format!("{kind:?}").to_lowercase(),
            n(Outcome::Ok).to_string(),
            n(Outcome::Failed).to_string(),
            n(Outcome::Unknown).to_string(),
            total.to_string(),
        ]);
    }
    t
}

fn counts_json(counts: &Counts) -> Value {
    json!(counts
        .iter()
        .map(|(k, by)| (
            format!("{k:?}").to_lowercase(),
            by.iter()
                .map(|(o, n)| (format!("{o:?}").to_lowercase(), *n))
                .collect::<BTreeMap<_, _>>()
        ))
        .collect::<BTreeMap<_, _>>())
}

fn describe_op(r: &OpRecord) -> String {
    let manager = if r.manager == usize::MAX {
        "final read via leader".to_string()
    } else {
        format!("manager {}", r.manager + 1)
    };
    format!(
        "client {} {:?} {} {} [{:.3}s .. {:.3}s] {:?} status {:?} nonce {:?} replicas {:?} version {:?}{}",
        r.client,
        r.kind,
        r.key,
        manager,
        r.invoke_ns as f64 / 1e9,
        r.complete_ns as f64 / 1e9,
        r.outcome,
        r.status,
        r.nonce,
        r.replicas,
        r.version,
        r.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )
}

fn describe_lost(l: &LostWrite) -> String {
    format!("{}; final state {:?}", describe_op(&l.op), l.final_state)
}

/// `chaos.svg`: the clients' operations completed per second by outcome, with
/// a marker at each fault applied: what each kind of fault does to clients.
pub fn chart(records: &[OpRecord], events: &[FaultEvent]) {
    let per_second = outcomes_per_second(records);
    let series = [
        (Outcome::Ok, "ok"),
        (Outcome::Failed, "failed"),
        (Outcome::Unknown, "unknown"),
    ]
    .into_iter()
    .map(|(outcome, name)| Series {
        name: name.into(),
        points: per_second
            .iter()
            .enumerate()
            .map(|(second, counts)| (second as f64, counts[column(outcome)] as f64))
            .collect(),
    })
    .collect();
    let markers = events
        .iter()
        .filter(|e| e.phase == "apply")
        .map(|e| Marker {
            x: e.at_s,
            label: e.fault.name().into(),
        })
        .collect();
    add_chart(
        "chaos",
        Chart {
            title: "chaos: client operations per second by outcome".into(),
            x_label: "seconds since the clients started (by completion time)".into(),
            y_label: "operations / s".into(),
            series,
            markers,
        },
    );
}

/// Per second of the run (by completion), the clients' operations counted by
/// outcome (see [`column`]). The final reads are left out.
fn outcomes_per_second(records: &[OpRecord]) -> Vec<[usize; 3]> {
    let mut seconds: Vec<[usize; 3]> = Vec::new();
    for r in records.iter().filter(|r| r.manager != usize::MAX) {
        let second = (r.complete_ns / 1_000_000_000) as usize;
        if seconds.len() <= second {
            seconds.resize(second + 1, [0; 3]);
        }
        seconds[second][column(r.outcome)] += 1;
    }
    seconds
}

fn column(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Ok => 0,
        Outcome::Failed => 1,
        Outcome::Unknown => 2,
    }
}

/// Every operation and fault event, for a person or a tool to replay.
pub fn write_history(path: &Path, records: &[OpRecord], events: &[FaultEvent]) -> Result<()> {
    let value = json!({ "operations": records, "faults": events });
    crate::stats::write_json(path, &value)
}
