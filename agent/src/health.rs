//! Health checks: is a running task actually doing its job?
//!
//! A task that runs is not necessarily a task that serves. The job spec may give each
//! task a check (`http`, `tcp` or `exec`); the allocation's runner starts a [`monitor`]
//! next to the task and reads its [`HealthEvent`]s: `Healthy` is reported to the managers
//! (rolling updates wait for it), `Unhealthy` makes the runner restart the task per the
//! job's restart policy. A single [`probe`] is one attempt, bounded by the check's
//! timeout, whose error says what failed.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gantry_api::job::{HealthCheck, HealthCheckKind};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::driver::{Driver, LaunchPort, TaskHandle};

/// Events buffered between the monitor and its reader; the monitor waits when it is full.
const EVENT_BUFFER: usize = 8;

/// What a check probes: the task, and where its published ports are.
#[derive(Clone)]
pub struct ProbeTarget {
    /// The address the task's host ports are reachable at (usually loopback).
    pub host: IpAddr,
    /// The task's named ports; `http` and `tcp` checks name one of them.
    pub ports: Vec<LaunchPort>,
    /// Runs `exec` checks inside the task.
    pub driver: Arc<dyn Driver>,
    pub handle: TaskHandle,
}

/// A change in a task's health, as seen by its monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// The first successful probe, or the first one after being reported unhealthy.
    Healthy,
    /// `threshold` consecutive probes failed; `message` is the last failure.
    Unhealthy { message: String },
}

/// Runs the check once; `Err` says what failed. Never takes longer than `check.timeout`.
pub async fn probe(check: &HealthCheck, target: &ProbeTarget) -> Result<(), String> {
    let timeout = check.timeout.as_duration();
    match tokio::time::timeout(timeout, probe_unbounded(check, target, timeout)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timed out after {}", check.timeout)),
    }
}

async fn probe_unbounded(
    check: &HealthCheck,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), String> {
    match check.kind {
        HealthCheckKind::Http => {
            let addr = port_addr(check, target)?;
            probe_http(addr, check.path.as_deref()).await
        }
        HealthCheckKind::Tcp => probe_tcp(port_addr(check, target)?).await,
        HealthCheckKind::Exec => probe_exec(&check.command, target, timeout).await,
    }
}

/// `host:host_port` of the port the check names.
fn port_addr(check: &HealthCheck, target: &ProbeTarget) -> Result<SocketAddr, String> {
    let name = check
        .port
        .as_deref()
        .ok_or_else(|| "the check names no port".to_string())?;
    let port = target
        .ports
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("the task has no port named `{name}`"))?;
    Ok(SocketAddr::new(target.host, port.host_port))
}

/// One client for every HTTP probe. No pooled connections: each probe opens its own, so
/// a server that stopped accepting new connections is seen as unhealthy.
fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gantry-health/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the health-check HTTP client builds")
    })
}

async fn probe_http(addr: SocketAddr, path: Option<&str>) -> Result<(), String> {
    let url = http_url(addr, path.unwrap_or("/"));
    let response = http_client()
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {}", describe_reqwest(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("GET {url} answered {}", status.as_u16()))
    }
}

fn http_url(addr: SocketAddr, path: &str) -> String {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{path}")
}

async fn probe_tcp(addr: SocketAddr) -> Result<(), String> {
    tokio::net::TcpStream::connect(addr)
        .await
        .map(drop)
        .map_err(|e| format!("TCP connect to {addr}: {}", describe_io(&e)))
}

async fn probe_exec(
    command: &[String],
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), String> {
    if command.is_empty() {
        return Err("the exec check has no command".to_string());
    }
    match target.driver.exec(&target.handle, command, timeout).await {
        Ok(0) => Ok(()),
        Ok(code) => Err(format!("exit code {code}")),
        Err(e) => Err(format!("exec failed: {e}")),
    }
}

/// The usual short words for the failures that matter in a health check.
fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => error.to_string(),
    }
}

/// reqwest's own message rarely says what happened; the I/O error under it does.
fn describe_reqwest(error: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            return describe_io(io_error);
        }
        source = cause.source();
    }
    error.to_string()
}

/// Probes the task every `check.interval` until the receiver is dropped, sending a
/// [`HealthEvent`] whenever the task's health changes (see [`HealthTracker`]).
pub fn monitor(check: HealthCheck, target: ProbeTarget) -> mpsc::Receiver<HealthEvent> {
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(async move {
        tokio::select! {
            _ = run_monitor(&check, &target, &events) => {}
            _ = events.closed() => {}
        }
        tracing::debug!(task = %target.handle.id, "health monitor stopped");
    });
    receiver
}

