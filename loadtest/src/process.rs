//! A server process the load tester owns: a Gantry manager or an etcd member.
//!
//! Why a module of its own: a scenario must never leave a process behind — not
//! on success, not on error, not on Ctrl-C, not on a panic. The only way to
//! start one is [`Proc::spawn`], and dropping a [`Proc`] SIGKILLs and reaps it.
//! Children also get `PR_SET_PDEATHSIG`, so even a SIGKILLed load tester takes
//! its servers with it, and their own process group, so a Ctrl-C in the
//! terminal reaches only us (we then kill them ourselves, in order).
//!
//! Each process writes stdout and stderr to one log file (appended across
//! restarts), whose tail we print when something goes wrong.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// What to run, so that the same process can be started again after a kill.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    /// Short name for messages, e.g. `manager 2` or `etcd n1`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
}

pub struct Proc {
    spec: ProcSpec,
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(spec: ProcSpec) -> Result<Proc> {
        let mut proc = Proc { spec, child: None };
        proc.start()?;
        Ok(proc)
    }

    fn start(&mut self) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .with_context(|| format!("opening {}", self.spec.log.display()))?;
        writeln!(
            log,
            "=== gantry-loadtest: starting {} ===\n$ {} {}",
            self.spec.name,
            self.spec.program.display(),
            self.spec.args.join(" ")
        )?;
        let mut cmd = Command::new(&self.spec.program);
        cmd.args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Logs go to a file: no colour escapes in the tails we print.
            .env("NO_COLOR", "1")
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // The death signal fires when the *thread* that forked exits; we spawn
        // from the main task or tokio worker threads, which live as long as
        // the runtime (never from spawn_blocking threads, which come and go).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {} ({})",
                self.spec.name,
                self.spec.program.display()
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// SIGKILL and reap. A no-op if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again with the same arguments (and so the same data dir).
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.start()
    }

    /// `Some(description)` if the process was started and has since exited
    /// on its own.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    pub fn log_path(&self) -> &PathBuf {
        &self.spec.log
    }

    /// The OS process id while it runs (for the chaos scenario's cgroups).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` (e.g. SIGSTOP, SIGCONT) to the process; a no-op if it
    /// is not running.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child's pid; the child is not reaped
        // while `self.child` holds it, so the pid cannot be reused.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("signal {signal} to {}", self.spec.name));
        }
        Ok(())
    }

    /// The last `lines` lines of the log, for error reports.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.spec.log, lines)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(path: &PathBuf, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::from("(unreadable log)");
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The tails of several processes' logs, each under a header.
pub fn logs_report<'a>(procs: impl IntoIterator<Item = &'a Proc>, lines: usize) -> String {
    let mut out = String::new();
    for p in procs {
        out.push_str(&format!(
            "--- {} ({}), last {lines} lines ---\n{}\n",
            p.name(),
            p.log_path().display(),
            p.log_tail(lines)
        ));
    }
    out
}

/// `n` distinct free TCP ports on 127.0.0.1. All listeners are held until
/// every port is chosen, so the ports are distinct; another program could
/// still take one before our server binds it, which a retry would cure.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Find a program: an explicit path, else `<dir of our own executable>/name`,
/// else `name` on `$PATH`.
pub fn find_binary(explicit: Option<&PathBuf>, name: &str) -> Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "{} does not exist", p.display());
        return Ok(p.clone());
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.to_owned()))
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    anyhow::bail!(
        "`{name}` not found next to this executable nor on $PATH; pass its path explicitly"
    )
}
