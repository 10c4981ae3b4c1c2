//! The one error body on the wire: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every 4xx/5xx from a manager carries it, so the CLI and tests can branch
//! on a stable `code` and show the human `message`. A bad spec also names
//! the offending `field`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::job::SpecError;

/// The stable error codes. Clients match on these, never on messages.
pub mod codes {
    /// The request is malformed (bad query, bad path parameter, bad body).
    pub const BAD_REQUEST: &str = "bad_request";
    /// The job spec does not parse or does not validate; `field` says where.
    pub const INVALID_SPEC: &str = "invalid_spec";
    /// No such job, node, allocation or peer.
    pub const NOT_FOUND: &str = "not_found";
    /// The cluster has no quorum: writes and linearizable reads fail (503).
    pub const NO_QUORUM: &str = "no_quorum";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const INTERNAL: &str = "internal";
    /// This manager is not the leader and could not forward the request.
    pub const NOT_LEADER: &str = "not_leader";
    /// The request conflicts with the current state (e.g. a membership
    /// change already in progress).
    pub const CONFLICT: &str = "conflict";
    /// The request needs a valid bearer token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The bearer token is valid but its kind does not allow the request (403).
    pub const FORBIDDEN: &str = "forbidden";
    /// `POST /v1/acl/bootstrap` on a cluster that was already bootstrapped (409).
    pub const ACL_BOOTSTRAPPED: &str = "acl_bootstrapped";
    /// An ACL route on managers started without `--acl` (400).
    pub const ACL_DISABLED: &str = "acl_disabled";
    /// A manager could not reach the agent of the node a request is about (502).
    pub const AGENT_UNREACHABLE: &str = "agent_unreachable";
    /// The operation exists in the API but this version cannot carry it out (501), e.g.
    /// leadership transfer.
    pub const NOT_SUPPORTED: &str = "not_supported";
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// One of [`codes`].
    pub code: String,
    pub message: String,
    /// The field path of a bad spec (`tasks[0].resources.memory_mb`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
            },
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.error.field = Some(field.into());
        self
    }

    pub fn code(&self) -> &str {
        &self.error.code
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }
}

/// `code: message`.
impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}

/// A bad spec is `invalid_spec`; the message starts with the field path so
/// that it reads well alone, and `field` carries the path for programs.
impl From<SpecError> for ErrorBody {
    fn from(e: SpecError) -> Self {
        let body = ErrorBody::new(codes::INVALID_SPEC, e.to_string());
        if e.field.is_empty() {
            body
        } else {
            body.with_field(e.field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_without_field_when_absent() {
        let body = ErrorBody::new(codes::NOT_FOUND, "no job \"web\"");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"no job \"web\""}}"#
        );
        let back: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).unwrap();
        assert_eq!(back, ErrorBody::new("x", "y"));
    }

    #[test]
    fn spec_error_becomes_invalid_spec_with_field() {
        let body: ErrorBody = SpecError::new("tasks[0].image", "must not be empty").into();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {
                "code": "invalid_spec",
                "message": "tasks[0].image: must not be empty",
                "field": "tasks[0].image",
            }})
        );
        let body: ErrorBody = SpecError::new("", "malformed JSON: x").into();
        assert_eq!(body.error.field, None);
    }
}
