//! The job spec: what an operator submits to `POST /v1/jobs`.
//!
//! The shape is the contract in API.md, identical in JSON and YAML. Every
//! struct denies unknown fields so a misspelt key (`replica: 3`) is an error
//! that names it instead of a silently ignored setting. Parsing
//! ([`parse_job_spec`]) checks the shape; [`JobSpec::validate`] checks the
//! meaning. The server stores specs with serde_json, so everything here must
//! round-trip through a self-describing format.

mod parse;
mod spec_error;
mod string_like;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::duration::GDuration;
pub use parse::parse_job_spec;
pub use spec_error::SpecError;
pub use validate::{validate_job_id, validate_service_name, MAX_JOB_ID_LEN, MAX_REPLICAS};

/// A job: one or more tasks placed together, `replicas` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// `[A-Za-z0-9_.-]{1,128}`; also the job's name in URLs.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$", example = "web")]
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: JobType,
    /// Instances to keep running. Ignored for `global` jobs, which run one
    /// instance on every eligible node. `0` is valid (a stopped service).
    #[serde(default = "default_replicas")]
    #[schema(default = 1)]
    pub replicas: u32,
    /// 1..=100; higher is placed first.
    #[serde(default = "default_priority")]
    #[schema(default = 50, minimum = 1, maximum = 100)]
    pub priority: u8,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// All tasks of a job run together as one allocation on one node.
    #[schema(min_items = 1)]
    pub tasks: Vec<TaskSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
}

fn default_replicas() -> u32 {
    1
}

fn default_priority() -> u8 {
    50
}

/// How instances of a job are counted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// Keep `replicas` instances running.
    #[default]
    Service,
    /// One instance on every eligible node; `replicas` is ignored.
    Global,
    /// Run to completion; failed instances are retried per the restart policy.
    Batch,
}

impl JobType {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Global => "global",
            JobType::Batch => "batch",
        }
    }
}

/// A filter on node attributes (`label.zone`, `node.name`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    #[schema(pattern = r"\S")]
    pub attribute: String,
    pub operator: ConstraintOperator,
    /// Required except for `is_set` / `is_not_set`. A regex for `regex`; a
    /// comma-separated list for the `set_contains_*` operators. YAML numbers
    /// and booleans are taken as their text (`value: 3` is `"3"`).
    #[serde(default, deserialize_with = "string_like::string")]
    #[schema(schema_with = string_like::string_schema)]
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ConstraintOperator {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "regex")]
    Regex,
    #[serde(rename = "set_contains_any")]
    SetContainsAny,
    #[serde(rename = "set_contains_all")]
    SetContainsAll,
    #[serde(rename = "is_set")]
    IsSet,
    #[serde(rename = "is_not_set")]
    IsNotSet,
}

impl ConstraintOperator {
    /// Whether the operator compares against `value` (all but the `is_*` ones).
    pub fn needs_value(&self) -> bool {
        !matches!(
            self,
            ConstraintOperator::IsSet | ConstraintOperator::IsNotSet
        )
    }
}

/// One container of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    #[schema(pattern = r"\S")]
    pub name: String,
    /// Which driver runs it: `docker` (the default) or `process`. Placement only
    /// considers nodes whose agent offers this driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(docker|process)$")]
    pub driver: Option<String>,
    #[schema(pattern = r"\S")]
    pub image: String,
    /// Empty: the image's default command. YAML numbers are taken as text.
    #[serde(default, deserialize_with = "string_like::seq")]
    #[schema(schema_with = string_like::seq_schema)]
    pub command: Vec<String>,
    /// YAML numbers and booleans are taken as their text (`PORT: 8080`).
    #[serde(default, deserialize_with = "string_like::map")]
    #[schema(schema_with = string_like::map_schema)]
    pub env: BTreeMap<String, String>,
    pub resources: Resources,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// How long the agent waits between the managers deciding to stop an instance (it
    /// leaves its services at once) and stopping the task, so that clients that looked
    /// the service up a moment earlier are still answered. None: stop at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_delay: Option<GDuration>,
}

impl TaskSpec {
    pub const DEFAULT_DRIVER: &'static str = "docker";

    pub fn driver(&self) -> &str {
        self.driver.as_deref().unwrap_or(Self::DEFAULT_DRIVER)
    }
}

