//! Every metric name a manager exports, with its help text: one list for the code, the
//! README's table and the tests.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

// Raft (state gauges, computed at scrape time).
pub const RAFT_TERM: &str = "gantry_raft_term";
pub const RAFT_IS_LEADER: &str = "gantry_raft_is_leader";
pub const RAFT_ROLE: &str = "gantry_raft_role";
pub const RAFT_COMMIT_INDEX: &str = "gantry_raft_commit_index";
pub const RAFT_APPLIED_INDEX: &str = "gantry_raft_applied_index";
pub const RAFT_APPLY_LAG: &str = "gantry_raft_apply_lag";
pub const RAFT_LAST_LOG_INDEX: &str = "gantry_raft_last_log_index";
pub const RAFT_SNAPSHOT_INDEX: &str = "gantry_raft_snapshot_index";
pub const RAFT_LOG_ENTRIES: &str = "gantry_raft_log_entries";
pub const RAFT_VOTERS: &str = "gantry_raft_voters";

// Cluster state (gauges, computed at scrape time from the replicated state).
pub const NODES: &str = "gantry_nodes";
pub const ALLOCATIONS: &str = "gantry_allocations";
pub const JOBS: &str = "gantry_jobs";
pub const EVENTS_HELD: &str = "gantry_events_held";
pub const EVENTS_OLDEST_INDEX: &str = "gantry_events_oldest_index";

// Scheduler (the leader's; counters and a histogram).
pub const SCHEDULER_EVALUATIONS: &str = "gantry_scheduler_evaluations_total";
pub const SCHEDULER_PLACEMENTS: &str = "gantry_scheduler_placements_total";
pub const SCHEDULER_PLACEMENT_SECONDS: &str = "gantry_scheduler_placement_seconds";
pub const SCHEDULER_FAILED_PLACEMENTS: &str = "gantry_scheduler_failed_placements_total";
pub const SCHEDULER_PLAN_REJECTIONS: &str = "gantry_scheduler_plan_rejections_total";

// Agents (the leader's).
pub const AGENTS_CONNECTED: &str = "gantry_agents_connected";
pub const HEARTBEATS_MISSED: &str = "gantry_heartbeats_missed_total";
pub const NODE_STATUS_CHANGES: &str = "gantry_node_status_changes_total";
pub const DISPATCHER_REPORT_BATCH: &str = "gantry_dispatcher_report_batch";

// Writes and the API.
pub const WRITE_BATCH_SIZE: &str = "gantry_write_batch_size";
pub const HTTP_REQUEST_SECONDS: &str = "gantry_http_request_duration_seconds";

/// The `reason` label values of [`SCHEDULER_FAILED_PLACEMENTS`]; see
/// `scheduler::failure_reason`.
pub const FAILURE_REASONS: [&str; 10] = [
    "cpu",
    "memory",
    "ports",
    "port",
    "not_schedulable",
    "missing_driver",
    "constraint",
    "no_nodes",
    "invalid_job",
    "other",
];

/// Buckets of every duration histogram without buckets of its own, in seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Placement latency includes commits and backoffs: longer tail.
const PLACEMENT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counts of items per batch.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
];

/// Each histogram and its buckets.
pub const HISTOGRAMS: [(&str, &[f64]); 4] = [
    (SCHEDULER_PLACEMENT_SECONDS, PLACEMENT_BUCKETS),
    (HTTP_REQUEST_SECONDS, SECONDS_BUCKETS),
    (WRITE_BATCH_SIZE, SIZE_BUCKETS),
    (DISPATCHER_REPORT_BATCH, SIZE_BUCKETS),
];

/// Help texts of the state gauges, rendered by `scrape`.
pub fn gauge_help(name: &str) -> &'static str {
    match name {
        RAFT_TERM => "Current Raft term of this manager.",
        RAFT_IS_LEADER => "1 if this manager is the Raft leader, else 0.",
        RAFT_ROLE => "1 for this manager's current Raft role, 0 for the others.",
        RAFT_COMMIT_INDEX => "Highest log index this manager knows to be committed.",
        RAFT_APPLIED_INDEX => "Highest log index applied to this manager's state.",
        RAFT_APPLY_LAG => "Committed log entries not yet applied here (commit - applied).",
        RAFT_LAST_LOG_INDEX => "Index of the last entry in this manager's log.",
        RAFT_SNAPSHOT_INDEX => "Last log index covered by this manager's latest snapshot.",
        RAFT_LOG_ENTRIES => "Entries in this manager's log (last index - last purged index).",
        RAFT_VOTERS => "Voting members of the Raft group.",
        NODES => "Registered nodes by status.",
        ALLOCATIONS => "Allocations in the state by client state.",
        JOBS => "Registered jobs.",
        EVENTS_HELD => "Changes held for /v1/events readers.",
        EVENTS_OLDEST_INDEX => "Oldest index /v1/events can resume from on this manager.",
        _ => "",
    }
}

/// Help texts of the recorded metrics, and their series created at zero so that every
/// name shows from the first scrape on.
pub(super) fn describe_and_register() {
    describe_counter!(
        SCHEDULER_EVALUATIONS,
        "Jobs evaluated (reconciled against their allocations) by the leader's scheduler."
    );
    describe_counter!(
        SCHEDULER_PLACEMENTS,
        "Allocations placed by committed plans (rate() gives placements per second)."
    );
    describe_histogram!(
        SCHEDULER_PLACEMENT_SECONDS,
        Unit::Seconds,
        "Per placement: from the scheduler taking up the job's change to the plan placing it being committed."
    );
    describe_counter!(
        SCHEDULER_FAILED_PLACEMENTS,
        "Instances an evaluation could not place, by the main reason."
    );
    describe_counter!(
        SCHEDULER_PLAN_REJECTIONS,
        "Placements the plan applier rejected (the state had changed under the plan)."
    );
    describe_gauge!(
        AGENTS_CONNECTED,
        "Agent sessions open on this process (on the leader)."
    );
    describe_counter!(
        HEARTBEATS_MISSED,
        "Nodes whose agent missed its heartbeat TTL (each is then marked down)."
    );
    describe_counter!(
        NODE_STATUS_CHANGES,
        "Node status changes committed by the leader, by new status."
    );
    describe_histogram!(
        DISPATCHER_REPORT_BATCH,
        "Allocation status reports per Raft command."
    );
    describe_histogram!(WRITE_BATCH_SIZE, "Commands per group-committed log entry.");
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "API requests until the response head, by route template, method and status."
    );

    for counter in [
        SCHEDULER_EVALUATIONS,
        SCHEDULER_PLACEMENTS,
        SCHEDULER_PLAN_REJECTIONS,
        HEARTBEATS_MISSED,
    ] {
        metrics::counter!(counter).increment(0);
    }
    for status in ["initializing", "ready", "down"] {
        metrics::counter!(NODE_STATUS_CHANGES, "status" => status).increment(0);
    }
    for reason in FAILURE_REASONS {
        metrics::counter!(SCHEDULER_FAILED_PLACEMENTS, "reason" => reason).increment(0);
    }
    metrics::gauge!(AGENTS_CONNECTED).increment(0.0);
}
