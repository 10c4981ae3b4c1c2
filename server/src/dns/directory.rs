//! The DNS answers' view of the replicated state: the service read model
//! (`crate::services`) and the nodes, looked up ignoring ASCII case as DNS names are.
//!
//! It reads whatever state it is given; the handler gives it the local replica, so a DNS
//! answer is a stale read (see `dns/mod.rs`).
//!
//! Cost: a service question walks the allocations once (twice when nothing serves the
//! name), under the state's read lock, like `GET /v1/services/{name}`. Fine for the
//! lookups of a cluster's programs; a DNS-heavy cluster with very many allocations would
//! want the endpoints indexed by service, kept at apply time.

use super::answer::Directory;
use crate::services;
use crate::state::State;
use gantry_api::ServiceEndpoint;

impl Directory for State {
    /// One pass over the allocations; when nothing serves, one more to tell a declared
    /// service (NOERROR, empty) from an unknown name (NXDOMAIN). Gantry's own service
    /// names are lowercase DNS labels; only default names (from a job id) can differ from
    /// the query by case, and two such names differing only by case both answer.
    fn service(&self, service: &str) -> Option<Vec<ServiceEndpoint>> {
        let found: Vec<ServiceEndpoint> = services::endpoints(self)
            .into_iter()
            .filter(|e| e.service.eq_ignore_ascii_case(service))
            .collect();
        if !found.is_empty() {
            return Some(found);
        }
        services::summaries(self)
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(service))
            .then_some(found)
    }

    /// Every registered node has a name, whatever its status; its address is what its
    /// agent registered. Of ids differing only by case, a lowercase one answers, else the
    /// first in id order.
    fn node_address(&self, node: &str) -> Option<String> {
        self.nodes
            .by_id
            .get(node)
            .or_else(|| {
                self.nodes
                    .by_id
                    .values()
                    .find(|n| n.id.eq_ignore_ascii_case(node))
            })
            .map(|n| n.address.clone())
    }
}
