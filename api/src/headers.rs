//! HTTP header names that are part of the API contract.
//!
//! Kept lowercase so the server can use them with `HeaderName::from_static`
//! (header names are case-insensitive on the wire).

/// Every response carries the Raft index its answer reflects, so a client
/// can wait for "anything after index N" (`?index=N&wait=30s`).
pub const INDEX_HEADER: &str = "x-gantry-index";

/// Content types under which `POST /v1/jobs` takes YAML instead of JSON.
pub const YAML_CONTENT_TYPES: [&str; 3] = ["application/yaml", "application/x-yaml", "text/yaml"];
