//! What the read routes take (filters, intervals) and what they answer (pages, counts, buckets).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Level, LogView};

/// Filter of the list and query routes (the minisource REST API's query body).
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

impl LogFilter {
    /// The filters that match a column exactly, as `(column, value)`; the columns are named
    /// alike in both backends.
    pub fn exact_matches(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("trace_id", &self.trace_id),
            ("request_id", &self.request_id),
            ("user_id", &self.user_id),
            ("environment", &self.environment),
        ]
        .into_iter()
        .filter_map(|(column, value)| Some((column, value.as_deref()?)))
    }
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
    /// Number of matches in all pages (the minisource REST API's name).
    pub total: i64,
    /// The same number under the Traceflow listing's name.
    pub count: i64,
    /// `eq` when `total` is exact, `gte` when counting stopped at it (at least that many).
    pub total_relation: &'static str,
    /// The page the first entry falls on, from 1.
    pub page: u32,
    pub page_size: u32,
    /// Entries skipped before the first.
    pub offset: u64,
}

/// Counts returned by `/api/v1/logs/stats`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    pub total: i64,
    pub by_level: Map<String, Value>,
    pub by_service: Map<String, Value>,
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
    pub counts: Map<String, Value>,
}

/// Storage figures of `/api/v1/logs/storage`, for the caller's tenant.
#[derive(Debug, Clone, Serialize)]
pub struct StorageInfo {
    pub backend: &'static str,
    pub log_count: i64,
    pub span_count: i64,
    pub estimated_bytes: i64,
    /// Rows and bytes of each stored day, oldest first.
    pub days: Vec<DayUsage>,
}

impl StorageInfo {
    /// The figures of a tenant with no data yet, on `backend`.
    pub fn empty(backend: &'static str) -> StorageInfo {
        StorageInfo {
            backend,
            log_count: 0,
            span_count: 0,
            estimated_bytes: 0,
            days: Vec::new(),
        }
    }

    /// Adds one stored day (`YYYY-MM-DD`) of `log_count` logs and `span_count` spans in `bytes`.
    pub fn add_day(&mut self, day: String, log_count: i64, span_count: i64, bytes: i64) {
        self.log_count += log_count;
        self.span_count += span_count;
        self.estimated_bytes += bytes;
        self.days.push(DayUsage {
            day,
            log_count,
            span_count,
            bytes,
        });
    }
}

/// One day of a tenant's storage: its partition's rows and bytes.
#[derive(Debug, Clone, Serialize)]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub log_count: i64,
    pub span_count: i64,
    pub bytes: i64,
}
