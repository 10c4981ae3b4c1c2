//! Relative times for people: `3s ago`, `2h ago`, `in 5m`; durations as `1m30s`.
//!
//! The clock is a parameter (`now_ms`) so the formatting is tested without one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `at_ms` relative to `now_ms`: `just now`, `3s ago`, `5m ago`, `2h ago`, `4d ago`,
/// `in 10s` for a time ahead (clocks differ between machines); `-` for 0 (never).
pub fn ago(at_ms: u64, now_ms: u64) -> String {
    if at_ms == 0 {
        return "-".into();
    }
    if at_ms > now_ms {
        let ahead = (at_ms - now_ms) / 1000;
        if ahead == 0 {
            return "just now".into();
        }
        return format!("in {}", coarse(ahead));
    }
    let secs = (now_ms - at_ms) / 1000;
    if secs == 0 {
        return "just now".into();
    }
    format!("{} ago", coarse(secs))
}

/// One unit, rounded down: `59s`, `1m`, `23h`, `400d`.
fn coarse(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A duration in two units at most: `850ms`, `12s`, `1m30s`, `2h5m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => two(secs / 60, "m", secs % 60, "s"),
        _ => two(secs / 3600, "h", secs % 3600 / 60, "m"),
    }
}

fn two(a: u64, a_unit: &str, b: u64, b_unit: &str) -> String {
    if b == 0 {
        format!("{a}{a_unit}")
    } else {
        format!("{a}{a_unit}{b}{b_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn past_times() {
        assert_eq!(ago(NOW, NOW), "just now");
        assert_eq!(ago(NOW - 999, NOW), "just now");
        assert_eq!(ago(NOW - 3_000, NOW), "3s ago");
        assert_eq!(ago(NOW - 59_999, NOW), "59s ago");
        assert_eq!(ago(NOW - 60_000, NOW), "1m ago");
        assert_eq!(ago(NOW - 2 * 3_600_000 - 5_000, NOW), "2h ago");
        assert_eq!(ago(NOW - 3 * 86_400_000, NOW), "3d ago");
    }

    #[test]
    fn future_and_unset_times() {
        assert_eq!(ago(NOW + 10_000, NOW), "in 10s");
        assert_eq!(ago(NOW + 500, NOW), "just now");
        assert_eq!(ago(0, NOW), "-");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(120)), "2m");
        assert_eq!(duration(Duration::from_secs(2 * 3600 + 300)), "2h5m");
    }
}
