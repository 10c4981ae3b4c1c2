//! Docker Swarm on the local engine: the third contender of the `engine`
//! scenario.
//!
//! Why it exists: the engine alone is the floor under any orchestrator, but
//! not an orchestrator. Swarm is one — a scheduler, a dispatcher and an
//! agent, all inside the same `dockerd` — so timing it on the same engine,
//! with the same image and limits, says how Gantry's path from submit to
//! running containers compares with another orchestrator's on this machine.
//!
//! This file owns swarm mode for the run: it initialises it only when the
//! engine is `inactive` (and uses, but never leaves, a swarm that was
//! already active), creates and removes the scenario's services, and undoes
//! all of it on every exit path through [`SwarmSession`]'s `Drop`: it
//! removes the services carrying the run's label, waits for their
//! containers, and leaves swarm mode if (and only if) this run entered it.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::engine::{blocking_docker, docker, label, strings, Limits};

/// The label the engine puts on every container of a swarm service.
pub const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";
/// The bridge `docker swarm init` creates when missing; removed again when
/// this run created it.
const GATEWAY_BRIDGE: &str = "docker_gwbridge";
/// The longest `docker swarm init` / `leave` / `service rm` may take.
const SWARM_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a query (`info`, `service ls`) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Swarm mode for one run, and the services it created (all carrying
/// `label`). Dropping it removes them and, if this run initialised swarm
/// mode, leaves it.
pub struct SwarmSession {
    /// `key=value`, on every service this run creates.
    service_label: String,
    /// This run ran `docker swarm init`, so it must leave.
    initialised: bool,
    /// `docker_gwbridge` did not exist before the init.
    created_gateway_bridge: bool,
    /// How long a removed service's containers may take to go.
    removal_timeout: Duration,
}

impl SwarmSession {
    /// Joins the engine's swarm mode: uses it if already active (as a
    /// manager), initialises it on 127.0.0.1 if inactive. `Err` is the
    /// reason Swarm cannot be measured, to print before skipping it.
    pub async fn open(service_label: String, removal_timeout: Duration) -> Result<Self, String> {
        let state = swarm_state()
            .await
            .map_err(|e| format!("cannot read the engine's swarm state: {e:#}"))?;
        match state.as_str() {
            "active" => {
                require_manager().await?;
                Ok(SwarmSession {
                    service_label,
                    initialised: false,
                    created_gateway_bridge: false,
                    removal_timeout,
                })
            }
            "inactive" => initialise(service_label, removal_timeout).await,
            other => Err(format!(
                "the engine's swarm state is `{other}`; neither initialising nor using it"
            )),
        }
    }

    pub fn initialised(&self) -> bool {
        self.initialised
    }

    /// `docker service create` of `replicas` tasks of `image` running
    /// `command`, with the same limits, stop grace and (no) restarts as
    /// Gantry's job. Returns once the CLI does (`--detach`: the service is
    /// created, its tasks not necessarily started).
    pub async fn create_service(&self, spec: &ServiceSpec<'_>) -> Result<()> {
        let mut args = strings(&[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            spec.name,
            "--label",
            &self.service_label,
            "--replicas",
            &spec.replicas.to_string(),
            "--limit-cpu",
            &format!("{:.3}", spec.limits.cpu_millis as f64 / 1000.0),
            "--limit-memory",
            &format!("{}m", spec.limits.memory_mb),
            "--stop-grace-period",
            &format!("{}ms", spec.stop_grace.as_millis()),
            "--restart-condition",
            "none",
            spec.image,
        ]);
        args.extend(strings(spec.command));
        docker(&args, SWARM_TIMEOUT).await.map(|_| ())
    }

    /// `docker service rm name`; returns once the CLI does (the containers
    /// are still stopping).
    pub async fn remove_service(&self, name: &str) -> Result<()> {
        docker(&strings(&["service", "rm", name]), SWARM_TIMEOUT)
            .await
            .map(|_| ())
    }
}

/// One service of the scenario.
pub struct ServiceSpec<'a> {
    pub name: &'a str,
    pub replicas: usize,
    pub image: &'a str,
    pub command: &'a [&'a str],
    pub limits: Limits,
    pub stop_grace: Duration,
}

/// The label filter matching every container of service `name`.
pub fn service_containers(name: &str) -> String {
    label(SERVICE_NAME_LABEL, name)
}

