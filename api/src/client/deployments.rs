//! Client calls of deployments: list, one, and the operator's promote, fail, pause and
//! resume.

use reqwest::Method;

use super::{stale_query, Call, Client, ClientError, Indexed};
use crate::deployments::{Deployment, DeploymentAction, DeploymentChanged};

impl Client {
    /// `GET /v1/deployments`, newest first; `job` keeps one job's.
    pub async fn list_deployments(
        &self,
        job: Option<&str>,
        stale: bool,
    ) -> Result<Indexed<Vec<Deployment>>, ClientError> {
        let mut query: Vec<(&str, &str)> = stale_query(stale).to_vec();
        if let Some(job) = job {
            query.push(("job", job));
        }
        let call = Call::get(&["v1", "deployments"]).query(&query);
        self.call(call).await?.indexed()
    }

    /// `GET /v1/deployments/{id}`.
    pub async fn get_deployment(
        &self,
        id: &str,
        stale: bool,
    ) -> Result<Indexed<Deployment>, ClientError> {
        let path = ["v1", "deployments", id];
        self.call(Call::get(&path).query(stale_query(stale)))
            .await?
            .indexed()
    }

    /// `POST /v1/deployments/{id}/{action}`.
    pub async fn deployment_action(
        &self,
        id: &str,
        action: DeploymentAction,
    ) -> Result<DeploymentChanged, ClientError> {
        let path = ["v1", "deployments", id, action.as_str()];
        self.call(Call::new(Method::POST, &path)).await?.decode()
    }
}
