//! Network partitions of one manager, with iptables, scoped to the managers'
//! own traffic.
//!
//! Why it exists: every manager listens on 127.0.0.1 and talks to its peers
//! from ephemeral ports, so a port alone cannot tell peer traffic from the
//! load tester's clients or the simulated agents. Each manager therefore runs
//! in its own cgroup (v2), and a partition of manager P is a few DROP rules
//! on OUTPUT: packets from P's cgroup to the other managers' ports, and
//! packets from each other manager's cgroup to P's port. Clients and agents
//! (in this process) still reach every manager.
//!
//! Every rule carries a comment naming this process; [`Isolation`] deletes
//! exactly the rules it added when a partition heals, when it is dropped
//! (normal end, error, Ctrl-C, panic), and at start-up deletes rules that a
//! killed earlier run (a dead pid) left behind. Nothing else in the tables
//! is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const TAG_PREFIX: &str = "gantry-loadtest-chaos-pid-";

pub struct Isolation {
    /// `Err(why)` when partitions cannot be made here; the nemesis skips them.
    setup: std::result::Result<Cgroups, String>,
    ports: Vec<u16>,
    /// Rule specs (what follows `-I OUTPUT`) installed and not yet deleted.
    installed: Vec<Vec<String>>,
    tag: String,
}

/// One cgroup per manager under `<cgroup2 mount>/gantry-lt-chaos-<pid>/`.
struct Cgroups {
    mount: PathBuf,
    /// Relative to the cgroup2 root, as iptables' `--path` wants it.
    root: String,
    managers: usize,
}

impl Cgroups {
    fn create(managers: usize) -> Result<Cgroups> {
        let mount = cgroup2_mount().context("no cgroup2 mount in /proc/mounts")?;
        let root = format!("gantry-lt-chaos-{}", std::process::id());
        let cgroups = Cgroups {
            mount,
            root,
            managers,
        };
        for i in 0..managers {
            let dir = cgroups.dir(i);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(cgroups)
    }

    fn path(&self, i: usize) -> String {
        format!("{}/m{}", self.root, i + 1)
    }

    fn dir(&self, i: usize) -> PathBuf {
        self.mount.join(self.path(i))
    }

    fn attach(&self, i: usize, pid: u32) -> Result<()> {
        let procs = self.dir(i).join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .with_context(|| format!("moving pid {pid} into {}", procs.display()))
    }

    /// Remove the cgroups; they must be empty (the managers killed) by now.
    fn remove(&self) {
        for i in 0..self.managers {
            let _ = std::fs::remove_dir(self.dir(i));
        }
        let _ = std::fs::remove_dir(self.mount.join(&self.root));
    }
}

impl Isolation {
    /// Check that iptables works (`iptables -L`) and create the cgroups.
    /// Never fails: when partitions are impossible, says why in
    /// [`Isolation::unavailable`].
    pub fn probe(managers: usize) -> Isolation {
        let setup = iptables(&["-L", "-n"])
            .map_err(|e| format!("iptables is unavailable or not permitted: {e:#}"))
            .and_then(|_| {
                remove_stale_rules();
                Cgroups::create(managers).map_err(|e| format!("cannot create cgroups: {e:#}"))
            });
        Isolation {
            setup,
            ports: Vec::new(),
            installed: Vec::new(),
            tag: format!("{TAG_PREFIX}{}", std::process::id()),
        }
    }

    /// Why partitions are skipped, if they are.
    pub fn unavailable(&self) -> Option<&str> {
        self.setup.as_ref().err().map(String::as_str)
    }

    pub fn set_ports(&mut self, ports: Vec<u16>) {
        self.ports = ports;
    }

    /// Put (a freshly started) manager `i` with pid `pid` into its cgroup.
    pub fn attach(&self, i: usize, pid: Option<u32>) -> Result<()> {
        match (&self.setup, pid) {
            (Ok(cgroups), Some(pid)) => cgroups.attach(i, pid),
            _ => Ok(()),
        }
    }

