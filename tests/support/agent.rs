//! Harness for process-level tests of `gantry agent` against the real Docker engine.
//!
//! - [`require_docker`]: is there an engine to test against (skip otherwise, but never
//!   in CI), and is the test image `gantry/busybox:latest` built (never pulled)?
//! - [`AgentProcess`]: one `gantry agent` process with its own temp data dir, a free
//!   `--listen` port, a port range of its own and its output in a log file; the same
//!   conventions as [`super::Manager`] (SIGKILL and log tail on a failed test).
//! - [`Container`] and the `docker_*` helpers: what the engine says, through the
//!   `docker` CLI (no client library: these tests see what an operator sees).
//! - [`Cleanup`]: force-removes, on drop, every container labelled with the node names
//!   (or other labels) a test used, so nothing leaks into the next test or CI.
//! - API helpers over `gantry_api::Client` (allocations of a job, nodes, waits).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use gantry_api::client::AllocationFilter;
use gantry_api::{Allocation, Client, ClientOptions, ClientState, DesiredState, Node, NodeStatus};
use serde_json::Value;

use super::{free_ports, wait_until, Cluster, GANTRY};

/// The test image, built locally by `deploy/images/build.sh` (there is no registry).
pub const IMAGE: &str = "gantry/busybox:latest";
/// Lines of an agent's log printed when a test fails.
const LOG_TAIL_LINES: usize = 80;
/// Bound on every `docker` CLI call.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Docker availability and the test image
// ---------------------------------------------------------------------------

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// True when the Docker engine answers (and the test image is then built if missing).
/// Otherwise prints why the test is skipped and returns false; in CI (`CI=true`) a
/// missing engine is a failure, never a skip.
pub fn require_docker() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let info = run(
            Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
            Duration::from_secs(30),
        );
        match info {
            Ok(out) if out.status.success() => {
                eprintln!("[harness] docker engine {} answers", out.stdout.trim());
            }
            Ok(out) => return Err(format!("`docker info` failed: {}", out.describe())),
            Err(e) => return Err(format!("`docker info`: {e}")),
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/images/build.sh");
        let built = run(
            Command::new("bash").args([script, "--if-missing"]),
            Duration::from_secs(300),
        );
        match built {
            Ok(out) if out.status.success() => {
                eprintln!("[harness] {script} --if-missing: {}", out.stdout.trim());
                Ok(())
            }
            Ok(out) => panic!(
                "the Docker engine answers but {script} --if-missing failed: {}",
                out.describe()
            ),
            Err(e) => panic!("the Docker engine answers but {script} failed: {e}"),
        }
    });
    match ready {
        Ok(()) => true,
        Err(why) => {
            if in_ci() {
                panic!("CI=true and no usable Docker engine: {why}");
            }
            eprintln!(
                "\n[harness] SKIPPED: these tests need a Docker engine ({why}); \
                 set CI=true to make this a failure\n"
            );
            false
        }
    }
}

// ---------------------------------------------------------------------------
// Running commands with a bound
// ---------------------------------------------------------------------------

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "{}; stdout: {}; stderr: {}",
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        )
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {what}: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// `docker ARGS`; `Err` unless it exits 0.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = run(Command::new("docker").args(args), DOCKER_TIMEOUT)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!("docker {}: {}", args.join(" "), out.describe()))
    }
}

// ---------------------------------------------------------------------------
// Containers as the engine sees them
// ---------------------------------------------------------------------------

/// One container, from `docker inspect`.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `created`, `running`, `exited`, ...
    pub state: String,
    pub running: bool,
    pub started_at: String,
    /// The engine's own restart count (the agent restarts tasks itself; kept for the record).
    pub docker_restart_count: u64,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub image: String,
    pub nano_cpus: i64,
    pub memory: i64,
    /// `HostConfig.PortBindings`: "8080/tcp" → [(host ip, host port)].
    pub port_bindings: BTreeMap<String, Vec<(String, u16)>>,
    pub raw: Value,
}

