//! The snapshot file: the whole replicated state as one JSON document,
//! `{"format": "gantry-snapshot/1", "index", "taken_at_ms", "records": [[key, value]...]}`.
//!
//! The records are the store's key/value pairs, in key order. Each value is the record's
//! JSON exactly as stored, embedded as JSON (not as a string), so the file reads well
//! with `jq` and a restore writes back the very bytes that were saved. A restore being
//! staged (`restore/` keys) is not part of the state and is never in a file.

use super::keys;
use super::machine::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeSet;

pub use gantry_api::client::SNAPSHOT_FORMAT;

#[derive(Serialize)]
struct Written<'a> {
    format: &'a str,
    index: u64,
    taken_at_ms: u64,
    records: Vec<(&'a str, &'a RawValue)>,
}

#[derive(Deserialize)]
struct Read<'a> {
    format: String,
    index: u64,
    #[serde(default)]
    taken_at_ms: u64,
    #[serde(borrow)]
    records: Vec<(String, &'a RawValue)>,
}

/// A checked snapshot file: every record decodes into a state.
#[derive(Debug)]
pub struct SnapshotFile {
    /// The log index the state was taken at (in the cluster it was taken from).
    pub index: u64,
    pub taken_at_ms: u64,
    /// Keys and the JSON text of their values, in the file's order.
    pub records: Vec<(String, String)>,
}

/// Writes the stored `pairs` (in key order) as a snapshot file taken at `index`.
pub fn encode(
    index: u64,
    taken_at_ms: u64,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<Vec<u8>, String> {
    let mut records = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let key = std::str::from_utf8(key).map_err(|e| format!("non-UTF-8 state key: {e}"))?;
        if key.starts_with(keys::RESTORE_PREFIX) {
            continue;
        }
        let value = std::str::from_utf8(value)
            .ok()
            .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
            .ok_or_else(|| format!("stored record `{key}` is not JSON"))?;
        records.push((key, value));
    }
    let file = Written {
        format: SNAPSHOT_FORMAT,
        index,
        taken_at_ms,
        records,
    };
    Ok(serde_json::to_vec(&file).expect("a snapshot file serialises"))
}

/// Reads and checks a snapshot file: its format, that no key repeats, and that its
/// records load into a state (the same decoding a manager does at startup). The error
/// says what is wrong, for a person.
pub fn parse(bytes: &[u8]) -> Result<SnapshotFile, String> {
    let file: Read = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a Gantry snapshot file (JSON with format, index and records, as saved by \
             GET /v1/operator/snapshot): {e}"
        )
    })?;
    if file.format != SNAPSHOT_FORMAT {
        return Err(format!(
            "snapshot format `{}` is not one this manager reads (`{SNAPSHOT_FORMAT}`)",
            file.format
        ));
    }
    let mut seen = BTreeSet::new();
    for (key, _) in &file.records {
        if key.starts_with(keys::RESTORE_PREFIX) {
            return Err(format!("`{key}` is not a record of the cluster state"));
        }
        if !seen.insert(key.as_str()) {
            return Err(format!("record `{key}` appears twice"));
        }
    }
    let mut pairs = file
        .records
        .iter()
        .map(|(key, value)| (key.clone().into_bytes(), value.get().as_bytes().to_vec()));
    State::from_records(&mut pairs)
        .map_err(|e| format!("the snapshot's records do not make a valid state: {e}"))?;
    Ok(SnapshotFile {
        index: file.index,
        taken_at_ms: file.taken_at_ms,
        records: file
            .records
            .into_iter()
            .map(|(key, value)| (key, value.get().to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Vec<u8> {
        let spec = format!(
            r#"{{"id":"{id}","tasks":[{{"name":"main","image":"busybox",
            "resources":{{"cpu_millis":100,"memory_mb":32}}}}]}}"#
        );
        let spec = gantry_api::parse_job_spec(spec.as_bytes(), None).unwrap();
        let job = serde_json::json!({
            "spec": spec, "version": 1, "status": "pending", "submitted_at_ms": 1,
            "create_index": 3, "modify_index": 3,
        });
        serde_json::to_vec(&job).unwrap()
    }

    fn pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b"job/a".to_vec(), job("a")),
            (b"job/b".to_vec(), job("b")),
            (b"restore/0000000000".to_vec(), b"{\"staged\":1}".to_vec()),
        ]
    }

    #[test]
    fn a_file_round_trips_byte_for_byte_without_staged_parts() {
        let bytes = encode(42, 7, &pairs()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"gantry-snapshot/1","index":42,"taken_at_ms":7,"#),
            "{text}"
        );
        assert!(!text.contains("restore/"));
        let file = parse(&bytes).unwrap();
        assert_eq!((file.index, file.taken_at_ms), (42, 7));
        let expected: Vec<(String, String)> = pairs()[..2]
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.clone()).unwrap(),
                    String::from_utf8(v.clone()).unwrap(),
                )
            })
            .collect();
        assert_eq!(file.records, expected);
        // What the client reads of it.
        let header = gantry_api::client::SnapshotFile::parse(bytes.into()).unwrap();
        assert_eq!((header.index, header.records), (42, 2));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let good = String::from_utf8(encode(42, 7, &pairs()).unwrap()).unwrap();
        let refused = |text: &str| parse(text.as_bytes()).unwrap_err();

        assert!(refused(&good[..good.len() / 2]).starts_with("not a Gantry snapshot file"));
        assert!(refused("").starts_with("not a Gantry snapshot file"));
        assert!(refused(r#"{"format":"gantry-snapshot/1","records":[]}"#).contains("index"));
        assert!(
            refused(&good.replace("gantry-snapshot/1", "gantry-snapshot/9"))
                .contains("gantry-snapshot/9")
        );
        assert!(refused(&good.replace("job/b", "job/a")).contains("`job/a` appears twice"));
        assert!(refused(&good.replace("job/b", "jobz/b")).contains("unknown state key `jobz/b`"));
        assert!(
            refused(&good.replace(r#""image":"busybox""#, r#""image":7"#))
                .contains("corrupt record `job/a`"),
        );
        let staged =
            r#"{"format":"gantry-snapshot/1","index":1,"records":[["restore/0000000000",{}]]}"#;
        assert!(refused(staged).contains("not a record of the cluster state"));
    }

    #[test]
    fn an_empty_state_makes_an_empty_file() {
        let file = parse(&encode(0, 0, &[]).unwrap()).unwrap();
        assert!(file.records.is_empty());
    }

    #[test]
    fn a_stored_value_that_is_not_json_is_an_error_not_a_broken_file() {
        let error = encode(1, 1, &[(b"job/a".to_vec(), b"\xff".to_vec())]).unwrap_err();
        assert!(error.contains("job/a"), "{error}");
    }
}
