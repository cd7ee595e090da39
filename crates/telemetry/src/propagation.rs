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
///
/// The trace context is read strictly, as W3C Trace Context asks: a `traceparent` that is not
/// exactly `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>` (all-zero ids refused)
/// is ignored, so the request starts a new trace, and `tracestate` is then ignored with it; a
/// malformed `tracestate` alone is dropped. The SDK's parser would take `00-0af7-b7ad-01` and
/// zero-pad it into somebody else's trace.
pub fn extract(carrier: &dyn Extractor) -> Context {
    PROPAGATOR.extract(&Strict(carrier))
}

/// Hides from the propagator a trace context that is not well formed.
struct Strict<'a>(&'a dyn Extractor);

impl Extractor for Strict<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let traceparent = self.0.get("traceparent").filter(|v| valid_traceparent(v));
        match key {
            "traceparent" => traceparent,
            "tracestate" => traceparent
                .and(self.0.get("tracestate"))
                .filter(|v| valid_tracestate(v)),
            _ => self.0.get(key),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `version-traceid-parentid-flags`; version `00` is exactly 55 characters, a later version
/// may append `-` fields (read as version 00, as the specification says), `ff` is invalid.
fn valid_traceparent(value: &str) -> bool {
    let value = value.trim();
    let Some(head) = value.get(..55) else {
        return false;
    };
    let rest = &value[55..];
    let parts: Vec<&str> = head.split('-').collect();
    let [version, trace_id, span_id, flags] = parts[..] else {
        return false;
    };
    let sized =
        version.len() == 2 && trace_id.len() == 32 && span_id.len() == 16 && flags.len() == 2;
    sized
        && [version, trace_id, span_id, flags]
            .iter()
            .all(|p| is_lower_hex(p))
        && version != "ff"
        && (rest.is_empty() || (version != "00" && rest.starts_with('-')))
        && trace_id.bytes().any(|b| b != b'0')
        && span_id.bytes().any(|b| b != b'0')
}

/// At most 32 `key=value` members, keys of lowercase letters, digits and `_-*/` (with one `@`
/// for multi-tenant keys) up to 256 characters, values of printable ASCII without `,` and `=`
/// up to 256 characters.
fn valid_tracestate(value: &str) -> bool {
    let members: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    members.len() <= 32
        && members.iter().all(|member| {
            let Some((key, val)) = member.split_once('=') else {
                return false;
            };
            let key_ok = !key.is_empty()
                && key.len() <= 256
                && key.bytes().filter(|&b| b == b'@').count() <= 1
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b));
            let val_ok = !val.is_empty()
                && val.len() <= 256
                && !val.ends_with(' ')
                && val
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=');
            key_ok && val_ok
        })
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
        let mut values = self.0.get_all(key).iter();
        let first = values.next()?;
        // Two `traceparent` headers are two answers to one question: neither is trusted.
        if key == "traceparent" && values.next().is_some() {
            return None;
        }
        first.to_str().ok()
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

    #[test]
    fn malformed_trace_context_starts_a_new_trace() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace_of = |traceparent: &str, tracestate: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", traceparent.parse().unwrap());
            if let Some(state) = tracestate {
                headers.insert("tracestate", state.parse().unwrap());
            }
            let cx = extract(&HeaderExtractor(&headers));
            let sc = cx.span().span_context().clone();
            (
                sc.is_valid().then(|| sc.trace_id().to_string()),
                sc.trace_state().header(),
            )
        };
        assert_eq!(
            trace_of(good, Some("vendor=x")),
            (
                Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                "vendor=x".into()
            )
        );
        for bad in [
            "00-0af7-b7ad-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert_eq!(
                trace_of(bad, Some("vendor=x")),
                (None, String::new()),
                "{bad}"
            );
        }
        // A later version may carry more fields.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(trace_of(v1, None).0.is_some());
        // A malformed tracestate is dropped; the trace goes on.
        for state in ["Vendor=x", "a=b,c", "a=b=c", &"k=v,".repeat(33)] {
            let (trace, kept) = trace_of(good, Some(state));
            assert!(trace.is_some());
            assert_eq!(kept, "", "{state}");
        }
        let mut two = http::HeaderMap::new();
        two.append("traceparent", good.parse().unwrap());
        two.append("traceparent", good.parse().unwrap());
        let cx = extract(&HeaderExtractor(&two));
        assert!(!cx.span().span_context().is_valid());
    }
}
