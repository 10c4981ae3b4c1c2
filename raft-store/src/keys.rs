//! The on-disk layout: column family names, the fixed keys inside them, and how log
//! indexes become keys.
//!
//! Everything that decides *where* a byte lives on disk is in this one file, so the layout
//! can be read (and changed) in one place. One RocksDB instance holds all of it, which is
//! what lets a single atomic `WriteBatch` span, say, the application's data and the
//! applied index, and lets one synced WAL write make every earlier write durable.

/// Log entries. Key: [`log_key`] (big-endian index, so key order is index order).
/// Value: rmp-serde of the `Entry`.
pub(crate) const CF_LOGS: &str = "logs";

/// The log store's own metadata: [`VOTE`], [`COMMITTED`], [`LAST_PURGED`].
pub(crate) const CF_STORE_META: &str = "store_meta";

/// The state machine's metadata: [`LAST_APPLIED`], [`LAST_MEMBERSHIP`].
pub(crate) const CF_SM_META: &str = "sm_meta";

/// The application's key/value pairs, exactly as it wrote them through `Writes`.
pub(crate) const CF_SM_DATA: &str = "sm_data";

/// The latest built or installed snapshot: [`SNAPSHOT_META`] and [`SNAPSHOT_DATA`].
pub(crate) const CF_SNAPSHOT: &str = "snapshot";

/// Every column family, in the order they are opened.
pub(crate) const ALL_CFS: [&str; 5] = [CF_LOGS, CF_STORE_META, CF_SM_META, CF_SM_DATA, CF_SNAPSHOT];

// Keys in CF_STORE_META.
pub(crate) const VOTE: &[u8] = b"vote";
pub(crate) const COMMITTED: &[u8] = b"committed";
pub(crate) const LAST_PURGED: &[u8] = b"last_purged";

// Keys in CF_SM_META.
pub(crate) const LAST_APPLIED: &[u8] = b"last_applied";
pub(crate) const LAST_MEMBERSHIP: &[u8] = b"last_membership";

// Keys in CF_SNAPSHOT.
pub(crate) const SNAPSHOT_META: &[u8] = b"meta";
pub(crate) const SNAPSHOT_DATA: &[u8] = b"data";

/// The key of the log entry at `index`: big-endian, so RocksDB's bytewise order is the
/// numeric order and range deletes/scans by index work.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a [`log_key`] was made from, or `None` if `key` is not one.
pub(crate) fn log_index(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_like_indexes() {
        let indexes = [0u64, 1, 255, 256, 65_535, 1 << 40, u64::MAX];
        for pair in indexes.windows(2) {
            assert!(log_key(pair[0]) < log_key(pair[1]), "{pair:?}");
        }
        for i in indexes {
            assert_eq!(log_index(&log_key(i)), Some(i));
        }
        assert_eq!(log_index(b"short"), None);
    }
}
