//! The one error shape every route answers with: a status code and
//! `{"error": {"code", "message", "field"?}}`.

use crate::write::WriteError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_api::error::{codes, ErrorBody, ErrorDetail};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn no_quorum(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::NO_QUORUM, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }

    /// Maps a state-machine rejection code back to an HTTP error.
    pub fn rejected(code: &str, message: String) -> Self {
        match code {
            codes::NOT_FOUND => Self::not_found(message),
            codes::CONFLICT => Self::new(StatusCode::CONFLICT, codes::CONFLICT, message),
            _ => Self::bad_request(message),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::NoQuorum(message) => Self::no_quorum(message),
            WriteError::Stopped(message) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::INTERNAL,
                format!("this manager is shutting down: {message}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
