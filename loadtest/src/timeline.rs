//! Latency over time, in fixed buckets: per bucket the largest and the mean
//! latency of the requests that completed in it.
//!
//! Why it exists: a chart of latency around a leader kill needs the shape over
//! time, but keeping every (time, latency) sample of a long run would grow
//! without bound. A bucket is three numbers, the bucket count is capped, and
//! each client keeps its own timeline (no lock on the hot path), merged at the
//! end like the histograms in `stats.rs`.

use std::time::{Duration, Instant};

use crate::svg::Series;

/// Buckets beyond this are dropped: an hour at 100 ms.
const MAX_BUCKETS: usize = 36_000;

#[derive(Clone, Copy, Default)]
struct Bucket {
    max_us: u64,
    sum_us: u64,
    count: u64,
}

/// Latencies bucketed by completion time since `t0`.
#[derive(Clone)]
pub struct LatencyTimeline {
    t0: Instant,
    width: Duration,
    buckets: Vec<Bucket>,
}

impl LatencyTimeline {
    pub fn new(t0: Instant, width: Duration) -> LatencyTimeline {
        LatencyTimeline {
            t0,
            width: width.max(Duration::from_millis(1)),
            buckets: Vec::new(),
        }
    }

    /// A request that completed at `done` after taking `latency`.
    pub fn record(&mut self, done: Instant, latency: Duration) {
        let index =
            (done.saturating_duration_since(self.t0).as_nanos() / self.width.as_nanos()) as usize;
        if index >= MAX_BUCKETS {
            return;
        }
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        let us = latency.as_micros() as u64;
        let bucket = &mut self.buckets[index];
        bucket.max_us = bucket.max_us.max(us);
        bucket.sum_us += us;
        bucket.count += 1;
    }

    /// Adds another timeline with the same `t0` and width.
    pub fn merge(&mut self, other: &LatencyTimeline) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), Bucket::default());
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.max_us = mine.max_us.max(theirs.max_us);
            mine.sum_us += theirs.sum_us;
            mine.count += theirs.count;
        }
    }

    /// (seconds since `t0` at the bucket's start, max ms) of every non-empty
    /// bucket: an empty bucket (a stall) has no latency to show.
    pub fn max_series(&self, name: &str) -> Series {
        self.series(name, |b| b.max_us as f64 / 1000.0)
    }

    /// Like [`Self::max_series`], with the mean.
    pub fn mean_series(&self, name: &str) -> Series {
        self.series(name, |b| b.sum_us as f64 / b.count as f64 / 1000.0)
    }

    fn series(&self, name: &str, ms: impl Fn(&Bucket) -> f64) -> Series {
        let points = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.count > 0)
            .map(|(i, b)| ((self.width * i as u32).as_secs_f64(), ms(b)))
            .collect();
        Series {
            name: name.to_string(),
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_max_and_mean_and_skip_empty_ones() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut a = LatencyTimeline::new(t0, Duration::from_millis(100));
        a.record(at(10), Duration::from_millis(2));
        a.record(at(50), Duration::from_millis(4));
        let mut b = LatencyTimeline::new(t0, Duration::from_millis(100));
        b.record(at(350), Duration::from_millis(900));
        a.merge(&b);
        assert_eq!(a.max_series("max").points, vec![(0.0, 4.0), (0.3, 900.0)]);
        assert_eq!(a.mean_series("mean").points, vec![(0.0, 3.0), (0.3, 900.0)]);
    }
}
