//! Jaeger's JSON model (the `model/json` types of its query service) and how a stored trace
//! becomes one: times in microseconds, attributes as typed tags, the parent as a `CHILD_OF`
//! reference and each link as `FOLLOWS_FROM`, events as logs, one process per service.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{SpanStatus, SpanView, parse_ts};

/// The body of every answer of Jaeger's query API: `data` on success, `errors` on failure.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    pub data: T,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<Vec<EnvelopeError>>,
}

impl<T> Envelope<T> {
    /// A successful answer with a `total` of 0, as Jaeger answers traces and dependencies.
    pub fn new(data: T) -> Envelope<T> {
        Envelope {
            data,
            total: 0,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

impl<T> Envelope<Vec<T>> {
    /// A successful answer whose `total` is the list's length, as Jaeger answers services and
    /// operations.
    pub fn counted(data: Vec<T>) -> Envelope<Vec<T>> {
        let total = data.len();
        Envelope {
            total,
            ..Envelope::new(data)
        }
    }
}

/// One error of an answer: the HTTP status as `code` for a failed request, the trace id for a
/// trace of a search by ids that was not found.
#[derive(Debug, Serialize)]
pub struct EnvelopeError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A whole trace.
#[derive(Debug, Serialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    pub processes: BTreeMap<String, Process>,
    pub warnings: Option<Vec<String>>,
}

/// One span; `process_id` names its service in the trace's `processes`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub operation_name: String,
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    pub start_time: i64,
    /// Microseconds.
    pub duration: i64,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
    /// 1: sampled, as every stored span was.
    pub flags: u32,
}

/// A span's parent (`CHILD_OF`) or a span it links to (`FOLLOWS_FROM`).
#[derive(Debug, Serialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: &'static str,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed tag: `type` is `string`, `bool`, `int64` or `float64`.
#[derive(Debug, Serialize, PartialEq)]
pub struct KeyValue {
    pub key: String,
    #[serde(rename = "type")]
    pub value_type: &'static str,
    pub value: Value,
}

/// An event of a span: its time in microseconds, its name as the `event` field, then its
/// attributes.
#[derive(Debug, Serialize)]
pub struct Log {
    pub timestamp: i64,
    pub fields: Vec<KeyValue>,
}

/// The service that emitted spans.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

/// An operation of `/api/operations`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub name: String,
    pub span_kind: &'static str,
}

/// An edge of `/api/dependencies`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: i64,
}

/// Jaeger's lower-case name of a span kind as the API names it (`SERVER` -> `server`).
pub fn kind_name(kind: &str) -> &'static str {
    match kind {
        "SERVER" => "server",
        "CLIENT" => "client",
        "PRODUCER" => "producer",
        "CONSUMER" => "consumer",
        _ => "internal",
    }
}

/// A JSON attribute value as a typed tag; arrays and objects become their JSON text, as
/// Jaeger's own OTLP translation does.
pub fn tag(key: &str, value: &Value) -> KeyValue {
    let (value_type, value) = match value {
        Value::String(_) => ("string", value.clone()),
        Value::Bool(_) => ("bool", value.clone()),
        Value::Number(n) if n.is_i64() => ("int64", value.clone()),
        Value::Number(n) => ("float64", n.as_f64().map_or(Value::Null, Value::from)),
        Value::Null => ("string", Value::String(String::new())),
        other => ("string", Value::String(other.to_string())),
    };
    KeyValue {
        key: key.to_owned(),
        value_type,
        value,
    }
}

fn tags_of(attributes: &Value) -> Vec<KeyValue> {
    attributes
        .as_object()
        .map(|map| map.iter().map(|(k, v)| tag(k, v)).collect())
        .unwrap_or_default()
}

fn string(key: &str, value: &str) -> KeyValue {
    tag(key, &Value::String(value.to_owned()))
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The span's attributes, then what Jaeger shows of OpenTelemetry's fields as tags: the kind,
/// the status when set, `error` for a failed span, the status message when there is one.
fn span_tags(span: &SpanView) -> Vec<KeyValue> {
    let mut tags = tags_of(&span.attributes);
    tags.push(string("span.kind", kind_name(span.kind)));
    if span.status_code != SpanStatus::Unset {
        tags.push(string("otel.status_code", span.status));
    }
    if span.status_code == SpanStatus::Error {
        tags.push(tag("error", &Value::Bool(true)));
    }
    if let Some(message) = &span.status_message {
        tags.push(string("otel.status_description", message));
    }
    tags
}

fn references(span: &SpanView) -> Vec<Reference> {
    let parent = span.parent_span_id.iter().map(|parent| Reference {
        ref_type: "CHILD_OF",
        trace_id: span.trace_id.clone(),
        span_id: parent.clone(),
    });
    let links = span.links.as_array().into_iter().flatten();
    let links = links.filter_map(Value::as_object).map(|link| Reference {
        ref_type: "FOLLOWS_FROM",
        trace_id: text(link, "trace_id").to_owned(),
        span_id: text(link, "span_id").to_owned(),
    });
    parent.chain(links).collect()
}

fn logs(span: &SpanView) -> Vec<Log> {
    let events = span.events.as_array().into_iter().flatten();
    events
        .filter_map(Value::as_object)
        .map(|event| {
            let ns = parse_ts(text(event, "timestamp")).unwrap_or(span.start_ns);
            let mut fields = vec![string("event", text(event, "name"))];
            fields.extend(tags_of(event.get("attributes").unwrap_or(&Value::Null)));
            Log {
                timestamp: ns.div_euclid(1000),
                fields,
            }
        })
        .collect()
}

/// The Jaeger trace of `spans` (one trace's, by start time): process ids `p1`, `p2`, ... in the
/// order their services first appear.
pub fn trace(trace_id: &str, spans: &[SpanView]) -> Trace {
    let mut process_ids: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let index = match process_ids.iter().position(|s| *s == span.service) {
            Some(i) => i,
            None => {
                process_ids.push(&span.service);
                process_ids.len() - 1
            }
        };
        out.push(Span {
            trace_id: span.trace_id.clone(),
            span_id: span.span_id.clone(),
            operation_name: span.name.clone(),
            references: references(span),
            start_time: span.start_ns.div_euclid(1000),
            duration: (span.end_ns - span.start_ns).max(0) / 1000,
            tags: span_tags(span),
            logs: logs(span),
            process_id: format!("p{}", index + 1),
            warnings: None,
            flags: 1,
        });
    }
    let processes = process_ids
        .iter()
        .enumerate()
        .map(|(i, service)| {
            let process = Process {
                service_name: (*service).to_owned(),
                tags: Vec::new(),
            };
            (format!("p{}", i + 1), process)
        })
        .collect();
    Trace {
        trace_id: trace_id.to_owned(),
        spans: out,
        processes,
        warnings: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn attribute_values_become_typed_tags() {
        let t = |v: Value| {
            let kv = tag("k", &v);
            (kv.value_type, kv.value)
        };
        assert_eq!(t(json!("a")), ("string", json!("a")));
        assert_eq!(t(json!(true)), ("bool", json!(true)));
        assert_eq!(t(json!(200)), ("int64", json!(200)));
        assert_eq!(t(json!(1.5)), ("float64", json!(1.5)));
        assert_eq!(t(json!(["a", 1])), ("string", json!(r#"["a",1]"#)));
    }
}
