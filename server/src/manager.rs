//! Starting and running one manager: open the store, start the Raft node, serve HTTP,
//! bootstrap or join the cluster, and shut down cleanly.

use crate::config::ServerConfig;
use crate::raft::network::{peer_http_client, PeerClient, PeerNetwork};
use crate::raft::{settings, status, Raft};
use crate::state::ClusterState;
use crate::write::GroupCommit;
use anyhow::Context;
use gantry_api::status::{AddPeerRequest, LeaderRef};
use openraft::error::{InitializeError, RaftError};
use openraft::BasicNode;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler needs, shared by all of them.
pub struct Manager {
    pub id: u64,
    pub config: ServerConfig,
    pub raft: Raft,
    pub state: Arc<ClusterState>,
    pub group_commit: GroupCommit,
    /// Pooled client for manager-to-manager calls (Raft RPC and forwarding); carries the
    /// cluster secret.
    pub peer_client: PeerClient,
    /// What the leader's scheduler could not place, and why (leader-local).
    pub scheduler: crate::scheduler::Shared,
    /// The store Raft writes to, shared: read for consistent snapshot files.
    pub store: gantry_raft_store::LogStore,
}

impl Manager {
    /// The leader this manager currently knows of, with its address.
    pub fn leader(&self) -> Option<LeaderRef> {
        status::leader(&self.raft.metrics().borrow())
    }

    pub fn applied_index(&self) -> u64 {
        status::applied_index(&self.raft.metrics().borrow())
    }
}

/// Runs a manager until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !config.initial_cluster.is_empty()
        && !config
            .initial_cluster
            .iter()
            .any(|(id, _)| *id == config.id)
    {
        anyhow::bail!(
            "--initial-cluster does not list this manager's id {}; add `{}={}` to it",
            config.id,
            config.id,
            config.advertise_addr()
        );
    }
    if config.acl && config.cluster_secret.is_none() {
        anyhow::bail!(
            "--acl needs a cluster secret shared by every manager, or anyone could append to \
             this manager's log: give it with --cluster-secret-file PATH or the \
             GANTRY_CLUSTER_SECRET environment variable (e.g. `openssl rand -hex 32`)"
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;

    // Before anything records: the recorder is the process's (several managers may share it).
    crate::metrics::install();
    let state = Arc::new(ClusterState::new());
    let raft_dir = config.data_dir.join("raft");
    if config.force_new_cluster {
        crate::raft::recovery::force_single_member(&config, &raft_dir)?;
    }
    let (log_store, state_machine) = gantry_raft_store::open(&raft_dir, state.clone())
        .with_context(|| format!("cannot open the Raft store in {}", raft_dir.display()))?;
    let store = log_store.clone();
    let peer_client = peer_http_client(config.cluster_secret.clone());
    let raft = Raft::new(
        config.id,
        Arc::new(settings::raft_config(&config)?),
        PeerNetwork::new(peer_client.clone()),
        log_store,
        state_machine,
    )
    .await
    .context("cannot start the Raft node")?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // Service discovery over DNS, from the local replica (see `dns`).
    let dns = match config.dns_listen {
        Some(addr) => Some(crate::dns::DnsServer::start(addr, state.clone()).await?),
        None => None,
    };
    let manager = Arc::new(Manager {
        id: config.id,
        group_commit: GroupCommit::start(raft.clone()),
        config,
        raft: raft.clone(),
        state,
        peer_client,
        scheduler: Default::default(),
        store,
    });
    crate::scheduler::start(manager.clone());
    tracing::info!(id = manager.id, listen = %manager.config.listen, "manager serving");
    warn_if_open(&manager.config);

    if !manager.config.initial_cluster.is_empty() {
        bootstrap(&manager).await?;
    } else if let Some(join) = manager.config.join.clone() {
        tokio::spawn(join_cluster(manager.clone(), join));
    }

    let dispatcher = crate::dispatcher::Dispatcher::new(&manager);
    let shutdown = crate::dispatcher::start(&dispatcher, shutdown);
    let shutdown = manager.state.events.close_on(shutdown);
    let app = crate::api::router(manager.clone(), &dispatcher);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    if let Some(dns) = dns {
        dns.stop().await;
    }
    tracing::info!("shutting down the Raft node");
    raft.shutdown().await.ok();
    Ok(())
}

/// Says loudly what is not protected.
fn warn_if_open(config: &ServerConfig) {
    if !config.acl {
        tracing::warn!(
            "ACL DISABLED: anyone who can reach {} can change this cluster; start every manager \
             with --acl (and a cluster secret) to require tokens",
            config.advertise_addr()
        );
    }
    if config.cluster_secret.is_none() {
        tracing::warn!(
            "no cluster secret: the peer (Raft) routes accept requests from anyone; give every \
             manager the same --cluster-secret-file or GANTRY_CLUSTER_SECRET"
        );
    }
}

/// Initialises the cluster with the configured voters. Every initial member does this with
/// the same membership, which makes the same first log entry everywhere; a manager that
/// already has state (a restart) is left as it is.
async fn bootstrap(manager: &Manager) -> anyhow::Result<()> {
    if manager.raft.is_initialized().await? {
        tracing::info!("existing Raft state found; rejoining the cluster");
        return Ok(());
    }
    let members: BTreeMap<u64, BasicNode> = manager
        .config
        .initial_cluster
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    match manager.raft.initialize(members).await {
        Ok(()) => {
            tracing::info!("initialised a new cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            tracing::info!("existing Raft state found; rejoining the cluster");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("cannot initialise the cluster: {e}")),
    }
}

/// Asks an existing manager to add this one (as a learner, then a voter). Retries until it
/// succeeds, or until this manager already appears in the membership. The request
/// carries the cluster secret, which is what lets it in when ACL is on.
async fn join_cluster(manager: Arc<Manager>, via: String) {
    let request = AddPeerRequest {
        id: manager.id,
        addr: manager.config.advertise_addr(),
    };
    let url = format!("http://{via}/v1/operator/raft/peers");
    let mut delay = Duration::from_millis(200);
    loop {
        let already_member = status::members(&manager.raft.metrics().borrow())
            .iter()
            .any(|m| m.id == manager.id && m.voter);
        if already_member {
            tracing::info!("this manager is a voter");
            return;
        }
        match manager
            .peer_client
            .post(&url)
            .json(&request)
            .timeout(Duration::from_secs(120))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => {
                tracing::info!(via = %via, "joined the cluster");
                return;
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                tracing::warn!(via = %via, %status, body = %body, "join refused; retrying");
            }
            Err(e) => tracing::warn!(via = %via, error = %e, "join failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
