//! Client calls of service discovery: `GET /v1/services` and `/v1/services/{name}`.

use super::{stale_query, Call, Client, ClientError, Indexed};
use crate::services::{ServiceEndpoint, ServiceSummary};

impl Client {
    /// `GET /v1/services`: every service with its endpoint count, jobs and tags.
    pub async fn list_services(
        &self,
        stale: bool,
    ) -> Result<Indexed<Vec<ServiceSummary>>, ClientError> {
        let call = Call::get(&["v1", "services"]).query(stale_query(stale));
        self.call(call).await?.indexed()
    }

    /// `GET /v1/services/{name}`: the service's healthy endpoints.
    pub async fn get_service(
        &self,
        name: &str,
        stale: bool,
    ) -> Result<Indexed<Vec<ServiceEndpoint>>, ClientError> {
        let path = ["v1", "services", name];
        self.call(Call::get(&path).query(stale_query(stale)))
            .await?
            .indexed()
    }
}
