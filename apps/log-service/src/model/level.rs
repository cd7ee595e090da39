//! Severity of a log record.

use std::fmt;

use serde::Serialize;

/// Severity of a log record, ordered so that `min_level` filters compare numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace = 1,
    Debug = 2,
    Info = 3,
    Warn = 4,
    Error = 5,
    Fatal = 6,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// Parses a level name case-insensitively (`WARNING` and `CRITICAL` are accepted aliases).
    pub fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" => Some(Level::Trace),
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            "FATAL" | "CRITICAL" => Some(Level::Fatal),
            _ => None,
        }
    }

    /// Maps an OpenTelemetry severity number (1..=24) onto a level; 0 (unspecified) gives `None`.
    pub fn from_otel_severity(number: i32) -> Option<Level> {
        match number {
            1..=4 => Some(Level::Trace),
            5..=8 => Some(Level::Debug),
            9..=12 => Some(Level::Info),
            13..=16 => Some(Level::Warn),
            17..=20 => Some(Level::Error),
            n if n >= 21 => Some(Level::Fatal),
            _ => None,
        }
    }

    /// Converts the stored number back; unknown numbers read as INFO rather than failing a query.
    pub fn from_i64(n: i64) -> Level {
        match n {
            1 => Level::Trace,
            2 => Level::Debug,
            4 => Level::Warn,
            5 => Level::Error,
            6 => Level::Fatal,
            _ => Level::Info,
        }
    }

    /// The canonical upper-case name, as the minisource REST API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// True for ERROR and FATAL, the levels that mark a trace as failed.
    pub fn is_error(self) -> bool {
        self >= Level::Error
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_reject_unknown_names() {
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("Error"), Some(Level::Error));
        assert_eq!(Level::parse("LOUD"), None);
        assert!(Level::Warn < Level::Error);
    }

    #[test]
    fn otel_severity_numbers_map_to_ranges() {
        assert_eq!(Level::from_otel_severity(0), None);
        assert_eq!(Level::from_otel_severity(9), Some(Level::Info));
        assert_eq!(Level::from_otel_severity(17), Some(Level::Error));
        assert_eq!(Level::from_otel_severity(24), Some(Level::Fatal));
    }
}
