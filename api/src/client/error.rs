//! What can go wrong with a call to a manager, split by who is to blame:
//! the manager said no (`Api`), no manager could be reached (`Transport`),
//! or the answer was not what this client understands (`Decode`).

use crate::error::{codes, ErrorBody};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The manager answered with a 4xx/5xx. When the answer was not a JSON
    /// error body (a proxy, a plain-text rejection) the body is made up from
    /// the status and the text.
    #[error("{status} {body}")]
    Api { status: u16, body: ErrorBody },
    /// No manager could be reached, or the connection failed mid-request.
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
