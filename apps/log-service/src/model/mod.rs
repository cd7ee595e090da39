//! Records as log-service stores and returns them, independent of the protocol they came in by.
//!
//! `level`, `log` and `span` are what is written and read back; `query` holds what the read
//! routes take (filters, intervals) and answer (pages, statistics, buckets).

#[macro_use]
mod coded;
mod level;
mod log;
mod query;
mod span;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

pub use level::Level;
pub use log::{LogContext, LogView, NewLog};
pub use query::{Bucket, Interval, LogFilter, LogPage, Stats, StorageInfo};
pub use span::{NewSpan, SpanKind, SpanStatus, SpanView};

/// Tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "default";
/// Longest accepted tenant id, service name, or other short text field.
pub const MAX_SHORT_FIELD: usize = 256;
/// Longest accepted log message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Rows handed to the writer in one request: they commit together or not at all.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Tenant every row of the batch belongs to.
    pub tenant: String,
    /// Log records, in the order their ids are returned.
    pub logs: Vec<NewLog>,
    /// Spans; a span already stored under the same ids is replaced.
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

/// Refuses a field `what` (a log entry, a query) does not define, naming it and the `known`
/// ones: a misspelt `servce_name` or filter would otherwise vanish without a word.
pub fn refuse_unknown_fields(
    obj: &serde_json::Map<String, Value>,
    known: &[&str],
    what: &str,
) -> Result<(), crate::error::AppError> {
    match obj.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(crate::error::AppError::field(
            key.clone(),
            format!(
                "is not a field of {what}; known fields: {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The value of stored JSON text; `empty` when there is none or it does not parse.
pub fn json_or(text: Option<&str>, empty: Value) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(empty)
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

/// The time from `start_ns` to `end_ns`, in the milliseconds the trace and DAG APIs show.
pub fn duration_ms(start_ns: i64, end_ns: i64) -> f64 {
    (end_ns.saturating_sub(start_ns)).max(0) as f64 / 1e6
}

/// Current time in unix nanoseconds.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let ns = parse_ts("2024-01-15T10:30:00.123456789Z").unwrap();
        assert_eq!(format_ts(ns), "2024-01-15T10:30:00.123456789Z");
        assert_eq!(parse_ts("yesterday"), None);
    }
}
