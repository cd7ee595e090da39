//! OTLP logs and spans (gRPC and HTTP, protobuf and JSON all decode to the same request types)
//! turned into rows. A malformed record is rejected and counted; the rest of the request is kept,
//! as OTLP's partial success allows. `export` commits a whole export request and answers it.

mod export;
mod json;

use json::{EventJson, JsonObject, LinkJson, attributes_text, hex, json_text, value_text};

pub use export::{Export, export};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::model::{
    Level, LogContext, MAX_MESSAGE_BYTES, MAX_SHORT_FIELD, NewLog, NewSpan, SpanKind, SpanStatus,
    format_ts, now_ns,
};

/// Converts an OTLP id: empty or all-zero means absent; any other length than `len` is an error.
fn otlp_id(bytes: &[u8], len: usize, field: &str) -> Result<Option<String>, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    if bytes.len() != len {
        return Err(format!("{field} must be {len} bytes, got {}", bytes.len()));
    }
    Ok(Some(hex(bytes)))
}

fn attr_str(attributes: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        attributes
            .iter()
            .find(|kv| kv.key == *key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(value_text)
    })
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Result of converting an OTLP request: the rows to store, and what was rejected and why.
#[derive(Debug)]
pub struct Converted<T> {
    pub rows: Vec<T>,
    pub rejected: usize,
    pub first_error: Option<String>,
}

impl<T> Default for Converted<T> {
    fn default() -> Self {
        Converted {
            rows: Vec::new(),
            rejected: 0,
            first_error: None,
        }
    }
}

impl<T> Converted<T> {
    /// Keeps `row`, or counts it as rejected, naming `what` it was and its place in the request.
    fn push(&mut self, what: &str, row: Result<T, String>) {
        match row {
            Ok(row) => self.rows.push(row),
            Err(error) => {
                let index = self.rows.len() + self.rejected;
                self.rejected += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{what} {index}: {error}"));
                }
            }
        }
    }

    /// The `partial_success` of the answer, as its rejected count and `error_message`; `None`
    /// when nothing was rejected.
    pub fn partial_success(&self) -> Option<(i64, String)> {
        // Every rejection sets `first_error`, so it is set exactly when something was rejected.
        let first = self.first_error.as_ref()?;
        let message = if self.rejected > 1 {
            format!("{} rejected; first: {first}", self.rejected)
        } else {
            first.clone()
        };
        Some((self.rejected as i64, message))
    }
}

/// True for an event name its producer chose. The tracing bridge names every event
/// `event <file>:<line>` (tracing's default name), which is not a name but the code location
/// again, already in `source` or the `code.*` attributes: it is dropped at ingest.
fn is_chosen_event_name(name: &str) -> bool {
    let default_name = name
        .strip_prefix("event ")
        .and_then(|location| location.rsplit_once(':'))
        .is_some_and(|(file, line)| {
            !file.is_empty() && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
        });
    !name.is_empty() && !default_name
}

fn service_of(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .and_then(|r| attr_str(&r.attributes, &["service.name"]))
        .map(|s| truncate(s, MAX_SHORT_FIELD))
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// A resource's `service.name` must not carry control characters, which would let a record
/// rewrite the terminal or log line that shows it.
fn check_service(service: &str) -> Result<(), String> {
    if service.chars().any(char::is_control) {
        return Err("resource attribute service.name must not contain control characters".into());
    }
    Ok(())
}

/// A record dated more than a day ahead (or past 2262, which does not fit) would stay at the top
/// of every newest-first list.
fn check_not_ahead(timestamp_ns: i64) -> Result<(), String> {
    if super::fields::too_far_ahead(timestamp_ns) {
        return Err("timestamp is more than 24 hours ahead of this server's clock".into());
    }
    Ok(())
}

/// Converts OTLP logs; records with malformed ids are rejected, the rest kept.
pub fn otlp_logs(request: ExportLogsServiceRequest) -> Converted<NewLog> {
    let mut out = Converted::default();
    for resource_logs in request.resource_logs {
        let resource = resource_logs.resource.as_ref();
        let resource_attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let origin = Origin {
            service: service_of(resource),
            host: attr_str(resource_attrs, &["host.name", "k8s.pod.name"]),
            environment: attr_str(
                resource_attrs,
                &["deployment.environment.name", "deployment.environment"],
            ),
        };
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref().map(|s| s.name.as_str());
            for record in scope_logs.log_records {
                out.push("log record", log_row(&origin, scope, record));
            }
        }
    }
    out
}

