//! The metrics of email-service, in its own registry.

use prometheus::{IntCounterVec, Registry};
use telemetry::http::HttpMetrics;

/// Every metric email-service serves on `/metrics`.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) http: HttpMetrics,
    pub(crate) consumer: messaging::ConsumerMetrics,
    /// `emails_sent_total{status}`.
    pub(crate) emails: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = telemetry::metrics::registry();
        let emails = telemetry::metrics::counter_vec(
            &registry,
            "emails_sent_total",
            "Confirmation e-mails, by status (sent, failed attempts).",
            "status",
            &["sent", "failed"],
        );
        Self {
            http: HttpMetrics::new(&registry),
            consumer: messaging::ConsumerMetrics::new(&registry),
            emails,
            registry,
        }
    }
}
