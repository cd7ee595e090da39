//! Records as log-service stores and returns them, independent of the protocol they came in by.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

/// Tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "default";
/// Longest accepted tenant id, service name, or other short text field.
pub const MAX_SHORT_FIELD: usize = 256;
/// Longest accepted log message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

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

    /// The canonical upper-case name (seed 001 spelling).
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

/// A validated log record ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLog {
    /// Unix time in nanoseconds.
    pub timestamp_ns: i64,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub host: Option<String>,
    pub environment: Option<String>,
    /// JSON object text (seed 001 `metadata`, OTLP attributes); `None` when empty. Serialised by
    /// the request handler, so the single writer thread only does storage work.
    pub attributes: Option<String>,
}

/// Kind of a span, as OpenTelemetry defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// Maps the OTLP enum; unspecified counts as INTERNAL, as the specification says.
    pub fn from_otlp(n: i32) -> SpanKind {
        match n {
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }

    /// Upper-case name used in the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

/// Status code of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl SpanStatus {
    /// Maps the OTLP status code; unknown codes read as UNSET.
    pub fn from_i64(n: i64) -> SpanStatus {
        match n {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }

    /// Upper-case name used in the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "UNSET",
            SpanStatus::Ok => "OK",
            SpanStatus::Error => "ERROR",
        }
    }
}

/// A validated span ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: SpanStatus,
    pub status_message: Option<String>,
    /// JSON object of span attributes.
    pub attributes: Value,
    /// JSON array of `{trace_id, span_id, attributes}`.
    pub links: Value,
    /// JSON array of `{name, timestamp, attributes}` (exceptions are events).
    pub events: Value,
}

/// Rows handed to the writer in one request: they commit together or not at all.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub tenant: String,
    pub logs: Vec<NewLog>,
    pub spans: Vec<NewSpan>,
}

impl WriteBatch {
    /// Creates an empty batch for `tenant`.
    pub fn new(tenant: impl Into<String>) -> Self {
        WriteBatch {
            tenant: tenant.into(),
            ..Default::default()
        }
    }

    /// Number of rows, the unit in which the write queue is bounded.
    pub fn len(&self) -> usize {
        self.logs.len() + self.spans.len()
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// JSON text of an object, `None` for null or an empty object.
pub fn object_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// Formats unix nanoseconds as RFC 3339 UTC.
pub fn format_ts(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses RFC 3339 into unix nanoseconds; `None` when malformed or outside the representable range.
pub fn parse_ts(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|t| t.with_timezone(&Utc).timestamp_nanos_opt())
}

/// Current time in unix nanoseconds.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// A stored log record as the query API returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogView {
    pub id: i64,
    pub tenant_id: String,
    pub timestamp: String,
    #[serde(skip)]
    pub timestamp_ns: i64,
    pub service_name: String,
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub host: Option<String>,
    pub environment: Option<String>,
    /// Structured fields (OTLP attributes, seed 001 `metadata`).
    pub attributes: Value,
    /// The same object under seed 001's name, so its clients keep working.
    pub metadata: Value,
}

/// A stored span as the trace API returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    pub kind: &'static str,
    pub start_time: String,
    pub end_time: String,
    pub duration_ms: f64,
    pub status: &'static str,
    pub status_message: Option<String>,
    pub attributes: Value,
    pub links: Value,
    pub events: Value,
    #[serde(skip)]
    pub start_ns: i64,
    #[serde(skip)]
    pub end_ns: i64,
    #[serde(skip)]
    pub status_code: SpanStatus,
}

/// Filter of the list and query routes (seed 001's query body).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub service: Option<String>,
    pub level: Option<Level>,
    pub min_level: Option<Level>,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub trace_id: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub search: Option<String>,
    pub environment: Option<String>,
}

/// Width of an aggregation bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    /// Parses `minute`, `hour` or `day`.
    pub fn parse(text: &str) -> Option<Interval> {
        match text.trim().to_ascii_lowercase().as_str() {
            "minute" | "1m" => Some(Interval::Minute),
            "hour" | "1h" => Some(Interval::Hour),
            "day" | "1d" => Some(Interval::Day),
            _ => None,
        }
    }

    /// Bucket width in nanoseconds; UTC days are exact multiples of the unix epoch.
    pub fn nanos(self) -> i64 {
        const MINUTE: i64 = 60 * 1_000_000_000;
        match self {
            Interval::Minute => MINUTE,
            Interval::Hour => 60 * MINUTE,
            Interval::Day => 24 * 60 * MINUTE,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }
}

/// One page of query results.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub logs: Vec<LogView>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

/// Counts returned by `/api/v1/logs/stats`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    pub total: i64,
    pub by_level: serde_json::Map<String, Value>,
    pub by_service: serde_json::Map<String, Value>,
    pub error_count: i64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    pub trace_count_with_errors: i64,
}

/// One time bucket of `/api/v1/logs/aggregate`.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub bucket: String,
    pub total: i64,
    pub counts: serde_json::Map<String, Value>,
}

/// Storage figures of `/api/v1/logs/storage`, for the caller's tenant.
#[derive(Debug, Clone, Serialize)]
pub struct StorageInfo {
    pub backend: &'static str,
    pub log_count: i64,
    pub span_count: i64,
    pub estimated_bytes: i64,
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
    fn timestamps_round_trip_through_rfc3339() {
        let ns = parse_ts("2024-01-15T10:30:00.123456789Z").unwrap();
        assert_eq!(format_ts(ns), "2024-01-15T10:30:00.123456789Z");
        assert_eq!(parse_ts("yesterday"), None);
    }
}