impl Container {
    fn from_inspect(v: &Value) -> Container {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let labels = v
            .pointer("/Config/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let env = v
            .pointer("/Config/Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let port_bindings = v
            .pointer("/HostConfig/PortBindings")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(port, bindings)| {
                        let list = bindings
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|b| {
                                        let ip = b["HostIp"].as_str().unwrap_or("").to_string();
                                        let hp = b["HostPort"]
                                            .as_str()
                                            .and_then(|p| p.parse().ok())
                                            .unwrap_or(0);
                                        (ip, hp)
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (port.clone(), list)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Container {
            id: s("/Id"),
            name: s("/Name").trim_start_matches('/').to_string(),
            state: s("/State/Status"),
            running: v
                .pointer("/State/Running")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            started_at: s("/State/StartedAt"),
            docker_restart_count: v
                .pointer("/RestartCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            labels,
            env,
            image: s("/Config/Image"),
            nano_cpus: v
                .pointer("/HostConfig/NanoCpus")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            memory: v
                .pointer("/HostConfig/Memory")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            port_bindings,
            raw: v.clone(),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn alloc_id(&self) -> Option<&str> {
        self.label("gantry.alloc_id")
    }

    /// The value of `KEY=` in the container's environment.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// Host ports bound for `container_port/tcp`.
    pub fn host_ports(&self, container_port: u16) -> Vec<u16> {
        self.port_bindings
            .get(&format!("{container_port}/tcp"))
            .map(|b| b.iter().map(|(_, p)| *p).collect())
            .unwrap_or_default()
    }

    /// One line for logs.
    pub fn short(&self) -> String {
        format!(
            "{} {} {} started_at={}",
            &self.id[..12.min(self.id.len())],
            self.name,
            self.state,
            self.started_at
        )
    }
}

/// Every container (running or not) carrying the label filter `key=value` (or `key`).
pub fn containers_with_label(filter: &str) -> Result<Vec<Container>, String> {
    let ids = docker(&[
        "ps",
        "-a",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label={filter}"),
    ])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["inspect"];
    args.extend(ids.iter().copied());
    // A container removed between `ps` and `inspect` makes inspect exit 1 but still
    // print the others: parse whatever came out.
    let out = run(Command::new("docker").args(&args), DOCKER_TIMEOUT)?;
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("docker inspect: cannot parse ({e}): {}", out.describe()))?;
    let mut list: Vec<Container> = v
        .as_array()
        .map(|a| a.iter().map(Container::from_inspect).collect())
        .unwrap_or_default();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// The containers of node `name` (label `gantry.node=name`).
pub fn node_containers(name: &str) -> Result<Vec<Container>, String> {
    containers_with_label(&format!("gantry.node={name}"))
}

/// The containers of allocation `id` (label `gantry.alloc_id=id`).
pub fn alloc_containers(id: &str) -> Result<Vec<Container>, String> {
    containers_with_label(&format!("gantry.alloc_id={id}"))
}

/// The one running container of allocation `id`.
pub fn running_container(alloc_id: &str) -> Result<Container, String> {
    let all = alloc_containers(alloc_id)?;
    let running: Vec<&Container> = all.iter().filter(|c| c.running).collect();
    match running.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no running container for allocation {alloc_id}; containers: {:?}",
            all.iter().map(Container::short).collect::<Vec<_>>()
        )),
        _ => Err(format!(
            "{} running containers for allocation {alloc_id}: {:?}",
            running.len(),
            running.iter().map(|c| c.short()).collect::<Vec<_>>()
        )),
    }
}

/// `docker inspect ID` (None when it does not exist).
pub fn inspect(id: &str) -> Option<Container> {
    let out = run(Command::new("docker").args(["inspect", id]), DOCKER_TIMEOUT).ok()?;
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    v.as_array()?.first().map(Container::from_inspect)
}

/// `docker kill ID` (SIGKILL to the container's main process).
pub fn docker_kill(id: &str) {
    docker(&["kill", id]).unwrap_or_else(|e| panic!("{e}"));
}

/// Summary of containers for logs: `name state` per line.
pub fn describe_containers(list: &[Container]) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    list.iter()
        .map(|c| format!("  {}", c.short()))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------

/// Force-removes, on drop, every container carrying one of the labels it was told
/// about. Declare it *before* the agents of a test so it drops after them (locals drop
/// in reverse order): an agent still running could otherwise start containers again.
pub struct Cleanup {
    test: String,
    filters: Mutex<Vec<String>>,
}

impl Cleanup {
    pub fn new(test: &str) -> Cleanup {
        Cleanup {
            test: test.to_string(),
            filters: Mutex::new(Vec::new()),
        }
    }

    /// A node name unique to this test and this run (`{test}-{role}-{pid}`), whose
    /// containers are removed on drop.
    pub fn node(&self, role: &str) -> String {
        let name = format!("{}-{role}-{}", self.test, std::process::id());
        self.label(&format!("gantry.node={name}"));
        name
    }

    /// Also remove containers with this label filter (`key=value`).
    pub fn label(&self, filter: &str) {
        let mut f = self.filters.lock().unwrap_or_else(|e| e.into_inner());
        if !f.iter().any(|x| x == filter) {
            f.push(filter.to_string());
        }
    }

    /// Removes now what drop would remove.
    pub fn remove_all(&self) {
        let filters = self
            .filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for filter in filters {
            let ids = match docker(&["ps", "-a", "-q", "--filter", &format!("label={filter}")]) {
                Ok(ids) => ids,
                Err(e) => {
                    eprintln!("[harness] cleanup: listing {filter}: {e}");
                    continue;
                }
            };
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if ids.is_empty() {
                continue;
            }
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().copied());
            match docker(&args) {
                Ok(_) => eprintln!(
                    "[harness] cleanup: removed {} container(s) labelled {filter}",
                    ids.len()
                ),
                Err(e) => eprintln!("[harness] cleanup: {e}"),
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.remove_all();
    }
}

// ---------------------------------------------------------------------------
// Agent processes
// ---------------------------------------------------------------------------

/// Port ranges handed to agents of this test process, so that two agents on this one
/// machine never get the same host port from the scheduler (each node has its own
/// range; Docker can bind a host port once).
fn next_port_range() -> (u16, u16) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const BLOCK: usize = 200;
    const BLOCKS: usize = (32000 - 20000) / BLOCK; // 60
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let block = (std::process::id() as usize * 7 + n * 13) % BLOCKS;
    let start = 20000 + block * BLOCK;
    (start as u16, (start + BLOCK - 1) as u16)
}

/// One `gantry agent` process.
pub struct AgentProcess {
    pub name: String,
    /// Its own HTTP endpoint (`--listen`).
    pub listen: String,
    pub port_range: (u16, u16),
    args: Vec<String>,
    dir: Mutex<Option<tempfile::TempDir>>,
    log_path: PathBuf,
    child: Mutex<Option<Child>>,
    starts: AtomicU32,
    started: Instant,
}

impl AgentProcess {
    /// Starts an agent for `cluster`'s managers named `name` with `--driver driver`
    /// (and 4000 millis / 4096 MB unless `extra` says otherwise).
    pub fn start(cluster: &Cluster, name: &str, driver: &str, extra: &[&str]) -> AgentProcess {
        Self::start_for(&cluster.addrs(), name, driver, extra)
    }

    /// Same, for any set of managers.
    pub fn start_for(
        managers: &[String],
        name: &str,
        driver: &str,
        extra: &[&str],
    ) -> AgentProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gantry-test-agent-{name}-"))
            .tempdir()
            .expect("create temp dir");
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("agent.log");
        let listen = format!("127.0.0.1:{}", free_ports(1)[0]);
        let has = |flag: &str| {
            extra
                .iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--managers".into(),
            managers.join(","),
            "--name".into(),
            name.into(),
            "--driver".into(),
            driver.into(),
            "--listen".into(),
            listen.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        let mut port_range = (0, 0);
        if !has("--port-range") {
            port_range = next_port_range();
            args.push("--port-range".into());
            args.push(format!("{}-{}", port_range.0, port_range.1));
        }
        if !has("--cpu-millis") {
            args.extend(["--cpu-millis".to_string(), "4000".to_string()]);
        }
        if !has("--memory-mb") {
            args.extend(["--memory-mb".to_string(), "4096".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let agent = AgentProcess {
            name: name.to_string(),
            listen,
            port_range,
            args,
            dir: Mutex::new(Some(dir)),
            log_path,
            child: Mutex::new(None),
            starts: AtomicU32::new(0),
            started: Instant::now(),
        };
        agent.spawn();
        agent
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn log(&self, msg: &str) {
        eprintln!(
            "[harness +{:>7.3}s] agent {}: {msg}",
            self.started.elapsed().as_secs_f64(),
            self.name
        );
    }

    fn mark(&self, what: &str) {
        if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(log, "===== harness: {what} agent {} =====", self.name);
        }
    }

    fn spawn(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(guard.is_none(), "agent {} is already running", self.name);
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open agent log");
        let _ = writeln!(
            log,
            "===== harness: start #{n} of agent {}: {GANTRY} {} =====",
            self.name,
            self.args.join(" ")
        );
        let stderr = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(GANTRY);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .env("NO_COLOR", "1");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {GANTRY} for agent {}: {e}", self.name));
        self.log(&format!("started (#{n}, pid {})", child.id()));
        *guard = Some(child);
    }

    /// SIGKILL and reap. No-op when not running.
    pub fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.mark("SIGKILL");
            self.log("SIGKILLed");
        }
    }

    /// SIGTERM and wait (bounded: 60 s, then SIGKILL and panic). Returns the exit status.
    pub fn stop(&self) -> Option<ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = guard.take()?;
        self.mark("SIGTERM");
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = t + Duration::from_secs(60);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.log(&format!(
                        "stopped by SIGTERM in {:?}: {status}",
                        t.elapsed()
                    ));
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    drop(guard);
                    panic!(
                        "agent {} did not exit within 60 s of SIGTERM\n{}",
                        self.name,
                        self.log_tail(LOG_TAIL_LINES)
                    );
                }
            }
        }
    }

    /// Starts it again with the same command line and data dir (killing it first if it
    /// still runs).
    pub fn restart(&self) {
        self.kill();
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `Err` (with the log tail) when it was started and has exited on its own.
    pub fn check_alive(&self) -> Result<(), String> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = guard.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                guard.take();
                drop(guard);
                return Err(format!(
                    "agent {} exited unexpectedly with {status}\n{}",
                    self.name,
                    self.log_tail(LOG_TAIL_LINES)
                ));
            }
        }
        Ok(())
    }

    /// Panics (with the log tail) if it exited when it should run.
    pub fn assert_alive(&self) {
        if let Err(e) = self.check_alive() {
            panic!("{e}");
        }
    }

    /// Waits until its `--listen` endpoint accepts connections (it is up).
    pub async fn wait_listening(&self, timeout: Duration) -> Duration {
        let t = Instant::now();
        let addr = self.listen.clone();
        wait_until(
            &format!("agent {} to listen on {addr}", self.name),
            timeout,
            || {
                let addr = addr.clone();
                async move {
                    self.assert_alive();
                    TcpStream::connect_timeout(
                        &addr.parse::<std::net::SocketAddr>().unwrap(),
                        Duration::from_millis(500),
                    )
                    .map(|_| ())
                    .map_err(|e| format!("connect {addr}: {e}"))
                }
            },
        )
        .await;
        t.elapsed()
    }

    pub fn log_text(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        super::log_tail(&format!("agent {}", self.name), &self.log_path, lines)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let running = self.is_running();
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "[harness] agent {} ({}), started {} time(s), cmd: {GANTRY} {}",
                self.name,
                if running { "running" } else { "stopped" },
                self.starts.load(Ordering::SeqCst),
                self.args.join(" ")
            );
            eprintln!("{}", self.log_tail(LOG_TAIL_LINES));
            if let Some(mut dir) = self.dir.lock().unwrap_or_else(|e| e.into_inner()).take() {
                dir.disable_cleanup(true);
                eprintln!(
                    "[harness] kept agent {} dir for inspection: {}",
                    self.name,
                    dir.path().display()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The API side
// ---------------------------------------------------------------------------

/// A `gantry_api` client over the cluster's managers.
pub fn client(cluster: &Cluster) -> Client {
    client_for(&cluster.addrs())
}

pub fn client_for(addrs: &[String]) -> Client {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
    };
    Client::with_options(addrs, None, options).expect("client")
}

/// Submits `spec` to the leader (201 required).
pub async fn submit(cluster: &Cluster, spec: &Value) {
    let leader = cluster.leader_id().await;
    cluster
        .client()
        .submit(&cluster.addr(leader), spec)
        .await
        .unwrap_or_else(|e| panic!("submitting {spec}: {e}"));
}

/// Every allocation of `job` (any state).
pub async fn allocations(client: &Client, job: &str) -> Result<Vec<Allocation>, String> {
    let filter = AllocationFilter {
        job: Some(job.to_string()),
        ..Default::default()
    };
    client
        .list_allocations(&filter, false)
        .await
        .map(|r| r.value)
        .map_err(|e| e.to_string())
}

pub async fn allocation(client: &Client, id: &str) -> Result<Allocation, String> {
    client
        .get_allocation(id, false)
        .await
        .map(|r| r.value)
        .map_err(|e| format!("GET allocation {id}: {e}"))
}

pub fn is_live(a: &Allocation) -> bool {
    a.desired == DesiredState::Run && !a.client_state.is_terminal()
}

pub fn live(all: &[Allocation]) -> Vec<Allocation> {
    all.iter().filter(|a| is_live(a)).cloned().collect()
}

/// One line per allocation, for logs and failure messages.
pub fn describe_allocs(all: &[Allocation]) -> String {
    all.iter()
        .map(|a| {
            format!(
                "{} slot={} node={} desired={:?} state={:?} health={:?} restarts={} msg={:?}",
                a.id,
                a.slot,
                a.node_id,
                a.desired,
                a.client_state,
                a.health,
                a.restart_count,
                a.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Exactly one live allocation per slot `0..n`, all running. Returns them by slot.
pub fn check_running(all: &[Allocation], n: u32) -> Result<BTreeMap<u32, Allocation>, String> {
    let mut by_slot = BTreeMap::new();
    for a in live(all) {
        if let Some(other) = by_slot.insert(a.slot, a.clone()) {
            return Err(format!(
                "slot {} has two live allocations: {} and {}",
                a.slot, other.id, a.id
            ));
        }
    }
    let slots: BTreeSet<u32> = by_slot.keys().copied().collect();
    if slots != (0..n).collect::<BTreeSet<u32>>() {
        return Err(format!(
            "live slots {slots:?}, expected 0..{n}: {}",
            describe_allocs(all)
        ));
    }
    if by_slot
        .values()
        .any(|a| a.client_state != ClientState::Running)
    {
        return Err(format!("not all running: {}", describe_allocs(all)));
    }
    Ok(by_slot)
}

/// Waits until `job` has `n` slots running (agents are checked alive on every poll).
pub async fn wait_job_running(
    client: &Client,
    job: &str,
    n: u32,
    timeout: Duration,
    agents: &[&AgentProcess],
) -> BTreeMap<u32, Allocation> {
    wait_until(
        &format!("job {job}: {n} slots running"),
        timeout,
        || async {
            for a in agents {
                a.assert_alive();
            }
            let all = allocations(client, job).await?;
            check_running(&all, n)
        },
    )
    .await
}

pub async fn nodes(client: &Client) -> Result<Vec<Node>, String> {
    client
        .list_nodes(false)
        .await
        .map(|r| r.value)
        .map_err(|e| e.to_string())
}

/// Waits until every agent's node is `ready`; returns node name → node id.
pub async fn wait_nodes_ready(
    client: &Client,
    agents: &[&AgentProcess],
    timeout: Duration,
) -> BTreeMap<String, String> {
    wait_until("the agents' nodes to be ready", timeout, || async {
        for a in agents {
            a.assert_alive();
        }
        let nodes = nodes(client).await?;
        let mut ids = BTreeMap::new();
        for a in agents {
            match nodes.iter().find(|n| n.name == a.name) {
                Some(n) if n.status == NodeStatus::Ready => {
                    ids.insert(n.name.clone(), n.id.clone());
                }
                Some(n) => return Err(format!("node {} is {:?}", n.name, n.status)),
                None => return Err(format!("no node named {} yet", a.name)),
            }
        }
        Ok(ids)
    })
    .await
}

/// Waits until node `name` has status `status`.
pub async fn wait_node_status(client: &Client, name: &str, status: NodeStatus, timeout: Duration) {
    wait_until(
        &format!("node {name} to be {status:?}"),
        timeout,
        || async {
            let nodes = nodes(client).await?;
            match nodes.iter().find(|n| n.name == name) {
                Some(n) if n.status == status => Ok(()),
                Some(n) => Err(format!("node {name} is {:?}", n.status)),
                None => Err(format!("no node named {name}")),
            }
        },
    )
    .await
}

/// One `GET http://127.0.0.1:port/`: the status code.
pub async fn http_status(port: u16) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/");
    client
        .get(&url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("GET {url}: {e}"))
}

/// Waits until `GET http://127.0.0.1:port/` answers 200.
pub async fn wait_http_200(port: u16, timeout: Duration) {
    wait_until(
        &format!("HTTP 200 from 127.0.0.1:{port}"),
        timeout,
        || async {
            match http_status(port).await? {
                200 => Ok(()),
                s => Err(format!("HTTP {s}")),
            }
        },
    )
    .await
}

/// The host port of the allocation's port `name`.
pub fn host_port(a: &Allocation, name: &str) -> u16 {
    a.ports
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("allocation {} has no port {name}: {:?}", a.id, a.ports))
        .host_port
}

/// A service of `replicas` busybox `httpd -f -p 8080` with port `http` → 8080 and
/// 100 millis / 32 MB.
pub fn httpd_job(id: &str, replicas: u32) -> Value {
    serde_json::json!({
        "id": id,
        "type": "service",
        "replicas": replicas,
        "tasks": [{
            "name": "main",
            "image": IMAGE,
            "command": ["httpd", "-f", "-p", "8080"],
            "resources": {"cpu_millis": 100, "memory_mb": 32},
            "ports": [{"name": "http", "container_port": 8080}]
        }]
    })
}

/// What a test compares before/after an event: each allocation's container id,
/// StartedAt and restart count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// alloc id → (container id, started_at, running)
    pub containers: BTreeMap<String, (String, String, bool)>,
    /// alloc id → restart_count
    pub restarts: BTreeMap<String, u32>,
}

impl Snapshot {
    /// The running containers of `allocs` (each must have exactly one running).
    pub fn take(allocs: &[Allocation]) -> Result<Snapshot, String> {
        let mut containers = BTreeMap::new();
        let mut restarts = BTreeMap::new();
        for a in allocs {
            let c = running_container(&a.id)?;
            containers.insert(a.id.clone(), (c.id, c.started_at, c.running));
            restarts.insert(a.id.clone(), a.restart_count);
        }
        Ok(Snapshot {
            containers,
            restarts,
        })
    }

    /// `Err` describing every difference from `self`.
    pub fn same_as(&self, now: &Snapshot) -> Result<(), String> {
        if self == now {
            Ok(())
        } else {
            Err(format!("before: {self:?}\nnow:    {now:?}"))
        }
    }
}

/// What every Docker test starts with: the engine answers (the test is skipped
/// otherwise, see [`require_docker`]), it is the Docker tests' turn (they share the
/// engine: one at a time), three managers run, and one Docker agent per role (`"a"`,
/// `"b"`) is registered and ready.
pub struct DockerTest {
    /// One per role, in order; see [`agents_of`].
    pub agents: Vec<AgentProcess>,
    /// Node name → node id.
    pub ids: BTreeMap<String, String>,
    pub client: Client,
    pub cluster: Cluster,
    pub cleanup: Cleanup,
    /// Held until the test ends (fields drop in order: this one last).
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl DockerTest {
    /// `None`: no engine, and not in CI: skip the test.
    pub async fn start(test: &str, roles: &[&str]) -> Option<DockerTest> {
        if !require_docker() {
            return None;
        }
        let serial = super::SERIAL.lock().await;
        let cleanup = Cleanup::new(test);
        let cluster = Cluster::start(3).await;
        let client = client(&cluster);
        let agents: Vec<AgentProcess> = roles
            .iter()
            .map(|role| AgentProcess::start(&cluster, &cleanup.node(role), "docker", &[]))
            .collect();
        let started = Instant::now();
        let refs: Vec<&AgentProcess> = agents.iter().collect();
        let ids = wait_nodes_ready(&client, &refs, Duration::from_secs(60)).await;
        cluster.log(&format!(
            "{} agent(s) ready in {:?}: {ids:?}",
            agents.len(),
            started.elapsed()
        ));
        Some(DockerTest {
            agents,
            ids,
            client,
            cluster,
            cleanup,
            _serial: serial,
        })
    }
}

/// The agents of a [`DockerTest`] as an array: `let [a, b] = agents_of(agents);`.
pub fn agents_of<const N: usize>(agents: Vec<AgentProcess>) -> [AgentProcess; N] {
    let count = agents.len();
    agents
        .try_into()
        .unwrap_or_else(|_| panic!("{count} agents, not {N}"))
}
