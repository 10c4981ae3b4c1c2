//! Starting an agent: find out what the node offers and which drivers work, list what
//! the engine already runs, register, then run the heartbeat, the session, the reconcile
//! loop and the logs endpoint until shutdown.
//!
//! On shutdown the agent leaves every task running (a restarted agent adopts them),
//! unless told to remove them (`gantry dev` cleans up after itself).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use gantry_api::job::Resources;
use gantry_api::node::NodeRegistration;
use gantry_api::Client;
use tokio::sync::mpsc;

use crate::config::AgentConfig;
use crate::driver::docker::DockerDriver;
use crate::driver::process::ProcessDriver;
use crate::driver::Driver;
use crate::heartbeat::HeartbeatLoop;
use crate::reconcile::{list_all, Reconciler};
use crate::registration::Registrar;
use crate::reports::Reports;
use crate::runner::RunnerContext;
use crate::session::SessionLoop;
use crate::task_table::TaskTable;

/// What to do with the node's tasks when the agent stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    /// Leave them running for the next agent to adopt (a real node).
    LeaveRunning,
    /// Stop and remove them (a throw-away dev node).
    RemoveTasks,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    config: AgentConfig,
    on_shutdown: OnShutdown,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let drivers = usable_drivers(&config).await?;
    let driver_names: Vec<String> = drivers.iter().map(|d| d.name().to_string()).collect();
    let resources = offered_resources(&config);
    tracing::info!(node = %config.name, drivers = ?driver_names,
        cpu_millis = resources.cpu_millis, memory_mb = resources.memory_mb, "agent starting");

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let agent_addr = match &config.advertise_listen {
        Some(addr) => addr.clone(),
        None => listener.local_addr()?.to_string(),
    };

    let client = Client::new(&config.managers, config.join_token.clone())
        .context("the --managers list is not usable")?;
    let registration = NodeRegistration {
        name: config.name.clone(),
        address: config.address.clone(),
        resources,
        port_range: config.port_range,
        labels: config.labels.clone(),
        drivers: driver_names,
        agent_addr: Some(agent_addr),
    };

    // What runs already, before anything can change it.
    let found_at_start = list_all(&drivers).await;
    if !found_at_start.is_empty() {
        tracing::info!(
            tasks = found_at_start.len(),
            "found tasks from an earlier agent"
        );
    }

    let tasks = TaskTable::default();
    let reports = Reports::default();
    let context = Arc::new(RunnerContext {
        drivers,
        reports: reports.clone(),
        tasks: tasks.clone(),
        data_dir: config.data_dir.clone(),
        node_address: config.address.clone(),
        stop_grace: config.stop_grace,
    });

    let (stop_logs, logs_stopped) = tokio::sync::oneshot::channel::<()>();
    let logs = tokio::spawn(crate::logs_http::serve(
        listener,
        Arc::new(tasks),
        async move {
            let _ = logs_stopped.await;
        },
    ));

    let registrar = Arc::new(Registrar::new(client, registration));
    let (messages, inbox) = mpsc::channel(16);
    let mut reconciler = Reconciler::new(context, found_at_start);
    let links = {
        let registrar = registrar.clone();
        let reports = reports.clone();
        tokio::spawn(async move {
            let node = registrar.current().await;
            let heartbeat = HeartbeatLoop {
                registrar: registrar.clone(),
                reports,
                ttl: node.ttl,
                node: node.clone(),
                failures: 0,
            };
            let session = SessionLoop {
                registrar,
                node,
                out: messages,
            };
            tokio::join!(heartbeat.run(), session.run());
        })
    };

    tokio::select! {
        _ = reconciler.run(inbox) => {}
        _ = shutdown => {}
    }
    links.abort();
    if on_shutdown == OnShutdown::RemoveTasks {
        tracing::info!("stopping and removing this node's tasks");
        reconciler.remove_everything().await;
    }
    let _ = stop_logs.send(());
    let _ = logs.await;
    tracing::info!("agent stopped");
    Ok(())
}

/// The drivers to offer: the one asked for (it must work), or every one that works.
async fn usable_drivers(config: &AgentConfig) -> anyhow::Result<Vec<Arc<dyn Driver>>> {
    let process: Arc<dyn Driver> = Arc::new(ProcessDriver::new(&config.name));
    let docker = match DockerDriver::connect(&config.name) {
        Ok(docker) if docker.available().await => Some(Arc::new(docker) as Arc<dyn Driver>),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "no docker engine");
            None
        }
    };
    match config.driver.as_deref() {
        Some("process") => Ok(vec![process]),
        Some("docker") => match docker {
            Some(docker) => Ok(vec![docker]),
            None => anyhow::bail!("--driver docker: the Docker engine does not answer"),
        },
        Some(other) => anyhow::bail!("unknown driver {other:?}: use docker or process"),
        None => Ok(docker.into_iter().chain([process]).collect()),
    }
}

fn offered_resources(config: &AgentConfig) -> Resources {
    let detected = crate::node_info::detect_resources();
    Resources {
        cpu_millis: config.cpu_millis.unwrap_or(detected.cpu_millis),
        memory_mb: config.memory_mb.unwrap_or(detected.memory_mb),
    }
}
