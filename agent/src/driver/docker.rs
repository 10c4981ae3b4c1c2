//! The Docker driver: runs each task as a container of the node's Docker engine.
//!
//! The engine is the agent's only record of what runs, so every container carries the
//! `gantry.*` labels (allocation, job, task, node) and is named after them; `list` finds
//! them again after the agent restarts. Restarts are the agent's business (its runners
//! apply the job's restart policy), so containers get no Docker restart policy.
//!
//! bollard asks for the newest API version it knows, which older engines refuse; the
//! client is therefore built on first use at the version the engine says it speaks.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerState, ContainerSummary, ContainerSummaryStateEnum, ExecConfig,
    HostConfig, PortBinding, PortMap,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptions, CreateImageOptionsBuilder,
    ListContainersOptions, ListContainersOptionsBuilder, LogsOptions, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::{
    Driver, DriverError, Exit, FoundTask, LaunchPort, LogChunks, LogStream, TaskHandle, TaskLaunch,
    LABEL_ALLOC_ID, LABEL_JOB, LABEL_NODE, LABEL_TASK,
};

const DRIVER_NAME: &str = "docker";
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// bollard's per-request bound (until the response headers arrive; streams are unbounded).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long the engine may take to answer a ping or the version negotiation.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a pull of a missing image may take before the start fails.
const PULL_TIMEOUT: Duration = Duration::from_secs(60);
/// Added to a stop's grace period for the engine's own work.
const STOP_SLACK: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

/// Runs tasks as containers of the local Docker engine (`DOCKER_HOST` or the unix socket).
pub struct DockerDriver {
    host: String,
    node: String,
    /// The client at bollard's default version, used only to negotiate.
    probe: Docker,
    /// The client at the negotiated version, set by the first call that reaches the engine.
    api: OnceCell<Docker>,
}

impl DockerDriver {
    /// Prepares a client for the local engine; nothing is sent until the first call.
    /// `node_name` labels every container this driver starts (see `LABEL_NODE`).
    pub fn connect(node_name: &str) -> Result<DockerDriver, DriverError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_string());
        let probe = client_for(&host, API_DEFAULT_VERSION)?;
        Ok(DockerDriver {
            host,
            node: node_name.to_string(),
            probe,
            api: OnceCell::new(),
        })
    }

    /// The client, negotiated once (a failed negotiation is retried by the next call).
    async fn api(&self) -> Result<&Docker, DriverError> {
        self.api.get_or_try_init(|| self.negotiate()).await
    }

    async fn negotiate(&self) -> Result<Docker, DriverError> {
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.probe.clone().negotiate_version())
            .await
            .map_err(|_| {
                DriverError::Engine(format!("docker engine at {} did not answer", self.host))
            })?;
        match answer {
            Ok(docker) => Ok(docker),
            // Engines older than bollard refuse even `/version`, naming their maximum.
            Err(e) => match engine_max_version(&e) {
                Some(version) => client_for(&self.host, &version),
                None => Err(engine_error(e)),
            },
        }
    }

    /// Makes sure `image` is present: inspected, else pulled (bounded by `PULL_TIMEOUT`).
    async fn ensure_image(&self, api: &Docker, image: &str) -> Result<(), DriverError> {
        match api.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(e)),
        }
        tracing::info!(image, "image not present, pulling it");
        let pull = api
            .create_image(Some(pull_options(image)), None, None)
            .try_for_each(|_| async { Ok(()) });
        let reason = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => brief(&engine_message(e)),
            Err(_) => format!("the pull timed out after {} s", PULL_TIMEOUT.as_secs()),
        };
        Err(DriverError::ImageMissing {
            image: image.to_string(),
            reason: format!("not present on the node and could not be pulled ({reason})"),
        })
    }
}

