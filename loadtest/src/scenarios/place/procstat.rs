//! What the kernel says a manager process costs: CPU time, peak memory, and the
//! size of its data dir.
//!
//! Why it exists: at scale the question is not only "how fast" but "what did the
//! leader spend to get there" — CPU seconds (saturation shows as ~100 % of a core or
//! more), peak RSS, bytes on disk. The load tester does not keep server PIDs in a
//! shared place, so a manager is found in /proc by what it was started with: a child
//! of this process whose command line says `--listen 127.0.0.1:PORT`. Linux only.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One manager process, found by its listen port.
#[derive(Debug, Clone)]
pub struct ManagerProc {
    pub pid: u32,
    pub data_dir: Option<PathBuf>,
}

/// CPU time (user + system) and memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub rss_kb: u64,
    /// Peak resident set size so far (VmHWM).
    pub peak_rss_kb: u64,
}

/// The child of this process listening on `port` (its `--listen 127.0.0.1:PORT`).
pub fn find_manager(port: u16) -> Result<ManagerProc> {
    let me = std::process::id();
    let wanted = format!("127.0.0.1:{port}");
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let listens = args
            .windows(2)
            .any(|w| w[0] == "--listen" && w[1] == wanted);
        if listens && parent_of(pid) == Some(me) {
            let data_dir = args
                .windows(2)
                .find(|w| w[0] == "--data-dir")
                .map(|w| PathBuf::from(&w[1]));
            return Ok(ManagerProc { pid, data_dir });
        }
    }
    bail!("no child process listening on {wanted} in /proc")
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat).get(1)?.parse().ok()
}

/// The fields of /proc/PID/stat after the `(comm)` one: state is [0], ppid [1],
/// utime [11], stime [12].
fn stat_fields(stat: &str) -> Vec<&str> {
    let after_comm = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    after_comm.split_whitespace().collect()
}

/// Clock ticks per second for utime/stime.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU and memory of `pid` now; `None` once it has exited.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat);
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        cpu_seconds: (utime + stime) / ticks_per_second(),
        rss_kb: status_kb(&status, "VmRSS:"),
        peak_rss_kb: status_kb(&status, "VmHWM:"),
    })
}

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Bytes a directory tree occupies on disk, like `du -s` (allocated blocks).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_skip_a_command_name_with_spaces_and_parens() {
        let stat = "42 (gantry (x) y) S 7 42 42 0 -1 4194560 1 0 0 0 150 30 0 0 20 0";
        let f = stat_fields(stat);
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "7");
        assert_eq!(f[11], "150");
        assert_eq!(f[12], "30");
    }

    #[test]
    fn our_own_process_has_a_sample() {
        let s = sample(std::process::id()).expect("self");
        assert!(s.peak_rss_kb > 0);
        assert!(s.peak_rss_kb >= s.rss_kb / 2);
    }
}
