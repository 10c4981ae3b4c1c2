//! The agents' credentials, with ACL on.
//!
//! An agent registers its node with the cluster's join token (one secret for every
//! agent, rotatable by an operator) and gets a secret of its own in the answer; its
//! heartbeats and its session present that node secret. Re-registering replaces the
//! node's secret, so a copied secret stops working when the real agent restarts, and
//! rotating the join token does not cut off agents already registered.

use super::catch_up::catch_up;
use super::middleware::{bearer, unauthorized};
use crate::api::ApiError;
use crate::manager::Manager;
use crate::state::{Command, Outcome};
use axum::http::HeaderMap;

const ASK_AN_OPERATOR: &str =
    "ask an operator for the current one (`gantry acl join-token rotate`) and start the agent with --join-token (GANTRY_JOIN_TOKEN)";

/// Registration: the bearer token must be the current join token.
pub async fn check_join_token(manager: &Manager, headers: &HeaderMap) -> Result<(), ApiError> {
    if !manager.config.acl {
        return Ok(());
    }
    let Some(presented) = bearer(headers) else {
        return Err(unauthorized(format!(
            "join token refused: none was given; {ASK_AN_OPERATOR}"
        )));
    };
    let accepted = |manager: &Manager| manager.state.read().acl.is_join_token(&presented);
    if accepted(manager) || (catch_up(manager).await && accepted(manager)) {
        return Ok(());
    }
    let acl = &manager.state.read().acl;
    if !acl.has_join_token() {
        return Err(unauthorized(
            "join token refused: the cluster has no join token yet; an operator must bootstrap \
             ACL first (`gantry acl bootstrap`), which prints the join token",
        ));
    }
    Err(unauthorized(format!(
        "join token refused: it is not this cluster's current join token (wrong, or rotated \
         since); {ASK_AN_OPERATOR}"
    )))
}

/// Heartbeats and the session: the bearer token must be the node's own secret.
pub async fn check_node_secret(
    manager: &Manager,
    headers: &HeaderMap,
    node_id: &str,
) -> Result<(), ApiError> {
    if !manager.config.acl {
        return Ok(());
    }
    let presented = bearer(headers).unwrap_or_default();
    let accepted = |manager: &Manager| manager.state.read().acl.is_node_secret(node_id, &presented);
    if !presented.is_empty()
        && (accepted(manager) || (catch_up(manager).await && accepted(manager)))
    {
        return Ok(());
    }
    Err(unauthorized(format!(
        "node secret refused for node `{node_id}`: register the node again (with the join \
         token) to get a new one"
    )))
}

/// A registered node's new secret (with ACL on), committed as a hash before it is
/// handed to the agent. Replaces the node's previous secret.
pub async fn issue_node_secret(
    manager: &Manager,
    node_id: &str,
) -> Result<Option<String>, ApiError> {
    if !manager.config.acl {
        return Ok(None);
    }
    let issued = super::issue::node_secret(node_id);
    let applied = crate::write::submit(manager, Command::Acl(issued.command)).await?;
    match applied.outcome {
        Outcome::Acl(_) => Ok(Some(issued.secrets)),
        other => Err(ApiError::internal(format!(
            "setting a node secret answered {other:?}"
        ))),
    }
}
