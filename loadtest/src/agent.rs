//! One real `gantry agent` process on loopback, running containers on the
//! local Docker engine.
//!
//! Why it exists: scenarios that measure what happens *after* a write — a job
//! turning into running containers — need a node. This file knows the
//! agent's flags and nothing about load. Dropping a [`GantryAgent`] kills
//! the process (the `Proc` guard) and then removes every container labelled
//! with its node name, so a run never leaves containers behind, whatever way
//! it ends. Other agents sharing the engine (other people's test clusters)
//! use other node names, and their containers are never touched.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cluster::path_arg;
use crate::engine::{label, LabelSweep};
use crate::process::{free_ports, logs_report, Proc, ProcSpec};

/// The label the agent's docker driver puts on every container it starts,
/// naming the node (the agent's `--name`).
pub const NODE_LABEL: &str = "gantry.node";
/// The label naming the job a container belongs to.
pub const JOB_LABEL: &str = "gantry.job";

/// What the agent offers and how it stops tasks.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `host:port` of every manager.
    pub managers: Vec<String>,
    /// The node name; unique on this machine's engine.
    pub name: String,
    pub cpu_millis: u64,
    pub memory_mb: u64,
    /// `--stop-grace`, as the agent parses it (e.g. `2s`).
    pub stop_grace: String,
}

pub struct GantryAgent {
    // Field order is drop order: the agent dies before its containers are
    // swept, so it cannot start another one after the sweep.
    proc: Proc,
    _containers: LabelSweep,
    name: String,
}

impl GantryAgent {
    /// Spawn the agent with its data dir and log under `root`, driver
    /// `docker` only. Returns once the process is started; wait for the node
    /// to be `ready` through the managers' API.
    pub fn start(bin: &Path, options: &AgentOptions, root: &Path) -> Result<GantryAgent> {
        let data = root.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let port = free_ports(1)?[0];
        let spec = ProcSpec {
            name: format!("agent {}", options.name),
            program: bin.to_owned(),
            args: vec![
                "agent".into(),
                "--managers".into(),
                options.managers.join(","),
                "--name".into(),
                options.name.clone(),
                "--driver".into(),
                "docker".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--data-dir".into(),
                path_arg(&data),
                "--stop-grace".into(),
                options.stop_grace.clone(),
                "--cpu-millis".into(),
                options.cpu_millis.to_string(),
                "--memory-mb".into(),
                options.memory_mb.to_string(),
            ],
            log: root.join("agent.log"),
        };
        // The sweep exists before the process, so a failed spawn cleans too.
        let sweep = LabelSweep::new(label(NODE_LABEL, &options.name));
        let proc = Proc::spawn(spec)?;
        Ok(GantryAgent {
            proc,
            _containers: sweep,
            name: options.name.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(description)` if the agent has exited on its own.
    pub fn exited(&mut self) -> Option<String> {
        self.proc.exited()
    }

    pub fn log_path(&self) -> &Path {
        self.proc.log_path()
    }

    pub fn logs(&self, lines: usize) -> String {
        logs_report([&self.proc], lines)
    }
}
