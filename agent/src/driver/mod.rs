//! Drivers: the one seam between the agent and whatever runs a task.
//!
//! The agent decides *what* runs (the reconcile loop and each allocation's runner); a
//! driver only knows *how*: start a task, wait for it to exit, stop it, list what it
//! runs. Every task a driver starts carries three labels (`gantry.alloc_id`,
//! `gantry.job`, `gantry.task`) that it can find again after the agent restarts, which
//! is what keeps the agent stateless: the engine is the only record of what runs.
//!
//! Two drivers exist: `docker` (containers through the engine's API) and `process`
//! (plain child processes, for machines without Docker and for `gantry dev`).

pub mod docker;
pub mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use gantry_api::job::TaskSpec;

/// The label (docker) or environment variable name stem (process) naming the allocation.
pub const LABEL_ALLOC_ID: &str = "gantry.alloc_id";
pub const LABEL_JOB: &str = "gantry.job";
pub const LABEL_TASK: &str = "gantry.task";
/// The node (agent `--name`) that started the task: several agents may share one engine
/// (tests, `gantry dev`), and each adopts or removes only its own tasks.
pub const LABEL_NODE: &str = "gantry.node";

/// Everything a driver needs to start one task of one allocation.
#[derive(Debug, Clone)]
pub struct TaskLaunch {
    pub alloc_id: String,
    pub job_id: String,
    pub task: TaskSpec,
    /// The task's named ports with the host port the managers assigned: (name,
    /// container_port, host_port).
    pub ports: Vec<LaunchPort>,
    /// Added to the task's own `env`: `GANTRY_ALLOC_ID`, `GANTRY_PORT_<NAME>`, ...
    pub extra_env: BTreeMap<String, String>,
    /// A directory the agent owns for this allocation (the process driver writes the
    /// task's stdout/stderr here).
    pub alloc_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPort {
    pub name: String,
    pub container_port: u16,
    pub host_port: u16,
}

/// A running (or exited) task the driver can act on again: a container id, or a pid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskHandle {
    /// The driver that owns it (`docker`, `process`).
    pub driver: &'static str,
    /// The engine's id: a container id, or a process id as text.
    pub id: String,
}

/// A task found in the engine, with its labels read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTask {
    pub handle: TaskHandle,
    pub alloc_id: String,
    pub job_id: String,
    pub task: String,
    pub running: bool,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code; `None` when killed by a signal or unknown.
    pub code: Option<i64>,
    /// A short human explanation (`exit code 1`, `OOM killed`, `killed by signal 9`).
    pub message: String,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

pub type LogChunks = Pin<Box<dyn Stream<Item = Result<(LogStream, Bytes), DriverError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The image is not present and could not be pulled. The message names the image.
    #[error("image {image} is not available: {reason}")]
    ImageMissing { image: String, reason: String },
    /// The task or container does not exist (any more).
    #[error("not found: {0}")]
    NotFound(String),
    /// The engine refused or failed; the message is the engine's.
    #[error("{0}")]
    Engine(String),
}

/// One way of running tasks. Implementations must be cheap to share (`Arc<dyn Driver>`).
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// `docker` or `process`: the value of a task's `driver` field.
    fn name(&self) -> &'static str;

    /// Is the engine usable on this node right now (docker: the daemon answers)?
    async fn available(&self) -> bool;

    /// Creates and starts the task, labelled with its allocation, job and task names.
    /// A previous leftover of the same allocation and task is replaced.
    async fn start(&self, launch: &TaskLaunch) -> Result<TaskHandle, DriverError>;

    /// Resolves when the task exits (immediately if it already has).
    async fn wait(&self, handle: &TaskHandle) -> Result<Exit, DriverError>;

    /// Stops the task: a graceful signal (SIGTERM), then a kill after `grace`.
    /// Stopping a task that has already exited is not an error.
    async fn stop(&self, handle: &TaskHandle, grace: Duration) -> Result<(), DriverError>;

    /// Removes what is left of a stopped task (the container, the process' files).
    /// Removing what is already gone is not an error.
    async fn remove(&self, handle: &TaskHandle) -> Result<(), DriverError>;

    /// Every task this driver runs or ran for Gantry (found by label), running or not.
    async fn list(&self) -> Result<Vec<FoundTask>, DriverError>;

    /// Runs `command` inside the task (docker exec; for a process, in its working
    /// directory with its environment), returning its exit code, or an error after
    /// `timeout`.
    async fn exec(
        &self,
        handle: &TaskHandle,
        command: &[String],
        timeout: Duration,
    ) -> Result<i64, DriverError>;

    /// The task's stdout and stderr: what was written so far (the last `tail` lines
    /// when given), then, with `follow`, what comes until the task exits.
    async fn logs(
        &self,
        handle: &TaskHandle,
        follow: bool,
        tail: Option<usize>,
    ) -> Result<LogChunks, DriverError>;
}
