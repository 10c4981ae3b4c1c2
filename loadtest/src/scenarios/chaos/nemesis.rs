//! The nemesis: one fault at a time against the managers, applied, held for
//! a while, then healed, every few seconds.
//!
//! Why it exists: Raft's promises only mean something under the faults they
//! are about — a crash without a flush (SIGKILL), a process that stops
//! answering and comes back believing it still leads (SIGSTOP longer than an
//! election timeout, then SIGCONT), a manager cut off from its peers while
//! clients still reach it (an iptables partition, see `isolation.rs`), and a
//! whole-cluster restart. Only one manager is faulted at a time (or all
//! restart at once), so a majority can always make progress once the fault
//! heals.
//!
//! Every apply and heal is logged with the run's elapsed time and the wall
//! clock (to match the managers' logs). Whatever way the run ends, no
//! manager is left stopped ([`Paused`] sends SIGCONT on drop) and no rule is
//! left installed (`Isolation`'s drop).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::Serialize;

use crate::progress::Progress;
use crate::system::System;

use super::isolation::Isolation;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    Kill,
    Pause,
    Partition,
    RestartAll,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::RestartAll => "restart-all",
        }
    }
}

/// One line of the fault log.
#[derive(Clone, Debug, Serialize)]
pub struct FaultEvent {
    /// Seconds since the workload started (the history's clock).
    pub at_s: f64,
    pub wall: String,
    pub fault: Fault,
    /// 1-based manager id; None for restart-all.
    pub manager: Option<usize>,
    /// `apply`, `heal` or `skip`.
    pub phase: &'static str,
    pub detail: String,
}

pub struct Nemesis {
    rng: Rng,
    interval: Duration,
    t0: Instant,
    pub events: Vec<FaultEvent>,
    /// Faults applied (not skipped), by kind.
    pub applied: BTreeMap<Fault, usize>,
}

/// A manager under SIGSTOP; SIGCONT when dropped, whatever happens meanwhile.
struct Paused<'a> {
    sys: &'a mut System,
    manager: usize,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.sys.signal(self.manager, libc::SIGCONT) {
            eprintln!("[chaos] WARNING: SIGCONT: {e:#}");
        }
    }
}

impl Nemesis {
    pub fn new(seed: u64, interval: Duration, t0: Instant) -> Nemesis {
        Nemesis {
            rng: Rng::fork(seed, 1),
            interval,
            t0,
            events: Vec::new(),
            applied: BTreeMap::new(),
        }
    }

    /// Apply faults until `end`: a steady spell of 0.5–1.0 × the interval,
    /// then one fault, held 1–4 s, healed. Fails if a manager exits on its
    /// own.
    pub async fn run_until(
        &mut self,
        sys: &mut System,
        isolation: &mut Isolation,
        end: Instant,
        progress: &Progress,
    ) -> Result<()> {
        let ms = self.interval.as_millis() as u64;
        loop {
            let steady = self.rng.millis(ms / 2, ms.max(2));
            progress.phase("steady");
            watchful_sleep(
                sys,
                steady.min(end.saturating_duration_since(Instant::now())),
            )
            .await?;
            if Instant::now() + Duration::from_secs(1) >= end {
                return Ok(());
            }
            let fault = self.pick();
            progress.phase(format!("fault: {}", fault.name()));
            self.apply(fault, sys, isolation).await?;
        }
    }

    fn pick(&mut self) -> Fault {
        match self.rng.below(100) {
            0..=29 => Fault::Kill,
            30..=54 => Fault::Pause,
            55..=84 => Fault::Partition,
            _ => Fault::RestartAll,
        }
    }

    async fn apply(&mut self, fault: Fault, sys: &mut System, iso: &mut Isolation) -> Result<()> {
        let target = self.rng.below(sys.len() as u64) as usize;
        let hold = self.rng.millis(1000, 4000);
        match fault {
            Fault::Kill => {
                sys.kill(target);
                self.log(fault, Some(target), "apply", "SIGKILL");
                watchful_sleep(sys, hold).await?;
                restart(sys, iso, target)?;
                self.log(fault, Some(target), "heal", "restarted from its data dir");
            }
            Fault::Pause => {
                // Longer than any election timeout (at most 600 ms with the lease).
                let hold = hold.max(Duration::from_millis(1500));
                sys.signal(target, libc::SIGSTOP)?;
                let paused = Paused {
                    sys: &mut *sys,
                    manager: target,
                };
                self.log(
                    fault,
                    Some(target),
                    "apply",
                    &format!("SIGSTOP for {hold:?}"),
                );
                tokio::time::sleep(hold).await;
                drop(paused);
                self.log(fault, Some(target), "heal", "SIGCONT");
            }
            Fault::Partition => {
                if let Some(why) = iso.unavailable() {
                    let why = why.to_string();
                    self.log(fault, Some(target), "skip", &why);
                    return Ok(());
                }
                iso.partition(target)?;
                self.log(
                    fault,
                    Some(target),
                    "apply",
                    "iptables DROP to/from its peers",
                );
                let held = watchful_sleep(sys, hold).await;
                let removed = iso.heal()?;
                self.log(
                    fault,
                    Some(target),
                    "heal",
                    &format!("{removed} rules removed"),
                );
                held?;
            }
            Fault::RestartAll => {
                restart_all(sys, iso)?;
                self.log(fault, None, "apply", "SIGKILL all, then started all again");
                self.log(fault, None, "heal", "all restarted");
            }
        }
        *self.applied.entry(fault).or_default() += 1;
        Ok(())
    }

    fn log(&mut self, fault: Fault, manager: Option<usize>, phase: &'static str, detail: &str) {
        let event = FaultEvent {
            at_s: self.t0.elapsed().as_secs_f64(),
            wall: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            fault,
            manager: manager.map(|m| m + 1),
            phase,
            detail: detail.to_string(),
        };
        eprintln!(
            "[chaos] {:>8.3}s  {}  {:<5} {:<11} {:<10} {}",
            event.at_s,
            event.wall,
            event.phase,
            fault.name(),
            event
                .manager
                .map(|m| format!("manager {m}"))
                .unwrap_or_else(|| "all".into()),
            event.detail
        );
        self.events.push(event);
    }
}

/// Start manager `i` again and put it back in its cgroup.
pub fn restart(sys: &mut System, iso: &Isolation, i: usize) -> Result<()> {
    sys.restart(i)?;
    iso.attach(i, sys.pid(i))
}

/// SIGKILL every manager, then start them all again.
pub fn restart_all(sys: &mut System, iso: &Isolation) -> Result<()> {
    for i in 0..sys.len() {
        sys.kill(i);
    }
    for i in 0..sys.len() {
        restart(sys, iso, i)?;
    }
    Ok(())
}

/// Sleep, checking every 200 ms that no manager died on its own.
pub async fn watchful_sleep(sys: &mut System, d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        sys.check_alive()?;
        tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(200))).await;
    }
    sys.check_alive()
}
