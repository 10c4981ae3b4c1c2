//! The process driver against real processes (`sh`, `sleep`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gantry_api::job::{Resources, TaskSpec};

use super::*;
use crate::driver::LogStream;

/// Any wait in these tests; the tasks sleep 30 s, so hitting it means a bug.
const BOUND: Duration = Duration::from_secs(10);

/// Kills the process groups it was given when the test ends, passed or not.
struct Cleanup(Vec<i32>);

impl Cleanup {
    fn track(&mut self, handle: &TaskHandle) {
        self.0.push(handle.id.parse().unwrap());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = signal_group(pid, libc::SIGKILL);
        }
    }
}

fn node(test: &str) -> String {
    format!("test-{test}-{}", std::process::id())
}

fn launch(dir: &Path, task: &str, command: &[&str]) -> TaskLaunch {
    TaskLaunch {
        alloc_id: format!("alloc-{task}"),
        job_id: "job-1".to_string(),
        task: TaskSpec {
            name: task.to_string(),
            driver: Some("process".to_string()),
            image: "ignored".to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("FROM_SPEC".to_string(), "spec".to_string())]),
            resources: Resources {
                cpu_millis: 100,
                memory_mb: 64,
            },
            ports: Vec::new(),
            health: None,
            shutdown_delay: None,
        },
        ports: Vec::new(),
        extra_env: BTreeMap::from([("GANTRY_PORT_HTTP".to_string(), "31000".to_string())]),
        alloc_dir: dir.join("alloc"),
    }
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {BOUND:?}"))
}

/// Everything the logs give without following, per stream.
async fn read_logs(
    driver: &ProcessDriver,
    handle: &TaskHandle,
    tail: Option<usize>,
) -> [String; 2] {
    let mut chunks = driver.logs(handle, false, tail).await.unwrap();
    let mut out = [String::new(), String::new()];
    while let Some(chunk) = bounded("reading logs", chunks.next()).await {
        let (stream, bytes) = chunk.unwrap();
        let i = if stream == LogStream::Stdout { 0 } else { 1 };
        out[i].push_str(std::str::from_utf8(&bytes).unwrap());
    }
    out
}

