//! The metrics of payment-service, in its own registry.

use prometheus::{IntCounterVec, Registry};
use telemetry::http::HttpMetrics;

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
        let processed = telemetry::metrics::counter_vec(
            &registry,
            "payment_processed_total",
            "Payments processed and confirmed by the broker, by status (succeeded, declined).",
            "status",
            &["succeeded", "declined"],
        );
        Self {
            http: HttpMetrics::new(&registry),
            publisher: messaging::PublisherMetrics::new(&registry),
            processed,
            registry,
        }
    }
}
