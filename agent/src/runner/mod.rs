//! One allocation's life on this node, owned by one task: start its tasks (or adopt the
//! ones already running after an agent restart), watch them exit, restart them per the
//! job's restart policy, run their health checks, stop them when told, and report every
//! change of state.
//!
//! The reconcile loop gives orders (`Update` with the managers' newest record, `Remove`
//! once the allocation left the node's set); a record may ask for a stop, or for an
//! operator's restart in place (`operator_restart`). The runner reacts to those and to
//! events from its tasks (an exit, a health verdict, a restart delay that ran out).
//! Events carry the generation of the task instance they are about, so a late event of a
//! replaced instance is ignored.

mod launch;
mod operator_restart;
mod policy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gantry_api::job::{JobSpec, TaskSpec};
use gantry_api::session::AllocationReport;
use gantry_api::{Allocation, ClientState, DesiredState, Health};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::driver::{Driver, DriverError, Exit, FoundTask, TaskHandle};
use crate::health::{self, HealthEvent, ProbeTarget};
use crate::reports::Reports;
use crate::task_table::{TaskEntry, TaskTable};
use operator_restart::RestartAsk;
use policy::{after_stop, AfterStop};

pub use launch::task_ports;

/// What every runner shares.
pub struct RunnerContext {
    pub drivers: Vec<Arc<dyn Driver>>,
    pub reports: Reports,
    pub tasks: TaskTable,
    /// Per-allocation working directories live under here.
    pub data_dir: PathBuf,
    pub node_address: String,
    pub stop_grace: Duration,
}

impl RunnerContext {
    fn driver(&self, name: &str) -> Option<Arc<dyn Driver>> {
        self.drivers.iter().find(|d| d.name() == name).cloned()
    }

    fn alloc_dir(&self, alloc_id: &str) -> PathBuf {
        self.data_dir.join("allocs").join(alloc_id)
    }
}

/// Orders from the reconcile loop.
#[derive(Debug)]
pub enum Order {
    /// The managers' newest record of the allocation (desired `stop` stops it).
    Update(Box<Allocation>),
    /// The allocation left the node's set: stop what runs and remove what is left.
    Remove,
}

/// The reconcile loop's side of a runner.
pub struct RunnerHandle {
    orders: mpsc::UnboundedSender<Order>,
    task: JoinHandle<()>,
}

impl RunnerHandle {
    pub fn order(&self, order: Order) {
        let _ = self.orders.send(order);
    }

