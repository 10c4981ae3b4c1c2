//! One project of `deploy/compose/` on the real Docker engine, driven the way an operator
//! drives it: `docker compose` (v2) or `docker-compose` (v1), whichever is installed.
//!
//! - [`require_compose`]: is there an engine and a compose command (skip otherwise, but
//!   never in CI), and is the `gantry/gantry` image built from the binary under test?
//! - [`Compose`]: a project with a unique name and its own settings file (given with
//!   `--env-file`, so an operator's `deploy/compose/.env` is never read): managers' API
//!   published on 127.0.0.1 at ports the engine picks, node names and host-port ranges of
//!   its own. Helpers reach each manager through its published port, run commands inside
//!   its container, cut it off the network and reconnect it.
//! - On drop (every exit path, a failed test included) it prints the services' logs if
//!   the test failed, then removes everything it made: `down -v`, then whatever still
//!   carries its labels (containers, volumes, the network) and the containers its agents
//!   started (`gantry.node=<its nodes>`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::agent::{docker, require_docker, run, Output};
use crate::support::{try_wait_until, Api, Status, GANTRY};

/// The image the compose files run (`GANTRY_IMAGE`), built by `deploy/image/build.sh`.
pub const GANTRY_IMAGE: &str = "gantry/gantry:latest";
/// The repository's root.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The port every manager listens on inside its container.
const MANAGER_PORT: &str = "4646/tcp";
/// Bound on `up` (image present: creating containers, waiting for health checks).
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on `down` and the other compose calls.
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of each service's log printed when a test fails.
const LOG_TAIL_LINES: &str = "80";

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The compose command: `docker compose` when the v2 plugin answers, else `docker-compose`.
fn compose_program() -> Result<&'static [&'static str], String> {
    static PROGRAM: OnceLock<Result<&'static [&'static str], String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            const CANDIDATES: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
            let mut tried = Vec::new();
            for candidate in CANDIDATES {
                let out = run(
                    Command::new(candidate[0])
                        .args(&candidate[1..])
                        .arg("version"),
                    Duration::from_secs(30),
                );
                match out {
                    Ok(out) if out.status.success() => {
                        eprintln!(
                            "[compose] using `{}`: {}",
                            candidate.join(" "),
                            out.stdout.lines().next().unwrap_or("").trim()
                        );
                        return Ok(candidate);
                    }
                    Ok(out) => tried.push(format!("`{}`: {}", candidate.join(" "), out.describe())),
                    Err(e) => tried.push(format!("`{}`: {e}", candidate.join(" "))),
                }
            }
            Err(format!("no compose command answers ({})", tried.join("; ")))
        })
        .clone()
}

/// True when the engine answers, a compose command exists and the `gantry/gantry` image
/// holds the binary under test (built here when it does not). Otherwise prints why the
/// test is skipped and returns false; with `CI=true` a missing engine or compose command
/// is a failure.
pub fn require_compose() -> bool {
    if !require_docker() {
        return false;
    }
    if let Err(why) = compose_program() {
        if in_ci() {
            panic!("CI=true and {why}");
        }
        eprintln!("\n[compose] SKIPPED: {why}; set CI=true to make this a failure\n");
        return false;
    }
    ensure_image();
    true
}

/// Builds `gantry/gantry:latest` from the binary under test unless it already holds it.
pub fn ensure_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = format!("{REPO}/deploy/image/build.sh");
        let out = run(
            Command::new("bash").args([&script, "--binary", GANTRY, "--if-missing"]),
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("{script}: {e}"));
        assert!(
            out.status.success(),
            "{script} --binary {GANTRY} failed: {}",
            out.describe()
        );
        eprintln!("[compose] {}", out.stdout.trim());
    });
}

/// The group owning the engine's socket (the agents' `group_add`).
fn docker_socket_gid() -> String {
    std::fs::metadata("/var/run/docker.sock")
        .map(|m| m.gid().to_string())
        .unwrap_or_else(|_| "0".to_string())
}

