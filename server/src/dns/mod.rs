//! Service discovery over DNS: every manager started with `--dns-listen ADDR` answers
//! `A`, `AAAA` and `SRV` questions about `<service>.service.gantry.` on UDP and TCP at
//! that address, so programs find the healthy instances of a service with the resolver
//! they already have (`dig @127.0.0.1 -p 8600 web-http.service.gantry SRV`).
//!
//! - **Stale by design.** Each answer is read from this manager's local replica at once,
//!   like `GET /v1/services?stale=true`: no round trip to the leader, so any manager
//!   answers, even without a quorum, and a follower may answer a few milliseconds behind
//!   the leader. Every record has a TTL of 0, so nothing downstream holds an answer
//!   longer than that.
//! - **What is answered** is in `answer.rs` (records and response codes) and `names.rs`
//!   (the names). What counts as an endpoint is the service read model's business
//!   (`crate::services`): only healthy running instances on nodes that are not down.
//! - **Not a resolver.** Names outside `gantry.` are refused; forward the `gantry.`
//!   domain to the managers from the local resolver (dnsmasq, systemd-resolved, CoreDNS)
//!   to use it next to the rest of DNS.
//! - hickory-server does the sockets and the wire format: UDP, and TCP for answers too
//!   long for a UDP datagram (it sets the TC bit, the client asks again over TCP).

mod answer;
mod directory;
mod handler;
mod names;

#[cfg(test)]
mod tests;

use crate::state::ClusterState;
use anyhow::Context;
use hickory_server::Server;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// A TCP connection that sends no request for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// With port 0, how often to draw a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 16;

/// A running DNS interface.
pub struct DnsServer {
    addr: SocketAddr,
    server: Server<handler::Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` (the same port for both; with port 0, one that is
    /// free for both) and starts answering from `state`. Fails, naming the address, when
    /// either cannot be bound.
    pub async fn start(listen: SocketAddr, state: Arc<ClusterState>) -> anyhow::Result<DnsServer> {
        let (udp, tcp) = bind(listen)
            .await
            .with_context(|| format!("cannot serve DNS on {listen} (--dns-listen)"))?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(handler::Handler { state });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::info!(dns_listen = %addr, "serving DNS for the zone gantry. (UDP and TCP)");
        Ok(DnsServer { addr, server })
    }

    /// The address bound, for UDP and TCP alike.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting queries and waits for those in progress.
    pub async fn stop(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::warn!(%error, "the DNS server stopped with an error");
        }
    }
}

async fn bind(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(listen).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(listen.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Port 0 drew a UDP port whose TCP twin is taken: draw again.
            Err(e) if listen.port() == 0 && attempts < BIND_ATTEMPTS => {
                attempts += 1;
                tracing::debug!(port, error = %e, "DNS: TCP port taken; drawing another");
            }
            Err(e) => return Err(e),
        }
    }
}
