//! The client side of peer RPC: how this manager's Raft node reaches the others.
//!
//! One pooled HTTP client serves every peer, so consecutive append requests reuse a
//! kept-alive connection instead of paying a TCP handshake each. Each request carries the
//! deadline openraft gives it. A peer that refuses connections is reported `Unreachable`,
//! which makes openraft back off instead of hammering a dead manager.
//!
//! An append request must be answered within one heartbeat interval (openraft's rule),
//! and a follower that gets none in time stands for election. A request carrying many
//! large entries (plans, batches of status reports) can miss that deadline on a busy
//! machine every time it is retried, so requests are kept under [`MAX_APPEND_BYTES`]:
//! a larger one is refused before it is sent, with a hint of how many entries would fit,
//! and openraft retries at once with fewer.
//!
//! Every request carries the cluster secret (see [`PeerClient`]); a manager with a
//! secret answers `401` to peer requests without it.

use super::codec;
use super::{NodeId, TypeConfig};
use crate::acl::ClusterSecret;
use gantry_api::acl::CLUSTER_SECRET_HEADER;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use reqwest::RequestBuilder;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

pub const APPEND_PATH: &str = "/v1/raft/append";
pub const VOTE_PATH: &str = "/v1/raft/vote";
pub const SNAPSHOT_PATH: &str = "/v1/raft/snapshot";

/// The largest append request sent with more than one entry (a single entry always goes).
pub const MAX_APPEND_BYTES: usize = 256 * 1024;

/// Builds the shared HTTP client used for every manager-to-manager call.
pub fn peer_http_client(secret: Option<ClusterSecret>) -> PeerClient {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client builds");
    PeerClient { http, secret }
}

/// The pooled client for requests to other managers: each request it builds carries
/// the cluster secret (when this manager has one) in `X-Gantry-Cluster-Secret`.
///
/// It dereferences to the plain `reqwest::Client` (same pool, no secret) for requests
/// that leave the managers, such as the agents' log endpoints, which must never see the
/// secret; `request`, `get`, `post`, `put` and `delete` called on a `PeerClient` itself
/// are the peer requests.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: Option<ClusterSecret>,
}

impl PeerClient {
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.secret {
            Some(secret) => request.header(CLUSTER_SECRET_HEADER, secret.header_value()),
            None => request,
        }
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(reqwest::Method::POST, url)
    }

    pub fn put(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(reqwest::Method::PUT, url)
    }

    pub fn delete(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(reqwest::Method::DELETE, url)
    }
}

impl std::ops::Deref for PeerClient {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.http
    }
}

#[derive(Clone)]
pub struct PeerNetwork {
    client: PeerClient,
}

impl PeerNetwork {
    pub fn new(client: PeerClient) -> Self {
        Self { client }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            target,
            node: node.clone(),
            base_url: format!("http://{}", node.addr),
            client: self.client.clone(),
        }
    }
}

pub struct PeerConnection {
    target: NodeId,
    node: BasicNode,
    base_url: String,
    client: PeerClient,
}

impl PeerConnection {
    /// Sends one message and decodes the peer's `Result<Resp, Err>` answer.
    async fn call<Req, Resp, Err>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, Err>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Err: std::error::Error + DeserializeOwned,
    {
        self.call_encoded(path, codec::encode(request), option)
            .await
    }

    /// Sends an already encoded message; see [`PeerConnection::call`].
    async fn call_encoded<Resp, Err>(
        &self,
        path: &str,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, Err>>
    where
        Resp: DeserializeOwned,
        Err: std::error::Error + DeserializeOwned,
    {
        let response = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .header(reqwest::header::CONTENT_TYPE, codec::CONTENT_TYPE)
            .timeout(option.hard_ttl())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&body).into_owned();
            let err = std::io::Error::other(format!("peer answered {status}: {message}"));
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let answer: Result<Resp, Err> =
            codec::decode(&body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|remote| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let entries = rpc.entries.len();
        let body = codec::encode(&rpc);
        if let Some(fit) = entries_that_fit(entries, body.len()) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit as u64),
            ));
        }
        self.call_encoded(APPEND_PATH, body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}

/// When `entries` encode to `bytes`, over [`MAX_APPEND_BYTES`] and more than one entry:
/// about how many entries fit (at least one). `None` when the request may go as it is.
fn entries_that_fit(entries: usize, bytes: usize) -> Option<usize> {
    if entries <= 1 || bytes <= MAX_APPEND_BYTES {
        return None;
    }
    let fit = (entries as u128 * MAX_APPEND_BYTES as u128 / bytes as u128) as usize;
    Some(fit.clamp(1, entries - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_append_requests_are_cut_down_to_what_fits() {
        assert_eq!(
            entries_that_fit(1, 10 * MAX_APPEND_BYTES),
            None,
            "one entry always goes"
        );
        assert_eq!(entries_that_fit(64, MAX_APPEND_BYTES), None);
        assert_eq!(entries_that_fit(64, 4 * MAX_APPEND_BYTES), Some(16));
        assert_eq!(entries_that_fit(2, 100 * MAX_APPEND_BYTES), Some(1));
        assert_eq!(entries_that_fit(3, MAX_APPEND_BYTES + 1), Some(2));
    }
}
