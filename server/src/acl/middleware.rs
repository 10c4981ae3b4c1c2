//! The check in front of every route: does the request's token allow it?
//!
//! Runs before any handler (and before the body is read), so a refused request changes
//! nothing. `401 unauthorized` when no token or an unknown one is presented (the
//! message says how to pass one); `403 forbidden` when the token is valid but its kind
//! does not allow the route (the message names both kinds). A request that carries the
//! cluster secret comes from another manager (a request passed on to the leader, a
//! manager joining) and passes: whoever holds that secret can append to the log anyway.
//! The caller found is left in the request's extensions as a [`Caller`].

use super::access::{required, Access};
use super::catch_up::catch_up;
use crate::api::ApiError;
use crate::manager::Manager;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gantry_api::acl::{AclToken, TokenKind};
use gantry_api::error::codes;
use std::sync::Arc;

/// Who made a request that passed the check.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A holder of this token.
    Token(AclToken),
    /// Another manager (it presented the cluster secret).
    Manager,
}

pub async fn authorize(
    State(manager): State<Arc<Manager>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !manager.config.acl {
        return next.run(request).await;
    }
    let needed = match required(request.method(), request.uri().path()) {
        Access::Public | Access::Peer | Access::Agent => return next.run(request).await,
        Access::AnyToken => None,
        Access::Token(kind) => Some(kind),
    };
    if manager
        .config
        .cluster_secret
        .as_ref()
        .is_some_and(|secret| secret.presented_in(request.headers()))
    {
        request.extensions_mut().insert(Caller::Manager);
        return next.run(request).await;
    }
    let token = match token_of(&manager, request.headers()).await {
        Ok(token) => token,
        Err(refusal) => {
            let mut response = refusal.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    };
    if let Some(needed) = needed {
        if !token.kind.allows(needed) {
            return forbidden(needed, &token, &request).into_response();
        }
    }
    request.extensions_mut().insert(Caller::Token(token));
    next.run(request).await
}

/// The valid token the request presents, or the `401` to answer.
async fn token_of(manager: &Manager, headers: &HeaderMap) -> Result<AclToken, ApiError> {
    let secret = bearer(headers).ok_or_else(|| {
        unauthorized(
            "this cluster requires a token: pass one with --token or GANTRY_TOKEN \
             (sent as `Authorization: Bearer <secret>`)",
        )
    })?;
    if let Some(token) = lookup(manager, &secret) {
        return Ok(token);
    }
    if catch_up(manager).await {
        if let Some(token) = lookup(manager, &secret) {
            return Ok(token);
        }
    }
    Err(unauthorized(
        "the token is not valid (unknown or revoked): pass a valid one with --token or \
         GANTRY_TOKEN",
    ))
}

fn lookup(manager: &Manager, secret: &str) -> Option<AclToken> {
    manager.state.read().acl.token_for_secret(secret).cloned()
}

/// The secret of an `Authorization: Bearer <secret>` header.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then(|| secret.to_string())
}

pub fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
}

fn forbidden(needed: TokenKind, token: &AclToken, request: &Request) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        codes::FORBIDDEN,
        format!(
            "{} {} needs a `{needed}` token; this token (`{}`) is `{}`",
            request.method(),
            request.uri().path(),
            token.name,
            token.kind
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
