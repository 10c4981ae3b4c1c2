//! What can go wrong with a call to a manager, split by who is to blame:
//! the manager said no (`Api`), no manager could be reached (`Unreachable`),
//! the connection failed mid-request (`Transport`), or the answer was not
//! what this client understands (`Decode`).

use crate::error::{codes, ErrorBody};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The manager answered with a 4xx/5xx. When the answer was not a JSON
    /// error body (a proxy, a plain-text rejection) the body is made up from
    /// the status and the text.
    #[error("{status} {body}")]
    Api { status: u16, body: ErrorBody },
    /// No manager accepted a connection: each one tried, with why.
    #[error("no manager reachable: {}", describe_unreachable(.0))]
    Unreachable(Vec<Unreachable>),
    /// A connection failed mid-request (or a stream broke).
    #[error("transport error: {0}")]
    Transport(String),
    /// A 2xx answer this client could not decode.
    #[error("cannot decode the response: {0}")]
    Decode(String),
    /// The client was built with an unusable address list.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status of an `Api` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an `Api` error (one of [`codes`]).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(body.code()),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(codes::NOT_FOUND)
    }

    pub fn is_no_quorum(&self) -> bool {
        self.code() == Some(codes::NO_QUORUM)
    }

    /// No manager accepted a connection.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable(_))
    }
}

/// A manager that did not accept a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// `host:port`.
    pub manager: String,
    /// Short, for people: `connection refused`, `timed out`, or the error's last cause.
    pub reason: String,
}

impl Unreachable {
    /// From a failed connection attempt to `base`.
    pub(super) fn new(base: &reqwest::Url, e: &reqwest::Error) -> Unreachable {
        let manager = match (base.host_str(), base.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => base.to_string(),
        };
        Unreachable {
            manager,
            reason: connect_reason(e),
        }
    }
}

fn describe_unreachable(failures: &[Unreachable]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.manager, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a connection could not be made, in a few words: the innermost I/O error's kind
/// when it is a common one, else the innermost cause's message.
fn connect_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            let known = match io.kind() {
                ConnectionRefused => Some("connection refused"),
                TimedOut => Some("timed out"),
                ConnectionReset => Some("connection reset"),
                HostUnreachable => Some("host unreachable"),
                NetworkUnreachable => Some("network unreachable"),
                AddrNotAvailable => Some("address not available"),
                _ => None,
            };
            if let Some(known) = known {
                return known.into();
            }
        }
        last = cause.to_string();
        source = cause.source();
    }
    last
}

/// The error body of a non-2xx answer; made up when the body is not one.
pub(super) fn api_error(status: u16, body: &[u8]) -> ClientError {
    let body = serde_json::from_slice::<ErrorBody>(body).unwrap_or_else(|_| {
        let code = match status {
            404 => codes::NOT_FOUND,
            409 => codes::CONFLICT,
            413 => codes::PAYLOAD_TOO_LARGE,
            415 => codes::UNSUPPORTED_MEDIA_TYPE,
            401 | 403 => codes::UNAUTHORIZED,
            400..=499 => codes::BAD_REQUEST,
            _ => codes::INTERNAL,
        };
        const MAX: usize = 1024;
        let text = String::from_utf8_lossy(body);
        let mut text = text.trim().to_string();
        if text.len() > MAX {
            let mut end = MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        if text.is_empty() {
            text = format!("HTTP {status} with an empty body");
        }
        ErrorBody::new(code, text)
    });
    ClientError::Api { status, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_pass_through() {
        let err = api_error(
            503,
            br#"{"error":{"code":"no_quorum","message":"no leader"}}"#,
        );
        assert!(err.is_no_quorum());
        assert_eq!(err.to_string(), "503 no_quorum: no leader");
    }

    #[test]
    fn other_bodies_are_wrapped() {
        let err = api_error(413, b"length limit exceeded");
        assert_eq!(err.code(), Some(codes::PAYLOAD_TOO_LARGE));
        assert_eq!(
            err.to_string(),
            "413 payload_too_large: length limit exceeded"
        );
        let err = api_error(502, b"");
        assert_eq!(err.to_string(), "502 internal: HTTP 502 with an empty body");
        let err = api_error(400, "é".repeat(1000).as_bytes());
        assert!(err.to_string().ends_with("..."));
    }
}
