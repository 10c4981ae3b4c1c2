//! Measuring and reporting: latency histograms, error counts, text tables.
//!
//! Why it exists: every scenario reports the same kinds of figures, and they
//! must mean the same thing everywhere — latency in one histogram per client
//! merged at the end (no lock on the hot path), percentiles from
//! hdrhistogram (3 significant digits), tables a person can read aligned in
//! a terminal, and the same figures as JSON for machines.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::system::WriteError;

/// Request latencies in microseconds, 1 µs .. 10 min, 3 significant digits.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record(d.as_micros().max(1) as u64);
    }

    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Quantile in milliseconds (0 when empty).
    pub fn ms_at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        self.0.mean() / 1000.0
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count(),
            "mean_ms": round3(self.mean_ms()),
            "p50_ms": round3(self.ms_at(0.50)),
            "p90_ms": round3(self.ms_at(0.90)),
            "p99_ms": round3(self.ms_at(0.99)),
            "p999_ms": round3(self.ms_at(0.999)),
            "max_ms": round3(self.max_ms()),
        })
    }
}

/// Failed requests grouped by kind (`HTTP 503`, `timeout`, `connect`, ...),
/// each with the first reply or error text seen, as evidence.
#[derive(Default, Clone)]
pub struct ErrorCounts(BTreeMap<String, (u64, String)>);

impl ErrorCounts {
    pub fn add(&mut self, e: &WriteError) {
        let entry = self
            .0
            .entry(e.key.clone())
            .or_insert_with(|| (0, e.detail.clone()));
        entry.0 += 1;
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (k, (n, sample)) in &other.0 {
            let entry = self
                .0
                .entry(k.clone())
                .or_insert_with(|| (0, sample.clone()));
            entry.0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().map(|(n, _)| n).sum()
    }

    /// `HTTP 503: 12, timeout: 3` or `none`.
    pub fn brief(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|(k, (n, _))| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line per kind with its first sample, for the end of a report.
    pub fn samples(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(k, (n, s))| format!("{k} x{n}: {}", s.replace('\n', " ")))
            .collect()
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, (n, s))| (k.clone(), json!({"count": n, "sample": s})))
                .collect(),
        )
    }
}

/// A text table: first column left-aligned, the others right-aligned.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            rows: vec![header.into_iter().map(Into::into).collect()],
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, w) in width.iter().enumerate() {
                let cell = row.get(c).map(String::as_str).unwrap_or("");
                if c == 0 {
                    line.push_str(&format!("{cell:<w$}"));
                } else {
                    line.push_str(&format!("  {cell:>w$}"));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if n == 0 {
                let total = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

/// Milliseconds with a precision that suits the size.
pub fn fmt_ms(ms: f64) -> String {
    // Thresholds just under 100 and 10 so that 99.97 prints "100", not "100.0".
    if ms >= 99.95 {
        format!("{ms:.0}")
    } else if ms >= 9.995 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// `a / b` as `0.52x`, or `-` when b is zero.
pub fn fmt_ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// `a / b` for a JSON report, rounded to three places; `null` when `b` is zero.
pub fn ratio_json(a: f64, b: f64) -> serde_json::Value {
    if b > 0.0 {
        serde_json::Value::from(round3(a / b))
    } else {
        serde_json::Value::Null
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The median of `v` (the mean of the two middle values if even).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The smallest of `v` (0 when empty, like [`max`] and [`median`]).
pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().reduce(f64::min).unwrap_or(0.0)
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["", "gantry", "etcd"]);
        t.row(["writes/s", "1234.5", "99.0"]);
        t.row(["p50 ms", "1.00", "12.00"]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "          gantry   etcd");
        assert_eq!(lines[1], "-".repeat(23));
        assert_eq!(lines[2], "writes/s  1234.5   99.0");
        assert_eq!(lines[3], "p50 ms      1.00  12.00");
    }

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn min_of_values_and_of_none() {
        assert_eq!(min(&[3.0, 1.5, 2.0]), 1.5);
        assert_eq!(min(&[]), 0.0);
    }

    #[test]
    fn latency_quantiles() {
        let mut l = Latency::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 100);
        assert!((l.ms_at(0.5) - 50.0).abs() < 0.1);
        assert!((l.max_ms() - 100.0).abs() < 0.1);
    }
}
