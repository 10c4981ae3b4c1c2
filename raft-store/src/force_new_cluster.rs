//! Recovering the last surviving manager of a cluster that lost its quorum for good:
//! rewrite its stored membership to itself alone, so it leads a one-member cluster.
//!
//! Raft changes the membership only through a quorum of the current one, and that quorum
//! is gone. So this is done offline, on the stopped store, before the Raft node starts:
//!
//! - a membership entry with this manager as the only voter (no learners) is appended
//!   after the last log entry, in a new term `T + 1` (one above any term in the vote or
//!   the log);
//! - the vote is set to "`T + 1`, this manager, committed", as if it had won an election
//!   for that term and appended the change as its leader.
//!
//! When openraft starts it takes the last membership entry of the log as the effective
//! membership (committed or not; `StorageHelper::get_membership`), and a committed vote
//! for itself makes it resume as leader of that term at once (`Engine::startup`). Being
//! the only voter, it commits the entry (and everything before it) by itself. Nothing is
//! removed: applied and committed data stay as they are, and entries that were in the
//! log but not yet committed become committed with it (this manager is the authority
//! now).
//!
//! Running it on a store whose effective membership is already this manager alone
//! changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership as RaftMembership, Vote};
use rocksdb::{IteratorMode, WriteBatch};

use crate::codec;
use crate::db::{Db, Durability};
use crate::error::StoreError;
use crate::keys::{
    log_key, CF_LOGS, CF_SM_META, CF_STORE_META, LAST_APPLIED, LAST_MEMBERSHIP, LAST_PURGED, VOTE,
};
use crate::snapshot::Membership;
use crate::{Entry, LogId, NodeId};

/// What [`force_new_cluster`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forced {
    /// The effective membership was already this manager alone: nothing was written.
    AlreadyAlone,
    /// The membership entry was appended and the vote saved.
    Rewritten {
        /// The voters of the membership that was replaced (one set per joint config).
        previous_voters: Vec<BTreeSet<NodeId>>,
        /// The term this manager now leads.
        term: u64,
        /// The log index of the new membership entry.
        index: u64,
    },
}

/// Why [`force_new_cluster`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    #[error("cannot open the RocksDB store in {path}: {source}")]
    Db {
        path: String,
        source: rocksdb::Error,
    },
    #[error(
        "no Raft state in {0}: --force-new-cluster recovers a manager that was a member \
         of a cluster (start it with the data directory it used); a new cluster is started \
         with --initial-cluster"
    )]
    NoState(String),
    #[error("cannot rewrite the membership in {path}: {message}")]
    Store { path: String, message: String },
}

/// Makes the store in `dir` a one-member cluster of `id` (reachable at `node`), keeping
/// all its data. Call it before the store is opened by [`crate::open`].
pub fn force_new_cluster(dir: &Path, id: NodeId, node: BasicNode) -> Result<Forced, ForceError> {
    let path = dir.display().to_string();
    if !dir.join("CURRENT").exists() {
        return Err(ForceError::NoState(path));
    }
    let db = Db::open(dir).map_err(|source| ForceError::Db {
        path: path.clone(),
        source,
    })?;
    rewrite(&db, id, node).map_err(|e| match e {
        Rewrite::NoState => ForceError::NoState(path.clone()),
        Rewrite::Store(e) => ForceError::Store {
            path: path.clone(),
            message: e.to_string(),
        },
    })
}

enum Rewrite {
    NoState,
    Store(StoreError),
}

impl From<StoreError> for Rewrite {
    fn from(e: StoreError) -> Self {
        Rewrite::Store(e)
    }
}

impl From<rocksdb::Error> for Rewrite {
    fn from(e: rocksdb::Error) -> Self {
        Rewrite::Store(e.into())
    }
}

fn rewrite(db: &Db, id: NodeId, node: BasicNode) -> Result<Forced, Rewrite> {
    let vote: Option<Vote<NodeId>> = db.get(CF_STORE_META, VOTE, "vote")?;
    let last_purged: Option<LogId> = db.get(CF_STORE_META, LAST_PURGED, "last purged log id")?;
    let last_applied: Option<LogId> = db.get(CF_SM_META, LAST_APPLIED, "last applied log id")?;
    let applied_membership: Membership = db
        .get(CF_SM_META, LAST_MEMBERSHIP, "last membership")?
        .unwrap_or_default();
    let (last_log_id, log_membership) = scan_log(db, applied_membership.log_id().as_ref())?;
    let last_log_id = last_log_id.or(last_purged).or(last_applied);

    // openraft's rule: a membership entry in the log is newer than the applied one.
    let effective = match &log_membership {
        Some(membership) => membership.clone(),
        None => applied_membership.membership().clone(),
    };
    if vote.is_none() && last_log_id.is_none() && effective.nodes().next().is_none() {
        return Err(Rewrite::NoState);
    }
    let voters = effective.get_joint_config().clone();
    let alone = BTreeSet::from([id]);
    let nodes: BTreeSet<NodeId> = effective.nodes().map(|(id, _)| *id).collect();
    if voters == [alone.clone()] && nodes == alone {
        return Ok(Forced::AlreadyAlone);
    }

    let term = vote
        .map(|v| v.leader_id().term)
        .into_iter()
        .chain(last_log_id.map(|l| l.leader_id.term))
        .max()
        .unwrap_or(0)
        + 1;
    let index = last_log_id.map_or(0, |l| l.index + 1);
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, id), index),
        payload: EntryPayload::Membership(RaftMembership::new(
            vec![alone],
            BTreeMap::from([(id, node)]),
        )),
    };
    let mut batch = WriteBatch::default();
    batch.put_cf(
        db.cf(CF_LOGS),
        log_key(index),
        codec::encode("log entry", &entry)?,
    );
    batch.put_cf(
        db.cf(CF_STORE_META),
        VOTE,
        codec::encode("vote", &Vote::new_committed(term, id))?,
    );
    db.write(batch, Durability::Synced)?;
    Ok(Forced::Rewritten {
        previous_voters: voters,
        term,
        index,
    })
}

type LogMembership = RaftMembership<NodeId, BasicNode>;

/// The last log id present, and the membership of the last membership entry after
/// `since` (the applied membership's log id), reading the log from its end.
fn scan_log(
    db: &Db,
    since: Option<&LogId>,
) -> Result<(Option<LogId>, Option<LogMembership>), Rewrite> {
    let mut last = None;
    for item in db.rocks().iterator_cf(db.cf(CF_LOGS), IteratorMode::End) {
        let (_, value) = item?;
        let entry: Entry = codec::decode("log entry", &value)?;
        if last.is_none() {
            last = Some(entry.log_id);
        }
        if since.is_some_and(|since| entry.log_id.index <= since.index) {
            break;
        }
        if let EntryPayload::Membership(membership) = entry.payload {
            return Ok((last, Some(membership)));
        }
    }
    Ok((last, None))
}
