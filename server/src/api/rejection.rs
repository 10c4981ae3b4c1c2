//! axum answers a request that its extractors cannot read (a query string that does not
//! deserialize, a repeated query parameter, a path segment that is not valid UTF-8) with
//! a plain-text `4xx`. This layer turns those answers into the JSON error body every
//! other error has, so a client can always parse `{"error": {"code", "message"}}`.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gantry_api::error::codes;

/// axum's rejection messages are one line; anything longer is cut here.
const MESSAGE_LIMIT: usize = 16 << 10;

/// The peer routes speak their own encoding to other managers; they are left alone.
const PEER_PREFIX: &str = "/v1/raft/";

/// Middleware: a plain-text `4xx` becomes the JSON error body, with the same text.
/// `422` (axum's "well-formed but wrong" for JSON bodies) becomes `400` like every other
/// malformed request of this API.
pub async fn json_rejections(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(PEER_PREFIX) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain_text {
        return response;
    }
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), MESSAGE_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let (status, code) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (status, codes::PAYLOAD_TOO_LARGE),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, codes::UNSUPPORTED_MEDIA_TYPE),
        StatusCode::NOT_FOUND => (status, codes::NOT_FOUND),
        StatusCode::UNPROCESSABLE_ENTITY => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
        _ => (status, codes::BAD_REQUEST),
    };
    let message = if text.is_empty() {
        format!("the request was refused ({status})")
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Query;
    use axum::routing::get;
    use axum::Router;
    use gantry_api::ErrorBody;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Params {
        #[allow(dead_code)]
        wait: Option<String>,
    }

    async fn answer(uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let app = Router::new()
            .route("/q", get(|Query(_): Query<Params>| async { "fine" }))
            .layer(axum::middleware::from_fn(json_rejections));
        let response = app
            .oneshot(Request::get(uri).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, content_type, body.to_vec())
    }

    #[tokio::test]
    async fn a_query_rejection_becomes_the_json_error_body() {
        let (status, content_type, body) = answer("/q?wait=1s&wait=2s").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let error: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.code(), codes::BAD_REQUEST);
        assert!(error.message().contains("wait"), "{}", error.message());
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        let (status, content_type, body) = answer("/q?wait=1s").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/plain"));
        assert_eq!(body, b"fine");
    }
}