async fn run_monitor(
    check: &HealthCheck,
    target: &ProbeTarget,
    events: &mpsc::Sender<HealthEvent>,
) {
    let started = Instant::now();
    let grace = check
        .grace
        .map_or(Duration::ZERO, |grace| grace.as_duration());
    let mut tracker = HealthTracker::new(check.threshold);
    let mut ticks =
        tokio::time::interval(check.interval.as_duration().max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A probe started within the grace period is part of it, however long it takes.
        let in_grace = started.elapsed() < grace;
        let outcome = probe(check, target).await;
        if let Err(message) = &outcome {
            tracing::debug!(task = %target.handle.id, in_grace, %message, "health probe failed");
        }
        if let Some(event) = tracker.record(outcome, in_grace) {
            tracing::info!(task = %target.handle.id, ?event, "task health changed");
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// What was last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Healthy,
    Unhealthy,
}

/// Turns a sequence of probe outcomes into health changes: `Healthy` on a success unless
/// that was already the last word, `Unhealthy` once `threshold` consecutive failures
/// (outside the grace period) are reached, unless that was already the last word.
#[derive(Debug)]
struct HealthTracker {
    threshold: u32,
    consecutive_failures: u32,
    reported: Option<Reported>,
}

impl HealthTracker {
    fn new(threshold: u32) -> Self {
        HealthTracker {
            threshold: threshold.max(1),
            consecutive_failures: 0,
            reported: None,
        }
    }

    fn record(&mut self, outcome: Result<(), String>, in_grace: bool) -> Option<HealthEvent> {
        match outcome {
            Ok(()) => {
                self.consecutive_failures = 0;
                self.report(Reported::Healthy)
                    .then_some(HealthEvent::Healthy)
            }
            Err(_) if in_grace => None,
            Err(message) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let reached = self.consecutive_failures >= self.threshold;
                (reached && self.report(Reported::Unhealthy))
                    .then_some(HealthEvent::Unhealthy { message })
            }
        }
    }

    /// Records `state` as the last word; false when it already was.
    fn report(&mut self, state: Reported) -> bool {
        let changed = self.reported != Some(state);
        self.reported = Some(state);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{DriverError, Exit, FoundTask, LogChunks, TaskLaunch};
    use gantry_api::job::GDuration;
    use std::collections::VecDeque;
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Every wait in these tests is bounded by this (in real or paused time).
    const BOUND: Duration = Duration::from_secs(10);

    /// A driver that only runs exec checks, answering from a script (then repeating the
    /// script's last answer), and counts the calls.
    struct FakeExecDriver {
        script: Mutex<VecDeque<i64>>,
        last: Mutex<i64>,
        /// Instead of the script: fail every call with the call's number as exit code.
        count_failures: bool,
        calls: AtomicUsize,
        call_times: Mutex<Vec<Instant>>,
    }

    impl FakeExecDriver {
        fn new(script: &[i64]) -> Arc<Self> {
            Arc::new(FakeExecDriver {
                script: Mutex::new(script.iter().copied().collect()),
                last: Mutex::new(0),
                count_failures: false,
                calls: AtomicUsize::new(0),
                call_times: Mutex::new(vec![]),
            })
        }

        fn counting_failures() -> Arc<Self> {
            Arc::new(FakeExecDriver {
                script: Mutex::new(VecDeque::new()),
                last: Mutex::new(0),
                count_failures: true,
                calls: AtomicUsize::new(0),
                call_times: Mutex::new(vec![]),
            })
        }
    }

    #[async_trait::async_trait]
    impl Driver for FakeExecDriver {
        fn name(&self) -> &'static str {
            "fake"
        }
        async fn available(&self) -> bool {
            true
        }
        async fn start(&self, _: &TaskLaunch) -> Result<TaskHandle, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
        async fn wait(&self, _: &TaskHandle) -> Result<Exit, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
        async fn stop(&self, _: &TaskHandle, _: Duration) -> Result<(), DriverError> {
            Ok(())
        }
        async fn remove(&self, _: &TaskHandle) -> Result<(), DriverError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<FoundTask>, DriverError> {
            Ok(vec![])
        }
        async fn exec(
            &self,
            _: &TaskHandle,
            _: &[String],
            _: Duration,
        ) -> Result<i64, DriverError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.call_times.lock().unwrap().push(Instant::now());
            if self.count_failures {
                return Ok(call as i64);
            }
            let mut last = self.last.lock().unwrap();
            if let Some(next) = self.script.lock().unwrap().pop_front() {
                *last = next;
            }
            Ok(*last)
        }
        async fn logs(
            &self,
            _: &TaskHandle,
            _: bool,
            _: Option<usize>,
        ) -> Result<LogChunks, DriverError> {
            Err(DriverError::Engine("not in this fake".into()))
        }
    }

    fn check(kind: HealthCheckKind) -> HealthCheck {
        HealthCheck {
            kind,
            port: Some("web".into()),
            path: None,
            command: vec!["true".into()],
            interval: GDuration::from_millis(20),
            timeout: GDuration::from_secs(2),
            grace: None,
            threshold: 2,
        }
    }

    fn target(host_port: u16, driver: Arc<dyn Driver>) -> ProbeTarget {
        ProbeTarget {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: vec![LaunchPort {
                name: "web".into(),
                container_port: 8080,
                host_port,
            }],
            driver,
            handle: TaskHandle {
                driver: "fake",
                id: "task-1".into(),
            },
        }
    }

    fn no_driver() -> Arc<dyn Driver> {
        FakeExecDriver::new(&[])
    }

    /// A port nothing listens on (bound, then released).
    async fn closed_port() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A small HTTP server answering `/healthz` with 200 while `healthy` is set, else 500.
    async fn http_server(healthy: Arc<AtomicBool>) -> u16 {
        use axum::http::StatusCode;
        let app = axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || {
                let healthy = healthy.clone();
                async move {
                    if healthy.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    async fn next_event(events: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
        tokio::time::timeout(BOUND, events.recv())
            .await
            .expect("a health event in time")
            .expect("the monitor is running")
    }

    #[tokio::test]
    async fn http_probe_is_healthy_on_2xx_and_names_the_status_otherwise() {
        let healthy = Arc::new(AtomicBool::new(true));
        let port = http_server(healthy.clone()).await;
        let mut http = check(HealthCheckKind::Http);
        http.path = Some("/healthz".into());
        let target = target(port, no_driver());

        assert_eq!(probe(&http, &target).await, Ok(()));
        healthy.store(false, Ordering::SeqCst);
        assert_eq!(
            probe(&http, &target).await,
            Err(format!("GET http://127.0.0.1:{port}/healthz answered 500"))
        );
        http.path = Some("missing".into());
        assert_eq!(
            probe(&http, &target).await,
            Err(format!("GET http://127.0.0.1:{port}/missing answered 404"))
        );
    }

    #[tokio::test]
    async fn http_probe_reports_a_refused_connection() {
        let port = closed_port().await;
        let error = probe(&check(HealthCheckKind::Http), &target(port, no_driver()))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            format!("GET http://127.0.0.1:{port}/ failed: connection refused")
        );
    }

    #[tokio::test]
    async fn http_probe_times_out_on_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and holds connections without ever answering.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let mut http = check(HealthCheckKind::Http);
        http.timeout = GDuration::from_millis(100);
        let outcome = tokio::time::timeout(BOUND, probe(&http, &target(port, no_driver())))
            .await
            .expect("the probe is bounded by its own timeout");
        assert_eq!(outcome, Err("timed out after 100ms".to_string()));
        silent.abort();
    }

    #[tokio::test]
    async fn tcp_probe_accepts_a_listener_and_reports_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let tcp = check(HealthCheckKind::Tcp);
        assert_eq!(probe(&tcp, &target(open, no_driver())).await, Ok(()));

        let closed = closed_port().await;
        assert_eq!(
            probe(&tcp, &target(closed, no_driver())).await,
            Err(format!(
                "TCP connect to 127.0.0.1:{closed}: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn probes_naming_an_unknown_port_say_so() {
        let mut tcp = check(HealthCheckKind::Tcp);
        tcp.port = Some("admin".into());
        assert_eq!(
            probe(&tcp, &target(1, no_driver())).await,
            Err("the task has no port named `admin`".to_string())
        );
        tcp.port = None;
        assert_eq!(
            probe(&tcp, &target(1, no_driver())).await,
            Err("the check names no port".to_string())
        );
    }

    #[tokio::test]
    async fn exec_probe_passes_on_exit_zero_only() {
        let driver = FakeExecDriver::new(&[0, 1]);
        let exec = check(HealthCheckKind::Exec);
        let target = target(1, driver);
        assert_eq!(probe(&exec, &target).await, Ok(()));
        assert_eq!(probe(&exec, &target).await, Err("exit code 1".to_string()));
    }

    #[test]
    fn tracker_reports_changes_only() {
        let mut tracker = HealthTracker::new(2);
        let fail = |m: &str| Err(m.to_string());
        assert_eq!(tracker.record(Ok(()), false), Some(HealthEvent::Healthy));
        assert_eq!(tracker.record(Ok(()), false), None);
        assert_eq!(tracker.record(fail("a"), false), None);
        assert_eq!(
            tracker.record(Ok(()), false),
            None,
            "one failure is not a streak"
        );
        assert_eq!(tracker.record(fail("b"), false), None);
        assert_eq!(
            tracker.record(fail("c"), false),
            Some(HealthEvent::Unhealthy {
                message: "c".into()
            })
        );
        assert_eq!(
            tracker.record(fail("d"), false),
            None,
            "unhealthy is sent once"
        );
        assert_eq!(tracker.record(Ok(()), false), Some(HealthEvent::Healthy));
    }

    #[test]
    fn tracker_ignores_failures_in_grace_and_treats_threshold_zero_as_one() {
        let mut tracker = HealthTracker::new(0);
        assert_eq!(tracker.record(Err("early".into()), true), None);
        assert_eq!(tracker.record(Err("early".into()), true), None);
        assert_eq!(
            tracker.record(Err("late".into()), false),
            Some(HealthEvent::Unhealthy {
                message: "late".into()
            })
        );
    }

    #[tokio::test]
    async fn monitor_follows_an_http_server_going_bad_and_recovering() {
        let healthy = Arc::new(AtomicBool::new(true));
        let port = http_server(healthy.clone()).await;
        let mut http = check(HealthCheckKind::Http);
        http.path = Some("/healthz".into());
        let mut events = monitor(http, target(port, no_driver()));

        assert_eq!(next_event(&mut events).await, HealthEvent::Healthy);
        healthy.store(false, Ordering::SeqCst);
        assert_eq!(
            next_event(&mut events).await,
            HealthEvent::Unhealthy {
                message: format!("GET http://127.0.0.1:{port}/healthz answered 500")
            }
        );
        healthy.store(true, Ordering::SeqCst);
        assert_eq!(next_event(&mut events).await, HealthEvent::Healthy);
    }

    #[tokio::test]
    async fn monitor_reports_a_closed_tcp_port_unhealthy() {
        let port = closed_port().await;
        let mut events = monitor(check(HealthCheckKind::Tcp), target(port, no_driver()));
        assert_eq!(
            next_event(&mut events).await,
            HealthEvent::Unhealthy {
                message: format!("TCP connect to 127.0.0.1:{port}: connection refused")
            }
        );
    }

    #[tokio::test]
    async fn monitor_counts_consecutive_exec_failures_up_to_the_threshold() {
        // Each failing exit code is distinct, so the message says which probe it was.
        let driver = FakeExecDriver::new(&[0, 1, 0, 2, 3, 4, 5, 0]);
        let mut exec = check(HealthCheckKind::Exec);
        exec.interval = GDuration::from_millis(10);
        exec.threshold = 3;
        let mut events = monitor(exec, target(1, driver.clone()));

        assert_eq!(next_event(&mut events).await, HealthEvent::Healthy);
        // 1 is a lone failure; 2, 3, 4 are three in a row; 5 changes nothing.
        assert_eq!(
            next_event(&mut events).await,
            HealthEvent::Unhealthy {
                message: "exit code 4".into()
            }
        );
        assert_eq!(next_event(&mut events).await, HealthEvent::Healthy);
        assert!(driver.calls.load(Ordering::SeqCst) >= 8);
    }

    #[tokio::test]
    async fn monitor_ignores_failures_during_grace() {
        let grace = Duration::from_secs(1);
        let started = Instant::now();
        let driver = FakeExecDriver::counting_failures();
        let mut exec = check(HealthCheckKind::Exec);
        exec.interval = GDuration::from_millis(50);
        exec.grace = Some(grace.into());
        exec.threshold = 2;
        let mut events = monitor(exec, target(1, driver.clone()));

        let HealthEvent::Unhealthy { message } = next_event(&mut events).await else {
            panic!("expected unhealthy");
        };
        let last: usize = message.strip_prefix("exit code ").unwrap().parse().unwrap();
        let times = driver.call_times.lock().unwrap().clone();
        // The first probe starts at once, within the grace period, and is not counted;
        // the two counted ones started (so were called) after it.
        assert!(last >= 3, "{message}");
        for call in [last - 1, last] {
            assert!(
                times[call - 1] - started >= grace,
                "probe {call} counted in grace"
            );
        }
    }

    #[tokio::test]
    async fn monitor_stops_when_the_receiver_is_dropped() {
        let driver = FakeExecDriver::new(&[0]);
        let mut exec = check(HealthCheckKind::Exec);
        exec.interval = GDuration::from_millis(5);
        let mut events = monitor(exec, target(1, driver.clone()));
        assert_eq!(next_event(&mut events).await, HealthEvent::Healthy);
        drop(events);

        // The monitor runs on this (single-threaded) runtime: any sleep lets it see the
        // receiver is gone; a longer one would let it probe again if it had not stopped.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let calls = driver.calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(driver.calls.load(Ordering::SeqCst), calls);
    }
}
