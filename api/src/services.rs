//! Service discovery: where the healthy instances of a named port can be reached.
//!
//! Every port of a task has a name; each running allocation of the job that is healthy
//! (or whose tasks have no health check) makes that port an endpoint of a service: the
//! node's address and the host port the allocation holds for it. The service is named
//! `<job id>-<port name>` unless the port says `service: NAME`; several jobs may serve
//! one name. Routes: `GET /v1/services` (one [`ServiceSummary`] per service) and
//! `GET /v1/services/{name}` (its [`ServiceEndpoint`]s).

use serde::{Deserialize, Serialize};

/// One service as `GET /v1/services` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceSummary {
    pub name: String,
    /// How many endpoints it has now.
    pub endpoints: usize,
    /// The jobs serving it, sorted.
    pub jobs: Vec<String>,
    /// Every tag of its endpoints, sorted, each once.
    pub tags: Vec<String>,
}

/// One reachable instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceEndpoint {
    pub service: String,
    pub alloc_id: String,
    pub job_id: String,
    pub node_id: String,
    /// The node's address as its agent registered it (`gantry agent --address`): the
    /// address other machines use to reach the node's published ports.
    pub address: String,
    /// The host port the allocation holds for the named port.
    pub port: u16,
    pub tags: Vec<String>,
}

impl ServiceEndpoint {
    /// `address:port`, bracketing an IPv6 address.
    pub fn socket_addr(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_bracket_ipv6() {
        let mut endpoint = ServiceEndpoint {
            service: "web-http".into(),
            alloc_id: "web-0-1".into(),
            job_id: "web".into(),
            node_id: "n1".into(),
            address: "10.0.0.5".into(),
            port: 20001,
            tags: vec![],
        };
        assert_eq!(endpoint.socket_addr(), "10.0.0.5:20001");
        endpoint.address = "fd00::5".into();
        assert_eq!(endpoint.socket_addr(), "[fd00::5]:20001");
    }
}
