//! The layout of the cluster state in the store's key/value space.
//!
//! `job/<id>` holds the current job record; `jobv/<id>/<version, 20 digits>` holds each
//! kept version, so a prefix scan lists a job's history in order. `node/<id>` and
//! `alloc/<id>` hold nodes and allocations; `deployment/<id>` each kept deployment. `restore/<part, 10 digits>` holds the parts of
//! a snapshot restore being staged (see `restore`).

pub const JOB_PREFIX: &str = "job/";
pub const JOB_VERSION_PREFIX: &str = "jobv/";
pub const NODE_PREFIX: &str = "node/";
pub const ALLOCATION_PREFIX: &str = "alloc/";
pub const RESTORE_PREFIX: &str = "restore/";
pub const DEPLOYMENT_PREFIX: &str = "deployment/";

pub fn job(id: &str) -> String {
    format!("{JOB_PREFIX}{id}")
}

pub fn job_version(id: &str, version: u64) -> String {
    format!("{JOB_VERSION_PREFIX}{id}/{version:020}")
}

pub fn node(id: &str) -> String {
    format!("{NODE_PREFIX}{id}")
}

pub fn allocation(id: &str) -> String {
    format!("{ALLOCATION_PREFIX}{id}")
}

pub fn restore_part(part: u32) -> String {
    format!("{RESTORE_PREFIX}{part:010}")
}

pub fn deployment(id: &str) -> String {
    format!("{DEPLOYMENT_PREFIX}{id}")
}