#[async_trait::async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        DRIVER_NAME
    }

    async fn available(&self) -> bool {
        let ping = async { self.api().await?.ping().await.map_err(engine_error) };
        matches!(tokio::time::timeout(ANSWER_TIMEOUT, ping).await, Ok(Ok(_)))
    }

    async fn start(&self, launch: &TaskLaunch) -> Result<TaskHandle, DriverError> {
        let api = self.api().await?;
        self.ensure_image(api, &launch.task.image).await?;
        let name = container_name(launch);
        remove_container(api, &name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let body = container_body(launch, &self.node);
        let created = api
            .create_container(Some(options), body)
            .await
            .map_err(engine_error)?;
        if let Err(e) = api.start_container(&created.id, None).await {
            // Leave no created-but-never-started container behind for `list` to adopt.
            let _ = remove_container(api, &created.id).await;
            return Err(engine_error(e));
        }
        Ok(handle(created.id))
    }

    async fn wait(&self, handle: &TaskHandle) -> Result<Exit, DriverError> {
        let api = self.api().await?;
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        // bollard turns a non-zero exit into an error item: it still carries the code.
        let wait_code = match api.wait_container(&handle.id, Some(options)).next().await {
            Some(Ok(response)) => Some(response.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Some(code),
            Some(Err(e)) => return Err(lookup_error(e, &handle.id)),
            None => None,
        };
        // Inspect for what the wait does not say (OOM); the wait's code if already gone.
        match api.inspect_container(&handle.id, None).await {
            Ok(info) => exit_from_state(info.state.unwrap_or_default(), wait_code, &handle.id),
            Err(e) if is_not_found(&e) => match wait_code {
                Some(code) => Ok(exit(code, false)),
                None => Err(DriverError::NotFound(handle.id.clone())),
            },
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn stop(&self, handle: &TaskHandle, grace: Duration) -> Result<(), DriverError> {
        let seconds = ceil_seconds(grace);
        let api = self
            .api()
            .await?
            .clone()
            .with_timeout(Duration::from_secs(seconds) + STOP_SLACK);
        let options = StopContainerOptionsBuilder::new()
            .t(i32::try_from(seconds).unwrap_or(i32::MAX))
            .build();
        // An already stopped container answers 304, which bollard counts as success.
        match api.stop_container(&handle.id, Some(options)).await {
            Err(e) if !is_not_found(&e) => Err(engine_error(e)),
            _ => Ok(()),
        }
    }

    async fn remove(&self, handle: &TaskHandle) -> Result<(), DriverError> {
        remove_container(self.api().await?, &handle.id).await
    }

    async fn list(&self) -> Result<Vec<FoundTask>, DriverError> {
        let containers = self
            .api()
            .await?
            .list_containers(Some(list_options(&self.node)))
            .await
            .map_err(engine_error)?;
        Ok(containers.into_iter().filter_map(found_task).collect())
    }

    async fn exec(
        &self,
        handle: &TaskHandle,
        command: &[String],
        timeout: Duration,
    ) -> Result<i64, DriverError> {
        let api = self.api().await?;
        tokio::time::timeout(timeout, run_exec(api, &handle.id, command))
            .await
            .map_err(|_| {
                DriverError::Engine(format!("exec {command:?} timed out after {timeout:?}"))
            })?
    }

    async fn logs(
        &self,
        handle: &TaskHandle,
        follow: bool,
        tail: Option<usize>,
    ) -> Result<LogChunks, DriverError> {
        let api = self.api().await?;
        // The log stream reports a missing container only as its first item; ask first.
        api.inspect_container(&handle.id, None)
            .await
            .map_err(|e| lookup_error(e, &handle.id))?;
        let chunks = api
            .logs(&handle.id, Some(logs_options(follow, tail)))
            .map(|item| item.map(log_chunk).map_err(engine_error));
        Ok(Box::pin(chunks))
    }
}

/// A client for `host` (`unix://...`, `tcp://...` or `http://...`) speaking `version`.
fn client_for(host: &str, version: &ClientVersion) -> Result<Docker, DriverError> {
    let client = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version)
    } else {
        return Err(DriverError::Engine(format!(
            "unsupported DOCKER_HOST {host:?} (unix://, tcp:// or http:// only)"
        )));
    };
    client.map_err(engine_error)
}

/// The version in an engine's "client version 1.53 is too new. Maximum supported API
/// version is 1.41" refusal.
fn engine_max_version(e: &BollardError) -> Option<ClientVersion> {
    let BollardError::DockerResponseServerError { message, .. } = e else {
        return None;
    };
    let (_, rest) = message.split_once("Maximum supported API version is ")?;
    let (major, minor) = rest.trim().trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

fn handle(id: String) -> TaskHandle {
    TaskHandle {
        driver: DRIVER_NAME,
        id,
    }
}

/// `gantry-{job}-{task}-{alloc_id}`, with what Docker does not allow in a name replaced.
fn container_name(launch: &TaskLaunch) -> String {
    let raw = format!(
        "gantry-{}-{}-{}",
        launch.job_id, launch.task.name, launch.alloc_id
    );
    raw.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '_',
        })
        .collect()
}

