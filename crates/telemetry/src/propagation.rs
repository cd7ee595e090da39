//! W3C trace context and baggage: the propagator every hop uses, and the HTTP header carriers.
//!
//! Any other carrier implements [`Injector`] and [`Extractor`] (re-exported, so a carrier
//! crate uses the very traits this propagator takes): messaging does it over the AMQP
//! headers table.

use std::sync::LazyLock;

use opentelemetry::Context;
pub use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// `traceparent` + `tracestate` + `baggage`, the propagation every tracehop hop uses.
static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(|| {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
});

/// Writes the context of `cx` (trace context and baggage) into any carrier.
pub fn inject(cx: &Context, carrier: &mut dyn Injector) {
    PROPAGATOR.inject_context(cx, carrier);
}

/// Reads a remote context (trace context and baggage) from any carrier.
pub fn extract(carrier: &dyn Extractor) -> Context {
    PROPAGATOR.extract(carrier)
}

/// Adapts an [`http::HeaderMap`] for injection.
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Adapts an [`http::HeaderMap`] for extraction.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    #[test]
    fn round_trips_trace_context_and_baggage() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        let cx = Context::new()
            .with_remote_span_context(sc)
            .with_baggage([KeyValue::new("order.id", "o-1")]);
        let mut headers = http::HeaderMap::new();
        inject(&cx, &mut HeaderInjector(&mut headers));
        assert_eq!(
            headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(headers["tracestate"], "vendor=x");
        assert_eq!(headers["baggage"], "order.id=o-1");

        let back = extract(&HeaderExtractor(&headers));
        assert_eq!(
            back.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            back.baggage().get("order.id").map(|v| v.to_string()),
            Some("o-1".into())
        );
    }
}
