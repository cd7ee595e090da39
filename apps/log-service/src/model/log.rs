//! A log record: validated for writing, and as the query API returns it.

use serde::Serialize;
use serde_json::Value;

use super::Level;

/// What ties a log record to a trace, a request and a place: the optional fields every way in
/// may fill, stored and returned alike.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LogContext {
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub host: Option<String>,
    pub environment: Option<String>,
}

/// A validated log record ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLog {
    /// Unix time in nanoseconds.
    pub timestamp_ns: i64,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub context: LogContext,
    /// JSON object text of the structured fields (the minisource REST API's `metadata`, OTLP
    /// attributes); `None` when empty. Serialised by the request handler, so the single writer
    /// thread only does storage work.
    pub metadata: Option<String>,
}

/// A stored log record as the query API returns it.
///
/// The structured fields come back once, under `metadata`: the name the minisource REST API
/// takes on ingest and returns on every read, whatever protocol the record came in by (OTLP
/// attributes land there too).
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
    /// Returned as fields of the log itself, as the minisource REST API spells them.
    #[serde(flatten)]
    pub context: LogContext,
    /// Structured fields: a JSON object, empty when the record had none.
    pub metadata: Value,
}
