//! `GET` and `PUT /v1/operator/snapshot`: the whole replicated state as one file.
//!
//! The file is JSON (`{format, index, taken_at_ms, records: [[key, value]...]}`) but the
//! client treats it as bytes: it is saved and restored as it came, so nothing is lost
//! in a round trip through these types. [`SnapshotFile::parse`] reads only what people
//! are shown (the format, the index, the record count) and checks that a file about
//! to be restored is one.

use bytes::Bytes;
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{Call, Client, ClientError};

/// The `format` of the snapshot files this client understands.
pub const SNAPSHOT_FORMAT: &str = "gantry-snapshot/1";

/// A snapshot file and what it says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub bytes: Bytes,
    pub format: String,
    /// The Raft index the state was taken at.
    pub index: u64,
    pub taken_at_ms: u64,
    /// How many `[key, value]` records it holds.
    pub records: usize,
}

/// The fields of the file read for [`SnapshotFile`]; the records are counted, not kept.
#[derive(Deserialize)]
struct Header {
    format: String,
    index: u64,
    #[serde(default)]
    taken_at_ms: u64,
    records: Vec<IgnoredAny>,
}

impl SnapshotFile {
    /// Reads a snapshot file's header; an error says why it is not one.
    pub fn parse(bytes: Bytes) -> Result<SnapshotFile, String> {
        let header: Header = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "not a Gantry snapshot file (expected JSON with format, index and records): {e}"
            )
        })?;
        if header.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "snapshot format `{}` is not one this version reads (`{SNAPSHOT_FORMAT}`)",
                header.format
            ));
        }
        Ok(SnapshotFile {
            bytes,
            format: header.format,
            index: header.index,
            taken_at_ms: header.taken_at_ms,
            records: header.records.len(),
        })
    }
}

/// Answer to `PUT /v1/operator/snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotRestored {
    /// The Raft index at which the restore was committed.
    pub restored_index: u64,
    /// How many records the state holds now.
    pub records: u64,
}

impl Client {
    /// `GET /v1/operator/snapshot`: a consistent copy of the whole state.
    pub async fn save_snapshot(&self) -> Result<SnapshotFile, ClientError> {
        let answer = self
            .call(Call::get(&["v1", "operator", "snapshot"]))
            .await?;
        SnapshotFile::parse(answer.body).map_err(ClientError::Decode)
    }

    /// `PUT /v1/operator/snapshot`: replaces the whole state on every manager with the
    /// file's.
    pub async fn restore_snapshot(
        &self,
        file: &SnapshotFile,
    ) -> Result<SnapshotRestored, ClientError> {
        let call = Call::new(Method::PUT, &["v1", "operator", "snapshot"])
            .body(file.bytes.to_vec(), "application/octet-stream");
        self.call(call).await?.decode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_and_counts_records() {
        let text = r#"{"format":"gantry-snapshot/1","index":42,"taken_at_ms":7,
                       "records":[["jobs/web",{"id":"web"}],["nodes/n1","x"]]}"#;
        let file = SnapshotFile::parse(Bytes::from(text)).unwrap();
        assert_eq!((file.index, file.taken_at_ms, file.records), (42, 7, 2));
        assert_eq!(file.bytes, Bytes::from(text), "kept byte for byte");
    }

    #[test]
    fn refuses_what_is_not_a_snapshot() {
        let err = SnapshotFile::parse(Bytes::from_static(b"id: web\n")).unwrap_err();
        assert!(err.starts_with("not a Gantry snapshot file"), "{err}");
        let other = r#"{"format":"gantry-snapshot/9","index":1,"records":[]}"#;
        let err = SnapshotFile::parse(Bytes::from(other)).unwrap_err();
        assert!(err.contains("gantry-snapshot/9"), "{err}");
    }
}
