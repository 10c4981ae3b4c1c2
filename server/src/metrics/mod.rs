//! Metrics: what `GET /metrics` shows, in the Prometheus text format.
//!
//! Two kinds, rendered together:
//! - **events** (counters and histograms: evaluations, placements, placement latency,
//!   request latency, missed heartbeats) are recorded where they happen through the
//!   `metrics` crate, into one Prometheus recorder per process (`install`). Every
//!   histogram is given buckets, so each renders as a Prometheus histogram, not a summary.
//! - **state** (gauges: Raft term and indexes, nodes by status, allocations by state) is
//!   computed from this manager's Raft metrics and replicated state at each scrape
//!   (`scrape`), so it is always exact and never drifts.
//!
//! `gantry dev` runs three managers in one process: they share the recorder, so its
//! counters and histograms add up all three (only the leader schedules and holds agent
//! sessions, so those are still one manager's), while each manager's `/metrics` shows its
//! own state gauges. The names are listed in [`names`] and in the README.

pub mod http;
pub mod names;
pub mod scheduler;
pub(crate) mod scrape;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

pub use scrape::render;

/// How often recorded samples are folded into the histograms when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = names::HISTOGRAMS.iter().fold(
            PrometheusBuilder::new()
                .set_buckets(names::SECONDS_BUCKETS)
                .expect("buckets are not empty"),
            |builder, (name, buckets)| {
                builder
                    .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                    .expect("buckets are not empty")
            },
        );
        let handle = match builder.install_recorder() {
            Ok(handle) => {
                names::describe_and_register();
                handle
            }
            Err(e) => {
                // Another recorder owns the process: /metrics shows the state gauges only.
                tracing::warn!(error = %e, "cannot install the metrics recorder");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}
