//! Access control: tokens, their kinds, and the bodies of the `/v1/acl` routes.
//!
//! With ACL on (`gantry server --acl`), every API call carries a bearer token
//! (`Authorization: Bearer <secret>`). A token has a kind, and kinds are ordered:
//! `read` < `write` < `management`. A `read` token reads; a `write` token is the
//! operator's (jobs, nodes, allocations, raft peers, snapshots); a `management` token
//! can also create, list and revoke tokens and rotate the agents' join token.
//!
//! The secret of a token is shown once, when it is created; the managers keep only its
//! SHA-256 hash. A token is otherwise known by its `accessor_id`, which is not a secret.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Header carrying the cluster secret on every manager-to-manager request.
pub const CLUSTER_SECRET_HEADER: &str = "x-gantry-cluster-secret";

/// What a token may do. Each kind allows everything the kinds below it allow.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Read anything (`GET`).
    Read,
    /// Also change the cluster: jobs, nodes, allocations, raft peers, snapshots.
    Write,
    /// Also manage tokens and the join token.
    Management,
}

impl TokenKind {
    /// Whether a token of this kind may make a request that needs `required`.
    pub fn allows(self, required: TokenKind) -> bool {
        self >= required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Read => "read",
            TokenKind::Write => "write",
            TokenKind::Management => "management",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(TokenKind::Read),
            "write" => Ok(TokenKind::Write),
            "management" => Ok(TokenKind::Management),
            other => Err(format!(
                "`{other}` is not a token kind: use read, write or management"
            )),
        }
    }
}

/// A token as the API shows it: never with its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AclToken {
    /// The token's public id (for listing and revoking).
    pub accessor_id: String,
    pub name: String,
    pub kind: TokenKind,
    /// When it was created (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
    /// The Raft index that created it.
    pub create_index: u64,
}

/// A token with its secret: only in the answer that creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AclTokenWithSecret {
    #[serde(flatten)]
    pub token: AclToken,
    /// The bearer secret. Shown once: the managers keep only its hash.
    pub secret: String,
}

/// `POST /v1/acl/bootstrap`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AclBootstrapRequest {
    /// The first management token's secret, when the operator picks it (at least 16
    /// characters); generated otherwise.
    #[serde(default)]
    pub secret: Option<String>,
}

/// The `201` answer to `POST /v1/acl/bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AclBootstrapResponse {
    /// The first management token.
    pub token: AclTokenWithSecret,
    /// The first join token, for `gantry agent --join-token`.
    pub join_token: String,
}

/// `POST /v1/acl/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name for people (who or what uses it); 1-128 characters.
    pub name: String,
    pub kind: TokenKind,
}

/// The answer to `POST /v1/acl/join-token/rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JoinTokenResponse {
    /// The new join token; the previous one no longer registers nodes.
    pub join_token: String,
}

/// `POST /v1/acl/join-token/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateJoinTokenRequest {
    /// The new join token, when the operator picks it (at least 16 characters);
    /// generated otherwise.
    #[serde(default)]
    pub join_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_ordered() {
        use TokenKind::*;
        assert!(Management.allows(Write) && Management.allows(Read));
        assert!(Write.allows(Write) && Write.allows(Read) && !Write.allows(Management));
        assert!(Read.allows(Read) && !Read.allows(Write));
        assert_eq!("write".parse::<TokenKind>(), Ok(Write));
        assert!("admin".parse::<TokenKind>().is_err());
        assert_eq!(
            serde_json::to_string(&Management).unwrap(),
            "\"management\""
        );
    }

    #[test]
    fn a_token_with_secret_is_flat() {
        let token = AclTokenWithSecret {
            token: AclToken {
                accessor_id: "a1".into(),
                name: "ci".into(),
                kind: TokenKind::Read,
                created_at_ms: 5,
                create_index: 9,
            },
            secret: "s".into(),
        };
        let json = serde_json::to_value(&token).unwrap();
        assert_eq!(json["accessor_id"], "a1");
        assert_eq!(json["kind"], "read");
        assert_eq!(json["secret"], "s");
        let back: AclTokenWithSecret = serde_json::from_value(json).unwrap();
        assert_eq!(back, token);
        // The plain token never has a secret field.
        let plain = serde_json::to_value(&token.token).unwrap();
        assert!(plain.get("secret").is_none());
    }
}
