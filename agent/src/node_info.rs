//! What this node offers the scheduler: CPU (in millis) and memory (in MB).
//!
//! The agent reports these on registration, and the managers place allocations only
//! where their reservations fit. Inside a container or a systemd slice the machine's
//! totals overstate what the agent may really use, so both are capped by the cgroup
//! limits (v2 `cpu.max` / `memory.max`, or v1 `cpu.cfs_quota_us` / `memory.limit_in_bytes`).
//! The parsing is written as pure functions over the files' contents so it can be tested
//! without a particular machine; the few functions that touch the filesystem only read.

use std::fs;
use std::path::{Path, PathBuf};

use gantry_api::job::Resources;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Limits at or above this many bytes (1 EiB) mean "no limit": cgroup v1 reports an
/// unlimited memory cgroup as a huge page-aligned number (9223372036854771712).
const UNLIMITED_BYTES: u64 = 1 << 60;

/// The CPU and memory this node can offer to tasks.
pub fn detect_resources() -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut cpu_millis = cpus * 1000;
    if let Some(quota) = cgroup_cpu_millis() {
        cpu_millis = cpu_millis.min(quota);
    }
    let mut memory_mb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo_total_mb(&text))
        .unwrap_or(0);
    if let Some(limit) = cgroup_memory_mb() {
        memory_mb = memory_mb.min(limit);
    }
    Resources {
        cpu_millis,
        memory_mb,
    }
}

/// `MemTotal` of `/proc/meminfo` (given in kB) in MB.
pub fn parse_meminfo_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let bytes = match words.next().unwrap_or("kB") {
        "kB" => value * 1024,
        "B" => value,
        _ => return None,
    };
    Some(bytes / (1024 * 1024))
}

/// A cgroup v2 `cpu.max` (`"<quota> <period>"`, quota `max` = unlimited) in CPU millis.
pub fn parse_cpu_max(cpu_max: &str) -> Option<u64> {
    let mut words = cpu_max.split_whitespace();
    let quota = words.next()?;
    if quota == "max" {
        return None;
    }
    let period = words.next().unwrap_or("100000");
    quota_millis(quota.parse().ok()?, period.parse().ok()?)
}

/// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota `-1` = unlimited) in
/// CPU millis.
pub fn parse_cfs_quota(quota_us: &str, period_us: &str) -> Option<u64> {
    let quota: i64 = quota_us.trim().parse().ok()?;
    let period: i64 = period_us.trim().parse().ok()?;
    if quota <= 0 || period <= 0 {
        return None;
    }
    quota_millis(quota as u64, period as u64)
}

fn quota_millis(quota: u64, period: u64) -> Option<u64> {
    if period == 0 {
        return None;
    }
    Some(quota.saturating_mul(1000) / period)
}

/// A memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`) in MB; `max` and
/// absurdly large values are unlimited (`None`).
pub fn parse_memory_limit_mb(limit: &str) -> Option<u64> {
    let limit = limit.trim();
    if limit == "max" {
        return None;
    }
    let bytes: u64 = limit.parse().ok()?;
    if bytes >= UNLIMITED_BYTES {
        return None;
    }
    Some(bytes / (1024 * 1024))
}

/// The cgroup v2 path of this process from `/proc/self/cgroup` (the `0::/path` line);
/// `None` on a v1-only host.
pub fn parse_cgroup_v2_path(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim().to_string())
}

/// This process' cgroup v2 directory and its ancestors up to the root: a limit set on
/// any of them applies.
fn cgroup_v2_dirs() -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| parse_cgroup_v2_path(&text));
    let Some(own) = own else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    let mut dir = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
    while dir.starts_with(CGROUP_ROOT) {
        dirs.push(dir.clone());
        if !dir.pop() {
            break;
        }
    }
    dirs
}

/// The smallest of the limits `parse` finds in `file` of the v2 cgroup directories.
fn smallest_v2_limit(file: &str, parse: fn(&str) -> Option<u64>) -> Option<u64> {
    cgroup_v2_dirs()
        .iter()
        .filter_map(|dir| fs::read_to_string(dir.join(file)).ok())
        .filter_map(|text| parse(&text))
        .min()
}

fn cgroup_cpu_millis() -> Option<u64> {
    smallest_v2_limit("cpu.max", parse_cpu_max).or_else(|| {
        ["cpu,cpuacct", "cpu"].iter().find_map(|controller| {
            let dir = Path::new(CGROUP_ROOT).join(controller);
            let quota = fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok()?;
            let period = fs::read_to_string(dir.join("cpu.cfs_period_us")).ok()?;
            parse_cfs_quota(&quota, &period)
        })
    })
}

fn cgroup_memory_mb() -> Option<u64> {
    smallest_v2_limit("memory.max", parse_memory_limit_mb).or_else(|| {
        let path = Path::new(CGROUP_ROOT).join("memory/memory.limit_in_bytes");
        parse_memory_limit_mb(&fs::read_to_string(path).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_unlimited_and_quota() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1500));
        assert_eq!(parse_cpu_max("50000 100000"), Some(500));
        assert_eq!(parse_cpu_max("200000"), Some(2000));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn cfs_quota_v1() {
        assert_eq!(parse_cfs_quota("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_quota("250000\n", "100000\n"), Some(2500));
        assert_eq!(parse_cfs_quota("100000", "0"), None);
        assert_eq!(parse_cfs_quota("x", "100000"), None);
    }

    #[test]
    fn meminfo_total() {
        let meminfo = "MemTotal:       16318412 kB\nMemFree:         1234567 kB\n\
                       MemAvailable:    8000000 kB\n";
        assert_eq!(parse_meminfo_total_mb(meminfo), Some(15935));
        assert_eq!(parse_meminfo_total_mb("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn memory_limits() {
        assert_eq!(parse_memory_limit_mb("max\n"), None);
        assert_eq!(parse_memory_limit_mb("536870912\n"), Some(512));
        assert_eq!(parse_memory_limit_mb("9223372036854771712\n"), None);
        assert_eq!(parse_memory_limit_mb("-1"), None);
    }

    #[test]
    fn cgroup_v2_path() {
        let text = "12:cpu,cpuacct:/docker/abc\n0::/system.slice/gantry.service\n";
        assert_eq!(
            parse_cgroup_v2_path(text).as_deref(),
            Some("/system.slice/gantry.service")
        );
        assert_eq!(parse_cgroup_v2_path("4:memory:/x\n"), None);
    }

    #[test]
    fn detects_something_on_this_machine() {
        let found = detect_resources();
        assert!(found.cpu_millis > 0);
        assert!(found.memory_mb > 0);
    }
}
