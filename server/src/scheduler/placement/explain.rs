//! Why an ask fits nowhere: every node counted under the first filter it failed.
//!
//! This is what an unplaced allocation carries and what `POST /v1/jobs/{id}/plan` shows:
//! `0 of 12 nodes fit: 3 not ready/eligible, 2 missing driver docker, 4 filtered by
//! constraint label.zone = a, 3 exhausted memory`. Building it scans every node; it is only
//! done when placement failed or on request.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::feasibility::Rejection;

/// Per-node verdicts against one ask.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub nodes_evaluated: usize,
    /// Nodes that pass every filter.
    pub nodes_fit: usize,
    /// Nodes filtered before resources were looked at, by why: `not ready/eligible`,
    /// `missing driver docker`, `filtered by constraint label.zone = a`.
    pub filtered: BTreeMap<String, usize>,
    /// Nodes that passed the filters but lacked room, by what ran out: `cpu`, `memory`,
    /// `ports` (the dynamic range), `port 8080` (a static port already taken).
    pub exhausted: BTreeMap<String, usize>,
}

impl Explanation {
    pub(crate) fn count(&mut self, verdict: Result<(), Rejection>) {
        let filtered = |why: String| (why, true);
        let (key, is_filter) = match verdict {
            Ok(()) => {
                self.nodes_fit += 1;
                return;
            }
            Err(Rejection::NotSchedulable) => filtered(NOT_SCHEDULABLE.to_string()),
            Err(Rejection::MissingDriver(d)) => filtered(format!("{MISSING_DRIVER}{d}")),
            Err(Rejection::Constraint(c)) => filtered(format!("filtered by constraint {c}")),
            Err(Rejection::Exhausted(dimension)) => (dimension.name(), false),
        };
        let map = if is_filter {
            &mut self.filtered
        } else {
            &mut self.exhausted
        };
        *map.entry(key).or_default() += 1;
    }
}

const NOT_SCHEDULABLE: &str = "not ready/eligible";
const MISSING_DRIVER: &str = "missing driver ";

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} nodes fit",
            self.nodes_fit, self.nodes_evaluated
        )?;
        if self.nodes_evaluated == 0 {
            return f.write_str(": no nodes");
        }
        // Pipeline order: schedulability, drivers, constraints, then resources.
        let stage = |key: &str| {
            if key == NOT_SCHEDULABLE {
                0
            } else if key.starts_with(MISSING_DRIVER) {
                1
            } else {
                2
            }
        };
        let mut filtered: Vec<_> = self.filtered.iter().collect();
        filtered.sort_by_key(|(key, _)| (stage(key), *key));
        let parts = filtered
            .into_iter()
            .map(|(why, n)| format!("{n} {why}"))
            .chain(
                self.exhausted
                    .iter()
                    .map(|(what, n)| format!("{n} exhausted {what}")),
            );
        let mut separator = ": ";
        for part in parts {
            write!(f, "{separator}{part}")?;
            separator = ", ";
        }
        Ok(())
    }
}

/// An ask that could not be placed, with the reasons.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{explanation}")]
pub struct Unplaced {
    pub explanation: Explanation,
}

impl Unplaced {
    /// `place` was handed an allocation id that already holds a reservation.
    pub(crate) fn duplicate(alloc_id: &str, nodes: usize) -> Unplaced {
        let mut explanation = Explanation {
            nodes_evaluated: nodes,
            ..Explanation::default()
        };
        explanation.filtered.insert(
            format!("refused: allocation {alloc_id} is already placed"),
            nodes,
        );
        Unplaced { explanation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::placement::feasibility::Dimension;

    #[test]
    fn reads_in_pipeline_order() {
        let mut e = Explanation {
            nodes_evaluated: 12,
            ..Default::default()
        };
        for _ in 0..3 {
            e.count(Err(Rejection::Exhausted(Dimension::Memory)));
            e.count(Err(Rejection::NotSchedulable));
        }
        for _ in 0..4 {
            e.count(Err(Rejection::Constraint("label.zone = a".into())));
        }
        for _ in 0..2 {
            e.count(Err(Rejection::MissingDriver("docker".into())));
        }
        assert_eq!(
            e.to_string(),
            "0 of 12 nodes fit: 3 not ready/eligible, 2 missing driver docker, \
             4 filtered by constraint label.zone = a, 3 exhausted memory"
        );
    }

    #[test]
    fn counts_fits_ports_and_empty_clusters() {
        let mut e = Explanation {
            nodes_evaluated: 3,
            ..Default::default()
        };
        e.count(Ok(()));
        e.count(Err(Rejection::Exhausted(Dimension::Port(8080))));
        e.count(Err(Rejection::Exhausted(Dimension::Ports)));
        assert_eq!(
            e.to_string(),
            "1 of 3 nodes fit: 1 exhausted port 8080, 1 exhausted ports"
        );
        assert_eq!(
            Explanation::default().to_string(),
            "0 of 0 nodes fit: no nodes"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["exhausted"]["port 8080"], 1);
        assert_eq!(json["nodes_fit"], 1);
    }
}
