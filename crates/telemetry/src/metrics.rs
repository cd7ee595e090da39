//! Prometheus registries: one per service instance, so services sharing a test process never
//! share a counter, each with the process collector of the `prometheus` crate.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Builds a registry holding the `process_*` collector.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    registry
}

/// Renders `registry` in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    // Encoding only fails on a writer error, and a Vec never fails.
    let _ = encoder.encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// An axum handler body for `GET /metrics`.
pub fn response(registry: &Registry) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(registry),
    )
        .into_response()
}

/// Registers a collector built by `make`, panicking on a name clash, which is a programming
/// error caught by every test that builds the service.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique per registry");
    c
}

/// The buckets of every request and message duration histogram, in seconds: 0.5 ms to 5 s.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Registers a counter `name{labels}` whose series start with their first event.
pub fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter options");
    register(registry, counter)
}

/// Registers a duration histogram `name{labels}` with the [`DURATION_BUCKETS`].
pub fn duration_histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> HistogramVec {
    let histogram = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid histogram options");
    register(registry, histogram)
}

/// Registers a counter `name{label}` with one series per value of `values` from the start, so
/// rates and ratios are defined before the first event of each kind.
pub fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> IntCounterVec {
    let counter = counter(registry, name, help, &[label]);
    for value in values {
        counter.with_label_values(&[value]);
    }
    counter
}
