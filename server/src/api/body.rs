//! Reading request bodies with errors in our JSON shape (axum's own rejections are
//! plain text), including `413` for a body over the limit.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use gantry_api::error::codes;
use serde::de::DeserializeOwned;

pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                "request body is larger than the limit (see --max-body-bytes)",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {rejection}"))
        }
    })
}

/// Decodes a small JSON body, naming the offending field on failure.
pub fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = bytes(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let mut error = ApiError::bad_request(format!("{path}: {}", e.inner()));
        if path != "." {
            error.field = Some(path);
        }
        error
    })
}