    /// Tells it to remove everything and waits until it has.
    pub async fn remove(self) {
        let _ = self.orders.send(Order::Remove);
        let _ = self.task.await;
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts a runner for `allocation`. `adopted` are its tasks found in the engine when the
/// agent started; `spec` is `None` when the managers did not send the job version.
pub fn spawn(
    context: Arc<RunnerContext>,
    allocation: Allocation,
    spec: Option<Arc<JobSpec>>,
    adopted: Vec<FoundTask>,
) -> RunnerHandle {
    let (orders, receiver) = mpsc::unbounded_channel();
    let (events, event_receiver) = mpsc::unbounded_channel();
    let runner = Runner {
        restart_count: allocation.restart_count,
        // Requests made before this runner existed are taken as done (see
        // `operator_restart`): after an agent restart the tasks are adopted as they run.
        restarts_acted_on: allocation.restart_requests,
        reported: (
            allocation.client_state,
            allocation.health,
            allocation.restart_count,
            allocation.message.clone(),
        ),
        message: allocation.message.clone(),
        context,
        allocation,
        spec,
        tasks: Vec::new(),
        state: ClientState::Pending,
        events,
    };
    let task = tokio::spawn(runner.run(adopted, receiver, event_receiver));
    RunnerHandle { orders, task }
}

/// Something that happened to one instance of a task.
enum Event {
    Exited {
        task: usize,
        generation: u64,
        outcome: Result<Exit, DriverError>,
    },
    Health {
        task: usize,
        generation: u64,
        event: HealthEvent,
    },
    RestartDue {
        task: usize,
        generation: u64,
    },
}

struct TaskRun {
    spec: TaskSpec,
    driver: Arc<dyn Driver>,
    handle: Option<TaskHandle>,
    /// Bumped whenever the instance is replaced or stopped on purpose.
    generation: u64,
    health: Health,
    /// A batch task that finished successfully.
    done: bool,
    /// An instance is running (started or adopted, and not seen to stop since).
    live: bool,
    /// Its exit watcher and health monitor, ended when the instance is replaced.
    watchers: Vec<JoinHandle<()>>,
}

impl TaskRun {
    fn retire(&mut self) {
        self.generation += 1;
        self.live = false;
        for watcher in self.watchers.drain(..) {
            watcher.abort();
        }
    }
}

struct Runner {
    context: Arc<RunnerContext>,
    allocation: Allocation,
    spec: Option<Arc<JobSpec>>,
    tasks: Vec<TaskRun>,
    restart_count: u32,
    /// The operator's restart requests this runner has carried out (or taken as done).
    restarts_acted_on: u64,
    state: ClientState,
    message: String,
    /// What the managers last heard: (state, health, restarts, message).
    reported: (ClientState, Health, u32, String),
    events: mpsc::UnboundedSender<Event>,
}

impl Runner {
    async fn run(
        mut self,
        adopted: Vec<FoundTask>,
        mut orders: mpsc::UnboundedReceiver<Order>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        if self.allocation.desired == DesiredState::Run {
            self.begin(adopted).await;
        } else {
            self.adopt_to_stop(adopted);
            self.stop_all("stopped").await;
        }
        loop {
            tokio::select! {
                order = orders.recv() => match order {
                    Some(Order::Update(allocation)) => {
                        let stop = allocation.desired == DesiredState::Stop;
                        let restart =
                            operator_restart::requested(self.restarts_acted_on, &allocation);
                        self.restarts_acted_on = allocation.restart_requests;
                        self.allocation = *allocation;
                        if stop {
                            if !self.state.is_terminal() {
                                self.shutdown_delay().await;
                                self.stop_all("stopped").await;
                            }
                        } else if let Some(ask) = restart {
                            self.restart_on_request(ask).await;
                        }
                    }
                    Some(Order::Remove) | None => {
                        self.remove_all().await;
                        return;
                    }
                },
                Some(event) = events.recv() => self.on_event(event).await,
            }
        }
    }

    /// Takes over the tasks found running, starts the others.
    async fn begin(&mut self, adopted: Vec<FoundTask>) {
        let Some(spec) = self.spec.clone() else {
            let message = format!(
                "the managers sent no spec for job {} version {}",
                self.allocation.job_id, self.allocation.job_version
            );
            return self.fail(message).await;
        };
        for task in &spec.tasks {
            let Some(driver) = self.context.driver(task.driver()) else {
                let message = format!(
                    "task {}: the {} driver is not available on this node",
                    task.name,
                    task.driver()
                );
                return self.fail(message).await;
            };
            self.tasks.push(TaskRun {
                spec: task.clone(),
                driver,
                handle: None,
                generation: 0,
                health: Health::Unknown,
                done: false,
                live: false,
                watchers: Vec::new(),
            });
        }
        for i in 0..self.tasks.len() {
            let found = adopted.iter().find(|f| f.task == self.tasks[i].spec.name);
            match found {
                Some(found) => {
                    tracing::info!(alloc = %self.allocation.id, task = %found.task,
                        id = %found.handle.id, running = found.running, "adopted");
                    self.tasks[i].health = self.allocation.health;
                    self.watch(i, found.handle.clone());
                }
                None => {
                    if !self.start_task(i).await {
                        return;
                    }
                }
            }
        }
        self.mark_running_if_all_are();
    }

    /// Running once every task has a live instance (or, for batch, is done).
    fn mark_running_if_all_are(&mut self) {
        if self.state.is_terminal() || !self.tasks.iter().all(|t| t.live || t.done) {
            return;
        }
        self.state = ClientState::Running;
        self.report();
    }

    /// The allocation must stop: still, take over what runs so it can be stopped.
    fn adopt_to_stop(&mut self, adopted: Vec<FoundTask>) {
        for found in adopted {
            let Some(driver) = self.context.driver(found.handle.driver) else {
                continue;
            };
            self.tasks.push(TaskRun {
                spec: placeholder_spec(&found.task),
                driver,
                handle: Some(found.handle),
                generation: 0,
                health: Health::Unknown,
                done: false,
                live: false,
                watchers: Vec::new(),
            });
        }
    }

    /// Starts task `i` (replacing any leftover); false if that failed the allocation.
    async fn start_task(&mut self, i: usize) -> bool {
        if self.state != ClientState::Starting {
            self.state = ClientState::Starting;
            self.report();
        }
        let alloc_dir = self.context.alloc_dir(&self.allocation.id);
        let launch = launch::task_launch(
            &self.allocation,
            &self.tasks[i].spec,
            &self.context.node_address,
            &alloc_dir,
        );
        let driver = self.tasks[i].driver.clone();
        match driver.start(&launch).await {
            Ok(handle) => {
                tracing::info!(alloc = %self.allocation.id, task = %launch.task.name,
                    id = %handle.id, "task started");
                self.tasks[i].health = Health::Unknown;
                self.watch(i, handle);
                true
            }
            Err(e @ DriverError::ImageMissing { .. }) => {
                let message = format!("task {}: {e}", launch.task.name);
                self.fail(message).await;
                false
            }
            Err(e) => {
                let reason = format!("cannot start: {e}");
                self.task_stopped(i, false, reason).await;
                !self.state.is_terminal()
            }
        }
    }

    /// Watches a new instance of task `i`: its exit, and its health check if it has one.
    fn watch(&mut self, i: usize, handle: TaskHandle) {
        let run = &mut self.tasks[i];
        run.retire();
        run.live = true;
        let generation = run.generation;
        run.handle = Some(handle.clone());
        self.context.tasks.set(
            &self.allocation.id,
            TaskEntry {
                task: run.spec.name.clone(),
                driver: run.driver.clone(),
                handle: handle.clone(),
            },
        );

        let driver = run.driver.clone();
        let events = self.events.clone();
        let waited = handle.clone();
        run.watchers.push(tokio::spawn(async move {
            let outcome = driver.wait(&waited).await;
            let _ = events.send(Event::Exited {
                task: i,
                generation,
                outcome,
            });
        }));

        if let Some(check) = run.spec.health.clone() {
            let target = ProbeTarget {
                host: std::net::IpAddr::from([127, 0, 0, 1]),
                ports: task_ports(&self.allocation, &run.spec.name),
                driver: run.driver.clone(),
                handle,
            };
            let mut verdicts = health::monitor(check, target);
            let events = self.events.clone();
            run.watchers.push(tokio::spawn(async move {
                while let Some(event) = verdicts.recv().await {
                    let event = Event::Health {
                        task: i,
                        generation,
                        event,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            }));
        }
    }

    async fn on_event(&mut self, event: Event) {
        if self.state.is_terminal() {
            return;
        }
        match event {
            Event::Exited {
                task,
                generation,
                outcome,
            } if generation == self.tasks[task].generation => {
                self.tasks[task].retire();
                let (succeeded, reason) = match outcome {
                    Ok(exit) => (exit.success(), format!("exited: {}", exit.message)),
                    Err(e) => (false, format!("lost: {e}")),
                };
                self.task_stopped(task, succeeded, reason).await;
            }
            Event::Health {
                task,
                generation,
                event,
            } if generation == self.tasks[task].generation => match event {
                HealthEvent::Healthy => {
                    self.tasks[task].health = Health::Healthy;
                    self.report();
                }
                HealthEvent::Unhealthy { message } => {
                    self.tasks[task].health = Health::Unhealthy;
                    self.report();
                    self.tasks[task].retire();
                    if let Some(handle) = self.tasks[task].handle.clone() {
                        let driver = self.tasks[task].driver.clone();
                        let _ = driver.stop(&handle, self.context.stop_grace).await;
                    }
                    let reason = format!("health check failed: {message}");
                    self.task_stopped(task, false, reason).await;
                }
            },
            Event::RestartDue { task, generation }
                if generation == self.tasks[task].generation && self.start_task(task).await =>
            {
                self.mark_running_if_all_are();
            }
            _ => {} // about an instance that was replaced meanwhile
        }
    }

    /// Task `i` stopped on its own (or was stopped for failing its check): apply the
    /// restart policy.
    async fn task_stopped(&mut self, i: usize, succeeded: bool, reason: String) {
        let spec = self.spec.clone().expect("running tasks have a spec");
        let policy = spec.restart.unwrap_or_default();
        let name = self.tasks[i].spec.name.clone();
        tracing::info!(alloc = %self.allocation.id, task = %name, %reason, "task stopped");
        match after_stop(spec.kind, succeeded, self.restart_count, &policy) {
            AfterStop::Done => {
                self.tasks[i].done = true;
                if self.tasks.iter().all(|t| t.done) {
                    self.state = ClientState::Complete;
                    self.message = "completed".to_string();
                    self.report();
                }
            }
            AfterStop::Restart { delay, attempt } => {
                self.restart_count = attempt;
                self.message = format!(
                    "task {name} {reason}; restart {attempt} of {} in {}",
                    policy.attempts, policy.delay
                );
                self.state = ClientState::Starting;
                self.report();
                let generation = self.tasks[i].generation;
                let events = self.events.clone();
                self.tasks[i].watchers.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = events.send(Event::RestartDue {
                        task: i,
                        generation,
                    });
                }));
            }
            AfterStop::Fail => {
                let message = format!(
                    "task {name} {reason}; no restarts left ({} allowed)",
                    policy.attempts
                );
                self.fail(message).await;
            }
        }
    }

    /// An operator asked for a restart in place: stop the tasks (with the grace period),
    /// start them again under the same allocation. The restart policy's count is left
    /// alone; a task that fails to start again goes through the policy as usual.
    async fn restart_on_request(&mut self, ask: RestartAsk) {
        if self.state.is_terminal() || self.tasks.is_empty() {
            tracing::info!(alloc = %self.allocation.id, state = ?self.state,
                "restart requested, but nothing runs: ignored");
            return;
        }
        let (targets, what): (Vec<usize>, String) = match &ask {
            RestartAsk::All => (
                (0..self.tasks.len())
                    .filter(|&i| !self.tasks[i].done)
                    .collect(),
                "all tasks".to_string(),
            ),
            RestartAsk::Task(name) => match self.tasks.iter().position(|t| &t.spec.name == name) {
                Some(i) => (vec![i], format!("task {name}")),
                None => {
                    tracing::warn!(alloc = %self.allocation.id, task = %name,
                        "restart requested for a task this allocation does not have");
                    self.message = format!("restart requested for unknown task {name}: ignored");
                    self.report();
                    return;
                }
            },
        };
        tracing::info!(alloc = %self.allocation.id, %what, "restarting on an operator's request");
        let grace = self.context.stop_grace;
        let mut stops = Vec::new();
        for &i in &targets {
            let run = &mut self.tasks[i];
            run.retire();
            run.done = false;
            if let Some(handle) = run.handle.take() {
                let driver = run.driver.clone();
                stops.push(async move {
                    if let Err(e) = driver.stop(&handle, grace).await {
                        tracing::warn!(id = %handle.id, error = %e, "cannot stop a task to restart it");
                    }
                    if let Err(e) = driver.remove(&handle).await {
                        tracing::warn!(id = %handle.id, error = %e, "cannot remove a task to restart it");
                    }
                });
            }
        }
        futures::future::join_all(stops).await;
        self.message = format!("{what} restarted by an operator");
        for i in targets {
            if !self.start_task(i).await {
                return;
            }
        }
        self.mark_running_if_all_are();
    }

    /// The allocation failed: stop whatever still runs and say why.
    async fn fail(&mut self, message: String) {
        tracing::warn!(alloc = %self.allocation.id, %message, "allocation failed");
        self.stop_tasks().await;
        self.state = ClientState::Failed;
        self.message = message;
        self.report();
    }

    /// Waits the longest `shutdown_delay` of the tasks before a stop the managers asked
    /// for: the allocation left its services when they decided, and clients that looked
    /// it up just before are still answered meanwhile.
    async fn shutdown_delay(&self) {
        if self.state != ClientState::Running {
            return;
        }
        let delay = self
            .tasks
            .iter()
            .filter_map(|t| t.spec.shutdown_delay)
            .map(|d| d.as_duration())
            .max();
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            tracing::info!(alloc = %self.allocation.id, ?delay, "waiting the shutdown delay");
            tokio::time::sleep(delay).await;
        }
    }