/// Two host-port ranges of 100 ports, above the kernel's ephemeral range and apart from
/// what other tests hand their agents (20000-32000), so no two agents on this engine ever
/// publish the same host port.
fn next_port_ranges() -> [String; 2] {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const BLOCKS: usize = 40; // 61000..65000
    let n = NEXT.fetch_add(2, Ordering::SeqCst);
    let base = std::process::id() as usize * 2;
    [0, 1].map(|k| {
        let start = 61000 + ((base + n + k) % BLOCKS) * 100;
        format!("{start}-{}", start + 99)
    })
}

/// 32 random bytes in hex, like `deploy/compose/make-env.sh` makes.
fn random_secret() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One compose project. See the module comment.
pub struct Compose {
    pub project: String,
    /// The management token the project's acl-bootstrap bootstraps ACL with.
    pub token: String,
    file: PathBuf,
    settings: Mutex<BTreeMap<String, String>>,
    env_dir: tempfile::TempDir,
    /// service → `127.0.0.1:port` of its published API, until the container changes.
    ports: Mutex<BTreeMap<String, String>>,
    pub api: Api,
    started: Instant,
}

impl Compose {
    /// Brings up `deploy/compose/<file>` as a new project (`up -d`: managers healthy, then
    /// agents), with `settings` on top of the test defaults.
    pub fn up(file: &str, test: &str, settings: &[(&str, &str)]) -> Compose {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let project = format!(
            "gantrytest{}{}{}",
            test,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )
        .to_ascii_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
        let [range_1, range_2] = next_port_ranges();
        let mut defaults: BTreeMap<String, String> = [
            ("GANTRY_IMAGE", GANTRY_IMAGE.to_string()),
            ("DOCKER_GID", docker_socket_gid()),
            ("GANTRY_NODE_PREFIX", project.clone()),
            ("GANTRY_NODE_1_PORT_RANGE", range_1),
            ("GANTRY_NODE_2_PORT_RANGE", range_2),
            ("GANTRY_BIND_ADDRESS", "127.0.0.1".to_string()),
            ("GANTRY_LOG", "info,openraft=warn".to_string()),
            ("GANTRY_CLUSTER_SECRET", random_secret()),
            ("GANTRY_MANAGEMENT_TOKEN", random_secret()),
            ("GANTRY_JOIN_TOKEN", random_secret()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for n in 1..=5 {
            // 0: the engine picks a free host port.
            defaults.insert(format!("GANTRY_MANAGER_{n}_PORT"), "0".to_string());
        }
        for (k, v) in settings {
            defaults.insert(k.to_string(), v.to_string());
        }
        let token = defaults["GANTRY_MANAGEMENT_TOKEN"].clone();
        let compose = Compose {
            project,
            file: PathBuf::from(format!("{REPO}/deploy/compose/{file}")),
            settings: Mutex::new(defaults),
            env_dir: tempfile::Builder::new()
                .prefix("gantry-compose-")
                .tempdir()
                .expect("temp dir"),
            ports: Mutex::new(BTreeMap::new()),
            api: Api::new(Duration::from_secs(10)).with_token(Some(&token)),
            token,
            started: Instant::now(),
        };
        compose.write_env_file();
        compose.log(&format!(
            "up: {} as project {} (settings in {})",
            compose.file.display(),
            compose.project,
            compose.env_file().display()
        ));
        let t = Instant::now();
        compose
            .compose(&["up", "-d"], UP_TIMEOUT)
            .unwrap_or_else(|e| panic!("compose up failed: {e}"));
        compose.log(&format!("up -d returned after {:?}", t.elapsed()));
        compose
    }

    pub fn log(&self, msg: &str) {
        eprintln!(
            "[compose {} +{:>7.3}s] {msg}",
            self.project,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn env_file(&self) -> PathBuf {
        self.env_dir.path().join("compose.env")
    }

    fn write_env_file(&self) {
        let settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.env_file(), text).expect("write the compose settings file");
    }

    /// Changes one setting for the next compose commands (e.g. a replacement's id).
    pub fn set(&self, key: &str, value: &str) {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), value.to_string());
        self.write_env_file();
    }

    /// `<compose> --env-file F -f FILE -p PROJECT args...`, with this project's settings in
    /// the environment too (they beat whatever the test's own environment holds).
    fn command(&self, args: &[&str]) -> Command {
        let program = compose_program().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(program[0]);
        cmd.args(&program[1..]);
        let env_file = self.env_file();
        cmd.arg("--env-file").arg(&env_file);
        cmd.arg("-f").arg(&self.file);
        cmd.args(["-p", &self.project]);
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("GANTRY_") || k.starts_with("COMPOSE_") || k == "DOCKER_GID" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a compose command; `Err` unless it exits 0.
    pub fn compose(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let out = run(&mut self.command(args), timeout)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!("compose {}: {}", args.join(" "), out.describe()))
        }
    }