/// What a resource says about where its log records come from.
struct Origin {
    service: String,
    host: Option<String>,
    environment: Option<String>,
}

fn log_row(origin: &Origin, scope: Option<&str>, record: LogRecord) -> Result<NewLog, String> {
    check_service(&origin.service)?;
    let trace_id = otlp_id(&record.trace_id, 16, "trace_id")?;
    let span_id = otlp_id(&record.span_id, 8, "span_id")?;
    let message = match &record.body {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) => s.clone(),
        Some(body) => value_text(body).unwrap_or_default(),
        None => record.event_name.clone(),
    };
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(format!("body is larger than {MAX_MESSAGE_BYTES} bytes"));
    }
    let level = Level::from_otel_severity(record.severity_number)
        .or_else(|| Level::parse(&record.severity_text))
        .unwrap_or(Level::Info);
    let timestamp_ns = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|t| *t > 0)
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or_else(now_ns);
    check_not_ahead(timestamp_ns)?;
    let attrs = &record.attributes;
    let event_name = Some(record.event_name.as_str()).filter(|name| is_chosen_event_name(name));
    let metadata = attributes_text(attrs, event_name.map(|name| ("event.name", name)));
    let source = attr_str(attrs, &["code.file.path", "code.filepath"])
        .map(
            |file| match attr_str(attrs, &["code.line.number", "code.lineno"]) {
                Some(line) => format!("{file}:{line}"),
                None => file,
            },
        )
        .or_else(|| scope.filter(|s| !s.is_empty()).map(str::to_owned));
    Ok(NewLog {
        timestamp_ns,
        service: origin.service.clone(),
        level,
        message,
        context: LogContext {
            trace_id,
            span_id,
            parent_span_id: None,
            user_id: attr_str(attrs, &["user.id", "enduser.id", "user_id"])
                .map(|s| truncate(s, 128)),
            request_id: attr_str(attrs, &["request_id", "request.id", "http.request.id"])
                .map(|s| truncate(s, 128)),
            source: source.map(|s| truncate(s, MAX_SHORT_FIELD)),
            host: origin.host.clone().map(|s| truncate(s, MAX_SHORT_FIELD)),
            environment: origin
                .environment
                .clone()
                .map(|s| truncate(s, MAX_SHORT_FIELD)),
        },
        metadata,
    })
}

/// Converts OTLP spans; spans without a valid trace and span id are rejected, the rest kept.
pub fn otlp_spans(request: ExportTraceServiceRequest) -> Converted<NewSpan> {
    let mut out = Converted::default();
    for resource_spans in request.resource_spans {
        let service = service_of(resource_spans.resource.as_ref());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                out.push("span", span_row(&service, span));
            }
        }
    }
    out
}