    /// Cut manager `i` off from the other managers (both directions).
    pub fn partition(&mut self, i: usize) -> Result<()> {
        let Ok(cgroups) = &self.setup else {
            bail!("partitions are unavailable");
        };
        let others: Vec<usize> = (0..self.ports.len()).filter(|&j| j != i).collect();
        let other_ports: Vec<String> = others.iter().map(|&j| self.ports[j].to_string()).collect();
        let mut rules = vec![self.rule(
            &["-m", "multiport", "--dports", &other_ports.join(",")],
            &cgroups.path(i),
        )];
        for &j in &others {
            let port = self.ports[i].to_string();
            rules.push(self.rule(&["--dport", &port], &cgroups.path(j)));
        }
        for rule in rules {
            let mut args = vec!["-I".to_string(), "OUTPUT".into()];
            args.extend(rule.iter().cloned());
            iptables(&args)?;
            self.installed.push(rule);
        }
        Ok(())
    }

    /// One DROP rule: tcp to 127.0.0.1 matching `ports`, sent from `cgroup`.
    fn rule(&self, ports: &[&str], cgroup: &str) -> Vec<String> {
        ["-p", "tcp", "-d", "127.0.0.1"]
            .iter()
            .chain(ports)
            .chain(&["-m", "cgroup", "--path", cgroup])
            .chain(&["-m", "comment", "--comment", &self.tag, "-j", "DROP"])
            .map(|s| s.to_string())
            .collect()
    }

    /// Delete every rule this run installed; returns how many, or the
    /// errors (after trying them all).
    pub fn heal(&mut self) -> Result<usize> {
        let mut errors = Vec::new();
        let n = self.installed.len();
        while let Some(rule) = self.installed.pop() {
            let mut args = vec!["-D".to_string(), "OUTPUT".into()];
            args.extend(rule);
            if let Err(e) = iptables(&args) {
                errors.push(format!("{e:#}"));
            }
        }
        if !errors.is_empty() {
            bail!("deleting partition rules: {}", errors.join("; "));
        }
        Ok(n)
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        if !self.installed.is_empty() {
            match self.heal() {
                Ok(n) => eprintln!("[chaos] removed {n} partition rules on exit"),
                Err(e) => eprintln!("[chaos] WARNING: {e:#}"),
            }
        }
        if let Ok(cgroups) = &self.setup {
            cgroups.remove();
        }
    }
}

fn iptables<S: AsRef<str>>(args: &[S]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = Command::new("iptables")
        .args(&args)
        .output()
        .context("running iptables")?;
    if !out.status.success() {
        bail!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

/// Delete rules (and empty cgroups) of earlier runs whose process is gone,
/// e.g. a load tester killed with SIGKILL mid-partition.
fn remove_stale_rules() {
    let Ok(out) = Command::new("iptables").args(["-S", "OUTPUT"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(pid) = stale_pid(line) else { continue };
        let mut args: Vec<&str> = line.split_whitespace().collect();
        if args.first() != Some(&"-A") {
            continue;
        }
        args[0] = "-D";
        match iptables(&args) {
            Ok(()) => eprintln!("[chaos] removed a stale partition rule of dead pid {pid}"),
            Err(e) => eprintln!("[chaos] WARNING: {e:#}"),
        }
        if let Some(mount) = cgroup2_mount() {
            remove_cgroup_tree(&mount.join(format!("gantry-lt-chaos-{pid}")));
        }
    }
}

/// The pid in a rule's tag, if that process no longer exists.
fn stale_pid(rule: &str) -> Option<u32> {
    let start = rule.find(TAG_PREFIX)? + TAG_PREFIX.len();
    let digits: String = rule[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let pid: u32 = digits.parse().ok()?;
    (!Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_pid_reads_the_tag_of_a_dead_process_only() {
        let own = format!(
            "-A OUTPUT -m comment --comment {TAG_PREFIX}{} -j DROP",
            std::process::id()
        );
        assert_eq!(stale_pid(&own), None);
        let dead = format!("-A OUTPUT -m comment --comment {TAG_PREFIX}4000000000 -j DROP");
        assert_eq!(stale_pid(&dead), Some(4_000_000_000));
        assert_eq!(stale_pid("-A OUTPUT -j DROP"), None);
    }
}
