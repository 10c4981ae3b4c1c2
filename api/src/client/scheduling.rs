//! Client calls for nodes, allocations and the dry-run plan.

use reqwest::Method;

use super::{stale_query, Call, Client, ClientError, Indexed};
use crate::job::JobSpec;
use crate::node::{DrainRequest, Eligibility, EligibilityRequest, Node};
use crate::scheduling::{JobPlan, NodeDetail};
use crate::Allocation;

/// `?job=&node=&status=` of `GET /v1/allocations`; `None` leaves a filter out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocationFilter {
    pub job: Option<String>,
    pub node: Option<String>,
    /// A client state: `pending`, `running`, `failed`...
    pub status: Option<String>,
}

impl Client {
    /// `GET /v1/nodes`.
    pub async fn list_nodes(&self, stale: bool) -> Result<Indexed<Vec<Node>>, ClientError> {
        let call = Call::get(&["v1", "nodes"]).query(stale_query(stale));
        self.call(call).await?.indexed()
    }

    /// `GET /v1/nodes/{id}`: the node with its allocations and reserved/free resources.
    pub async fn get_node(
        &self,
        id: &str,
        stale: bool,
    ) -> Result<Indexed<NodeDetail>, ClientError> {
        let path = ["v1", "nodes", id];
        self.call(Call::get(&path).query(stale_query(stale)))
            .await?
            .indexed()
    }

    /// `POST /v1/nodes/{id}/drain`. Returns the node afterwards.
    pub async fn drain_node(&self, id: &str, enable: bool) -> Result<Node, ClientError> {
        let path = ["v1", "nodes", id, "drain"];
        let call = Call::new(Method::POST, &path).json(&DrainRequest { enable })?;
        self.call(call).await?.decode()
    }

    /// `POST /v1/nodes/{id}/eligibility`. Returns the node afterwards.
    pub async fn set_node_eligibility(
        &self,
        id: &str,
        eligibility: Eligibility,
    ) -> Result<Node, ClientError> {
        let path = ["v1", "nodes", id, "eligibility"];
        let call = Call::new(Method::POST, &path).json(&EligibilityRequest { eligibility })?;
        self.call(call).await?.decode()
    }

    /// `GET /v1/allocations` with the given filters.
    pub async fn list_allocations(
        &self,
        filter: &AllocationFilter,
        stale: bool,
    ) -> Result<Indexed<Vec<Allocation>>, ClientError> {
        let mut query: Vec<(&str, &str)> = stale_query(stale).to_vec();
        for (key, value) in [
            ("job", &filter.job),
            ("node", &filter.node),
            ("status", &filter.status),
        ] {
            if let Some(value) = value {
                query.push((key, value));
            }
        }
        let call = Call::get(&["v1", "allocations"]).query(&query);
        self.call(call).await?.indexed()
    }

    /// `GET /v1/allocations/{id}`.
    pub async fn get_allocation(
        &self,
        id: &str,
        stale: bool,
    ) -> Result<Indexed<Allocation>, ClientError> {
        let path = ["v1", "allocations", id];
        self.call(Call::get(&path).query(stale_query(stale)))
            .await?
            .indexed()
    }

    /// `POST /v1/jobs/{id}/plan`: where `spec` would go now, and why not. Changes nothing.
    pub async fn plan_job(&self, spec: &JobSpec) -> Result<JobPlan, ClientError> {
        let path = ["v1", "jobs", &spec.id, "plan"];
        let call = Call::new(Method::POST, &path).json(spec)?;
        self.call(call).await?.decode()
    }
}
