//! The `/v1/acl` routes: bootstrap, tokens, and the join token.
//!
//! Who may call them is decided before they run (`crate::acl::access`): bootstrap is
//! public (it works once), `token/self` takes any valid token, the rest need a
//! `management` token. Secrets are generated here, on the manager that took the
//! request; the command committed carries their hashes, and the answer carries the
//! secrets once.

use super::body;
use super::consistency::{prepare_read, ReadParams};
use super::error::ApiError;
use crate::acl::{issue, Caller};
use crate::manager::Manager;
use crate::state::acl::AclOutcome;
use crate::state::{Command, Outcome};
use crate::write::submit;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use gantry_api::acl::{
    AclBootstrapRequest, AclBootstrapResponse, AclToken, AclTokenWithSecret, CreateTokenRequest,
    JoinTokenResponse, RotateJoinTokenRequest,
};
use gantry_api::error::codes;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route("/v1/acl/bootstrap", post(bootstrap))
        .route("/v1/acl/tokens", get(list_tokens).post(create_token))
        .route("/v1/acl/tokens/{accessor_id}", delete(delete_token))
        .route("/v1/acl/token/self", get(token_self))
        .route("/v1/acl/join-token/rotate", post(rotate_join_token))
}

/// `POST /v1/acl/bootstrap` → `201` the first management token and join token.
#[utoipa::path(
    post,
    path = "/v1/acl/bootstrap",
    operation_id = "acl_bootstrap",
    tag = "acl",
    request_body(content = Option<gantry_api::acl::AclBootstrapRequest>, description = "Optional: an empty body generates the secret"),
    responses(
        (status = 201, description = "The first management token (with its secret) and the first join token", body = gantry_api::acl::AclBootstrapResponse),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`), or a malformed body or field", body = gantry_api::ErrorBody),
        (status = 409, description = "Already bootstrapped (`acl_bootstrapped`)", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn bootstrap(
    State(manager): State<Arc<Manager>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_acl(&manager)?;
    let request: AclBootstrapRequest = optional_json(raw)?;
    if manager.state.read().acl.bootstrapped() {
        return Err(already_bootstrapped());
    }
    let issued = issue::bootstrap(request.secret, now_ms()).map_err(field_error)?;
    let token = match commit(&manager, issued.command).await? {
        AclOutcome::Token { token } => token,
        other => return Err(unexpected(other)),
    };
    tracing::info!(accessor = %token.accessor_id, "ACL bootstrapped");
    let answer = AclBootstrapResponse {
        token: AclTokenWithSecret {
            token,
            secret: issued.secrets.token,
        },
        join_token: issued.secrets.join_token,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /v1/acl/tokens`: every token, without secrets.
#[utoipa::path(
    get,
    path = "/v1/acl/tokens",
    operation_id = "list_acl_tokens",
    tag = "acl",
    params(super::consistency::ReadParams),
    responses(
        (status = 200, description = "Every token, without secrets", body = Vec<gantry_api::acl::AclToken>),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`), or a bad `stale`, `index` or `wait`", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn list_tokens(
    State(manager): State<Arc<Manager>>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Vec<AclToken>>, ApiError> {
    require_acl(&manager)?;
    prepare_read(&manager, &params).await?;
    Ok(Json(manager.state.read().acl.tokens().cloned().collect()))
}

/// `POST /v1/acl/tokens` → `201` the token with its secret.
#[utoipa::path(
    post,
    path = "/v1/acl/tokens",
    operation_id = "create_acl_token",
    tag = "acl",
    request_body = gantry_api::acl::CreateTokenRequest,
    responses(
        (status = 201, description = "The new token, with its secret (shown once)", body = gantry_api::acl::AclTokenWithSecret),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`), or a malformed body or field", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn create_token(
    State(manager): State<Arc<Manager>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_acl(&manager)?;
    let request: CreateTokenRequest = body::json(raw)?;
    let issued = issue::create_token(request.name, request.kind, now_ms()).map_err(field_error)?;
    match commit(&manager, issued.command).await? {
        AclOutcome::Token { token } => {
            tracing::info!(accessor = %token.accessor_id, kind = %token.kind, "token created");
            let answer = AclTokenWithSecret {
                token,
                secret: issued.secrets,
            };
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        other => Err(unexpected(other)),
    }
}

/// `DELETE /v1/acl/tokens/{accessor_id}` → the revoked token.
#[utoipa::path(
    delete,
    path = "/v1/acl/tokens/{accessor_id}",
    operation_id = "revoke_acl_token",
    tag = "acl",
    params(("accessor_id" = String, Path, description = "The token's accessor id")),
    responses(
        (status = 200, description = "The revoked token", body = gantry_api::acl::AclToken),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`)", body = gantry_api::ErrorBody),
        (status = 404, description = "No such token", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn delete_token(
    State(manager): State<Arc<Manager>>,
    Path(accessor_id): Path<String>,
) -> Result<Json<AclToken>, ApiError> {
    require_acl(&manager)?;
    let command = crate::state::acl::AclCommand::DeleteToken { accessor_id };
    match commit(&manager, command).await? {
        AclOutcome::Token { token } => {
            tracing::info!(accessor = %token.accessor_id, "token revoked");
            Ok(Json(token))
        }
        other => Err(unexpected(other)),
    }
}

/// `GET /v1/acl/token/self`: the token the request presents.
#[utoipa::path(
    get,
    path = "/v1/acl/token/self",
    operation_id = "acl_token_self",
    tag = "acl",
    responses(
        (status = 200, description = "The token this request presents", body = gantry_api::acl::AclToken),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`), or the request presents no token", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn token_self(
    State(manager): State<Arc<Manager>>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<AclToken>, ApiError> {
    require_acl(&manager)?;
    match caller.map(|Extension(caller)| caller) {
        Some(Caller::Token(token)) => Ok(Json(token)),
        _ => Err(ApiError::bad_request(
            "this request presents no token (the cluster secret is not a token)",
        )),
    }
}

/// `POST /v1/acl/join-token/rotate` → the new join token.
#[utoipa::path(
    post,
    path = "/v1/acl/join-token/rotate",
    operation_id = "rotate_join_token",
    tag = "acl",
    request_body(content = Option<gantry_api::acl::RotateJoinTokenRequest>, description = "Optional: an empty body generates the new join token"),
    responses(
        (status = 200, description = "The new join token; the previous one no longer registers nodes", body = gantry_api::acl::JoinTokenResponse),
        (status = 400, description = "ACL is off on this manager (`acl_disabled`), or a malformed body or field", body = gantry_api::ErrorBody),
    )
)]
pub(crate) async fn rotate_join_token(
    State(manager): State<Arc<Manager>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<JoinTokenResponse>, ApiError> {
    require_acl(&manager)?;
    let request: RotateJoinTokenRequest = optional_json(raw)?;
    let issued = issue::rotate_join_token(request.join_token).map_err(field_error)?;
    match commit(&manager, issued.command).await? {
        AclOutcome::JoinTokenRotated => {
            tracing::info!("join token rotated");
            Ok(Json(JoinTokenResponse {
                join_token: issued.secrets,
            }))
        }
        other => Err(unexpected(other)),
    }
}

/// Commits an ACL command; its outcome, or the error to answer (a state-machine refusal,
/// no quorum).
async fn commit(
    manager: &Manager,
    command: crate::state::acl::AclCommand,
) -> Result<AclOutcome, ApiError> {
    let applied = submit(manager, Command::Acl(command)).await?;
    match applied.outcome {
        Outcome::Acl(outcome) => Ok(outcome),
        Outcome::Rejected { code, .. } if code == codes::ACL_BOOTSTRAPPED => {
            Err(already_bootstrapped())
        }
        Outcome::Rejected { code, message } => Err(ApiError::rejected(&code, message)),
        other => Err(ApiError::internal(format!(
            "an ACL command answered {other:?}"
        ))),
    }
}

fn require_acl(manager: &Manager) -> Result<(), ApiError> {
    if manager.config.acl {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::ACL_DISABLED,
            "ACL is disabled on this manager: start every manager with --acl (and a cluster \
             secret) to use tokens",
        ))
    }
}

fn already_bootstrapped() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        codes::ACL_BOOTSTRAPPED,
        "ACL was already bootstrapped; ask a holder of a management token for a token",
    )
}

/// A JSON body that may also be empty (then the defaults).
fn optional_json<T: DeserializeOwned + Default>(
    raw: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body::bytes(raw)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body::json(Ok(bytes))
}

/// `field: message` from `issue` as a `400` naming the field.
fn field_error(message: String) -> ApiError {
    let field = message.split_once(':').map(|(field, _)| field.to_string());
    let mut error = ApiError::bad_request(message);
    error.field = field;
    error
}

fn unexpected(outcome: AclOutcome) -> ApiError {
    ApiError::internal(format!("an ACL command answered {outcome:?}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
