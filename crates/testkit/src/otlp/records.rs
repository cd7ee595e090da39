//! Spans and log records as the tests look at them: OTLP's protobuf messages flattened to the
//! few fields the assertions read, ids in hex, attribute values as text.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// A span as the tests look at it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Resource `service.name`.
    pub service: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id, empty for a root.
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL.
    pub kind: &'static str,
    /// UNSET, OK or ERROR.
    pub status: &'static str,
    /// Attributes rendered as strings.
    pub attributes: HashMap<String, String>,
    /// Links as (trace id, span id).
    pub links: Vec<(String, String)>,
}

/// A log record as the tests look at it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Resource `service.name`.
    pub service: String,
    /// Hex trace id (empty outside spans).
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// The message.
    pub body: String,
    /// Severity text.
    pub severity: String,
}

/// Returns the number of spans in an export, without decoding them further.
pub(super) fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Returns the number of log records in an export, without decoding them further.
pub(super) fn log_count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum()
}

/// Flattens every span of an export.
pub(super) fn spans(request: ExportTraceServiceRequest) -> Vec<Span> {
    let resources = request.resource_spans.into_iter().map(|rs| {
        let spans = rs.scope_spans.into_iter().flat_map(|ss| ss.spans);
        (rs.resource, spans)
    });
    flatten(resources, |service, s| Span {
        service,
        trace_id: hex(&s.trace_id),
        span_id: hex(&s.span_id),
        parent_span_id: hex(&s.parent_span_id),
        kind: match s.kind {
            1 => "INTERNAL",
            2 => "SERVER",
            3 => "CLIENT",
            4 => "PRODUCER",
            5 => "CONSUMER",
            _ => "UNSPECIFIED",
        },
        status: match s.status.as_ref().map(|st| st.code) {
            Some(1) => "OK",
            Some(2) => "ERROR",
            _ => "UNSET",
        },
        attributes: s
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), any_value_text(&kv.value)))
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect(),
        name: s.name,
    })
}

/// Flattens every log record of an export.
pub(super) fn logs(request: ExportLogsServiceRequest) -> Vec<LogRecord> {
    let resources = request.resource_logs.into_iter().map(|rl| {
        let records = rl.scope_logs.into_iter().flat_map(|sl| sl.log_records);
        (rl.resource, records)
    });
    flatten(resources, |service, l| LogRecord {
        service,
        trace_id: hex(&l.trace_id),
        span_id: hex(&l.span_id),
        body: any_value_text(&l.body),
        severity: l.severity_text,
    })
}

/// Turns each item of each resource into a record that names the resource's service.
fn flatten<I, T>(
    resources: impl Iterator<Item = (Option<Resource>, impl Iterator<Item = I>)>,
    record: impl Fn(String, I) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for (resource, items) in resources {
        let service = service_of(resource.as_ref());
        out.extend(items.map(|item| record(service.clone(), item)));
    }
    out
}

fn any_value_text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The `service.name` of a resource; empty when there is none.
fn service_of(resource: Option<&Resource>) -> String {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .map(|kv| any_value_text(&kv.value))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
