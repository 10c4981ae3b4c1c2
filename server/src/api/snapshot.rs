//! `GET` and `PUT /v1/operator/snapshot`: backup and restore of the whole replicated state.
//!
//! Saving reads, after a linearizable read barrier, one consistent copy of the store's
//! records (data and applied index from one RocksDB snapshot, so exactly the state at
//! that index, whatever part of the state wrote them) and sends it as a file (see
//! `state::snapshot_file`). Restoring checks the whole file first (400 and nothing
//! changes on anything wrong), then sends its records through the log in parts and
//! replaces the state with them in one final command (see `state::restore`), so every
//! manager ends up with the same state.

use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::manager::Manager;
use crate::state::snapshot_file::{self, SnapshotFile};
use crate::state::{Command, Outcome};
use crate::write::submit;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use gantry_api::client::SnapshotRestored;
use gantry_api::error::codes;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const PATH: &str = "/v1/operator/snapshot";

/// The largest snapshot file a restore accepts (the API's other routes keep the smaller
/// `--max-body-bytes`).
pub const MAX_SNAPSHOT_BYTES: usize = 512 << 20;

/// About how many bytes of records one staged part carries: well under the 256 KiB
/// that keeps an append request fast, even with JSON escaping.
const PART_BYTES: usize = 128 << 10;

/// Parts proposed at once (group commit puts them into fewer log entries).
const PARTS_IN_FLIGHT: usize = 4;

pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(PATH, get(save).put(restore))
        .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
}

/// `GET /v1/operator/snapshot`: the state as a file to keep.
#[utoipa::path(
    get,
    path = "/v1/operator/snapshot",
    operation_id = "save_snapshot",
    tag = "operator",
    params(super::consistency::ReadParams),
    responses(
        (status = 200, description = "A consistent copy of the whole replicated state, taken at or after the leader's commit index: a JSON document `{format: \"gantry-snapshot/1\", index, taken_at_ms, records: [[key, value], ...]}` sent as a file", content_type = "application/octet-stream", body = String),
        (status = 400, description = "A bad `stale`, `index` or `wait` parameter", body = gantry_api::ErrorBody),
        (status = 500, description = "The stored state could not be read", body = gantry_api::ErrorBody),
    )
)]
pub async fn save(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
) -> Result<Response, ApiError> {
    prepare_read(&manager, &params).await?;
    let store = manager.store.clone();
    let data = tokio::task::spawn_blocking(move || store.applied_data())
        .await
        .map_err(|e| ApiError::internal(format!("reading the store failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot read the stored state: {e}")))?;
    let index = data.last_applied.map_or(0, |id| id.index);
    let file = snapshot_file::encode(index, now_ms(), &data.pairs).map_err(ApiError::internal)?;
    tracing::info!(index, bytes = file.len(), "snapshot saved");
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"gantry-snapshot-{index}.json\""),
        ),
    ];
    Ok((headers, file).into_response())
}

/// `PUT /v1/operator/snapshot`: replaces the whole state, on every manager, with a file's.
#[utoipa::path(
    put,
    path = "/v1/operator/snapshot",
    operation_id = "restore_snapshot",
    tag = "operator",
    request_body(description = "A file saved by `GET /v1/operator/snapshot`", content = String, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Every manager's state is now the file's", body = gantry_api::client::SnapshotRestored),
        (status = 400, description = "Not a snapshot file, or a damaged one (nothing changed)", body = gantry_api::ErrorBody),
        (status = 409, description = "Another restore is in progress", body = gantry_api::ErrorBody),
        (status = 413, description = "The file is larger than the restore limit", body = gantry_api::ErrorBody),
        (status = 500, description = "The restore was applied with an unexpected outcome (a bug)", body = gantry_api::ErrorBody),
    )
)]
pub async fn restore(
    State(manager): State<Arc<Manager>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SnapshotRestored>, ApiError> {
    let bytes = body.map_err(unreadable)?;
    let file = tokio::task::spawn_blocking(move || snapshot_file::parse(&bytes))
        .await
        .map_err(|e| ApiError::internal(format!("checking the snapshot failed: {e}")))?
        .map_err(ApiError::bad_request)?;
    let SnapshotFile {
        index: taken_at_index,
        records,
        ..
    } = file;
    let count = records.len() as u64;
    let parts = into_parts(records, PART_BYTES);
    let part_count = parts.len() as u32;
    let restore_id = format!("{}-{}", manager.id, now_nanos());
    tracing::info!(
        %restore_id,
        records = count,
        parts = part_count,
        taken_at_index,
        "restoring a snapshot"
    );

    futures::stream::iter(parts.into_iter().enumerate())
        .map(|(part, records)| {
            let command = Command::StageRestore {
                restore_id: restore_id.clone(),
                part: part as u32,
                records,
            };
            let manager = &manager;
            async move {
                let applied = submit(manager, command).await?;
                match applied.outcome {
                    Outcome::RestoreStaged { .. } => Ok(()),
                    other => Err(unexpected(other)),
                }
            }
        })
        .buffer_unordered(PARTS_IN_FLIGHT)
        .try_collect::<()>()
        .await?;

    let applied = submit(
        &manager,
        Command::RestoreSnapshot {
            restore_id: restore_id.clone(),
            parts: part_count,
            records: count,
        },
    )
    .await?;
    match applied.outcome {
        Outcome::Restored { records } => {
            tracing::warn!(
                %restore_id,
                records,
                index = applied.index,
                "the cluster state was replaced by a snapshot"
            );
            Ok(Json(SnapshotRestored {
                restored_index: applied.index,
                records,
            }))
        }
        other => Err(unexpected(other)),
    }
}

/// Splits the records into parts of about `budget` bytes each, in order; always at least
/// one part (an empty file restores an empty state).
fn into_parts(records: Vec<(String, String)>, budget: usize) -> Vec<Vec<(String, String)>> {
    let mut parts = vec![Vec::new()];
    let mut size = 0;
    for record in records {
        let bytes = record.0.len() + record.1.len();
        let current = parts.last_mut().expect("never empty");
        if !current.is_empty() && size + bytes > budget {
            parts.push(vec![record]);
            size = bytes;
        } else {
            current.push(record);
            size += bytes;
        }
    }
    parts
}

fn unexpected(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Rejected { code, message } => ApiError::rejected(&code, message),
        other => ApiError::internal(format!("unexpected answer to a restore: {other:?}")),
    }
}

fn unreadable(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("a snapshot file may be at most {MAX_SNAPSHOT_BYTES} bytes"),
        )
    } else {
        ApiError::bad_request(format!("cannot read the snapshot file: {rejection}"))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::into_parts;

    fn record(key: &str, size: usize) -> (String, String) {
        (key.to_string(), "x".repeat(size))
    }

    #[test]
    fn records_are_split_into_parts_in_order() {
        assert_eq!(into_parts(vec![], 100), vec![Vec::new()], "one empty part");
        let records = vec![
            record("a", 40),
            record("b", 40),
            record("c", 40),
            record("d", 500),
            record("e", 10),
        ];
        let parts = into_parts(records.clone(), 100);
        let keys: Vec<Vec<&str>> = parts
            .iter()
            .map(|p| p.iter().map(|(k, _)| k.as_str()).collect())
            .collect();
        assert_eq!(keys, vec![vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]);
        assert_eq!(parts.concat(), records);
    }
}
