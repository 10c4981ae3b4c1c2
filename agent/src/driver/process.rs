//! The process driver: runs a task as a plain child process of the agent, for machines
//! without Docker and for `gantry dev`.
//!
//! What runs is the task's `command` (the program is looked up on `PATH`); the task's
//! `image` is ignored. Resource limits are not enforced, and there is nothing to publish:
//! the task listens on the host port the agent gives it in `GANTRY_PORT_<NAME>`.
//!
//! Each task starts in a session (and process group) of its own, with its working
//! directory in the allocation's directory, where its stdout and stderr are appended to
//! `<task>.stdout` and `<task>.stderr`. It is not killed when the agent exits. The
//! variables `GANTRY_ALLOC_ID`, `GANTRY_JOB`, `GANTRY_TASK` and `GANTRY_NODE` play the
//! role of Docker's labels: after a restart the agent finds its tasks again by reading
//! them from `/proc/<pid>/environ`. Such an adopted task is not the new agent's child, so
//! its exit is noticed by polling and its exit code is unknown.

mod child;
mod logs;
mod procfs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

use self::child::{child_exit, exit_code, new_session, reap_in_background, signal_group};
use self::logs::LogFiles;
use super::{
    Driver, DriverError, Exit, FoundTask, LogChunks, TaskHandle, TaskLaunch, LABEL_ALLOC_ID,
    LABEL_JOB, LABEL_NODE, LABEL_TASK,
};

const DRIVER: &str = "process";
/// How often the exit of a task that is not our child is checked for.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// How long `stop` waits for a task to go after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct ProcessDriver {
    node: String,
    /// The tasks this instance started, by pid, until `remove`.
    started: Mutex<HashMap<i32, Started>>,
}

/// A child this instance started: its identity, its output, its exit once reaped.
#[derive(Clone)]
struct Started {
    found: FoundTask,
    logs: LogFiles,
    exit: watch::Receiver<Option<Exit>>,
}

impl ProcessDriver {
    pub fn new(node_name: &str) -> ProcessDriver {
        ProcessDriver {
            node: node_name.to_string(),
            started: Mutex::new(HashMap::new()),
        }
    }

    fn started(&self, pid: i32) -> Option<Started> {
        self.started.lock().unwrap().get(&pid).cloned()
    }

    /// The identity variables of a task (the process driver's labels).
    fn identity(&self, launch: &TaskLaunch) -> [(String, String); 4] {
        [
            (env_name(LABEL_ALLOC_ID), launch.alloc_id.clone()),
            (env_name(LABEL_JOB), launch.job_id.clone()),
            (env_name(LABEL_TASK), launch.task.name.clone()),
            (env_name(LABEL_NODE), self.node.clone()),
        ]
    }

    /// The environment of `pid` if it is a task of this node (and alive: a zombie's
    /// environment is empty).
    fn ours(&self, pid: i32) -> Option<procfs::Environ> {
        let env = procfs::environ(pid).ok()?;
        let node = procfs::var(&env, &env_name(LABEL_NODE))?;
        (node == self.node && procfs::var(&env, &env_name(LABEL_ALLOC_ID)).is_some()).then_some(env)
    }

    fn is_running(&self, pid: i32) -> bool {
        match self.started(pid) {
            Some(started) => started.exit.borrow().is_none(),
            None => procfs::is_alive(pid) && self.ours(pid).is_some(),
        }
    }

