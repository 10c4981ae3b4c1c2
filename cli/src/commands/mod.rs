//! One module per subcommand, and what the operator commands share.

pub mod acl;
pub mod agent;
pub mod alloc;
pub mod completion;
pub mod connect;
pub mod deployment;
mod deployment_progress;
pub mod dev;
pub mod events;
pub mod failure;
pub mod job;
mod job_progress;
pub mod node;
pub mod operator;
pub mod server;
pub mod service;
pub mod shutdown;
mod spec_file;
pub mod status;

/// Lets a closed stdout (`gantry job list | head -1`) end an operator command quietly,
/// as it ends other command-line tools, instead of a panic in `println!`. Not for the
/// long-running commands: a manager or agent must survive a client's closed socket.
pub fn restore_default_sigpipe() {
    // SAFETY: called before the command starts; resetting a signal's disposition to its
    // default has no other effect on this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
