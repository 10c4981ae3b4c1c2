//! The scenarios, one file each. Each one starts its own clusters, drives
//! them, kills them, and returns its figures as JSON (besides printing its
//! report) plus whether its checks passed.

pub mod chaos;
pub mod engine;
pub mod failover;
pub mod packing;
pub mod place;
pub mod writes;

use crate::system::Kind;

/// A system to run the same scenario against, for a side-by-side report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    Etcd,
}

/// Gantry, then the comparison if asked; or only the one `--only` names.
pub fn systems_to_run(only: Option<Kind>, compare: Option<Compare>) -> Vec<Kind> {
    match (only, compare) {
        (Some(kind), _) => vec![kind],
        (None, Some(Compare::Etcd)) => vec![Kind::Gantry, Kind::Etcd],
        (None, None) => vec![Kind::Gantry],
    }
}
