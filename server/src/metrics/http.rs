//! Every request's latency, by route template, method and status; and a debug log line
//! per request.
//!
//! The route is the template the router matched (`/v1/jobs/{id}`), never the raw path, so
//! the number of series stays bounded; requests no route matched share `unmatched`. The
//! latency runs to the response head: for a streamed answer (events, logs, agent
//! sessions) that is until the stream starts, not until it ends.

use super::names;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::histogram!(
        names::HTTP_REQUEST_SECONDS,
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    tracing::debug!(
        %route,
        %method,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
