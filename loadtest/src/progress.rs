//! A once-a-second progress line on stderr while a scenario runs.
//!
//! Why it exists: a run lasts from seconds to minutes against processes that
//! may misbehave; a person watching should see at once whether writes are
//! flowing (acks so far, rate over the last second, errors) and what the
//! scenario is doing (`phase`). The report itself goes to stdout, so the
//! progress never mixes into a redirected report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Counters the client tasks bump; the only state they share.
#[derive(Default)]
pub struct Counters {
    pub acks: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn ack(&self) {
        self.acks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// The printing task; stops when dropped.
pub struct Progress {
    task: JoinHandle<()>,
    phase: Arc<Mutex<String>>,
}

impl Progress {
    pub fn start(label: String, counters: Arc<Counters>) -> Progress {
        let phase = Arc::new(Mutex::new(String::new()));
        let shown = phase.clone();
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let acks = counters.acks.load(Ordering::Relaxed);
                let errors = counters.errors.load(Ordering::Relaxed);
                let phase = shown.lock().unwrap().clone();
                eprintln!(
                    "[{label}] {:>5.1}s  acks {acks:>8}  rate {:>7}/s  errors {errors:>6}  {phase}",
                    t0.elapsed().as_secs_f64(),
                    acks - last,
                );
                last = acks;
            }
        });
        Progress { task, phase }
    }

    /// What the scenario is doing now, shown at the end of the line.
    pub fn phase(&self, text: impl Into<String>) {
        *self.phase.lock().unwrap() = text.into();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
