//! The metrics of payment-service, in the registry its server serves (beside the HTTP metrics).

use prometheus::{IntCounterVec, Registry};

/// Every metric of payment-service's own.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) publisher: messaging::PublisherMetrics,
    /// `payment_processed_total{status}`.
    pub(crate) processed: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            publisher: messaging::PublisherMetrics::new(registry),
            processed: telemetry::metrics::counter_vec(
                registry,
                "payment_processed_total",
                "Payments processed and confirmed by the broker, by status (succeeded, declined).",
                "status",
                &["succeeded", "declined"],
            ),
        }
    }
}
