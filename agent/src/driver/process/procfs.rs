//! What the kernel tells about other processes through `/proc`.
//!
//! The process driver keeps no record of what it started: after an agent restart it
//! finds its tasks again by their environment (`GANTRY_NODE`, `GANTRY_ALLOC_ID`, ...),
//! which `/proc/<pid>/environ` shows as it was when the task started.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A process' environment, as given to it at its start.
pub type Environ = BTreeMap<OsString, OsString>;

/// The fields of `/proc/<pid>/stat` the driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `Z` (zombie), ...
    pub state: char,
    /// The process group id.
    pub pgrp: i32,
}

/// Every pid in `/proc`.
pub fn pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

pub fn environ(pid: i32) -> io::Result<Environ> {
    Ok(parse_environ(&std::fs::read(format!(
        "/proc/{pid}/environ"
    ))?))
}

pub fn cwd(pid: i32) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd"))
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Does the process exist and has not exited (a zombie has)?
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|stat| stat.state != 'Z')
}

/// Looks a variable up in an environment, as text.
pub fn var<'a>(env: &'a Environ, name: &str) -> Option<&'a str> {
    env.get(OsStr::new(name))?.to_str()
}

/// `NAME=value` entries separated by NUL bytes.
pub fn parse_environ(bytes: &[u8]) -> Environ {
    bytes
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            let name = OsStr::from_bytes(&entry[..eq]).to_os_string();
            let value = OsStr::from_bytes(&entry[eq + 1..]).to_os_string();
            Some((name, value))
        })
        .collect()
}

/// `pid (comm) state ppid pgrp ...`; `comm` may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { state, pgrp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let stat = parse_stat("1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560").unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                pgrp: 1234
            }
        );
        assert_eq!(parse_stat("1234 (x) Z 1 77 77").unwrap().state, 'Z');
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn environ_entries() {
        let env = parse_environ(b"A=1\0B=x=y\0EMPTY=\0junk\0");
        assert_eq!(var(&env, "A"), Some("1"));
        assert_eq!(var(&env, "B"), Some("x=y"));
        assert_eq!(var(&env, "EMPTY"), Some(""));
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn this_process_is_alive() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        assert!(pids().contains(&me));
        assert!(environ(me).is_ok());
    }
}
