//! The secret every manager of a cluster shares, and that nothing else knows.
//!
//! Peer requests (append, vote, snapshot chunks, forwarded writes and read-index
//! requests, joins, requests a follower passes on to the leader) carry it in the
//! `X-Gantry-Cluster-Secret` header; a manager that has one refuses peer requests
//! without it. It is given to each manager in a file (`--cluster-secret-file`) or in the
//! `GANTRY_CLUSTER_SECRET` environment variable, never in the replicated state.

use axum::http::{HeaderMap, HeaderValue};
use gantry_api::acl::CLUSTER_SECRET_HEADER;
use std::path::Path;
use std::sync::Arc;

use super::secret::constant_time_eq;

/// The shortest accepted cluster secret.
pub const MIN_LEN: usize = 16;

#[derive(Clone)]
pub struct ClusterSecret(Arc<str>);

impl ClusterSecret {
    /// A secret from text (surrounding whitespace, such as a file's last newline, is
    /// ignored).
    pub fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < MIN_LEN {
            return Err(format!(
                "the cluster secret must be at least {MIN_LEN} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        if HeaderValue::from_str(text).is_err() || text.chars().any(char::is_whitespace) {
            return Err("the cluster secret must be printable ASCII without spaces".into());
        }
        Ok(ClusterSecret(Arc::from(text)))
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the cluster secret file {}: {e}",
                path.display()
            )
        })?;
        Self::new(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The header value to send (marked sensitive, so it is never logged).
    pub fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&self.0).expect("checked when made");
        value.set_sensitive(true);
        value
    }

    /// Whether `headers` carry this secret (compared in constant time).
    pub fn presented_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CLUSTER_SECRET_HEADER)
            .is_some_and(|value| constant_time_eq(value.as_bytes(), self.0.as_bytes()))
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_plain_and_never_printed() {
        assert!(ClusterSecret::new("short").is_err());
        assert!(ClusterSecret::new("has a space in it, too long").is_err());
        let secret = ClusterSecret::new("  0123456789abcdef0123\n").unwrap();
        assert!(!format!("{secret:?}").contains("0123"));

        let mut headers = HeaderMap::new();
        assert!(!secret.presented_in(&headers));
        headers.insert(
            CLUSTER_SECRET_HEADER,
            HeaderValue::from_static("0123456789abcdef0124"),
        );
        assert!(!secret.presented_in(&headers));
        headers.insert(CLUSTER_SECRET_HEADER, secret.header_value());
        assert!(secret.presented_in(&headers));
    }

    #[test]
    fn a_file_names_itself_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let missing = ClusterSecret::from_file(&path).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        std::fs::write(&path, "tiny\n").unwrap();
        assert!(ClusterSecret::from_file(&path)
            .unwrap_err()
            .contains("secret"));
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(ClusterSecret::from_file(&path).is_ok());
    }
}