    /// Resolves when `pid` exits: our child's status, or for an adopted task once it
    /// has left `/proc` (or is a zombie, or the pid now belongs to something else).
    async fn exit_of(&self, pid: i32) -> Exit {
        if let Some(started) = self.started(pid) {
            return child_exit(started.exit).await;
        }
        while procfs::is_alive(pid) && self.ours(pid).is_some() {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
        Exit {
            code: None,
            message: "exited (exit code unknown: adopted after an agent restart)".to_string(),
        }
    }

    /// Kills what is left of an earlier start of the same allocation's task.
    async fn replace_leftovers(&self, launch: &TaskLaunch) -> Result<(), DriverError> {
        for found in self.list().await? {
            if found.running && found.alloc_id == launch.alloc_id && found.task == launch.task.name
            {
                tracing::info!(pid = %found.handle.id, "killing a leftover of the same task");
                self.stop(&found.handle, Duration::ZERO).await?;
            }
        }
        Ok(())
    }

    /// The Gantry tasks of this node in `/proc`: process group leaders that have not
    /// exited (a task's own children inherit its environment and its group, but do not
    /// lead the group).
    fn scan_proc(&self) -> Vec<FoundTask> {
        procfs::pids()
            .into_iter()
            .filter(|&pid| procfs::stat(pid).is_some_and(|s| s.pgrp == pid && s.state != 'Z'))
            .filter_map(|pid| {
                let env = self.ours(pid)?;
                let var = |label| {
                    procfs::var(&env, &env_name(label))
                        .unwrap_or("")
                        .to_string()
                };
                Some(FoundTask {
                    handle: handle(pid),
                    alloc_id: var(LABEL_ALLOC_ID),
                    job_id: var(LABEL_JOB),
                    task: var(LABEL_TASK),
                    running: true,
                })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Driver for ProcessDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    async fn available(&self) -> bool {
        true
    }

    async fn start(&self, launch: &TaskLaunch) -> Result<TaskHandle, DriverError> {
        let Some((program, args)) = launch.task.command.split_first() else {
            return Err(engine("the process driver needs a command"));
        };
        self.replace_leftovers(launch).await?;
        let dir = &launch.alloc_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| engine(format!("cannot create {}: {e}", dir.display())))?;
        let logs = LogFiles::in_dir(dir, &launch.task.name);
        let (stdout, stderr) = logs
            .open_for_append()
            .map_err(|e| engine(format!("cannot open the task's log files: {e}")))?;

        let mut command = Command::new(program);
        command
            .args(args)
            .envs(&launch.task.env)
            .envs(&launch.extra_env)
            .envs(self.identity(launch))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false);
        new_session(&mut command);
        let child = command
            .spawn()
            .map_err(|e| engine(format!("cannot start {program}: {e}")))?;
        let pid = child
            .id()
            .ok_or_else(|| engine("the process exited at once"))? as i32;

        let started = Started {
            found: FoundTask {
                handle: handle(pid),
                alloc_id: launch.alloc_id.clone(),
                job_id: launch.job_id.clone(),
                task: launch.task.name.clone(),
                running: true,
            },
            logs,
            exit: reap_in_background(child),
        };
        self.started.lock().unwrap().insert(pid, started);
        Ok(handle(pid))
    }

    async fn wait(&self, handle: &TaskHandle) -> Result<Exit, DriverError> {
        Ok(self.exit_of(pid_of(handle)?).await)
    }

    async fn stop(&self, handle: &TaskHandle, grace: Duration) -> Result<(), DriverError> {
        let pid = pid_of(handle)?;
        // Once the task is gone its pid may be reused: signal nothing then.
        if !self.is_running(pid) {
            return Ok(());
        }
        signal_group(pid, libc::SIGTERM)?;
        if tokio::time::timeout(grace, self.exit_of(pid))
            .await
            .is_err()
        {
            tracing::info!(
                pid,
                ?grace,
                "the task outlived its grace period; killing it"
            );
        }
        // Also kills what the task started in its group and left behind.
        signal_group(pid, libc::SIGKILL)?;
        if tokio::time::timeout(KILL_WAIT, self.exit_of(pid))
            .await
            .is_err()
        {
            return Err(engine(format!("process {pid} survived SIGKILL")));
        }
        Ok(())
    }

    async fn remove(&self, handle: &TaskHandle) -> Result<(), DriverError> {
        let pid = pid_of(handle)?;
        self.started.lock().unwrap().remove(&pid);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<FoundTask>, DriverError> {
        let mut found = self.scan_proc();
        // Children that exited stay listed until removed, like stopped containers.
        for started in self.started.lock().unwrap().values() {
            let gone = started.exit.borrow().is_some();
            if gone && !found.iter().any(|f| f.handle == started.found.handle) {
                found.push(FoundTask {
                    running: false,
                    ..started.found.clone()
                });
            }
        }
        Ok(found)
    }

    async fn exec(
        &self,
        handle: &TaskHandle,
        command: &[String],
        timeout: Duration,
    ) -> Result<i64, DriverError> {
        let pid = pid_of(handle)?;
        let Some((program, args)) = command.split_first() else {
            return Err(engine("exec needs a command"));
        };
        let not_found = || DriverError::NotFound(format!("process {pid}"));
        let env = self.ours(pid).ok_or_else(not_found)?;
        let cwd = procfs::cwd(pid).map_err(|_| not_found())?;

        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| engine(format!("cannot run {program}: {e}")))?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => Ok(exit_code(status)),
            Ok(Err(e)) => Err(engine(format!("waiting for {program}: {e}"))),
            Err(_) => {
                if let Some(id) = child.id() {
                    let _ = signal_group(id as i32, libc::SIGKILL);
                }
                let _ = child.wait().await;
                Err(engine(format!("{program} timed out after {timeout:?}")))
            }
        }
    }

    async fn logs(
        &self,
        handle: &TaskHandle,
        follow: bool,
        tail: Option<usize>,
    ) -> Result<LogChunks, DriverError> {
        let pid = pid_of(handle)?;
        if let Some(started) = self.started(pid) {
            let exit = started.exit;
            let alive = move || exit.borrow().is_none();
            return Ok(logs::stream(started.logs, tail, follow, alive));
        }
        let not_found = || DriverError::NotFound(format!("process {pid}"));
        let env = self.ours(pid).ok_or_else(not_found)?;
        let task = procfs::var(&env, &env_name(LABEL_TASK)).ok_or_else(not_found)?;
        let cwd = procfs::cwd(pid).map_err(|_| not_found())?;
        let files = LogFiles::in_dir(&cwd, task);
        let node = self.node.clone();
        let alive = move || {
            procfs::is_alive(pid)
                && procfs::environ(pid)
                    .is_ok_and(|env| procfs::var(&env, &env_name(LABEL_NODE)) == Some(&node))
        };
        Ok(logs::stream(files, tail, follow, alive))
    }
}

/// `gantry.alloc_id` → `GANTRY_ALLOC_ID`.
fn env_name(label: &str) -> String {
    label.replace('.', "_").to_uppercase()
}

fn handle(pid: i32) -> TaskHandle {
    TaskHandle {
        driver: DRIVER,
        id: pid.to_string(),
    }
}

fn pid_of(handle: &TaskHandle) -> Result<i32, DriverError> {
    match handle.id.parse::<i32>() {
        Ok(pid) if pid > 1 && handle.driver == DRIVER => Ok(pid),
        _ => Err(DriverError::NotFound(format!("process {}", handle.id))),
    }
}

fn engine(message: impl Into<String>) -> DriverError {
    DriverError::Engine(message.into())
}
