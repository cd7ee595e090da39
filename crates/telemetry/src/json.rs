//! The JSON log format of every service: one object per line, with the span's `trace_id` and `span_id`.
//!
//! The OpenTelemetry layer owns the span ids; this layer asks it once per span (through
//! [`tracing_opentelemetry::get_otel_context`]) and caches the hex strings in the span's extensions,
//! so a line costs one map lookup, not a context clone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::file::DailyFile;

/// Hex ids of a span, cached on first use.
struct SpanIds {
    trace_id: String,
    span_id: String,
}

/// Where the lines go.
pub(crate) enum Writer {
    /// Standard output through tracing-appender's writer thread, so a slow reader of the pipe
    /// never blocks a request.
    Stdout(NonBlocking),
    /// The log file, written in place: one `write(2)` per line into the page cache.
    File(Mutex<DailyFile>),
}

/// Writes every event as one JSON line to each of its writers.
pub(crate) struct JsonLayer {
    service: String,
    writers: Vec<Writer>,
    dispatch: OnceLock<WeakDispatch>,
}

impl JsonLayer {
    pub(crate) fn new(service: String, writers: Vec<Writer>) -> Self {
        Self {
            service,
            writers,
            dispatch: OnceLock::new(),
        }
    }

    fn span_ids<S>(
        &self,
        span: &tracing_subscriber::registry::SpanRef<'_, S>,
    ) -> Option<(String, String)>
    where
        S: for<'a> LookupSpan<'a>,
    {
        if let Some(ids) = span.extensions().get::<SpanIds>() {
            return Some((ids.trace_id.clone(), ids.span_id.clone()));
        }
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let ids = SpanIds {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
        };
        let out = (ids.trace_id.clone(), ids.span_id.clone());
        span.extensions_mut().insert(ids);
        Some(out)
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);

        let mut line = String::with_capacity(256 + fields.rest.len());
        line.push_str("{\"timestamp\":");
        push_json_str(
            &mut line,
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        line.push_str(",\"level\":");
        push_json_str(&mut line, meta.level().as_str());
        line.push_str(",\"message\":");
        push_json_str(&mut line, fields.message.as_deref().unwrap_or(""));
        line.push_str(",\"service\":");
        push_json_str(&mut line, &self.service);
        line.push_str(",\"target\":");
        push_json_str(&mut line, meta.target());
        if let Some(span) = ctx.event_span(event)
            && let Some((trace_id, span_id)) = self.span_ids(&span)
        {
            let _ = write!(
                line,
                ",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\""
            );
        }
        line.push_str(&fields.rest);
        line.push_str("}\n");
        for writer in &self.writers {
            match writer {
                Writer::Stdout(nb) => {
                    let _ = nb.clone().write_all(line.as_bytes());
                }
                Writer::File(file) => {
                    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = file.write_all(line.as_bytes());
                }
            }
        }
    }
}

/// Appends `value` as a JSON string literal.
fn push_json_str(out: &mut String, value: &str) {
    // serde_json's escaping is exact and allocation-free into a Vec; a String shares the bytes.
    let mut buf = Vec::with_capacity(value.len() + 2);
    let _ = serde_json::to_writer(&mut buf, value);
    out.push_str(&String::from_utf8_lossy(&buf));
}

/// Collects an event's fields: `message` apart, the others as `,"key":value` fragments.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    rest: String,
}

impl JsonFields {
    fn key(&mut self, field: &Field) {
        self.rest.push(',');
        push_json_str(&mut self.rest, field.name());
        self.rest.push(':');
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.key(field);
            push_json_str(&mut self.rest, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.rest, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.rest, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.rest, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.rest, "{value}");
        } else {
            push_json_str(&mut self.rest, &value.to_string());
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain, once, so a 5xx is explained in one line.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.record_str(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else if !field.name().starts_with("log.") {
            self.key(field);
            push_json_str(&mut self.rest, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\nc");
        assert_eq!(s, r#""a\"b\nc""#);
    }
}
