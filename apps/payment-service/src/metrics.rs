//! The metrics of payment-service, in its own registry.

use prometheus::{IntCounterVec, Opts, Registry};
use telemetry::http::HttpMetrics;
use telemetry::metrics::register;

/// Every metric payment-service serves on `/metrics`.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) http: HttpMetrics,
    pub(crate) publisher: messaging::PublisherMetrics,
    /// `payment_processed_total{status}`.
    pub(crate) processed: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = telemetry::metrics::registry();
        let processed = IntCounterVec::new(
            Opts::new(
                "payment_processed_total",
                "Payments processed and confirmed by the broker, by status (succeeded, declined).",
            ),
            &["status"],
        )
        .expect("valid counter options");
        let processed = register(&registry, processed);
        // Every series exists from the start, so rates are defined before the first decline.
        for status in ["succeeded", "declined"] {
            processed.with_label_values(&[status]);
        }
        Self {
            http: HttpMetrics::new(&registry),
            publisher: messaging::PublisherMetrics::new(&registry),
            processed,
            registry,
        }
    }
}