    /// A node (agent) name of this project: `<project>-<n>`.
    pub fn node(&self, n: u32) -> String {
        format!("{}-{n}", self.project)
    }

    /// The project's user-defined network.
    pub fn network(&self) -> String {
        format!("{}_gantry", self.project)
    }

    /// The named volume holding `service`'s data dir.
    pub fn volume(&self, service: &str) -> String {
        format!("{}_{service}-data", self.project)
    }

    /// The id of `service`'s container (running or not).
    pub fn container(&self, service: &str) -> Result<String, String> {
        let ids = docker(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        match ids.as_slice() {
            [id] => Ok(id.to_string()),
            [] => Err(format!("no container for service {service}")),
            more => Err(format!("{} containers for service {service}", more.len())),
        }
    }

    /// `127.0.0.1:port` where `service`'s API is published now.
    pub fn addr(&self, service: &str) -> Result<String, String> {
        if let Some(addr) = self
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
        {
            return Ok(addr.clone());
        }
        let id = self.container(service)?;
        let out = docker(&["port", &id, MANAGER_PORT])?;
        let addr = out
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("127.0.0.1:"))
            .ok_or_else(|| format!("{service}: no port published on 127.0.0.1: {out:?}"))?
            .to_string();
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service.to_string(), addr.clone());
        Ok(addr)
    }

    /// Forgets `service`'s published port (a reconnected or recreated container gets a new
    /// one).
    pub fn forget_addr(&self, service: &str) {
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(service);
    }

    /// `GET /v1/status` of `service` through its published port.
    pub async fn status(&self, service: &str) -> Result<Status, String> {
        let addr = self.addr(service)?;
        self.api
            .status(&addr)
            .await
            .map_err(|e| format!("{service}: {e}"))
    }

    /// One probe: every one of `services` answers and names the same leader, which is one
    /// of them and says it leads. Returns the leader's service and status.
    pub async fn agreed_leader(&self, services: &[String]) -> Result<(String, Status), String> {
        let mut statuses = BTreeMap::new();
        for s in services {
            statuses.insert(s.clone(), self.status(s).await?);
        }
        let named: Vec<Option<u64>> = statuses
            .values()
            .map(|st| st.leader.as_ref().map(|l| l.id))
            .collect();
        let Some(Some(leader)) = named.first().copied() else {
            return Err(format!("no leader yet: {named:?}"));
        };
        if named.iter().any(|n| *n != Some(leader)) {
            return Err(format!("managers disagree on the leader: {named:?}"));
        }
        statuses
            .into_iter()
            .find(|(_, st)| st.id == leader && st.role == "leader")
            .ok_or_else(|| format!("leader {leader} is not among {services:?} or not leading"))
    }

    /// Waits (bounded) until `services` agree on a leader among them.
    pub async fn wait_leader(&self, services: &[String], timeout: Duration) -> (String, Status) {
        let mut probe = || self.agreed_leader(services);
        match try_wait_until(timeout, &mut probe).await {
            Ok(found) => found,
            Err(last) => {
                panic!("{services:?} did not agree on a leader within {timeout:?}; last: {last}")
            }
        }
    }

    /// `docker exec <service's container> args...`, bounded.
    pub fn exec(&self, service: &str, args: &[&str], timeout: Duration) -> Result<Output, String> {
        let id = self.container(service)?;
        run(
            Command::new("docker").arg("exec").arg(&id).args(args),
            timeout,
        )
    }

    /// `docker inspect -f FORMAT` of `service`'s container.
    pub fn inspect(&self, service: &str, format: &str) -> Result<String, String> {
        let id = self.container(service)?;
        Ok(docker(&["inspect", "-f", format, &id])?.trim().to_string())
    }

    /// Cuts `service` off the project's network: no peer reaches it, it reaches no one, and
    /// its published port goes away with its address.
    pub fn disconnect(&self, service: &str) {
        let id = self.container(service).unwrap_or_else(|e| panic!("{e}"));
        docker(&["network", "disconnect", &self.network(), &id]).unwrap_or_else(|e| panic!("{e}"));
        self.forget_addr(service);
    }

    /// Connects `service` back, under its service name (the alias its peers and agents use).
    pub fn reconnect(&self, service: &str) {
        let id = self.container(service).unwrap_or_else(|e| panic!("{e}"));
        docker(&[
            "network",
            "connect",
            "--alias",
            service,
            &self.network(),
            &id,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        self.forget_addr(service);
    }

    /// `docker kill`: the process dies at once; the restart policy leaves it down.
    pub fn kill(&self, service: &str) {
        let id = self.container(service).unwrap_or_else(|e| panic!("{e}"));
        docker(&["kill", &id]).unwrap_or_else(|e| panic!("{e}"));
        self.forget_addr(service);
    }

    /// The host is gone: the container and its data volume are removed.
    pub fn destroy(&self, service: &str) {
        let id = self.container(service).unwrap_or_else(|e| panic!("{e}"));
        docker(&["rm", "-f", "-v", &id]).unwrap_or_else(|e| panic!("{e}"));
        docker(&["volume", "rm", &self.volume(service)]).unwrap_or_else(|e| panic!("{e}"));
        self.forget_addr(service);
    }

    /// The tail of `service`'s log.
    pub fn service_log(&self, service: &str) -> String {
        match self.compose(
            &[
                "logs",
                "--no-color",
                &format!("--tail={LOG_TAIL_LINES}"),
                service,
            ],
            COMPOSE_TIMEOUT,
        ) {
            Ok(text) => text,
            Err(e) => format!("(no log: {e})"),
        }
    }

    fn remove_everything(&self) {
        if let Err(e) = self.compose(
            &["down", "-v", "--remove-orphans", "-t", "3"],
            COMPOSE_TIMEOUT,
        ) {
            eprintln!("[compose {}] cleanup: {e}", self.project);
        }
        let project_label = format!("label=com.docker.compose.project={}", self.project);
        let mut filters = vec![project_label.clone()];
        for n in 1..=2 {
            filters.push(format!("label=gantry.node={}", self.node(n)));
        }
        for filter in &filters {
            let ids = docker(&["ps", "-a", "-q", "--filter", filter]).unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().copied());
                match docker(&args) {
                    Ok(_) => eprintln!(
                        "[compose {}] cleanup: removed {} container(s) with {filter}",
                        self.project,
                        ids.len()
                    ),
                    Err(e) => eprintln!("[compose {}] cleanup: {e}", self.project),
                }
            }
        }
        let volumes =
            docker(&["volume", "ls", "-q", "--filter", &project_label]).unwrap_or_default();
        for volume in volumes.split_whitespace() {
            let _ = docker(&["volume", "rm", "-f", volume]);
        }
        let networks =
            docker(&["network", "ls", "-q", "--filter", &project_label]).unwrap_or_default();
        for network in networks.split_whitespace() {
            let _ = docker(&["network", "rm", network]);
        }
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n[compose {}] test failed; the services' logs follow",
                self.project
            );
            match self.compose(
                &["logs", "--no-color", &format!("--tail={LOG_TAIL_LINES}")],
                COMPOSE_TIMEOUT,
            ) {
                Ok(text) => eprintln!("{text}"),
                Err(e) => eprintln!("(no logs: {e})"),
            }
        }
        let t = Instant::now();
        self.remove_everything();
        self.log(&format!("removed the project in {:?}", t.elapsed()));
    }
}
