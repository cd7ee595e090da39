//! Severity of a log record.

use std::fmt;

use serde::Serialize;

coded_enum! {
    /// Severity of a log record, ordered so that `min_level` filters compare numbers. An
    /// unknown stored number reads as INFO rather than failing a query.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Level (unknown: Info) {
        Trace = 1 => "TRACE",
        Debug = 2 => "DEBUG",
        Info = 3 => "INFO",
        Warn = 4 => "WARN",
        Error = 5 => "ERROR",
        Fatal = 6 => "FATAL",
    }
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

    #[test]
    fn stored_numbers_read_back_as_their_variant_and_unknown_ones_as_the_fallback() {
        for level in Level::ALL {
            assert_eq!(Level::from_i64(level as i64), level);
        }
        assert_eq!(Level::from_i64(0), Level::Info);
        assert_eq!(Level::from_i64(7), Level::Info);
        use crate::model::{SpanKind, SpanStatus};
        assert_eq!(SpanKind::from_i64(4), SpanKind::Producer);
        assert_eq!(SpanKind::from_i64(0), SpanKind::Internal);
        assert_eq!(SpanStatus::from_i64(2), SpanStatus::Error);
        assert_eq!(SpanStatus::from_i64(9), SpanStatus::Unset);
        assert_eq!(
            (Level::Warn.as_str(), SpanKind::Consumer.as_str()),
            ("WARN", "CONSUMER")
        );
    }
}
