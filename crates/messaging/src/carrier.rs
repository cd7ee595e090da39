//! The AMQP headers as an OpenTelemetry carrier: trace context and baggage are written into, and
//! read from, a message's `FieldTable` directly, with no detour through a string map.

use lapin::types::{AMQPValue, FieldTable, ShortString};
use telemetry::propagation::{Extractor, Injector};

/// Writes propagation headers (`traceparent`, `tracestate`, `baggage`) into the headers of an
/// outgoing message, as AMQP long strings.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // A header name is a short string (at most 255 bytes); the propagators' names always fit.
        if let Ok(key) = ShortString::try_new(key) {
            self.0.insert(key, AMQPValue::LongString(value.into()));
        }
    }
}

/// Reads propagation headers from a delivery's headers (absent for a message published without
/// any). Only text values count: a number such as `x-attempt` is never a propagation header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub Option<&'a FieldTable>);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0?.inner().get(key)? {
            AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
            AMQPValue::ShortString(value) => Some(value.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|table| table.inner().keys().map(ShortString::as_str).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{BaggageExt, TraceContextExt};

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn text(table: &FieldTable, key: &str) -> Option<String> {
        match table.inner().get(key)? {
            AMQPValue::LongString(v) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn round_trips_trace_context_and_baggage_through_a_field_table() {
        let mut received = FieldTable::default();
        received.insert(
            "traceparent".into(),
            AMQPValue::LongString(TRACEPARENT.into()),
        );
        received.insert(
            "tracestate".into(),
            AMQPValue::ShortString("vendor=x".into()),
        );
        received.insert(
            "baggage".into(),
            AMQPValue::LongString("order.id=o-1".into()),
        );
        received.insert("x-attempt".into(), AMQPValue::LongUInt(2));

        let cx = telemetry::propagation::extract(&HeaderExtractor(Some(&received)));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(cx.span().span_context().is_remote());
        assert_eq!(
            cx.baggage().get("order.id").map(|v| v.to_string()),
            Some("o-1".into())
        );

        let mut sent = FieldTable::default();
        telemetry::propagation::inject(&cx, &mut HeaderInjector(&mut sent));
        assert_eq!(text(&sent, "traceparent").as_deref(), Some(TRACEPARENT));
        assert_eq!(text(&sent, "tracestate").as_deref(), Some("vendor=x"));
        assert_eq!(text(&sent, "baggage").as_deref(), Some("order.id=o-1"));
        assert_eq!(sent.inner().len(), 3);
    }

    #[test]
    fn non_text_and_absent_headers_read_as_missing() {
        let mut table = FieldTable::default();
        table.insert("x-attempt".into(), AMQPValue::LongUInt(3));
        table.insert("bad".into(), AMQPValue::LongString(vec![0xff, 0xfe].into()));
        let extractor = HeaderExtractor(Some(&table));
        assert_eq!(extractor.get("x-attempt"), None);
        assert_eq!(extractor.get("bad"), None);
        assert_eq!(extractor.get("traceparent"), None);
        assert_eq!(extractor.keys(), vec!["bad", "x-attempt"]);
        assert!(HeaderExtractor(None).keys().is_empty());
        let cx = telemetry::propagation::extract(&HeaderExtractor(None));
        assert!(!cx.span().span_context().is_valid());
    }
}
