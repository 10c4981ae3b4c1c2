//! How a write reaches the log, from any manager.
//!
//! On the leader, `group_commit` batches concurrent commands into one Raft entry. On a
//! follower, `forward` hands the command to the leader over the peer transport. `submit`
//! picks between them and, while there is no leader (an election), retries with backoff
//! until the write deadline, then gives up with `no_quorum`.

pub mod forward;
pub mod group_commit;
pub mod leader_retry;
mod submit;

pub use group_commit::{Applied, GroupCommit, ProposeError};
pub use submit::{submit, WriteError};
