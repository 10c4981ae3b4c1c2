//! Starting, signalling and reaping the driver's child processes.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::driver::{DriverError, Exit};

/// Makes the child the leader of a new session and process group: it escapes the
/// agent's terminal (no SIGINT/SIGHUP from it) and can be signalled as a group.
pub fn new_session(command: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process group led by `pid`; a group that is gone is fine.
pub fn signal_group(pid: i32, signal: libc::c_int) -> Result<(), DriverError> {
    // SAFETY: kill has no memory effects; pid > 1 so -pid names one group.
    if unsafe { libc::kill(-pid, signal) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(DriverError::Engine(format!(
        "cannot signal process group {pid}: {err}"
    )))
}

/// Waits for the child in a task of its own (so it is reaped even if nobody asks) and
/// publishes how it ended to any number of waiters.
pub fn reap_in_background(mut child: Child) -> watch::Receiver<Option<Exit>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let exit = match child.wait().await {
            Ok(status) => exit_from(status),
            Err(e) => Exit {
                code: None,
                message: format!("lost track of the process: {e}"),
            },
        };
        tx.send_replace(Some(exit));
    });
    rx
}

pub async fn child_exit(mut exit: watch::Receiver<Option<Exit>>) -> Exit {
    match exit.wait_for(Option::is_some).await {
        Ok(exit) => exit.clone().expect("waited for Some"),
        // The reaper always publishes before it ends; this is only for completeness.
        Err(_) => Exit {
            code: None,
            message: "lost track of the process".to_string(),
        },
    }
}

fn exit_from(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit {
            code: Some(code.into()),
            message: format!("exit code {code}"),
        },
        (None, Some(signal)) => Exit {
            code: None,
            message: format!("killed by signal {signal}"),
        },
        (None, None) => Exit {
            code: None,
            message: format!("exited ({status})"),
        },
    }
}

/// An exec's exit code; a signal counts as `128 + signal`, as in a shell.
pub fn exit_code(status: ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.into(),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}
