//! Clients of a compose cluster and what they were told.
//!
//! - [`Ledger`]: every write a manager acknowledged (job id → version), and every read
//!   that broke linearizability: after a write is acknowledged, a default (non-stale)
//!   read of it on any manager must return it at that version or later, or fail; it must
//!   never return an older version or "not found".
//! - [`inside`]: a client inside a manager's container (`docker exec` + busybox `wget`
//!   against 127.0.0.1:4646), the only way to reach a manager cut off the network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::support::Resp;

/// See the module comment.
#[derive(Default)]
pub struct Ledger {
    /// job id → the highest version a manager acknowledged for it.
    acks: Mutex<BTreeMap<String, u64>>,
    /// Reads that returned an older state than an acknowledged write.
    violations: Mutex<Vec<String>>,
    /// Reads checked that returned the write (or a later version).
    pub reads_ok: AtomicU64,
    /// Reads that failed (an error status or no answer): allowed.
    pub reads_failed: AtomicU64,
    /// The first few reasons reads failed, for the record.
    failure_samples: Mutex<Vec<String>>,
}

/// A read's outcome, as the ledger judges it.
pub enum Read {
    /// `200` with this version.
    Found(u64),
    NotFound,
    /// Anything else: an error status, a transport error, a timeout.
    Failed(String),
}

impl Read {
    pub fn from_resp(r: &Resp) -> Read {
        match r.status {
            200 => match r.body.get("version").and_then(Value::as_u64) {
                Some(v) => Read::Found(v),
                None => Read::Failed(format!("200 without a version: {}", r.describe())),
            },
            404 => Read::NotFound,
            _ => Read::Failed(r.describe()),
        }
    }
}

impl Ledger {
    pub fn ack(&self, id: &str, version: u64) {
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let v = acks.entry(id.to_string()).or_insert(0);
        *v = (*v).max(version);
    }

    pub fn acks(&self) -> BTreeMap<String, u64> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Judges a read of `id`, started after version `acked` was acknowledged.
    pub fn check_read(&self, where_: &str, id: &str, acked: u64, read: Read) {
        let violation = match read {
            Read::Found(v) if v >= acked => {
                self.reads_ok.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Read::Failed(why) => {
                self.reads_failed.fetch_add(1, Ordering::Relaxed);
                let mut samples = self
                    .failure_samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if samples.len() < 5 {
                    samples.push(format!("{where_}: {why}"));
                }
                return;
            }
            Read::Found(v) => format!(
                "{where_}: read of job {id} returned version {v}, after version {acked} was acknowledged"
            ),
            Read::NotFound => format!(
                "{where_}: read of job {id} returned 404, after version {acked} was acknowledged"
            ),
        };
        eprintln!("[clients] STALE READ: {violation}");
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(violation);
    }

    /// The first few reasons reads failed.
    pub fn failure_samples(&self) -> Vec<String> {
        self.failure_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `Err` naming every acknowledged write that `jobs` (id → version, one manager's
    /// view) lacks or holds at an older version.
    pub fn check_present(&self, manager: &str, jobs: &BTreeMap<String, u64>) -> Result<(), String> {
        let missing: Vec<String> = self
            .acks()
            .into_iter()
            .filter(|(id, v)| jobs.get(id).is_none_or(|have| have < v))
            .map(|(id, v)| format!("{id}@{v} (has {:?})", jobs.get(&id)))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{manager} lacks {} acknowledged write(s): {}",
                missing.len(),
                missing.join(", ")
            ))
        }
    }
}

/// Requests made from inside a manager's container, with busybox `wget`.
pub mod inside {
    use std::time::Duration;

    use serde_json::Value;

    use super::Read;
    use crate::compose::Compose;

    /// How long one request may take inside the container (busybox `timeout`).
    const REQUEST_SECS: &str = "5";
    /// Bound on the `docker exec` around it.
    const EXEC_TIMEOUT: Duration = Duration::from_secs(20);

    /// `POST /v1/jobs` on `service` itself: `Ok((id, version))` only for an acknowledgement.
    pub fn submit(c: &Compose, service: &str, spec: &Value) -> Result<(String, u64), String> {
        let body = spec.to_string();
        let auth = format!("Authorization: Bearer {}", c.token);
        let out = c.exec(
            service,
            &[
                "timeout",
                REQUEST_SECS,
                "wget",
                "-q",
                "-O-",
                "--header",
                &auth,
                "--header",
                "Content-Type: application/json",
                "--post-data",
                &body,
                "http://127.0.0.1:4646/v1/jobs",
            ],
            EXEC_TIMEOUT,
        )?;
        if !out.status.success() {
            return Err(format!("not acknowledged: {}", out.describe()));
        }
        let ack: Value = serde_json::from_str(out.stdout.trim())
            .map_err(|e| format!("answered but not with an ack ({e}): {}", out.describe()))?;
        match (ack["id"].as_str(), ack["version"].as_u64()) {
            (Some(id), Some(v)) => Ok((id.to_string(), v)),
            _ => Err(format!(
                "answered but not with an ack: {}",
                out.stdout.trim()
            )),
        }
    }

    /// `GET /v1/jobs/{id}` (a default, linearizable read) on `service` itself.
    pub fn read_job(c: &Compose, service: &str, id: &str) -> Read {
        let url = format!("http://127.0.0.1:4646/v1/jobs/{id}");
        let out = match c.exec(
            service,
            &[
                "timeout",
                REQUEST_SECS,
                "wget",
                "-q",
                "-O-",
                "--header",
                &format!("Authorization: Bearer {}", c.token),
                &url,
            ],
            EXEC_TIMEOUT,
        ) {
            Ok(out) => out,
            Err(e) => return Read::Failed(e),
        };
        if out.status.success() {
            return match serde_json::from_str::<Value>(out.stdout.trim())
                .ok()
                .and_then(|v| v["version"].as_u64())
            {
                Some(v) => Read::Found(v),
                None => Read::Failed(format!("200 without a version: {}", out.describe())),
            };
        }
        // busybox wget: "wget: server returned error: HTTP/1.1 404 Not Found"
        if out.stderr.contains(" 404 ") {
            Read::NotFound
        } else {
            Read::Failed(out.describe())
        }
    }
}