/// Polls until the task has written `text` to its stdout.
async fn wait_for_output(driver: &ProcessDriver, handle: &TaskHandle, text: &str) {
    bounded("waiting for output", async {
        while !read_logs(driver, handle, None).await[0].contains(text) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn exec(driver: &ProcessDriver, handle: &TaskHandle, command: &[&str]) -> i64 {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    driver.exec(handle, &command, BOUND).await.unwrap()
}

const CHATTY: &[&str] = &["sh", "-c", "echo out; echo err >&2; sleep 30"];

#[tokio::test]
async fn runs_lists_logs_execs_and_stops_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(&node("basics"));
    let mut cleanup = Cleanup(Vec::new());
    assert_eq!(driver.name(), "process");
    assert!(driver.available().await);

    let handle = driver
        .start(&launch(dir.path(), "web", CHATTY))
        .await
        .unwrap();
    cleanup.track(&handle);
    assert_eq!(handle.driver, "process");

    let found = driver.list().await.unwrap();
    assert_eq!(
        found,
        vec![FoundTask {
            handle: handle.clone(),
            alloc_id: "alloc-web".to_string(),
            job_id: "job-1".to_string(),
            task: "web".to_string(),
            running: true,
        }]
    );

    wait_for_output(&driver, &handle, "out").await;
    let [stdout, stderr] = read_logs(&driver, &handle, None).await;
    assert_eq!((stdout.as_str(), stderr.as_str()), ("out\n", "err\n"));
    let [stdout, _] = read_logs(&driver, &handle, Some(1)).await;
    assert_eq!(stdout, "out\n");
    assert!(dir.path().join("alloc/web.stdout").exists());

    assert_eq!(exec(&driver, &handle, &["true"]).await, 0);
    assert_eq!(exec(&driver, &handle, &["sh", "-c", "exit 3"]).await, 3);
    // The task's environment and working directory.
    let check_env = r#"[ "$FROM_SPEC" = spec ] && [ "$GANTRY_PORT_HTTP" = 31000 ] && [ "$GANTRY_TASK" = web ] && [ -f web.stdout ]"#;
    assert_eq!(exec(&driver, &handle, &["sh", "-c", check_env]).await, 0);

    let began = Instant::now();
    bounded("stop", driver.stop(&handle, Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "SIGTERM was enough"
    );
    let exit = bounded("wait", driver.wait(&handle)).await.unwrap();
    assert_eq!(exit.code, None);
    assert_eq!(exit.message, "killed by signal 15");

    // Exited but not removed: listed as not running; stopping again is fine.
    let found = driver.list().await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].running);
    driver.stop(&handle, Duration::from_secs(1)).await.unwrap();
    driver.remove(&handle).await.unwrap();
    driver.remove(&handle).await.unwrap();
    assert!(driver.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn kills_a_task_that_ignores_sigterm_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(&node("stubborn"));
    let mut cleanup = Cleanup(Vec::new());
    let command = &["sh", "-c", "trap '' TERM; echo ready; sleep 30"];
    let handle = driver
        .start(&launch(dir.path(), "stubborn", command))
        .await
        .unwrap();
    cleanup.track(&handle);
    wait_for_output(&driver, &handle, "ready").await;

    let began = Instant::now();
    let grace = Duration::from_millis(500);
    bounded("stop", driver.stop(&handle, grace)).await.unwrap();
    assert!(began.elapsed() >= grace);
    let exit = bounded("wait", driver.wait(&handle)).await.unwrap();
    assert_eq!(exit.message, "killed by signal 9");
}

#[tokio::test]
async fn reports_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(&node("exit-code"));
    let mut cleanup = Cleanup(Vec::new());
    let handle = driver
        .start(&launch(dir.path(), "batch", &["sh", "-c", "exit 3"]))
        .await
        .unwrap();
    cleanup.track(&handle);
    let (first, second) = bounded("wait", async {
        tokio::join!(driver.wait(&handle), driver.wait(&handle))
    })
    .await;
    let expected = Exit {
        code: Some(3),
        message: "exit code 3".to_string(),
    };
    assert_eq!(first.unwrap(), expected);
    assert_eq!(second.unwrap(), expected);
    // And again, once it is known.
    assert_eq!(driver.wait(&handle).await.unwrap(), expected);
}

#[tokio::test]
async fn refuses_an_empty_command_and_a_missing_program() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(&node("bad-command"));
    let err = driver
        .start(&launch(dir.path(), "t", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the process driver needs a command");
    let missing = &["gantry-no-such-program-here"];
    let err = driver
        .start(&launch(dir.path(), "t", missing))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Engine(_)), "{err}");
}

#[tokio::test]
async fn a_restarted_agent_adopts_its_tasks_and_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let name = node("adopt");
    let first = ProcessDriver::new(&name);
    let mut cleanup = Cleanup(Vec::new());
    let handle = first
        .start(&launch(dir.path(), "web", CHATTY))
        .await
        .unwrap();
    cleanup.track(&handle);

    let other = ProcessDriver::new(&node("adopt-other"));
    assert!(other.list().await.unwrap().is_empty());

    let second = ProcessDriver::new(&name);
    let found = second.list().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].handle, handle);
    assert_eq!(found[0].alloc_id, "alloc-web");
    assert_eq!(found[0].job_id, "job-1");
    assert_eq!(found[0].task, "web");
    assert!(found[0].running);

    // The adopted task's logs are found through its working directory.
    wait_for_output(&second, &handle, "out").await;
    assert_eq!(exec(&second, &handle, &["true"]).await, 0);

    let mut follow = second.logs(&handle, true, Some(0)).await.unwrap();
    let waiter = second.wait(&handle);
    let _ = signal_group(handle.id.parse().unwrap(), libc::SIGKILL);
    let exit = bounded("adopted wait", waiter).await.unwrap();
    assert_eq!(exit.code, None);
    assert!(
        exit.message.contains("exit code unknown"),
        "{}",
        exit.message
    );
    // Following ends once the task has exited.
    while bounded("following logs", follow.next()).await.is_some() {}
    assert!(second.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_start_replaces_a_leftover_of_the_same_task() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(&node("replace"));
    let mut cleanup = Cleanup(Vec::new());
    let old = driver
        .start(&launch(dir.path(), "web", CHATTY))
        .await
        .unwrap();
    cleanup.track(&old);
    let new = driver
        .start(&launch(dir.path(), "web", CHATTY))
        .await
        .unwrap();
    cleanup.track(&new);
    assert_ne!(old, new);
    let exit = bounded("wait for the old one", driver.wait(&old))
        .await
        .unwrap();
    assert!(!exit.success());
    let running: Vec<_> = driver
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.running)
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].handle, new);
}
