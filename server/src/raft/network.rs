//! The client side of peer RPC: how this manager's Raft node reaches the others.
//!
//! One pooled HTTP client serves every peer, so consecutive append requests reuse a
//! kept-alive connection instead of paying a TCP handshake each. Each request carries the
//! deadline openraft gives it. A peer that refuses connections is reported `Unreachable`,
//! which makes openraft back off instead of hammering a dead manager.

use super::codec;
use super::{NodeId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

pub const APPEND_PATH: &str = "/v1/raft/append";
pub const VOTE_PATH: &str = "/v1/raft/vote";
pub const SNAPSHOT_PATH: &str = "/v1/raft/snapshot";

/// Builds the shared HTTP client used for every manager-to-manager call.
pub fn peer_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client builds")
}

#[derive(Clone)]
pub struct PeerNetwork {
    client: reqwest::Client,
}

impl PeerNetwork {
    pub fn new(client: reqwest::Client) -> Self {
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
    client: reqwest::Client,
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
        let response = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .header(reqwest::header::CONTENT_TYPE, codec::CONTENT_TYPE)
            .timeout(option.hard_ttl())
            .body(codec::encode(request))
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
        self.call(APPEND_PATH, &rpc, &option).await
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