    /// The managers want it stopped: stop every task gracefully and report it complete.
    async fn stop_all(&mut self, message: &str) {
        self.stop_tasks().await;
        self.state = ClientState::Complete;
        self.message = message.to_string();
        self.report();
    }

    async fn stop_tasks(&mut self) {
        let grace = self.context.stop_grace;
        let mut stops = Vec::new();
        for run in &mut self.tasks {
            run.retire();
            if let Some(handle) = run.handle.clone() {
                let driver = run.driver.clone();
                stops.push(async move {
                    if let Err(e) = driver.stop(&handle, grace).await {
                        tracing::warn!(id = %handle.id, error = %e, "cannot stop a task");
                    }
                });
            }
        }
        futures::future::join_all(stops).await;
    }

    /// Stops and removes everything of the allocation, its directory included.
    async fn remove_all(&mut self) {
        self.stop_tasks().await;
        for run in &mut self.tasks {
            if let Some(handle) = run.handle.take() {
                if let Err(e) = run.driver.remove(&handle).await {
                    tracing::warn!(id = %handle.id, error = %e, "cannot remove a task");
                }
            }
        }
        self.context.tasks.remove_allocation(&self.allocation.id);
        let dir = self.context.alloc_dir(&self.allocation.id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an allocation dir");
            }
        }
        tracing::info!(alloc = %self.allocation.id, "removed");
    }

    /// All tasks' health as one: healthy when every checked task is (or none has a check).
    fn health(&self) -> Health {
        if self.state != ClientState::Running {
            return Health::Unknown;
        }
        let checked: Vec<Health> = self
            .tasks
            .iter()
            .filter(|t| t.spec.health.is_some())
            .map(|t| t.health)
            .collect();
        if checked.contains(&Health::Unhealthy) {
            Health::Unhealthy
        } else if checked.iter().all(|h| *h == Health::Healthy) {
            Health::Healthy
        } else {
            Health::Unknown
        }
    }

    /// Records a report if the state, health, restarts or message changed since the last
    /// one. The message says what happened last (a restart's reason, why it failed) and
    /// stays until something else happens.
    fn report(&mut self) {
        let health = if self.state == ClientState::Running {
            self.health()
        } else if self.tasks.iter().any(|t| t.health == Health::Unhealthy) {
            Health::Unhealthy
        } else {
            Health::Unknown
        };
        let now = (self.state, health, self.restart_count, self.message.clone());
        if now == self.reported {
            return;
        }
        self.reported = now;
        self.context.reports.record(AllocationReport {
            id: self.allocation.id.clone(),
            client_state: self.state,
            health,
            restart_count: self.restart_count,
            message: self.message.clone(),
        });
    }
}

/// A task adopted only to be stopped needs no more than its name.
fn placeholder_spec(name: &str) -> TaskSpec {
    TaskSpec {
        name: name.to_string(),
        driver: None,
        image: String::new(),
        command: Vec::new(),
        env: Default::default(),
        resources: gantry_api::job::Resources {
            cpu_millis: 0,
            memory_mb: 0,
        },
        ports: Vec::new(),
        health: None,
        shutdown_delay: None,
    }
}