fn container_body(launch: &TaskLaunch, node: &str) -> ContainerCreateBody {
    let task = &launch.task;
    let mut env = task.env.clone();
    env.extend(launch.extra_env.clone());
    let ports = port_bindings(&launch.ports);
    ContainerCreateBody {
        image: Some(task.image.clone()),
        cmd: (!task.command.is_empty()).then(|| task.command.clone()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels(launch, node)),
        exposed_ports: Some(ports.keys().cloned().collect()),
        host_config: Some(HostConfig {
            nano_cpus: Some(saturating_i64(task.resources.cpu_millis, 1_000_000)),
            memory: Some(saturating_i64(task.resources.memory_mb, MIB)),
            port_bindings: Some(ports),
            // No restart policy: the agent's runners restart tasks themselves.
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn labels(launch: &TaskLaunch, node: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_ALLOC_ID.to_string(), launch.alloc_id.clone()),
        (LABEL_JOB.to_string(), launch.job_id.clone()),
        (LABEL_TASK.to_string(), launch.task.name.clone()),
        (LABEL_NODE.to_string(), node.to_string()),
    ])
}

/// `{"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "31000"}]}` for each launch port.
fn port_bindings(ports: &[LaunchPort]) -> PortMap {
    let mut map = PortMap::new();
    for port in ports {
        let binding = PortBinding {
            host_ip: Some("0.0.0.0".to_string()),
            host_port: Some(port.host_port.to_string()),
        };
        map.entry(format!("{}/tcp", port.container_port))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    map
}

fn saturating_i64(value: u64, factor: u64) -> i64 {
    i64::try_from(value.saturating_mul(factor)).unwrap_or(i64::MAX)
}

/// Pull options; a reference without a tag or digest pulls `latest`, not every tag.
fn pull_options(image: &str) -> CreateImageOptions {
    let builder = CreateImageOptionsBuilder::new().from_image(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        builder.build()
    } else {
        builder.tag("latest").build()
    }
}

/// Every container, running or not, that `node` started for an allocation.
fn list_options(node: &str) -> ListContainersOptions {
    let filters = HashMap::from([(
        "label",
        vec![format!("{LABEL_NODE}={node}"), LABEL_ALLOC_ID.to_string()],
    )]);
    ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build()
}

fn logs_options(follow: bool, tail: Option<usize>) -> LogsOptions {
    let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
    LogsOptionsBuilder::new()
        .follow(follow)
        .stdout(true)
        .stderr(true)
        .tail(&tail)
        .build()
}

fn found_task(container: ContainerSummary) -> Option<FoundTask> {
    let labels = container.labels.unwrap_or_default();
    let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
    Some(FoundTask {
        handle: handle(container.id?),
        alloc_id: labels.get(LABEL_ALLOC_ID)?.clone(),
        job_id: label(LABEL_JOB),
        task: label(LABEL_TASK),
        running: container.state == Some(ContainerSummaryStateEnum::RUNNING),
    })
}

/// Force-removes a container and its anonymous volumes; one already gone is fine.
async fn remove_container(api: &Docker, id_or_name: &str) -> Result<(), DriverError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match api.remove_container(id_or_name, Some(options)).await {
        Err(e) if !is_not_found(&e) => Err(engine_error(e)),
        _ => Ok(()),
    }
}

/// Runs `command` in the container, drains its output and returns its exit code.
async fn run_exec(api: &Docker, id: &str, command: &[String]) -> Result<i64, DriverError> {
    let config = ExecConfig {
        cmd: Some(command.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = api
        .create_exec(id, config)
        .await
        .map_err(|e| lookup_error(e, id))?;
    let started = api.start_exec(&exec.id, None).await;
    if let StartExecResults::Attached { mut output, .. } = started.map_err(engine_error)? {
        while let Some(chunk) = output.next().await {
            chunk.map_err(engine_error)?;
        }
    }
    // The output ends with the process; the engine may record the exit a moment later.
    loop {
        let info = api.inspect_exec(&exec.id).await.map_err(engine_error)?;
        if info.running != Some(true) {
            return info
                .exit_code
                .ok_or_else(|| DriverError::Engine(format!("exec {command:?} has no exit code")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_chunk(output: LogOutput) -> (LogStream, bytes::Bytes) {
    match output {
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => (LogStream::Stdout, message),
    }
}

fn exit_from_state(
    state: ContainerState,
    wait_code: Option<i64>,
    id: &str,
) -> Result<Exit, DriverError> {
    if state.running == Some(true) {
        // The wait's connection ended without an answer (an engine restart, say).
        return Err(DriverError::Engine(format!(
            "the wait for container {id} ended while it still runs"
        )));
    }
    let code = state.exit_code.or(wait_code).unwrap_or(-1);
    Ok(exit(code, state.oom_killed == Some(true)))
}

/// `exit code 0`, `exit code 137 (killed)`, `OOM killed`, ...
fn exit(code: i64, oom_killed: bool) -> Exit {
    let message = match code {
        _ if oom_killed => "OOM killed".to_string(),
        137 => "exit code 137 (killed)".to_string(),
        143 => "exit code 143 (terminated)".to_string(),
        c if c > 128 => format!("exit code {c} (signal {})", c - 128),
        c => format!("exit code {c}"),
    };
    Exit {
        code: Some(code),
        message,
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// `NotFound` for a missing container, else the engine's error.
fn lookup_error(e: BollardError, id: &str) -> DriverError {
    if is_not_found(&e) {
        DriverError::NotFound(format!("container {id}"))
    } else {
        engine_error(e)
    }
}

fn engine_error(e: BollardError) -> DriverError {
    DriverError::Engine(engine_message(e))
}

/// The engine's own message when it sent one, else bollard's description.
fn engine_message(e: BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message,
        BollardError::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

/// At most 200 characters of an engine message, on one line.
fn brief(message: &str) -> String {
    let line = message.trim().replace('\n', " ");
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Once;
    use std::time::Instant;

    use gantry_api::job::{Resources, TaskSpec};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const IMAGE: &str = "gantry/busybox:latest";
    const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/images/build.sh");

    /// A driver for a node name of its own, or `None` (skip) when no engine answers;
    /// in CI (`CI=true`) a missing engine fails the test instead.
    async fn driver_for(test: &str) -> Option<(DockerDriver, Cleanup)> {
        let node = format!("test-{}-{test}", std::process::id());
        let up = match DockerDriver::connect(&node) {
            Ok(driver) if driver.available().await => Some(driver),
            _ => None,
        };
        let Some(driver) = up else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: no Docker engine answers, and CI=true requires one");
            }
            eprintln!("skipping {test}: no Docker engine answers");
            return None;
        };
        build_image();
        Some((driver, Cleanup(node)))
    }

    fn build_image() {
        static BUILD: Once = Once::new();
        BUILD.call_once(|| {
            let status = Command::new("bash")
                .args([BUILD_SCRIPT, "--if-missing"])
                .status()
                .expect("run deploy/images/build.sh");
            assert!(status.success(), "deploy/images/build.sh failed");
        });
    }

    /// Removes every container labelled with its node name, even when the test panics.
    struct Cleanup(String);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let filter = format!("label={LABEL_NODE}={}", self.0);
            let listed = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output();
            let Ok(listed) = listed else { return };
            let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
    }

    fn launch(node: &str, alloc: &str, command: &[&str], ports: Vec<LaunchPort>) -> TaskLaunch {
        TaskLaunch {
            alloc_id: format!("{node}-{alloc}"),
            job_id: "web".to_string(),
            task: TaskSpec {
                name: "main".to_string(),
                driver: None,
                image: IMAGE.to_string(),
                command: command.iter().map(|s| s.to_string()).collect(),
                env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
                resources: Resources {
                    cpu_millis: 250,
                    memory_mb: 64,
                },
                ports: Vec::new(),
                health: None,
                shutdown_delay: None,
            },
            ports,
            extra_env: BTreeMap::from([("GANTRY_ALLOC_ID".to_string(), alloc.to_string())]),
            alloc_dir: PathBuf::from("/tmp"),
        }
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    fn docker_cli(args: &[&str]) {
        let status = Command::new("docker").args(args).output().unwrap().status;
        assert!(status.success(), "docker {args:?} failed");
    }

    async fn http_get(port: u16) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    /// GETs `/` until the server answers with a body, for up to 10 s.
    async fn http_get_eventually(port: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match http_get(port).await {
                Ok(response) if !response.is_empty() => return response,
                other if Instant::now() > deadline => panic!("no HTTP answer: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn collect_logs(chunks: LogChunks) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let chunks: Vec<_> = chunks.try_collect().await.unwrap();
        for (stream, bytes) in chunks {
            let text = String::from_utf8_lossy(&bytes);
            match stream {
                LogStream::Stdout => out.push_str(&text),
                LogStream::Stderr => err.push_str(&text),
            }
        }
        (out, err)
    }

    #[tokio::test]
    async fn starts_httpd_with_labels_limits_and_ports() {
        let Some((driver, node)) = driver_for("httpd").await else {
            return;
        };
        let started = Instant::now();
        let host_port = free_port();
        let port = LaunchPort {
            name: "http".to_string(),
            container_port: 8080,
            host_port,
        };
        let launch = launch(&node.0, "a1", &["httpd", "-f", "-p", "8080"], vec![port]);
        let handle = driver.start(&launch).await.unwrap();
        assert_eq!(handle.driver, "docker");

        let info = driver
            .api()
            .await
            .unwrap()
            .inspect_container(&handle.id, None)
            .await
            .unwrap();
        assert_eq!(
            info.name.as_deref(),
            Some(format!("/gantry-web-main-{}", launch.alloc_id).as_str())
        );
        let config = info.config.unwrap();
        let labels = config.labels.unwrap();
        assert_eq!(labels[LABEL_ALLOC_ID], launch.alloc_id);
        assert_eq!(labels[LABEL_JOB], "web");
        assert_eq!(labels[LABEL_TASK], "main");
        assert_eq!(labels[LABEL_NODE], node.0);
        let env = config.env.unwrap();
        assert!(env.contains(&"GREETING=hello".to_string()), "{env:?}");
        assert!(env.contains(&"GANTRY_ALLOC_ID=a1".to_string()), "{env:?}");
        let host = info.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(250_000_000));
        assert_eq!(host.memory, Some(64 * 1024 * 1024));
        let bindings = host.port_bindings.unwrap();
        let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(binding.host_port, Some(host_port.to_string()));
        let restart = host.restart_policy.and_then(|p| p.name);
        assert!(
            restart.is_none_or(|name| name.as_ref() == "no" || name.as_ref().is_empty()),
            "a Docker restart policy is set"
        );

        let response = http_get_eventually(host_port).await;
        assert!(response.contains("hello from gantry/busybox"), "{response}");
        eprintln!("httpd started and answered in {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn wait_reports_kill_and_exit_codes() {
        let Some((driver, node)) = driver_for("wait").await else {
            return;
        };
        let handle = driver
            .start(&launch(&node.0, "a1", &["sleep", "300"], vec![]))
            .await
            .unwrap();
        let waiting = {
            let (driver, handle) = (&driver, handle.clone());
            async move { driver.wait(&handle).await }
        };
        let killer = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            docker_cli(&["kill", &handle.id]);
        };
        let (exit, ()) = tokio::join!(waiting, killer);
        let exit = exit.unwrap();
        assert_eq!(exit.code, Some(137));
        assert_eq!(exit.message, "exit code 137 (killed)");
        assert!(!exit.success());

        // Already stopped: at once, with the same answer.
        let again = tokio::time::timeout(Duration::from_secs(5), driver.wait(&handle))
            .await
            .expect("wait on a stopped container returns at once")
            .unwrap();
        assert_eq!(again, exit);

        let three = driver
            .start(&launch(&node.0, "a2", &["sh", "-c", "exit 3"], vec![]))
            .await
            .unwrap();
        let exit = driver.wait(&three).await.unwrap();
        assert_eq!((exit.code, exit.message.as_str()), (Some(3), "exit code 3"));

        let zero = driver
            .start(&launch(&node.0, "a3", &["true"], vec![]))
            .await
            .unwrap();
        let exit = driver.wait(&zero).await.unwrap();
        assert!(exit.success(), "{exit:?}");
        assert_eq!(exit.message, "exit code 0");
    }

    #[tokio::test]
    async fn stop_then_remove_forgets_the_task() {
        let Some((driver, node)) = driver_for("stop").await else {
            return;
        };
        let launch = launch(&node.0, "a1", &["sleep", "300"], vec![]);
        let first = driver.start(&launch).await.unwrap();
        // A second start of the same allocation and task replaces the leftover.
        let handle = driver.start(&launch).await.unwrap();
        assert_ne!(first, handle);
        let found = driver.list().await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].handle, handle);
        assert!(found[0].running);
        assert_eq!(
            (
                found[0].alloc_id.as_str(),
                found[0].job_id.as_str(),
                found[0].task.as_str()
            ),
            (launch.alloc_id.as_str(), "web", "main")
        );

        let started = Instant::now();
        driver
            .stop(&handle, Duration::from_millis(500))
            .await
            .unwrap();
        eprintln!("stop with a 0.5 s grace took {:?}", started.elapsed());
        assert!(!driver.list().await.unwrap()[0].running);
        driver.stop(&handle, Duration::from_secs(1)).await.unwrap();

        driver.remove(&handle).await.unwrap();
        assert!(driver.list().await.unwrap().is_empty());
        driver.remove(&handle).await.unwrap();
        driver.stop(&handle, Duration::from_secs(1)).await.unwrap();
        assert!(matches!(
            driver.wait(&handle).await,
            Err(DriverError::NotFound(_))
        ));
        assert!(matches!(
            driver.logs(&handle, false, None).await,
            Err(DriverError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn list_shows_only_its_own_node() {
        let Some((ours, our_node)) = driver_for("list-ours").await else {
            return;
        };
        let Some((theirs, their_node)) = driver_for("list-theirs").await else {
            return;
        };
        let mine = ours
            .start(&launch(&our_node.0, "a1", &["sleep", "300"], vec![]))
            .await
            .unwrap();
        let other = theirs
            .start(&launch(&their_node.0, "a1", &["sleep", "300"], vec![]))
            .await
            .unwrap();
        let handles = |found: Vec<FoundTask>| -> Vec<TaskHandle> {
            found.into_iter().map(|t| t.handle).collect()
        };
        assert_eq!(handles(ours.list().await.unwrap()), vec![mine]);
        assert_eq!(handles(theirs.list().await.unwrap()), vec![other]);
    }

    #[tokio::test]
    async fn exec_returns_exit_codes() {
        let Some((driver, node)) = driver_for("exec").await else {
            return;
        };
        let handle = driver
            .start(&launch(&node.0, "a1", &["sleep", "300"], vec![]))
            .await
            .unwrap();
        let run = |command: &[&str]| command.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let timeout = Duration::from_secs(10);
        let started = Instant::now();
        assert_eq!(
            driver
                .exec(&handle, &run(&["true"]), timeout)
                .await
                .unwrap(),
            0
        );
        eprintln!("exec of true took {:?}", started.elapsed());
        assert_eq!(
            driver
                .exec(&handle, &run(&["false"]), timeout)
                .await
                .unwrap(),
            1
        );
        let chatty = run(&["sh", "-c", "seq 1 20000; exit 4"]);
        assert_eq!(driver.exec(&handle, &chatty, timeout).await.unwrap(), 4);

        let started = Instant::now();
        let slow = driver
            .exec(&handle, &run(&["sleep", "5"]), Duration::from_millis(300))
            .await;
        assert!(matches!(slow, Err(DriverError::Engine(_))), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn logs_carry_both_streams() {
        let Some((driver, node)) = driver_for("logs").await else {
            return;
        };
        let command = ["sh", "-c", "echo out; echo err >&2"];
        let handle = driver
            .start(&launch(&node.0, "a1", &command, vec![]))
            .await
            .unwrap();
        driver.wait(&handle).await.unwrap();

        let (out, err) = collect_logs(driver.logs(&handle, false, None).await.unwrap()).await;
        assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
        // Following a stopped container ends at once.
        let follow = tokio::time::timeout(
            Duration::from_secs(5),
            collect_logs(driver.logs(&handle, true, None).await.unwrap()),
        );
        assert_eq!(follow.await.unwrap(), (out, err));
        let (out, err) = collect_logs(driver.logs(&handle, false, Some(1)).await.unwrap()).await;
        assert_eq!(out.lines().count() + err.lines().count(), 1);
    }

    #[tokio::test]
    async fn logs_follow_until_the_task_exits() {
        let Some((driver, node)) = driver_for("follow").await else {
            return;
        };
        let command = ["sh", "-c", "echo one; sleep 1; echo two"];
        let handle = driver
            .start(&launch(&node.0, "a1", &command, vec![]))
            .await
            .unwrap();
        let chunks = driver.logs(&handle, true, None).await.unwrap();
        let followed = tokio::time::timeout(Duration::from_secs(10), collect_logs(chunks));
        let (out, _) = followed.await.expect("the stream ends with the task");
        assert_eq!(out, "one\ntwo\n");
    }

    #[tokio::test]
    async fn missing_image_is_reported() {
        let Some((driver, node)) = driver_for("missing").await else {
            return;
        };
        let mut launch = launch(&node.0, "a1", &["true"], vec![]);
        launch.task.image = "gantry/does-not-exist:1".to_string();
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(90), driver.start(&launch))
            .await
            .expect("start gives up within its pull bound");
        eprintln!(
            "missing image reported in {:?}: {result:?}",
            started.elapsed()
        );
        match result {
            Err(e @ DriverError::ImageMissing { .. }) => {
                let message = e.to_string();
                assert!(message.contains("gantry/does-not-exist:1"), "{message}");
                assert!(message.contains("could not be pulled"), "{message}");
            }
            other => panic!("expected ImageMissing, got {other:?}"),
        }
        assert!(driver.list().await.unwrap().is_empty());
    }

    #[test]
    fn names_are_sanitised() {
        let mut launch = launch("n", "x/1", &[], vec![]);
        launch.task.name = "my task:1".to_string();
        assert_eq!(container_name(&launch), "gantry-web-my_task_1-n-x_1");
    }

    #[test]
    fn exit_messages() {
        assert_eq!(exit(0, false).message, "exit code 0");
        assert_eq!(exit(137, false).message, "exit code 137 (killed)");
        assert_eq!(exit(137, true).message, "OOM killed");
        assert_eq!(exit(130, false).message, "exit code 130 (signal 2)");
    }

    #[test]
    fn max_version_is_read_from_the_refusal() {
        let refusal = BollardError::DockerResponseServerError {
            status_code: 400,
            message: "client version 1.53 is too new. Maximum supported API version is 1.41"
                .to_string(),
        };
        let version = engine_max_version(&refusal).unwrap();
        assert_eq!((version.major_version, version.minor_version), (1, 41));
    }

    #[test]
    fn pulls_name_a_tag() {
        assert_eq!(pull_options("busybox").tag.as_deref(), Some("latest"));
        assert_eq!(
            pull_options("localhost:5000/app").tag.as_deref(),
            Some("latest")
        );
        assert_eq!(pull_options("gantry/busybox:1").tag, None);
    }
}
