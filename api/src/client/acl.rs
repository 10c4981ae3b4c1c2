//! Client calls of the `/v1/acl` routes: bootstrap, tokens, the join token.

use reqwest::Method;

use super::{Call, Client, ClientError};
use crate::acl::{
    AclBootstrapRequest, AclBootstrapResponse, AclToken, AclTokenWithSecret, CreateTokenRequest,
    JoinTokenResponse, RotateJoinTokenRequest, TokenKind,
};

impl Client {
    /// `POST /v1/acl/bootstrap`: the first management token (with `secret` when given)
    /// and the first join token. Works once per cluster, without a token.
    pub async fn acl_bootstrap(
        &self,
        secret: Option<String>,
    ) -> Result<AclBootstrapResponse, ClientError> {
        let call = Call::new(Method::POST, &["v1", "acl", "bootstrap"])
            .json(&AclBootstrapRequest { secret })?;
        self.call(call).await?.decode()
    }

    /// `GET /v1/acl/tokens` (management).
    pub async fn list_acl_tokens(&self) -> Result<Vec<AclToken>, ClientError> {
        self.call(Call::get(&["v1", "acl", "tokens"]))
            .await?
            .decode()
    }

    /// `POST /v1/acl/tokens` (management): a new token, with its secret (shown once).
    pub async fn create_acl_token(
        &self,
        name: &str,
        kind: TokenKind,
    ) -> Result<AclTokenWithSecret, ClientError> {
        let request = CreateTokenRequest {
            name: name.to_string(),
            kind,
        };
        let call = Call::new(Method::POST, &["v1", "acl", "tokens"]).json(&request)?;
        self.call(call).await?.decode()
    }

    /// `DELETE /v1/acl/tokens/{accessor_id}` (management): the token stops working.
    pub async fn revoke_acl_token(&self, accessor_id: &str) -> Result<AclToken, ClientError> {
        let path = ["v1", "acl", "tokens", accessor_id];
        self.call(Call::new(Method::DELETE, &path)).await?.decode()
    }

    /// `GET /v1/acl/token/self`: the token this client sends.
    pub async fn acl_token_self(&self) -> Result<AclToken, ClientError> {
        self.call(Call::get(&["v1", "acl", "token", "self"]))
            .await?
            .decode()
    }

    /// `POST /v1/acl/join-token/rotate` (management): a new join token (`join_token`
    /// when given); the previous one no longer registers nodes.
    pub async fn rotate_join_token(
        &self,
        join_token: Option<String>,
    ) -> Result<JoinTokenResponse, ClientError> {
        let path = ["v1", "acl", "join-token", "rotate"];
        let call = Call::new(Method::POST, &path).json(&RotateJoinTokenRequest { join_token })?;
        self.call(call).await?.decode()
    }
}
