//! gantry-api: the types every side of Gantry shares, and a typed client.
//!
//! The manager, the agent, the CLI and the load tester all speak the same
//! JSON; defining it once here keeps them from drifting apart. This file only
//! declares the modules and re-exports their main types.

pub mod acl;
pub mod allocation;
pub mod client;
pub mod deployments;
pub mod duration;
pub mod error;
pub mod events;
pub mod headers;
pub mod job;
pub mod jobs;
pub mod node;
pub mod scheduling;
pub mod services;
pub mod session;
#[cfg(feature = "sim-agent")]
pub mod sim_agent;
pub mod status;

pub use allocation::{
    Allocation, ClientState, DesiredState, Health, PortAssignment, RestartRequest,
};
pub use client::{Client, ClientError, ClientOptions, Indexed};
pub use deployments::{Deployment, DeploymentChanged, DeploymentStatus};
pub use duration::GDuration;
pub use error::{codes, ErrorBody, ErrorDetail};
pub use headers::INDEX_HEADER;
pub use job::{
    parse_job_spec, validate_job_id, Constraint, ConstraintOperator, HealthCheck, HealthCheckKind,
    JobSpec, JobType, PortSpec, Resources, RestartPolicy, SpecError, TaskSpec, UpdateOrder,
    UpdateStrategy,
};
pub use jobs::{
    Job, JobDeleted, JobRegistered, JobSummary, JobVersion, RevertRequest, ScaleRequest,
};
pub use node::{
    DrainRequest, Eligibility, EligibilityRequest, Node, NodeRegistration, NodeStatus, PortRange,
};
pub use services::{ServiceEndpoint, ServiceSummary};
pub use session::{
    AllocationReport, Heartbeat, HeartbeatAck, NotLeaderBody, Registered, SessionMessage,
};
pub use status::{AddPeerRequest, LeaderRef, Member, MemberProgress, RaftInfo, StatusResponse};
