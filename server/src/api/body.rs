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
            // A body without a declared length that outgrew the limit while being read.
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                "request body is larger than the limit (--max-body-bytes)",
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

/// Bodies above the limit are still read (and thrown away) up to this size before the
/// `413` is sent: a client that is still sending when the server answers and closes would
/// otherwise see a broken pipe instead of the error. Anything larger is cut off.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Middleware: answers `413` to a request whose declared `Content-Length` is over `limit`,
/// after draining the body so the client can read the answer.
pub async fn reject_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures::StreamExt;

    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            if length <= DRAIN_LIMIT {
                let mut chunks = request.into_body().into_data_stream();
                while let Some(Ok(_)) = chunks.next().await {}
            }
            too_large(limit).into_response()
        }
        _ => next.run(request).await,
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the limit of {limit} bytes (--max-body-bytes)"),
    )
}
