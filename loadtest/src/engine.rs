//! The local Docker engine, driven through the `docker` CLI.
//!
//! Why it exists: the `engine` scenario compares Gantry with the engine it
//! runs on (and with Docker Swarm on that engine, see `swarm.rs`), so it
//! needs to ask the engine the same question every time (how many
//! containers with these labels are running?), to start containers without
//! Gantry for the baseline, and to make sure that no container it caused
//! outlives the run. The CLI rather than an API client:
//! the load tester needs nothing more than a few commands, each bounded in
//! time and killed if it hangs.
//!
//! [`LabelSweep`] is the container counterpart of `process::Proc`: dropping
//! it removes every container carrying its label, on every exit path.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The image the scenario runs; built by `deploy/images/build.sh`, never pulled.
pub const IMAGE: &str = "gantry/busybox:latest";

/// The longest a query (`ps`, `version`, `inspect`) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a `docker run` or `docker rm -f` may take.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// CPU and memory limits given to every container, Gantry's or the baseline's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cpu_millis: u64,
    pub memory_mb: u64,
}

/// Run `docker args...`, bounded by `timeout`; its stdout on exit status 0,
/// else an error quoting its stderr.
pub async fn docker(args: &[String], timeout: Duration) -> Result<String> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().context(
        "running `docker`: the docker CLI is not on $PATH (this scenario needs a Docker engine)",
    )?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("`docker {}` took over {timeout:?}", args.join(" ")))??;
    if !output.status.success() {
        bail!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The engine's version, or an error saying the engine does not answer.
pub async fn engine_version() -> Result<String> {
    let out = docker(
        &strings(&["version", "--format", "{{.Server.Version}}"]),
        QUERY_TIMEOUT,
    )
    .await
    .context("the Docker engine does not answer; start it (or point DOCKER_HOST at one)")?;
    Ok(out.trim().to_owned())
}

/// Fails, saying how to build it, if `image` is not present locally.
pub async fn require_image(image: &str) -> Result<()> {
    docker(
        &strings(&["image", "inspect", "--format", "{{.Id}}", image]),
        QUERY_TIMEOUT,
    )
    .await
    .map(|_| ())
    .with_context(|| {
        format!(
            "image {image} is not present in the local engine; build it with \
             deploy/images/build.sh (this scenario never pulls)"
        )
    })
}

/// A container label filter, `key=value`, as `docker ps --filter` takes it.
pub fn label(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// How many containers carry every one of `labels`: only running ones, or
/// (`all`) in any state.
pub async fn count(labels: &[String], all: bool) -> Result<usize> {
    let mut args = strings(&["ps", "-q", "--no-trunc"]);
    if all {
        args.push("-a".into());
    } else {
        args.extend(strings(&["--filter", "status=running"]));
    }
    for l in labels {
        args.push("--filter".into());
        args.push(format!("label={l}"));
    }
    let out = docker(&args, QUERY_TIMEOUT).await?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// `docker run -d` one container of `image` running `command`, with
/// `labels` and `limits`. Returns once the CLI does (the container started).
pub async fn run_detached(
    image: &str,
    command: &[&str],
    labels: &[String],
    limits: Limits,
) -> Result<()> {
    let mut args = strings(&["run", "-d"]);
    for l in labels {
        args.push("--label".into());
        args.push(l.clone());
    }
    args.push("--cpus".into());
    args.push(format!("{:.3}", limits.cpu_millis as f64 / 1000.0));
    args.push("--memory".into());
    args.push(format!("{}m", limits.memory_mb));
    args.push(image.into());
    args.extend(strings(command));
    docker(&args, CHANGE_TIMEOUT).await.map(|_| ())
}

/// `docker rm -f` every container carrying `label`, in any state. Returns how
/// many there were.
pub async fn remove_labelled(label: &str) -> Result<usize> {
    let ids = labelled_ids(label).await?;
    if !ids.is_empty() {
        let mut args = strings(&["rm", "-f"]);
        args.extend(ids.iter().cloned());
        docker(&args, CHANGE_TIMEOUT).await?;
    }
    Ok(ids.len())
}

async fn labelled_ids(label: &str) -> Result<Vec<String>> {
    let args = strings(&["ps", "-aq", "--filter", &format!("label={label}")]);
    let out = docker(&args, QUERY_TIMEOUT).await?;
    Ok(out.split_whitespace().map(str::to_owned).collect())
}

/// Removes every container carrying `label` when dropped: on success, on
/// error, on Ctrl-C and on panic. Declare it *after* whatever starts such
/// containers (locals drop in reverse order), so that the starter is gone
/// before the sweep.
pub struct LabelSweep {
    label: String,
}

impl LabelSweep {
    pub fn new(label: String) -> LabelSweep {
        LabelSweep { label }
    }
}

impl Drop for LabelSweep {
    fn drop(&mut self) {
        // Blocking on purpose: this runs while the scenario is being torn
        // down, possibly with no runtime left to await anything. A create the
        // engine was still handling (its client just killed) can land after
        // a pass, so sweep until a pass finds nothing, at least twice.
        let mut removed = 0;
        for pass in 0..5 {
            match sweep_once(&self.label) {
                Ok(0) if pass > 0 => break,
                Ok(n) => removed += n,
                Err(e) => {
                    eprintln!(
                        "warning: removing containers labelled {}: {e:#}",
                        self.label
                    );
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if removed > 0 {
            eprintln!(
                "removed {removed} leftover containers labelled {}",
                self.label
            );
        }
    }
}

fn sweep_once(label: &str) -> Result<usize> {
    let list = blocking_docker(
        &strings(&["ps", "-aq", "--filter", &format!("label={label}")]),
        QUERY_TIMEOUT,
    )?;
    let ids: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let mut args = strings(&["rm", "-f"]);
        args.extend(ids.iter().cloned());
        blocking_docker(&args, CHANGE_TIMEOUT)?;
    }
    Ok(ids.len())
}

/// [`docker`] without a runtime, for `Drop`: polls the child and kills it
/// if it outlives `timeout`.
pub fn blocking_docker(args: &[String], timeout: Duration) -> Result<String> {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running `docker`")?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`docker {}` took over {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("`docker {}` failed ({})", args.join(" "), output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