/// A few lines of `docker service ps`: each task's state and error, to
/// explain a service whose tasks do not run.
pub async fn task_states(name: &str) -> String {
    let args = strings(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}} {{.CurrentState}} {{.Error}}",
        name,
    ]);
    match docker(&args, QUERY_TIMEOUT).await {
        Ok(out) => out.lines().take(5).collect::<Vec<_>>().join("; "),
        Err(e) => format!("{e:#}"),
    }
}

async fn swarm_state() -> Result<String> {
    let args = strings(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    Ok(docker(&args, QUERY_TIMEOUT).await?.trim().to_owned())
}

/// Services can only be created on a manager.
async fn require_manager() -> Result<(), String> {
    let args = strings(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
    match docker(&args, QUERY_TIMEOUT).await {
        Ok(out) if out.trim() == "true" => Ok(()),
        Ok(_) => Err("the engine is in a swarm but not a manager of it".into()),
        Err(e) => Err(format!(
            "cannot tell whether the engine is a manager: {e:#}"
        )),
    }
}

async fn gateway_bridge_exists() -> Result<bool> {
    let args = strings(&["network", "ls", "-q", "--filter", "name=^docker_gwbridge$"]);
    Ok(!docker(&args, QUERY_TIMEOUT).await?.trim().is_empty())
}

/// `docker swarm init --advertise-addr 127.0.0.1`, with the session (and so
/// the `leave`) armed before the command runs: an init cut short by a
/// timeout or Ctrl-C is still undone.
async fn initialise(
    service_label: String,
    removal_timeout: Duration,
) -> Result<SwarmSession, String> {
    let bridge_existed = gateway_bridge_exists()
        .await
        .map_err(|e| format!("cannot list the engine's networks: {e:#}"))?;
    let mut session = SwarmSession {
        service_label,
        initialised: true,
        created_gateway_bridge: !bridge_existed,
        removal_timeout,
    };
    let args = strings(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    if let Err(e) = docker(&args, SWARM_TIMEOUT).await {
        if matches!(swarm_state().await.as_deref(), Ok("inactive")) {
            // Nothing to leave; the bridge may still need removing.
            session.initialised = false;
        }
        return Err(format!("`docker swarm init` failed: {e:#}"));
    }
    Ok(session)
}

impl Drop for SwarmSession {
    fn drop(&mut self) {
        // Blocking on purpose, like `LabelSweep`: there may be no runtime left.
        remove_labelled_services(&self.service_label, self.removal_timeout);
        if self.initialised {
            match blocking_docker(&strings(&["swarm", "leave", "--force"]), SWARM_TIMEOUT) {
                Ok(_) => eprintln!("left swarm mode (this run had initialised it)"),
                Err(e) => eprintln!("warning: leaving swarm mode: {e:#}"),
            }
        }
        if self.created_gateway_bridge {
            // Fails harmlessly if something else now uses it.
            let _ = blocking_docker(&strings(&["network", "rm", GATEWAY_BRIDGE]), QUERY_TIMEOUT);
        }
    }
}

/// Removes every service carrying `service_label` and waits (bounded) until
/// their containers are gone.
fn remove_labelled_services(service_label: &str, timeout: Duration) {
    let list = strings(&[
        "service",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label={service_label}"),
    ]);
    let names: Vec<String> = match blocking_docker(&list, QUERY_TIMEOUT) {
        Ok(out) => out.split_whitespace().map(str::to_owned).collect(),
        // Not a manager any more (or never was): nothing of ours to remove.
        Err(_) => return,
    };
    if names.is_empty() {
        return;
    }
    let mut rm = strings(&["service", "rm"]);
    rm.extend(names.iter().cloned());
    if let Err(e) = blocking_docker(&rm, SWARM_TIMEOUT) {
        eprintln!(
            "warning: removing swarm services {}: {e:#}",
            names.join(" ")
        );
        return;
    }
    eprintln!("removed leftover swarm services {}", names.join(" "));
    let deadline = Instant::now() + timeout;
    for name in &names {
        wait_containers_gone(name, deadline);
    }
}

fn wait_containers_gone(service: &str, deadline: Instant) {
    let ps = strings(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label={}", service_containers(service)),
    ]);
    while Instant::now() < deadline {
        match blocking_docker(&ps, QUERY_TIMEOUT) {
            Ok(out) if out.trim().is_empty() => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => return,
        }
    }
    eprintln!("warning: containers of swarm service {service} still present");
}