/// What one instance of a task reserves on its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mb: u64,
}

/// A named container port, optionally published on the host and as a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Unique within the job; health checks and services refer to it.
    #[schema(pattern = r"\S")]
    pub name: String,
    #[schema(minimum = 1)]
    pub container_port: u16,
    /// A static host port; `None` lets the scheduler pick a free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub host_port: Option<u16>,
    /// Register healthy instances under this service name (a DNS label: lowercase
    /// letters, digits and `-`) instead of the default `<job id>-<port name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub service: Option<String>,
    /// Tags listed with the service's endpoints (e.g. `primary`, `v2`). YAML numbers
    /// are taken as text.
    #[serde(
        default,
        deserialize_with = "string_like::seq",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schema(schema_with = string_like::seq_schema)]
    pub tags: Vec<String>,
}

/// How the agent decides an instance of a task is healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthCheckKind,
    /// The name of one of the task's ports (`http` and `tcp` checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The request path of an `http` check; `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The command of an `exec` check, run inside the container.
    #[serde(
        default,
        deserialize_with = "string_like::seq",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schema(schema_with = string_like::seq_schema)]
    pub command: Vec<String>,
    #[serde(default = "default_health_interval")]
    #[schema(default = "10s")]
    pub interval: GDuration,
    #[serde(default = "default_health_timeout")]
    #[schema(default = "2s")]
    pub timeout: GDuration,
    /// Failures during this long after start do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<GDuration>,
    /// Consecutive failures that make the task unhealthy and restart it (per the
    /// job's restart policy); at least 1.
    #[serde(default = "default_health_threshold")]
    #[schema(default = 3)]
    pub threshold: u32,
}

fn default_health_threshold() -> u32 {
    3
}

fn default_health_interval() -> GDuration {
    GDuration::from_secs(10)
}

fn default_health_timeout() -> GDuration {
    GDuration::from_secs(2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    /// A 2xx answer to `GET path` on the port.
    Http,
    /// A TCP connection to the port is accepted.
    Tcp,
    /// `command` exits 0.
    Exec,
}

/// Restarts of a failed task on the same node before the allocation fails
/// and the job is rescheduled elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestartPolicy {
    pub attempts: u32,
    pub delay: GDuration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            attempts: 3,
            delay: GDuration::from_secs(1),
        }
    }
}

/// How a new job version rolls out (a *deployment*; see `crate::deployments`).
///
/// Only a change to the tasks replaces allocations; any other change (replicas,
/// priority, this block) is applied to the running allocations in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateStrategy {
    /// Instances replaced at a time; at least 1.
    #[schema(minimum = 1)]
    pub max_parallel: u32,
    /// How long a new instance must stay healthy to count.
    pub min_healthy: GDuration,
    /// A new instance not healthy for `min_healthy` by this long after it was placed
    /// fails the deployment.
    pub healthy_deadline: GDuration,
    /// On a failed deployment, go back to the last stable version (one whose
    /// deployment succeeded).
    pub auto_revert: bool,
    /// New-version instances started beside the old ones before anything else changes;
    /// the deployment then waits for `gantry deployment promote` (or `auto_promote`).
    pub canary: u32,
    /// Promote the canaries once every one of them counts as healthy.
    pub auto_promote: bool,
    /// Stop an old instance before its replacement starts (`stop-first`, the default:
    /// no extra room needed), or start the replacement first and stop the old one once
    /// the new one counts as healthy (`start-first`: needs room for both).
    pub order: UpdateOrder,
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        UpdateStrategy {
            max_parallel: 1,
            min_healthy: GDuration::from_secs(10),
            healthy_deadline: GDuration::from_secs(300),
            auto_revert: false,
            canary: 0,
            auto_promote: false,
            order: UpdateOrder::StopFirst,
        }
    }
}

/// Which goes first when an instance is replaced during a deployment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    #[default]
    StopFirst,
    StartFirst,
}

/// The example job of API.md, in JSON and YAML, for tests across modules.
#[cfg(test)]
pub(crate) mod fixtures {
    pub const EXAMPLE_JSON: &str = include_str!("../../testdata/example-job.json");
    pub const EXAMPLE_YAML: &str = include_str!("../../testdata/example-job.yaml");
}
