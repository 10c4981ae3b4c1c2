//! The admin HTTP API (and, on the same address, the peer routes).
//!
//! Every response carries `X-Gantry-Index`, the last log index this manager has applied,
//! so a client can ask for "anything after index N" next time.

mod acl;
mod alloc_control;
mod allocations;
pub(crate) mod body;
mod consistency;
mod deployments;
mod error;
mod events;
mod jobs;
mod leader;
mod logs;
mod nodes;
mod openapi;
mod peers;
mod rejection;
mod services;
mod snapshot;
mod status;
mod transfer_leader;

pub use error::ApiError;

use crate::manager::Manager;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;

pub use gantry_api::headers::INDEX_HEADER;

pub fn router(manager: Arc<Manager>, dispatcher: &Arc<crate::dispatcher::Dispatcher>) -> Router {
    let api = Router::new()
        .route("/v1/status", get(status::get_status))
        .route("/v1/openapi.json", get(openapi::get))
        .route("/v1/operator/raft", get(status::get_raft))
        .route("/v1/operator/raft/peers", post(peers::add_peer))
        .route("/v1/operator/raft/peers/{id}", delete(peers::remove_peer))
        .route(
            transfer_leader::PATH,
            post(transfer_leader::transfer_leader),
        )
        .route("/v1/jobs", post(jobs::register).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::delete))
        .route("/v1/jobs/{id}/versions", get(jobs::versions))
        .route("/v1/jobs/{id}/scale", post(jobs::scale))
        .route("/v1/jobs/{id}/revert", post(jobs::revert))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/nodes/{id}", get(nodes::get))
        .route("/v1/nodes/{id}/drain", post(nodes::drain))
        .route("/v1/nodes/{id}/eligibility", post(nodes::eligibility))
        .route("/v1/allocations", get(allocations::list))
        .route("/v1/allocations/{id}", get(allocations::get))
        .route("/v1/allocations/{id}/logs", get(logs::get))
        .route("/v1/allocations/{id}/stop", post(alloc_control::stop))
        .route("/v1/allocations/{id}/restart", post(alloc_control::restart))
        .route("/v1/services", get(services::list))
        .route("/v1/services/{name}", get(services::get))
        .route("/v1/deployments", get(deployments::list))
        .route("/v1/deployments/{id}", get(deployments::get))
        .route("/v1/deployments/{id}/{action}", post(deployments::act_on))
        .route("/v1/events", get(events::stream))
        .route("/metrics", get(crate::metrics::render))
        .route("/v1/jobs/{id}/plan", post(jobs::plan))
        .merge(acl::routes())
        .layer(DefaultBodyLimit::max(manager.config.max_body_bytes))
        .route_layer(middleware::from_fn_with_state(
            manager.config.max_body_bytes,
            body::reject_oversized,
        ));
    Router::new()
        .merge(api)
        // Snapshot files are far larger than other bodies: a limit of their own.
        .merge(snapshot::routes())
        .merge(crate::raft::peer_routes::routes(manager.clone()))
        .merge(crate::dispatcher::routes(dispatcher))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(rejection::json_rejections))
        .layer(middleware::from_fn_with_state(
            manager.clone(),
            crate::acl::authorize,
        ))
        .layer(middleware::from_fn_with_state(manager.clone(), stamp_index))
        .layer(middleware::from_fn(crate::metrics::http::observe))
        .with_state(manager)
}

async fn stamp_index(
    State(manager): State<Arc<Manager>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let index = manager.applied_index();
    response
        .headers_mut()
        .insert(INDEX_HEADER, HeaderValue::from(index));
    response
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        gantry_api::error::codes::BAD_REQUEST,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
