//! Jittered exponential backoff for reconnecting to the managers.
//!
//! Many agents lose their session at the same moment (a leader dies); without jitter
//! they would all knock on the new leader in lockstep. Each delay is drawn uniformly
//! between half and all of the current step ("equal jitter"), and the step doubles up to
//! a ceiling. The random source comes in as a parameter so tests can fix it.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Backoff {
    first: Duration,
    ceiling: Duration,
    step: Duration,
    rng: StdRng,
}

impl Backoff {
    pub fn new(first: Duration, ceiling: Duration, rng: StdRng) -> Self {
        Backoff {
            first,
            ceiling,
            step: first,
            rng,
        }
    }

    /// Seeded from the operating system.
    pub fn from_entropy(first: Duration, ceiling: Duration) -> Self {
        Self::new(first, ceiling, StdRng::from_os_rng())
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.ceiling);
        let half = step / 2;
        half + self.rng.random_range(Duration::ZERO..=half)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_with_jitter_and_reset() {
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
            StdRng::seed_from_u64(7),
        );
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let steps = [100u64, 200, 400, 800, 1600, 2000, 2000, 2000];
        for (delay, step) in delays.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} vs {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
