//! `SpecError`: what is wrong with a submitted job spec, and where.
//!
//! Parsing and validation both report through it so the API can answer every
//! bad spec the same way: a 400 whose message starts with the field path.

use std::fmt;

/// A spec problem at a field path such as `tasks[0].resources.memory_mb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The field path; empty when the problem has no single field (for
    /// example malformed JSON, where `message` gives the line and column).
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `"{field}: {message}"`, or just the message when there is no field.
impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefixes_the_field() {
        let e = SpecError::new("tasks[0].image", "must not be empty");
        assert_eq!(e.to_string(), "tasks[0].image: must not be empty");
        assert_eq!(SpecError::new("", "oops").to_string(), "oops");
    }
}
