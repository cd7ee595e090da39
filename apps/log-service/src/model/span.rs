//! A span: validated for writing, and as the trace API returns it.

use serde::Serialize;
use serde_json::Value;

use super::{duration_ms, format_ts, json_or};

coded_enum! {
    /// Kind of a span, numbered as OTLP numbers it; unspecified (0) and unknown numbers count
    /// as INTERNAL, as the specification says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SpanKind (unknown: Internal) {
        Internal = 1 => "INTERNAL",
        Server = 2 => "SERVER",
        Client = 3 => "CLIENT",
        Producer = 4 => "PRODUCER",
        Consumer = 5 => "CONSUMER",
    }

    /// Status code of a span, numbered as OTLP numbers it; unknown codes read as UNSET.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SpanStatus (unknown: Unset) {
        Unset = 0 => "UNSET",
        Ok = 1 => "OK",
        Error = 2 => "ERROR",
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
    /// The JSON text of an object of span attributes, as stored: made once at ingest, on the
    /// request's thread, so the single writer only binds it.
    pub attributes: String,
    /// The JSON text of an array of `{attributes, span_id, trace_id}`.
    pub links: String,
    /// The JSON text of an array of `{attributes, name, timestamp}` (exceptions are events).
    pub events: String,
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

impl From<NewSpan> for SpanView {
    /// What the trace API shows of a stored span: times as RFC 3339 and a duration, kind and
    /// status by name.
    fn from(span: NewSpan) -> SpanView {
        SpanView {
            start_time: format_ts(span.start_ns),
            end_time: format_ts(span.end_ns),
            duration_ms: duration_ms(span.start_ns, span.end_ns),
            kind: span.kind.as_str(),
            status: span.status.as_str(),
            status_code: span.status,
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            service: span.service,
            name: span.name,
            status_message: span.status_message,
            attributes: json_or(Some(&span.attributes), Value::Object(Default::default())),
            links: json_or(Some(&span.links), Value::Array(vec![])),
            events: json_or(Some(&span.events), Value::Array(vec![])),
        }
    }
}
