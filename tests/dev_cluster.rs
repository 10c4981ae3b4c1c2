//! `gantry dev` end to end, with the real Docker engine.
//!
//! What it shows: `gantry dev --port P` prints its API URL (managers on P, P+10, P+20,
//! its agent's endpoint on P+1); the example job deploy/examples/web.yaml submitted as
//! YAML becomes 3 running allocations whose containers answer HTTP on their host ports
//! (the time from submit to running is printed); SIGINT stops the process and removes
//! the dev agent's containers.
//!
//! Skipped (with a message) when no Docker engine answers, except with `CI=true`.
//! Durations are printed; only generous bounds are asserted.

mod support;

use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::agent::{
    alloc_containers, client_for, containers_with_label, describe_allocs, describe_containers,
    host_port, nodes, require_docker, running_container, wait_http_200, wait_job_running, Cleanup,
};
use support::{wait_until, Body, GANTRY};

/// `P` such that P..=P+21 are all free on 127.0.0.1, above the agents' default port
/// range (20000-32000, where the dev agent publishes containers) and below the
/// ephemeral range (32768-).
fn free_dev_port() -> u16 {
    let base = 32010u16;
    let slots = 35u16; // 32010..32710, each 22 wide with room to spare
    let first = (std::process::id() % slots as u32) as u16;
    for i in 0..slots {
        let p = base + ((first + i) % slots) * 20;
        let held: Result<Vec<TcpListener>, _> = (p..=p + 21)
            .map(|q| TcpListener::bind(("127.0.0.1", q)))
            .collect();
        if held.is_ok() {
            return p;
        }
    }
    panic!(
        "no free block of 22 ports between {base} and {}",
        base + slots * 20
    );
}

/// The `gantry dev` process; on drop SIGKILL (and its log tail when the test failed).
struct Dev {
    child: Option<Child>,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dev {
    fn start(port: u16) -> Dev {
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-dev-")
            .tempdir()
            .unwrap();
        let log_path = dir.path().join("dev.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let child = Command::new(GANTRY)
            .args(["dev", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .env("NO_COLOR", "1")
            .spawn()
            .expect("spawn gantry dev");
        Dev {
            child: Some(child),
            log_path,
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "gantry dev exited unexpectedly with {status}\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// SIGINT, then wait (bounded).
    fn interrupt(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gantry dev did not exit within {timeout:?} of SIGINT\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(100);
            eprintln!(
                "----- gantry dev output ({}, last {} lines) -----\n{}\n----- end -----",
                self.log_path.display(),
                lines.len() - start,
                lines[start..].join("\n")
            );
        }
    }
}

fn log(t0: Instant, msg: &str) {
    eprintln!("[harness +{:>7.3}s] {msg}", t0.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_the_example_job_in_docker_and_cleans_up_on_sigint() {
    if !require_docker() {
        return;
    }
    let _serial = support::SERIAL.lock().await;
    let t0 = Instant::now();
    let cleanup = Cleanup::new("dev");
    let port = free_dev_port();
    let mut dev = Dev::start(port);
    let url = format!("http://127.0.0.1:{port}");
    let api_addr = format!("127.0.0.1:{port}");
    log(t0, &format!("gantry dev --port {port}"));

    wait_until(
        "gantry dev to print its API URL",
        Duration::from_secs(60),
        || {
            dev.assert_alive();
            let text = dev.log_text();
            let found = text.contains(&url);
            async move {
                if found {
                    Ok(())
                } else {
                    Err(format!("output so far:\n{text}"))
                }
            }
        },
    )
    .await;
    // What it printed for people (its log lines, which start with a timestamp, aside).
    let printed: String = dev
        .log_text()
        .lines()
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| format!("{l}\n"))
        .collect();
    log(t0, &format!("printed:\n{printed}"));
    assert!(
        printed.contains("web.yaml"),
        "the output should say how to submit deploy/examples/web.yaml"
    );

    let addrs: Vec<String> = [0u16, 10, 20]
        .iter()
        .map(|d| format!("127.0.0.1:{}", port + d))
        .collect();
    let client = client_for(&addrs);
    let node = wait_until(
        "the dev agent's node to be ready",
        Duration::from_secs(60),
        || async {
            let nodes = nodes(&client).await?;
            match nodes.as_slice() {
                [n] if n.status == gantry_api::NodeStatus::Ready => Ok(n.clone()),
                _ => Err(format!("nodes: {nodes:?}")),
            }
        },
    )
    .await;
    cleanup.label(&format!("gantry.node={}", node.name));
    log(
        t0,
        &format!("dev node {} ready, drivers {:?}", node.name, node.drivers),
    );
    dev.assert_alive();
    TcpStream::connect(("127.0.0.1", port + 1))
        .unwrap_or_else(|e| panic!("the dev agent's endpoint on port {}: {e}", port + 1));

    let yaml_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples/web.yaml");
    let yaml = std::fs::read(yaml_path).unwrap();
    let api = support::Api::default();
    let resp = wait_until(
        "POST web.yaml to answer 201",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            let body = Body::Raw {
                content_type: "application/yaml",
                bytes: yaml.clone(),
            };
            let api_addr = api_addr.clone();
            async move {
                let r = api
                    .request(&api_addr, reqwest::Method::POST, "/v1/jobs", Some(body))
                    .await?;
                if r.status == 201 {
                    Ok(r)
                } else if r.status >= 500 {
                    Err(r.describe())
                } else {
                    panic!("POST {yaml_path}: {}", r.describe())
                }
            }
        },
    )
    .await;
    let submitted = Instant::now();
    log(t0, &format!("submitted web.yaml: {}", resp.text.trim()));

    let by_slot = wait_job_running(&client, "web", 3, Duration::from_secs(180), &[]).await;
    log(
        t0,
        &format!(
            "web.yaml: submit → 3 allocations running in {:?}",
            submitted.elapsed()
        ),
    );
    let mut alloc_ids = Vec::new();
    for a in by_slot.values() {
        cleanup.label(&format!("gantry.alloc_id={}", a.id));
        alloc_ids.push(a.id.clone());
        let c = running_container(&a.id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.label("gantry.node"), Some(node.name.as_str()));
        wait_http_200(host_port(a, "http"), Duration::from_secs(30)).await;
        log(
            t0,
            &format!(
                "slot {} {} → {} answers 200 on {}",
                a.slot,
                a.id,
                c.short(),
                host_port(a, "http")
            ),
        );
    }
    log(
        t0,
        &format!(
            "web.yaml: submit → 3 containers answering HTTP in {:?}; {}",
            submitted.elapsed(),
            describe_allocs(&by_slot.values().cloned().collect::<Vec<_>>())
        ),
    );

    dev.assert_alive();
    let t = Instant::now();
    let status = dev.interrupt(Duration::from_secs(90));
    log(
        t0,
        &format!("SIGINT → gantry dev exited in {:?}: {status}", t.elapsed()),
    );
    let left = containers_with_label(&format!("gantry.node={}", node.name)).unwrap();
    let mut of_allocs = Vec::new();
    for id in &alloc_ids {
        of_allocs.extend(alloc_containers(id).unwrap());
    }
    assert!(
        left.is_empty() && of_allocs.is_empty(),
        "containers left after gantry dev exited:\n{}\n{}",
        describe_containers(&left),
        describe_containers(&of_allocs)
    );
    assert!(
        status.success(),
        "gantry dev exit status after SIGINT: {status}"
    );
    // The managers are gone too.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port} after gantry dev exited"
    );
}
