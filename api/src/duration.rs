//! `GDuration`: a `std::time::Duration` that people write and read as text.
//!
//! Job specs are written by hand, so durations appear as `"2s"` or `"1m30s"`
//! (humantime syntax) in both JSON and YAML, never as a number of nanoseconds.
//! The same string form is what the server stores (it keeps specs as JSON),
//! so a spec read back is the spec that was written.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a duration looks like, for error messages.
const EXPECTED: &str = "a duration string such as \"2s\", \"500ms\" or \"1m30s\"";

/// A duration that (de)serialises as a humantime string ("2s", "1m30s").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GDuration(pub Duration);

impl GDuration {
    pub const ZERO: GDuration = GDuration(Duration::ZERO);

    pub const fn from_secs(secs: u64) -> Self {
        GDuration(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        GDuration(Duration::from_millis(millis))
    }

    pub const fn as_duration(&self) -> Duration {
        self.0
    }

    pub const fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for GDuration {
    fn from(d: Duration) -> Self {
        GDuration(d)
    }
}

impl From<GDuration> for Duration {
    fn from(d: GDuration) -> Self {
        d.0
    }
}

/// Compact humantime form without spaces: `1m30s`, `250ms`, `0s`.
impl fmt::Display for GDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = humantime::format_duration(self.0).to_string();
        f.write_str(&text.replace(' ', ""))
    }
}

/// The error for text that is not a duration; its message says what is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?} ({reason}); expected {EXPECTED}")]
pub struct ParseDurationError {
    input: String,
    reason: String,
}

impl FromStr for GDuration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(GDuration)
            .map_err(|e| ParseDurationError {
                input: s.to_string(),
                reason: e.to_string(),
            })
    }
}

impl Serialize for GDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = GDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<GDuration, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

/// What the server accepts, as a regular expression: one or more `<number><unit>`
/// terms (humantime's units; a fraction such as `1.5s` is allowed), spaces between
/// them optional. A number too large for a duration is refused all the same.
pub const SCHEMA_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\s*)+$";

/// In the OpenAPI document a duration is the string people write, never a number.
impl utoipa::PartialSchema for GDuration {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(SCHEMA_PATTERN))
            .description(Some(
                "A duration as text (humantime syntax): `2s`, `500ms`, `1m30s`, `1h`.",
            ))
            .examples(["2s", "1m30s"])
            .into()
    }
}

impl utoipa::ToSchema for GDuration {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_compact_form() {
        let d: GDuration = "1m30s".parse().unwrap();
        assert_eq!(d.0, Duration::from_secs(90));
        assert_eq!(d.to_string(), "1m30s");
        assert_eq!("1m 30s".parse::<GDuration>().unwrap(), d);
        assert_eq!(GDuration::from_millis(250).to_string(), "250ms");
        assert_eq!(GDuration::ZERO.to_string(), "0s");
    }

    #[test]
    fn serde_round_trip_as_string() {
        let d = GDuration::from_secs(3725);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"1h2m5s\"");
        assert_eq!(serde_json::from_str::<GDuration>(&json).unwrap(), d);
        assert_eq!(
            serde_yaml::from_str::<GDuration>("2s").unwrap().0,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn rejects_garbage_with_a_clear_message() {
        let err = serde_json::from_str::<GDuration>("\"soon\"").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("invalid duration \"soon\""), "{msg}");
        assert!(msg.contains("\"1m30s\""), "{msg}");

        let err = serde_json::from_str::<GDuration>("\"5\"").unwrap_err();
        assert!(err.to_string().contains("time unit needed"), "{err}");

        let err = serde_json::from_str::<GDuration>("5").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid type: integer `5`, expected a duration string"),
            "{err}"
        );
    }
}