fn span_row(service: &str, span: Span) -> Result<NewSpan, String> {
    check_service(service)?;
    let trace_id = otlp_id(&span.trace_id, 16, "trace_id")?;
    let span_id = otlp_id(&span.span_id, 8, "span_id")?;
    let parent_span_id = otlp_id(&span.parent_span_id, 8, "parent_span_id")?;
    let trace_id = trace_id.ok_or_else(|| "trace_id is required".to_owned())?;
    let span_id = span_id.ok_or_else(|| "span_id is required".to_owned())?;
    let start_ns = i64::try_from(span.start_time_unix_nano).unwrap_or(0);
    check_not_ahead(start_ns)?;
    let end_ns = i64::try_from(span.end_time_unix_nano)
        .unwrap_or(0)
        .max(start_ns);
    let (status, status_message) = match &span.status {
        Some(s) => (
            SpanStatus::from_i64(s.code.into()),
            Some(s.message.clone()).filter(|m| !m.is_empty()),
        ),
        None => (SpanStatus::Unset, None),
    };
    let links: Vec<LinkJson<'_>> = span
        .links
        .iter()
        .map(|l| LinkJson {
            attributes: JsonObject::of(&l.attributes),
            span_id: hex(&l.span_id),
            trace_id: hex(&l.trace_id),
        })
        .collect();
    let events: Vec<EventJson<'_>> = span
        .events
        .iter()
        .map(|e| EventJson {
            attributes: JsonObject::of(&e.attributes),
            name: &e.name,
            timestamp: format_ts(i64::try_from(e.time_unix_nano).unwrap_or(0)),
        })
        .collect();
    Ok(NewSpan {
        trace_id,
        span_id,
        parent_span_id,
        service: service.to_owned(),
        name: truncate(span.name, 1024),
        kind: SpanKind::from_i64(span.kind.into()),
        start_ns,
        end_ns,
        status,
        status_message,
        attributes: json_text(&JsonObject::of(&span.attributes)),
        links: json_text(&links),
        events: json_text(&events),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn otlp_ids_must_have_the_right_length() {
        assert_eq!(otlp_id(&[], 16, "trace_id"), Ok(None));
        assert_eq!(otlp_id(&[0; 16], 16, "trace_id"), Ok(None));
        assert_eq!(
            otlp_id(&[1; 8], 8, "span_id"),
            Ok(Some("0101010101010101".into()))
        );
        assert!(otlp_id(&[1; 5], 8, "span_id").is_err());
    }

    #[test]
    fn a_span_keeps_its_attributes_links_and_events_as_json_text() {
        use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
        let text = |s: &str| KeyValue {
            key: "k".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(s.into())),
            }),
            ..Default::default()
        };
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![text("span")],
            links: vec![Link {
                trace_id: vec![3; 16],
                span_id: vec![4; 8],
                attributes: vec![text("link")],
                ..Default::default()
            }],
            events: vec![Event {
                name: "exception".into(),
                time_unix_nano: 1_000_000_000,
                attributes: vec![text("event")],
                ..Default::default()
            }],
            ..Default::default()
        };
        let row = span_row("svc", span).unwrap();
        assert_eq!(row.attributes, r#"{"k":"span"}"#);
        let links: Value = serde_json::from_str(&row.links).unwrap();
        assert_eq!(
            links,
            json!([{"trace_id": "03".repeat(16), "span_id": "04".repeat(8), "attributes": {"k": "link"}}])
        );
        let events: Value = serde_json::from_str(&row.events).unwrap();
        assert_eq!(
            events,
            json!([{"name": "exception", "timestamp": "1970-01-01T00:00:01Z", "attributes": {"k": "event"}}])
        );
        let empty = span_row(
            "svc",
            Span {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (
                empty.attributes.as_str(),
                empty.links.as_str(),
                empty.events.as_str()
            ),
            ("{}", "[]", "[]")
        );
    }

    #[test]
    fn tracing_default_event_names_are_dropped_and_chosen_ones_kept() {
        let request = |event_name: &str| ExportLogsServiceRequest {
            resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
                scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                    log_records: vec![opentelemetry_proto::tonic::logs::v1::LogRecord {
                        event_name: event_name.into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("m".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let metadata = |event_name: &str| otlp_logs(request(event_name)).rows[0].metadata.clone();
        assert_eq!(metadata("event apps/order-gateway/src/routes.rs:87"), None);
        assert_eq!(metadata(""), None);
        assert_eq!(
            metadata("order.placed").as_deref(),
            Some(r#"{"event.name":"order.placed"}"#)
        );
        assert_eq!(
            metadata("event without a location").as_deref(),
            Some(r#"{"event.name":"event without a location"}"#)
        );
    }
}
